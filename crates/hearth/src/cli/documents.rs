//! `hearth extract` and `hearth summarize`: long documents from the command line. Their flags and
//! JSON are a contract the tests rely on.

use std::path::{Path, PathBuf};

use hearth::documents::{self, Limits};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// The document (txt, md, html, pdf, docx, source code, csv, json).
    file: PathBuf,
    /// Print `{kind, text, chars}` as JSON instead of the text.
    #[arg(long)]
    json: bool,
}

pub fn extract(a: ExtractArgs, _data_dir: &Path) -> anyhow::Result<()> {
    let doc = documents::extract_file(&a.file, &Limits::default())?;
    if a.json {
        println!("{}", json!({ "kind": doc.kind, "text": doc.text, "chars": doc.chars }));
    } else {
        println!("{}", doc.text);
    }
    Ok(())
}
