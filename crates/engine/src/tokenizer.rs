//! Text <-> token ids for Gemma 3, built from the GGUF's own SentencePiece vocabulary.
//!
//! Gemma 3 GGUFs ship no `tokenizer.json` and no merges, only pieces, scores and token types.
//! SentencePiece BPE merges the adjacent pair whose concatenation has the highest score, so a
//! `tokenizers` BPE whose merge list is "every split of a normal piece into two in-vocabulary
//! pieces, ranked by the merged piece's score" reproduces llama.cpp's ids (see
//! platform-facts.md). Building that list (513k merges for Gemma 3) is about half of the load
//! time, so `from_gguf_cached` stores it as id pairs, keyed by a hash of the vocabulary; the
//! rest is `tokenizers` building its own tables and cannot be cached.
//!
//! Control pieces (`<start_of_turn>`, `<bos>`, ...) never come out of [`Tokenizer::encode`]: they
//! are not part of the `tokenizers` model's added vocabulary and no merge produces them, so user
//! text that spells them stays text. Only [`Tokenizer::encode_prompt`] turns the control strings
//! inside template-owned [`PromptPart::Control`] parts into control ids.

use crate::chat_template::PromptPart;
use crate::{EngineError, Result};
use candle_core::quantized::gguf_file::{self, Value};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_TYPES: &str = "tokenizer.ggml.token_type";
const KEY_BOS: &str = "tokenizer.ggml.bos_token_id";
const KEY_EOS: &str = "tokenizer.ggml.eos_token_id";
const KEY_EOT: &str = "tokenizer.ggml.eot_token_id";
const KEY_UNK: &str = "tokenizer.ggml.unknown_token_id";

/// SentencePiece's stand-in for a space.
const SPACE_MARK: char = '▁';

/// Magic + format version at the head of a merges cache file; bump the version when the merge
/// construction changes so stale caches are rebuilt instead of trusted.
const CACHE_MAGIC: &[u8; 8] = b"HTKMRG02";

/// SentencePiece token types as stored in `tokenizer.ggml.token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Normal,
    Unknown,
    Control,
    /// User-defined: matched on raw text before BPE (Gemma: runs of spaces, tabs, newlines).
    UserDefined,
    Unused,
    Byte,
}

impl Kind {
    fn from_gguf(v: i32) -> Option<Self> {
        Some(match v {
            1 => Kind::Normal,
            2 => Kind::Unknown,
            3 => Kind::Control,
            4 => Kind::UserDefined,
            5 => Kind::Unused,
            6 => Kind::Byte,
            _ => return None,
        })
    }
}

/// Gemma 3 tokenizer: encode, decode, control-token lookup.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Per id, whether the piece is a control token (never produced from plain text, omitted by decode).
    control: Vec<bool>,
    /// Decoded bytes of every id, concatenated (`▁` already a space, `<0xNN>` already a byte,
    /// control pieces empty); `decoded_at[id]..decoded_at[id + 1]` is id's slice.
    decoded: Vec<u8>,
    decoded_at: Vec<u32>,
    /// Control strings recognised inside template text, grouped by first byte, longest first.
    control_by_first_byte: HashMap<u8, Vec<(Box<str>, u32)>>,
    bos: u32,
    eos: Vec<u32>,
}

/// The GGUF's vocabulary, borrowed from the metadata.
struct Vocab<'a> {
    tokens: Vec<&'a str>,
    scores: Vec<f32>,
    kinds: Vec<Kind>,
}

