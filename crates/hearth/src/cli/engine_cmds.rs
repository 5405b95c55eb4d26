//! The engine's commands: `tokenize`, `generate`, `score`, `bench`. Their flags and JSON are a
//! contract that tests and `scripts/bench-vs-llamacpp` rely on. `generate --mmproj M --image F`
//! and `bench --mmproj M --image F` run Gemma 3 vision.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use engine::chat_template::{ChatMessage, Role};
use engine::device::DevicePreference;
use engine::kv_cache::KvDType;
use engine::model::Logits;
use engine::sampler::SamplingParams;
use engine::session::{Engine, GenerateOptions, LoadOptions, Session, PREFILL_CHUNK};
use engine::vision::{preprocess, PromptImage, VisionEncoder};
use serde_json::json;
use sha2::{Digest, Sha256};

#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// GGUF file or installed model id.
    #[arg(long)]
    model: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// auto, cpu, cuda or metal.
    #[arg(long, default_value = "auto")]
    device: DevicePreference,
}

impl ModelArgs {
    fn load(&self, data_dir: &Path) -> anyhow::Result<Arc<Engine>> {
        let path = super::resolve_model(&self.model, data_dir)?;
        let opts = LoadOptions {
            device: self.device,
            tokenizer_cache_dir: Some(super::tokenizer_cache(data_dir)),
            threads: self.threads,
        };
        Engine::load(&path, &opts).with_context(|| format!("loading {}", path.display()))
    }
}

#[derive(clap::Args, Debug)]
pub struct TokenizeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to tokenize.
    text: String,
}

pub fn tokenize(a: TokenizeArgs, data_dir: &Path) -> anyhow::Result<()> {
    let engine = a.model.load(data_dir)?;
    let ids = engine.tokenizer().encode(&a.text, true)?;
    println!("{}", json!({ "ids": ids }));
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long)]
    prompt: String,
    /// Feed BOS + the prompt as is, without the chat template.
    #[arg(long)]
    raw: bool,
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 is greedy.
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long)]
    min_p: Option<f32>,
    #[arg(long)]
    repeat_penalty: Option<f32>,
    #[arg(long)]
    seed: Option<u64>,
    /// Stop when the text contains this (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Element type of the KV cache: f16 (half the memory) or f32.
    #[arg(long, default_value = "f16")]
    kv_type: KvDType,
    /// The vision projector GGUF paired with the model (needed for --image).
    #[arg(long)]
    mmproj: Option<PathBuf>,
    /// An image for the user turn, placed before the prompt's text (repeatable, in order).
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// Pan & Scan: an elongated image is also read as crops (the reference processor's rule:
    /// at least 256 pixels, up to 4, from an aspect ratio of 1.2), laid out as it lays them out.
    #[arg(long)]
    pan_scan: bool,
    /// Also print the K most likely next tokens at the last prompt position as `top`.
    #[arg(long)]
    top: Option<usize>,
}

/// The mmproj loaded for `engine`, refused unless it is the text model's pair.
fn load_vision(mmproj: &Path, engine: &Engine) -> anyhow::Result<VisionEncoder> {
    let enc = VisionEncoder::load(mmproj, engine.device()).with_context(|| format!("loading {}", mmproj.display()))?;
    enc.check_text_model(engine.config())
        .with_context(|| format!("{} with {}", mmproj.display(), engine.path().display()))?;
    Ok(enc)
}

/// An image file's pixels as the encoder takes them: decoded under the default limits, resized
/// and normalized as the reference processor does (`engine::vision::preprocess`).
fn image_pixels(path: &Path, bytes: &[u8], size: u32) -> anyhow::Result<Vec<f32>> {
    let rgb = preprocess::decode(bytes, &preprocess::ImageLimits::default())
        .with_context(|| format!("reading image {}", path.display()))?;
    Ok(preprocess::pixel_values(&rgb, size))
}

