//! Commands reject with the runtime's one error shape, `{code, message, details}`
//! (`hearth::error`); the UI translates the code. Nothing is mapped here.

pub use hearth::error::{parse_id, ErrorCode, ErrorDetails, HearthError as AppError, HearthResult as AppResult};
