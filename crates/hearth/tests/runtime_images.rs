//! Attachments reach the model in a chat turn: images through the vision tower of the tiny
//! Gemma 3 vision pair (tests/fixtures/vision), their encodings cached on disk; documents' text
//! joined into the user's turn.

mod support;

use std::path::{Path, PathBuf};

use engine::chat_template::{ChatMessage, Role as EngineRole};
use engine::kv_cache::KvDType;
use engine::session::{Engine, GenerateOptions, LoadOptions, Session};
use engine::vision::VisionMemory;
use engine::vision::{preprocess, PromptImage, VisionEncoder};
use hearth::app_api::AppSettings;
use hearth::error::ErrorCode;
use hearth::models::catalog::Catalog;
use hearth::models::fit::{self, Memory};
use hearth::models::registry;
use hearth::runtime::{ModelPhase, Runtime};
use hearth::store::{AttachmentKind, NewConversation, Store};
use support::runtime::{events, installed};

const CONTEXT: usize = 512;
const REPLY: usize = 6;

fn vision_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vision").join(name)
}

/// A runtime over a data folder with the tiny vision pair installed as `vis` (with its mmproj)
/// and as `txt` (the same text model without it); greedy, a 512-token context.
struct Fx {
    tokio: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    store: Store,
    runtime: Runtime,
}

impl Fx {
    fn new() -> Self {
        let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = tokio.block_on(Store::open(dir.path())).unwrap();
        let mut vis = installed("vis", vision_fixture("tiny-gemma3-vision.gguf"));
        vis.mmproj_path = Some(vision_fixture("tiny-gemma3-mmproj.gguf"));
        tokio.block_on(registry::insert(&store, &vis, false)).unwrap();
        tokio
            .block_on(registry::insert(&store, &installed("txt", vision_fixture("tiny-gemma3-vision.gguf")), false))
            .unwrap();
        tokio
            .block_on(AppSettings::update(
                &store,
                &serde_json::json!({"contextSize": CONTEXT, "temperature": 0.0, "seed": 1}),
            ))
            .unwrap();
        let runtime = Self::runtime_on(&tokio, &store, dir.path());
        Self { tokio, dir, store, runtime }
    }

    fn runtime_on(tokio: &tokio::runtime::Runtime, store: &Store, dir: &Path) -> Runtime {
        let runtime = Runtime::new(store.clone(), dir.to_path_buf(), tokio.handle().clone());
        runtime.set_reply_limit(REPLY);
        runtime
    }

    fn load(&self, runtime: &Runtime, id: &str) -> hearth::runtime::ModelStatus {
        self.tokio.block_on(runtime.load(id, |_| {})).unwrap()
    }

    fn conversation(&self) -> i64 {
        self.tokio.block_on(self.store.create_conversation(&NewConversation::default())).unwrap().id
    }

    /// Sends and waits for the reply.
    fn send(&self, runtime: &Runtime, conv: i64, text: &str, files: Vec<PathBuf>) -> Sent {
        let (sink, ev) = events();
        let started = self.tokio.block_on(runtime.send(conv, text.into(), files, sink)).unwrap();
        let (text, stats) = ev.done();
        Sent {
            reply: text,
            tokens: stats.tokens,
            prompt_tokens: stats.prompt_tokens.unwrap(),
            user_id: started.user_message_id.unwrap(),
            reply_id: started.assistant_message_id,
        }
    }
}

struct Sent {
    reply: String,
    tokens: u64,
    prompt_tokens: u64,
    user_id: i64,
    reply_id: i64,
}

/// The same turn straight through the engine, as `hearth generate --image` runs it: encode the
/// image, the chat prompt with one image before the text, `generate_with_images`.
fn engine_reply(settings: &AppSettings, image: &Path, text: &str) -> (String, usize, usize) {
    engine_reply_with(settings, image, text, None, CONTEXT)
}

