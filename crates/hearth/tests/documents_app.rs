//! What the desktop app asks of documents and images: a document's card (without a model, with
//! a file that cannot be read, with the real 270M model loaded: the plan for its context), a
//! summary run on the loaded model saved as a conversation (and a cancelled one saving nothing),
//! pasted images kept under the data folder, and thumbnails as data: URLs.

mod support;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use hearth::documents::app::{self, SummaryEvent};
use hearth::documents::plan::Mode;
use hearth::documents::DocKind;
use hearth::error::ErrorCode;
use hearth::images::{self, PasteError, PASTE_MAX_BYTES};
use hearth::runtime::{ModelPhase, Runtime};
use hearth::store::{Role, Store};
use support::runtime::Fixture;

fn image_fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A runtime with no model over a fresh data folder.
fn bare() -> (tokio::runtime::Runtime, tempfile::TempDir, Runtime) {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = tokio.block_on(Store::open(dir.path())).unwrap();
    let runtime = Runtime::new(store, dir.path().to_path_buf(), tokio.handle().clone());
    (tokio, dir, runtime)
}

/// The fixture's runtime with the test model loaded at a 1024-token context.
fn loaded() -> Fixture {
    let f = Fixture::new(32);
    f.tokio
        .block_on(hearth::app_api::AppSettings::update(&f.store, &serde_json::json!({"contextSize": 1024})))
        .unwrap();
    f.load().unwrap();
    f
}

#[test]
fn without_a_model_the_card_has_the_document_but_no_plan() {
    let (tokio, dir, runtime) = bare();
    let path = dir.path().join("notes.md");
    std::fs::write(&path, "# Notes\n\nThe river rose two metres in March.").unwrap();
    let card = tokio.block_on(app::describe(&runtime, path.clone()));
    assert_eq!(card.name, "notes.md");
    assert_eq!(card.size_bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(card.kind, Some(DocKind::Markdown));
    assert!(card.chars.unwrap() > 20);
    assert_eq!(card.model, ModelPhase::None);
    assert_eq!((card.tokens, card.plan.as_ref(), card.error.as_ref()), (None, None, None));
    // The text behind "View text" is the extracted text.
    let doc = tokio.block_on(app::document_text(&runtime, path)).unwrap();
    assert!(doc.text.contains("two metres"), "{}", doc.text);
    // A summary needs a model.
    let err = tokio
        .block_on(app::summarize(&runtime, vec![dir.path().join("notes.md")], Arc::new(AtomicBool::new(false)), |_| {}))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NoModel);
}

#[test]
fn a_file_that_cannot_be_read_has_its_typed_error_on_the_card() {
    let (tokio, dir, runtime) = bare();
    let blank = dir.path().join("blank.txt");
    std::fs::write(&blank, "   \n\n  ").unwrap();
    let binary = dir.path().join("data.txt");
    std::fs::write(&binary, [0u8, 159, 146, 150, 0, 1, 2, 3, 0, 0, 255, 254].repeat(50)).unwrap();
    let missing = dir.path().join("gone.pdf");
    for (path, code) in
        [(blank, ErrorCode::DocumentNoText), (binary, ErrorCode::DocumentUnreadable), (missing, ErrorCode::NotFound)]
    {
        let card = tokio.block_on(app::describe(&runtime, path.clone()));
        let err = card.error.unwrap_or_else(|| panic!("{} has no error", path.display()));
        assert_eq!(err.code, code, "{}: {}", path.display(), err.message);
        assert_eq!((card.kind, card.plan), (None, None));
    }
}

#[test]
fn with_the_model_loaded_the_card_plans_for_its_context_and_the_summary_is_saved() {
    let f = loaded();
    let short = f.dir.path().join("harvest.txt");
    std::fs::write(&short, "The harvest in the valley was 40 tonnes. The weather was mild and dry.").unwrap();
    let long = f.dir.path().join("long.txt");
    let text: String = (0..80).map(|i| format!("Paragraph {i}: the harvest was {} tonnes.\n\n", i * 3)).collect();
    std::fs::write(&long, text).unwrap();

    let card = f.tokio.block_on(app::describe(&f.runtime, short.clone()));
    assert_eq!(card.model, ModelPhase::Ready);
    assert!(card.error.is_none(), "{:?}", card.error);
    let plan = card.plan.unwrap();
    assert_eq!(plan.mode, Mode::Whole);
    assert_eq!(plan.context, 1024, "the loaded model's context, not another");
    assert!(card.tokens.unwrap() > 10);
    assert!(plan.memory_bytes > plan.kv_bytes && plan.kv_bytes > 0);
    // No reply has measured a prompt speed yet.
    assert_eq!(plan.seconds, None);

    let card = f.tokio.block_on(app::describe(&f.runtime, long));
    let plan = card.plan.unwrap();
    assert_eq!(plan.mode, Mode::MapReduce);
    assert!(plan.chunks >= 2);
    assert_eq!(plan.context, 1024);

    // Cancelled before the first step: nothing is saved.
    let cut = f
        .tokio
        .block_on(app::summarize(&f.runtime, vec![short.clone()], Arc::new(AtomicBool::new(true)), |_| {}))
        .unwrap();
    assert!(cut.cancelled);
    assert_eq!(cut.conversation_id, None);
    assert!(f.tokio.block_on(f.store.list_conversations(&Default::default())).unwrap().items.is_empty());

    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let done = f
        .tokio
        .block_on(app::summarize(&f.runtime, vec![short], Arc::new(AtomicBool::new(false)), move |e| {
            sink.lock().unwrap().push(e)
        }))
        .unwrap();
    assert!(!done.cancelled);
    assert_eq!(done.mode, Mode::Whole);
    let events = events.lock().unwrap();
    let progress: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SummaryEvent::Progress(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(progress.first().map(|p| p.tokens_read), Some(0), "a first report before anything is read");
    let last = progress.last().unwrap();
    assert_eq!(last.tokens_read, last.tokens_total);
    assert_eq!(last.seconds_left, Some(0.0));
    assert!(events.iter().any(|e| matches!(e, SummaryEvent::Step { resumed: false, .. })));

    // Saved: the user's request with the document attached (its text with it), then the summary.
    let id = hearth::error::parse_id(done.conversation_id.as_deref().unwrap()).unwrap();
    let messages = f.tokio.block_on(f.store.messages(id)).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].role, Role::User);
    assert_eq!(messages[0].attachments.len(), 1);
    assert_eq!(messages[0].attachments[0].file_name, "harvest.txt");
    assert!(messages[0].attachments[0].extracted_text.as_deref().unwrap().contains("40 tonnes"));
    assert_eq!(messages[1].role, Role::Assistant);
    assert_eq!(messages[1].content, done.summary);
    // The history's "view text" on that attachment gives the stored text.
    let stored = f.tokio.block_on(app::attachment_text(&f.runtime, messages[0].attachments[0].id)).unwrap();
    assert!(stored.text.contains("40 tonnes"), "{}", stored.text);
    assert_eq!(stored.kind, DocKind::Text);
}

