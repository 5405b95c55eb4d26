//! Extraction from hostile and awkward documents: each is a clear error or the right text, with
//! no crash and no hang. Files are generated here (PDFs with `lopdf`, DOCX with `zip`).

use std::io::{Cursor, Write};
use std::time::Duration;

use hearth::documents::{extract_bytes, extract_file, DocKind, DocumentError, Limits};
use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, ObjectId, Stream};

fn limits() -> Limits {
    // Generous enough for real parsing; a hang shows as a timeout error, never a stuck test.
    Limits { timeout: Duration::from_secs(30), ..Limits::default() }
}

fn text_of(bytes: &[u8], kind: DocKind) -> Result<String, DocumentError> {
    extract_bytes(bytes.to_vec(), kind, "test file", &limits()).map(|d| d.text)
}

// ---------- plain text ----------

#[test]
fn empty_and_whitespace_only_files_have_no_text() {
    for bytes in [&b""[..], b"   \n\t\r\n  \n", "\u{3000}\u{a0} \n".as_bytes()] {
        let err = text_of(bytes, DocKind::Text).unwrap_err();
        assert!(matches!(err, DocumentError::NoText { .. }), "{err:?}");
        assert!(err.to_string().contains("has no text"), "{err}");
    }
}

#[test]
fn binary_renamed_txt_is_refused_as_binary() {
    // Deterministic noise, like a compressed or executable file.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.txt");
    std::fs::write(&path, &bytes).unwrap();
    let err = extract_file(&path, &limits()).unwrap_err();
    assert!(matches!(err, DocumentError::Binary { .. }), "{err:?}");
    assert!(err.to_string().contains("binary"), "{err}");
}

#[test]
fn nul_heavy_markdown_keeps_its_text_without_the_nuls() {
    let mut bytes = Vec::new();
    for line in ["# Meeting notes", "", "- Budget approved: 12,000", "- Next review in May"] {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        bytes.extend(std::iter::repeat_n(0u8, 4096));
    }
    let doc = extract_bytes(bytes, DocKind::Markdown, "notes.md", &limits()).unwrap();
    assert_eq!(doc.kind, DocKind::Markdown);
    assert_eq!(doc.text, "# Meeting notes\n\n- Budget approved: 12,000\n- Next review in May");
    assert!(!doc.text.contains('\0'));
}

#[test]
fn invalid_utf8_keeps_the_valid_text_and_marks_the_bad_byte() {
    let text = "회의록: 예산은 승인되었다. ".repeat(20);
    let mut bytes = text.into_bytes();
    // A stray byte between two characters: one U+FFFD, every character kept.
    bytes.insert("회의록: 예산은 ".len(), 0xff);
    let text = text_of(&bytes, DocKind::Text).unwrap();
    assert_eq!(text.matches('\u{fffd}').count(), 1, "{text}");
    assert!(text.starts_with("회의록: 예산은 \u{fffd}승인되었다."), "{text}");
    assert!(text.contains("예산은 승인되었다"), "{text}");
}

#[test]
fn utf16_with_bom_both_byte_orders() {
    let s = "Résumé — 요약\nline two";
    let mut le = vec![0xff, 0xfe];
    le.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
    let mut be = vec![0xfe, 0xff];
    be.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
    assert_eq!(text_of(&le, DocKind::Text).unwrap(), s);
    assert_eq!(text_of(&be, DocKind::Text).unwrap(), s);
}

#[test]
fn latin1_windows1252_is_detected() {
    let s = "Le café est très bon. Nous avons mangé une crème brûlée à la façade de l'hôtel. \
             Où est la boîte aux lettres? Ça coûte cher, n'est-ce pas? Élève, garçon, naïve.";
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(s);
    assert!(std::str::from_utf8(&bytes).is_err(), "the fixture must not be UTF-8");
    assert_eq!(text_of(&bytes, DocKind::Text).unwrap(), s);
}

#[test]
fn euc_kr_is_detected() {
    let s = "회의 결과를 알려 드립니다. 다음 달 예산은 승인되었고, 새 프로젝트는 삼월에 시작합니다. \
             참석자는 모두 다섯 명이었습니다.";
    let (bytes, _, _) = encoding_rs::EUC_KR.encode(s);
    assert_eq!(text_of(&bytes, DocKind::Text).unwrap(), s);
}

