//! The fit arithmetic against hand-computed values, the verdicts and the recommendation.

mod support;
use support::test_model;

use std::path::Path;

use candle_core::quantized::GgmlDType;
use engine::kv_cache::KvDType;
use engine::vision::{VisionConfig, VisionMemory};
use hearth::models::catalog::{Architecture, Catalog};
use hearth::models::fit::{self, Memory, Verdict};
use hearth::models::ModelsError;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn arch(id: &str) -> Architecture {
    Catalog::builtin().unwrap().get(id).unwrap().architecture
}

// Gemma 3 1B: 26 layers -> 4 global + 22 local; 1 KV head x 256 dims; window 512.
// f16: 2 (K,V) x 1 x 256 x 2 bytes = 1024 bytes per layer-token.
#[test]
fn kv_1b_at_8k_and_32k() {
    let a = arch("gemma-3-1b-it");
    assert_eq!((fit::kv_shape(&a).n_global, fit::kv_shape(&a).n_local), (4, 22));
    // 8K: (4 x 8192 + 22 x 512) x 1024 = 44 032 x 1024 = 45 088 768 bytes = 43 MiB.
    assert_eq!(fit::kv_cache_bytes(&a, 8192, KvDType::F16), 45_088_768);
    assert_eq!(fit::kv_cache_bytes(&a, 8192, KvDType::F16), 43 * MIB);
    // 32K: (4 x 32768 + 22 x 512) x 1024 = 142 336 x 1024 = 145 752 064 bytes = 139 MiB.
    assert_eq!(fit::kv_cache_bytes(&a, 32768, KvDType::F16), 145_752_064);
    // f32 doubles it.
    assert_eq!(fit::kv_cache_bytes(&a, 32768, KvDType::F32), 2 * 145_752_064);
}

// Gemma 3 27B: 62 layers -> 10 global + 52 local; 16 KV heads x 128 dims; window 1024.
// f16: 2 x 16 x 128 x 2 = 8192 bytes per layer-token.
#[test]
fn kv_27b_at_8k_and_128k() {
    let a = arch("gemma-3-27b-it");
    assert_eq!((fit::kv_shape(&a).n_global, fit::kv_shape(&a).n_local), (10, 52));
    // 8K: (10 x 8192 + 52 x 1024) x 8192 = 135 168 x 8192 = 1 107 296 256 bytes = 1056 MiB.
    assert_eq!(fit::kv_cache_bytes(&a, 8192, KvDType::F16), 1_107_296_256);
    // 128K: (10 x 131072 + 52 x 1024) x 8192 = 1 363 968 x 8192 = 11 173 625 856 bytes = 10 656 MiB.
    assert_eq!(fit::kv_cache_bytes(&a, 131_072, KvDType::F16), 11_173_625_856);
    assert_eq!(fit::kv_cache_bytes(&a, 131_072, KvDType::F16), 10_656 * MIB);
}

// llama.cpp's published numbers for 27B f16 at 64K: 31 744 MiB without the sliding window and
// 6 368 MiB with it. llama.cpp's local layers hold pad256(window + ubatch) cells, at ubatch 2048
// pad256(1024 + 2048) = 3072, where Hearth's hold exactly the window's 1024: the published figure
// is Hearth's plus 52 local layers x 2048 cells.
#[test]
fn kv_matches_llama_cpp_published_27b_64k() {
    let a = arch("gemma-3-27b-it");
    let full = 62 * 65_536 * 8192;
    assert_eq!(full, 31_744 * MIB);
    let hearth = fit::kv_cache_bytes(&a, 65_536, KvDType::F16);
    assert_eq!(hearth + 52 * (3072 - 1024) * 8192, 6_368 * MIB);
}

#[test]
fn context_beyond_maximum_is_refused() {
    let cat = Catalog::builtin().unwrap();
    let e = cat.get("gemma-3-1b-it").unwrap();
    let err = fit::estimate(e, e.recommended_variant(), 131_072, KvDType::F16).unwrap_err();
    match &err {
        ModelsError::ContextTooLong { model, requested, max } => {
            assert_eq!((model.as_str(), *requested, *max), ("gemma-3-1b-it", 131_072, 32_768));
        }
        other => panic!("expected ContextTooLong, got {other:?}"),
    }
    assert_eq!(err.to_string(), "context 131072 is beyond gemma-3-1b-it's maximum of 32768 tokens");
    // The 27B takes 128K.
    let big = cat.get("gemma-3-27b-it").unwrap();
    assert!(fit::estimate(big, big.recommended_variant(), 131_072, KvDType::F16).is_ok());
    assert!(matches!(fit::estimate(e, e.recommended_variant(), 0, KvDType::F16), Err(ModelsError::ZeroContext)));
}

