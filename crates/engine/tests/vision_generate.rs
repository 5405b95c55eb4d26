//! Image embeddings in the text model, end to end on the fixture pair, against transformers'
//! float32 reference (tests/fixtures/vision): prompt ids, top-20 next-token probabilities and
//! greedy tokens, for one image, and for two images whose second straddles a prefill chunk.

mod common;

use std::sync::Arc;

use candle_core::Device;
use common::vision as fx;
use engine::chat_template::{ChatMessage, Role};
use engine::sampler::SamplingParams;
use engine::session::{Engine, GenerateOptions, LoadOptions, Session, PREFILL_CHUNK};
use engine::vision::{PromptImage, VisionEncoder};
use engine::EngineError;

/// A reference step whose top-1 leads the top-2 by less than this may go either way.
const CLEAR_MARGIN: f64 = 0.01;

fn load() -> (Arc<Engine>, VisionEncoder) {
    let engine = Engine::load(&fx::text_gguf(), &LoadOptions::default()).expect("load text model");
    let enc = VisionEncoder::load(&fx::mmproj_gguf(), &Device::Cpu).expect("load mmproj");
    enc.check_text_model(engine.config()).expect("a pair");
    (engine, enc)
}

fn encode(enc: &VisionEncoder, name: &str) -> PromptImage {
    PromptImage { key: name.to_string(), embeddings: enc.encode(&fx::pixels(name)).expect("encode") }
}

fn prompt(engine: &Engine, reference: &serde_json::Value, images: usize) -> Vec<u32> {
    let text = reference["prompt"].as_str().unwrap();
    engine.chat_prompt_with_images(&[ChatMessage::new(Role::User, text)], &[images], 256).expect("prompt")
}

fn ref_top(case: &serde_json::Value) -> Vec<(u32, f64)> {
    case["top"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap())).collect()
}

/// Every id in either top-20 has probabilities within 0.01 in both (an id outside a list has at
/// most that list's last probability).
fn assert_top_close(name: &str, ours: &[(u32, f32)], want: &[(u32, f64)]) {
    let ours20 = &ours[..20];
    let floor_ours = ours20.last().unwrap().1 as f64;
    let floor_ref = want.last().unwrap().1;
    for &(id, p) in want {
        let got = ours.iter().find(|o| o.0 == id).map(|o| o.1 as f64);
        match got {
            Some(g) => assert!((g - p).abs() <= 0.01, "{name}: id {id} p {g} vs reference {p}"),
            None => assert!(p - floor_ours <= 0.01, "{name}: reference id {id} (p {p}) missing from ours"),
        }
    }
    for &(id, p) in ours20 {
        if !want.iter().any(|w| w.0 == id) {
            assert!(p as f64 - floor_ref <= 0.01, "{name}: our id {id} (p {p}) missing from the reference");
        }
    }
    assert!(want[0].1 > 0.2, "{name}: the reference's top-1 is {} — too flat to test anything", want[0].1);
}

#[test]
fn prompts_probabilities_and_greedy_tokens_match_transformers() {
    let (engine, enc) = load();
    let reference = fx::reference();
    let mut straddled = false;
    for case in reference["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let images: Vec<PromptImage> =
            case["images"].as_array().unwrap().iter().map(|n| encode(&enc, n.as_str().unwrap())).collect();
        let ids = prompt(&engine, &reference, images.len());
        assert_eq!(ids, common::ids(&case["prompt_ids"]), "{name}: prompt ids");
        // The two-image prompt puts its second image across the first chunk boundary.
        let soft = engine.tokenizer().token_id("<image_soft_token>").unwrap();
        straddled |= ids.get(PREFILL_CHUNK - 1) == Some(&soft) && ids.get(PREFILL_CHUNK) == Some(&soft);

        let mut session = Session::new(engine.clone(), 1024).unwrap();
        let top = session.next_token_top(&ids, &images, 100).unwrap();
        assert_top_close(name, &top, &ref_top(case));

        let opts = GenerateOptions { max_tokens: 16, sampling: SamplingParams::greedy(), ..Default::default() };
        let out = session.generate_with_images(&ids, &images, &opts, &mut |_| {}).unwrap();
        // (A prompt longer than the sliding window cannot step back one token: it is computed again.)
        if ids.len() <= engine.config().sliding_window {
            assert_eq!(out.reused_tokens, ids.len() - 1, "{name}: the prompt was prefilled by next_token_top");
        }
        let want = common::ids(&case["greedy"]);
        let margins: Vec<f64> =
            case["greedy_margins"].as_array().unwrap().iter().map(|m| m.as_f64().unwrap()).collect();
        let mut compared = 0;
        for (i, (&w, &m)) in want.iter().zip(&margins).enumerate() {
            if m < CLEAR_MARGIN || engine.tokenizer().eos_ids().contains(&w) {
                break;
            }
            assert_eq!(out.ids.get(i), Some(&w), "{name}: greedy token {i} (reference margin {m})");
            compared += 1;
        }
        assert!(compared >= 1, "{name}: no greedy step had a clear margin");
    }
    assert!(straddled, "no case has an image across the prefill chunk boundary");
}

