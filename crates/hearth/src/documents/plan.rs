//! The plan shown before a summary runs: the document's tokens, the mode (`whole` when the
//! document, the instructions and the reply fit the context and the memory; else `map_reduce`),
//! the context it will use, the KV-cache bytes (the engine's sliding-window formula,
//! `engine::config::KvShape`), the memory with the weights (`models::fit`), and the chunks.
//!
//! Offsets are characters (Unicode scalar values). One file: into `extract`'s text of it.
//! Several files: into their joined text ([`join`]), where each file is preceded by a line
//! `# File: NAME` and a blank line, files separated by a blank line; `files` gives each file's
//! span (its text, without the header) in that joined text.

use std::path::Path;

use engine::config::KvShape;
use serde::Serialize;
use ts_rs::TS;

use super::chunk::{self, CountTokens};
use super::prompt;
use crate::error::{ErrorCode, ErrorDetails, HearthError, HearthResult};
use crate::models::fit::{self, KvDType, Memory, Verdict};

/// Reply length when none is asked for.
pub const DEFAULT_MAX_TOKENS: usize = 512;
/// Contexts are rounded up to this many tokens (the engine's cache grows in such steps anyway).
const CONTEXT_STEP: usize = 256;
/// The smallest context worth running with: instructions, a chunk and a reply.
const MIN_CONTEXT: usize = 512;
/// Tokens of the document in a chunk below which map-reduce is refused as hopeless.
const MIN_CHUNK_TOKENS: usize = 64;
/// Tokens a reduce step's prompt may use per part number and markup.
const PART_MARKUP_TOKENS: usize = 12;

/// A document to plan over.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Whole,
    MapReduce,
}

/// A span of the planned text, in characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    pub tokens: usize,
}

/// Where one file's text lies in the joined text, in characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct FileSpan {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// Several files as one text (see the module's note on offsets).
#[derive(Debug, Clone)]
pub struct Joined {
    pub text: String,
    pub files: Vec<FileSpan>,
}

/// A model's numbers the plan depends on.
#[derive(Debug, Clone)]
pub struct ModelFacts {
    pub max_context: usize,
    pub kv: KvShape,
    pub weights_bytes: u64,
    /// The vision projector loaded with the model (see [`ModelFacts::with_projector`]); `None`
    /// for a text model.
    pub projector: Option<fit::ProjectorCost>,
}

impl ModelFacts {
    /// The facts and the tokenizer of a Gemma 3 GGUF, from its header alone (no weights read).
    pub fn from_gguf(
        path: &Path,
        tokenizer_cache: Option<&Path>,
    ) -> HearthResult<(ModelFacts, engine::tokenizer::Tokenizer)> {
        let file = engine::gguf::GgufFile::open(path)?;
        let facts = Self::of(&file)?;
        let tokenizer = engine::tokenizer::Tokenizer::from_gguf_cached(file.content(), tokenizer_cache)?;
        Ok((facts, tokenizer))
    }

    /// The facts alone, for a caller that counts tokens with the loaded model instead (the app).
    pub fn from_gguf_header(path: &Path) -> HearthResult<ModelFacts> {
        Self::of(&engine::gguf::GgufFile::open(path)?)
    }

    fn of(file: &engine::gguf::GgufFile) -> HearthResult<ModelFacts> {
        let summary = file.summary()?;
        let config =
            summary.check_gemma3().map_err(|m| HearthError::new(ErrorCode::UnsupportedModel, m.to_string()))?;
        Ok(ModelFacts {
            max_context: config.context_length,
            kv: config.kv_shape(),
            weights_bytes: summary.file_size,
            projector: None,
        })
    }

