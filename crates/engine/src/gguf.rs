//! Reading GGUF files: header and metadata through candle's reader, every tensor checked against
//! the file before anything large is allocated, tensors read straight into their final buffers.
//!
//! This is Hearth's only GGUF parser. Besides loading, it answers the model manager's questions
//! from the header alone (`Summary`: architecture, name, size, quantization, context length,
//! Gemma 3 or vision projector), and it is the one place for the size of a tensor of each GGML
//! type (`tensor_bytes`, from candle's block types, which are what the bytes are read into).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::k_quants::{self, GgmlType};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::Device;

use crate::config::Config;
use crate::{EngineError, Result};

/// Smallest possible GGUF: magic, version, two counts.
const MIN_HEADER_BYTES: u64 = 4 + 4 + 8 + 8;

/// An open GGUF whose header has been read and whose tensor table has been checked against the
/// file size: every later `tensor()` call reads bytes that exist.
pub struct GgufFile {
    path: PathBuf,
    file: File,
    file_size: u64,
    content: Content,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| EngineError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        let file_size = file.metadata().map_err(io)?.len();
        let invalid = |reason: String| EngineError::InvalidGguf { path: path.to_owned(), reason };
        if file_size == 0 {
            return Err(invalid("the file is empty".into()));
        }
        if file_size < MIN_HEADER_BYTES {
            return Err(invalid(format!("the file is only {file_size} bytes, too short for a GGUF header")));
        }
        let mut magic = [0u8; 4];
        (&file).read_exact(&mut magic).map_err(io)?;
        if &magic != b"GGUF" {
            return Err(invalid(format!("not a GGUF file (starts with {:02x?}, expected \"GGUF\")", magic)));
        }
        (&file).seek(SeekFrom::Start(0)).map_err(io)?;
        // candle's reader bounds every count and string by the bytes left in the file, so a
        // hostile header cannot make it allocate more than the file's size.
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let content = Content::read(&mut reader).map_err(|e| invalid(header_error(e)))?;
        drop(reader);
        check_tensor_table(&content, file_size).map_err(invalid)?;
        Ok(Self { path: path.to_owned(), file, file_size, content })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header's answers to the model manager's questions (see `Summary`).
    pub fn summary(&self) -> Result<Summary> {
        // Informational keys of an unexpected type are treated as absent, as llama.cpp does;
        // only what decides how the file is used (architecture, Gemma 3 parameters) must parse.
        let text = |key: &str| self.str_opt(key).ok().flatten().map(str::to_string);
        let arch = self.str_opt("general.architecture")?.map(str::to_string);
        let mut tensors: Vec<TensorSummary> = self
            .content
            .tensor_infos
            .iter()
            .map(|(name, info)| TensorSummary {
                name: name.clone(),
                dims: info.shape.dims().to_vec(),
                dtype: info.ggml_dtype,
                // Checked at open: every tensor is a whole number of blocks.
                bytes: tensor_bytes(info.ggml_dtype, info.shape.elem_count() as u64).unwrap_or(0),
            })
            .collect();
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let gemma3 = (arch.as_deref() == Some("gemma3")).then(|| {
            // The vocabulary is the embedding's row count; a file without one is refused by
            // `check_gemma3` before this is looked at.
            let vocab = self.tensor_info("token_embd.weight").and_then(|e| e.shape.dims().first().copied());
            Config::from_metadata(self, vocab.unwrap_or(0)).map_err(|e| e.to_string())
        });
        let stated_context_length =
            arch.as_ref().and_then(|a| self.get_value(&format!("{a}.context_length"))).and_then(to_u64);
        Ok(Summary {
            path: self.path.clone(),
            file_size: self.file_size,
            name: text("general.name"),
            file_type: self.u32_opt("general.file_type").ok().flatten(),
            projector_type: text("clip.projector_type").or_else(|| text("clip.vision.projector_type")),
            architecture: arch,
            stated_context_length,
            tensors,
            gemma3,
        })
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    /// Frees the vocabulary arrays (a few tens of MB for Gemma's 262k tokens) once the
    /// tokenizer is built, before the weights are read, so they never add to peak memory.
    pub fn drop_tokenizer_metadata(&mut self) {
        self.content.metadata.retain(|k, _| !k.starts_with("tokenizer.ggml."));
        self.content.metadata.shrink_to_fit();
    }

    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.content.tensor_infos.get(name)
    }