impl Tokenizer {
    /// Builds the tokenizer from the GGUF's own vocabulary (`tokenizer.ggml.tokens`, `.scores`,
    /// `.token_type`, bos/eos ids).
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let vocab = Vocab::read(content)?;
        let merges = build_merges(&vocab);
        Self::assemble(content, &vocab, merges)
    }

    /// Like [`Tokenizer::from_gguf`], but keeps the computed merge list in `cache_dir` (file
    /// named after a hash of the vocabulary) so the next load skips building it. A missing or
    /// unreadable cache is rebuilt; failing to write it only logs a warning, since the tokenizer
    /// itself is fine without it.
    pub fn from_gguf_cached(content: &gguf_file::Content, cache_dir: Option<&Path>) -> Result<Self> {
        let Some(dir) = cache_dir else {
            return Self::from_gguf(content);
        };
        let vocab = Vocab::read(content)?;
        let path = cache_path(dir, &vocab);
        let started = std::time::Instant::now();
        let merges = match read_merges_cache(&path, &vocab) {
            Ok(Some(merges)) => {
                log::debug!("tokenizer merges from cache {}", path.display());
                merges
            }
            outcome => {
                if let Err(reason) = outcome {
                    log::warn!("ignoring tokenizer cache {}: {reason}", path.display());
                }
                let merges = build_merges(&vocab);
                if let Err(e) = write_merges_cache(&path, &merges) {
                    log::warn!("cannot write tokenizer cache {}: {e}", path.display());
                }
                merges
            }
        };
        let tok = Self::assemble(content, &vocab, merges)?;
        log::debug!("tokenizer ready in {:?}", started.elapsed());
        Ok(tok)
    }

    fn assemble(content: &gguf_file::Content, vocab: &Vocab<'_>, merges: Vec<(u32, u32)>) -> Result<Self> {
        let n = vocab.tokens.len();
        let mut ids: tokenizers::models::bpe::Vocab = Default::default();
        ids.reserve(n);
        for (id, piece) in vocab.tokens.iter().enumerate() {
            // A repeated piece keeps its first id, as llama.cpp's text-to-token map does.
            ids.entry((*piece).to_owned()).or_insert(id as u32);
        }
        let merges: Vec<(String, String)> = merges
            .into_iter()
            .map(|(a, b)| (vocab.tokens[a as usize].to_owned(), vocab.tokens[b as usize].to_owned()))
            .collect();
        let mut builder = tokenizers::models::bpe::BPE::builder().vocab_and_merges(ids, merges).byte_fallback(true);
        // Byte fallback covers every character when all 256 byte pieces exist (Gemma's do);
        // otherwise an unknown character becomes <unk> rather than silently vanishing.
        if let Some(unk) = unknown_piece(content, vocab) {
            builder = builder.unk_token(unk.to_owned());
        }
        let bpe = builder.build().map_err(|e| EngineError::Tokenizer(format!("cannot build BPE model: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let space = tokenizers::normalizers::Replace::new(" ", SPACE_MARK.to_string())
            .map_err(|e| EngineError::Tokenizer(format!("cannot build normalizer: {e}")))?;
        inner
            .with_normalizer(Some(space))
            .map_err(|e| EngineError::Tokenizer(format!("cannot set normalizer: {e}")))?;

        let control: Vec<bool> = (0..n).map(|id| is_control_piece(vocab, id)).collect();

        // User-defined pieces (whitespace runs, HTML tags like `<b>`) match on the raw text
        // before BPE, as in llama.cpp. The image markers among them are treated as control
        // instead, so user text cannot smuggle in an image boundary.
        let raw_pieces: Vec<tokenizers::AddedToken> = (0..n)
            .filter(|&id| vocab.kinds[id] == Kind::UserDefined && !control[id])
            .map(|id| tokenizers::AddedToken::from(vocab.tokens[id], false).normalized(false))
            .collect();
        inner.add_tokens(raw_pieces).map_err(|e| EngineError::Tokenizer(format!("cannot add user pieces: {e}")))?;

        let mut decoded = Vec::with_capacity(n * 6);
        let mut decoded_at = Vec::with_capacity(n + 1);
        for (id, &is_control) in control.iter().enumerate() {
            decoded_at.push(decoded.len() as u32);
            if is_control {
                continue;
            }
            let piece = vocab.tokens[id];
            match (vocab.kinds[id], byte_piece(piece)) {
                (Kind::Byte, Some(b)) => decoded.push(b),
                _ => {
                    for c in piece.chars() {
                        let c = if c == SPACE_MARK { ' ' } else { c };
                        let mut buf = [0u8; 4];
                        decoded.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
        }
        decoded_at.push(decoded.len() as u32);
        decoded.shrink_to_fit();

        let mut control_by_first_byte: HashMap<u8, Vec<(Box<str>, u32)>> = HashMap::new();
        for id in (0..n).filter(|&id| control[id]) {
            let piece = vocab.tokens[id];
            if let Some(&first) = piece.as_bytes().first() {
                control_by_first_byte.entry(first).or_default().push((piece.into(), id as u32));
            }
        }
        for list in control_by_first_byte.values_mut() {
            // Longest first so `<unused10>` wins over a hypothetical `<unused1>` prefix.
            list.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        }

        let find = |piece: &str| vocab.tokens.iter().position(|t| *t == piece).map(|i| i as u32);
        let bos = match content.metadata.get(KEY_BOS) {
            Some(v) => meta_u32(KEY_BOS, v)?,
            None => find("<bos>").ok_or_else(|| EngineError::Metadata {
                key: KEY_BOS.into(),
                reason: "missing and the vocabulary has no `<bos>` piece".into(),
            })?,
        };
        check_id(KEY_BOS, bos, n)?;
        let mut eos = Vec::new();
        for key in [KEY_EOS, KEY_EOT] {
            if let Some(v) = content.metadata.get(key) {
                let id = meta_u32(key, v)?;
                check_id(key, id, n)?;
                eos.push(id);
            }
        }
        // Gemma ends a chat turn with `<end_of_turn>`; older GGUFs only list `<eos>`.
        for piece in ["<eos>", "<end_of_turn>"] {
            if let Some(id) = find(piece) {
                eos.push(id);
            }
        }
        eos.sort_unstable();
        eos.dedup();
        if eos.is_empty() {
            return Err(EngineError::Metadata {
                key: KEY_EOS.into(),
                reason: "missing and the vocabulary has no `<eos>` or `<end_of_turn>` piece".into(),
            });
        }

        Ok(Self { inner, control, decoded, decoded_at, control_by_first_byte, bos, eos })
    }

    /// Plain text to ids. Control-token strings in `text` stay text. BOS first if `add_bos`.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if add_bos {
            ids.push(self.bos);
        }
        self.encode_into(text, &mut ids)?;
        Ok(ids)
    }

    fn encode_into(&self, text: &str, ids: &mut Vec<u32>) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| EngineError::Tokenizer(format!("cannot encode text: {e}")))?;
        ids.extend_from_slice(enc.get_ids());
        Ok(())
    }

    /// Template output to ids: control strings inside `Control` parts become control ids, all
    /// other text (template text and message contents alike) is encoded as plain text. Adjacent
    /// text is encoded as one run so the ids equal those of the rendered string tokenized whole.
    /// With `add_bos`, the ids start with exactly one BOS whether or not the template emitted one.
    pub fn encode_prompt(&self, parts: &[PromptPart], add_bos: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut run = String::new();
        for part in parts {
            match part {
                PromptPart::Text(text) => run.push_str(text),
                PromptPart::Control(text) => {
                    let mut rest = text.as_str();
                    while !rest.is_empty() {
                        match self.find_control(rest) {
                            Some((at, len, id)) => {
                                run.push_str(&rest[..at]);
                                self.encode_into(&run, &mut ids)?;
                                run.clear();
                                ids.push(id);
                                rest = &rest[at + len..];
                            }
                            None => {
                                run.push_str(rest);
                                rest = "";
                            }
                        }
                    }
                }
            }
        }
        self.encode_into(&run, &mut ids)?;
        if add_bos && ids.first() != Some(&self.bos) {
            ids.insert(0, self.bos);
        }
        Ok(ids)
    }

    /// First control string in `text`: (byte offset, byte length, id).
    fn find_control(&self, text: &str) -> Option<(usize, usize, u32)> {
        let bytes = text.as_bytes();
        for (at, b) in bytes.iter().enumerate() {
            let Some(candidates) = self.control_by_first_byte.get(b) else {
                continue;
            };
            for (piece, id) in candidates {
                if bytes[at..].starts_with(piece.as_bytes()) {
                    return Some((at, piece.len(), *id));
                }
            }
        }
        None
    }

    /// Ids to text; control tokens are omitted, invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.decoded_bytes(id).ok_or_else(|| {
                EngineError::Tokenizer(format!(
                    "token id {id} is outside the vocabulary of {} pieces",
                    self.vocab_size()
                ))
            })?);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn decoded_bytes(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        let start = *self.decoded_at.get(i)? as usize;
        let end = *self.decoded_at.get(i + 1)? as usize;
        Some(&self.decoded[start..end])
    }

    pub fn bos_id(&self) -> u32 {
        self.bos
    }

    /// Ids that end generation: `<eos>` and `<end_of_turn>` for Gemma 3, plus whatever the GGUF names.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// The id of a piece exactly as spelled in the vocabulary (`"<start_of_turn>"`, `"▁the"`).
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        self.inner.token_to_id(piece)
    }

    /// The piece of an id exactly as spelled in the vocabulary.
    pub fn piece(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.control.len()
    }

    /// Whether `id` is a control token (`<bos>`, `<start_of_turn>`, `<start_of_image>`, unused slots...).
    /// User-defined pieces such as whitespace runs and `<b>` are not.
    pub fn is_control(&self, id: u32) -> bool {
        self.control.get(id as usize).copied().unwrap_or(false)
    }
}