/// `engine_reply`, with `pan_scan` the image followed by its crops as the reference processor
/// gives them (`preprocess::encoder_inputs`) and laid out as it lays them out.
fn engine_reply_with(
    settings: &AppSettings,
    image: &Path,
    text: &str,
    pan_scan: Option<&preprocess::PanScan>,
    context: usize,
) -> (String, usize, usize) {
    let engine = Engine::load(&vision_fixture("tiny-gemma3-vision.gguf"), &LoadOptions::default()).unwrap();
    let enc = VisionEncoder::load(&vision_fixture("tiny-gemma3-mmproj.gguf"), engine.device()).unwrap();
    let bytes = std::fs::read(image).unwrap();
    let rgb = preprocess::decode(&bytes, &preprocess::ImageLimits::default()).unwrap();
    let inputs = preprocess::encoder_inputs(&rgb, pan_scan, enc.config().image_size as u32);
    let images: Vec<PromptImage> = inputs
        .iter()
        .enumerate()
        .map(|(i, pixels)| PromptImage {
            key: format!("x{i}"),
            embeddings: engine.install(|| enc.encode(pixels)).unwrap(),
        })
        .collect();
    let user = [ChatMessage::new(EngineRole::User, text)];
    let crops = vec![inputs.len() - 1];
    let prompt = engine.chat_prompt_with_image_groups(&user, &[crops], enc.config().tokens_per_image()).unwrap();
    let mut session = Session::new(engine, context).unwrap();
    let opts = GenerateOptions { max_tokens: REPLY, sampling: settings.sampling(), ..Default::default() };
    let r = session.generate_with_images(&prompt, &images, &opts, &mut |_| {}).unwrap();
    (r.text, r.ids.len(), prompt.len())
}

fn embedding_files(data_dir: &Path) -> usize {
    let root = data_dir.join("cache").join("image-embeddings");
    let Ok(dirs) = std::fs::read_dir(root) else { return 0 };
    dirs.filter_map(|d| d.ok()).filter_map(|d| std::fs::read_dir(d.path()).ok()).map(|f| f.count()).sum()
}

#[test]
fn an_image_turn_is_the_engines_image_prompt_and_is_encoded_once_across_turns_and_restarts() {
    let f = Fx::new();
    let status = f.load(&f.runtime, "vis");
    assert_eq!((status.state, status.reads_images), (ModelPhase::Ready, true));
    let image = vision_fixture("square.896.png");
    let question = "What is in this picture?";
    let conv = f.conversation();

    let first = f.send(&f.runtime, conv, question, vec![image.clone()]);
    let (reply, tokens, prompt_tokens, user_id) = (first.reply, first.tokens, first.prompt_tokens, first.user_id);
    let settings = f.tokio.block_on(AppSettings::load(&f.store)).unwrap();
    let (want, want_tokens, want_prompt) = engine_reply(&settings, &image, question);
    assert_eq!((reply.as_str(), tokens as usize, prompt_tokens as usize), (want.as_str(), want_tokens, want_prompt));
    assert_eq!(f.runtime.image_encodes(), 1, "the first turn encodes the image");
    assert_eq!(embedding_files(f.dir.path()), 1, "and keeps its encoding on disk");
    // The context meter counts the image's soft tokens too: the stored turn takes at least what
    // its prompt took (it once counted only the text, showing a third of a full context).
    let history = f.tokio.block_on(f.store.messages(conv)).unwrap();
    let in_context = f.runtime.context_tokens(None, &history, None);
    assert!(in_context >= prompt_tokens as usize, "{in_context} < {prompt_tokens}");
    let user = f.tokio.block_on(f.store.message(user_id)).unwrap();
    assert_eq!((user.content.as_str(), user.attachments.len()), (question, 1));
    assert_eq!(user.attachments[0].kind, AttachmentKind::Image);

    // A follow-up still shows the model the earlier image (its tokens are in the prompt) without
    // encoding it again; so does a regenerate of the first reply.
    let follow_prompt = f.send(&f.runtime, conv, "And its colours?", Vec::new()).prompt_tokens;
    assert!(follow_prompt > prompt_tokens, "{follow_prompt} <= {prompt_tokens}");
    let reply_id = first.reply_id;
    let (sink, ev) = events();
    f.tokio.block_on(f.runtime.regenerate(reply_id, sink)).unwrap();
    let (again, stats) = ev.done();
    assert_eq!((again.as_str(), stats.prompt_tokens), (want.as_str(), Some(want_prompt as u64)), "greedy again");
    assert_eq!(f.runtime.image_encodes(), 1, "follow-up and regenerate read the cached encoding");

    // After a restart (a fresh runtime on the same data folder) the encoder does not run either.
    f.runtime.shutdown(std::time::Duration::from_secs(5));
    let fresh = Fx::runtime_on(&f.tokio, &f.store, f.dir.path());
    f.load(&fresh, "vis");
    let (sink, ev) = events();
    f.tokio.block_on(fresh.regenerate(reply_id, sink)).unwrap();
    assert_eq!(ev.done().0, want);
    assert_eq!(fresh.image_encodes(), 0, "a fresh runtime reads the encoding from disk");

    // A different image is a miss: encoded once.
    f.send(&fresh, conv, "And this one?", vec![vision_fixture("wide.896.png")]);
    assert_eq!((fresh.image_encodes(), embedding_files(f.dir.path())), (1, 2));
}

