//! Bad images get a specific error, never a crash or an exhausted machine: empty, truncated, not
//! an image, SVG/HEIC, a decompression bomb (with its peak RSS measured in a process of its own),
//! absurd header dimensions, files and decodes over the limits.

use std::path::PathBuf;
use std::process::Command;

use engine::vision::preprocess::{decode, pixel_values, ImageInputError, ImageLimits, SizeLimit, IMAGE_SIZE};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn refused(bytes: &[u8]) -> ImageInputError {
    match decode(bytes, &ImageLimits::default()) {
        Ok(img) => panic!("accepted a bad image as {}x{}", img.width(), img.height()),
        Err(e) => e,
    }
}

/// CRC-32 (PNG's, ISO-HDLC) so that the tests can write PNG headers a decoder will believe.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A PNG whose valid header claims `width` x `height` RGB, followed by a tiny IDAT.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    // zlib stream of one empty stored block: the data would end long before the image does.
    png_chunk(&mut png, b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01]);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn empty_file_is_refused() {
    let e = refused(&[]);
    assert!(matches!(e, ImageInputError::Empty), "{e:?}");
    assert!(e.to_string().contains("empty"));
}

#[test]
fn truncated_png_is_refused_as_truncated() {
    let png = fixture("gradient.png");
    let e = refused(&png[..png.len() / 2]);
    assert!(matches!(e, ImageInputError::Truncated { format: "PNG" }), "{e:?}");
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn truncated_jpeg_is_refused() {
    let jpg = fixture("exif3.jpg");
    // Cut inside the entropy-coded data (after the headers): the picture is incomplete.
    let e = refused(&jpg[..jpg.len() * 2 / 3]);
    assert!(matches!(e, ImageInputError::Truncated { format: "JPEG" }), "{e:?}");
    // The whole file, with bytes after its end marker (as some cameras write), is fine.
    let mut padded = jpg.clone();
    padded.extend_from_slice(b"trailing bytes");
    assert!(decode(&padded, &ImageLimits::default()).is_ok());
}

#[test]
fn truncated_headers_are_refused() {
    // A PNG signature and nothing else; a JPEG start-of-image marker and nothing else.
    for bytes in [&b"\x89PNG\r\n\x1a\n"[..], &[0xFF, 0xD8, 0xFF][..]] {
        let e = refused(bytes);
        assert!(matches!(e, ImageInputError::Truncated { .. } | ImageInputError::Corrupt { .. }), "{bytes:?}: {e:?}");
    }
}

#[test]
fn random_bytes_are_not_an_image() {
    // A fixed xorshift stream: 4 KiB of noise, never a known signature.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let e = refused(&noise);
    assert!(matches!(e, ImageInputError::NotAnImage), "{e:?}");
    assert!(e.to_string().contains("not an image"), "{e}");
}

#[test]
fn text_file_is_not_an_image() {
    let e = refused(b"Shopping list:\n- eggs\n- flour\n");
    assert!(matches!(e, ImageInputError::NotAnImage), "{e:?}");
}

#[test]
fn svg_is_not_supported_by_name() {
    let svg = br#"<?xml version="1.0" encoding="UTF-8"?>
<!-- drawn by hand -->
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>
"#;
    let e = refused(svg);
    assert!(matches!(&e, ImageInputError::Unsupported { format } if format == "SVG"), "{e:?}");
    assert_eq!(e.to_string(), "SVG images are not supported; convert it to PNG or JPEG");
    // Without the XML prolog too.
    assert!(matches!(refused(b"  <svg viewBox='0 0 1 1'></svg>"), ImageInputError::Unsupported { .. }));
}

#[test]
fn heic_is_not_supported_by_name() {
    // An ISO-BMFF `ftyp` box with the HEIC brand, as iPhones write it, then some box data.
    let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    heic.extend_from_slice(&[0u8; 64]);
    let e = refused(&heic);
    assert!(matches!(&e, ImageInputError::Unsupported { format } if format == "HEIC"), "{e:?}");
    assert!(e.to_string().starts_with("HEIC images are not supported"), "{e}");
}

#[test]
fn tiff_with_an_unknown_compression_names_the_problem() {
    // A 1x1 grey little-endian TIFF whose Compression tag says JPEG 2000 (34712).
    let entries: [(u16, u16, u32); 9] = [
        (256, 3, 1),     // ImageWidth
        (257, 3, 1),     // ImageLength
        (258, 3, 8),     // BitsPerSample
        (259, 3, 34712), // Compression
        (262, 3, 1),     // PhotometricInterpretation: BlackIsZero
        (273, 4, 122),   // StripOffsets: right after the IFD
        (277, 3, 1),     // SamplesPerPixel
        (278, 4, 1),     // RowsPerStrip
        (279, 4, 1),     // StripByteCounts
    ];
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(tiff.len(), 122);
    tiff.push(0x80);
    let e = refused(&tiff);
    assert!(matches!(e, ImageInputError::UnsupportedFeature { format: "TIFF", .. }), "{e:?}");
    assert!(e.to_string().starts_with("this TIFF image uses a feature Hearth cannot decode"), "{e}");
}

#[test]
fn decompression_bomb_is_refused_from_its_header() {
    // 40000x40000 1-bit: 194 KB on disk, 4.8 GB as RGB.
    let bomb = fixture("bomb-40000.png");
    assert!(bomb.len() < 300_000);
    let e = refused(&bomb);
    assert!(
        matches!(e, ImageInputError::TooLarge { width: 40000, height: 40000, limit: SizeLimit::Width(16384) }),
        "{e:?}"
    );
    assert!(e.to_string().contains("40000x40000"), "{e}");
}

#[test]
fn absurd_png_header_dimensions_are_refused() {
    for (w, h, limit) in [
        (1_000_000, 1_000_000, SizeLimit::Width(16384)),
        (1, 2_000_000_000, SizeLimit::Height(16384)),
        (16_000, 16_000, SizeLimit::Pixels(50_000_000)),
    ] {
        let e = refused(&png_claiming(w, h));
        match e {
            ImageInputError::TooLarge { width, height, limit: got } => {
                assert_eq!((width, height, got), (w, h, limit));
            }
            other => panic!("{w}x{h}: {other:?}"),
        }
    }
}

#[test]
fn absurd_bmp_header_dimensions_are_refused() {
    // BITMAPFILEHEADER + BITMAPINFOHEADER claiming 60000x60000 at 24 bits, and 16 bytes of pixels.
    let mut bmp = Vec::new();
    bmp.extend_from_slice(b"BM");
    bmp.extend_from_slice(&(54u32 + 16).to_le_bytes());
    bmp.extend_from_slice(&[0; 4]);
    bmp.extend_from_slice(&54u32.to_le_bytes());
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&60_000i32.to_le_bytes());
    bmp.extend_from_slice(&60_000i32.to_le_bytes());
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    bmp.extend_from_slice(&[0; 24]);
    bmp.extend_from_slice(&[0; 16]);
    let e = refused(&bmp);
    assert!(matches!(e, ImageInputError::TooLarge { width: 60000, height: 60000, .. }), "{e:?}");
}

