//! Bad GGUF files are refused with an error that names the problem: no panic, no huge
//! allocation (each case is a few bytes or a tiny model, so an allocation driven by a header
//! count would show up as an abort, not a pass).

mod common;

use std::io::Write;
use std::path::Path;

use candle_core::Device;
use common::tiny::Tiny;
use engine::model::Model;
use engine::EngineError;

fn load_err(path: &Path) -> String {
    match Model::load(path, &Device::Cpu) {
        Ok(_) => panic!("{} loaded, expected an error", path.display()),
        Err(e) => e.to_string(),
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path).unwrap().write_all(bytes).unwrap();
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.gguf");
    write(&p, b"");
    assert!(load_err(&p).contains("empty"), "{}", load_err(&p));
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Model::load(&dir.path().join("nope.gguf"), &Device::Cpu).err().unwrap();
    assert!(matches!(err, EngineError::Io { .. }), "{err}");
}

#[test]
fn random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("random.gguf");
    let bytes: Vec<u8> = common::tiny::random(4096, 7, 1.0).iter().map(|x| (x * 127.0) as i8 as u8).collect();
    write(&p, &bytes);
    let e = load_err(&p);
    assert!(e.contains("not a GGUF file"), "{e}");
}

fn header(version: u32, tensors: u64, kvs: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(version.to_le_bytes());
    b.extend(tensors.to_le_bytes());
    b.extend(kvs.to_le_bytes());
    b
}

#[test]
fn absurd_tensor_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tensors.gguf");
    let mut b = header(3, u64::MAX, 0);
    b.extend([0u8; 64]);
    write(&p, &b);
    let e = load_err(&p);
    assert!(e.contains("invalid GGUF") && e.contains("tensor"), "{e}");
}

#[test]
fn absurd_metadata_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kvs.gguf");
    let mut b = header(3, 0, 1 << 40);
    b.extend([0u8; 64]);
    write(&p, &b);
    let e = load_err(&p);
    assert!(e.contains("invalid GGUF") && e.contains("metadata"), "{e}");
}

#[test]
fn absurd_string_length() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("string.gguf");
    let mut b = header(3, 0, 1);
    b.extend((u64::MAX / 2).to_le_bytes()); // key length
    b.extend([b'a'; 32]);
    write(&p, &b);
    let e = load_err(&p);
    assert!(e.contains("invalid GGUF") && e.contains("string length"), "{e}");
}

#[test]
fn truncated_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    Tiny::default().write(&p);
    let full = std::fs::read(&p).unwrap();
    // Cut in the tensor data, in the metadata, and in the middle of a number.
    for keep in [full.len() - 100, full.len() / 2, 200, 30] {
        let t = dir.path().join(format!("cut{keep}.gguf"));
        write(&t, &full[..keep]);
        let e = load_err(&t);
        assert!(e.contains("invalid GGUF"), "cut at {keep}: {e}");
        if keep == full.len() - 100 || keep == 30 {
            assert!(e.contains("truncated"), "cut at {keep}: {e}");
        }
    }
}

#[test]
fn not_gemma3() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("llama.gguf");
    Tiny { arch: "llama", ..Tiny::default() }.write(&p);
    let err = Model::load(&p, &Device::Cpu).err().unwrap();
    assert!(matches!(err, EngineError::UnsupportedModel { .. }), "{err}");
    assert!(err.to_string().contains("`llama` is not a Gemma 3 model"), "{err}");
}

#[test]
fn wrong_tensor_shape() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("shape.gguf");
    let tiny = Tiny::default();
    tiny.write_with(&p, |ts| {
        let (_, t) = ts.iter_mut().find(|(n, _)| n == "blk.3.ffn_up.weight").unwrap();
        // A fresh tensor: candle's quantize reads a narrowed view's whole buffer.
        let rows = t.narrow(0, 0, 96).unwrap().to_vec2::<f32>().unwrap();
        *t = candle_core::Tensor::new(rows, &Device::Cpu).unwrap();
    });
    let e = load_err(&p);
    assert!(e.contains("blk.3.ffn_up.weight") && e.contains("[96, 64]") && e.contains("[128, 64]"), "{e}");
}

#[test]
fn missing_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("missing.gguf");
    Tiny::default().write_with(&p, |ts| ts.retain(|(n, _)| n != "blk.5.attn_k_norm.weight"));
    let e = load_err(&p);
    assert!(e.contains("blk.5.attn_k_norm.weight") && e.contains("missing"), "{e}");
}

#[test]
fn absurd_hyper_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("heads.gguf");
    // 4 heads over 3 kv heads cannot be grouped.
    Tiny { kv_heads: 3, ..Tiny::default() }.write(&p);
    let e = load_err(&p);
    assert!(e.contains("head_count_kv"), "{e}");
}
