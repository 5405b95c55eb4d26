//! Image input for the vision encoder: untrusted bytes in, the encoder's pixel values out.
//!
//! Two jobs, in order:
//! 1. [`decode`]: guess the format from the content, refuse what Hearth does not read (SVG, HEIC,
//!    …) by name, check the header's dimensions and the decoder's allocation against
//!    [`ImageLimits`] *before* any pixel is decoded (a decompression bomb is refused from its
//!    header), apply the EXIF orientation and convert to 8-bit RGB the way PIL's
//!    `Image.convert("RGB")` does (alpha dropped, not composited).
//! 2. [`pixel_values`]: what transformers' `Gemma3ImageProcessor` (4.57) feeds SigLIP: PIL's
//!    `resize((896, 896), BILINEAR)` (stretched, aspect not kept), then `x / 255`, then
//!    `(x - 0.5) / 0.5`, channels first. The resize is written here after Pillow's (13.0)
//!    `libImaging/Resample.c` so that it matches it to the bit: a triangle filter whose support
//!    grows with the downscale factor (antialiasing), fixed-point coefficients, two separable
//!    passes each rounded to u8, in Pillow 13's order (see [`resize_bilinear`]). `image`'s own
//!    Triangle filter differs (float maths, no intermediate rounding), so it is not used.
//!
//! [`PanScan`] is the reference's optional Pan & Scan: crops of a very wide or tall image, each
//! encoded after the whole image ([`encoder_inputs`]).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};
use rayon::prelude::*;

/// Side of the square the encoder sees (SigLIP-So400m in Gemma 3: 64x64 patches of 14 px).
pub const IMAGE_SIZE: u32 = 896;

/// Bounds checked before decoding. With the defaults the widest accepted images (49 Mpx RGBA,
/// 16-bit RGBA at the allocation cap: decoder buffer plus its RGB copy) peak at 365 MiB RSS in
/// `tests/image_bad_inputs.rs`, under the 500 MB any image may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Widest image accepted, in pixels.
    pub max_width: u32,
    /// Tallest image accepted, in pixels.
    pub max_height: u32,
    /// Most pixels (width x height) accepted.
    pub max_pixels: u64,
    /// Most bytes the decoder may allocate for its output (and, where the decoder honours it,
    /// for its own buffers).
    pub max_alloc: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 50 * 1024 * 1024,
            max_width: 16_384,
            max_height: 16_384,
            // 50 Mpx covers 8K frames and most phone cameras; 108/200 Mpx phone modes are refused
            // with a sentence rather than risking the memory.
            max_pixels: 50_000_000,
            max_alloc: 256 * 1024 * 1024,
        }
    }
}

/// Which bound an image broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// `max_width` in pixels.
    Width(u32),
    /// `max_height` in pixels.
    Height(u32),
    /// `max_pixels`.
    Pixels(u64),
    /// `max_alloc` in bytes, with the bytes the decoder would have needed.
    Memory { needed: u64, limit: u64 },
}

impl std::fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SizeLimit::Width(w) => write!(f, "the limit is {w} pixels wide"),
            SizeLimit::Height(h) => write!(f, "the limit is {h} pixels tall"),
            SizeLimit::Pixels(p) => write!(f, "the limit is {:.1} megapixels", *p as f64 / 1e6),
            SizeLimit::Memory { needed, limit } => {
                write!(f, "decoding it needs {} MiB, the limit is {} MiB", needed.div_ceil(1 << 20), limit / (1 << 20))
            }
        }
    }
}

