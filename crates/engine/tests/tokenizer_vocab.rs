//! Tokenizer on small hand-made vocabularies (no model needed): merge order, byte fallback,
//! control strings, streaming, the merge cache, and every way the vocabulary metadata can be bad.

use candle_core::quantized::gguf_file::{self, Value};
use engine::chat_template::PromptPart;
use engine::tokenizer::{StreamDecoder, Tokenizer};
use engine::EngineError;

const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const BYTE: i32 = 6;

/// Gemma-like layout: control pieces, whitespace runs, 256 byte pieces, then `normal` pieces
/// with the given scores.
fn vocab(normal: &[(&str, f32)]) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens = Vec::new();
    let mut scores = Vec::new();
    let mut types = Vec::new();
    let mut push = |t: &str, s: f32, ty: i32| {
        tokens.push(t.to_string());
        scores.push(s);
        types.push(ty);
    };
    for t in ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"] {
        push(t, -1000.0, CONTROL);
    }
    for t in ["\n", "\n\n", "  ", "<start_of_image>", "<b>"] {
        push(t, -1000.0, USER_DEFINED);
    }
    for b in 0..=255u8 {
        push(&format!("<0x{b:02X}>"), 0.0, BYTE);
    }
    for (t, s) in normal {
        push(t, *s, NORMAL);
    }
    (tokens, scores, types)
}

const BOS: u32 = 2;
const START_OF_TURN: u32 = 4;
const END_OF_TURN: u32 = 5;
const FIRST_NORMAL: u32 = 11 + 256;

fn metadata(tokens: &[String], scores: &[f32], types: &[i32]) -> Vec<(&'static str, Value)> {
    vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect())),
        ("tokenizer.ggml.scores", Value::Array(scores.iter().map(|s| Value::F32(*s)).collect())),
        ("tokenizer.ggml.token_type", Value::Array(types.iter().map(|t| Value::I32(*t)).collect())),
        ("tokenizer.ggml.bos_token_id", Value::U32(BOS)),
        ("tokenizer.ggml.eos_token_id", Value::U32(1)),
    ]
}

fn content(metadata: &[(&str, Value)]) -> gguf_file::Content {
    let mut file = tempfile::tempfile().unwrap();
    let refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    gguf_file::write(&mut file, &refs, &[]).unwrap();
    use std::io::Seek;
    file.rewind().unwrap();
    gguf_file::Content::read(&mut file).unwrap()
}

fn tokenizer(normal: &[(&str, f32)]) -> Tokenizer {
    let (t, s, ty) = vocab(normal);
    Tokenizer::from_gguf(&content(&metadata(&t, &s, &ty))).unwrap()
}

fn ids(tok: &Tokenizer, pieces: &[&str]) -> Vec<u32> {
    pieces.iter().map(|p| tok.token_id(p).unwrap()).collect()
}

const PIECES: &[(&str, f32)] = &[
    ("a", -1.0),
    ("b", -2.0),
    ("c", -3.0),
    ("▁", -4.0),
    ("<", -5.0),
    (">", -6.0),
    ("ab", -10.0),
    ("bc", -20.0),
    ("▁a", -30.0),
    ("▁ab", -40.0),
];

#[test]
fn the_higher_scoring_merge_wins() {
    let tok = tokenizer(PIECES);
    // "ab" outscores "bc": a+b merge first.
    assert_eq!(tok.encode("abc", false).unwrap(), ids(&tok, &["ab", "c"]));
    // Swap the scores and the other pair merges first.
    let swapped: Vec<(&str, f32)> = PIECES
        .iter()
        .map(|&(p, s)| match p {
            "ab" => (p, -20.0),
            "bc" => (p, -10.0),
            _ => (p, s),
        })
        .collect();
    let tok = tokenizer(&swapped);
    assert_eq!(tok.encode("abc", false).unwrap(), ids(&tok, &["a", "bc"]));
}

#[test]
fn spaces_become_the_sentencepiece_mark_without_a_dummy_prefix() {
    let tok = tokenizer(PIECES);
    assert_eq!(tok.encode("c ab", false).unwrap(), ids(&tok, &["c", "▁ab"]));
    // No space is invented before the first word.
    assert_eq!(tok.encode("ab", false).unwrap(), ids(&tok, &["ab"]));
    // A run of two spaces is the user-defined piece, matched on the raw text.
    assert_eq!(tok.encode("c  c", false).unwrap(), ids(&tok, &["c", "  ", "c"]));
    assert_eq!(tok.encode("a\n\nb", false).unwrap(), ids(&tok, &["a", "\n\n", "b"]));
}