/// Encodes each image on the engine's threads, keyed by the sha256 of its file; with
/// `pan_scan`, each image is followed by its crops (keyed `<sha256>-crop<i>`). Returns the
/// encodings in prompt order and each image's number of crops.
fn encode_images(
    paths: &[PathBuf],
    enc: &VisionEncoder,
    engine: &Engine,
    pan_scan: Option<&preprocess::PanScan>,
) -> anyhow::Result<(Vec<PromptImage>, Vec<usize>)> {
    let size = enc.config().image_size as u32;
    let (mut images, mut crops) = (Vec::new(), Vec::new());
    for p in paths {
        let bytes = std::fs::read(p).with_context(|| format!("reading image {}", p.display()))?;
        let sha = format!("{:x}", Sha256::digest(&bytes));
        let rgb = preprocess::decode(&bytes, &preprocess::ImageLimits::default())
            .with_context(|| format!("reading image {}", p.display()))?;
        let inputs = preprocess::encoder_inputs(&rgb, pan_scan, size);
        crops.push(inputs.len() - 1);
        for (i, pixels) in inputs.iter().enumerate() {
            let key = if i == 0 { sha.clone() } else { format!("{sha}-crop{i}") };
            let embeddings = engine.install(|| enc.encode(pixels))?;
            images.push(PromptImage { key, embeddings });
        }
    }
    Ok((images, crops))
}

