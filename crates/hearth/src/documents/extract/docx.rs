//! DOCX: the body (`word/document.xml`) out of the zip with `zip`, its text runs with
//! `quick-xml`. Every inflated part is capped (declared sizes can lie, so the cap is enforced
//! while inflating), element nesting is capped, and a DTD is refused: Word never writes one, and
//! entity definitions are how "billion laughs" expands a few bytes into gigabytes.

use std::io::{Cursor, Read};

use quick_xml::events::Event;
use quick_xml::Reader;

use super::Limits;
use crate::documents::{DocumentError, Result};

const KIND: &str = "DOCX";
const BODY: &str = "word/document.xml";

pub fn extract(bytes: &[u8], what: &str, limits: &Limits) -> Result<String> {
    let damaged = |detail: String| DocumentError::Damaged { what: what.to_owned(), kind: KIND, detail };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| damaged(format!("not a zip archive ({e})")))?;
    if archive.len() > limits.max_entries {
        return Err(DocumentError::TooManyParts { what: what.to_owned(), limit: limits.max_entries });
    }
    let entry_limit = limits.max_entry_bytes.min(limits.max_decompressed_bytes);
    let xml = {
        let mut part = archive.by_name(BODY).map_err(|e| damaged(format!("no {BODY} ({e})")))?;
        if part.size() > entry_limit {
            return Err(DocumentError::TooLarge {
                what: format!("{what}: {BODY}"),
                size: part.size(),
                limit: entry_limit,
            });
        }
        let mut buf = Vec::new();
        (&mut part)
            .take(entry_limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| damaged(format!("{BODY} does not inflate ({e})")))?;
        if buf.len() as u64 > entry_limit {
            return Err(DocumentError::TooLarge {
                what: format!("{what}: {BODY} (inflated)"),
                size: buf.len() as u64,
                limit: entry_limit,
            });
        }
        String::from_utf8(buf).map_err(|e| damaged(format!("{BODY} is not UTF-8 ({e})")))?
    };
    body_text(&xml, what, limits.max_depth)
}

/// Paragraphs (`w:p`) become lines; `w:t` runs are text; tabs and breaks are kept.
fn body_text(xml: &str, what: &str, max_depth: usize) -> Result<String> {
    let damaged = |detail: String| DocumentError::Damaged { what: what.to_owned(), kind: KIND, detail };
    let mut reader = Reader::from_str(xml);
    let mut out = String::new();
    let mut depth = 0usize;
    let mut in_text = false;
    loop {
        let event = reader.read_event().map_err(|e| damaged(format!("{BODY}: {e}")))?;
        match event {
            Event::DocType(_) => {
                return Err(damaged(format!("{BODY} declares a DTD; entity definitions are refused")));
            }
            Event::Start(e) => {
                depth += 1;
                if depth > max_depth {
                    return Err(DocumentError::TooDeep { what: format!("{what}: {BODY}"), depth, limit: max_depth });
                }
                in_text = e.local_name().as_ref() == "t";
            }
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" => out.push('\t'),
                "br" | "cr" => out.push('\n'),
                _ => {}
            },
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                match e.local_name().as_ref() {
                    "t" => in_text = false,
                    "p" => out.push('\n'),
                    _ => {}
                }
            }
            Event::Text(t) if in_text => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| damaged(format!("{BODY}: undefined entity &{};", &*r)))?
                        .to_owned(),
                    Err(e) => return Err(damaged(format!("{BODY}: {e}"))),
                };
                out.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}