// A vision model loads with its projector, and an image then needs the encoder's activations:
// a machine with room for the text model alone is told so before anything large is read.
#[test]
fn a_vision_model_is_refused_before_loading_when_its_projector_and_encoder_peak_do_not_fit() {
    let f = Fx::new();
    let (model, mmproj) = (vision_fixture("tiny-gemma3-vision.gguf"), vision_fixture("tiny-gemma3-mmproj.gguf"));
    let text = fit::estimate_installed("vis", &model, None, CONTEXT as u64, KvDType::default()).unwrap();
    let projector = VisionMemory::read(&mmproj).unwrap();
    let needed = text.total_bytes + projector.weight_bytes + projector.activation_peak_bytes;
    let with_ram = |available| Memory {
        total_ram: 64 << 30,
        available_ram: available,
        vram: None,
        gpu_backend: None,
        device: engine::device::report(),
    };
    // Room for the text model and the projector's weights, not for one image's activations.
    let available = text.total_bytes + projector.weight_bytes;
    f.runtime.assume_memory(with_ram(available));
    let e = f.tokio.block_on(f.runtime.load("vis", |_| {})).unwrap_err();
    assert_eq!(e.code, ErrorCode::OutOfMemory, "{e:?}");
    assert_eq!((e.details.needed, e.details.available), (Some(needed), Some(available)));
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    for part in [needed, projector.weight_bytes, projector.activation_peak_bytes, available] {
        assert!(e.message.contains(&mib(part)), "{} missing from {:?}", mib(part), e.message);
    }
    let status = f.runtime.status();
    assert_eq!((status.state, status.error.map(|e| e.code)), (ModelPhase::Error, Some(ErrorCode::OutOfMemory)));

    // The same text model without its projector fits that machine; the pair fits one with room
    // for all of it.
    assert_eq!(f.load(&f.runtime, "txt").state, ModelPhase::Ready);
    f.runtime.assume_memory(with_ram(needed));
    let status = f.load(&f.runtime, "vis");
    assert_eq!((status.state, status.reads_images), (ModelPhase::Ready, true));
}

#[test]
fn a_text_only_model_refuses_an_image_naming_the_catalogs_vision_models_and_stores_nothing() {
    let f = Fx::new();
    let status = f.load(&f.runtime, "txt");
    assert_eq!((status.state, status.reads_images), (ModelPhase::Ready, false));
    let conv = f.conversation();
    let (sink, _ev) = events();
    let e = f
        .tokio
        .block_on(f.runtime.send(conv, "What is this?".into(), vec![vision_fixture("square.png")], sink))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ImageInputUnsupported, "{e:?}");
    let vision: Vec<String> =
        Catalog::builtin().unwrap().models.into_iter().filter(|m| m.vision).map(|m| m.display_name).collect();
    assert!(!vision.is_empty());
    for name in &vision {
        assert!(e.message.contains(name.as_str()), "{name} missing from {:?}", e.message);
        assert!(e.details.model.as_deref().unwrap_or("").contains(name.as_str()));
    }
    assert!(f.tokio.block_on(f.store.messages(conv)).unwrap().is_empty(), "nothing stored");
    assert_eq!(f.runtime.image_encodes(), 0);
    // Text alone still works.
    f.send(&f.runtime, conv, "Hello", Vec::new());
}

#[test]
fn a_documents_text_joins_the_users_turn_named_by_its_file() {
    let f = Fx::new();
    f.load(&f.runtime, "txt");
    let doc = f.dir.path().join("notes.txt");
    let body = "The meeting moved to Thursday at ten. Bring the budget figures for the third quarter.";
    std::fs::write(&doc, format!("{body}\n")).unwrap();
    let question = "When is the meeting?";

    let plain = f.send(&f.runtime, f.conversation(), question, Vec::new()).prompt_tokens;
    let sent = f.send(&f.runtime, f.conversation(), question, vec![doc.clone()]);
    let (with_doc, user_id) = (sent.prompt_tokens, sent.user_id);
    let user = f.tokio.block_on(f.store.message(user_id)).unwrap();
    assert_eq!(user.content, question, "the stored message is what the user typed");
    assert_eq!(user.attachments[0].extracted_text.as_deref().map(str::trim_end), Some(body));

    // The prompt grew by exactly the document block: its text, named by the file.
    let engine = Engine::load(&vision_fixture("tiny-gemma3-vision.gguf"), &LoadOptions::default()).unwrap();
    let block = format!("<document name=\"notes.txt\">\n{body}\n</document>\n\n");
    let count = |text: &str| engine.chat_prompt(&[ChatMessage::new(EngineRole::User, text)]).unwrap().len() as u64;
    assert_eq!(count(question), plain);
    assert_eq!(count(&format!("{block}{question}")), with_doc);
    assert!(with_doc >= plain + engine.tokenizer().encode(body, false).unwrap().len() as u64 - 2);
}

