//! PDF: the text layer with `pdf-extract` (on `lopdf`), page by page in content order.
//!
//! `pdf-extract` follows page parents and form XObjects by plain recursion and inflates streams
//! without bounds. So before it runs, the loaded document is checked with `lopdf`'s own object
//! model: no cycle in a page's parents or in forms drawing forms (which would overflow the stack,
//! something no `catch_unwind` can catch), nesting within [`Limits::max_depth`], and Flate
//! streams that inflate to no more than [`Limits::max_decompressed_bytes`] together.

use std::collections::HashSet;
use std::io::Read;

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

use super::Limits;
use crate::documents::{DocumentError, Result};

const KIND: &str = "PDF";

pub fn extract(bytes: &[u8], what: &str, limits: &Limits) -> Result<String> {
    let damaged = |detail: String| DocumentError::Damaged { what: what.to_owned(), kind: KIND, detail };
    let encrypted = || DocumentError::Encrypted { what: what.to_owned() };
    let mut doc = match Document::load_mem(bytes) {
        Ok(doc) => doc,
        Err(lopdf::Error::Decryption(_)) => return Err(encrypted()),
        Err(e) => return Err(damaged(e.to_string())),
    };
    // An owner password alone (the empty user password opens it) is what most "protected"
    // PDFs have, and every viewer opens them; anything else needs a password we do not have.
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(encrypted());
    }
    check_inflated_size(&doc, what, limits)?;
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(damaged("no pages".to_owned()));
    }
    for &page in pages.values() {
        check_page(&doc, page, what, limits.max_depth)?;
    }
    let mut text = String::new();
    for &number in pages.keys() {
        let mut page_text = String::new();
        {
            let mut out = pdf_extract::PlainTextOutput::new(&mut page_text);
            pdf_extract::output_doc_page(&doc, &mut out, number).map_err(|e| damaged(format!("page {number}: {e}")))?;
        }
        text.push_str(page_text.trim_matches('\n'));
        text.push_str("\n\n");
    }
    Ok(text)
}

/// Flate is the one filter that turns a few kilobytes into gigabytes; every Flate stream is
/// inflated once into a counter, stopping at the limit, before anything keeps the bytes.
fn check_inflated_size(doc: &Document, what: &str, limits: &Limits) -> Result<()> {
    let limit = limits.max_decompressed_bytes;
    let mut total = 0u64;
    for object in doc.objects.values() {
        let Object::Stream(stream) = object else { continue };
        let flate = match stream.dict.get(b"Filter") {
            Ok(Object::Name(n)) => n == b"FlateDecode",
            Ok(Object::Array(a)) => a.iter().any(|f| matches!(f, Object::Name(n) if n == b"FlateDecode")),
            _ => false,
        };
        let size = if flate {
            let decoder = flate2::read::ZlibDecoder::new(&stream.content[..]);
            // A damaged stream counts what inflated before the damage; lopdf falls back to the
            // raw bytes for it, which are already in memory.
            std::io::copy(&mut decoder.take(limit + 1 - total.min(limit)), &mut std::io::sink()).unwrap_or(0)
        } else {
            stream.content.len() as u64
        };
        total += size;
        if total > limit {
            return Err(DocumentError::TooLarge { what: format!("{what} (inflated streams)"), size: total, limit });
        }
    }
    Ok(())
}

/// The page's parents and the forms its content draws, followed the way `pdf-extract` will
/// follow them, refusing cycles and nesting past `max_depth`.
fn check_page(doc: &Document, page: ObjectId, what: &str, max_depth: usize) -> Result<()> {
    let cycle = |detail: &str| DocumentError::Damaged {
        what: what.to_owned(),
        kind: KIND,
        detail: format!("{detail} (object {} {})", page.0, page.1),
    };
    // Parents: `Resources` and `MediaBox` are inherited up this chain.
    let mut seen = HashSet::from([page]);
    let mut node = doc.get_dictionary(page).map_err(|_| cycle("a page is not a dictionary"))?;
    let mut resources = None;
    let mut depth = 0;
    loop {
        if resources.is_none() {
            resources =
                node.get(b"Resources").ok().and_then(|r| doc.dereference(r).ok()).and_then(|(_, r)| r.as_dict().ok());
        }
        let Ok(parent) = node.get(b"Parent").and_then(Object::as_reference) else { break };
        if !seen.insert(parent) {
            return Err(cycle("the page tree refers to itself"));
        }
        depth += 1;
        if depth > max_depth {
            return Err(DocumentError::TooDeep { what: what.to_owned(), depth, limit: max_depth });
        }
        node = match doc.get_dictionary(parent) {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    let Some(resources) = resources else { return Ok(()) };
    let content = doc.get_page_content(page).unwrap_or_default();
    let mut path = Vec::new();
    check_forms(doc, &content, resources, &mut path, what, max_depth)
}

/// Depth-first over `Do` operators: a form already on `path` is drawing itself.
fn check_forms<'a>(
    doc: &'a Document,
    content: &[u8],
    resources: &'a Dictionary,
    path: &mut Vec<ObjectId>,
    what: &str,
    max_depth: usize,
) -> Result<()> {
    let Ok(ops) = Content::decode(content) else { return Ok(()) };
    let xobjects =
        resources.get(b"XObject").ok().and_then(|x| doc.dereference(x).ok()).and_then(|(_, x)| x.as_dict().ok());
    let Some(xobjects) = xobjects else { return Ok(()) };
    for op in ops.operations.iter().filter(|op| op.operator == "Do") {
        let Some(name) = op.operands.first().and_then(|o| o.as_name().ok()) else { continue };
        let Ok(id) = xobjects.get(name).and_then(Object::as_reference) else { continue };
        if path.contains(&id) {
            return Err(DocumentError::Damaged {
                what: what.to_owned(),
                kind: KIND,
                detail: format!("form object {} {} draws itself", id.0, id.1),
            });
        }
        if path.len() >= max_depth {
            return Err(DocumentError::TooDeep { what: what.to_owned(), depth: path.len() + 1, limit: max_depth });
        }
        let Ok(stream) = doc.get_object(id).and_then(Object::as_stream) else { continue };
        let is_form = stream.dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|s| s == b"Form");
        if !is_form {
            continue;
        }
        let inner = stream
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|r| doc.dereference(r).ok())
            .and_then(|(_, r)| r.as_dict().ok())
            .unwrap_or(resources);
        let data = stream.decompressed_content().unwrap_or_else(|_| stream.content.clone());
        path.push(id);
        check_forms(doc, &data, inner, path, what, max_depth)?;
        path.pop();
    }
    Ok(())
}