    /// Reads tensor `name`, refusing it unless its shape is `expected` (candle order: the GGUF
    /// dimensions reversed, e.g. `[out, in]` for a weight matrix).
    pub fn tensor(&self, name: &str, expected: &[usize], device: &Device) -> Result<Arc<QTensor>> {
        let info = self.tensor_info(name).ok_or_else(|| EngineError::InvalidGguf {
            path: self.path.clone(),
            reason: format!("tensor `{name}` is missing"),
        })?;
        if info.shape.dims() != expected {
            return Err(EngineError::InvalidGguf {
                path: self.path.clone(),
                reason: format!("tensor `{name}` has shape {:?}, expected {:?}", info.shape.dims(), expected),
            });
        }
        let offset = self.content.tensor_data_offset + info.offset;
        let qt = read_tensor(&self.file, &self.path, offset, info, device)?;
        Ok(Arc::new(qt))
    }
}

/// Every tensor must have a sane element count, a size that is a whole number of blocks, and
/// lie inside the file.
fn check_tensor_table(content: &Content, file_size: u64) -> std::result::Result<(), String> {
    for (name, info) in &content.tensor_infos {
        let elems = info
            .shape
            .dims()
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| format!("tensor `{name}` has an absurd shape {:?}", info.shape.dims()))?;
        let bytes = tensor_bytes(info.ggml_dtype, elems).ok_or_else(|| {
            format!(
                "tensor `{name}` has {elems} elements, not a multiple of the {} block size {}",
                ggml_type_name(info.ggml_dtype),
                info.ggml_dtype.block_size()
            )
        })?;
        let start = content.tensor_data_offset.checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(bytes));
        match end {
            Some(end) if end <= file_size => {}
            _ => {
                return Err(format!(
                    "tensor `{name}` needs {bytes} bytes at offset {}, but the file has {file_size} bytes (truncated?)",
                    content.tensor_data_offset.saturating_add(info.offset)
                ))
            }
        }
    }
    Ok(())
}

/// What candle's header reader said, as a reason for `InvalidGguf`: running out of bytes is
/// called truncation (candle reports it as a bare "failed to fill whole buffer"), and a
/// backtrace candle may attach is left out of a message meant for users.
fn header_error(e: candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => header_error(*inner),
        candle_core::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated: the file ends inside its header".into()
        }
        other => {
            let msg = other.to_string();
            // candle's checks of counts and lengths against the bytes left in the file: either
            // the file was cut short or a count is corrupt, and only the user can tell which.
            if msg.contains("remaining") {
                format!("truncated or corrupt header: {msg}")
            } else {
                msg
            }
        }
    }
}

/// Bytes of a tensor of `elems` elements stored as `dtype`; `None` when that is not a whole
/// number of blocks (or overflows). The block sizes come from candle's block types, the structs
/// tensors are read into, so this cannot disagree with what loading reads.
pub fn tensor_bytes(dtype: GgmlDType, elems: u64) -> Option<u64> {
    let block = dtype.block_size() as u64;
    if !elems.is_multiple_of(block) {
        return None;
    }
    (elems / block).checked_mul(dtype.type_size() as u64)
}