/// Why an image cannot be used. Each variant is a sentence a person can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageInputError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("the image file is {size} bytes; the limit is {limit} bytes")]
    FileTooLarge { size: u64, limit: u64 },
    #[error("this file is not an image Hearth can read (PNG, JPEG, WebP, GIF, BMP or TIFF)")]
    NotAnImage,
    #[error("{format} images are not supported; convert it to PNG or JPEG")]
    Unsupported { format: String },
    #[error("this {format} image uses a feature Hearth cannot decode ({detail}); convert it to PNG or JPEG")]
    UnsupportedFeature { format: &'static str, detail: String },
    #[error("the {format} image is truncated (the file ends before the image does)")]
    Truncated { format: &'static str },
    #[error("the {format} image is corrupt: {detail}")]
    Corrupt { format: &'static str, detail: String },
    #[error("the image is {width}x{height} pixels, too large: {limit}")]
    TooLarge { width: u32, height: u32, limit: SizeLimit },
}

/// The formats Hearth decodes (the `image` features enabled in Cargo.toml).
const ACCEPTED: [ImageFormat; 6] =
    [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP, ImageFormat::Gif, ImageFormat::Bmp, ImageFormat::Tiff];

/// Decodes untrusted image bytes into 8-bit RGB, upright, within `limits`.
///
/// GIF and animated WebP give their first frame. 16-bit samples keep their high byte, as PIL
/// does for RGB, RGBA and grey+alpha PNGs (for 16-bit *grey* PIL clips to 255 instead, which
/// whitens the image: Hearth keeps the high byte there too).
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageInputError> {
    if bytes.is_empty() {
        return Err(ImageInputError::Empty);
    }
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(ImageInputError::FileTooLarge { size, limit: limits.max_bytes });
    }
    if let Some(format) = sniff_unsupported(bytes) {
        return Err(ImageInputError::Unsupported { format: format.to_string() });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageInputError::Corrupt { format: "image", detail: e.to_string() })?;
    let format = reader.format().ok_or(ImageInputError::NotAnImage)?;
    if !ACCEPTED.contains(&format) {
        return Err(ImageInputError::Unsupported { format: format_name(format).to_string() });
    }
    let name = format_name(format);
    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        // zune-jpeg paints the missing part grey and carries on; PIL (and we) refuse.
        return Err(ImageInputError::Truncated { format: name });
    }
    // Only the allocation cap goes to the decoder here, so that an oversized header comes back to
    // us as its dimensions (checked below, with the numbers in the error) instead of a bare
    // "dimensions exceed limit". PNG takes its limits at construction; the others get them
    // through `set_limits` inside `into_decoder`, after reading no more than the header.
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(|e| map_error(e, name))?;

    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let needed = decoder.total_bytes();
    if needed > limits.max_alloc {
        return Err(ImageInputError::TooLarge {
            width,
            height,
            limit: SizeLimit::Memory { needed, limit: limits.max_alloc },
        });
    }
    let mut strict = image::Limits::default();
    strict.max_image_width = Some(limits.max_width);
    strict.max_image_height = Some(limits.max_height);
    strict.max_alloc = Some(limits.max_alloc);
    decoder.set_limits(strict).map_err(|e| map_error(e, name))?;

    // A broken EXIF block is no reason to refuse the picture: it is shown as stored.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let decoded = DynamicImage::from_decoder(decoder).map_err(|e| map_error(e, name))?;
    let rgb = to_rgb_like_pil(decoded);
    // Rotating the RGB copy (and not the decoder's possibly wider buffer) keeps the peak low.
    let mut upright = DynamicImage::ImageRgb8(rgb);
    upright.apply_orientation(orientation);
    Ok(upright.into_rgb8())
}

fn check_dimensions(width: u32, height: u32, limits: &ImageLimits) -> Result<(), ImageInputError> {
    let limit = if width > limits.max_width {
        SizeLimit::Width(limits.max_width)
    } else if height > limits.max_height {
        SizeLimit::Height(limits.max_height)
    } else if u64::from(width) * u64::from(height) > limits.max_pixels {
        SizeLimit::Pixels(limits.max_pixels)
    } else if width == 0 || height == 0 {
        return Err(ImageInputError::Corrupt {
            format: "image",
            detail: format!("its header says {width}x{height} pixels"),
        });
    } else {
        return Ok(());
    };
    Err(ImageInputError::TooLarge { width, height, limit })
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Avif => "AVIF",
        ImageFormat::Ico => "ICO",
        ImageFormat::Pnm => "PNM",
        ImageFormat::Tga => "TGA",
        ImageFormat::Dds => "DDS",
        ImageFormat::Hdr => "HDR",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Farbfeld => "Farbfeld",
        ImageFormat::Qoi => "QOI",
        _ => "this kind of",
    }
}

