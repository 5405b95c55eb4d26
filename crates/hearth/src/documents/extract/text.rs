//! Bytes to text: a BOM wins; then UTF-16 without a BOM (every other byte zero); then UTF-8;
//! then a legacy encoding guessed by `chardetng` (latin-1 / windows-1252, EUC-KR, Shift_JIS, ...)
//! and decoded by `encoding_rs`. Binary data is refused rather than decoded into noise.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};

use crate::documents::{DocumentError, Result};

/// Control bytes (other than tab, line feed, carriage return, form feed, escape) above this share
/// of the bytes mean binary data: text files have next to none, random bytes about 12%.
const MAX_CONTROL_SHARE: f64 = 0.02;

/// Invalid UTF-8 sequences up to this share of characters in an otherwise UTF-8 file are kept
/// as U+FFFD rather than sending the whole file through the legacy-encoding guess.
const MAX_UTF8_ERROR_SHARE: f64 = 0.01;

pub fn decode(bytes: &[u8], what: &str) -> Result<String> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return Ok(text.into_owned());
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        return Ok(text.into_owned());
    }
    // NUL bytes in text that is otherwise clean (a file padded by a crashed editor) are not
    // text; they are dropped. In binary data they come with other control bytes and the
    // check below refuses it.
    let stripped: Vec<u8>;
    let bytes = if bytes.contains(&0) {
        stripped = bytes.iter().copied().filter(|&b| b != 0).collect();
        &stripped[..]
    } else {
        bytes
    };
    let controls = bytes.iter().filter(|&&b| is_binary_control(b)).count();
    if !bytes.is_empty() && controls as f64 / bytes.len() as f64 > MAX_CONTROL_SHARE {
        return Err(DocumentError::Binary {
            what: what.to_owned(),
            detail: format!("{controls} control bytes in {}", bytes.len()),
        });
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(s.to_owned());
    }
    let (utf8, _) = UTF_8.decode_without_bom_handling(bytes);
    let errors = utf8.chars().filter(|&c| c == char::REPLACEMENT_CHARACTER).count();
    let chars = utf8.chars().count().max(1);
    let has_multibyte = utf8.chars().any(|c| c != char::REPLACEMENT_CHARACTER && !c.is_ascii());
    if has_multibyte && (errors as f64 / chars as f64) <= MAX_UTF8_ERROR_SHARE {
        return Ok(utf8.into_owned());
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Allow);
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Ok(text.into_owned())
}

fn is_binary_control(b: u8) -> bool {
    matches!(b, 0x01..=0x08 | 0x0e..=0x1a | 0x1c..=0x1f | 0x7f)
}

/// UTF-16 written without a BOM: in text mostly made of ASCII or Latin letters, one byte of
/// every pair is zero. Odd zero bytes with even ones non-zero is little-endian.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    if bytes.len() < 4 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let pairs = bytes.len() / 2;
    let even_zero = bytes.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_zero = bytes.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    let share = |n: usize| n as f64 / pairs as f64;
    if share(odd_zero) > 0.5 && share(even_zero) < 0.05 {
        Some(UTF_16LE)
    } else if share(even_zero) > 0.5 && share(odd_zero) < 0.05 {
        Some(UTF_16BE)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_le_without_bom_is_recognised() {
        let bytes: Vec<u8> = "hello world".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode(&bytes, "f").unwrap(), "hello world");
    }
}