/// ggml's name of a tensor type, as llama.cpp prints it (`Q4_K`, not candle's `Q4K`).
pub fn ggml_type_name(dtype: GgmlDType) -> &'static str {
    use GgmlDType as T;
    match dtype {
        T::F32 => "F32",
        T::F16 => "F16",
        T::BF16 => "BF16",
        T::Q4_0 => "Q4_0",
        T::Q4_1 => "Q4_1",
        T::Q5_0 => "Q5_0",
        T::Q5_1 => "Q5_1",
        T::Q8_0 => "Q8_0",
        T::Q8_1 => "Q8_1",
        T::Q2K => "Q2_K",
        T::Q3K => "Q3_K",
        T::Q4K => "Q4_K",
        T::Q5K => "Q5_K",
        T::Q6K => "Q6_K",
        T::Q8K => "Q8_K",
    }
}

/// llama.cpp's name for a `general.file_type` (its `llama_ftype`): the quantization mix a file
/// was made with, e.g. `Q4_K_M`, which is what model cards and catalogs call it.
pub fn file_type_name(file_type: u32) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

/// One tensor of a `Summary`.
#[derive(Debug, Clone)]
pub struct TensorSummary {
    pub name: String,
    /// Candle order: the GGUF dimensions reversed.
    pub dims: Vec<usize>,
    pub dtype: GgmlDType,
    pub bytes: u64,
}

/// What the model manager needs to know of a GGUF, from its header alone (no tensor data is
/// read, but every tensor is checked to lie inside the file, so a truncated download shows).
#[derive(Debug, Clone)]
pub struct Summary {
    pub path: PathBuf,
    pub file_size: u64,
    /// `general.architecture`: `gemma3` for a Gemma 3 text model, `clip` for a vision projector.
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// `general.file_type` (see `file_type_name`).
    pub file_type: Option<u32>,
    /// `clip.projector_type` (or `clip.vision.projector_type`) of a vision projector.
    pub projector_type: Option<String>,
    /// `{architecture}.context_length` as the file states it.
    pub stated_context_length: Option<u64>,
    pub tensors: Vec<TensorSummary>,
    /// For a `gemma3` file, the hyper-parameters the engine would run it with (its defaults and
    /// corrections applied) or why they do not parse; `None` for other architectures. Kept
    /// apart from reading so a bad value is a Gemma 3 refusal, not an unreadable file.
    gemma3: Option<std::result::Result<Config, String>>,
}

/// Why a readable GGUF is not the kind of file a caller needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("no general.architecture in its metadata")]
    NoArchitecture,
    #[error("a '{0}' model, not Gemma 3 (general.architecture must be 'gemma3')")]
    NotGemma3(String),
    #[error("a gemma3 model must have tensor '{0}'")]
    MissingTensor(&'static str),
    /// The engine's reason, e.g. "metadata key `gemma3.block_count`: missing".
    #[error("{0}")]
    BadGemma3Metadata(String),
    #[error("general.architecture is {0:?}, expected 'clip'")]
    NotClip(String),
    #[error("projector type is {0:?}, expected 'gemma3'")]
    NotGemma3Projector(String),
    #[error("it has no vision tensors (v.*)")]
    NoVisionTensors,
}

impl Summary {
    /// Reads `path`'s header (see `GgufFile::open` for what is checked) and summarises it.
    pub fn read(path: &Path) -> Result<Self> {
        GgufFile::open(path)?.summary()
    }

