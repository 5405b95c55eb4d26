//! The Gemma 3 vision fixture (tests/fixtures/vision, made by scripts/make-vision-fixture): a tiny
//! random text + mmproj GGUF pair, its test images resized to 896x896 by PIL, and transformers'
//! float32 outputs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use engine::gguf::GgufFile;

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vision")
}

pub fn text_gguf() -> PathBuf {
    dir().join("tiny-gemma3-vision.gguf")
}

pub fn mmproj_gguf() -> PathBuf {
    dir().join("tiny-gemma3-mmproj.gguf")
}

pub fn reference() -> serde_json::Value {
    let path = dir().join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference JSON")
}

/// The encoder's input for test image `name`: PIL's 896x896 bilinear resize (saved by the fixture
/// script) normalised as the preprocessing contract says, channels first.
pub fn pixels(name: &str) -> Vec<f32> {
    let path = dir().join(format!("{name}.896.png"));
    let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (p[c] as f32 / 255.0 - 0.5) / 0.5;
        }
    }
    out
}

/// The reference embeddings of image `name`, `[256][text hidden]`.
pub fn ref_embeddings(reference: &serde_json::Value, name: &str) -> Vec<Vec<f32>> {
    reference["embeddings"][name]
        .as_array()
        .expect("embeddings")
        .iter()
        .map(|row| row.as_array().expect("row").iter().map(|x| x.as_f64().expect("number") as f32).collect())
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Rewrites the GGUF at `src` into `dst`: `meta` edits the metadata, `tensor` may change each
/// tensor's type (`Some(type)`: requantized from its f32 values) and everything is written again.
pub fn rewrite(
    src: &Path,
    dst: &Path,
    meta: impl Fn(&mut Vec<(String, Value)>),
    tensor: impl Fn(&str, &[usize]) -> Option<GgmlDType>,
) {
    let gguf = GgufFile::open(src).expect("open fixture");
    let mut md: Vec<(String, Value)> = gguf.content().metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    md.sort_by(|a, b| a.0.cmp(&b.0));
    meta(&mut md);
    let mut names: Vec<&String> = gguf.content().tensor_infos.keys().collect();
    names.sort();
    let tensors: Vec<(String, QTensor)> = names
        .into_iter()
        .map(|name| {
            let dims = gguf.tensor_info(name).unwrap().shape.dims().to_vec();
            let q = gguf.tensor(name, &dims, &Device::Cpu).expect("read tensor");
            let q = match tensor(name, &dims) {
                Some(t) => QTensor::quantize(&q.dequantize(&Device::Cpu).unwrap(), t).expect("quantize"),
                None => QTensor::quantize(&q.dequantize(&Device::Cpu).unwrap(), q.dtype()).expect("copy"),
            };
            (name.clone(), q)
        })
        .collect();
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut f = std::fs::File::create(dst).expect("create");
    gguf_file::write(&mut f, &md_refs, &t_refs).expect("write gguf");
}