/// Formats that people drop but no decoder here reads, named from their signatures so that the
/// error says what the file is instead of "not an image".
fn sniff_unsupported(bytes: &[u8]) -> Option<&'static str> {
    // ISO-BMFF (HEIF family): a box size, then "ftyp" and the major brand.
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = &bytes[8..12];
        if [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"].iter().any(|b| brand == *b) {
            return Some("HEIC");
        }
        if brand == b"avif" || brand == b"avis" {
            return Some("AVIF");
        }
    }
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0CJXL \r\n\x87\n") {
        return Some("JPEG XL");
    }
    if bytes.starts_with(b"%PDF") {
        return Some("PDF");
    }
    if bytes.starts_with(b"8BPS") {
        return Some("Photoshop (PSD)");
    }
    // SVG is text: an XML prolog, comments or a doctype may come before the <svg> element.
    let head = &bytes[..bytes.len().min(4096)];
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let trimmed = text.iter().position(|b| !b.is_ascii_whitespace()).map_or(&text[..0], |i| &text[i..]);
    if trimmed.starts_with(b"<") && head.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg")) {
        return Some("SVG");
    }
    None
}

/// Whether a JPEG ends before its end-of-image marker. The marker segments before the first
/// start-of-scan are walked by their lengths (an EXIF thumbnail inside APP1 has its own markers),
/// then the scan data must hold an EOI: entropy-coded bytes stuff every 0xFF with a 0x00, so
/// 0xFF 0xD9 there is the real marker.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Markers may be preceded by fill bytes (0xFF).
        while i < bytes.len() && bytes[i] == 0xFF && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return true;
        };
        match marker {
            0xDA => return !bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
            0xD9 => return false,
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let Some(len) = bytes.get(i + 2..i + 4).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
                    return true;
                };
                i += 2 + len;
            }
        }
    }
}

fn map_error(error: ImageError, format: &'static str) -> ImageInputError {
    match error {
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageInputError::Truncated { format }
        }
        ImageError::IoError(e) => ImageInputError::Corrupt { format, detail: e.to_string() },
        ImageError::Decoding(e) => {
            let detail = e.to_string();
            // Decoders report a short file in their own words.
            let lower = detail.to_ascii_lowercase();
            if ["eof", "end of file", "unexpected end", "truncated", "no more data", "not enough data"]
                .iter()
                .any(|w| lower.contains(w))
            {
                ImageInputError::Truncated { format }
            } else {
                ImageInputError::Corrupt { format, detail }
            }
        }
        ImageError::Limits(e) => {
            ImageInputError::Corrupt { format, detail: format!("the decoder hit a memory or size limit ({e})") }
        }
        ImageError::Unsupported(e) => ImageInputError::UnsupportedFeature { format, detail: e.to_string() },
        ImageError::Parameter(e) => ImageInputError::Corrupt { format, detail: e.to_string() },
        ImageError::Encoding(e) => ImageInputError::Corrupt { format, detail: e.to_string() },
    }
}