    /// With the projector at `mmproj`, which the runtime loads with an installed vision model:
    /// its memory counts as `models fit` and the load check count it.
    pub fn with_projector(mut self, mmproj: Option<&Path>) -> HearthResult<ModelFacts> {
        self.projector = mmproj.map(fit::ProjectorCost::of_file).transpose()?;
        Ok(self)
    }
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The context to use; `None`: what the document needs (whole), else the largest the model
    /// and the memory allow.
    pub context: Option<usize>,
    /// The summary's length limit (and each partial summary's, within a quarter of the context).
    pub max_tokens: usize,
    /// Memory to fit in; `None`: measured now.
    pub memory: Option<Memory>,
    /// Measured prompt speed, for the time estimate; `None`: no estimate.
    pub prompt_tokens_per_s: Option<f64>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { context: None, max_tokens: DEFAULT_MAX_TOKENS, memory: None, prompt_tokens_per_s: None }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct Plan {
    /// Tokens of the (joined) text.
    pub tokens: usize,
    pub mode: Mode,
    pub context: usize,
    /// KV cache at `context`, f16.
    pub kv_bytes: u64,
    /// What `models fit` counts at `context`: weights, projector and encoder peak (a vision
    /// model), KV cache, runtime allowance.
    pub memory_bytes: u64,
    pub memory_verdict: String,
    /// Most tokens of the final summary.
    pub max_tokens: usize,
    /// Most tokens of each partial summary (map-reduce).
    pub map_max_tokens: usize,
    /// Partial summaries combined at once in a reduce step.
    pub reduce_fan_in: usize,
    /// Reduce rounds before one summary is left (0 when whole).
    pub reduce_levels: usize,
    /// Prompt tokens the whole run reads, estimated (instructions included).
    pub prompt_tokens: usize,
    /// At the measured prompt speed, when one is known.
    pub seconds: Option<f64>,
    pub chunks: Vec<Chunk>,
    pub files: Vec<FileSpan>,
}

/// Joins several files (see the module's note on offsets); one file is its text unchanged.
pub fn join(sources: &[Source]) -> Joined {
    if let [one] = sources {
        let end = one.text.chars().count();
        return Joined { text: one.text.clone(), files: vec![FileSpan { name: one.name.clone(), start: 0, end }] };
    }
    let mut text = String::new();
    let mut chars = 0;
    let mut files = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let header = format!("{}# File: {}\n\n", if i > 0 { "\n\n" } else { "" }, s.name);
        chars += header.chars().count();
        text.push_str(&header);
        let start = chars;
        chars += s.text.chars().count();
        text.push_str(&s.text);
        files.push(FileSpan { name: s.name.clone(), start, end: chars });
    }
    Joined { text, files }
}

fn round_up(n: usize, step: usize) -> usize {
    n.div_ceil(step) * step
}