/// Gemma's image markers. The GGUF lists them as user-defined (plain text in llama.cpp), but
/// the model gives them special attention, so only the engine may insert them.
const IMAGE_MARKERS: [&str; 3] = ["<start_of_image>", "<end_of_image>", "<image_soft_token>"];

/// Control for our purposes: SentencePiece control/unknown/unused pieces and the image markers.
fn is_control_piece(vocab: &Vocab<'_>, id: usize) -> bool {
    match vocab.kinds[id] {
        Kind::Control | Kind::Unknown | Kind::Unused => true,
        Kind::UserDefined => IMAGE_MARKERS.contains(&vocab.tokens[id]),
        Kind::Normal | Kind::Byte => false,
    }
}

/// The piece named by `tokenizer.ggml.unknown_token_id`, else the first piece of unknown type.
fn unknown_piece<'a>(content: &gguf_file::Content, vocab: &Vocab<'a>) -> Option<&'a str> {
    let from_meta = content
        .metadata
        .get(KEY_UNK)
        .and_then(|v| meta_u32(KEY_UNK, v).ok())
        .and_then(|id| vocab.tokens.get(id as usize).copied());
    from_meta.or_else(|| {
        let id = vocab.kinds.iter().position(|k| *k == Kind::Unknown)?;
        Some(vocab.tokens[id])
    })
}

