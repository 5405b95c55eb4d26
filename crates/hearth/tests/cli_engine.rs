//! The engine commands' contract (flags, JSON) on the real 270M model, checked against
//! llama.cpp's reference run (tests/fixtures/llama-270m.json).

mod support;
use support::test_model;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn refs() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llama-270m.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

fn hearth(data: &tempfile::TempDir, args: &[&str]) -> Value {
    let out =
        Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).env("HEARTH_DATA_DIR", data.path()).output().unwrap();
    assert!(out.status.success(), "hearth {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn tokenize_matches_llama_cpp() {
    let data = tempfile::tempdir().unwrap();
    let model = test_model();
    let refs = refs();
    for entry in refs["tokenize"].as_array().unwrap() {
        let text = entry["text"].as_str().unwrap();
        let got = hearth(&data, &["tokenize", "--model", model.to_str().unwrap(), text]);
        assert_eq!(ids(&got["ids"]), ids(&entry["ids"]), "text {text:?}");
    }
}

#[test]
fn greedy_generate_reproduces_llama_cpp() {
    let data = tempfile::tempdir().unwrap();
    let model = test_model();
    let refs = refs();
    for (name, case) in refs["cases"].as_object().unwrap() {
        let stable = case["stable_prefix"].as_u64().unwrap() as usize;
        let n = stable.to_string();
        let got = hearth(
            &data,
            &[
                "generate",
                "--model",
                model.to_str().unwrap(),
                "--prompt",
                case["prompt"].as_str().unwrap(),
                "--raw",
                "--temperature",
                "0",
                "--max-tokens",
                &n,
                "--threads",
                "2",
                "--json",
            ],
        );
        assert_eq!(ids(&got["prompt_ids"]), ids(&case["prompt_ids"]), "case {name}: prompt ids");
        let gen = ids(&got["ids"]);
        assert_eq!(gen[..stable.min(gen.len())], ids(&case["greedy_ids"])[..stable], "case {name}");
        assert_eq!(gen.len(), stable, "case {name}: stopped early");
        assert!(got["gen_tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(got["prompt_tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(got["text"].is_string());
    }
}

#[test]
fn score_matches_llama_cpp_top1_and_probabilities() {
    let data = tempfile::tempdir().unwrap();
    let model = test_model();
    let refs = refs();
    // The short cases here; the engine's own test scores the long one too.
    for name in ["P1", "P2"] {
        let case = &refs["cases"][name];
        let prompt = ids(&case["prompt_ids"]);
        let greedy = ids(&case["greedy_ids"]);
        let all: Vec<u64> = prompt.iter().chain(&greedy).copied().collect();
        let file = data.path().join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_string(&all).unwrap()).unwrap();
        let got = hearth(
            &data,
            &[
                "score",
                "--model",
                model.to_str().unwrap(),
                "--ids-json",
                file.to_str().unwrap(),
                "--top",
                "5",
                "--json",
            ],
        );
        let positions = got["positions"].as_array().unwrap();
        assert_eq!(positions.len(), all.len());
        let mut diffs = Vec::new();
        for (i, want) in case["top5_default"].as_array().unwrap().iter().enumerate() {
            let ours = positions[prompt.len() - 1 + i].as_array().unwrap();
            assert_eq!(ours.len(), 5);
            let (id1, p1, p2) =
                (want[0][0].as_u64().unwrap(), want[0][1].as_f64().unwrap(), want[1][1].as_f64().unwrap());
            if p1 - p2 >= 0.1 {
                assert_eq!(ours[0][0].as_u64().unwrap(), id1, "{name} position {i}");
            }
            let our_p = ours.iter().find(|e| e[0].as_u64() == Some(id1)).map_or(0.0, |e| e[1].as_f64().unwrap());
            diffs.push((our_p - p1).abs());
        }
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        assert!(mean < 0.03, "{name}: mean |dp| {mean}");
    }
}

#[test]
fn errors_go_to_stderr_with_a_nonzero_exit() {
    let data = tempfile::tempdir().unwrap();
    let bad = data.path().join("bad.gguf");
    std::fs::write(&bad, "definitely not a model, just text. ".repeat(20)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["generate", "--model", bad.to_str().unwrap(), "--prompt", "hi", "--json"])
        .env("HEARTH_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a GGUF file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `hearth bench --kv-type`: the cache it allocates is the formula's, f16 by default and half of
/// f32; on the 270M model (3 global + 15 local layers, 1 KV head x 256, window 512) at ctx 1024,
/// f16 is (3 x 1024 + 15 x 512) x 2 x 256 x 2 bytes.
#[test]
fn bench_kv_bytes_follow_the_kv_type() {
    let data = tempfile::tempdir().unwrap();
    let model = test_model();
    let run = |extra: &[&str]| {
        let mut args = vec!["bench", "--model", model.to_str().unwrap(), "-p", "8", "-n", "2", "--ctx", "1024"];
        args.extend_from_slice(&["-r", "1", "--threads", "2", "--json"]);
        args.extend_from_slice(extra);
        hearth(&data, &args)
    };
    let default = run(&[]);
    let f16 = run(&["--kv-type", "f16"]);
    let f32 = run(&["--kv-type", "f32"]);
    // Without the warm-up the one repetition is still timed (the long-prompt benchmarks use it).
    let cold = run(&["--no-warmup"]);
    for (name, r) in [("default", &default), ("f16", &f16), ("f32", &f32), ("--no-warmup", &cold)] {
        assert_eq!(r["kv_bytes"], r["kv_bytes_formula"], "{name}: {r}");
        assert!(r["gen_tokens_per_s"].as_f64().unwrap() > 0.0, "{name}");
        assert!(r["prompt_tokens_per_s"].as_f64().unwrap() > 0.0, "{name}");
    }
    assert_eq!(default["kv_type"], "f16");
    // --threads reaches the engine's own pool (no longer an environment variable).
    assert_eq!(default["threads"], 2, "{default}");
    assert_eq!(f32["kv_type"], "f32");
    let f16_bytes = f16["kv_bytes"].as_u64().unwrap();
    assert_eq!(f16_bytes, (3 * 1024 + 15 * 512) * 2 * 256 * 2);
    assert_eq!(default["kv_bytes"].as_u64().unwrap(), f16_bytes);
    assert_eq!(f32["kv_bytes"].as_u64().unwrap(), 2 * f16_bytes);
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["bench", "--model", model.to_str().unwrap(), "--kv-type", "q4", "--json"])
        .env("HEARTH_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown --kv-type was accepted");
}
