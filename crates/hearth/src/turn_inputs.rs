//! What a user turn carries besides its text, as the model sees it: images (encoded by the
//! model's vision tower, the encodings kept on disk) and documents (their extracted text), put
//! into the engine's chat prompt.
//!
//! A user message becomes: its documents' text, each named by its file name, then the user's
//! own text; its images come before all of that, as Gemma 3's template places them. The store
//! keeps only what the user typed and the files; the model's view is rebuilt from them at every
//! turn, so an earlier turn's image or document is still seen by a follow-up question.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use engine::chat_template::{ChatMessage, Role as EngineRole};
use engine::session::{Engine, Session};
use engine::vision::preprocess::{self, ImageLimits, PanScan};
use engine::vision::{PromptImage, VisionEncoder};

use crate::chat::ChatError;
use crate::store::{sha256_hex, Attachment, AttachmentKind, Message, MessageState, NewAttachment};

/// Part of the disk cache's key: change it when preprocessing or the encoding's layout changes.
const EMBEDDING_CACHE_VERSION: u32 = 1;

/// First bytes of a cached encoding file.
const EMBEDDING_MAGIC: &[u8; 4] = b"HEMB";

/// A loaded vision tower (the mmproj paired with the text model) and the disk cache of its
/// encodings: `data_dir/cache/image-embeddings/<mmproj identity>/<image sha256>.emb`; with
/// Pan & Scan, each crop as `<image sha256>-<rule>-<i>.emb` and the image's number of crops as
/// `<image sha256>-<rule>.crops`, `<rule>` naming the crop rule's parameters ([`pan_scan_tag`])
/// so that crops made by another rule are never reused.
pub struct Vision {
    encoder: VisionEncoder,
    cache_dir: PathBuf,
    /// How many images this tower has encoded (cache misses), for tests and logs.
    encodes: AtomicUsize,
}

impl std::fmt::Debug for Vision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vision").field("cache_dir", &self.cache_dir).field("encodes", &self.encodes).finish()
    }
}

/// Why a vision tower could not be loaded with its text model.
#[derive(Debug, thiserror::Error)]
pub enum VisionLoadError {
    #[error("cannot read the vision projector {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the vision projector {path}: {source}")]
    Engine { path: PathBuf, source: engine::EngineError },
}

impl Vision {
    /// Loads the mmproj at `mmproj` for `engine` (refused unless it is that model's pair);
    /// encodings are cached under `data_dir`.
    pub fn load(mmproj: &Path, engine: &Engine, data_dir: &Path) -> Result<Self, VisionLoadError> {
        let engine_err = |source| VisionLoadError::Engine { path: mmproj.to_path_buf(), source };
        let encoder = VisionEncoder::load(mmproj, engine.device()).map_err(engine_err)?;
        encoder.check_text_model(engine.config()).map_err(engine_err)?;
        let identity =
            mmproj_identity(mmproj).map_err(|source| VisionLoadError::Io { path: mmproj.to_path_buf(), source })?;
        let cache_dir = data_dir.join("cache").join("image-embeddings").join(identity);
        Ok(Self { encoder, cache_dir, encodes: AtomicUsize::new(0) })
    }

    /// Soft tokens one image takes in the prompt.
    pub fn tokens_per_image(&self) -> usize {
        self.encoder.config().tokens_per_image()
    }

    /// Images encoded so far (each a cache miss).
    pub fn encodes(&self) -> usize {
        self.encodes.load(Ordering::Relaxed)
    }

