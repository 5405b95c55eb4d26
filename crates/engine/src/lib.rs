//! Gemma 3 inference on candle-core.
//!
//! Layers, from the bottom: `gguf` reads and validates the file (and summarises its header for
//! the model manager), `config` turns its metadata into hyper-parameters (and has the one KV
//! size formula), `linear` multiplies by quantized weights, `kv_cache` keeps keys and values
//! (a ring buffer of `window` positions on local layers), `model` runs the forward pass,
//! `tokenizer`/`chat_template` turn text into ids, `sampler` picks tokens and `session` drives
//! generation with streaming, stop conditions, cancel and cache reuse across turns.
//! `memory` measures the machine's RAM. `vision` turns images into embeddings for image soft tokens.
//! No async, no database, no window.

// Every unsafe operation, also inside an `unsafe fn`, sits in its own `unsafe {}` block with a
// `// SAFETY:` comment saying why it holds.
#![deny(unsafe_op_in_unsafe_fn)]

mod attention;
pub mod chat_template;
pub mod config;
pub mod device;
pub mod error;
mod gelu;
pub mod gguf;
pub mod kv_cache;
mod kv_kernels;
pub mod linear;
pub mod memory;
pub mod model;
pub mod sampler;
pub mod session;
pub mod tokenizer;
pub mod vision;
mod vmath;

pub use error::{EngineError, Result};