#[test]
fn user_defined_markup_pieces_match_on_raw_text_but_image_markers_do_not() {
    let tok = tokenizer(PIECES);
    // `<b>` is user-defined: one piece, as llama.cpp gives it, and not a control token.
    let b = tok.token_id("<b>").unwrap();
    assert_eq!(tok.encode("a<b>c", false).unwrap(), vec![ids(&tok, &["a"])[0], b, ids(&tok, &["c"])[0]]);
    assert!(!tok.is_control(b));
    assert_eq!(tok.decode(&[b]).unwrap(), "<b>");
    // `<start_of_image>` is user-defined too, but only the engine may insert it.
    let image = tok.token_id("<start_of_image>").unwrap();
    assert!(!tok.encode("<start_of_image>", false).unwrap().contains(&image));
}

#[test]
fn unknown_characters_fall_back_to_bytes() {
    let tok = tokenizer(PIECES);
    // U+C548 '안' = EC 95 88, not in this vocabulary.
    assert_eq!(tok.encode("a안", false).unwrap(), ids(&tok, &["a", "<0xEC>", "<0x95>", "<0x88>"]));
    assert_eq!(tok.decode(&tok.encode("a안 ab", false).unwrap()).unwrap(), "a안 ab");
}

#[test]
fn without_byte_pieces_unknown_characters_become_unk_not_nothing() {
    // A vocabulary with no `<0xNN>` pieces: byte fallback cannot help.
    let tokens: Vec<String> = ["<pad>", "<eos>", "<bos>", "<unk>", "a"].map(String::from).to_vec();
    let scores = vec![0.0; 5];
    let types = vec![CONTROL, CONTROL, CONTROL, CONTROL, NORMAL];
    let mut meta = metadata(&tokens, &scores, &types);
    meta.push(("tokenizer.ggml.unknown_token_id", Value::U32(3)));
    let tok = Tokenizer::from_gguf(&content(&meta)).unwrap();
    assert_eq!(tok.encode("a안a", false).unwrap(), vec![4, 3, 4]);
}

#[test]
fn bos_is_added_on_request() {
    let tok = tokenizer(PIECES);
    assert_eq!(tok.encode("a", true).unwrap(), vec![BOS, tok.token_id("a").unwrap()]);
    assert_eq!(tok.encode("", true).unwrap(), vec![BOS]);
    assert_eq!(tok.encode("", false).unwrap(), Vec::<u32>::new());
}

#[test]
fn control_strings_in_plain_text_stay_text() {
    let tok = tokenizer(PIECES);
    for text in ["<start_of_turn>", "<bos>", "<start_of_image>", "a<end_of_turn>b"] {
        let got = tok.encode(text, false).unwrap();
        assert!(got.iter().all(|&id| !tok.is_control(id)), "{text:?} -> {got:?}");
        assert_eq!(tok.decode(&got).unwrap(), text);
    }
}

#[test]
fn encode_prompt_parses_control_strings_only_in_control_parts() {
    let tok = tokenizer(PIECES);
    let parts = vec![
        PromptPart::Control("<bos><start_of_turn>ab\n".into()),
        PromptPart::Text("c<end_of_turn>".into()),
        PromptPart::Control("<end_of_turn>\n".into()),
    ];
    let got = tok.encode_prompt(&parts, true).unwrap();
    let mut want = vec![BOS, START_OF_TURN];
    want.extend(ids(&tok, &["ab", "\n", "c"]));
    want.extend(tok.encode("<end_of_turn>", false).unwrap());
    want.extend([END_OF_TURN, tok.token_id("\n").unwrap()]);
    assert_eq!(got, want);
}

#[test]
fn encode_prompt_starts_with_exactly_one_bos() {
    let tok = tokenizer(PIECES);
    let with_bos = [PromptPart::Control("<bos>a".into())];
    let without = [PromptPart::Control("a".into())];
    let a = tok.token_id("a").unwrap();
    assert_eq!(tok.encode_prompt(&with_bos, true).unwrap(), vec![BOS, a]);
    assert_eq!(tok.encode_prompt(&without, true).unwrap(), vec![BOS, a]);
    assert_eq!(tok.encode_prompt(&without, false).unwrap(), vec![a]);
}

#[test]
fn text_across_parts_is_encoded_as_one_run() {
    // Template text "▁" + content "ab": one run gives "▁ab", as tokenizing the whole string would.
    let tok = tokenizer(PIECES);
    let parts = [PromptPart::Control("c ".into()), PromptPart::Text("ab".into())];
    assert_eq!(tok.encode_prompt(&parts, false).unwrap(), ids(&tok, &["c", "▁ab"]));
}

