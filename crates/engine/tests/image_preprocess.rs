//! The image pipeline against the reference processor (transformers 4.57.6 `Gemma3ImageProcessor`
//! on PIL), on the awkward images of tests/fixtures/images. `scripts/make-image-refs` made the
//! fixtures and the reference pixels (the processor's pixel_values, stored losslessly as u8).

use std::path::PathBuf;

use engine::vision::preprocess::{
    decode, encoder_inputs, pan_and_scan_crops, pixel_values, CropBox, ImageLimits, PanScan, IMAGE_SIZE,
};
use image::RgbImage;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images")
}

fn read(name: &str) -> Vec<u8> {
    let path = fixtures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn refs() -> Value {
    serde_json::from_slice(&read("refs.json")).expect("refs.json parses")
}

fn load(name: &str) -> RgbImage {
    decode(&read(name), &ImageLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The reference's pixel values, from the stored u8 picture: (u / 255 - 0.5) / 0.5.
fn reference_values(ref_png: &str) -> Vec<f32> {
    let img = image::load_from_memory(&read(&format!("refs/{ref_png}"))).expect("ref decodes").into_rgb8();
    assert_eq!(img.dimensions(), (IMAGE_SIZE, IMAGE_SIZE));
    let plane = (IMAGE_SIZE * IMAGE_SIZE) as usize;
    let mut out = vec![0f32; plane * 3];
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = ((f64::from(px[c]) * (1.0 / 255.0)) as f32 - 0.5) / 0.5;
        }
    }
    out
}

/// Largest difference in u8 steps (1/127.5 in pixel-value units) and how many values differ.
fn compare(ours: &[f32], reference: &[f32]) -> (f32, usize) {
    assert_eq!(ours.len(), reference.len());
    let step = 1.0 / 127.5;
    let mut max = 0f32;
    let mut differ = 0;
    for (a, b) in ours.iter().zip(reference) {
        let d = (a - b).abs() / step;
        max = max.max(d);
        if d > 1e-3 {
            differ += 1;
        }
    }
    (max, differ)
}

/// Decodes the fixture, checks its upright size and compares every one of its 3x896x896 pixel
/// values with the reference's. Lossless sources must match exactly (the resize is Pillow's, to
/// the bit). JPEG decoding is not bit-exact between decoders (the standard allows IDCT and colour
/// conversion rounding to differ): zune-jpeg and libjpeg-turbo differ by up to 2 steps on a few
/// percent of the values, so JPEGs get 2 steps and a mean difference under 0.05 steps.
fn assert_matches_reference(name: &str) {
    let refs = refs();
    let entry = &refs["images"][name];
    assert!(entry.is_object(), "{name} has no reference in refs.json");
    let img = load(name);
    let want = (entry["width"].as_u64().unwrap() as u32, entry["height"].as_u64().unwrap() as u32);
    assert_eq!(img.dimensions(), want, "{name}: upright size");
    let ours = pixel_values(&img, IMAGE_SIZE);
    assert_eq!(ours.len(), 3 * 896 * 896);
    let reference = reference_values(entry["ref"].as_str().unwrap());
    let (max, differ) = compare(&ours, &reference);
    let mean =
        ours.iter().zip(&reference).map(|(a, b)| f64::from((a - b).abs()) * 127.5).sum::<f64>() / ours.len() as f64;
    eprintln!("{name}: max difference {max:.3} u8 steps, mean {mean:.4}, {differ} of {} values differ", ours.len());
    let lossy = name.ends_with(".jpg");
    let bound = if lossy { 2.0 + 1e-3 } else { 1e-3 };
    assert!(max <= bound, "{name}: a value differs by {max} u8 steps from the reference (bound {bound})");
    assert!(mean < 0.05, "{name}: mean difference {mean} u8 steps");
}

#[test]
fn gradient_upscaled_matches_reference() {
    assert_matches_reference("gradient.png");
}

#[test]
fn shrunk_image_matches_reference_antialiasing() {
    assert_matches_reference("shrink.png");
}

#[test]
fn rgba_alpha_dropped_without_compositing_matches_reference() {
    assert_matches_reference("rgba.png");
}

#[test]
fn grey_alpha_matches_reference() {
    assert_matches_reference("grey_alpha.png");
}

#[test]
fn palette_with_transparency_matches_reference() {
    assert_matches_reference("palette_trns.png");
}

#[test]
fn rgb_16_bit_png_matches_reference() {
    assert_matches_reference("rgb16.png");
}

#[test]
fn animated_gif_first_frame_matches_reference() {
    // The first frame has a transparent palette entry (108 pixels): its colour shows, as in PIL.
    assert_matches_reference("animated.gif");
    // The second frame is plain green: the first one is not.
    let img = load("animated.gif");
    assert!(img.pixels().any(|p| p.0 != [0, 255, 0]));
}

#[test]
fn extreme_aspect_ratios_match_reference() {
    assert_matches_reference("extreme_wide.png");
    assert_matches_reference("extreme_tall.png");
}

#[test]
fn one_pixel_matches_reference() {
    assert_matches_reference("one_pixel.png");
}

#[test]
fn exif_rotated_jpegs_match_reference() {
    // Orientation 6 is stored 64x40 and shown 40x64; orientation 3 keeps its size, turned 180°.
    assert_matches_reference("exif6.jpg");
    assert_matches_reference("exif3.jpg");
    assert_eq!(load("exif6.jpg").dimensions(), (40, 64));
}

#[test]
fn cmyk_jpeg_matches_reference() {
    assert_matches_reference("cmyk.jpg");
}

#[test]
fn webp_bmp_and_tiff_match_reference() {
    assert_matches_reference("lossless.webp");
    assert_matches_reference("plain.bmp");
    assert_matches_reference("plain.tif");
}

#[test]
fn every_reference_image_is_tested() {
    // A fixture added to the script without a test here would be checked by nobody.
    let refs = refs();
    let names: Vec<&String> = refs["images"].as_object().unwrap().keys().collect();
    let source = include_str!("image_preprocess.rs");
    for name in names {
        assert!(source.contains(&format!("assert_matches_reference(\"{name}\")")), "{name} is not tested");
    }
}

#[test]
fn grey_16_bit_png_keeps_the_high_byte() {
    // PIL clips 16-bit grey to 255 (the picture turns white); Hearth keeps the high byte, as PIL
    // does for 16-bit RGB. The fixture's samples are i * 128 + 7 for i in 0..512.
    let img = load("grey16.png");
    assert_eq!(img.dimensions(), (64, 8));
    for (i, p) in img.pixels().enumerate() {
        let high = ((i as u32 * 128 + 7) >> 8) as u8;
        assert_eq!(p.0, [high; 3], "pixel {i}");
    }
}

#[test]
fn pixel_values_are_chw_and_normalized() {
    // A 2x1 image, red then blue, stretched to 4x4: channel planes come first.
    let img = RgbImage::from_fn(2, 1, |x, _| if x == 0 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
    let v = pixel_values(&img, 4);
    assert_eq!(v.len(), 3 * 16);
    // Top-left pixel: red 1.0, green -1.0, blue -1.0.
    assert_eq!((v[0], v[16], v[32]), (1.0, -1.0, -1.0));
    // Top-right pixel: blue.
    assert_eq!((v[3], v[16 + 3], v[32 + 3]), (-1.0, -1.0, 1.0));
}

#[test]
fn pan_and_scan_crops_match_reference_on_a_wide_image() {
    let refs = refs();
    let ps_ref = &refs["pan_scan"];
    let img = load(ps_ref["source"].as_str().unwrap());
    let ps = PanScan::default();
    let want: Vec<CropBox> = ps_ref["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| CropBox {
            x: b["x"].as_u64().unwrap() as u32,
            y: b["y"].as_u64().unwrap() as u32,
            width: b["width"].as_u64().unwrap() as u32,
            height: b["height"].as_u64().unwrap() as u32,
        })
        .collect();
    assert!(want.len() >= 2, "the reference made no crops");
    assert_matches_reference("pan_scan_wide.png");
    assert_eq!(ps.crop_boxes(img.width(), img.height()), want);
    assert_eq!(pan_and_scan_crops(&img, &ps).len(), want.len());

    // Whole image first, then the crops, each resized to 896: as the reference lays them out.
    let inputs = encoder_inputs(&img, Some(&ps), IMAGE_SIZE);
    let files = ps_ref["refs"].as_array().unwrap();
    assert_eq!(inputs.len(), files.len());
    for (k, (ours, file)) in inputs.iter().zip(files).enumerate() {
        let (max, _) = compare(ours, &reference_values(file.as_str().unwrap()));
        assert!(max <= 1.0 + 1e-3, "input {k}: differs by {max} u8 steps");
    }
    // Off by default: one input, the whole image.
    assert_eq!(encoder_inputs(&img, None, IMAGE_SIZE).len(), 1);
}

#[test]
fn pan_and_scan_crop_rule_matches_reference_on_many_sizes() {
    let refs = refs();
    let cases = refs["crop_rule"].as_array().unwrap();
    assert!(cases.len() > 50);
    let mut with_crops = 0;
    for case in cases {
        let n = |k: &str| case[k].as_u64().unwrap() as u32;
        let ps = PanScan {
            min_crop_size: n("min_crop_size"),
            max_crops: n("max_crops"),
            min_ratio_to_activate: case["min_ratio"].as_f64().unwrap(),
        };
        let want: Vec<CropBox> = case["boxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let v: Vec<u32> = b.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
                CropBox { x: v[0], y: v[1], width: v[2], height: v[3] }
            })
            .collect();
        with_crops += usize::from(!want.is_empty());
        assert_eq!(ps.crop_boxes(n("width"), n("height")), want, "{case}");
    }
    // The table covers both outcomes.
    assert!(with_crops > 10 && with_crops < cases.len());
}
