//! A bounded GGUF header reader for validating files before they are registered. It reads only
//! the header (metadata + tensor infos), checks every count against the file size before
//! allocating, and checks that every tensor's data lies inside the file (so truncation shows).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::ModelsError;

const GGUF_MAGIC: u32 = 0x4655_4747; // "GGUF" little-endian
/// Limits far beyond any real model; they stop a corrupt header from driving allocations.
const MAX_STRING: u64 = 64 * 1024 * 1024;
const MAX_DIMS: u32 = 8;

/// A metadata value we keep (arrays are skipped: only their length is recorded).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
    Array { len: u64 },
}

impl MetaValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            MetaValue::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    pub offset: u64,
    pub n_bytes: u64,
}

/// What a valid GGUF header told us.
#[derive(Debug, Clone)]
pub struct GgufSummary {
    pub path: PathBuf,
    pub version: u32,
    pub file_size: u64,
    pub metadata: HashMap<String, MetaValue>,
    pub tensors: Vec<TensorInfo>,
}

impl GgufSummary {
    pub fn architecture(&self) -> Option<&str> {
        self.metadata.get("general.architecture").and_then(MetaValue::as_str)
    }
    pub fn name(&self) -> Option<&str> {
        self.metadata.get("general.name").and_then(MetaValue::as_str)
    }
    /// The quantization named by `general.file_type`, if it is one we know.
    pub fn quant(&self) -> Option<&'static str> {
        let ft = self.metadata.get("general.file_type")?.as_u64()?;
        Some(match ft {
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
    pub fn context_length(&self) -> Option<u64> {
        let arch = self.architecture()?;
        self.metadata.get(&format!("{arch}.context_length"))?.as_u64()
    }
}

/// (block size in elements, bytes per block) of a ggml tensor type.
fn ggml_block(ty: u32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        _ => return None,
    })
}

struct Reader<R> {
    inner: R,
    pos: u64,
    file_size: u64,
}

impl<R: Read> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format!("truncated: the file ends inside its header (at byte {})", self.pos)
            } else {
                format!("read error at byte {}: {e}", self.pos)
            }
        })?;
        self.pos += N as u64;
        Ok(buf)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes::<4>()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes::<8>()?))
    }
    /// A count of items each at least `min_item_bytes` long: refused if they cannot fit in
    /// what is left of the file.
    fn count(&mut self, what: &str, min_item_bytes: u64) -> Result<u64, String> {
        let n = self.u64()?;
        let left = self.file_size.saturating_sub(self.pos);
        if n.saturating_mul(min_item_bytes) > left {
            return Err(format!("corrupt header: {what} count {n} cannot fit in the {left} bytes left"));
        }
        Ok(n)
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| format!("read error at byte {}: {e}", self.pos))?;
        if copied != n {
            return Err(format!("truncated: the file ends inside its header (at byte {})", self.pos + copied));
        }
        self.pos += n;
        Ok(())
    }
    fn string(&mut self) -> Result<String, String> {
        let len = self.u64()?;
        if len > MAX_STRING || len > self.file_size.saturating_sub(self.pos) {
            return Err(format!("corrupt header: string of {len} bytes at byte {}", self.pos));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| format!("truncated: the file ends inside its header (at byte {})", self.pos))?;
        self.pos += len;
        String::from_utf8(buf).map_err(|_| format!("corrupt header: a string before byte {} is not UTF-8", self.pos))
    }

    fn scalar_size(ty: u32) -> Option<u64> {
        Some(match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            _ => return None,
        })
    }

    fn value(&mut self, ty: u32) -> Result<MetaValue, String> {
        Ok(match ty {
            0 => MetaValue::Int(i128::from(self.bytes::<1>()?[0])),
            1 => MetaValue::Int(i128::from(self.bytes::<1>()?[0] as i8)),
            2 => MetaValue::Int(i128::from(u16::from_le_bytes(self.bytes::<2>()?))),
            3 => MetaValue::Int(i128::from(i16::from_le_bytes(self.bytes::<2>()?))),
            4 => MetaValue::Int(i128::from(self.u32()?)),
            5 => MetaValue::Int(i128::from(i32::from_le_bytes(self.bytes::<4>()?))),
            6 => MetaValue::Float(f64::from(f32::from_le_bytes(self.bytes::<4>()?))),
            7 => MetaValue::Bool(self.bytes::<1>()?[0] != 0),
            8 => MetaValue::Str(self.string()?),
            9 => {
                let item_ty = self.u32()?;
                let len = self.count("array", Self::scalar_size(item_ty).unwrap_or(8))?;
                match Self::scalar_size(item_ty) {
                    Some(size) => self.skip(len * size)?,
                    None if item_ty == 8 => {
                        for _ in 0..len {
                            let n = self.u64()?;
                            if n > self.file_size.saturating_sub(self.pos) {
                                return Err(format!("corrupt header: string of {n} bytes at byte {}", self.pos));
                            }
                            self.skip(n)?;
                        }
                    }
                    None => return Err(format!("unsupported array item type {item_ty}")),
                }
                MetaValue::Array { len }
            }
            10 => MetaValue::Int(i128::from(self.u64()?)),
            11 => MetaValue::Int(i128::from(i64::from_le_bytes(self.bytes::<8>()?))),
            12 => MetaValue::Float(f64::from_le_bytes(self.bytes::<8>()?)),
            other => return Err(format!("corrupt header: unknown metadata value type {other}")),
        })
    }
}