#[test]
fn decode_omits_control_tokens_and_rejects_unknown_ids() {
    let tok = tokenizer(PIECES);
    let mut seq = vec![BOS, START_OF_TURN];
    seq.extend(tok.encode("ab c", false).unwrap());
    seq.push(END_OF_TURN);
    assert_eq!(tok.decode(&seq).unwrap(), "ab c");
    match tok.decode(&[tok.vocab_size() as u32]) {
        Err(EngineError::Tokenizer(msg)) => {
            assert!(msg.contains("outside the vocabulary"), "{msg}")
        }
        other => panic!("expected a Tokenizer error, got {other:?}"),
    }
}

#[test]
fn stream_decoder_holds_back_split_characters() {
    let tok = tokenizer(PIECES);
    let mut stream = StreamDecoder::new(&tok);
    let a = tok.token_id("a").unwrap();
    assert_eq!(stream.push(a), Some("a".to_string()));
    assert_eq!(stream.push(tok.token_id("<0xEC>").unwrap()), None);
    assert_eq!(stream.push(tok.token_id("<0x95>").unwrap()), None);
    assert_eq!(stream.push(START_OF_TURN), None); // control: nothing, and it keeps the bytes
    assert_eq!(stream.push(tok.token_id("<0x88>").unwrap()), Some("안".to_string()));
    assert_eq!(stream.push(tok.token_id("▁ab").unwrap()), Some(" ab".to_string()));
    assert_eq!(stream.finish(), None);
}

#[test]
fn stream_decoder_replaces_bytes_that_cannot_form_a_character() {
    let tok = tokenizer(PIECES);
    let mut stream = StreamDecoder::new(&tok);
    // A lone continuation byte is invalid at once; a truncated lead byte only at the end.
    assert_eq!(stream.push(tok.token_id("<0x95>").unwrap()), Some("\u{FFFD}".to_string()));
    assert_eq!(stream.push(tok.token_id("<0xEC>").unwrap()), None);
    assert_eq!(stream.finish(), Some("\u{FFFD}".to_string()));
}

#[test]
fn special_ids_and_control_flags() {
    let tok = tokenizer(PIECES);
    assert_eq!(tok.bos_id(), BOS);
    // <eos> from the metadata plus <end_of_turn>, which ends Gemma's turns.
    assert_eq!(tok.eos_ids(), &[1, END_OF_TURN]);
    assert!(tok.is_control(START_OF_TURN));
    assert!(tok.is_control(tok.token_id("<start_of_image>").unwrap()));
    assert!(!tok.is_control(tok.token_id("\n").unwrap()));
    assert!(!tok.is_control(FIRST_NORMAL));
    assert!(!tok.is_control(u32::MAX));
    assert_eq!(tok.vocab_size(), FIRST_NORMAL as usize + PIECES.len());
    assert_eq!(tok.token_id("nope"), None);
}

#[test]
fn merge_cache_is_written_reused_and_rebuilt_when_damaged() {
    let (t, s, ty) = vocab(PIECES);
    let c = content(&metadata(&t, &s, &ty));
    let dir = tempfile::tempdir().unwrap();
    let fresh = Tokenizer::from_gguf_cached(&c, Some(dir.path())).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let cache = &files[0];

    let cached = Tokenizer::from_gguf_cached(&c, Some(dir.path())).unwrap();
    for text in ["abc", "c ab", "a안"] {
        assert_eq!(cached.encode(text, true).unwrap(), fresh.encode(text, true).unwrap());
    }

    // A cache cut short by whole merges, or with a merge rewritten to another valid id, is
    // caught (count and checksum) and rebuilt, instead of silently tokenizing differently.
    let good = std::fs::read(cache).unwrap();
    let mut short = good.clone();
    short.truncate(good.len() - 8);
    let mut altered = good.clone();
    let last = altered.len() - 8;
    altered[last] ^= 1;
    for damaged in [short, altered] {
        std::fs::write(cache, &damaged).unwrap();
        let rebuilt = Tokenizer::from_gguf_cached(&c, Some(dir.path())).unwrap();
        assert_eq!(rebuilt.encode("abc c ab", false).unwrap(), fresh.encode("abc c ab", false).unwrap());
        assert_eq!(std::fs::read(cache).unwrap(), good);
    }

    // A damaged cache is ignored and replaced, not trusted.
    std::fs::write(cache, b"garbage").unwrap();
    let rebuilt = Tokenizer::from_gguf_cached(&c, Some(dir.path())).unwrap();
    assert_eq!(rebuilt.encode("abc", false).unwrap(), fresh.encode("abc", false).unwrap());
    assert_ne!(std::fs::read(cache).unwrap(), b"garbage");

    // Another vocabulary gets another cache file.
    let swapped: Vec<f32> = s.iter().map(|&x| if x == -10.0 { -25.0 } else { x }).collect();
    let other = Tokenizer::from_gguf_cached(&content(&metadata(&t, &swapped, &ty)), Some(dir.path())).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    assert_eq!(other.encode("abc", false).unwrap(), ids(&other, &["a", "bc"]));
}