#[test]
fn estimate_adds_weights_projector_kv_and_overhead() {
    let cat = Catalog::builtin().unwrap();
    let e = cat.get("gemma-3-4b-it").unwrap();
    let v = e.variant(Some("q4_k_m")).unwrap();
    let est = fit::estimate(e, v, 8192, KvDType::F16).unwrap();
    // 4B: 34 layers -> 5 global + 29 local; 2 x 4 x 256 x 2 = 4096 bytes per layer-token.
    // (5 x 8192 + 29 x 1024) x 4096 = 70 656 x 4096 = 289 406 976.
    assert_eq!(est.kv_bytes, 289_406_976);
    assert_eq!(est.weights_bytes, 2_489_757_856);
    // The projector loads with a vision model (catalog::IMAGE_INPUT): the 4B's f16 mmproj, held
    // as the engine holds Gemma 3's vision tower (a little above the file), and the encoder's
    // activations for one image.
    assert_eq!(est.mmproj_file_bytes, 851_251_104);
    let tower = VisionMemory::of_config(&VisionConfig::gemma3(2560), GgmlDType::F16);
    assert_eq!(est.mmproj_bytes, tower.weight_bytes);
    assert_eq!(est.encoder_peak_bytes, engine::vision::activation_peak_bytes(&VisionConfig::gemma3(2560)));
    assert!((851_251_104..851_251_104 * 21 / 20).contains(&est.mmproj_bytes), "{}", est.mmproj_bytes);
    assert!(est.encoder_peak_bytes > 100 * MIB, "{}", est.encoder_peak_bytes);
    assert_eq!(
        est.total_bytes,
        2_489_757_856 + est.mmproj_bytes + est.encoder_peak_bytes + 289_406_976 + fit::RUNTIME_OVERHEAD_BYTES
    );
    // A text model has no vision terms.
    let text = cat.get("gemma-3-1b-it").unwrap();
    let t = fit::estimate(text, text.recommended_variant(), 8192, KvDType::F16).unwrap();
    assert_eq!((t.mmproj_bytes, t.mmproj_file_bytes, t.encoder_peak_bytes), (0, 0, 0));
    assert_eq!(t.total_bytes, t.weights_bytes + t.kv_bytes + fit::RUNTIME_OVERHEAD_BYTES);
}

fn vision_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vision").join(name)
}

// An installed vision pair is estimated from its headers: the projector as the loaded encoder
// holds it and the encoder's peak for its geometry, both the engine's numbers.
#[test]
fn installed_vision_pair_counts_its_projector_as_held_and_the_encoder_peak() {
    let (model, mmproj) = (vision_fixture("tiny-gemma3-vision.gguf"), vision_fixture("tiny-gemma3-mmproj.gguf"));
    let text = fit::estimate_installed("vis", &model, None, 512, KvDType::F16).unwrap();
    let e = fit::estimate_installed("vis", &model, Some(&mmproj), 512, KvDType::F16).unwrap();
    let enc = engine::vision::VisionEncoder::load(&mmproj, &candle_core::Device::Cpu).unwrap();
    assert_eq!(e.mmproj_bytes, enc.resident_bytes());
    assert_eq!(e.encoder_peak_bytes, engine::vision::activation_peak_bytes(enc.config()));
    assert_eq!(e.mmproj_file_bytes, std::fs::metadata(&mmproj).unwrap().len());
    assert!(e.mmproj_bytes > enc.weight_bytes(), "the F16 patch embedding is held as f32");
    assert_eq!(e.total_bytes, text.total_bytes + e.mmproj_bytes + e.encoder_peak_bytes);
    assert_eq!((e.weights_bytes, e.kv_bytes), (text.weights_bytes, text.kv_bytes));

    // The refusal before loading names every part.
    let err = fit::check_fits(&e, e.total_bytes - 1).unwrap_err();
    assert!(matches!(&err, ModelsError::TooBig { available, .. } if *available == e.total_bytes - 1), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("vision projector") && msg.contains("image encoder") && msg.contains("KV cache"), "{msg}");
    let h = hearth::error::HearthError::from(err);
    assert_eq!(h.code, hearth::error::ErrorCode::OutOfMemory);
    assert_eq!((h.details.needed, h.details.available), (Some(e.total_bytes), Some(e.total_bytes - 1)));
    assert!(fit::check_fits(&e, e.total_bytes).is_ok());
}

fn memory(total: u64, available: u64) -> Memory {
    Memory {
        total_ram: total,
        available_ram: available,
        vram: None,
        gpu_backend: None,
        device: engine::device::report(),
    }
}