pub fn generate(a: GenerateArgs, data_dir: &Path) -> anyhow::Result<()> {
    let engine = a.model.load(data_dir)?;
    let pan_scan = a.pan_scan.then(preprocess::PanScan::default);
    let (images, crops) = match (&a.mmproj, a.images.is_empty()) {
        (_, true) => (Vec::new(), Vec::new()),
        (None, false) => bail!("--image needs --mmproj, the vision projector GGUF paired with the model"),
        (Some(_), false) if a.raw => bail!("--image needs the chat template: leave out --raw"),
        (Some(m), false) => encode_images(&a.images, &load_vision(m, &engine)?, &engine, pan_scan.as_ref())?,
    };
    let user = [ChatMessage { role: Role::User, content: a.prompt.clone() }];
    let prompt_ids = if a.raw {
        engine.tokenizer().encode(&a.prompt, true)?
    } else if images.is_empty() {
        engine.chat_prompt(&user)?
    } else {
        let per_image = images[0].embeddings.dim(0)?;
        engine.chat_prompt_with_image_groups(&user, std::slice::from_ref(&crops), per_image)?
    };
    let mut sampling = SamplingParams::default();
    if let Some(t) = a.temperature {
        sampling.temperature = t;
    }
    if let Some(k) = a.top_k {
        sampling.top_k = k;
    }
    if let Some(p) = a.top_p {
        sampling.top_p = p;
    }
    if let Some(p) = a.min_p {
        sampling.min_p = p;
    }
    if let Some(r) = a.repeat_penalty {
        sampling.repeat_penalty = r;
    }
    if let Some(s) = a.seed {
        sampling.seed = s;
    }
    sampling.validate()?;
    let max_ctx = engine.config().context_length;
    let ctx = (prompt_ids.len() + a.max_tokens).min(max_ctx);
    if prompt_ids.len() >= ctx {
        bail!("the prompt has {} tokens; the model's context is {max_ctx}", prompt_ids.len());
    }
    let mut session = Session::with_kv_dtype(engine.clone(), ctx, a.kv_type)?;
    let top = a.top.map(|k| session.next_token_top(&prompt_ids, &images, k)).transpose()?;
    let opts = GenerateOptions { max_tokens: a.max_tokens, sampling, stop_strings: a.stop, cancel: None };
    let json_out = a.json;
    let mut stdout = std::io::stdout();
    let r = session.generate_with_images(&prompt_ids, &images, &opts, &mut |piece| {
        if !json_out {
            use std::io::Write;
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }
    })?;
    if json_out {
        let mut out = json!({
            "prompt_ids": prompt_ids,
            "ids": r.ids,
            "text": r.text,
            "stop_reason": r.stop.as_str(),
            "prompt_tokens_per_s": r.prompt_tokens_per_s,
            "gen_tokens_per_s": r.gen_tokens_per_s,
        });
        if let Some(top) = top {
            out["top"] = json!(top);
        }
        if !images.is_empty() {
            out["images"] = json!(crops.len());
            if pan_scan.is_some() {
                out["crops"] = json!(crops);
            }
        }
        println!("{out}");
    } else {
        println!();
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A JSON file holding an array of token ids.
    #[arg(long)]
    ids_json: PathBuf,
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// JSON output (the only format).
    #[arg(long)]
    json: bool,
    /// Element type of the KV cache: f16 (half the memory) or f32.
    #[arg(long, default_value = "f16")]
    kv_type: KvDType,
}

pub fn score(a: ScoreArgs, data_dir: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.ids_json).with_context(|| format!("reading {}", a.ids_json.display()))?;
    let ids: Vec<u32> = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON array of token ids", a.ids_json.display()))?;
    if ids.is_empty() {
        bail!("{}: no token ids", a.ids_json.display());
    }
    let engine = a.model.load(data_dir)?;
    let vocab = engine.config().vocab_size;
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        bail!("token id {bad} is outside the vocabulary of {vocab}");
    }
    let ctx = ids.len().min(engine.config().context_length);
    let mut session = Session::with_kv_dtype(engine.clone(), ctx, a.kv_type)?;
    let positions = session.score(&ids, a.top)?;
    let positions: Vec<Vec<(u32, f32)>> = positions;
    println!("{}", json!({ "positions": positions }));
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt tokens (llama-bench's pp test).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Generated tokens (llama-bench's tg test), decoded one at a time from an empty cache.
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Context the KV cache is sized for.
    #[arg(long, default_value_t = 4096)]
    ctx: usize,
    /// Timed repetitions of each test (after one warm-up, unless --no-warmup).
    #[arg(short = 'r', long, default_value_t = 3)]
    reps: usize,
    /// Skip the warm-up (as llama-bench's --no-warmup): at tens of thousands of prompt tokens
    /// one run takes minutes and first-touch costs are lost in it.
    #[arg(long)]
    no_warmup: bool,
    /// Element type of the KV cache: f16 (half the memory) or f32.
    #[arg(long, default_value = "f16")]
    kv_type: KvDType,
    #[arg(long)]
    json: bool,
    /// Benchmark the vision encoder of this mmproj (paired with --model) on --image instead of
    /// the text tests.
    #[arg(long, requires = "image")]
    mmproj: Option<PathBuf>,
    #[arg(long, requires = "mmproj")]
    image: Option<PathBuf>,
}

