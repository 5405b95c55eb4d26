//! Long documents: text out of files ([`extract`]), a plan over the model's context ([`plan`],
//! [`chunk`]) and summaries run through the runtime ([`summarize`]).

pub mod ask;
pub mod chunk;
mod error;
pub mod extract;
pub mod plan;
pub mod prompt;
pub mod summarize;

pub use error::{DocumentError, Result};
pub use extract::{extract_bytes, extract_file, DocKind, Extracted, Limits};