#[test]
fn a_different_image_at_the_same_place_is_not_served_from_the_cache() {
    let (engine, enc) = load();
    let reference = fx::reference();
    let case = |n: &str| reference["cases"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
    let ids = prompt(&engine, &reference, 1);
    let mut session = Session::new(engine.clone(), 1024).unwrap();
    session.next_token_top(&ids, &[encode(&enc, "square")], 20).unwrap();
    // Same ids, another image: the cache must be recomputed from the image on.
    let top = session.next_token_top(&ids, &[encode(&enc, "wide")], 100).unwrap();
    assert_top_close("wide after square", &top, &ref_top(&case("wide")));
}

#[test]
fn images_and_soft_tokens_must_agree() {
    let (engine, enc) = load();
    let reference = fx::reference();
    let ids = prompt(&engine, &reference, 1);
    let mut session = Session::new(engine.clone(), 1024).unwrap();
    let square = encode(&enc, "square");
    let err = session.next_token_top(&ids, &[], 5).unwrap_err();
    assert!(matches!(err, EngineError::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("1 images' soft tokens but 0 images"), "{err}");
    let err = session.next_token_top(&ids, &[square.clone(), square.clone()], 5).unwrap_err();
    assert!(err.to_string().contains("1 images' soft tokens but 2 images"), "{err}");
    let half = PromptImage { key: "half".into(), embeddings: square.embeddings.narrow(0, 0, 128).unwrap() };
    let err = session.next_token_top(&ids, &[half], 5).unwrap_err();
    assert!(err.to_string().contains("128 embeddings for 256 soft tokens"), "{err}");
}

/// With Pan & Scan, the prompt around each image (the whole image introduced as the original,
/// then its crops) is the reference processor's, id for id: transformers' `Gemma3Processor` with
/// `do_pan_and_scan=True` (tests/fixtures/images/pan_scan_prompt.json, made by
/// scripts/make-pan-scan-prompt-ref), for a wide image alone and after a square one it does not cut.
/// The crop counts are the engine's own crop rule on the same files.
#[test]
fn pan_and_scan_prompt_ids_match_the_reference_processor() {
    use engine::vision::preprocess::{decode, ImageLimits, PanScan};
    let (engine, _) = load();
    let images = fx::dir().join("../images");
    let path = images.join("pan_scan_prompt.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reference: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    let question = reference["prompt"].as_str().unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let crops: Vec<usize> = case["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let f = f.as_str().unwrap();
                let file = if f == "square.png" { fx::dir().join(f) } else { images.join(f) };
                let img = decode(&std::fs::read(&file).unwrap(), &ImageLimits::default()).expect("decode");
                PanScan::default().crop_boxes(img.width(), img.height()).len()
            })
            .collect();
        let want_crops: Vec<usize> =
            case["crops"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap() as usize).collect();
        assert_eq!(crops, want_crops, "{name}: crop counts");
        let ids = engine
            .chat_prompt_with_image_groups(&[ChatMessage::new(Role::User, question)], &[crops], 256)
            .expect("prompt");
        assert_eq!(ids, common::ids(&case["prompt_ids"]), "{name}: prompt ids");
    }
}