    /// The image whose bytes have sha256 `sha` as the prompt takes it: the whole image, then,
    /// with `crops` = (rule, n), its n Pan & Scan crops in the rule's order (what the reference
    /// processor gives the encoder). Each comes from the disk cache or is encoded (and then
    /// cached); the image is read and decoded at most once, and only on a miss.
    fn image_group(
        &self,
        engine: &Engine,
        sha: &str,
        file_name: &str,
        bytes: &mut dyn FnMut() -> Result<Vec<u8>, ChatError>,
        crops: Option<(&PanScan, usize)>,
    ) -> Result<Vec<PromptImage>, ChatError> {
        let mut keys = vec![sha.to_string()];
        if let Some((rule, n)) = crops {
            keys.extend((0..n).map(|i| crop_key(sha, rule, i)));
        }
        let mut whole: Option<image::RgbImage> = None;
        let mut cut: Option<Vec<image::RgbImage>> = None;
        let mut out = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if let Some(image) = self.cached(engine, key)? {
                out.push(image);
                continue;
            }
            if whole.is_none() {
                let bytes = bytes()?;
                let rgb = preprocess::decode(&bytes, &ImageLimits::default())
                    .map_err(|source| ChatError::Image { file: file_name.to_string(), source })?;
                whole = Some(rgb);
            }
            let Some(img) = whole.as_ref() else { continue };
            let source = match (i, crops) {
                (0, _) | (_, None) => img,
                (_, Some((rule, _))) => {
                    let all = cut.get_or_insert_with(|| preprocess::pan_and_scan_crops(img, rule));
                    // The count came from a `.crops` file that disagrees with the image: the
                    // rule's count is the truth, and the prompt was laid out with the other.
                    all.get(i - 1).ok_or_else(|| {
                        ChatError::InvalidMessage(format!(
                            "{file_name} has {} Pan & Scan crops, not {}",
                            all.len(),
                            keys.len() - 1
                        ))
                    })?
                }
            };
            let what = if i == 0 { file_name.to_string() } else { format!("{file_name} (crop {i})") };
            out.push(self.encode_and_keep(engine, key, &what, source)?);
        }
        Ok(out)
    }

    /// The cached encoding named `key`, if there is a readable one.
    fn cached(&self, engine: &Engine, key: &str) -> Result<Option<PromptImage>, ChatError> {
        let Some((rows, cols, data)) = read_embeddings(&self.cache_dir.join(format!("{key}.emb"))) else {
            return Ok(None);
        };
        let embeddings =
            candle_core::Tensor::from_vec(data, (rows, cols), engine.device()).map_err(engine::EngineError::from)?;
        Ok(Some(PromptImage { key: key.to_string(), embeddings }))
    }

    /// Encodes `img` and keeps the encoding on disk under `key`.
    fn encode_and_keep(
        &self,
        engine: &Engine,
        key: &str,
        what: &str,
        img: &image::RgbImage,
    ) -> Result<PromptImage, ChatError> {
        let pixels = preprocess::pixel_values(img, self.encoder.config().image_size as u32);
        log::info!("encoding image {what} ({key})");
        let embeddings = engine.install(|| self.encoder.encode(&pixels))?;
        self.encodes.fetch_add(1, Ordering::Relaxed);
        let image = PromptImage { key: key.to_string(), embeddings };
        let path = self.cache_dir.join(format!("{key}.emb"));
        match embedding_rows(&image.embeddings) {
            Ok((rows, cols, data)) => {
                // A cache that cannot be written only costs the next turn an encoder run.
                if let Err(e) = write_embeddings(&path, rows, cols, &data) {
                    log::warn!("cannot keep the encoding of {what} in {}: {e}", path.display());
                }
            }
            Err(e) => log::warn!("cannot read back the encoding of {what}: {e}"),
        }
        Ok(image)
    }

    /// How many crops `rule` cuts the image with sha256 `sha` into: from the disk cache, or by
    /// decoding `bytes()` (upright, as it is encoded) and then cached.
    fn crop_count(
        &self,
        sha: &str,
        file_name: &str,
        bytes: &mut dyn FnMut() -> Result<Vec<u8>, ChatError>,
        rule: &PanScan,
    ) -> Result<usize, ChatError> {
        if let Some(n) = self.known_crop_count(sha, rule) {
            return Ok(n);
        }
        let bytes = bytes()?;
        let rgb = preprocess::decode(&bytes, &ImageLimits::default())
            .map_err(|source| ChatError::Image { file: file_name.to_string(), source })?;
        let n = rule.crop_boxes(rgb.width(), rgb.height()).len();
        let path = self.crop_count_path(sha, rule);
        if let Err(e) = write_atomically(&path, n.to_string().as_bytes()) {
            log::warn!("cannot keep the crop count of {file_name} in {}: {e}", path.display());
        }
        Ok(n)
    }

    /// The crop count cached by [`Vision::crop_count`], without reading the image.
    fn known_crop_count(&self, sha: &str, rule: &PanScan) -> Option<usize> {
        std::fs::read_to_string(self.crop_count_path(sha, rule)).ok()?.trim().parse().ok()
    }

    fn crop_count_path(&self, sha: &str, rule: &PanScan) -> PathBuf {
        self.cache_dir.join(format!("{sha}-{}.crops", pan_scan_tag(rule)))
    }
}

