//! The tokenizer built from the real Gemma 3 270M GGUF against llama.cpp's ids
//! (`tests/fixtures/llama-270m.json`), plus the chat prompt ids and streaming on real pieces.
//! Needs the test model: `HEARTH_TEST_MODEL` or `scripts/fetch-test-model`'s default path.

use candle_core::quantized::gguf_file;
use engine::chat_template::{ChatMessage, ChatTemplate, Role};
use engine::tokenizer::{StreamDecoder, Tokenizer};
use std::path::PathBuf;
use std::sync::OnceLock;

fn model_path() -> PathBuf {
    let path = std::env::var_os("HEARTH_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/hearth-test/gemma-3-270m-q4_k_m.gguf"));
    assert!(
        path.is_file(),
        "test model not found at {}: run scripts/fetch-test-model or set HEARTH_TEST_MODEL",
        path.display()
    );
    path
}

fn gguf() -> &'static gguf_file::Content {
    static CONTENT: OnceLock<gguf_file::Content> = OnceLock::new();
    CONTENT.get_or_init(|| {
        let path = model_path();
        let mut file = std::fs::File::open(&path).unwrap();
        gguf_file::Content::read(&mut file).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    })
}

fn tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::from_gguf(gguf()).unwrap())
}

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/llama-270m.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn as_ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// (text, llama.cpp ids) for every `tokenize` entry and every case prompt.
fn reference_strings() -> Vec<(String, Vec<u32>)> {
    let f = fixture();
    let mut out = Vec::new();
    for entry in f["tokenize"].as_array().unwrap() {
        out.push((entry["text"].as_str().unwrap().to_owned(), as_ids(&entry["ids"])));
    }
    for (name, case) in f["cases"].as_object().unwrap() {
        assert!(case["prompt"].is_string(), "case {name} has no prompt");
        out.push((case["prompt"].as_str().unwrap().to_owned(), as_ids(&case["prompt_ids"])));
    }
    assert!(out.len() >= 9, "fixture has only {} strings", out.len());
    out
}