/// `<0xNN>` -> NN.
fn byte_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

impl<'a> Vocab<'a> {
    fn read(content: &'a gguf_file::Content) -> Result<Self> {
        if let Some(v) = content.metadata.get(KEY_MODEL) {
            let model = v
                .to_string()
                .map_err(|e| EngineError::Metadata { key: KEY_MODEL.into(), reason: format!("not a string: {e}") })?;
            if model != "llama" {
                return Err(EngineError::Tokenizer(format!(
                    "unsupported tokenizer model `{model}` (Gemma uses SentencePiece, `llama`)"
                )));
            }
        }
        let tokens = meta_array(content, KEY_TOKENS)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(EngineError::Metadata {
                    key: KEY_TOKENS.into(),
                    reason: format!("entry {i} is {:?}, not a string", other.value_type()),
                }),
            })
            .collect::<Result<Vec<&str>>>()?;
        if tokens.is_empty() {
            return Err(EngineError::Metadata { key: KEY_TOKENS.into(), reason: "empty vocabulary".into() });
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(EngineError::Metadata {
                key: KEY_TOKENS.into(),
                reason: format!("{} pieces do not fit 32-bit ids", tokens.len()),
            });
        }
        let scores = meta_array(content, KEY_SCORES)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.to_f32().map_err(|_| EngineError::Metadata {
                    key: KEY_SCORES.into(),
                    reason: format!("entry {i} is {:?}, not f32", v.value_type()),
                })
            })
            .collect::<Result<Vec<f32>>>()?;
        let kinds = meta_array(content, KEY_TYPES)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let raw = v.to_i32().map_err(|_| EngineError::Metadata {
                    key: KEY_TYPES.into(),
                    reason: format!("entry {i} is {:?}, not i32", v.value_type()),
                })?;
                Kind::from_gguf(raw).ok_or_else(|| EngineError::Metadata {
                    key: KEY_TYPES.into(),
                    reason: format!("entry {i} has unknown token type {raw}"),
                })
            })
            .collect::<Result<Vec<Kind>>>()?;
        for (key, len) in [(KEY_SCORES, scores.len()), (KEY_TYPES, kinds.len())] {
            if len != tokens.len() {
                return Err(EngineError::Metadata {
                    key: key.into(),
                    reason: format!("{len} entries for {} tokens", tokens.len()),
                });
            }
        }
        Ok(Self { tokens, scores, kinds })
    }

    /// FNV-1a over every piece, score and type: names the cache file, so any vocabulary change
    /// (or another model) misses the cache instead of loading wrong merges.
    fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(&(self.tokens.len() as u64).to_le_bytes());
        for ((t, s), k) in self.tokens.iter().zip(&self.scores).zip(&self.kinds) {
            feed(&(t.len() as u64).to_le_bytes());
            feed(t.as_bytes());
            feed(&s.to_bits().to_le_bytes());
            feed(&[*k as u8]);
        }
        h
    }
}