/// A crop rule's parameters as part of a cache key (`ps256x4r1.2`).
fn pan_scan_tag(rule: &PanScan) -> String {
    format!("ps{}x{}r{}", rule.min_crop_size, rule.max_crops, rule.min_ratio_to_activate)
}

/// The cache key (and prompt image key) of crop `i` of the image with sha256 `sha`.
fn crop_key(sha: &str, rule: &PanScan, i: usize) -> String {
    format!("{sha}-{}-{i}", pan_scan_tag(rule))
}

/// An encoding as plain f32 rows: (rows, columns, values).
fn embedding_rows(t: &candle_core::Tensor) -> candle_core::Result<(usize, usize, Vec<f32>)> {
    let (rows, cols) = t.dims2()?;
    Ok((rows, cols, t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?))
}

/// Names an mmproj file for the cache: its canonical path, size and modification time (hashing
/// the file itself would read close to a gigabyte at every load). A replaced file gets a new
/// identity, so stale encodings are never used.
fn mmproj_identity(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let canonical = std::fs::canonicalize(path)?;
    let mtime =
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let key = format!("v{EMBEDDING_CACHE_VERSION}\n{}\n{}\n{mtime}", canonical.display(), meta.len());
    Ok(sha256_hex(key.as_bytes())[..32].to_string())
}

/// `HEMB`, rows and columns (u32 little-endian), then the f32 values little-endian. `None` for
/// a missing, short or foreign file (it is encoded again).
fn read_embeddings(path: &Path) -> Option<(usize, usize, Vec<f32>)> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).ok()?;
    if buf.len() < 12 || &buf[..4] != EMBEDDING_MAGIC {
        return None;
    }
    let rows = u32::from_le_bytes(buf[4..8].try_into().ok()?) as usize;
    let cols = u32::from_le_bytes(buf[8..12].try_into().ok()?) as usize;
    let body = &buf[12..];
    if body.len() != rows.checked_mul(cols)?.checked_mul(4)? {
        return None;
    }
    Some((rows, cols, body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}

/// Written to a temporary name and renamed, so a crash never leaves half an encoding.
fn write_embeddings(path: &Path, rows: usize, cols: usize, data: &[f32]) -> std::io::Result<()> {
    let dim = |n: usize| u32::try_from(n).map_err(std::io::Error::other);
    let mut body = Vec::with_capacity(12 + data.len() * 4);
    body.extend_from_slice(EMBEDDING_MAGIC);
    body.extend_from_slice(&dim(rows)?.to_le_bytes());
    body.extend_from_slice(&dim(cols)?.to_le_bytes());
    for v in data {
        body.extend_from_slice(&v.to_le_bytes());
    }
    write_atomically(path, &body)
}

/// `body` written to a temporary name beside `path` and renamed over it.
fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.flush()?;
    }
    std::fs::rename(&tmp, path)
}

/// A file of a user message: one being sent now, or one already stored.
#[derive(Clone, Copy)]
pub enum TurnFile<'a> {
    New(&'a NewAttachment),
    Stored(&'a Attachment),
}

impl TurnFile<'_> {
    pub fn is_image(&self) -> bool {
        self.kind() == AttachmentKind::Image
    }

    fn kind(&self) -> AttachmentKind {
        match self {
            TurnFile::New(a) => a.kind,
            TurnFile::Stored(a) => a.kind,
        }
    }

    fn file_name(&self) -> &str {
        match self {
            TurnFile::New(a) => &a.file_name,
            TurnFile::Stored(a) => &a.file_name,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            TurnFile::New(a) => a.extracted_text.as_deref(),
            TurnFile::Stored(a) => a.extracted_text.as_deref(),
        }
    }
}

/// Reads a stored attachment's bytes (the store is async; the caller knows how to reach it).
pub type ReadStored<'a> = dyn FnMut(&Attachment) -> Result<Vec<u8>, ChatError> + 'a;