/// Measures like llama-bench: pp = one prompt of random tokens processed in chunks (logits only
/// for the last), tg = tokens decoded one by one from an empty cache; each averaged over reps.
pub fn bench(a: BenchArgs, data_dir: &Path) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let engine = a.model.load(data_dir)?;
    let load_s = t0.elapsed().as_secs_f64();
    if let (Some(mmproj), Some(image)) = (&a.mmproj, &a.image) {
        return bench_encoder(&engine, mmproj, image, a.reps.max(1), !a.no_warmup, a.json);
    }
    let model = engine.model();
    let cfg = engine.config();
    if a.n_prompt + a.n_gen > a.ctx || a.ctx > cfg.context_length {
        bail!("-p {} and -n {} must fit --ctx {} (model maximum {})", a.n_prompt, a.n_gen, a.ctx, cfg.context_length);
    }
    let mut cache = model.new_cache_with(a.ctx, a.kv_type)?;
    // Deterministic "random" ids, as llama-bench feeds random tokens.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let prompt: Vec<u32> = (0..a.n_prompt)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % cfg.vocab_size as u64) as u32
        })
        .collect();
    let reps = a.reps.max(1);
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    let first = usize::from(a.no_warmup);
    for rep in first..=reps {
        if a.n_prompt > 0 {
            cache.clear();
            let t = Instant::now();
            let chunks = prompt.chunks(PREFILL_CHUNK).count();
            for (i, chunk) in prompt.chunks(PREFILL_CHUNK).enumerate() {
                let want = if i + 1 == chunks { Logits::Last } else { Logits::None };
                engine.install(|| model.forward(chunk, &mut cache, want))?;
            }
            if rep > 0 {
                pp.push(a.n_prompt as f64 / t.elapsed().as_secs_f64());
            }
        }
        if a.n_gen > 0 {
            cache.clear();
            let mut next = prompt.first().copied().unwrap_or(2);
            let t = Instant::now();
            for _ in 0..a.n_gen {
                let logits =
                    engine.install(|| model.forward(&[next], &mut cache, Logits::Last))?.context("no logits")?;
                next = logits.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?;
            }
            if rep > 0 {
                tg.push(a.n_gen as f64 / t.elapsed().as_secs_f64());
            }
        }
    }
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let out = json!({
        "model": engine.path().display().to_string(),
        "threads": engine.threads(),
        "device": format!("{:?}", engine.device()),
        "n_prompt": a.n_prompt,
        "n_gen": a.n_gen,
        "ctx": a.ctx,
        "reps": reps,
        "prompt_tokens_per_s": mean(&pp),
        "gen_tokens_per_s": mean(&tg),
        "peak_rss_bytes": peak_rss_bytes(),
        "kv_type": cache.dtype().as_str(),
        "kv_bytes": cache.bytes(),
        "kv_bytes_formula": cfg.kv_bytes(a.ctx, a.kv_type),
        "weight_bytes": model.weight_bytes(),
        "load_s": load_s,
    });
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// Encoder time for one image (after one warm-up, if `warmup`), and memory: the process's
/// resident memory before the encoder was loaded, its peak after encoding, and the engine's own
/// figures.
fn bench_encoder(
    engine: &Engine,
    mmproj: &Path,
    image: &Path,
    reps: usize,
    warmup: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    let rss_before = rss_bytes("VmRSS:");
    let t = Instant::now();
    let enc = load_vision(mmproj, engine)?;
    let load_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::read(image).with_context(|| format!("reading image {}", image.display()))?;
    let pixels = image_pixels(image, &bytes, enc.config().image_size as u32)?;
    let mut times = Vec::with_capacity(reps);
    let first = usize::from(!warmup);
    for rep in first..=reps {
        let t = Instant::now();
        let out = engine.install(|| enc.encode(&pixels))?;
        if rep > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
        drop(out);
    }
    let out = json!({
        "model": engine.path().display().to_string(),
        "mmproj": mmproj.display().to_string(),
        "image": image.display().to_string(),
        "threads": engine.threads(),
        "device": format!("{:?}", engine.device()),
        "reps": reps,
        "encode_s": times.iter().sum::<f64>() / times.len() as f64,
        "tokens_per_image": enc.config().tokens_per_image(),
        "load_s": load_s,
        "rss_before_encoder_bytes": rss_before,
        "peak_rss_bytes": peak_rss_bytes(),
        "encoder_file_bytes": enc.weight_bytes(),
        "encoder_resident_bytes": enc.resident_bytes(),
        "activation_peak_estimate_bytes": engine::vision::activation_peak_bytes(enc.config()),
    });
    if json_out {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// VmHWM: the most resident memory this process has had.
fn peak_rss_bytes() -> Option<u64> {
    rss_bytes("VmHWM:")
}

/// A memory line of /proc/self/status (`VmRSS:` now, `VmHWM:` the peak), in bytes.
fn rss_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}
