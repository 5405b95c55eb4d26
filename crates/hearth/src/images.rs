//! Thumbnails of the images people attach: small, made in Rust through the same guarded decoder
//! as the vision encoder's input (`engine::vision::preprocess::decode`, limits set before any
//! pixel is decoded), and cached on disk by the sha256 of the image's bytes, so the composer and
//! the history show a picture without decoding the original again.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use engine::vision::preprocess::{decode, resize_bilinear, ImageInputError, ImageLimits};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ImageEncoder, ImageFormat, RgbImage};
use sha2::{Digest, Sha256};

/// Longest side of the thumbnails the UI shows, in pixels.
pub const THUMBNAIL_SIDE: u32 = 256;

/// JPEG quality for thumbnails of photographs: small files, no visible blocks at 256 px.
const JPEG_QUALITY: u8 = 85;

/// An encoded thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// PNG or JPEG bytes.
    pub data: Vec<u8>,
    /// `image/png` or `image/jpeg`.
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error(transparent)]
    Image(#[from] ImageInputError),
    #[error("could not encode the thumbnail: {0}")]
    Encode(String),
    #[error("thumbnail cache {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
}

/// A thumbnail of `bytes` whose longest side is at most `max_side` (a smaller image keeps its
/// size), aspect kept, upright (EXIF), alpha dropped. PNG for lossless sources (screenshots,
/// drawings: sharp text), JPEG for photographs (JPEG, WebP, TIFF).
pub fn thumbnail(bytes: &[u8], max_side: u32) -> Result<Thumbnail, ThumbnailError> {
    let img = decode(bytes, &ImageLimits::default())?;
    let (w, h) = fit(img.width(), img.height(), max_side.max(1));
    let small = if (w, h) == img.dimensions() { img } else { resize_bilinear(&img, w, h) };
    let photo = matches!(image::guess_format(bytes), Ok(ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Tiff));
    let (data, mime) = if photo { (encode_jpeg(&small)?, "image/jpeg") } else { (encode_png(&small)?, "image/png") };
    Ok(Thumbnail { data, mime, width: w, height: h })
}

/// [`thumbnail`] at [`THUMBNAIL_SIDE`], kept in `cache_dir` under the sha256 of `bytes`: the
/// second call for the same image reads the file instead of decoding the image. The file is
/// written to a temporary name and renamed, so a crash never leaves half a thumbnail.
pub fn thumbnail_cached(cache_dir: &Path, bytes: &[u8]) -> Result<Thumbnail, ThumbnailError> {
    let key = format!("{:x}-{THUMBNAIL_SIDE}", Sha256::digest(bytes));
    for (ext, mime) in [("png", "image/png"), ("jpg", "image/jpeg")] {
        let path = cache_dir.join(format!("{key}.{ext}"));
        match std::fs::read(&path) {
            Ok(data) => {
                // A damaged cache file is made again rather than shown.
                if let Ok((width, height)) = encoded_dimensions(&data) {
                    return Ok(Thumbnail { data, mime, width, height });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ThumbnailError::Cache { path, source }),
        }
    }
    let thumb = thumbnail(bytes, THUMBNAIL_SIDE)?;
    let ext = if thumb.mime == "image/png" { "png" } else { "jpg" };
    let path = cache_dir.join(format!("{key}.{ext}"));
    let cache_err = |source| ThumbnailError::Cache { path: path.clone(), source };
    std::fs::create_dir_all(cache_dir).map_err(cache_err)?;
    let tmp = cache_dir.join(format!(".{key}.{ext}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &thumb.data).map_err(cache_err)?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        cache_err(e)
    })?;
    Ok(thumb)
}

/// The size that fits `max_side`, aspect kept, never upscaled, never 0.
fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_side {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(long);
    let side = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, max_side);
    (side(width), side(height))
}

fn encode_png(img: &RgbImage) -> Result<Vec<u8>, ThumbnailError> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .map_err(|e| ThumbnailError::Encode(e.to_string()))?;
    Ok(out)
}

fn encode_jpeg(img: &RgbImage) -> Result<Vec<u8>, ThumbnailError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .map_err(|e| ThumbnailError::Encode(e.to_string()))?;
    Ok(out)
}

fn encoded_dimensions(data: &[u8]) -> image::ImageResult<(u32, u32)> {
    image::ImageReader::new(Cursor::new(data)).with_guessed_format()?.into_dimensions()
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(4000, 3000, 256), (256, 192));
        assert_eq!(fit(3000, 4000, 256), (192, 256));
        assert_eq!(fit(100, 50, 256), (100, 50));
        assert_eq!(fit(4000, 10, 256), (256, 1));
        assert_eq!(fit(10, 4000, 256), (1, 256));
    }
}