/// A user message's text as the model reads it: each document's text named by its file name,
/// then what the user typed. Documents without text (not extracted) add nothing.
pub fn user_content<'a>(text: &str, files: impl IntoIterator<Item = TurnFile<'a>>) -> String {
    let mut out = String::new();
    for f in files.into_iter().filter(|f| f.kind() == AttachmentKind::Document) {
        if let Some(doc) = f.text().filter(|t| !t.trim().is_empty()) {
            let name = f.file_name().replace('"', "'");
            out.push_str(&format!("<document name=\"{name}\">\n{}\n</document>\n\n", doc.trim_end()));
        }
    }
    out.push_str(text);
    out
}

/// One message of the prompt and the images that come before its text, each with its number
/// of Pan & Scan crops (0 without Pan & Scan).
struct Part<'a> {
    message: ChatMessage,
    images: Vec<(TurnFile<'a>, usize)>,
}

/// The stored history as prompt parts: the system prompt, then every message with text (partial
/// replies are kept: the user saw them), documents joined into user messages.
fn history_parts<'a>(system_prompt: Option<&str>, messages: &'a [Message]) -> Vec<Part<'a>> {
    let mut out = Vec::with_capacity(messages.len() + 2);
    if let Some(sp) = system_prompt.filter(|s| !s.trim().is_empty()) {
        out.push(Part { message: ChatMessage::new(EngineRole::System, sp), images: Vec::new() });
    }
    for m in messages {
        if m.content.is_empty() || m.state == MessageState::Error {
            continue;
        }
        let files: Vec<TurnFile<'a>> = m.attachments.iter().map(TurnFile::Stored).collect();
        let content = if m.role == crate::store::Role::User {
            user_content(&m.content, files.iter().copied())
        } else {
            m.content.clone()
        };
        let images = files.into_iter().filter(|f| f.kind() == AttachmentKind::Image).map(|f| (f, 0)).collect();
        out.push(Part { message: ChatMessage::new(m.role, content), images });
    }
    out
}

/// The stored history as the engine's chat messages (documents joined, images left out): what
/// [`crate::chat::history_to_chat`] gives.
pub fn history_messages(system_prompt: Option<&str>, messages: &[Message]) -> Vec<ChatMessage> {
    history_parts(system_prompt, messages).into_iter().map(|p| p.message).collect()
}