#[test]
fn a_document_too_long_for_the_context_is_refused_pointing_to_summarize() {
    let f = Fx::new();
    f.load(&f.runtime, "txt");
    let doc = f.dir.path().join("long.txt");
    std::fs::write(&doc, "Every line of this report says something different about the harvest. ".repeat(200)).unwrap();
    let conv = f.conversation();
    let (sink, _ev) = events();
    let e = f.tokio.block_on(f.runtime.send(conv, "Summarize this.".into(), vec![doc], sink)).unwrap_err();
    assert_eq!(e.code, ErrorCode::DocumentTooLong, "{e:?}");
    assert!(e.message.contains("long.txt") && e.message.contains("hearth summarize"), "{}", e.message);
    assert_eq!(e.details.limit, Some(CONTEXT as u64));
    assert!(e.details.needed.unwrap() > CONTEXT as u64 / 2);
    assert!(f.tokio.block_on(f.store.messages(conv)).unwrap().is_empty(), "nothing stored");
    assert!(!f.runtime.is_generating());
}

/// Runs of image soft tokens in `ids`: one per image or crop in the prompt.
fn image_spans(engine: &Engine, ids: &[u32]) -> usize {
    let soft = engine.tokenizer().token_id(engine::vision::IMAGE_SOFT_TOKEN).unwrap();
    ids.iter().enumerate().filter(|&(i, &id)| id == soft && (i == 0 || ids[i - 1] != soft)).count()
}

#[test]
fn with_pan_and_scan_a_wide_image_is_laid_out_whole_then_its_crops_and_a_square_one_stays_whole() {
    use hearth::turn_inputs::{prepare, TurnFile, Vision};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::load(&vision_fixture("tiny-gemma3-vision.gguf"), &LoadOptions::default()).unwrap();
    let vision = Vision::load(&vision_fixture("tiny-gemma3-mmproj.gguf"), &engine, dir.path()).unwrap();
    let session = Session::new(engine.clone(), CONTEXT).unwrap();
    let rule = preprocess::PanScan::default();
    let attach = |name: &str| hearth::store::read_attachment_file(&vision_fixture(name)).unwrap();
    let (wide, square) = (attach("wide.png"), attach("square.png"));
    // wide.png is 640x360: the rule cuts it in two 320x360 halves; square.png it leaves alone.
    let rgb = preprocess::decode(&wide.bytes, &preprocess::ImageLimits::default()).unwrap();
    let crops = rule.crop_boxes(rgb.width(), rgb.height()).len();
    assert_eq!(crops, 2);
    let mut no_store = |_: &hearth::store::Attachment| -> Result<Vec<u8>, hearth::chat::ChatError> {
        panic!("nothing is stored in this test")
    };
    let turn = |pan_scan: Option<&preprocess::PanScan>,
                files: &[TurnFile<'_>],
                read: &mut hearth::turn_inputs::ReadStored<'_>| {
        prepare(&session, Some(&vision), pan_scan, None, &[], "What is it?", files, REPLY, read).unwrap()
    };

    let on = turn(Some(&rule), &[TurnFile::New(&wide), TurnFile::New(&square)], &mut no_store);
    assert_eq!(image_spans(&engine, &on.ids), 1 + crops + 1, "wide: whole and crops; square: whole");
    assert_eq!(on.images.len(), 1 + crops + 1);
    assert_eq!(vision.encodes(), 1 + crops + 1);
    let text = engine.tokenizer().decode(&on.ids).unwrap();
    let original = text.find("Here is the original image").expect("the reference's wording");
    let rest = text.find("and here are some crops to help you see better").expect("the reference's wording");
    assert!(original < rest && text.matches("original image").count() == 1, "{text}");
    // Whole image, its crops, then the next image: crops have keys of their own, by the rule.
    let sha = hearth::store::sha256_hex(&wide.bytes);
    assert_eq!(on.images[0].key, sha);
    assert!(on.images[1].key.starts_with(&sha) && on.images[1].key != on.images[2].key);
    assert!(on.images[1].key.contains("ps256x4r1.2"), "{}", on.images[1].key);
    assert_eq!(on.images[3].key, hearth::store::sha256_hex(&square.bytes));
    let per = vision.tokens_per_image();
    let layout = engine
        .chat_prompt_with_image_groups(&[ChatMessage::new(EngineRole::User, "What is it?")], &[vec![crops, 0]], per)
        .unwrap();
    assert_eq!(on.ids, layout);

    // Again: every encoding, crops included, comes from the cache.
    let again = turn(Some(&rule), &[TurnFile::New(&wide)], &mut no_store);
    assert_eq!((again.images.len(), vision.encodes()), (1 + crops, 1 + crops + 1));

    // Off, the same image is one image, laid out as before Pan & Scan existed.
    let off = turn(None, &[TurnFile::New(&wide)], &mut no_store);
    assert_eq!((image_spans(&engine, &off.ids), off.images.len()), (1, 1));
    assert!(!engine.tokenizer().decode(&off.ids).unwrap().contains("original image"));
    let plain =
        engine.chat_prompt_with_images(&[ChatMessage::new(EngineRole::User, "What is it?")], &[1], per).unwrap();
    assert_eq!(off.ids, plain);
    // The crops' soft tokens count in the prompt's length (what trimming and the context see).
    assert!(again.ids.len() >= off.ids.len() + crops * per, "{} vs {}", again.ids.len(), off.ids.len());
}

