//! The Gemma 3 vision encoder (SigLIP + projector from an mmproj GGUF) against transformers'
//! float32 reference (tests/fixtures/vision), and its refusals of bad mmproj files.

mod common;

use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use common::vision::{self as fx, cosine};
use engine::gguf::Summary;
use engine::vision::VisionEncoder;
use engine::EngineError;

const IMAGES: [&str; 3] = ["square", "wide", "tiny_rgba"];

/// The smallest per-token cosine similarity between our embeddings and the reference's.
fn min_cosine(enc: &VisionEncoder, name: &str) -> f64 {
    let reference = fx::reference();
    let want = fx::ref_embeddings(&reference, name);
    let got: Vec<Vec<f32>> = enc.encode(&fx::pixels(name)).expect("encode").to_vec2().expect("2-D");
    assert_eq!(got.len(), want.len(), "{name}: tokens per image");
    got.iter().zip(&want).map(|(g, w)| cosine(g, w)).fold(f64::INFINITY, f64::min)
}

#[test]
fn embeddings_match_transformers_for_three_images() {
    let enc = VisionEncoder::load(&fx::mmproj_gguf(), &Device::Cpu).expect("load mmproj");
    let cfg = enc.config();
    assert_eq!((cfg.image_size, cfg.patch_size, cfg.tokens_per_image()), (896, 14, 256));
    for name in IMAGES {
        let c = min_cosine(&enc, name);
        assert!(c >= 0.999, "{name}: a token's embedding has cosine {c} to the reference");
    }
}

#[test]
fn images_give_different_embeddings() {
    // Guards the comparison above: were the encoder to ignore its input, each image would still
    // have to match its own reference and not another image's.
    let enc = VisionEncoder::load(&fx::mmproj_gguf(), &Device::Cpu).unwrap();
    let reference = fx::reference();
    let got: Vec<Vec<f32>> = enc.encode(&fx::pixels("square")).unwrap().to_vec2().unwrap();
    let other = fx::ref_embeddings(&reference, "wide");
    let mean: f64 = got.iter().zip(&other).map(|(g, w)| cosine(g, w)).sum::<f64>() / got.len() as f64;
    assert!(mean < 0.99, "square's embeddings look like wide's (mean cosine {mean})");
}

#[test]
fn f32_and_quantized_mmproj_tensors_load_and_encode() {
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("f32.gguf");
    let q8_path = dir.path().join("q8.gguf");
    fx::rewrite(&fx::mmproj_gguf(), &f32_path, |_| {}, |_, _| Some(GgmlDType::F32));
    // Q8_0 wherever the rows are whole blocks (every matrix of the 64-wide encoder but the patch
    // embedding and the 16-wide projection).
    fx::rewrite(
        &fx::mmproj_gguf(),
        &q8_path,
        |_| {},
        |_, dims| (dims.len() == 2 && dims[1] % 32 == 0 && dims[0] > 1).then_some(GgmlDType::Q8_0),
    );
    let q8 = engine::gguf::GgufFile::open(&q8_path).unwrap();
    let quantized = q8.content().tensor_infos.values().filter(|t| t.ggml_dtype == GgmlDType::Q8_0).count();
    assert!(quantized >= 8, "only {quantized} tensors were quantized");
    let c = min_cosine(&VisionEncoder::load(&f32_path, &Device::Cpu).unwrap(), "square");
    assert!(c >= 0.999, "F32 copy: cosine {c}");
    // Q8_0 rounds every weight to 8 bits: close, not exact.
    let c = min_cosine(&VisionEncoder::load(&q8_path, &Device::Cpu).unwrap(), "square");
    assert!(c >= 0.99, "Q8_0 copy: cosine {c}");
}