#[test]
fn verdict_thresholds() {
    let m = memory(16 * GIB, 10 * GIB);
    assert_eq!(fit::verdict(8 * GIB, &m), Verdict::Fits); // exactly 80 %
    assert_eq!(fit::verdict(8 * GIB + 1, &m), Verdict::Tight);
    assert_eq!(fit::verdict(10 * GIB, &m), Verdict::Tight);
    // Beyond what is free but within 90 % of total: closing programs would make room.
    assert_eq!(fit::verdict(14 * GIB, &m), Verdict::Tight);
    assert_eq!(fit::verdict(15 * GIB, &m), Verdict::TooBig);
    // With VRAM known, only VRAM counts.
    let gpu = Memory { vram: Some(8 * GIB), gpu_backend: Some("cuda"), ..memory(64 * GIB, 60 * GIB) };
    assert_eq!(fit::verdict(9 * GIB, &gpu), Verdict::TooBig);
}

#[test]
fn recommendation_is_the_largest_model_that_fits() {
    let cat = Catalog::builtin().unwrap();
    // 8 GiB free: the 4B Q4_0 (~2.5 GB + KV) fits, the 12B (~7.1 GB + KV) does not.
    let r = fit::fit_catalog(&cat, &memory(16 * GIB, 8 * GIB), 8192, KvDType::F16).unwrap();
    assert_eq!(r.recommended, Some(("gemma-3-4b-it".to_string(), "Q4_0".to_string())));
    assert_eq!(r.rows.len(), cat.models.iter().map(|m| m.variants.len()).sum::<usize>());
    let row = |m: &str, v: &str| r.rows.iter().find(|x| x.model == m && x.variant == v).unwrap();
    assert_eq!(row("gemma-3-27b-it", "Q8_0").verdict, Verdict::TooBig);
    assert_eq!(row("gemma-3-270m-it", "Q4_0").verdict, Verdict::Fits);
    // 64 GiB: the 27B fits.
    let r = fit::fit_catalog(&cat, &memory(64 * GIB, 60 * GIB), 8192, KvDType::F16).unwrap();
    assert_eq!(r.recommended, Some(("gemma-3-27b-it".to_string(), "Q4_0".to_string())));
    // Nothing fits in 100 MiB.
    let r = fit::fit_catalog(&cat, &memory(120 * MIB, 100 * MIB), 8192, KvDType::F16).unwrap();
    assert_eq!(r.recommended, None);
    // At 128K the small models are marked, not estimated.
    let r = fit::fit_catalog(&cat, &memory(64 * GIB, 60 * GIB), 131_072, KvDType::F16).unwrap();
    let small = r.rows.iter().find(|x| x.model == "gemma-3-1b-it").unwrap();
    assert_eq!(small.verdict, Verdict::ContextTooLong);
    assert!(small.estimate.is_none());
}

#[test]
fn builtin_catalog_has_the_five_sizes_with_vision_projectors() {
    let cat = Catalog::builtin().unwrap();
    let ids: Vec<_> = cat.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["gemma-3-270m-it", "gemma-3-1b-it", "gemma-3-4b-it", "gemma-3-12b-it", "gemma-3-27b-it"]);
    for m in &cat.models {
        assert_eq!(m.vision, m.mmproj.is_some(), "{}", m.id);
        for q in ["Q4_0", "Q4_K_M", "Q8_0"] {
            if m.id == "gemma-3-270m-it" && q == "Q4_K_M" {
                continue;
            }
            assert!(m.variant(Some(q)).is_ok(), "{} lacks {q}", m.id);
        }
    }
    assert!(matches!(cat.get("gemma-3-1b-it").unwrap().variant(Some("Q3_K")), Err(ModelsError::UnknownQuant { .. })));
    assert!(matches!(cat.get("gemma-4"), Err(ModelsError::UnknownCatalogId { .. })));
}

#[test]
fn catalog_parse_rejects_bad_documents() {
    let good = include_str!("../../../assets/catalog.json");
    assert!(Catalog::parse(good).is_ok());
    let bad_rec = good.replacen("\"recommended\": \"Q4_0\"", "\"recommended\": \"Q9\"", 1);
    assert!(matches!(Catalog::parse(&bad_rec), Err(ModelsError::Catalog(m)) if m.contains("Q9")));
    let bad_sha = good.replacen("0ef57d2c", "zzzzzzzz", 1);
    assert!(matches!(Catalog::parse(&bad_sha), Err(ModelsError::Catalog(m)) if m.contains("sha256")));
    assert!(matches!(Catalog::parse("{"), Err(ModelsError::Catalog(_))));
}

