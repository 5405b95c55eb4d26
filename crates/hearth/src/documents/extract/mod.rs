//! Text out of a file: plain text in any common encoding, HTML, PDF, DOCX, source code, CSV and
//! JSON. Each parser runs on its own worker thread under [`Limits`] fixed before it starts, so a
//! hostile file becomes a [`DocumentError`] for that file, never a crash or a hang.

mod docx;
mod html;
mod isolate;
mod pdf;
mod text;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{DocumentError, Result};

/// What a file was read as. Serialised in `snake_case`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
    Code,
    Csv,
    Json,
}

impl DocKind {
    /// The kind a file name implies; anything unknown is read as text (and refused if it is not).
    pub fn from_path(path: &Path) -> DocKind {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        match ext.as_str() {
            "md" | "markdown" | "mdown" | "mkd" => DocKind::Markdown,
            "html" | "htm" | "xhtml" => DocKind::Html,
            "pdf" => DocKind::Pdf,
            "docx" => DocKind::Docx,
            "csv" | "tsv" => DocKind::Csv,
            "json" | "jsonl" | "ndjson" => DocKind::Json,
            "rs" | "py" | "js" | "mjs" | "ts" | "tsx" | "jsx" | "c" | "h" | "cc" | "cpp" | "hpp" | "cxx" | "java"
            | "kt" | "go" | "rb" | "php" | "swift" | "cs" | "scala" | "sh" | "bash" | "zsh" | "ps1" | "sql" | "lua"
            | "pl" | "r" | "m" | "hs" | "ml" | "ex" | "exs" | "erl" | "clj" | "dart" | "vue" | "svelte" | "css"
            | "scss" | "toml" | "yaml" | "yml" | "ini" | "cfg" | "xml" | "gradle" | "cmake" | "mk" => DocKind::Code,
            _ => DocKind::Text,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Text => "text",
            DocKind::Markdown => "markdown",
            DocKind::Html => "html",
            DocKind::Pdf => "pdf",
            DocKind::Docx => "docx",
            DocKind::Code => "code",
            DocKind::Csv => "csv",
            DocKind::Json => "json",
        }
    }
}

/// Bounds every extraction runs under, fixed before any parser sees a byte.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The file itself.
    pub max_input_bytes: u64,
    /// Any one part inflated out of an archive (a DOCX is a zip).
    pub max_entry_bytes: u64,
    /// All parts inflated out of one archive together.
    pub max_decompressed_bytes: u64,
    /// Entries in an archive.
    pub max_entries: usize,
    /// Element nesting in XML (DOCX); PDF form nesting.
    pub max_depth: usize,
    /// Wall-clock time for one file's parser.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Self {
            max_input_bytes: 100 * MIB,
            max_entry_bytes: 64 * MIB,
            max_decompressed_bytes: 256 * MIB,
            max_entries: 10_000,
            max_depth: 256,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A document's text. `chars` counts Unicode scalar values, the unit of every offset in
/// [`crate::documents::plan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Extracted {
    pub kind: DocKind,
    pub text: String,
    pub chars: usize,
}

/// Reads `path` (refusing it before reading if it is over the size limit) and extracts its text.
pub fn extract_file(path: &Path, limits: &Limits) -> Result<Extracted> {
    let io = |source| DocumentError::Io { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let what = path.display().to_string();
    if size > limits.max_input_bytes {
        return Err(DocumentError::TooLarge { what, size, limit: limits.max_input_bytes });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // `take` as well: the file may grow between the check and the read.
    file.take(limits.max_input_bytes + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(DocumentError::TooLarge { what, size: bytes.len() as u64, limit: limits.max_input_bytes });
    }
    extract_bytes(bytes, DocKind::from_path(path), &what, limits)
}

/// Extracts the text of `bytes` read as `kind`; `what` names the file in errors.
pub fn extract_bytes(bytes: Vec<u8>, kind: DocKind, what: &str, limits: &Limits) -> Result<Extracted> {
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(DocumentError::TooLarge {
            what: what.to_owned(),
            size: bytes.len() as u64,
            limit: limits.max_input_bytes,
        });
    }
    let owned_what = what.to_owned();
    let worker_limits = limits.clone();
    let raw = isolate::run(what, kind.as_str(), limits.timeout, move || match kind {
        DocKind::Html => html::extract(&bytes, &owned_what),
        DocKind::Pdf => pdf::extract(&bytes, &owned_what, &worker_limits),
        DocKind::Docx => docx::extract(&bytes, &owned_what, &worker_limits),
        DocKind::Text | DocKind::Markdown | DocKind::Code | DocKind::Csv | DocKind::Json => {
            text::decode(&bytes, &owned_what)
        }
    })?;
    let text = tidy(&raw);
    if text.trim().is_empty() {
        return Err(match kind {
            DocKind::Pdf => DocumentError::NoTextLayer { what: what.to_owned() },
            _ => DocumentError::NoText { what: what.to_owned() },
        });
    }
    let chars = text.chars().count();
    Ok(Extracted { kind, text, chars })
}

/// One line ending (`\n`), no trailing blanks at the end of lines, no runs of more than one
/// empty line, no leading or trailing blank lines: the same text a reader sees, in fewer tokens.
fn tidy(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank_run = 0usize;
    for line in raw.replace("\r\n", "\n").replace('\r', "\n").split('\n') {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_keeps_paragraphs_and_drops_blank_runs() {
        assert_eq!(tidy("\n\n a  \r\n\r\n\r\n\tb\n c \n\n"), " a\n\n\tb\n c");
    }

    #[test]
    fn kinds_follow_the_extension_case_insensitively() {
        assert_eq!(DocKind::from_path(Path::new("A.PDF")), DocKind::Pdf);
        assert_eq!(DocKind::from_path(Path::new("notes")), DocKind::Text);
        assert_eq!(DocKind::from_path(Path::new("x.rs")), DocKind::Code);
    }
}