#[test]
fn the_pan_scan_setting_makes_turns_read_crops_once_and_off_changes_nothing() {
    let f = Fx::new();
    // Three images of 256 soft tokens each do not fit the fixture's 512.
    const BIG: usize = 2048;
    let on = serde_json::json!({"panScan": true, "contextSize": BIG});
    f.tokio.block_on(AppSettings::update(&f.store, &on)).unwrap();
    f.load(&f.runtime, "vis");
    let rule = preprocess::PanScan::default();
    let wide = vision_fixture("wide.png");
    let question = "What is in this picture?";
    let conv = f.conversation();

    let first = f.send(&f.runtime, conv, question, vec![wide.clone()]);
    let settings = f.tokio.block_on(AppSettings::load(&f.store)).unwrap();
    let (want, want_tokens, want_prompt) = engine_reply_with(&settings, &wide, question, Some(&rule), BIG);
    assert_eq!(
        (first.reply.as_str(), first.tokens as usize, first.prompt_tokens as usize),
        (want.as_str(), want_tokens, want_prompt),
        "the turn is the engine's whole-plus-crops prompt"
    );
    let (_, _, plain_prompt) = engine_reply_with(&settings, &wide, question, None, BIG);
    assert!(want_prompt > plain_prompt, "{want_prompt} vs {plain_prompt} without crops");
    assert_eq!(f.runtime.image_encodes(), 3, "the whole image and its two crops");
    // Three encodings and the crop count on disk.
    assert_eq!(embedding_files(f.dir.path()), 4);
    // The context meter counts the crops the turn cut.
    let history = f.tokio.block_on(f.store.messages(conv)).unwrap();
    let in_context = f.runtime.context_tokens(None, &history, Some(&rule));
    assert!(in_context >= want_prompt, "{in_context} < {want_prompt}");
    assert!(f.runtime.context_tokens(None, &history, None) < want_prompt);

    // A follow-up still shows the image with its crops, from the cache.
    let follow = f.send(&f.runtime, conv, "And its colours?", Vec::new());
    assert!(follow.prompt_tokens as usize > want_prompt);
    assert_eq!(f.runtime.image_encodes(), 3, "no encoder run for the earlier image");

    // A square image stays one image: one more encoding.
    f.send(&f.runtime, conv, "And this one?", vec![vision_fixture("square.png")]);
    assert_eq!(f.runtime.image_encodes(), 4);

    // Off: the wide image is read whole again, exactly the plain prompt.
    f.tokio.block_on(AppSettings::update(&f.store, &serde_json::json!({"panScan": false}))).unwrap();
    let off = f.send(&f.runtime, f.conversation(), question, vec![wide]);
    assert_eq!(off.prompt_tokens as usize, plain_prompt);
    assert_eq!(f.runtime.image_encodes(), 4, "the whole image's encoding is the same one");
}