/// A device check: with HEARTH_EXPECT_GPU=1 (set on a machine with an NVIDIA GPU), the driver
/// must report free VRAM. Without a GPU the query must say "unknown", never a made-up number.
#[test]
fn gpu_memory_is_measured_where_a_gpu_exists() {
    let free = fit::gpu_free_memory();
    println!("free VRAM: {free:?} bytes");
    if std::env::var_os("HEARTH_EXPECT_GPU").is_some() {
        let free = free.expect("an NVIDIA GPU is present but no VRAM was reported");
        assert!(free > GIB, "implausibly little free VRAM: {free}");
    } else if !Path::new("/dev/nvidia0").exists() {
        assert_eq!(free, None);
    }
}

#[test]
fn nvidia_smi_output_is_parsed_per_gpu() {
    assert_eq!(fit::parse_nvidia_smi_free("143156\n"), Some(143_156 * MIB));
    assert_eq!(fit::parse_nvidia_smi_free("1000\n 8000 \n"), Some(8000 * MIB));
    assert_eq!(fit::parse_nvidia_smi_free("[N/A]\n"), None);
    assert_eq!(fit::parse_nvidia_smi_free(""), None);
}

// The real 270M GGUF: 18 layers -> 3 global + 15 local; 1 KV head x 256; window 512.
#[test]
fn fit_of_a_gguf_file_reads_its_header() {
    let s = hearth::models::check_gemma3(&test_model()).unwrap();
    let (a, max) = fit::architecture_from_gguf(&s).unwrap();
    // The catalog's shape numbers for 270M agree with the real file's header.
    assert_eq!(a, arch("gemma-3-270m-it"));
    assert_eq!(max, 32_768);
    let e = fit::estimate_file("t", &s, None, 8192, KvDType::F16).unwrap();
    // (3 x 8192 + 15 x 512) x 1024 = 32 256 x 1024.
    assert_eq!(e.kv_bytes, 33_030_144);
    assert_eq!(e.weights_bytes, s.file_size);
    assert_eq!(e.quant, "Q4_K_M");
    // (3 x 32768 + 15 x 512) x 1024 = 105 984 x 1024.
    assert_eq!(fit::estimate_file("t", &s, None, 32_768, KvDType::F16).unwrap().kv_bytes, 108_527_616);
    let err = fit::estimate_file("t", &s, None, 65_536, KvDType::F16).unwrap_err();
    assert!(matches!(err, ModelsError::ContextTooLong { max: 32_768, .. }), "{err:?}");
}

// What `hearth models fit` promises for the KV cache is what the engine allocates: the fit
// arithmetic, from the catalog's shape numbers and from the file's header, against the engine's
// `Config::kv_bytes` (which `KvCache::new` allocates exactly) for the real 270M file, below, at
// and beyond the 512-token window.
#[test]
fn fit_kv_arithmetic_is_the_engines_allocation() {
    let gguf = engine::gguf::GgufFile::open(&test_model()).unwrap();
    let vocab = gguf.tensor_info("token_embd.weight").unwrap().shape.dims()[0];
    let cfg = engine::config::Config::from_metadata(&gguf, vocab).unwrap();
    let s = hearth::models::check_gemma3(&test_model()).unwrap();
    let (from_file, _) = fit::architecture_from_gguf(&s).unwrap();
    let from_catalog = arch("gemma-3-270m-it");
    assert_eq!((cfg.n_global(), cfg.n_local()), (3, 15));
    for ctx in [1u64, 100, 512, 513, 4096, 8192, 32_768] {
        let engine_f16 = cfg.kv_bytes(ctx as usize, KvDType::F16) as u64;
        assert_eq!(fit::kv_cache_bytes(&from_file, ctx, KvDType::F16), engine_f16, "ctx {ctx}");
        assert_eq!(fit::kv_cache_bytes(&from_catalog, ctx, KvDType::F16), engine_f16, "ctx {ctx}");
        assert_eq!(fit::kv_cache_bytes(&from_file, ctx, KvDType::F32), cfg.kv_bytes(ctx as usize, KvDType::F32) as u64);
    }
    // (3 x 8192 + 15 x 512) x 1024, as in `fit_of_a_gguf_file_reads_its_header`.
    assert_eq!(cfg.kv_bytes(8192, KvDType::F16), 33_030_144);
    // A file's estimate is the engine's number too.
    let e = fit::estimate_file("t", &s, None, 4096, KvDType::F32).unwrap();
    assert_eq!(e.kv_bytes, cfg.kv_bytes(4096, KvDType::F32) as u64);
}