#[test]
fn csv_json_and_code_are_read_as_text() {
    assert_eq!(text_of(b"a,b\n1,2\n", DocKind::Csv).unwrap(), "a,b\n1,2");
    assert_eq!(text_of(br#"{"k": [1, 2]}"#, DocKind::Json).unwrap(), r#"{"k": [1, 2]}"#);
    assert_eq!(
        text_of(b"fn main() {\n    println!(\"hi\");\n}\n", DocKind::Code).unwrap(),
        "fn main() {\n    println!(\"hi\");\n}"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    std::fs::write(&path, vec![b'a'; 2048]).unwrap();
    let err = extract_file(&path, &Limits { max_input_bytes: 1024, ..limits() }).unwrap_err();
    assert!(matches!(err, DocumentError::TooLarge { size: 2048, limit: 1024, .. }), "{err:?}");
}

// ---------- HTML ----------

#[test]
fn html_with_scripts_gives_visible_text_only() {
    let html = r#"<!DOCTYPE html><html><head><title>Report</title>
        <style>body { color: red } .x::after { content: "hidden style" }</style>
        <script>document.write("<p>hidden script</p>"); var s = "</div>";</script></head>
        <body><!-- hidden comment --><h1>Quarterly  report</h1>
        <p>Revenue rose <b>12%</b>.</p><noscript>hidden noscript</noscript>
        <ul><li>one</li><li>two</li></ul><template><p>hidden template</p></template>
        <script type="module">import x from "y"; // hidden</script><p>End &amp; fin.</p></body></html>"#;
    let text = text_of(html.as_bytes(), DocKind::Html).unwrap();
    assert!(!text.contains("hidden"), "{text}");
    assert_eq!(text, "Report\n\nQuarterly report\n\nRevenue rose 12%.\n\none\ntwo\n\nEnd & fin.");
}

#[test]
fn html_nested_200000_deep_is_read_linearly() {
    let depth = 200_000;
    let mut html = String::with_capacity(depth * 11 + 64);
    html.push_str("<html><body>");
    for _ in 0..depth {
        html.push_str("<div><span>");
    }
    html.push_str("deep text");
    for _ in 0..depth {
        html.push_str("</span></div>");
    }
    html.push_str("</body></html>");
    let text = text_of(html.as_bytes(), DocKind::Html).unwrap();
    assert_eq!(text, "deep text");
}

// ---------- DOCX ----------

fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn docx_body(paragraphs: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{paragraphs}</w:body></w:document>"#
    )
    .into_bytes()
}

#[test]
fn docx_paragraphs_runs_tabs_and_entities() {
    let body = docx_body(
        r#"<w:p><w:r><w:t>Hello</w:t></w:r><w:r><w:t xml:space="preserve"> world &amp; &#xAC00;</w:t></w:r></w:p>
           <w:p><w:r><w:t>a</w:t><w:tab/><w:t>b</w:t><w:br/><w:t>c</w:t></w:r><w:r><w:delText>gone</w:delText></w:r></w:p>"#,
    );
    let docx = zip_with(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", &body)]);
    assert_eq!(text_of(&docx, DocKind::Docx).unwrap(), "Hello world & 가\na\tb\nc");
}

#[test]
fn zip_bomb_docx_is_refused_by_its_declared_size() {
    // 80 MiB of zeros deflate to about 80 KiB; the part is refused before it is inflated.
    let zeros = vec![0u8; 80 * 1024 * 1024];
    let docx = zip_with(&[("word/document.xml", &zeros)]);
    assert!(docx.len() < 1024 * 1024);
    let err = text_of(&docx, DocKind::Docx).unwrap_err();
    assert!(matches!(err, DocumentError::TooLarge { .. }), "{err:?}");
}

#[test]
fn zip_bomb_docx_that_lies_about_its_size_is_stopped_while_inflating() {
    let inflated = 8 * 1024 * 1024u32;
    let mut docx = zip_with(&[("word/document.xml", &vec![b' '; inflated as usize])]);
    // Rewrite the uncompressed size in the local and central headers to 100 bytes.
    let lie = 100u32.to_le_bytes();
    let patch = |docx: &mut Vec<u8>, sig: [u8; 4], offset: usize| {
        let at = docx.windows(4).position(|w| w == sig).unwrap();
        let field = &mut docx[at + offset..at + offset + 4];
        assert_eq!(u32::from_le_bytes(field.try_into().unwrap()), inflated);
        field.copy_from_slice(&lie);
    };
    patch(&mut docx, [0x50, 0x4b, 0x03, 0x04], 22);
    patch(&mut docx, [0x50, 0x4b, 0x01, 0x02], 24);
    let small = Limits { max_entry_bytes: 1024 * 1024, ..limits() };
    let err = extract_bytes(docx, DocKind::Docx, "bomb.docx", &small).unwrap_err();
    assert!(matches!(err, DocumentError::TooLarge { .. } | DocumentError::Damaged { .. }), "{err:?}");
}

#[test]
fn billion_laughs_docx_is_refused_without_expanding() {
    let mut dtd = String::from("<!DOCTYPE w:document [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 { "lol".to_string() } else { format!("lol{}", i - 1) };
        dtd.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", format!("&{prev};").repeat(10)));
    }
    dtd.push_str("]>\n");
    let xml = format!(
        r#"<?xml version="1.0"?>{dtd}<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"#
    );
    let docx = zip_with(&[("word/document.xml", xml.as_bytes())]);
    let err = text_of(&docx, DocKind::Docx).unwrap_err();
    assert!(matches!(err, DocumentError::Damaged { .. }), "{err:?}");
    assert!(err.to_string().contains("DTD"), "{err}");
}

#[test]
fn not_a_zip_docx_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.docx");
    std::fs::write(&path, "This is plain text saved with a .docx name.").unwrap();
    let err = extract_file(&path, &limits()).unwrap_err();
    assert!(matches!(err, DocumentError::Damaged { kind: "DOCX", .. }), "{err:?}");
    assert!(err.to_string().contains("not a zip archive"), "{err}");
}

#[test]
fn docx_nested_past_the_depth_limit_is_refused() {
    let depth = 100_000;
    let body = docx_body(&format!("{}<w:t>x</w:t>{}", "<w:sdt>".repeat(depth), "</w:sdt>".repeat(depth)));
    let docx = zip_with(&[("word/document.xml", &body)]);
    let err = text_of(&docx, DocKind::Docx).unwrap_err();
    assert!(matches!(err, DocumentError::TooDeep { .. }), "{err:?}");
}

// ---------- PDF ----------

/// A one-font PDF: each page shows its lines; `extra` may add objects and return a page's
/// content override and resources override.
struct PdfBuilder {
    doc: Document,
    pages_id: ObjectId,
    font_id: ObjectId,
    kids: Vec<Object>,
}

impl PdfBuilder {
    fn new() -> Self {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        Self { doc, pages_id, font_id, kids: Vec::new() }
    }

    fn text_ops(lines: &[&str]) -> Vec<Operation> {
        let mut ops = vec![Operation::new("BT", vec![]), Operation::new("Tf", vec!["F1".into(), 12.into()])];
        for (i, line) in lines.iter().enumerate() {
            ops.push(Operation::new(
                "Tm",
                vec![1.into(), 0.into(), 0.into(), 1.into(), 72.into(), (720 - 20 * i as i64).into()],
            ));
            ops.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
        }
        ops.push(Operation::new("ET", vec![]));
        ops
    }

    fn page(&mut self, ops: Vec<Operation>, xobjects: lopdf::Dictionary) -> ObjectId {
        let content = Content { operations: ops }.encode().unwrap();
        let content_id = self.doc.add_object(Stream::new(dictionary! {}, content));
        let resources = dictionary! { "Font" => dictionary! { "F1" => self.font_id }, "XObject" => xobjects };
        let page_id = self.doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => self.pages_id, "Contents" => content_id, "Resources" => resources,
        });
        self.kids.push(page_id.into());
        page_id
    }

    fn finish(mut self) -> Vec<u8> {
        let count = self.kids.len() as i64;
        self.doc.objects.insert(
            self.pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => self.kids, "Count" => count,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            }),
        );
        let catalog_id = self.doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => self.pages_id });
        self.doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        self.doc.save_to(&mut out).unwrap();
        out
    }
}