/// Every split of a normal piece into two in-vocabulary pieces, ranked by the merged piece's
/// score (highest first; ties by id so the order is reproducible), as (left id, right id).
fn build_merges(vocab: &Vocab<'_>) -> Vec<(u32, u32)> {
    let mut lookup: HashMap<&str, u32, BuildHasherDefault<FxHasher>> =
        HashMap::with_capacity_and_hasher(vocab.tokens.len(), Default::default());
    for (id, piece) in vocab.tokens.iter().enumerate() {
        lookup.entry(*piece).or_insert(id as u32);
    }
    // (merged id, left id, right id). Sequential on purpose: rayon here saved little on two
    // cores and its per-thread allocator arenas kept ~30 MB more resident.
    let mut found: Vec<(u32, u32, u32)> = Vec::new();
    for (id, piece) in vocab.tokens.iter().enumerate() {
        if vocab.kinds[id] != Kind::Normal || lookup.get(piece) != Some(&(id as u32)) {
            continue;
        }
        for (at, _) in piece.char_indices().skip(1) {
            if let (Some(&l), Some(&r)) = (lookup.get(&piece[..at]), lookup.get(&piece[at..])) {
                found.push((id as u32, l, r));
            }
        }
    }
    found.sort_unstable_by(|a, b| {
        let (sa, sb) = (vocab.scores[a.0 as usize], vocab.scores[b.0 as usize]);
        sb.total_cmp(&sa).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1))
    });
    found.into_iter().map(|(_, l, r)| (l, r)).collect()
}

/// rustc's Fx hash: a few cycles per word instead of SipHash's dozens. Building the merges does
/// millions of lookups of short pieces from the model's own vocabulary, where flooding
/// resistance buys nothing.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn cache_path(dir: &Path, vocab: &Vocab<'_>) -> PathBuf {
    dir.join(format!("gemma-merges-{:016x}.bin", vocab.fingerprint()))
}

