use std::path::PathBuf;

/// Everything the engine can refuse or fail at, with enough context for a user-facing message.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a GGUF we can read: bad magic, truncated, absurd counts, wrong shapes.
    #[error("invalid GGUF file {path}: {reason}")]
    InvalidGguf { path: PathBuf, reason: String },
    /// A readable GGUF that is not a Gemma 3 text model.
    #[error("unsupported model {path}: {reason}")]
    UnsupportedModel { path: PathBuf, reason: String },
    /// Loading would need more memory than the machine has available.
    #[error("the model needs {} MiB of memory but only {} MiB are available", needed / (1 << 20), available / (1 << 20))]
    InsufficientMemory { needed: u64, available: u64 },
    #[error("metadata key `{key}`: {reason}")]
    Metadata { key: String, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error("prompt of {tokens} tokens does not fit the context of {context} tokens")]
    ContextOverflow { tokens: usize, context: usize },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("device: {0}")]
    Device(String),
    /// A vision projector whose embeddings are not as wide as the text model's hidden state: the
    /// mmproj belongs to another model.
    #[error(
        "the vision projector (mmproj) makes {projection}-wide embeddings but the text model is {text} wide: \
         they are not a pair; use the mmproj file published with this model"
    )]
    MmprojMismatch { projection: usize, text: usize },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