#[test]
fn unwritable_cache_dir_still_gives_a_tokenizer() {
    let (t, s, ty) = vocab(PIECES);
    let c = content(&metadata(&t, &s, &ty));
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    // A path below a regular file cannot be created.
    let tok = Tokenizer::from_gguf_cached(&c, Some(&blocker.join("cache"))).unwrap();
    assert_eq!(tok.encode("abc", false).unwrap(), ids(&tok, &["ab", "c"]));
}

fn expect_metadata_error(meta: Vec<(&str, Value)>, key: &str, reason_part: &str) {
    match Tokenizer::from_gguf(&content(&meta)) {
        Err(EngineError::Metadata { key: k, reason }) => {
            assert_eq!(k, key, "{reason}");
            assert!(reason.contains(reason_part), "{key}: {reason}");
        }
        Err(other) => panic!("{key}: expected a Metadata error, got {other:?}"),
        Ok(_) => panic!("{key}: bad vocabulary accepted"),
    }
}

#[test]
fn bad_vocabulary_metadata_is_refused_with_the_key_named() {
    let (t, s, ty) = vocab(PIECES);
    let base = || metadata(&t, &s, &ty);
    let without = |key: &str| -> Vec<(&'static str, Value)> { base().into_iter().filter(|(k, _)| *k != key).collect() };
    let replaced = |key: &str, v: Value| -> Vec<(&'static str, Value)> {
        base().into_iter().map(|(k, old)| if k == key { (k, v.clone()) } else { (k, old) }).collect()
    };
    expect_metadata_error(without("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens", "missing");
    expect_metadata_error(without("tokenizer.ggml.scores"), "tokenizer.ggml.scores", "missing");
    expect_metadata_error(without("tokenizer.ggml.token_type"), "tokenizer.ggml.token_type", "missing");
    expect_metadata_error(
        replaced("tokenizer.ggml.tokens", Value::String("a".into())),
        "tokenizer.ggml.tokens",
        "not an array",
    );
    expect_metadata_error(replaced("tokenizer.ggml.tokens", Value::Array(vec![])), "tokenizer.ggml.tokens", "empty");
    expect_metadata_error(
        replaced("tokenizer.ggml.scores", Value::Array(vec![Value::F32(0.0); 3])),
        "tokenizer.ggml.scores",
        "3 entries",
    );
    let mut bad_types = ty.clone();
    bad_types[7] = 9;
    expect_metadata_error(metadata(&t, &s, &bad_types), "tokenizer.ggml.token_type", "unknown token type 9");
    expect_metadata_error(
        replaced("tokenizer.ggml.bos_token_id", Value::U32(1_000_000)),
        "tokenizer.ggml.bos_token_id",
        "outside the vocabulary",
    );
    expect_metadata_error(
        replaced("tokenizer.ggml.eos_token_id", Value::String("x".into())),
        "tokenizer.ggml.eos_token_id",
        "not a token id",
    );
}

#[test]
fn a_non_sentencepiece_tokenizer_is_refused() {
    let (t, s, ty) = vocab(PIECES);
    let meta: Vec<(&str, Value)> = metadata(&t, &s, &ty)
        .into_iter()
        .map(|(k, v)| if k == "tokenizer.ggml.model" { (k, Value::String("gpt2".into())) } else { (k, v) })
        .collect();
    match Tokenizer::from_gguf(&content(&meta)) {
        Err(EngineError::Tokenizer(msg)) => assert!(msg.contains("gpt2"), "{msg}"),
        Err(other) => panic!("expected a Tokenizer error, got {other:?}"),
        Ok(_) => panic!("a gpt2 vocabulary was accepted"),
    }
}

#[test]
fn tokenizer_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let tok = tokenizer(PIECES);
    shareable(&tok);
    let want = tok.encode("c ab", false).unwrap();
    let got = std::thread::scope(|s| s.spawn(|| tok.encode("c ab", false).unwrap()).join().unwrap());
    assert_eq!(got, want);
}
