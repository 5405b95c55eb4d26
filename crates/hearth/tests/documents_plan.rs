//! Planning with the real Gemma 3 270M tokenizer at a small context: the chunks cover every
//! character, no planted fact is cut by a chunk boundary, every chunk's prompt fits the context.

mod support;

use hearth::documents::chunk::CountTokens;
use hearth::documents::plan::{self, join, slice_chars, Mode, ModelFacts, PlanOptions, Source};
use hearth::documents::prompt;
use hearth::models::fit::Memory;

/// The model's facts and tokenizer, read once for all tests (building the tokenizer takes seconds).
fn model() -> &'static (ModelFacts, engine::tokenizer::Tokenizer) {
    static MODEL: std::sync::OnceLock<(ModelFacts, engine::tokenizer::Tokenizer)> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| ModelFacts::from_gguf(&support::test_model(), None).unwrap())
}

/// Plenty of memory, so the plan depends on the context alone.
fn roomy() -> Memory {
    Memory { total_ram: 64 << 30, available_ram: 64 << 30, vram: None, ..Memory::detect() }
}

fn opts(context: Option<usize>, max_tokens: usize) -> PlanOptions {
    PlanOptions { context, max_tokens, memory: Some(roomy()), prompt_tokens_per_s: None }
}

/// 140 paragraphs of varying length; paragraph `p` of `FACTS` holds the sentence
/// "Fact p: the code word of paragraph p is <word>." somewhere in its middle.
const FACTS: [usize; 7] = [0, 7, 33, 64, 65, 99, 139];

fn document() -> (String, Vec<String>) {
    let filler = [
        "The committee met again to review the harvest figures for the northern valley.",
        "Rain fell for most of the week, and the river rose above its usual level.",
        "Several members asked for a clearer account of the costs of the new storage barns.",
        "이번 분기에는 예산 집행이 예상보다 늦어졌다.",
    ];
    let mut paras = Vec::new();
    let mut facts = Vec::new();
    for p in 0..140 {
        let n = 1 + (p * 7) % 9;
        let mut sentences: Vec<String> = (0..n).map(|i| filler[(p + i) % filler.len()].to_owned()).collect();
        if FACTS.contains(&p) {
            let fact = format!("Fact {p}: the code word of paragraph {p} is zephyr{}.", p * 31 % 97);
            sentences.insert(n / 2, fact.clone());
            facts.push(fact);
        }
        paras.push(sentences.join(" "));
    }
    (paras.join("\n\n"), facts)
}

fn char_range(text: &str, needle: &str) -> (usize, usize) {
    let byte = text.find(needle).unwrap();
    let start = text[..byte].chars().count();
    (start, start + needle.chars().count())
}

#[test]
fn map_reduce_plan_covers_everything_and_keeps_facts_whole() {
    let (facts_model, tokenizer) = model();
    let (text, facts) = document();
    let joined = join(&[Source { name: "minutes.txt".into(), text: text.clone() }]);
    let context = 1024;
    let p = plan::plan(&joined, facts_model, &opts(Some(context), 128), tokenizer).unwrap();
    assert_eq!(p.mode, Mode::MapReduce);
    assert_eq!(p.context, context);
    assert_eq!(p.tokens, tokenizer.count_tokens(&text).unwrap());
    assert!(p.chunks.len() >= 4, "{}", p.chunks.len());
    assert_eq!(p.kv_bytes, facts_model.kv.bytes(context as u64, hearth::models::fit::KvDType::F16));

    // Every character is in some chunk.
    let chars = text.chars().count();
    assert_eq!(p.chunks[0].start, 0);
    assert_eq!(p.chunks.last().unwrap().end, chars);
    for w in p.chunks.windows(2) {
        assert!(w[1].start <= w[0].end, "gap between {:?} and {:?}", w[0], w[1]);
        assert!(w[1].start > w[0].start && w[1].end > w[0].end, "no progress: {:?} {:?}", w[0], w[1]);
    }
    assert!(p.chunks.windows(2).any(|w| w[1].start < w[0].end), "no chunk overlaps its neighbour");

    // Each planted fact lies whole inside at least one chunk.
    for fact in &facts {
        let (s, e) = char_range(&text, fact);
        assert!(p.chunks.iter().any(|c| c.start <= s && e <= c.end), "{fact:?} is cut by every chunk");
    }

    // Each chunk's count is exact, and its whole prompt plus the partial summary fits.
    let n = p.chunks.len();
    for (i, c) in p.chunks.iter().enumerate() {
        let chunk_text = slice_chars(&text, c.start, c.end);
        assert_eq!(c.tokens, tokenizer.count_tokens(chunk_text).unwrap());
        let prompt = prompt::map(chunk_text, i + 1, n, &["minutes.txt"]);
        let prompt_tokens = tokenizer.count_tokens(&prompt::text_of(&prompt)).unwrap() + prompt::TEMPLATE_TOKENS;
        assert!(prompt_tokens + p.map_max_tokens <= context, "chunk {i}: {prompt_tokens} + {}", p.map_max_tokens);
        // Cut on paragraph or sentence boundaries.
        if i + 1 < n {
            assert!(
                chunk_text.ends_with("\n\n") || chunk_text.ends_with(". "),
                "chunk {i} ends {:?}",
                &chunk_text[chunk_text.len() - 20..]
            );
        }
    }
    assert!(p.reduce_levels >= 1 && p.reduce_fan_in >= 2);
}

