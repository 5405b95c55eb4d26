//! The header summary the model manager asks (`engine::gguf::Summary`): what it reports for
//! Gemma 3 models, projectors and other files, and the block-size arithmetic it counts with.

mod common;

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use common::tiny::Tiny;
use engine::gguf::{self, Mismatch, Summary};

#[test]
fn block_sizes_are_ggmls() {
    use GgmlDType as T;
    // ggml's layouts: Q4_K is 256 values in 144 bytes, Q8_0 32 in 34, Q6_K 256 in 210.
    assert_eq!(gguf::tensor_bytes(T::Q4K, 256 * 3), Some(3 * 144));
    assert_eq!(gguf::tensor_bytes(T::Q8_0, 64), Some(2 * 34));
    assert_eq!(gguf::tensor_bytes(T::Q6K, 256), Some(210));
    assert_eq!(gguf::tensor_bytes(T::Q4_0, 32), Some(18));
    assert_eq!(gguf::tensor_bytes(T::F16, 3), Some(6));
    assert_eq!(gguf::tensor_bytes(T::F32, 3), Some(12));
    // Not a whole number of blocks.
    assert_eq!(gguf::tensor_bytes(T::Q4K, 100), None);
    assert_eq!(gguf::ggml_type_name(T::Q4K), "Q4_K");
    assert_eq!(gguf::file_type_name(15), Some("Q4_K_M"));
    assert_eq!(gguf::file_type_name(4), None);
}

#[test]
fn a_tiny_gemma3_is_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    Tiny { dtype: GgmlDType::Q8_0, ..Tiny::default() }.write(&p);
    let s = Summary::read(&p).unwrap();
    assert_eq!(s.architecture.as_deref(), Some("gemma3"));
    assert_eq!(s.file_size, std::fs::metadata(&p).unwrap().len());
    assert_eq!(s.context_length(), Some(1024));
    let c = s.check_gemma3().unwrap();
    assert_eq!((c.layers, c.kv_heads, c.head_dim, c.sliding_window), (6, 2, 32, 8));
    assert!(!s.is_mmproj());
    // No general.file_type: the quantization is the type holding the most bytes.
    assert_eq!(s.file_type, None);
    assert_eq!(s.quant(), Some("Q8_0"));
    let embd = s.tensors.iter().find(|t| t.name == "token_embd.weight").unwrap();
    assert_eq!((embd.dims.as_slice(), embd.dtype), ([320, 64].as_slice(), GgmlDType::Q8_0));
    assert_eq!(embd.bytes, 320 * 64 / 32 * 34);
    let norm = s.tensors.iter().find(|t| t.name == "output_norm.weight").unwrap();
    assert_eq!((norm.dtype, norm.bytes), (GgmlDType::F32, 64 * 4));
    // Every tensor lies in the file, after the header.
    let data: u64 = s.tensors.iter().map(|t| t.bytes).sum();
    assert!(data < s.file_size, "{data} >= {}", s.file_size);
}

#[test]
fn other_architectures_and_bad_gemma3_metadata_are_mismatches_not_read_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("llama.gguf");
    Tiny { arch: "llama", ..Tiny::default() }.write(&p);
    let s = Summary::read(&p).unwrap();
    assert_eq!(s.check_gemma3().unwrap_err(), Mismatch::NotGemma3("llama".into()));
    assert_eq!(s.context_length(), Some(1024), "stated in llama.context_length");
    assert!(s.gemma3().is_none());

    // Four heads cannot share three kv heads: readable, but not a Gemma 3 the engine runs.
    let p = dir.path().join("heads.gguf");
    Tiny { kv_heads: 3, ..Tiny::default() }.write(&p);
    let s = Summary::read(&p).unwrap();
    match s.check_gemma3().unwrap_err() {
        Mismatch::BadGemma3Metadata(reason) => assert!(reason.contains("gemma3.attention.head_count_kv"), "{reason}"),
        other => panic!("{other:?}"),
    }

    let p = dir.path().join("no-embd.gguf");
    Tiny::default().write_with(&p, |ts| ts.retain(|(n, _)| n != "token_embd.weight"));
    let s = Summary::read(&p).unwrap();
    assert_eq!(s.check_gemma3().unwrap_err(), Mismatch::MissingTensor("token_embd.weight"));
}

fn write_projector(path: &Path, projector: &str) {
    let t = Tensor::zeros((4, 14), candle_core::DType::F32, &Device::Cpu).unwrap();
    let q = QTensor::quantize(&t, GgmlDType::F16).unwrap();
    let arch = Value::String("clip".into());
    let proj = Value::String(projector.into());
    let md = [("general.architecture", &arch), ("clip.projector_type", &proj)];
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &[("v.patch_embd.weight", &q)]).unwrap();
}

#[test]
fn vision_projectors_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mmproj.gguf");
    write_projector(&p, "gemma3");
    let s = Summary::read(&p).unwrap();
    assert!(s.is_mmproj());
    assert_eq!(s.check_gemma3().unwrap_err(), Mismatch::NotGemma3("clip".into()));
    assert_eq!(s.quant(), Some("F16"));
    assert_eq!(s.context_length(), None);

    let p = dir.path().join("llava.gguf");
    write_projector(&p, "llava");
    let err = Summary::read(&p).unwrap().check_mmproj().unwrap_err();
    assert_eq!(err.to_string(), "projector type is \"llava\", expected 'gemma3'");

    let text = dir.path().join("text.gguf");
    Tiny::default().write(&text);
    let err = Summary::read(&text).unwrap().check_mmproj().unwrap_err();
    assert_eq!(err, Mismatch::NotClip("gemma3".into()));
}

#[test]
fn the_real_270m_header() {
    let s = Summary::read(&common::test_model()).unwrap();
    assert_eq!(s.quant(), Some("Q4_K_M"));
    let c = s.check_gemma3().unwrap();
    assert_eq!((c.layers, c.context_length), (18, 32_768));
    assert_eq!(s.tensors.len(), 2 + 18 * 13, "embedding, output norm and 13 tensors per block");
    // The tensors take all of the file but its header (a few MB of vocabulary).
    let data: u64 = s.tensors.iter().map(|t| t.bytes).sum();
    assert!(s.file_size - data < 8 << 20, "{} bytes of header?", s.file_size - data);
}
