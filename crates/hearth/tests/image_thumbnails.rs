//! Thumbnails: small, upright, through the guarded decoder, cached on disk by sha256.

use std::path::PathBuf;

use engine::vision::preprocess::ImageInputError;
use hearth::images::{thumbnail, thumbnail_cached, ThumbnailError, THUMBNAIL_SIDE};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decoded(data: &[u8]) -> image::RgbImage {
    image::load_from_memory(data).expect("thumbnail decodes").into_rgb8()
}

#[test]
fn large_png_becomes_a_small_png_with_its_aspect() {
    // 1500x1100 -> 256x188.
    let t = thumbnail(&fixture("shrink.png"), 256).unwrap();
    assert_eq!((t.width, t.height, t.mime), (256, 188, "image/png"));
    let img = decoded(&t.data);
    assert_eq!(img.dimensions(), (256, 188));
    assert!(t.data.len() < 100_000, "{} bytes", t.data.len());
    // The picture survives: the source's red channel ramps from 0 at the left edge to 255 at the right.
    let left = img.get_pixel(0, 94).0[0];
    let right = img.get_pixel(255, 94).0[0];
    assert!(left < 40 && right > 215, "left {left}, right {right}");
}

#[test]
fn photo_becomes_jpeg_and_upright() {
    // exif6.jpg is stored 64x40 and shown 40x64.
    let t = thumbnail(&fixture("exif6.jpg"), 32).unwrap();
    assert_eq!((t.width, t.height, t.mime), (20, 32, "image/jpeg"));
    assert_eq!(decoded(&t.data).dimensions(), (20, 32));
}

#[test]
fn small_images_are_not_upscaled() {
    let t = thumbnail(&fixture("one_pixel.png"), THUMBNAIL_SIDE).unwrap();
    assert_eq!((t.width, t.height), (1, 1));
    assert_eq!(decoded(&t.data).get_pixel(0, 0).0, [200, 100, 50]);
    let t = thumbnail(&fixture("extreme_wide.png"), THUMBNAIL_SIDE).unwrap();
    assert_eq!((t.width, t.height), (256, 1));
}

#[test]
fn bad_images_give_the_decoder_error() {
    assert!(matches!(thumbnail(&[], 256), Err(ThumbnailError::Image(ImageInputError::Empty))));
    let e = thumbnail(&fixture("bomb-40000.png"), 256).unwrap_err();
    assert!(matches!(e, ThumbnailError::Image(ImageInputError::TooLarge { .. })), "{e:?}");
    let e = thumbnail(b"<svg xmlns='http://www.w3.org/2000/svg'/>", 256).unwrap_err();
    assert_eq!(e.to_string(), "SVG images are not supported; convert it to PNG or JPEG");
}

#[test]
fn cached_thumbnail_is_written_once_by_sha256_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("thumbs");
    let bytes = fixture("gradient.png");
    let first = thumbnail_cached(&cache, &bytes).unwrap();
    assert_eq!((first.width, first.height), (256, 171));

    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    // sha256 of the image's bytes, the side, the format.
    assert_eq!(name.len(), 64 + "-256.png".len(), "{name}");
    assert!(name.ends_with("-256.png"), "{name}");

    // A second call reads the cached file: prove it by changing the file and seeing the change.
    let marker = thumbnail(&fixture("one_pixel.png"), 256).unwrap();
    std::fs::write(&files[0], &marker.data).unwrap();
    let second = thumbnail_cached(&cache, &bytes).unwrap();
    assert_eq!(second.data, marker.data);
    assert_eq!((second.width, second.height), (1, 1));

    // A damaged cache file is made again.
    std::fs::write(&files[0], b"garbage").unwrap();
    let third = thumbnail_cached(&cache, &bytes).unwrap();
    assert_eq!(third, first);

    // Another image gets its own entry.
    thumbnail_cached(&cache, &fixture("exif3.jpg")).unwrap();
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
}

#[test]
fn cached_thumbnail_of_a_bad_image_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("thumbs");
    assert!(thumbnail_cached(&cache, b"not an image at all").is_err());
    assert!(!cache.exists() || std::fs::read_dir(&cache).unwrap().count() == 0);
}