/// Ok(None): no cache yet. Err: a cache file that cannot be trusted.
fn read_merges_cache(path: &Path, vocab: &Vocab<'_>) -> std::result::Result<Option<Vec<(u32, u32)>>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let rest = bytes.strip_prefix(CACHE_MAGIC.as_slice()).ok_or("not a merges cache (bad header)")?;
    let (count, rest) = take_u64(rest).ok_or("truncated header")?;
    let (checksum, body) = take_u64(rest).ok_or("truncated header")?;
    if Some(body.len() as u64) != count.checked_mul(8) {
        return Err(format!("{} bytes for {count} merges", body.len()));
    }
    if fnv1a(body) != checksum {
        return Err("checksum mismatch".into());
    }
    let n = vocab.tokens.len() as u32;
    let mut merges = Vec::with_capacity(body.len() / 8);
    for pair in body.chunks_exact(8) {
        let l = u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]);
        let r = u32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]);
        if l >= n || r >= n {
            return Err(format!("merge ({l}, {r}) is outside the vocabulary"));
        }
        merges.push((l, r));
    }
    Ok(Some(merges))
}

fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Layout: magic, merge count, FNV-1a of the body, then (left, right) u32 pairs. Written to a
/// temporary file unique to this process and call, then renamed, so a concurrent reader sees
/// either no cache or a whole one (and the count and checksum catch anything else).
fn write_merges_cache(path: &Path, merges: &[(u32, u32)]) -> std::io::Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let nth = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{nth}", std::process::id()));
    let mut body = Vec::with_capacity(merges.len() * 8);
    for (l, r) in merges {
        body.extend_from_slice(&l.to_le_bytes());
        body.extend_from_slice(&r.to_le_bytes());
    }
    let mut buf = Vec::with_capacity(CACHE_MAGIC.len() + 16 + body.len());
    buf.extend_from_slice(CACHE_MAGIC);
    buf.extend_from_slice(&(merges.len() as u64).to_le_bytes());
    buf.extend_from_slice(&fnv1a(&body).to_le_bytes());
    buf.extend_from_slice(&body);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn meta_array<'a>(content: &'a gguf_file::Content, key: &str) -> Result<&'a Vec<Value>> {
    let v = content.metadata.get(key).ok_or_else(|| EngineError::Metadata {
        key: key.into(),
        reason: "missing (the GGUF carries no SentencePiece vocabulary)".into(),
    })?;
    v.to_vec().map_err(|_| EngineError::Metadata {
        key: key.into(),
        reason: format!("is {:?}, not an array", v.value_type()),
    })
}

fn meta_u32(key: &str, v: &Value) -> Result<u32> {
    match v {
        Value::U32(x) => Ok(*x),
        Value::I32(x) if *x >= 0 => Ok(*x as u32),
        Value::U64(x) if *x <= u32::MAX as u64 => Ok(*x as u32),
        other => Err(EngineError::Metadata { key: key.into(), reason: format!("{other:?} is not a token id") }),
    }
}

fn check_id(key: &str, id: u32, vocab_size: usize) -> Result<()> {
    if (id as usize) < vocab_size {
        Ok(())
    } else {
        Err(EngineError::Metadata {
            key: key.into(),
            reason: format!("token id {id} is outside the vocabulary of {vocab_size} pieces"),
        })
    }
}

/// Turns generated ids into text as they arrive, emitting only whole UTF-8 characters: a
/// character split across byte-fallback tokens (`<0xEC><0x95><0x88>`) is held back until its last
/// byte arrives. Control tokens emit nothing.
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    pub fn new(tok: &'a Tokenizer) -> Self {
        Self { tok, pending: Vec::new() }
    }

    /// Text completed by `id`, if any. An id outside the vocabulary emits nothing (and is logged):
    /// the sampler only produces valid ids, so this is a caller bug, not a user error.
    pub fn push(&mut self, id: u32) -> Option<String> {
        match self.tok.decoded_bytes(id) {
            Some(bytes) => self.pending.extend_from_slice(bytes),
            None => {
                log::warn!("stream decoder: token id {id} is outside the vocabulary");
                return None;
            }
        }
        let mut out = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = start + e.valid_up_to();
                    // Safe to unwrap-free: the prefix was just validated.
                    out.push_str(&String::from_utf8_lossy(&self.pending[start..valid]));
                    match e.error_len() {
                        // Bytes that can never become a character: replace and move on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            start = valid + bad;
                        }
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            start = valid;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        (!out.is_empty()).then_some(out)
    }

    /// Whatever is still held back (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(out)
    }
}
