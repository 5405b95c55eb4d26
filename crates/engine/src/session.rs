//! Generation: a loaded `Engine` (weights, tokenizer, chat template) shared by `Session`s, each
//! owning a KV cache and the tokens it holds, so a follow-up turn prefills only what is new.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::config::Config;
use crate::device::{self, CpuThreads, DeviceKind, DevicePreference};
use crate::gguf::GgufFile;
use crate::kv_cache::{KvCache, KvDType};
use crate::model::{ImageAt, Logits, Model};
use crate::sampler::{Sampler, SamplingParams};
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::vision::{PromptImage, IMAGE_SOFT_TOKEN};
use crate::{EngineError, Result};

/// Prompt tokens per forward call: big enough for efficient matmuls, small enough that masks
/// and activations stay a few megabytes.
pub const PREFILL_CHUNK: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub device: DevicePreference,
    /// Where the built tokenizer is cached between runs; None builds it every time.
    pub tokenizer_cache_dir: Option<PathBuf>,
    /// CPU threads for the model's forward passes (see `Engine::set_threads`); None: the
    /// physical cores (`device::default_threads`).
    pub threads: Option<usize>,
}

/// A model ready to serve sessions.
pub struct Engine {
    path: PathBuf,
    model: Model,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    /// The threads of sessions that have not chosen their own. Behind a lock so the count can
    /// change while sessions share the engine; each forward pass takes the current pool.
    threads: RwLock<CpuThreads>,
}

impl Engine {
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Arc<Self>> {
        Self::load_with_progress(path, opts, &mut |_| {})
    }