fn text_pdf() -> Vec<u8> {
    let mut b = PdfBuilder::new();
    b.page(PdfBuilder::text_ops(&["First page heading", "The budget was approved."]), dictionary! {});
    b.page(PdfBuilder::text_ops(&["Second page", "Review in May."]), dictionary! {});
    b.finish()
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn pdf_text_layer_in_reading_order() {
    let text = text_of(&text_pdf(), DocKind::Pdf).unwrap();
    assert_eq!(
        words(&text),
        words("First page heading The budget was approved. Second page Review in May."),
        "{text:?}"
    );
    let first = text.find("approved").unwrap();
    let second = text.find("Second").unwrap();
    assert!(text[first..second].contains("\n\n"), "pages are paragraphs: {text:?}");
}

#[test]
fn scanned_pdf_has_no_text_layer() {
    let mut b = PdfBuilder::new();
    let image = Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => 2, "Height" => 2,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        vec![0, 255, 255, 0],
    );
    let image_id = b.doc.add_object(image);
    let ops = vec![
        Operation::new("q", vec![]),
        Operation::new("cm", vec![500.into(), 0.into(), 0.into(), 700.into(), 50.into(), 50.into()]),
        Operation::new("Do", vec!["Im1".into()]),
        Operation::new("Q", vec![]),
    ];
    b.page(ops, dictionary! { "Im1" => image_id });
    let err = text_of(&b.finish(), DocKind::Pdf).unwrap_err();
    assert!(matches!(err, DocumentError::NoTextLayer { .. }), "{err:?}");
    assert!(err.to_string().contains("no text layer"), "{err}");
}