#[test]
fn zero_sized_header_is_corrupt() {
    let e = refused(&png_claiming(0, 10));
    assert!(matches!(e, ImageInputError::Corrupt { .. } | ImageInputError::TooLarge { .. }), "{e:?}");
}

#[test]
fn file_over_the_byte_limit_is_refused_before_decoding() {
    let png = fixture("gradient.png");
    let limits = ImageLimits { max_bytes: 1000, ..ImageLimits::default() };
    let e = decode(&png, &limits).unwrap_err();
    assert!(matches!(e, ImageInputError::FileTooLarge { size, limit: 1000 } if size == png.len() as u64), "{e:?}");
}

#[test]
fn decode_over_the_memory_limit_is_refused_with_the_numbers() {
    // 1500x1100 RGB needs 4.95 MB; allow 1 MiB.
    let limits = ImageLimits { max_alloc: 1 << 20, ..ImageLimits::default() };
    let e = decode(&fixture("shrink.png"), &limits).unwrap_err();
    assert!(
        matches!(
            e,
            ImageInputError::TooLarge {
                width: 1500,
                height: 1100,
                limit: SizeLimit::Memory { needed: 4_950_000, limit: 1_048_576 }
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("MiB"), "{e}");
}

/// Peak resident memory of this process, from /proc/self/status (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

const CHILD_ENV: &str = "HEARTH_IMAGE_RSS_CHILD";
const TEST_NAME: &str = "decompression_bomb_peak_rss_stays_under_500_mb";

/// The child's half: decodes the bomb, then the two largest images the default limits accept
/// (written by the parent into `dir`), makes their pixel values, and reports the peak RSS.
fn measure_in_child(dir: &str) {
    let e = decode(&fixture("bomb-40000.png"), &ImageLimits::default()).unwrap_err();
    assert!(matches!(e, ImageInputError::TooLarge { .. }), "{e:?}");
    for (name, side) in [("rgba8.png", 7000), ("rgba16.png", 5792)] {
        let bytes = std::fs::read(PathBuf::from(dir).join(name)).expect("image written by the parent");
        let img = decode(&bytes, &ImageLimits::default()).expect("the largest accepted images decode");
        drop(bytes);
        assert_eq!(img.dimensions(), (side, side));
        let values = pixel_values(&img, IMAGE_SIZE);
        assert_eq!(values.len(), 3 * 896 * 896);
    }
    let peak = peak_rss_kib().expect("VmHWM readable");
    println!("PEAK_RSS_KIB={peak}");
}

/// Peak RSS is per process, and the other tests of this binary run in the same one: this test
/// runs itself again, alone, in a fresh process (the child, told apart by `CHILD_ENV`), and reads
/// the child's VmHWM.
#[test]
fn decompression_bomb_peak_rss_stays_under_500_mb() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return measure_in_child(&dir);
    }
    if !cfg!(target_os = "linux") {
        return; // VmHWM is Linux's; the refusal itself is tested everywhere above.
    }
    // The largest images the defaults accept, in the widest layouts: 7000x7000 RGBA (49 Mpx of the
    // 50 allowed, 196 MB decoded) and 5792x5792 16-bit RGBA (268 MB decoded, just under the 256 MiB
    // allocation cap). Written here, in the parent, so that making them does not count in the
    // child's peak.
    let dir = tempfile::tempdir().expect("temp dir");
    image::RgbaImage::new(7000, 7000).save(dir.path().join("rgba8.png")).expect("write rgba8 png");
    image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::new(5792, 5792)
        .save(dir.path().join("rgba16.png"))
        .expect("write rgba16 png");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .output()
        .expect("spawn child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.split("PEAK_RSS_KIB=").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no PEAK_RSS_KIB in child output:\n{stdout}"));
    eprintln!("bomb + largest accepted images: peak RSS {} MiB", peak / 1024);
    assert!(peak < 500 * 1024, "peak RSS {} MiB", peak / 1024);
}