/// Plans a summary of `joined` for a model.
pub fn plan(joined: &Joined, model: &ModelFacts, opts: &PlanOptions, counter: &dyn CountTokens) -> HearthResult<Plan> {
    let names: Vec<&str> = joined.files.iter().map(|f| f.name.as_str()).collect();
    if let Some(c) = opts.context {
        if c > model.max_context {
            return Err(HearthError::new(
                ErrorCode::ContextTooLong,
                format!("a context of {c} tokens is more than the model's {}", model.max_context),
            )
            .with(ErrorDetails {
                needed: Some(c as u64),
                limit: Some(model.max_context as u64),
                ..Default::default()
            }));
        }
        if c < MIN_CONTEXT {
            return Err(too_small(c, MIN_CONTEXT));
        }
    }
    let memory = opts.memory.clone().unwrap_or_else(Memory::detect);
    let fits = |ctx: usize| fit::verdict(total_bytes(model, ctx), &memory) != Verdict::TooBig;
    let tokens = counter.count_tokens(&joined.text)?;
    let overhead = |messages: Vec<engine::chat_template::ChatMessage>| -> HearthResult<usize> {
        Ok(counter.count_tokens(&prompt::text_of(&messages))? + prompt::TEMPLATE_TOKENS)
    };
    let max_tokens = opts.max_tokens.max(1);
    let whole_need = tokens + overhead(prompt::whole("", &names))? + max_tokens;
    let whole_context = opts.context.unwrap_or_else(|| round_up(whole_need, CONTEXT_STEP).min(model.max_context));
    if whole_need <= whole_context && fits(whole_context) {
        let chunks = vec![Chunk { start: 0, end: joined.text.chars().count(), tokens }];
        return Ok(finish(
            model,
            &memory,
            opts,
            Mode::Whole,
            whole_context,
            tokens,
            whole_need - max_tokens,
            max_tokens,
            max_tokens,
            0,
            0,
            chunks,
            joined,
        ));
    }

    // Map-reduce: the context asked for, else the largest the model and the memory allow.
    let mut context = opts.context.unwrap_or(model.max_context);
    while opts.context.is_none() && context > MIN_CONTEXT && !fits(context) {
        context = round_up(context / 2, CONTEXT_STEP).max(MIN_CONTEXT);
    }
    let map_max = max_tokens.min(context / 4).max(1);
    let map_overhead = overhead(prompt::map("", 999, 999, &names))?;
    let budget = context.saturating_sub(map_overhead + map_max);
    if budget < MIN_CHUNK_TOKENS {
        return Err(too_small(context, map_overhead + map_max + MIN_CHUNK_TOKENS));
    }
    let overlap = budget / 10;
    let cut = chunk::cut(&joined.text, budget, overlap, counter)?;
    let chunks = char_chunks(&joined.text, &cut);

    // Reduce: as many partial summaries at once as fit beside the instructions and the reply.
    let final_max = max_tokens.min(context / 4).max(1);
    let reduce_overhead = overhead(prompt::reduce(&[], &names))?;
    let fan_in = context.saturating_sub(reduce_overhead + final_max) / (map_max + PART_MARKUP_TOKENS);
    if fan_in < 2 {
        return Err(too_small(context, reduce_overhead + final_max + 2 * (map_max + PART_MARKUP_TOKENS)));
    }
    let (mut left, mut levels, mut reduce_prompts) = (chunks.len(), 0, 0);
    while left > 1 {
        let groups = left.div_ceil(fan_in);
        reduce_prompts += groups * reduce_overhead + left * (map_max + PART_MARKUP_TOKENS);
        left = groups;
        levels += 1;
    }
    let prompt_tokens = chunks.iter().map(|c| c.tokens + map_overhead).sum::<usize>() + reduce_prompts;
    Ok(finish(
        model,
        &memory,
        opts,
        Mode::MapReduce,
        context,
        tokens,
        prompt_tokens,
        final_max,
        map_max,
        fan_in,
        levels,
        chunks,
        joined,
    ))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    model: &ModelFacts,
    memory: &Memory,
    opts: &PlanOptions,
    mode: Mode,
    context: usize,
    tokens: usize,
    prompt_tokens: usize,
    max_tokens: usize,
    map_max_tokens: usize,
    reduce_fan_in: usize,
    reduce_levels: usize,
    chunks: Vec<Chunk>,
    joined: &Joined,
) -> Plan {
    let memory_bytes = total_bytes(model, context);
    Plan {
        tokens,
        mode,
        context,
        kv_bytes: model.kv.bytes(context as u64, KvDType::F16),
        memory_bytes,
        memory_verdict: fit::verdict(memory_bytes, memory).label().to_owned(),
        max_tokens,
        map_max_tokens,
        reduce_fan_in,
        reduce_levels,
        prompt_tokens,
        seconds: opts.prompt_tokens_per_s.filter(|s| *s > 0.0).map(|s| prompt_tokens as f64 / s),
        chunks,
        files: joined.files.clone(),
    }
}

fn total_bytes(model: &ModelFacts, context: usize) -> u64 {
    fit::total_bytes(model.weights_bytes, model.projector.as_ref(), model.kv.bytes(context as u64, KvDType::F16))
}

fn too_small(context: usize, needed: usize) -> HearthError {
    HearthError::new(
        ErrorCode::ContextFull,
        format!("a context of {context} tokens is too small to summarize in parts (needs at least {needed})"),
    )
    .with(ErrorDetails { needed: Some(needed as u64), limit: Some(context as u64), ..Default::default() })
}

/// Byte ranges to character offsets, in one pass.
fn char_chunks(text: &str, cut: &[chunk::ByteChunk]) -> Vec<Chunk> {
    let mut points: Vec<usize> = cut.iter().flat_map(|c| [c.range.start, c.range.end]).collect();
    points.sort_unstable();
    points.dedup();
    let mut map = std::collections::HashMap::with_capacity(points.len());
    let mut next = points.iter().peekable();
    for (chars, (byte, _)) in text.char_indices().chain([(text.len(), ' ')]).enumerate() {
        while next.peek().is_some_and(|&&p| p == byte) {
            map.insert(byte, chars);
            next.next();
        }
    }
    cut.iter().map(|c| Chunk { start: map[&c.range.start], end: map[&c.range.end], tokens: c.tokens }).collect()
}

/// The text of a chunk (character offsets) of `text`.
pub fn slice_chars(text: &str, start: usize, end: usize) -> &str {
    let byte = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(b, _)| b);
    let s = byte(start);
    let e = s + text[s..].char_indices().nth(end - start).map_or(text.len() - s, |(b, _)| b);
    &text[s..e]
}