#[test]
fn encrypted_pdf_says_so() {
    let mut doc = Document::load_mem(&text_pdf()).unwrap();
    let encrypt = doc.add_object(dictionary! {
        "Filter" => "Standard", "V" => 1, "R" => 2, "P" => -44,
        "O" => Object::string_literal(vec![0x11u8; 32]),
        "U" => Object::string_literal(vec![0x22u8; 32]),
    });
    doc.trailer.set("Encrypt", encrypt);
    doc.trailer.set("ID", vec![Object::string_literal(vec![1u8; 16]), Object::string_literal(vec![1u8; 16])]);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    let err = text_of(&bytes, DocKind::Pdf).unwrap_err();
    assert!(matches!(err, DocumentError::Encrypted { .. }), "{err:?}");
    assert!(err.to_string().contains("encrypted"), "{err}");
}

#[test]
fn self_referencing_pdf_form_is_refused_not_a_stack_overflow() {
    let mut b = PdfBuilder::new();
    let form_id = b.doc.new_object_id();
    // The form's content draws /X1, and without resources of its own it inherits the page's,
    // where /X1 is the form itself.
    let form = Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 10.into(), 10.into()] },
        Content { operations: vec![Operation::new("Do", vec!["X1".into()])] }.encode().unwrap(),
    );
    b.doc.objects.insert(form_id, Object::Stream(form));
    let mut ops = PdfBuilder::text_ops(&["before the form"]);
    ops.push(Operation::new("Do", vec!["X1".into()]));
    b.page(ops, dictionary! { "X1" => form_id });
    let err = text_of(&b.finish(), DocKind::Pdf).unwrap_err();
    assert!(matches!(err, DocumentError::Damaged { .. }), "{err:?}");
    assert!(err.to_string().contains("draws itself"), "{err}");
}