    /// `load`, reporting the fraction done (0..=1, never decreasing) as it goes, for a progress
    /// bar: the tokenizer counts for the first `TOKENIZER_SHARE`, the weights for the rest by bytes.
    pub fn load_with_progress(path: &Path, opts: &LoadOptions, progress: &mut dyn FnMut(f32)) -> Result<Arc<Self>> {
        const TOKENIZER_SHARE: f32 = 0.05;
        let device = device::select(opts.device)?;
        let threads = CpuThreads::with_count(opts.threads)?;
        let mut gguf = GgufFile::open(path)?;
        progress(0.0);
        // Text side first, then free the vocabulary before the weights arrive: the two never
        // sit in memory together, which keeps peak RSS near the model's own size.
        let tokenizer = Tokenizer::from_gguf_cached(gguf.content(), opts.tokenizer_cache_dir.as_deref())?;
        let template = ChatTemplate::from_gguf(gguf.content())?;
        gguf.drop_tokenizer_metadata();
        progress(TOKENIZER_SHARE);
        let model = Model::from_gguf_with_progress(&gguf, &device, &mut |f| {
            progress(TOKENIZER_SHARE + (1.0 - TOKENIZER_SHARE) * f)
        })?;
        Ok(Arc::new(Self { path: path.to_owned(), model, tokenizer, template, threads: RwLock::new(threads) }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn model(&self) -> &Model {
        &self.model
    }
    pub fn config(&self) -> &Config {
        self.model.config()
    }
    pub fn device(&self) -> &Device {
        self.model.device()
    }
    /// The kind of device the model runs on.
    pub fn device_kind(&self) -> DeviceKind {
        DeviceKind::of(self.model.device())
    }

    /// The CPU threads sessions use unless they chose their own (`Session::set_threads`).
    pub fn threads(&self) -> usize {
        self.cpu_threads().count()
    }

    /// Changes the CPU thread count for this engine's sessions (those without their own count)
    /// from their next forward pass on; a pass already running finishes on the old threads.
    pub fn set_threads(&self, n: usize) -> Result<()> {
        let pool = CpuThreads::new(n)?;
        *self.threads.write().unwrap_or_else(|e| e.into_inner()) = pool;
        Ok(())
    }

    fn cpu_threads(&self) -> CpuThreads {
        // A panic elsewhere while the lock was held cannot leave a half-written pool handle.
        self.threads.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `f` on the engine's CPU threads, for callers that drive `model()` directly (the
    /// `Model` runs its parallel work on whichever rayon pool it is called from).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.cpu_threads().install(f)
    }
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The chat template applied to `messages`, ready to generate the model's turn.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let parts = self.template.render(messages, true)?;
        self.tokenizer.encode_prompt(&parts, true)
    }

    /// `chat_prompt` with `images[i]` images before message i's text, each taking
    /// `tokens_per_image` soft tokens (`VisionConfig::tokens_per_image`) for
    /// `Session::generate_with_images` to fill.
    pub fn chat_prompt_with_images(
        &self,
        messages: &[ChatMessage],
        images: &[usize],
        tokens_per_image: usize,
    ) -> Result<Vec<u32>> {
        let groups: Vec<Vec<usize>> = images.iter().map(|&n| vec![0; n]).collect();
        self.chat_prompt_with_image_groups(messages, &groups, tokens_per_image)
    }

    /// `chat_prompt_with_images` with Pan & Scan: `crops[i]` lists message i's images, each by
    /// its number of crops (`ChatTemplate::render_with_image_groups`). The prompt's image spans
    /// come in the order the reference processor gives pixel values: each image, then its crops.
    pub fn chat_prompt_with_image_groups(
        &self,
        messages: &[ChatMessage],
        crops: &[Vec<usize>],
        tokens_per_image: usize,
    ) -> Result<Vec<u32>> {
        if crops.iter().any(|g| !g.is_empty()) && self.tokenizer.token_id(IMAGE_SOFT_TOKEN).is_none() {
            return Err(EngineError::InvalidArgument(format!(
                "this model's vocabulary has no `{IMAGE_SOFT_TOKEN}`: it cannot read images"
            )));
        }
        let parts = self.template.render_with_image_groups(messages, crops, tokens_per_image, true)?;
        self.tokenizer.encode_prompt(&parts, true)
    }
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Generation ends when the text contains one of these; the reply stops before it.
    pub stop_strings: Vec<String>,
    /// Set from any thread to stop within one token.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self { max_tokens: 512, sampling: SamplingParams::default(), stop_strings: Vec::new(), cancel: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Eos,
    MaxTokens,
    StopString,
    Cancelled,
    ContextFull,
}

impl StopReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Eos => "eos",
            Self::MaxTokens => "max_tokens",
            Self::StopString => "stop_string",
            Self::Cancelled => "cancelled",
            Self::ContextFull => "context_full",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GenerationResult {
    /// Generated ids, without the end-of-turn token that stopped them.
    pub ids: Vec<u32>,
    pub text: String,
    pub stop: StopReason,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already cached and not computed again.
    pub reused_tokens: usize,
    pub prompt_tokens_per_s: f64,
    pub gen_tokens_per_s: f64,
}

/// One conversation's state on one engine.
pub struct Session {
    engine: Arc<Engine>,
    cache: KvCache,
    /// Invariant: `tokens.len() == cache.len()`, and `tokens[i]` is the token whose keys and
    /// values sit at position `i`.
    tokens: Vec<u32>,
    /// The images among the cached tokens: their positions and keys (`PromptImage::key`), so a
    /// prompt whose image differs at the same place is not served from the cache.
    images: Vec<(Range<usize>, String)>,
    /// This session's own CPU threads (`set_threads`); None: the engine's.
    threads: Option<CpuThreads>,
}

impl Session {
    /// A session of `context` positions with the default KV cache type (f16).
    pub fn new(engine: Arc<Engine>, context: usize) -> Result<Self> {
        Self::with_kv_dtype(engine, context, KvDType::default())
    }

    /// A session whose KV cache stores keys and values as `kv_dtype`.
    pub fn with_kv_dtype(engine: Arc<Engine>, context: usize, kv_dtype: KvDType) -> Result<Self> {
        let max = engine.config().context_length;
        if context > max {
            return Err(EngineError::InvalidArgument(format!(
                "context of {context} tokens exceeds the model's maximum of {max}"
            )));
        }
        let cache = engine.model().new_cache_with(context, kv_dtype)?;
        Ok(Self { engine, cache, tokens: Vec::new(), images: Vec::new(), threads: None })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
    pub fn context(&self) -> usize {
        self.cache.capacity()
    }
    /// Tokens currently cached.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
    pub fn kv_bytes(&self) -> usize {
        self.cache.bytes()
    }
    pub fn kv_dtype(&self) -> KvDType {
        self.cache.dtype()
    }
    /// The kind of device the session's model runs on.
    pub fn device_kind(&self) -> DeviceKind {
        self.engine.device_kind()
    }

    /// The CPU threads this session's forward passes run on, as the pool itself reports it.
    pub fn threads(&self) -> usize {
        let pool = self.cpu_threads();
        pool.install(rayon::current_num_threads)
    }

    /// Gives this session `n` CPU threads of its own, from its next forward pass on, whatever
    /// the engine's count (`Engine::set_threads`) is or becomes.
    pub fn set_threads(&mut self, n: usize) -> Result<()> {
        self.threads = Some(CpuThreads::new(n)?);
        Ok(())
    }

    /// Follows the engine's thread count again (after `set_threads`).
    pub fn use_engine_threads(&mut self) {
        self.threads = None;
    }

    fn cpu_threads(&self) -> CpuThreads {
        self.threads.clone().unwrap_or_else(|| self.engine.cpu_threads())
    }

    /// `Model::forward` on this session's cache, run on its CPU threads.
    fn forward(&mut self, ids: &[u32], want: Logits) -> Result<Option<Tensor>> {
        self.forward_with_images(ids, &[], want)
    }

    fn forward_with_images(&mut self, ids: &[u32], images: &[ImageAt<'_>], want: Logits) -> Result<Option<Tensor>> {
        let pool = self.cpu_threads();
        let (model, cache) = (self.engine.model(), &mut self.cache);
        pool.install(|| model.forward_with_images(ids, images, cache, want))
    }

    /// Where `prompt`'s images sit: the runs of image soft tokens, one per image of `images`,
    /// each exactly as long as its embeddings.
    fn image_spans(&self, prompt: &[u32], images: &[PromptImage]) -> Result<Vec<Range<usize>>> {
        let soft = self.engine.tokenizer().token_id(IMAGE_SOFT_TOKEN);
        let mut spans: Vec<Range<usize>> = Vec::new();
        if let Some(soft) = soft {
            for (i, &id) in prompt.iter().enumerate() {
                match spans.last_mut() {
                    Some(s) if id == soft && s.end == i => s.end = i + 1,
                    _ if id == soft => spans.push(i..i + 1),
                    _ => {}
                }
            }
        }
        if spans.len() != images.len() {
            return Err(EngineError::InvalidArgument(format!(
                "the prompt holds {} images' soft tokens but {} images were given",
                spans.len(),
                images.len()
            )));
        }
        for (s, im) in spans.iter().zip(images) {
            let rows = im.embeddings.dim(0)?;
            if rows != s.len() {
                return Err(EngineError::InvalidArgument(format!(
                    "an image of {rows} embeddings for {} soft tokens at {s:?}",
                    s.len()
                )));
            }
        }
        Ok(spans)
    }

    /// The chat template applied to `messages`, ready to generate the model's turn.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        self.engine.chat_prompt(messages)
    }

    /// How many of `prompt`'s first tokens equal the cached ones (before images are compared:
    /// see `prefill`): the longest prefix `prefill` may reuse.
    pub fn cached_prefix(&self, prompt: &[u32]) -> usize {
        self.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count()
    }

    /// Makes the cache hold exactly `prompt[..prompt.len()-1]`-or-more and returns logits for the
    /// last prompt token: reuses the longest common prefix with what is cached, prefills the rest
    /// in chunks. Returns (logits, reused).
    /// `images` are the prompt's images in order (see `generate_with_images`); each is prefilled
    /// whole in one chunk, and reused from the cache only where the same image (same key) sits.
    fn prefill(&mut self, prompt: &[u32], images: &[PromptImage]) -> Result<(Tensor, usize)> {
        let spans = self.image_spans(prompt, images)?;
        let mut common = self.cached_prefix(prompt);
        // Equal soft tokens are not equal images: stop before the first cached image that differs.
        for (cached, key) in &self.images {
            let same = spans.iter().zip(images).any(|(s, im)| s == cached && im.key == *key);
            if cached.start < common && !same {
                common = cached.start;
            }
        }
        // The last prompt token is always run again so there are logits to sample from; an image
        // is never cut (its tokens attend to each other, so it is computed whole or not at all).
        let mut keep = common.min(prompt.len() - 1);
        if let Some(s) = spans.iter().find(|s| s.start < keep && keep < s.end) {
            keep = s.start;
        }
        if !self.cache.truncate(keep) {
            log::debug!("kv cache: sliding window already overwritten; prefilling from 0");
        }
        let reused = self.cache.len();
        self.tokens.truncate(reused);
        self.images.retain(|(s, _)| s.end <= reused);
        let mut logits = None;
        let mut start = reused;
        while start < prompt.len() {
            // Chunks of PREFILL_CHUNK tokens, ended early (or late, for an image longer than a
            // chunk) so that no image is split between two.
            let mut end = (start + PREFILL_CHUNK).min(prompt.len());
            if let Some(s) = spans.iter().find(|s| s.start < end && end < s.end) {
                end = if s.start > start { s.start } else { s.end };
            }
            let inside: Vec<(usize, &Range<usize>)> =
                spans.iter().enumerate().filter(|(_, s)| s.start >= start && s.end <= end).collect();
            let at: Vec<ImageAt<'_>> = inside
                .iter()
                .map(|(i, s)| ImageAt { offset: s.start - start, embeddings: &images[*i].embeddings })
                .collect();
            let want = if end == prompt.len() { Logits::Last } else { Logits::None };
            let out = self.forward_with_images(&prompt[start..end], &at, want);
            match out {
                Ok(out) => {
                    self.tokens.extend_from_slice(&prompt[start..end]);
                    self.images.extend(inside.iter().map(|(i, s)| ((*s).clone(), images[*i].key.clone())));
                    logits = out;
                }
                Err(e) => {
                    // The chunk may be half-written into the cache: forget it.
                    self.cache.truncate(self.tokens.len());
                    self.tokens.truncate(self.cache.len());
                    let len = self.tokens.len();
                    self.images.retain(|(s, _)| s.end <= len);
                    return Err(e);
                }
            }
            start = end;
        }
        let logits = logits.ok_or_else(|| EngineError::InvalidArgument("empty prompt".into()))?;
        Ok((logits, reused))
    }

    /// Generates a reply to `prompt` (the whole conversation so far, BOS first), streaming whole
    /// UTF-8 pieces of text to `on_text`.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenerationResult> {
        self.generate_with_images(prompt, &[], opts, on_text)
    }

    /// `generate` for a prompt with images: `images[i]` replaces the i-th run of image soft
    /// tokens in `prompt` (as `Engine::chat_prompt_with_images` lays them out).
    pub fn generate_with_images(
        &mut self,
        prompt: &[u32],
        images: &[PromptImage],
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenerationResult> {
        if prompt.is_empty() {
            return Err(EngineError::InvalidArgument("the prompt is empty".into()));
        }
        if prompt.len() > self.context() {
            return Err(EngineError::ContextOverflow { tokens: prompt.len(), context: self.context() });
        }
        let cancelled = || opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
        let engine = self.engine.clone();
        let tok = engine.tokenizer();
        let t0 = Instant::now();
        let (mut logits, reused) = self.prefill(prompt, images)?;
        let prompt_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();

        let mut sampler = Sampler::new(opts.sampling.clone());
        let mut decoder = StreamDecoder::new(tok);
        let mut ids = Vec::new();
        let mut text = String::new();
        // Text held back because it might be the start of a stop string.
        let mut emitted = 0usize;
        let max_stop = opts.stop_strings.iter().map(|s| s.len()).max().unwrap_or(0);
        let stop;
        let mut history: Vec<u32> = prompt.to_vec();
        loop {
            if cancelled() {
                stop = StopReason::Cancelled;
                break;
            }
            if ids.len() >= opts.max_tokens {
                stop = StopReason::MaxTokens;
                break;
            }
            let row: Vec<f32> = logits.squeeze(0)?.to_vec1()?;
            let next = sampler.sample(&row, &history);
            if tok.eos_ids().contains(&next) {
                stop = StopReason::Eos;
                break;
            }
            ids.push(next);
            history.push(next);
            if let Some(piece) = decoder.push(next) {
                text.push_str(&piece);
            }
            if let Some(at) = opts.stop_strings.iter().filter_map(|s| text.find(s.as_str())).min() {
                text.truncate(at);
                stop = StopReason::StopString;
                break;
            }
            // Emit all but a tail that could still grow into a stop string.
            let safe = floor_char_boundary(&text, text.len().saturating_sub(max_stop.saturating_sub(1)));
            if safe > emitted {
                on_text(&text[emitted..safe]);
                emitted = safe;
            }
            if self.cache.len() >= self.context() {
                stop = StopReason::ContextFull;
                break;
            }
            logits = self.step(next)?;
        }
        if stop != StopReason::StopString {
            if let Some(rest) = decoder.finish() {
                text.push_str(&rest);
            }
        }
        if text.len() > emitted {
            on_text(&text[emitted..]);
        }
        let gen_s = t1.elapsed().as_secs_f64();
        let computed = prompt.len() - reused;
        Ok(GenerationResult {
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            prompt_tokens_per_s: rate(computed, prompt_s),
            gen_tokens_per_s: rate(ids.len(), gen_s),
            ids,
            text,
            stop,
        })
    }

    /// Feeds one token and returns the next logits `[1, vocab]`.
    fn step(&mut self, id: u32) -> Result<Tensor> {
        let out = self.forward(&[id], Logits::Last)?;
        self.tokens.push(id);
        out.ok_or_else(|| EngineError::InvalidArgument("no logits".into()))
    }

    /// The `k` most likely next tokens (id, probability) after `prompt` with its `images`: the
    /// prompt is prefilled into the cache, so a `generate_with_images` of the same prompt after
    /// it computes only its last token again.
    pub fn next_token_top(&mut self, prompt: &[u32], images: &[PromptImage], k: usize) -> Result<Vec<(u32, f32)>> {
        if prompt.is_empty() {
            return Err(EngineError::InvalidArgument("the prompt is empty".into()));
        }
        if prompt.len() > self.context() {
            return Err(EngineError::ContextOverflow { tokens: prompt.len(), context: self.context() });
        }
        let (logits, _) = self.prefill(prompt, images)?;
        Ok(top_k_probs(&logits.squeeze(0)?.to_vec1::<f32>()?, k))
    }

    /// Teacher-forced scoring: for each position i, the top-`k` (id, probability) after reading
    /// `ids[..=i]`, probabilities being the softmax over the whole vocabulary.
    pub fn score(&mut self, ids: &[u32], k: usize) -> Result<Vec<Vec<(u32, f32)>>> {
        if ids.len() > self.context() {
            return Err(EngineError::ContextOverflow { tokens: ids.len(), context: self.context() });
        }
        self.cache.clear();
        self.tokens.clear();
        self.images.clear();
        let mut out = Vec::with_capacity(ids.len());
        // Small chunks: all-position logits are [chunk, vocab] f32 (262k columns).
        for chunk in ids.chunks(64) {
            let logits = self.forward(chunk, Logits::All)?;
            self.tokens.extend_from_slice(chunk);
            let logits = logits.ok_or_else(|| EngineError::InvalidArgument("no logits".into()))?;
            for row in logits.to_vec2::<f32>()? {
                out.push(top_k_probs(&row, k));
            }
        }
        Ok(out)
    }
}

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Softmax over all of `logits` (in f64 for the sum), then the `k` most likely ids.
pub fn top_k_probs(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
    idx.select_nth_unstable_by(k - 1, by_logit);
    idx.truncate(k);
    idx.sort_by(by_logit);
    idx.into_iter().map(|i| (i, (((logits[i as usize] - max) as f64).exp() / sum) as f32)).collect()
}
