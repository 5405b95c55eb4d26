//! `hearth generate --mmproj M --image F` on the tiny Gemma 3 vision pair (tests/fixtures/vision),
//! against transformers' float32 reference.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vision").join(name);
    p.to_str().unwrap().to_string()
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

fn run(args: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).env("HEARTH_DATA_DIR", data.path()).output().unwrap()
}

fn generate(images: &[&str], extra: &[&str]) -> Result<Value, String> {
    let (model, mmproj) = (fixture("tiny-gemma3-vision.gguf"), fixture("tiny-gemma3-mmproj.gguf"));
    let prompt = reference()["prompt"].as_str().unwrap().to_string();
    let mut args = vec!["generate", "--model", &model, "--mmproj", &mmproj, "--prompt", &prompt, "--json"];
    let paths: Vec<String> = images.iter().map(|i| fixture(i)).collect();
    for p in &paths {
        args.extend(["--image", p.as_str()]);
    }
    args.extend(extra);
    let out = run(&args);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout))))
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

#[test]
fn generate_with_images_matches_transformers() {
    let reference = reference();
    let greedy = ["--temperature", "0", "--max-tokens", "16", "--top", "20", "--threads", "2"];
    for (case, images) in [("square", vec!["square.896.png"]), ("square_wide", vec!["square.896.png", "wide.896.png"])]
    {
        let want = reference["cases"].as_array().unwrap().iter().find(|c| c["name"] == case).unwrap();
        // The 896x896 PNGs are PIL's resize already: the CLI's own resize leaves them as they are.
        let got = generate(&images, &greedy).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(ids(&got["prompt_ids"]), ids(&want["prompt_ids"]), "{case}: prompt ids");
        assert_eq!(got["images"], images.len(), "{case}");
        let top = got["top"].as_array().unwrap();
        assert_eq!(top.len(), 20, "{case}");
        for (g, w) in top.iter().zip(want["top"].as_array().unwrap()).take(3) {
            assert_eq!(g[0], w[0], "{case}: top ids");
            let (gp, wp) = (g[1].as_f64().unwrap(), w[1].as_f64().unwrap());
            assert!((gp - wp).abs() <= 0.01, "{case}: p {gp} vs reference {wp}");
        }
        let (gen, margins) = (ids(&got["ids"]), want["greedy_margins"].as_array().unwrap());
        let clear = margins.iter().take_while(|m| m.as_f64().unwrap() >= 0.01).count().max(1);
        assert_eq!(gen[..clear], ids(&want["greedy"])[..clear], "{case}: greedy tokens");
        assert!(got["text"].is_string());
    }
}

#[test]
fn original_images_of_any_shape_and_alpha_work() {
    // The wide 16:9 PNG and the tiny RGBA one, resized by the CLI: top-1 as the reference's.
    let reference = reference();
    for (case, file) in [("wide", "wide.png"), ("tiny_rgba", "tiny_rgba.png")] {
        let got = generate(&[file], &["--temperature", "0", "--max-tokens", "2", "--top", "5"])
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let want = reference["cases"].as_array().unwrap().iter().find(|c| c["name"] == case).unwrap();
        assert_eq!(got["top"][0][0], want["top"][0][0], "{case}: top-1 id");
        assert_eq!(got["ids"].as_array().unwrap().len(), 2, "{case}");
    }
}

#[test]
fn image_errors_are_clear() {
    let e = generate(&["square.png"], &["--raw"]).unwrap_err();
    assert!(e.contains("--image needs the chat template"), "{e}");
    let model = fixture("tiny-gemma3-vision.gguf");
    let sq = fixture("square.png");
    let out = run(&["generate", "--model", &model, "--image", &sq, "--prompt", "hi", "--json"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("--image needs --mmproj"), "{e}");
    let e = generate(&["reference.json"], &[]).unwrap_err();
    assert!(e.contains("reading image") && e.contains("reference.json"), "{e}");
    // The 270M text model is 640 wide; this projector makes 16-wide embeddings.
    let test_model = support::test_model();
    let mmproj = fixture("tiny-gemma3-mmproj.gguf");
    let args =
        ["generate", "--model", test_model.to_str().unwrap(), "--mmproj", &mmproj, "--image", &sq, "--prompt", "hi"];
    let out = run(&args);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("not a pair"), "{e}");
}

#[test]
fn bench_reports_encoder_time_and_memory() {
    let (model, mmproj, image) =
        (fixture("tiny-gemma3-vision.gguf"), fixture("tiny-gemma3-mmproj.gguf"), fixture("square.png"));
    let out = run(&["bench", "--model", &model, "--mmproj", &mmproj, "--image", &image, "-r", "1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["encode_s"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["tokens_per_image"], 256);
    let peak = v["peak_rss_bytes"].as_u64().unwrap();
    assert!(peak >= v["rss_before_encoder_bytes"].as_u64().unwrap(), "{v}");
    assert!(v["encoder_resident_bytes"].as_u64().unwrap() >= v["encoder_file_bytes"].as_u64().unwrap(), "{v}");
    assert!(v["activation_peak_estimate_bytes"].as_u64().unwrap() > 0, "{v}");
}

/// Runs of image soft tokens in a prompt: one per image or crop.
fn image_spans(prompt: &[u64], soft: u64) -> usize {
    prompt.iter().enumerate().filter(|&(i, &id)| id == soft && (i == 0 || prompt[i - 1] != soft)).count()
}

#[test]
fn pan_scan_adds_the_crops_of_an_elongated_image_only() {
    let soft = reference()["image_soft_token"].as_u64().unwrap();
    let args = ["--temperature", "0", "--max-tokens", "1", "--threads", "2"];
    let plain = generate(&["wide.png", "square.png"], &args).unwrap();
    let with: Vec<&str> = args.iter().copied().chain(["--pan-scan"]).collect();
    let cropped = generate(&["wide.png", "square.png"], &with).unwrap();
    // wide.png (640x360) is cut in two by the reference's rule; square.png is not.
    assert_eq!(cropped["crops"], serde_json::json!([2, 0]));
    assert_eq!((plain["images"].clone(), cropped["images"].clone()), (2.into(), 2.into()));
    assert!(plain.get("crops").is_none());
    let (p, c) = (ids(&plain["prompt_ids"]), ids(&cropped["prompt_ids"]));
    assert_eq!((image_spans(&p, soft), image_spans(&c, soft)), (2, 4));
    let per = p.iter().filter(|&&id| id == soft).count() / 2;
    assert_eq!(c.iter().filter(|&&id| id == soft).count(), 4 * per);
    // Pan & Scan only adds: the plain prompt's tail (square image, text, turn end) is unchanged.
    let tail = p.len() - p.iter().rposition(|&id| id == soft).unwrap();
    assert_eq!(p[p.len() - tail..], c[c.len() - tail..]);
}
