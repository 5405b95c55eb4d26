//! Choosing where the model runs, and how many CPU threads it uses.

use candle_core::Device;

use crate::{EngineError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevicePreference {
    /// CUDA or Metal when this build has them and a device is present, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

impl std::str::FromStr for DevicePreference {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "metal" => Ok(Self::Metal),
            other => Err(EngineError::InvalidArgument(format!(
                "unknown device `{other}` (expected auto, cpu, cuda or metal)"
            ))),
        }
    }
}

/// Picks the device at run time.
pub fn select(pref: DevicePreference) -> Result<Device> {
    match pref {
        DevicePreference::Cpu => Ok(Device::Cpu),
        DevicePreference::Cuda => {
            if !candle_core::utils::cuda_is_available() {
                return Err(EngineError::Device("this build has no CUDA support (cargo feature `cuda`)".into()));
            }
            Device::new_cuda(0).map_err(|e| EngineError::Device(format!("no usable CUDA device: {e}")))
        }
        DevicePreference::Metal => {
            if !candle_core::utils::metal_is_available() {
                return Err(EngineError::Device("this build has no Metal support (cargo feature `metal`)".into()));
            }
            Device::new_metal(0).map_err(|e| EngineError::Device(format!("no usable Metal device: {e}")))
        }
        DevicePreference::Auto => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            if candle_core::utils::metal_is_available() {
                if let Ok(d) = Device::new_metal(0) {
                    return Ok(d);
                }
            }
            Ok(Device::Cpu)
        }
    }
}

/// Sets the number of CPU threads for matmuls and the rest. Must run before the first tensor
/// operation: candle and rayon read it once.
pub fn set_threads(n: usize) {
    let n = n.max(1);
    // candle sizes its pools from these variables on first use.
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
}

/// Physical cores, the default thread count (hyper-threads don't speed up matmuls).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