/// PIL's `convert("RGB")`: grey is repeated, alpha is dropped (no compositing on white),
/// 16-bit samples keep their high byte (PIL's `;16B` unpackers).
fn to_rgb_like_pil(image: DynamicImage) -> RgbImage {
    fn map<P: image::Pixel>(
        src: &image::ImageBuffer<P, Vec<P::Subpixel>>,
        f: impl Fn(&[P::Subpixel]) -> [u8; 3],
    ) -> RgbImage {
        let (w, h) = src.dimensions();
        let channels = P::CHANNEL_COUNT as usize;
        let mut out = Vec::with_capacity(w as usize * h as usize * 3);
        for px in src.as_raw().chunks_exact(channels) {
            out.extend_from_slice(&f(px));
        }
        // The length is w*h*3 by construction.
        RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
    }
    let hi = |v: u16| (v >> 8) as u8;
    match image {
        DynamicImage::ImageRgb8(img) => img,
        DynamicImage::ImageLuma8(img) => map(&img, |p| [p[0]; 3]),
        DynamicImage::ImageLumaA8(img) => map(&img, |p| [p[0]; 3]),
        DynamicImage::ImageRgba8(img) => map(&img, |p| [p[0], p[1], p[2]]),
        DynamicImage::ImageLuma16(img) => map(&img, |p| [hi(p[0]); 3]),
        DynamicImage::ImageLumaA16(img) => map(&img, |p| [hi(p[0]); 3]),
        DynamicImage::ImageRgb16(img) => map(&img, |p| [hi(p[0]), hi(p[1]), hi(p[2])]),
        DynamicImage::ImageRgba16(img) => map(&img, |p| [hi(p[0]), hi(p[1]), hi(p[2])]),
        // Float TIFFs and anything newer: `image`'s own conversion (clamped, rounded).
        other => other.into_rgb8(),
    }
}

/// The encoder's input for one image: resized to `size` x `size` (stretched) like PIL's
/// bilinear resize, then `(u8 / 255 - 0.5) / 0.5` as f32, channels first (3 x size x size).
pub fn pixel_values(img: &RgbImage, size: u32) -> Vec<f32> {
    let resized = resize_bilinear(img, size, size);
    normalize_chw(&resized)
}

/// `(u8 / 255 - 0.5) / 0.5`, channels first. The rescale is done in f64 and then cast, as the
/// reference (numpy) does, so that the values match it to the bit.
fn normalize_chw(img: &RgbImage) -> Vec<f32> {
    let plane = img.width() as usize * img.height() as usize;
    let mut out = vec![0f32; plane * 3];
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            let rescaled = (f64::from(px[c]) * (1.0 / 255.0)) as f32;
            out[c * plane + i] = (rescaled - 0.5) / 0.5;
        }
    }
    out
}