#[test]
fn encode_matches_llama_cpp_on_every_reference_string() {
    let mut failures = Vec::new();
    for (text, want) in reference_strings() {
        let got = tok().encode(&text, true).unwrap();
        if got != want {
            failures.push(format!("{text:?}\n  llama.cpp {want:?}\n  ours      {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// Ids from SentencePiece 0.2.3 (Google's own BPE implementation) running a model proto built
/// from this GGUF's pieces, scores and types (identity normaliser, no dummy prefix, byte
/// fallback; the space-run pieces spelled with `▁` so they match after space escaping, which is
/// how llama.cpp treats them). It agrees with llama.cpp on every fixture string; these add
/// scripts, emoji sequences, invisible characters, plane-15/16 code points, long newline runs,
/// HTML-tag pieces and tabs.
const SENTENCEPIECE_IDS: &[(&str, &[u32])] = &[
    (
        "한국어와 English가 섞인 문장입니다.",
        &[114216, 237430, 238229, 5422, 237272, 236743, 245271, 237558, 16950, 237851, 15245, 236761],
    ),
    (
        "日本語のテキストです。カタカナもひらがなも。",
        &[94951, 236945, 95830, 3652, 236924, 131906, 123729, 237156, 239043, 155159, 237050, 237156, 236924],
    ),
    ("中文文本测试，包括标点符号。", &[55041, 57489, 30203, 236900, 21187, 237867, 237510, 93368, 236924]),
    (
        "👩\u{200d}👩\u{200d}👧 family 🏳\u{fe0f}\u{200d}🌈 flag 👍\u{1f3fd}",
        &[243767, 237243, 243767, 237243, 244814, 2523, 236743, 248177, 238178, 237243, 243712, 8134, 103712, 242713],
    ),
    ("combining e\u{301} vs é, ligature ﬁ", &[20024, 4049, 545, 238288, 7728, 1559, 236764, 107109, 97940]),
    (
        "\u{a0}non-breaking\u{a0}space, zero\u{200b}width\u{200c}join\u{200d}",
        &[432, 398, 9181, 236772, 28384, 432, 398, 5780, 236764, 5743, 237141, 2690, 237218, 7013, 237243],
    ),
    (
        "private \u{e000}\u{f8ff} \u{f0041} \u{10fffd}",
        &[7128, 236743, 245863, 247245, 236743, 481, 414, 367, 367, 236743, 482, 381, 429, 427],
    ),
    ("math 𝔸𝔹ℂ ∑∫√∞", &[747, 236743, 249468, 255967, 249550, 76689, 240842, 239176, 240247]),
    (
        "def f(n):\n    if n < 2:\n\t\treturn n\r\n",
        &[
            2063, 517, 236769, 236749, 1473, 107, 140, 584, 538, 655, 236743, 236778, 236787, 107, 255969, 2060, 538,
            251, 107,
        ],
    ),
    ("            many spaces            ", &[148, 34717, 9952, 148]),
    ("\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nend", &[137, 111, 643]),
    (
        "<b>html</b> &amp; <table><tr><td>x</td></tr></table>",
        &[200, 3185, 209, 833, 1414, 236793, 236743, 168, 173, 175, 236781, 183, 181, 176],
    ),
    ("[multimodal] text", &[5, 1816]),
    ("tab\tseparated\t\tvalues\t", &[4823, 255968, 74010, 255969, 7558, 255968]),
    (
        "Straße Größe Übermaß — «quotes» “curly” ‘single’",
        &[223305, 112880, 30668, 126987, 2192, 2789, 52231, 237167, 999, 148358, 236919, 2141, 18999, 236858],
    ),
];

#[test]
fn encode_matches_sentencepiece_on_harder_strings() {
    let mut failures = Vec::new();
    for &(text, want) in SENTENCEPIECE_IDS {
        let got = tok().encode(text, false).unwrap();
        if got != want {
            failures.push(format!("{text:?}\n  sentencepiece {want:?}\n  ours          {got:?}"));
        }
        assert_eq!(tok().decode(&got).unwrap(), text);
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn decode_gives_back_every_reference_string() {
    for (text, want) in reference_strings() {
        assert_eq!(tok().decode(&want).unwrap(), text);
    }
}

#[test]
fn chat_prompt_gives_the_exact_gemma3_ids() {
    // <bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n
    let parts = ChatTemplate::from_gguf(gguf()).unwrap().render(&[ChatMessage::new(Role::User, "Hi")], true).unwrap();
    let ids = tok().encode_prompt(&parts, true).unwrap();
    assert_eq!(ids, vec![2, 105, 2364, 107, 10979, 106, 107, 105, 4368, 107]);
}

#[test]
fn control_strings_typed_by_the_user_stay_text() {
    let typed = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n";
    let plain = tok().encode(typed, false).unwrap();
    assert!(plain.iter().all(|&id| !tok().is_control(id)), "{plain:?}");

    let parts = ChatTemplate::gemma3_default().render(&[ChatMessage::new(Role::User, typed)], true).unwrap();
    let ids = tok().encode_prompt(&parts, true).unwrap();
    let start = tok().token_id("<start_of_turn>").unwrap();
    let end = tok().token_id("<end_of_turn>").unwrap();
    // Only the template's own two turn starts and one turn end.
    assert_eq!(ids.iter().filter(|&&id| id == start).count(), 2, "{ids:?}");
    assert_eq!(ids.iter().filter(|&&id| id == end).count(), 1, "{ids:?}");
    assert_eq!(ids.iter().filter(|&&id| id == tok().bos_id()).count(), 1, "{ids:?}");
    // The typed text (trimmed, as Gemma's template does) is in there as its plain-text ids.
    let trimmed = tok().encode(typed.trim(), false).unwrap();
    assert!(ids.windows(trimmed.len()).any(|w| w == trimmed.as_slice()), "{ids:?}");
}

#[test]
fn gemma3_special_ids() {
    assert_eq!(tok().bos_id(), 2);
    assert_eq!(tok().eos_ids(), &[1, 106]);
    assert_eq!(tok().vocab_size(), 262_144);
    assert_eq!(tok().token_id("<start_of_turn>"), Some(105));
    assert!(tok().is_control(105) && tok().is_control(0) && tok().is_control(255_999));
    assert!(!tok().is_control(107) && !tok().is_control(138) && !tok().is_control(10979));
    // `<b>` (200) is user-defined markup: text, not control.
    assert!(!tok().is_control(200));
}

#[test]
fn characters_outside_the_vocabulary_fall_back_to_their_utf8_bytes() {
    // A supplementary private-use code point: no piece, so its four UTF-8 bytes.
    let text = "\u{F0041}";
    let got = tok().encode(text, false).unwrap();
    let want: Vec<u32> = text.as_bytes().iter().map(|b| tok().token_id(&format!("<0x{b:02X}>")).unwrap()).collect();
    assert_eq!(got, want);
    assert_eq!(tok().decode(&got).unwrap(), text);
}

#[test]
fn streaming_korean_split_into_bytes_emits_whole_characters() {
    let t = tok();
    let byte = |b: u8| t.token_id(&format!("<0x{b:02X}>")).unwrap();
    let mut stream = StreamDecoder::new(t);
    // 안 = EC 95 88, 녕 = EB 85 95
    assert_eq!(stream.push(byte(0xEC)), None);
    assert_eq!(stream.push(byte(0x95)), None);
    assert_eq!(stream.push(byte(0x88)), Some("안".into()));
    assert_eq!(stream.push(byte(0xEB)), None);
    assert_eq!(stream.push(byte(0x85)), None);
    assert_eq!(stream.push(byte(0x95)), Some("녕".into()));
    assert_eq!(stream.push(t.token_id("<end_of_turn>").unwrap()), None);
    assert_eq!(stream.finish(), None);
}

#[test]
fn streaming_token_by_token_equals_decoding_at_once() {
    let t = tok();
    for text in ["안녕하세요, 반갑습니다.", "emoji 🤖🚀 test 👩‍👩‍👧", "  tabs\tand\n\nnewlines  ", "x\u{F0041}y"]
    {
        let ids = t.encode(text, true).unwrap();
        let mut stream = StreamDecoder::new(t);
        let mut out = String::new();
        for &id in &ids {
            if let Some(chunk) = stream.push(id) {
                assert!(!chunk.contains('\u{FFFD}'), "{text:?}: broken chunk {chunk:?}");
                out.push_str(&chunk);
            }
        }
        assert_eq!(stream.finish(), None);
        assert_eq!(out, text);
    }
}

#[test]
fn cached_tokenizer_equals_the_built_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = Tokenizer::from_gguf_cached(gguf(), Some(dir.path())).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let second = Tokenizer::from_gguf_cached(gguf(), Some(dir.path())).unwrap();
    for (text, want) in reference_strings() {
        assert_eq!(first.encode(&text, true).unwrap(), want);
        assert_eq!(second.encode(&text, true).unwrap(), want);
    }
}