#[test]
fn pixels_of_the_wrong_size_are_refused() {
    let enc = VisionEncoder::load(&fx::mmproj_gguf(), &Device::Cpu).unwrap();
    let err = enc.encode(&vec![0.0; 3 * 224 * 224]).unwrap_err();
    assert!(matches!(err, EngineError::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("3x896x896"), "{err}");
}

// Memory taken after the model loaded: an image whose encoding would not fit is refused with
// the numbers before the encoder allocates, not ended by the allocator.
#[test]
fn an_encoding_that_does_not_fit_the_memory_free_now_is_refused_with_the_numbers() {
    let enc = VisionEncoder::load(&fx::mmproj_gguf(), &Device::Cpu).unwrap();
    let peak = engine::vision::activation_peak_bytes(enc.config());
    match enc.check_room(Some(peak - 1)) {
        Err(EngineError::InsufficientMemory { needed, available }) => assert_eq!((needed, available), (peak, peak - 1)),
        other => panic!("{other:?}"),
    }
    enc.check_room(Some(peak)).unwrap();
    // Where the OS does not say, no made-up number refuses it.
    enc.check_room(None).unwrap();
}

#[test]
fn mismatched_text_model_is_refused() {
    let enc = VisionEncoder::load(&fx::mmproj_gguf(), &Device::Cpu).unwrap();
    let own = Summary::read(&fx::text_gguf()).unwrap();
    enc.check_text_model(own.check_gemma3().unwrap()).expect("the fixture pair matches");
    // The 270M test model is 640 wide: this 16-wide projector is not its pair.
    let other = Summary::read(&common::test_model()).unwrap();
    let err = enc.check_text_model(other.check_gemma3().unwrap()).unwrap_err();
    assert!(matches!(err, EngineError::MmprojMismatch { projection: 16, text: 640 }), "{err}");
    assert!(err.to_string().contains("not a pair"), "{err}");
}

fn load_edited(
    meta: impl Fn(&mut Vec<(String, Value)>),
    tensor: impl Fn(&str, &[usize]) -> Option<GgmlDType>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gguf");
    fx::rewrite(&fx::mmproj_gguf(), &path, meta, tensor);
    match VisionEncoder::load(&path, &Device::Cpu) {
        Ok(_) => panic!("the edited mmproj loaded"),
        Err(e) => e.to_string(),
    }
}

fn set(md: &mut [(String, Value)], key: &str, v: Value) {
    md.iter_mut().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key}")).1 = v;
}

#[test]
fn wrong_projector_type_is_refused() {
    let e = load_edited(|md| set(md, "clip.projector_type", Value::String("mlp".into())), |_, _| None);
    assert!(e.contains("`mlp` is not a Gemma 3 vision projector"), "{e}");
}

#[test]
fn text_model_given_as_mmproj_is_refused() {
    let err = VisionEncoder::load(&fx::text_gguf(), &Device::Cpu).err().expect("refused");
    assert!(matches!(err, EngineError::UnsupportedModel { .. }), "{err}");
    assert!(err.to_string().contains("`gemma3` is not a vision projector"), "{err}");
}

#[test]
fn geometry_that_does_not_divide_is_refused() {
    let e = load_edited(|md| set(md, "clip.vision.patch_size", Value::U32(15)), |_, _| None);
    assert!(e.contains("clip.vision.patch_size") && e.contains("does not divide"), "{e}");
    let e = load_edited(|md| set(md, "clip.vision.attention.head_count", Value::U32(5)), |_, _| None);
    assert!(e.contains("5 heads do not divide the width 64"), "{e}");
    let e = load_edited(|md| set(md, "clip.vision.block_count", Value::U32(0)), |_, _| None);
    assert!(e.contains("clip.vision.block_count") && e.contains("absurd"), "{e}");
}

#[test]
fn wrong_tensor_shapes_are_refused() {
    // One more layer than the file has: a tensor goes missing.
    let e = load_edited(|md| set(md, "clip.vision.block_count", Value::U32(3)), |_, _| None);
    assert!(e.contains("tensor `v.blk.2.attn_q.weight` is missing"), "{e}");
    // A wider encoder than its tensors: the first tensor checked names the mismatch.
    let e = load_edited(|md| set(md, "clip.vision.embedding_length", Value::U32(128)), |_, _| None);
    assert!(e.contains("has shape") && e.contains("expected"), "{e}");
    // A projection width the metadata contradicts.
    let e = load_edited(|md| set(md, "clip.vision.projection_dim", Value::U32(32)), |_, _| None);
    assert!(e.contains("projection_dim is 32 but `mm.input_projection.weight` projects to 16"), "{e}");
    // A feed-forward size its tensors do not have.
    let e = load_edited(|md| set(md, "clip.vision.feed_forward_length", Value::U32(96)), |_, _| None);
    assert!(e.contains("ffn_up.weight` has shape [128, 64], expected [96, 64]"), "{e}");
}

#[test]
fn truncated_mmproj_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fx::mmproj_gguf()).unwrap();
    for keep in [bytes.len() - 100, bytes.len() / 2, 100] {
        let path = dir.path().join(format!("cut{keep}.gguf"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = VisionEncoder::load(&path, &Device::Cpu).err().expect("refused");
        assert!(matches!(err, EngineError::InvalidGguf { .. }), "{err}");
        assert!(err.to_string().contains("truncated"), "cut at {keep}: {err}");
    }
}

#[test]
fn not_a_gguf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gguf");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n not a model at all").unwrap();
    let err = VisionEncoder::load(Path::new(&path), &Device::Cpu).err().expect("refused");
    assert!(err.to_string().contains("not a GGUF file"), "{err}");
}

