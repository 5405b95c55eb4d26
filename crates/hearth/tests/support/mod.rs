//! Helpers shared by the model-manager tests: a fake Hugging Face Hub and a GGUF writer.
#![allow(dead_code)]

pub mod fake_hub;
pub mod gguf_gen;
