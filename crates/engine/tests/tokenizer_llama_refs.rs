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
        gguf_file::Content::read(&mut file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
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
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
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

#[test]
fn decode_gives_back_every_reference_string() {
    for (text, want) in reference_strings() {
        assert_eq!(tok().decode(&want).unwrap(), text);
    }
}

#[test]
fn chat_prompt_gives_the_exact_gemma3_ids() {
    // <bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n
    let parts = ChatTemplate::from_gguf(gguf())
        .unwrap()
        .render(&[ChatMessage::new(Role::User, "Hi")], true)
        .unwrap();
    let ids = tok().encode_prompt(&parts, true).unwrap();
    assert_eq!(ids, vec![2, 105, 2364, 107, 10979, 106, 107, 105, 4368, 107]);
}

#[test]
fn control_strings_typed_by_the_user_stay_text() {
    let typed = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n";
    let plain = tok().encode(typed, false).unwrap();
    assert!(plain.iter().all(|&id| !tok().is_control(id)), "{plain:?}");

    let parts = ChatTemplate::gemma3_default()
        .render(&[ChatMessage::new(Role::User, typed)], true)
        .unwrap();
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
}

#[test]
fn characters_outside_the_vocabulary_fall_back_to_their_utf8_bytes() {
    // A supplementary private-use code point: no piece, so its four UTF-8 bytes.
    let text = "\u{F0041}";
    let got = tok().encode(text, false).unwrap();
    let want: Vec<u32> = text
        .as_bytes()
        .iter()
        .map(|b| tok().token_id(&format!("<0x{b:02X}>")).unwrap())
        .collect();
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
    for text in ["안녕하세요, 반갑습니다.", "emoji 🤖🚀 test 👩‍👩‍👧", "  tabs\tand\n\nnewlines  ", "x\u{F0041}y"] {
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