#[test]
fn a_document_that_fits_is_planned_whole_at_the_context_it_needs() {
    let (facts_model, tokenizer) = model();
    let (text, _) = document();
    let joined = join(&[Source { name: "minutes.txt".into(), text: text.clone() }]);
    let p = plan::plan(&joined, facts_model, &opts(None, 256), tokenizer).unwrap();
    assert_eq!(p.mode, Mode::Whole);
    assert_eq!(p.chunks.len(), 1);
    assert_eq!((p.chunks[0].start, p.chunks[0].end), (0, text.chars().count()));
    assert!(p.context >= p.tokens + 256 && p.context <= facts_model.max_context, "{}", p.context);
    assert_eq!(p.reduce_levels, 0);
}

// A vision model's plan counts what loading it holds beside the text model: the projector as
// held and the image encoder's peak, the sum `models fit` and the load check use.
#[test]
fn a_vision_models_plan_counts_its_projector_and_encoder_peak() {
    let (facts_model, tokenizer) = model();
    let mmproj = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/vision/tiny-gemma3-mmproj.gguf");
    let vision = facts_model.clone().with_projector(Some(&mmproj)).unwrap();
    let (text, _) = document();
    let joined = join(&[Source { name: "minutes.txt".into(), text }]);
    let plain = plan::plan(&joined, facts_model, &opts(Some(2048), 128), tokenizer).unwrap();
    let with = plan::plan(&joined, &vision, &opts(Some(2048), 128), tokenizer).unwrap();
    let cost = hearth::models::fit::ProjectorCost::of_file(&mmproj).unwrap();
    assert!(cost.memory.weight_bytes > 0 && cost.memory.activation_peak_bytes > 0);
    assert_eq!(with.memory_bytes, plain.memory_bytes + cost.memory.weight_bytes + cost.memory.activation_peak_bytes);
    assert_eq!((with.context, with.kv_bytes, with.chunks.len()), (plain.context, plain.kv_bytes, plain.chunks.len()));
}

#[test]
fn one_long_paragraph_is_cut_between_sentences() {
    let (facts_model, tokenizer) = model();
    let text: String = (0..300).map(|i| format!("Sentence number {i} has a few words in it. ")).collect();
    let text = text.trim_end().to_owned();
    let joined = join(&[Source { name: "wall.txt".into(), text: text.clone() }]);
    let p = plan::plan(&joined, facts_model, &opts(Some(768), 128), tokenizer).unwrap();
    assert_eq!(p.mode, Mode::MapReduce);
    for c in &p.chunks[..p.chunks.len() - 1] {
        assert!(slice_chars(&text, c.start, c.end).ends_with(". "), "{c:?}");
    }
}

#[test]
fn several_files_are_joined_with_their_names_and_spans() {
    let (facts_model, tokenizer) = model();
    let sources = [
        Source { name: "a.md".into(), text: "Alpha notes.".into() },
        Source { name: "b.txt".into(), text: "베타 메모.".into() },
    ];
    let joined = join(&sources);
    assert_eq!(joined.text, "# File: a.md\n\nAlpha notes.\n\n# File: b.txt\n\n베타 메모.");
    for (f, s) in joined.files.iter().zip(&sources) {
        assert_eq!(slice_chars(&joined.text, f.start, f.end), s.text);
    }
    let p = plan::plan(&joined, facts_model, &opts(None, 64), tokenizer).unwrap();
    assert_eq!(p.mode, Mode::Whole);
    assert_eq!(p.files, joined.files);
}

#[test]
fn a_context_beyond_the_model_or_too_small_is_refused() {
    let (facts_model, tokenizer) = model();
    let (text, _) = document();
    let joined = join(&[Source { name: "m.txt".into(), text }]);
    let err = plan::plan(&joined, facts_model, &opts(Some(facts_model.max_context + 1), 128), tokenizer).unwrap_err();
    assert_eq!(err.code, hearth::error::ErrorCode::ContextTooLong);
    let err = plan::plan(&joined, facts_model, &opts(Some(100), 64), tokenizer).unwrap_err();
    assert_eq!(err.code, hearth::error::ErrorCode::ContextFull);
}

#[test]
fn cli_plan_json_is_the_contract() {
    let data = tempfile::tempdir().unwrap();
    let a = data.path().join("minutes.txt");
    let b = data.path().join("notes.md");
    std::fs::write(&a, document().0).unwrap();
    std::fs::write(&b, "# Notes\n\nShort file.").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--data-dir")
        .arg(data.path())
        .arg("summarize")
        .args([&a, &b])
        .arg("--model")
        .arg(support::test_model())
        .args(["--context", "1024", "--max-tokens", "128", "--plan", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mode"], "map_reduce");
    assert_eq!(v["context"], 1024);
    assert!(v["tokens"].as_u64().unwrap() > 1024);
    assert!(v["kv_bytes"].as_u64().unwrap() > 0);
    let chunks = v["chunks"].as_array().unwrap();
    assert!(chunks.len() > 1);
    for c in chunks {
        assert!(c["start"].as_u64().unwrap() < c["end"].as_u64().unwrap() && c["tokens"].as_u64().unwrap() > 0);
    }
    // Offsets are into the joined text; each file's span is given.
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[1]["name"], "notes.md");
    assert_eq!(chunks.last().unwrap()["end"], files[1]["end"]);
}
