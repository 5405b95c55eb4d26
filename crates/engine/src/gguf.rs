//! Reading GGUF files: header and metadata through candle's reader, every tensor checked against
//! the file before anything large is allocated, tensors read straight into their final buffers.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::k_quants::{self, GgmlType};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::Device;

use crate::{EngineError, Result};

/// Smallest possible GGUF: magic, version, two counts.
const MIN_HEADER_BYTES: u64 = 4 + 4 + 8 + 8;

/// An open GGUF whose header has been read and whose tensor table has been checked against the
/// file size: every later `tensor()` call reads bytes that exist.
pub struct GgufFile {
    path: PathBuf,
    file: File,
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
            return Err(invalid(format!(
                "the file is only {file_size} bytes, too short for a GGUF header"
            )));
        }
        let mut magic = [0u8; 4];
        (&file).read_exact(&mut magic).map_err(io)?;
        if &magic != b"GGUF" {
            return Err(invalid(format!(
                "not a GGUF file (starts with {:02x?}, expected \"GGUF\")",
                magic
            )));
        }
        (&file).seek(SeekFrom::Start(0)).map_err(io)?;
        // candle's reader bounds every count and string by the bytes left in the file, so a
        // hostile header cannot make it allocate more than the file's size.
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let content = Content::read(&mut reader).map_err(|e| invalid(e.to_string()))?;
        drop(reader);
        check_tensor_table(&content, file_size).map_err(invalid)?;
        Ok(Self { path: path.to_owned(), file, content })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
                reason: format!(
                    "tensor `{name}` has shape {:?}, expected {:?}",
                    info.shape.dims(),
                    expected
                ),
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
        let block = info.ggml_dtype.block_size() as u64;
        if elems % block != 0 {
            return Err(format!(
                "tensor `{name}` has {elems} elements, not a multiple of the {:?} block size {block}",
                info.ggml_dtype
            ));
        }
        let bytes = elems / block * info.ggml_dtype.type_size() as u64;
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
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            blocks.as_mut_ptr() as *mut u8,
            n * std::mem::size_of::<B>(),
        )
    };
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
            Some(v) => to_u64(v)
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| EngineError::Metadata {
                    key: key.into(),
                    reason: format!("expected an unsigned integer, found {v:?}"),
                }),
        }
    }

    fn u32_req(&self, key: &str) -> Result<u32> {
        self.u32_opt(key)?
            .ok_or_else(|| EngineError::Metadata { key: key.into(), reason: "missing".into() })
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
