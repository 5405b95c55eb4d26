//! Long documents: text out of files ([`extract`], kept by content in [`text_cache`]), a plan
//! over the model's context ([`plan`], [`chunk`]), summaries run through the runtime
//! ([`summarize`], with the instructions in [`prompt`]) and questions about a document ([`ask`]).

pub mod app;
pub mod ask;
pub mod chunk;
mod error;
pub mod extract;
pub mod plan;
pub mod prompt;
pub mod summarize;
pub mod text_cache;

pub use error::{DocumentError, Result};
pub use extract::{extract_bytes, extract_file, DocKind, Extracted, Limits};
pub use text_cache::extract_file_cached;