#[test]
fn self_referencing_pdf_page_tree_is_refused_or_read_never_a_crash() {
    let mut b = PdfBuilder::new();
    let page = b.page(PdfBuilder::text_ops(&["only page"]), dictionary! {});
    let pages_id = b.pages_id;
    let mut bytes = b.finish();
    // The pages node lists itself among its kids and names itself as its own parent.
    let mut doc = Document::load_mem(&bytes).unwrap();
    let pages = doc.get_dictionary_mut(pages_id).unwrap();
    pages.set("Kids", vec![Object::Reference(pages_id), Object::Reference(page)]);
    pages.set("Parent", Object::Reference(pages_id));
    bytes.clear();
    doc.save_to(&mut bytes).unwrap();
    match text_of(&bytes, DocKind::Pdf) {
        Ok(text) => assert_eq!(words(&text), ["only", "page"], "{text:?}"),
        Err(err) => assert!(matches!(err, DocumentError::Damaged { .. }), "{err:?}"),
    }
}

#[test]
fn truncated_pdf_is_an_error_or_its_surviving_text() {
    let whole = text_pdf();
    for cut in [whole.len() / 2, whole.len() - 40, 200] {
        match text_of(&whole[..cut], DocKind::Pdf) {
            Err(err) => assert!(
                matches!(err, DocumentError::Damaged { .. } | DocumentError::NoTextLayer { .. }),
                "cut at {cut}: {err:?}"
            ),
            // lopdf can rebuild a lost cross-reference table; what it reads must be real text.
            Ok(text) => assert!(text.contains("First page heading"), "cut at {cut}: {text:?}"),
        }
    }
}

#[test]
fn a_pdf_that_is_not_a_pdf_says_so() {
    let err = text_of(b"%PDF-1.7\nnothing else here", DocKind::Pdf).unwrap_err();
    assert!(matches!(err, DocumentError::Damaged { kind: "PDF", .. }), "{err:?}");
}

// ---------- the CLI ----------

fn hearth(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_extract_json_gives_kind_text_and_char_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.md");
    std::fs::write(&path, "# 회의\n\nBudget: approved.\n").unwrap();
    let out = hearth(&["extract".as_ref(), path.as_os_str(), "--json".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "markdown");
    assert_eq!(v["text"], "# 회의\n\nBudget: approved.");
    assert_eq!(v["chars"], "# 회의\n\nBudget: approved.".chars().count());
}

#[test]
fn cli_extract_fails_clearly_on_a_file_without_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blank.txt");
    std::fs::write(&path, " \n\n ").unwrap();
    let out = hearth(&["extract".as_ref(), path.as_os_str(), "--json".as_ref()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("blank.txt has no text"), "{err}");
}

#[test]
fn extracted_text_is_kept_by_content_and_not_extracted_again() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.html");
    std::fs::write(&path, "<p>first</p>").unwrap();
    let doc = hearth::documents::extract_file_cached(data.path(), &path, &limits()).unwrap();
    assert_eq!(doc.text, "first");
    let cached: Vec<_> = std::fs::read_dir(data.path().join("documents/text")).unwrap().flatten().collect();
    assert_eq!(cached.len(), 1);
    // Same bytes (another name, same kind): answered from the kept text, proven by editing it.
    let entry = cached[0].path();
    let mut kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    kept["text"] = "kept".into();
    std::fs::write(&entry, serde_json::to_vec(&kept).unwrap()).unwrap();
    let copy = dir.path().join("copy.html");
    std::fs::copy(&path, &copy).unwrap();
    assert_eq!(hearth::documents::extract_file_cached(data.path(), &copy, &limits()).unwrap().text, "kept");
    // Other bytes are extracted.
    std::fs::write(&path, "<p>second</p>").unwrap();
    assert_eq!(hearth::documents::extract_file_cached(data.path(), &path, &limits()).unwrap().text, "second");
}

#[test]
fn pdf_with_a_flate_bomb_stream_is_refused_before_it_is_inflated() {
    let mut b = PdfBuilder::new();
    b.page(PdfBuilder::text_ops(&["small text"]), dictionary! {});
    let mut bomb = Stream::new(dictionary! {}, vec![0u8; 8 * 1024 * 1024]);
    bomb.compress().unwrap();
    assert!(bomb.content.len() < 64 * 1024);
    b.doc.add_object(bomb);
    let small = Limits { max_decompressed_bytes: 1024 * 1024, ..limits() };
    let err = extract_bytes(b.finish(), DocKind::Pdf, "bomb.pdf", &small).unwrap_err();
    assert!(matches!(err, DocumentError::TooLarge { .. }), "{err:?}");
}