#[test]
fn pasted_images_are_kept_under_the_data_folder_with_a_made_up_name() {
    let dir = tempfile::tempdir().unwrap();
    let png = image_fixture("gradient.png");
    let t = 1_795_782_310_000; // 2026-11-27T12:25:10Z
    let path = images::save_pasted(dir.path(), &png, t).unwrap();
    assert_eq!(path.parent().unwrap(), dir.path().join("pasted"));
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("pasted-20261127-122510-") && name.ends_with(".png"), "{name}");
    assert_eq!(std::fs::read(&path).unwrap(), png);
    // The same image again is the same file; another image another one.
    assert_eq!(images::save_pasted(dir.path(), &png, t).unwrap(), path);
    let jpg = images::save_pasted(dir.path(), &image_fixture("exif6.jpg"), t).unwrap();
    assert_ne!(jpg, path);
    assert!(jpg.to_str().unwrap().ends_with(".jpg"), "{}", jpg.display());
    // Through base64, as the window sends it.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    assert_eq!(images::save_pasted_base64(dir.path(), &b64, t).unwrap(), path);
    assert!(matches!(images::save_pasted_base64(dir.path(), "not base64!", t), Err(PasteError::Encoding(_))));
    // Not an image, or too large: refused, nothing written.
    let e = images::save_pasted(dir.path(), b"<html>not an image</html>", t).unwrap_err();
    assert!(matches!(e, PasteError::NotAnImage(_)), "{e}");
    assert_eq!(hearth::error::HearthError::from(e).code, ErrorCode::AttachmentUnreadable);
    let e = images::save_pasted(dir.path(), &vec![0u8; PASTE_MAX_BYTES as usize + 1], t).unwrap_err();
    assert!(matches!(e, PasteError::TooLarge { .. }), "{e}");
    assert_eq!(hearth::error::HearthError::from(e).code, ErrorCode::AttachmentTooLarge);
    assert_eq!(std::fs::read_dir(dir.path().join("pasted")).unwrap().count(), 2);
}

#[test]
fn thumbnails_reach_the_window_as_data_urls_and_stored_attachments_have_them_too() {
    let (tokio, dir, runtime) = bare();
    let src = dir.path().join("shrink.png");
    std::fs::write(&src, image_fixture("shrink.png")).unwrap();
    let url = images::file_thumbnail_data_url(dir.path(), &src).unwrap();
    let b64 = url.strip_prefix("data:image/png;base64,").unwrap_or_else(|| panic!("{}", &url[..40]));
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (256, 188));
    // Cached by content under the data folder.
    assert_eq!(std::fs::read_dir(images::thumbnail_dir(dir.path())).unwrap().count(), 1);
    // Not an image: the attachment error, not a crash.
    let txt = dir.path().join("fake.png");
    std::fs::write(&txt, "hello").unwrap();
    assert_eq!(images::file_thumbnail_data_url(dir.path(), &txt).unwrap_err().code, ErrorCode::AttachmentUnreadable);

    // A stored image attachment by id; a document has no thumbnail.
    let store = runtime.store().clone();
    let (img_id, doc_id) = tokio.block_on(async {
        let conv = store.create_conversation(&Default::default()).await.unwrap();
        let m = store
            .append_message(conv.id, &hearth::store::NewMessage::complete(Role::User, "look".to_owned()))
            .await
            .unwrap();
        let img = store.add_attachment(m.id, &hearth::store::read_attachment_file(&src).unwrap()).await.unwrap();
        let doc = hearth::store::NewAttachment {
            kind: hearth::store::AttachmentKind::Document,
            file_name: "a.txt".into(),
            mime: "text/plain".into(),
            bytes: b"text".to_vec(),
            extracted_text: None,
        };
        let doc = store.add_attachment(m.id, &doc).await.unwrap();
        (img.id, doc.id)
    });
    let stored = tokio.block_on(images::attachment_thumbnail_data_url(&store, img_id)).unwrap();
    assert_eq!(stored, url);
    let e = tokio.block_on(images::attachment_thumbnail_data_url(&store, doc_id)).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    // A document stored without its text is extracted from its bytes; an image has no text.
    assert_eq!(tokio.block_on(app::attachment_text(&runtime, doc_id)).unwrap().text, "text");
    assert_eq!(tokio.block_on(app::attachment_text(&runtime, img_id)).unwrap_err().code, ErrorCode::NotFound);
}