    /// The quantization: llama.cpp's name for `general.file_type` when the file states a known
    /// one (`Q4_K_M`), else the type holding the most bytes of weights (`Q4_K`).
    pub fn quant(&self) -> Option<&'static str> {
        self.file_type.and_then(file_type_name).or_else(|| self.dominant_type().map(ggml_type_name))
    }

    /// The tensor type that holds the most bytes.
    pub fn dominant_type(&self) -> Option<GgmlDType> {
        let mut by_type: Vec<(GgmlDType, u64)> = Vec::new();
        for t in &self.tensors {
            match by_type.iter_mut().find(|(d, _)| *d == t.dtype) {
                Some((_, b)) => *b += t.bytes,
                None => by_type.push((t.dtype, t.bytes)),
            }
        }
        by_type.into_iter().max_by_key(|&(_, b)| b).map(|(d, _)| d)
    }

    /// The context the model was trained for: for Gemma 3 what the engine uses (the file's value,
    /// or Gemma 3's default when it has none), else whatever the file states.
    pub fn context_length(&self) -> Option<u64> {
        match self.gemma3() {
            Some(c) => Some(c.context_length as u64),
            None => self.stated_context_length,
        }
    }

    /// The Gemma 3 hyper-parameters, when this is a `gemma3` file whose metadata parses (see
    /// `check_gemma3` for why not).
    pub fn gemma3(&self) -> Option<&Config> {
        self.gemma3.as_ref().and_then(|c| c.as_ref().ok())
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensors.iter().any(|t| t.name == name)
    }

    /// A Gemma 3 text model: architecture `gemma3`, with embeddings, at least one block and
    /// hyper-parameters the engine accepts. Returns them. (Loading checks more: every tensor's
    /// shape.)
    pub fn check_gemma3(&self) -> std::result::Result<&Config, Mismatch> {
        match self.architecture.as_deref() {
            Some("gemma3") => {}
            Some(other) => return Err(Mismatch::NotGemma3(other.to_string())),
            None => return Err(Mismatch::NoArchitecture),
        }
        for needed in ["token_embd.weight", "blk.0.attn_q.weight"] {
            if !self.has_tensor(needed) {
                return Err(Mismatch::MissingTensor(needed));
            }
        }
        match &self.gemma3 {
            Some(Ok(c)) => Ok(c),
            Some(Err(reason)) => Err(Mismatch::BadGemma3Metadata(reason.clone())),
            // Unreachable: a gemma3 file always has the field (set in `GgufFile::summary`).
            None => Err(Mismatch::NoArchitecture),
        }
    }

    /// A Gemma 3 vision projector in llama.cpp's clip format.
    pub fn check_mmproj(&self) -> std::result::Result<(), Mismatch> {
        match self.architecture.as_deref() {
            Some("clip") => {}
            other => return Err(Mismatch::NotClip(other.unwrap_or("missing").to_string())),
        }
        match self.projector_type.as_deref() {
            Some("gemma3") => {}
            other => return Err(Mismatch::NotGemma3Projector(other.unwrap_or("missing").to_string())),
        }
        if !self.tensors.iter().any(|t| t.name.starts_with("v.")) {
            return Err(Mismatch::NoVisionTensors);
        }
        Ok(())
    }

    pub fn is_mmproj(&self) -> bool {
        self.check_mmproj().is_ok()
    }
}

fn read_tensor(file: &File, path: &Path, offset: u64, info: &TensorInfo, device: &Device) -> Result<QTensor> {
    use GgmlDType as T;
    let dims = info.shape.dims().to_vec();
    let n = info.shape.elem_count() / info.ggml_dtype.block_size();
    let storage = match info.ggml_dtype {
        T::F32 => read_blocks::<f32>(file, path, offset, n, device)?,
        T::F16 => read_blocks::<half::f16>(file, path, offset, n, device)?,
        T::BF16 => read_blocks::<half::bf16>(file, path, offset, n, device)?,
        T::Q4_0 => read_blocks::<k_quants::BlockQ4_0>(file, path, offset, n, device)?,
        T::Q4_1 => read_blocks::<k_quants::BlockQ4_1>(file, path, offset, n, device)?,
        T::Q5_0 => read_blocks::<k_quants::BlockQ5_0>(file, path, offset, n, device)?,
        T::Q5_1 => read_blocks::<k_quants::BlockQ5_1>(file, path, offset, n, device)?,
        T::Q8_0 => read_blocks::<k_quants::BlockQ8_0>(file, path, offset, n, device)?,
        T::Q8_1 => read_blocks::<k_quants::BlockQ8_1>(file, path, offset, n, device)?,
        T::Q2K => read_blocks::<k_quants::BlockQ2K>(file, path, offset, n, device)?,
        T::Q3K => read_blocks::<k_quants::BlockQ3K>(file, path, offset, n, device)?,
        T::Q4K => read_blocks::<k_quants::BlockQ4K>(file, path, offset, n, device)?,
        T::Q5K => read_blocks::<k_quants::BlockQ5K>(file, path, offset, n, device)?,
        T::Q6K => read_blocks::<k_quants::BlockQ6K>(file, path, offset, n, device)?,
        T::Q8K => read_blocks::<k_quants::BlockQ8K>(file, path, offset, n, device)?,
    };
    Ok(QTensor::new(storage, dims)?)
}