/// The prompt ids of `parts`, each image and each crop taking `per_image` soft tokens.
fn render_parts(session: &Session, parts: &[Part<'_>], per_image: usize) -> engine::Result<Vec<u32>> {
    let chat: Vec<ChatMessage> = parts.iter().map(|p| p.message.clone()).collect();
    let crops: Vec<Vec<usize>> = parts.iter().map(|p| p.images.iter().map(|&(_, n)| n).collect()).collect();
    if crops.iter().all(Vec::is_empty) {
        session.chat_prompt(&chat)
    } else {
        session.engine().chat_prompt_with_image_groups(&chat, &crops, per_image)
    }
}

/// How many tokens the stored history takes in the context, as the next turn's prompt holds it:
/// its images' soft tokens included when the model reads images (`vision`), left out otherwise
/// (as a turn leaves them out for such a model). With Pan & Scan (`pan_scan`), an image's crops
/// count once a turn has cut it (the count is cached; the images are not read here). 0 for an
/// empty history.
pub fn history_tokens(
    session: &Session,
    vision: Option<&Vision>,
    pan_scan: Option<&PanScan>,
    system_prompt: Option<&str>,
    messages: &[Message],
) -> engine::Result<usize> {
    let mut parts = history_parts(system_prompt, messages);
    if parts.is_empty() {
        return Ok(0);
    }
    match (vision, pan_scan) {
        (None, _) => parts.iter_mut().for_each(|p| p.images.clear()),
        (Some(vision), Some(rule)) => {
            for (f, n) in parts.iter_mut().flat_map(|p| p.images.iter_mut()) {
                if let TurnFile::Stored(a) = f {
                    *n = vision.known_crop_count(&a.sha256, rule).unwrap_or(0);
                }
            }
        }
        (Some(_), None) => {}
    }
    Ok(render_parts(session, &parts, vision.map_or(0, Vision::tokens_per_image))?.len())
}

/// A turn's prompt, ready for `Session::generate_with_images`.
pub struct TurnPrompt {
    pub ids: Vec<u32>,
    /// The prompt's images in order, one per image span in `ids` (with Pan & Scan, each image
    /// followed by its crops).
    pub images: Vec<PromptImage>,
}

/// The vision models of the catalog, by display name, for the refusal of an image a text-only
/// model cannot read.
fn catalog_vision_models() -> Vec<String> {
    match crate::models::catalog::Catalog::builtin() {
        Ok(c) => c.models.iter().filter(|m| m.vision).map(|m| m.display_name.clone()).collect(),
        Err(e) => {
            log::warn!("cannot read the model catalog: {e}");
            Vec::new()
        }
    }
}

/// The prompt of a turn: the history, then the user's message (`text` with `files`), dropping
/// the oldest turns (never the system prompt or the new message) until a reply has room: a
/// quarter of the context, or `max_tokens` if smaller. Refuses, before anything is stored:
/// images for a model without a vision tower (`vision` is `None`), and documents that leave no
/// room for a reply even with no history. Images in earlier turns are left out for such a model.
/// With Pan & Scan (`pan_scan`: the crop rule), every image the rule cuts, new or from the
/// history, is read as the whole image and its crops, as Gemma 3's processor lays them out; the
/// crops' soft tokens count in the room the prompt takes.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    session: &Session,
    vision: Option<&Vision>,
    pan_scan: Option<&PanScan>,
    system_prompt: Option<&str>,
    history: &[Message],
    text: &str,
    files: &[TurnFile<'_>],
    max_tokens: usize,
    read_stored: &mut ReadStored<'_>,
) -> Result<TurnPrompt, ChatError> {
    let new_images: Vec<TurnFile<'_>> = files.iter().copied().filter(|f| f.kind() == AttachmentKind::Image).collect();
    if vision.is_none() && !new_images.is_empty() {
        return Err(ChatError::ImagesUnsupported { vision_models: catalog_vision_models() });
    }
    let mut parts = history_parts(system_prompt, history);
    parts.push(Part {
        message: ChatMessage::new(EngineRole::User, user_content(text, files.iter().copied())),
        images: new_images.into_iter().map(|f| (f, 0)).collect(),
    });
    match (vision, pan_scan) {
        (None, _) => parts.iter_mut().for_each(|p| p.images.clear()),
        (Some(vision), Some(rule)) => {
            for (f, n) in parts.iter_mut().flat_map(|p| p.images.iter_mut()) {
                *n = match *f {
                    TurnFile::New(a) => {
                        vision.crop_count(&sha256_hex(&a.bytes), &a.file_name, &mut || Ok(a.bytes.clone()), rule)?
                    }
                    TurnFile::Stored(a) => vision.crop_count(&a.sha256, &a.file_name, &mut || read_stored(a), rule)?,
                };
            }
        }
        (Some(_), None) => {}
    }
    let per_image = vision.map_or(0, Vision::tokens_per_image);
    let render = |parts: &[Part<'_>]| -> Result<Vec<u32>, ChatError> { Ok(render_parts(session, parts, per_image)?) };

    let context = session.context();
    let room = max_tokens.min(context / 4).max(1);
    let first_droppable = usize::from(parts.first().is_some_and(|p| p.message.role == EngineRole::System));
    let ids = loop {
        let ids = render(&parts)?;
        if ids.len() + room <= context || parts.len() <= first_droppable + 1 {
            break ids;
        }
        parts.remove(first_droppable);
        // Gemma's template wants the first turn to be the user's.
        if parts.get(first_droppable).is_some_and(|p| p.message.role == EngineRole::Assistant)
            && parts.len() > first_droppable + 1
        {
            parts.remove(first_droppable);
        }
    };
    let documents: Vec<String> = files
        .iter()
        .filter(|f| f.kind() == AttachmentKind::Document && f.text().is_some_and(|t| !t.trim().is_empty()))
        .map(|f| f.file_name().to_string())
        .collect();
    if ids.len() + room > context && !documents.is_empty() {
        // Cutting the document would answer about part of it without saying so.
        return Err(ChatError::DocumentTooLong { files: documents, tokens: ids.len(), room, context });
    }
    // Still too long with only a plain message: generate reports the overflow clearly.

    let mut images = Vec::new();
    if let Some(vision) = vision {
        let engine = session.engine();
        for &(f, n) in parts.iter().flat_map(|p| p.images.iter()) {
            let crops = pan_scan.map(|rule| (rule, n));
            let group = match f {
                TurnFile::New(a) => vision.image_group(
                    engine,
                    &sha256_hex(&a.bytes),
                    &a.file_name,
                    &mut || Ok(a.bytes.clone()),
                    crops,
                )?,
                TurnFile::Stored(a) => {
                    vision.image_group(engine, &a.sha256, &a.file_name, &mut || read_stored(a), crops)?
                }
            };
            images.extend(group);
        }
    }
    Ok(TurnPrompt { ids, images })
}

/// The prompt of a raw completion (the API server's requests) with images: `messages` as the
/// client sent them (no history is dropped: the client chose it), `images` as (message index,
/// file bytes) in order, each placed before its message's text. Encodings share the chat
/// turns' disk cache, so a client that resends its history does not run the encoder again.
/// With Pan & Scan (`pan_scan`), images are read as chat turns read them: whole, then crops.
pub fn completion_prompt(
    session: &Session,
    vision: Option<&Vision>,
    pan_scan: Option<&PanScan>,
    messages: &[ChatMessage],
    images: &[(usize, &[u8])],
) -> Result<TurnPrompt, ChatError> {
    let Some(vision) = vision else {
        return Err(ChatError::ImagesUnsupported { vision_models: catalog_vision_models() });
    };
    // The template lays images out in message order; a stable sort keeps each message's own.
    let mut ordered: Vec<(usize, usize, &[u8])> = images.iter().enumerate().map(|(i, &(m, b))| (m, i, b)).collect();
    ordered.sort_by_key(|&(m, i, _)| (m, i));
    let name = |m: usize, i: usize| format!("image {} of messages[{m}]", i + 1);
    let mut crops: Vec<Vec<usize>> = vec![Vec::new(); messages.len()];
    for &(m, i, bytes) in &ordered {
        let n = match pan_scan {
            Some(rule) => vision.crop_count(&sha256_hex(bytes), &name(m, i), &mut || Ok(bytes.to_vec()), rule)?,
            None => 0,
        };
        match crops.get_mut(m) {
            Some(list) => list.push(n),
            None => return Err(ChatError::InvalidMessage(format!("an image names message {m}, which is not there"))),
        }
    }
    let ids = session.engine().chat_prompt_with_image_groups(messages, &crops, vision.tokens_per_image())?;
    // Before any encoder run: a prompt that cannot fit is refused at once.
    if ids.len() > session.context() {
        return Err(engine::EngineError::ContextOverflow { tokens: ids.len(), context: session.context() }.into());
    }
    let mut prompt_images = Vec::with_capacity(images.len());
    let per_message = crops.iter().flat_map(|list| list.iter().copied());
    for (&(m, i, bytes), n) in ordered.iter().zip(per_message) {
        let group = vision.image_group(
            session.engine(),
            &sha256_hex(bytes),
            &name(m, i),
            &mut || Ok(bytes.to_vec()),
            pan_scan.map(|rule| (rule, n)),
        )?;
        prompt_images.extend(group);
    }
    Ok(TurnPrompt { ids, images: prompt_images })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_come_before_the_text_named_by_file() {
        let doc = NewAttachment {
            kind: AttachmentKind::Document,
            file_name: "notes \"v2\".txt".into(),
            mime: "text/plain".into(),
            bytes: b"x".to_vec(),
            extracted_text: Some("Line one.\n".into()),
        };
        let img = NewAttachment { kind: AttachmentKind::Image, file_name: "a.png".into(), ..doc.clone() };
        let got = user_content("What is it?", [TurnFile::New(&doc), TurnFile::New(&img)]);
        assert_eq!(got, "<document name=\"notes 'v2'.txt\">\nLine one.\n</document>\n\nWhat is it?");
        assert_eq!(user_content("plain", []), "plain");
    }

    #[test]
    fn encodings_round_trip_through_the_cache_file_and_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("x.emb");
        write_embeddings(&path, 2, 3, &[1.0, -2.5, 3.0, 0.0, 5.5, f32::MIN]).unwrap();
        assert_eq!(read_embeddings(&path), Some((2, 3, vec![1.0, -2.5, 3.0, 0.0, 5.5, f32::MIN])));
        std::fs::write(&path, b"HEMB\x02\0\0\0\x03\0\0\0short").unwrap();
        assert_eq!(read_embeddings(&path), None);
        std::fs::write(&path, b"not an encoding").unwrap();
        assert_eq!(read_embeddings(&path), None);
        assert_eq!(read_embeddings(&dir.path().join("missing.emb")), None);
    }
}