#[test]
fn vision_memory_from_the_header_equals_what_loading_holds() {
    let dir = tempfile::tempdir().unwrap();
    let q8_path = dir.path().join("q8.gguf");
    fx::rewrite(
        &fx::mmproj_gguf(),
        &q8_path,
        |_| {},
        |_, dims| (dims.len() == 2 && dims[1] % 32 == 0).then_some(GgmlDType::Q8_0),
    );
    let f32_path = dir.path().join("f32.gguf");
    fx::rewrite(&fx::mmproj_gguf(), &f32_path, |_| {}, |_, _| Some(GgmlDType::F32));
    let mut planned = Vec::new();
    for path in [fx::mmproj_gguf(), q8_path, f32_path] {
        let s = Summary::read(&path).unwrap();
        let file: u64 = s.tensors.iter().map(|t| t.bytes).sum();
        let mem = engine::vision::VisionMemory::read(&path).unwrap();
        let enc = VisionEncoder::load(&path, &Device::Cpu).unwrap();
        assert_eq!(mem.weight_bytes, enc.resident_bytes(), "{}", path.display());
        assert_eq!(mem.activation_peak_bytes, engine::vision::activation_peak_bytes(enc.config()));
        assert_eq!(enc.weight_bytes(), file, "{}", path.display());
        planned.push((file, mem.weight_bytes));
    }
    let [(f16_file, f16_held), (q8_file, q8_held), (f32_file, f32_held)] = planned[..] else { unreachable!() };
    // Matrices are held as stored (F16 ones too: half of f32), the other float tensors as f32:
    // the F16 file's weights take a little more than its bytes (its F16 patch embedding is
    // widened), the F32 file's exactly its bytes; Q8_0 matrices stay quantized.
    assert_eq!(f32_held, f32_file);
    assert!(f16_held > f16_file && f16_held < f32_held, "{f16_held} vs {f16_file}, f32 {f32_held}");
    assert!(q8_held < f16_held && q8_held > q8_file, "{q8_held} vs {q8_file}, f16 {f16_held}");
}

#[test]
fn vision_memory_of_a_config_is_the_header_plan_of_such_a_file() {
    // The fixture's F16 mmproj, planned from its geometry alone (as `hearth models fit` plans a
    // catalog model not yet downloaded), equals the plan from its header.
    let enc = VisionEncoder::load(&fx::mmproj_gguf(), &Device::Cpu).unwrap();
    let from_header = engine::vision::VisionMemory::read(&fx::mmproj_gguf()).unwrap();
    let from_config = engine::vision::VisionMemory::of_config(enc.config(), GgmlDType::F16);
    assert_eq!(from_config, from_header);
    assert!(from_config.total() > from_config.weight_bytes);
    // Gemma 3's real tower for the 4B (text width 2560): weights of about its 851 MB F16 file
    // (the norms, biases and patch embedding as f32 add under 1 %).
    let so400m = engine::vision::VisionMemory::of_config(&engine::vision::VisionConfig::gemma3(2560), GgmlDType::F16);
    assert!((851_000_000..860_000_000).contains(&so400m.weight_bytes), "{so400m:?}");
}

#[test]
fn activation_peak_of_siglip_so400m_is_a_few_hundred_mib() {
    // Gemma 3's real encoder: 4096 patches of 1152, MLP 4304, 16 heads. Its live f32 tensors
    // alone come to 4096 x 9 x 1152 x 4 bytes (162 MiB) plus two score blocks; measured with
    // `hearth bench --mmproj` on a random mmproj of that size: 340 MB above the weights with
    // candle's attention, about 255 MB with the CPU's tiled one (docs/benchmarks.md). The
    // estimate keeps the larger: the device-generic path still runs the former.
    let mut cfg = engine::vision::VisionConfig::gemma3(2560);
    let full = engine::vision::activation_peak_bytes(&cfg);
    assert!((340_000_000..1 << 30).contains(&full), "{full}");
    // A quarter of the patches: less than half the memory (the score block's size is fixed);
    // the layer count does not matter.
    cfg.image_size = 448;
    let quarter = engine::vision::activation_peak_bytes(&cfg);
    assert!(quarter * 2 < full && quarter * 5 > full, "{quarter} vs {full}");
    cfg.layers = 2;
    assert_eq!(engine::vision::activation_peak_bytes(&cfg), quarter);
}