/// Fixed-point precision of Pillow's 8-bit resampling (`PRECISION_BITS` in Resample.c).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output sample: the first input index it reads and its fixed-point weights.
struct Taps {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear (triangle) filter:
/// when shrinking, the triangle widens by the scale factor, so every input pixel contributes.
fn bilinear_taps(in_size: u32, out_size: u32) -> Taps {
    let scale = f64::from(in_size) / f64::from(out_size);
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle's support is 1 input pixel, widened when shrinking
    let inv_filterscale = 1.0 / filterscale;
    let mut first = Vec::with_capacity(out_size as usize);
    let mut weights = Vec::with_capacity(out_size as usize);
    for xx in 0..out_size {
        let center = (f64::from(xx) + 0.5) * scale;
        // C's (int) cast truncates toward zero; so does `as`.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size));
        let raw: Vec<f64> = (xmin..xmax)
            .map(|x| {
                let t = ((x as f64 - center + 0.5) * inv_filterscale).abs();
                if t < 1.0 {
                    1.0 - t
                } else {
                    0.0
                }
            })
            .collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * f64::from(1u32 << PRECISION_BITS);
                if w < 0.0 {
                    (scaled - 0.5) as i32
                } else {
                    (scaled + 0.5) as i32
                }
            })
            .collect();
        first.push(xmin as usize);
        weights.push(fixed);
    }
    Taps { first, weights }
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize((width, height), Image.BILINEAR)` on an RGB image, to the bit (Pillow
/// 13's `ImagingResampleInner`): two separable passes, each rounded to u8. The horizontal pass
/// runs first (over just the rows the vertical pass reads) unless the height shrinks by more than
/// twice as many pixels as the width does, then the vertical one does. A pass whose size does not
/// change is skipped.
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = img.dimensions();
    if width == 0 || height == 0 || in_w == 0 || in_h == 0 {
        return RgbImage::new(width, height);
    }
    let need_horizontal = width != in_w;
    let need_vertical = height != in_h;
    let shrink_h = i64::from(in_h) - i64::from(height);
    let shrink_w = i64::from(in_w) - i64::from(width);
    let horizontal_first = !(shrink_h > 0 && shrink_h > shrink_w * 2);
    let src = img.as_raw();
    let out = match (need_horizontal, need_vertical) {
        (false, false) => src.clone(),
        (true, false) => horizontal_pass(src, in_w, 0, in_h as usize, &bilinear_taps(in_w, width)),
        (false, true) => vertical_pass(src, in_w, 0, &bilinear_taps(in_h, height)),
        (true, true) if horizontal_first => {
            let vertical = bilinear_taps(in_h, height);
            // Only the rows the vertical pass reads.
            let first = vertical.first[0];
            let last = height as usize - 1;
            let end = vertical.first[last] + vertical.weights[last].len();
            let tmp = horizontal_pass(src, in_w, first, end, &bilinear_taps(in_w, width));
            vertical_pass(&tmp, width, first, &vertical)
        }
        (true, true) => {
            let tmp = vertical_pass(src, in_w, 0, &bilinear_taps(in_h, height));
            horizontal_pass(&tmp, in_w, 0, height as usize, &bilinear_taps(in_w, width))
        }
    };
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(width, height))
}

/// Rows `first..end` of an RGB image `in_w` wide, each resampled to `taps.first.len()` pixels.
fn horizontal_pass(src: &[u8], in_w: u32, first: usize, end: usize, taps: &Taps) -> Vec<u8> {
    let in_stride = in_w as usize * 3;
    let out_stride = taps.first.len() * 3;
    let mut out = vec![0u8; out_stride * (end - first)];
    out.par_chunks_mut(out_stride).enumerate().for_each(|(r, out_row)| {
        let row = &src[(r + first) * in_stride..(r + first + 1) * in_stride];
        for (xx, out_px) in out_row.chunks_exact_mut(3).enumerate() {
            let start = taps.first[xx];
            let mut acc = [1i32 << (PRECISION_BITS - 1); 3];
            for (k, &w) in taps.weights[xx].iter().enumerate() {
                let px = &row[(start + k) * 3..(start + k) * 3 + 3];
                for c in 0..3 {
                    acc[c] += i32::from(px[c]) * w;
                }
            }
            for c in 0..3 {
                out_px[c] = clip8(acc[c]);
            }
        }
    });
    out
}

/// An RGB image `width` wide whose first row is source row `row_offset`, resampled to
/// `taps.first.len()` rows.
fn vertical_pass(src: &[u8], width: u32, row_offset: usize, taps: &Taps) -> Vec<u8> {
    let stride = width as usize * 3;
    let mut out = vec![0u8; stride * taps.first.len()];
    out.par_chunks_mut(stride).enumerate().for_each(|(yy, out_row)| {
        let start = taps.first[yy] - row_offset;
        let weights = &taps.weights[yy];
        for (i, out_v) in out_row.iter_mut().enumerate() {
            let mut acc = 1i32 << (PRECISION_BITS - 1);
            for (k, &w) in weights.iter().enumerate() {
                acc += i32::from(src[(start + k) * stride + i]) * w;
            }
            *out_v = clip8(acc);
        }
    });
    out
}

/// The reference processor's Pan & Scan settings (transformers `Gemma3ImageProcessor`
/// `pan_and_scan_*` defaults). Off unless a caller asks for it, as in the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanScan {
    /// No crop is narrower (or shorter) than this, in pixels.
    pub min_crop_size: u32,
    /// At most this many crops.
    pub max_crops: u32,
    /// Crops only when the long side / short side reaches this ratio.
    pub min_ratio_to_activate: f64,
}

impl Default for PanScan {
    fn default() -> Self {
        PanScan { min_crop_size: 256, max_crops: 4, min_ratio_to_activate: 1.2 }
    }
}

/// One crop, in pixels of the (upright) source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl PanScan {
    /// The reference's crop rule: along the long side, round(long / short) crops (half rounds
    /// up), no more than long / min_crop_size, clamped to [2, max_crops]; each crop
    /// ceil(side / n) long, the last one cut by the image's edge; none at all when the ratio is
    /// under `min_ratio_to_activate` or a crop would be under `min_crop_size`. Row-major order.
    pub fn crop_boxes(&self, width: u32, height: u32) -> Vec<CropBox> {
        if width == 0 || height == 0 {
            return Vec::new();
        }
        let (w, h) = (f64::from(width), f64::from(height));
        let min_crop = f64::from(self.min_crop_size.max(1));
        let count = |long: f64, short: f64| -> u32 {
            let ideal = (long / short + 0.5).floor();
            let n = ideal.min((long / min_crop).floor()).max(2.0).min(f64::from(self.max_crops));
            n as u32
        };
        let (n_w, n_h) = if width >= height {
            if w / h < self.min_ratio_to_activate {
                return Vec::new();
            }
            (count(w, h), 1)
        } else {
            if h / w < self.min_ratio_to_activate {
                return Vec::new();
            }
            (1, count(h, w))
        };
        if n_w == 0 || n_h == 0 {
            return Vec::new();
        }
        let crop_w = width.div_ceil(n_w);
        let crop_h = height.div_ceil(n_h);
        if crop_w.min(crop_h) < self.min_crop_size {
            return Vec::new();
        }
        let mut boxes = Vec::new();
        for j in 0..n_h {
            for i in 0..n_w {
                let (x, y) = (crop_w * i, crop_h * j);
                if x >= width || y >= height {
                    continue;
                }
                boxes.push(CropBox { x, y, width: crop_w.min(width - x), height: crop_h.min(height - y) });
            }
        }
        boxes
    }
}

/// The Pan & Scan crops of `img` (not resized), in the reference's order. Empty when the image
/// is not elongated enough.
pub fn pan_and_scan_crops(img: &RgbImage, pan_scan: &PanScan) -> Vec<RgbImage> {
    pan_scan
        .crop_boxes(img.width(), img.height())
        .into_iter()
        .map(|b| image::imageops::crop_imm(img, b.x, b.y, b.width, b.height).to_image())
        .collect()
}

/// What the encoder gets for one image, as the reference processor lays it out: the whole image
/// first, then (with Pan & Scan on) each crop, every one as [`pixel_values`] at `size`.
pub fn encoder_inputs(img: &RgbImage, pan_scan: Option<&PanScan>, size: u32) -> Vec<Vec<f32>> {
    let mut inputs = vec![pixel_values(img, size)];
    if let Some(ps) = pan_scan {
        inputs.extend(pan_and_scan_crops(img, ps).iter().map(|crop| pixel_values(crop, size)));
    }
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_sum_to_one_and_widen_when_shrinking() {
        let up = bilinear_taps(10, 896);
        assert!(up.weights.iter().all(|w| w.len() <= 3));
        let down = bilinear_taps(4000, 896);
        // Support 4000/896 = 4.46 on each side: about 9 taps.
        assert!(down.weights.iter().any(|w| w.len() >= 8), "no antialiasing taps");
        for w in up.weights.iter().chain(&down.weights) {
            let sum: i64 = w.iter().map(|&v| i64::from(v)).sum();
            assert!((sum - (1i64 << PRECISION_BITS)).abs() <= w.len() as i64, "sum {sum}");
        }
    }

    #[test]
    fn resize_to_same_size_is_identity() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 9]));
        assert_eq!(resize_bilinear(&img, 7, 5), img);
    }
}