/// Reads `n` blocks straight into the vector that becomes the tensor's storage, so loading needs
/// no second copy of the largest tensor (the 262k-row embedding) and peak memory stays at the
/// model's size.
fn read_blocks<B: GgmlType + 'static>(
    file: &File,
    path: &Path,
    offset: u64,
    n: usize,
    device: &Device,
) -> Result<QStorage> {
    let mut blocks: Vec<B> = vec![B::zeros(); n];
    // SAFETY: ggml block types are `repr(C)` plain data (integers, f16 scales) whose size equals
    // the on-disk block size, and every bit pattern is a valid value.
    let bytes = unsafe { std::slice::from_raw_parts_mut(blocks.as_mut_ptr() as *mut u8, n * std::mem::size_of::<B>()) };
    let io = |source| EngineError::Io { path: path.to_owned(), source };
    let mut f = file;
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    f.read_exact(bytes).map_err(io)?;
    match device {
        Device::Cpu => Ok(QStorage::Cpu(Box::new(blocks))),
        _ => Ok(QStorage::from_data(Cow::Borrowed(&*bytes), device, B::DTYPE)?),
    }
}

/// Typed metadata access with errors that name the key.
pub trait MetadataExt {
    fn get_value(&self, key: &str) -> Option<&Value>;

    fn u32_opt(&self, key: &str) -> Result<Option<u32>> {
        match self.get_value(key) {
            None => Ok(None),
            Some(v) => to_u64(v).and_then(|x| u32::try_from(x).ok()).map(Some).ok_or_else(|| EngineError::Metadata {
                key: key.into(),
                reason: format!("expected an unsigned integer, found {v:?}"),
            }),
        }
    }

    fn u32_req(&self, key: &str) -> Result<u32> {
        self.u32_opt(key)?.ok_or_else(|| EngineError::Metadata { key: key.into(), reason: "missing".into() })
    }

    fn f32_opt(&self, key: &str) -> Result<Option<f32>> {
        match self.get_value(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x)),
            Some(Value::F64(x)) => Ok(Some(*x as f32)),
            Some(v) => to_u64(v).map(|x| Some(x as f32)).ok_or_else(|| EngineError::Metadata {
                key: key.into(),
                reason: format!("expected a number, found {v:?}"),
            }),
        }
    }

    fn str_opt(&self, key: &str) -> Result<Option<&str>> {
        match self.get_value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(EngineError::Metadata {
                key: key.into(),
                reason: format!("expected a string, found {:?}", v.value_type()),
            }),
        }
    }
}

fn to_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(x) => Some(x as u64),
        Value::U16(x) => Some(x as u64),
        Value::U32(x) => Some(x as u64),
        Value::U64(x) => Some(x),
        Value::I8(x) => u64::try_from(x).ok(),
        Value::I16(x) => u64::try_from(x).ok(),
        Value::I32(x) => u64::try_from(x).ok(),
        Value::I64(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

impl MetadataExt for Content {
    fn get_value(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }
}

impl MetadataExt for GgufFile {
    fn get_value(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }
}