/// Reads and checks the header of `path`: magic, version, metadata, tensor infos, and that all
/// tensor data lies within the file.
pub fn read_summary(path: &Path) -> Result<GgufSummary, ModelsError> {
    let invalid = |reason: String| ModelsError::InvalidGguf { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(ModelsError::io("cannot open", path))?;
    let file_size = file.metadata().map_err(ModelsError::io("cannot read", path))?.len();
    let mut r = Reader { inner: BufReader::with_capacity(1 << 20, file), pos: 0, file_size };

    let magic = r.u32().map_err(|_| invalid("not a GGUF file (too short)".into()))?;
    if magic != GGUF_MAGIC {
        return Err(invalid("not a GGUF file (bad magic number)".into()));
    }
    let version = r.u32().map_err(invalid)?;
    if !(2..=3).contains(&version) {
        return Err(invalid(format!("unsupported GGUF version {version}")));
    }
    // A tensor info is at least 8 (name len) + 4 (dims) + 4 (type) + 8 (offset) bytes; a metadata
    // entry at least 8 (key len) + 4 (type) + 1.
    let n_tensors = r.count("tensor", 24).map_err(invalid)?;
    let n_kv = r.count("metadata", 13).map_err(invalid)?;

    let mut metadata = HashMap::new();
    for _ in 0..n_kv {
        let key = r.string().map_err(invalid)?;
        let ty = r.u32().map_err(invalid)?;
        let value = r.value(ty).map_err(|e| invalid(format!("{e} (in '{key}')")))?;
        metadata.insert(key, value);
    }

    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let name = r.string().map_err(invalid)?;
        let n_dims = r.u32().map_err(invalid)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(invalid(format!("tensor '{name}' has {n_dims} dimensions")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.u64().map_err(invalid)?);
        }
        let ggml_type = r.u32().map_err(invalid)?;
        let offset = r.u64().map_err(invalid)?;
        let (block, block_bytes) = ggml_block(ggml_type)
            .ok_or_else(|| invalid(format!("tensor '{name}' has unknown ggml type {ggml_type}")))?;
        let elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| invalid(format!("tensor '{name}' has an absurd shape {dims:?}")))?;
        if elements % block != 0 {
            return Err(invalid(format!("tensor '{name}' has {elements} elements, not a multiple of its block of {block}")));
        }
        let n_bytes = elements / block * block_bytes;
        tensors.push(TensorInfo { name, dims, ggml_type, offset, n_bytes });
    }

    let alignment = metadata.get("general.alignment").and_then(MetaValue::as_u64).unwrap_or(32);
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(invalid(format!("bad general.alignment {alignment}")));
    }
    let data_start = r.pos.div_ceil(alignment) * alignment;
    for t in &tensors {
        let end = data_start.checked_add(t.offset).and_then(|s| s.checked_add(t.n_bytes));
        match end {
            Some(end) if end <= file_size => {}
            _ => {
                return Err(invalid(format!(
                    "truncated or corrupt: tensor '{}' needs bytes up to {} but the file has {file_size}",
                    t.name,
                    end.map_or_else(|| "overflow".to_string(), |e| e.to_string())
                )))
            }
        }
    }
    Ok(GgufSummary { path: path.to_path_buf(), version, file_size, metadata, tensors })
}

/// A Gemma 3 text model: architecture `gemma3`, with embeddings and at least one block.
pub fn check_gemma3(path: &Path) -> Result<GgufSummary, ModelsError> {
    let s = read_summary(path)?;
    match s.architecture() {
        Some("gemma3") => {}
        Some(other) => {
            return Err(ModelsError::NotGemma3 { path: path.to_path_buf(), architecture: other.to_string() })
        }
        None => {
            return Err(ModelsError::InvalidGguf {
                path: path.to_path_buf(),
                reason: "no general.architecture in its metadata".into(),
            })
        }
    }
    for needed in ["token_embd.weight", "blk.0.attn_q.weight"] {
        if !s.tensors.iter().any(|t| t.name == needed) {
            return Err(ModelsError::InvalidGguf {
                path: path.to_path_buf(),
                reason: format!("a gemma3 model must have tensor '{needed}'"),
            });
        }
    }
    Ok(s)
}

/// A Gemma 3 vision projector in llama.cpp's clip format.
pub fn check_mmproj(path: &Path) -> Result<GgufSummary, ModelsError> {
    let s = read_summary(path)?;
    let not = |reason: String| ModelsError::NotMmproj { path: path.to_path_buf(), reason };
    if s.architecture() != Some("clip") {
        return Err(not(format!("general.architecture is {:?}, expected 'clip'", s.architecture().unwrap_or("missing"))));
    }
    let projector = ["clip.projector_type", "clip.vision.projector_type"]
        .iter()
        .find_map(|k| s.metadata.get(*k).and_then(MetaValue::as_str));
    if projector != Some("gemma3") {
        return Err(not(format!("projector type is {:?}, expected 'gemma3'", projector.unwrap_or("missing"))));
    }
    if !s.tensors.iter().any(|t| t.name.starts_with("v.")) {
        return Err(not("it has no vision tensors (v.*)".into()));
    }
    Ok(s)
}
