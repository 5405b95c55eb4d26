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

/// Where the app keeps thumbnails: `data_dir/cache/thumbnails`.
pub fn thumbnail_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cache").join("thumbnails")
}

/// [`thumbnail_cached`] as a `data:` URL, the form the window's `<img>` shows under its CSP
/// (`img-src data:`) without giving the webview access to files.
pub fn thumbnail_data_url(cache_dir: &Path, bytes: &[u8]) -> Result<String, ThumbnailError> {
    use base64::Engine as _;
    let thumb = thumbnail_cached(cache_dir, bytes)?;
    Ok(format!("data:{};base64,{}", thumb.mime, base64::engine::general_purpose::STANDARD.encode(&thumb.data)))
}

/// Largest pasted image kept: a screenshot of a large screen as PNG stays well below it.
pub const PASTE_MAX_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasteError {
    #[error("the pasted image is {size} bytes, more than the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("the pasted data is not an image Hearth can read: {0}")]
    NotAnImage(#[from] ImageInputError),
    #[error("the pasted data is not base64: {0}")]
    Encoding(String),
    #[error("cannot store the pasted image in {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// [`save_pasted`] for bytes that crossed the IPC boundary as base64; the size is checked
/// before decoding.
pub fn save_pasted_base64(data_dir: &Path, base64_data: &str, now_ms: i64) -> Result<PathBuf, PasteError> {
    use base64::Engine as _;
    let approx = base64_data.len() as u64 / 4 * 3;
    if approx > PASTE_MAX_BYTES + 3 {
        return Err(PasteError::TooLarge { size: approx, limit: PASTE_MAX_BYTES });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_data.trim())
        .map_err(|e| PasteError::Encoding(e.to_string()))?;
    save_pasted(data_dir, &bytes, now_ms)
}

/// The thumbnail of the image file at `path` (a composer attachment) as a `data:` URL, read
/// under the attachment size limit and cached under `data_dir`.
pub fn file_thumbnail_data_url(data_dir: &Path, path: &Path) -> crate::error::HearthResult<String> {
    let file = crate::store::read_attachment_file(path)?;
    Ok(thumbnail_data_url(&thumbnail_dir(data_dir), &file.bytes)?)
}

/// The thumbnail of a stored image attachment as a `data:` URL; a document has none
/// (`not_found`, field `attachment`).
pub async fn attachment_thumbnail_data_url(store: &crate::store::Store, id: i64) -> crate::error::HearthResult<String> {
    let att = store.attachment(id).await?;
    if att.kind != crate::store::AttachmentKind::Image {
        return Err(crate::error::HearthError::not_found("attachment", id));
    }
    let bytes = store.attachment_bytes(&att).await?;
    let dir = thumbnail_dir(store.data_dir());
    tokio::task::spawn_blocking(move || thumbnail_data_url(&dir, &bytes))
        .await
        .map_err(crate::error::HearthError::internal)?
        .map_err(Into::into)
}

/// Keeps an image pasted into the composer as a file under `data_dir/pasted`, so it is attached
/// like a dropped file. The bytes must decode as an image (through the same guarded decoder as
/// thumbnails); the name is made here, never taken from the web side: `pasted-<UTC time>-<first
/// 12 hex of the sha256>.<ext of the detected format>`, so the same image pasted twice in one
/// second is one file and different images never collide. Written to a temporary name and
/// renamed, so a crash never leaves half an image.
pub fn save_pasted(data_dir: &Path, bytes: &[u8], now_ms: i64) -> Result<PathBuf, PasteError> {
    if bytes.len() as u64 > PASTE_MAX_BYTES {
        return Err(PasteError::TooLarge { size: bytes.len() as u64, limit: PASTE_MAX_BYTES });
    }
    decode(bytes, &ImageLimits::default())?;
    let ext = match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => "jpg",
        Ok(ImageFormat::WebP) => "webp",
        Ok(ImageFormat::Gif) => "gif",
        Ok(ImageFormat::Bmp) => "bmp",
        Ok(ImageFormat::Tiff) => "tiff",
        _ => "png",
    };
    let t = crate::utc::Utc::from_unix_ms(now_ms);
    let sha: String = Sha256::digest(bytes).iter().take(6).map(|b| format!("{b:02x}")).collect();
    let dir = data_dir.join("pasted");
    let name = format!(
        "pasted-{:04}{:02}{:02}-{:02}{:02}{:02}-{sha}.{ext}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    );
    let path = dir.join(&name);
    let io = |source| PasteError::Io { path: dir.clone(), source };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })?;
    Ok(path)
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
