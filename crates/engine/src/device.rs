//! Choosing where the model runs, and how many CPU threads it uses.

use std::sync::{Arc, OnceLock};

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

/// A kind of device a model can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Cuda,
    Metal,
}

impl DeviceKind {
    /// The kind of a candle device.
    pub fn of(device: &Device) -> Self {
        match device {
            Device::Cpu => Self::Cpu,
            Device::Cuda(_) => Self::Cuda,
            Device::Metal(_) => Self::Metal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Metal => "metal",
        }
    }
}

impl From<DeviceKind> for DevicePreference {
    fn from(kind: DeviceKind) -> Self {
        match kind {
            DeviceKind::Cpu => Self::Cpu,
            DeviceKind::Cuda => Self::Cuda,
            DeviceKind::Metal => Self::Metal,
        }
    }
}

/// Where `auto` puts a model on this machine, and why (shown by `hearth models fit`/`list` and
/// the app, so a user with a GPU learns whether the build or the driver is what is missing).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceReport {
    pub device: DeviceKind,
    pub reason: String,
}

/// See [`DeviceReport`]; probing opens device 0, so it is computed once.
pub fn report() -> DeviceReport {
    static REPORT: OnceLock<DeviceReport> = OnceLock::new();
    REPORT.get_or_init(probe).clone()
}

fn probe() -> DeviceReport {
    let mut tried = Vec::new();
    if candle_core::utils::cuda_is_available() {
        match Device::new_cuda(0) {
            Ok(_) => return DeviceReport { device: DeviceKind::Cuda, reason: "CUDA GPU 0 found".into() },
            Err(e) => tried.push(format!("this build has CUDA, but no CUDA GPU answered ({e})")),
        }
    }
    if candle_core::utils::metal_is_available() {
        match Device::new_metal(0) {
            Ok(_) => return DeviceReport { device: DeviceKind::Metal, reason: "Metal GPU found".into() },
            Err(e) => tried.push(format!("this build has Metal, but no Metal GPU answered ({e})")),
        }
    }
    if tried.is_empty() {
        tried.push("this build has no GPU support (built without the `cuda` or `metal` feature)".into());
    }
    DeviceReport { device: DeviceKind::Cpu, reason: tried.join("; ") }
}

/// The devices this build can run a model on, here and now: the CPU always; CUDA or Metal only
/// when the build has the feature *and* a device answers (so a Settings list offers nothing
/// that would fail to load). Probing opens device 0, so the answer is computed once.
pub fn available() -> Vec<DeviceKind> {
    static AVAILABLE: OnceLock<Vec<DeviceKind>> = OnceLock::new();
    AVAILABLE
        .get_or_init(|| {
            let mut kinds = vec![DeviceKind::Cpu];
            if candle_core::utils::cuda_is_available() && Device::new_cuda(0).is_ok() {
                kinds.push(DeviceKind::Cuda);
            }
            if candle_core::utils::metal_is_available() && Device::new_metal(0).is_ok() {
                kinds.push(DeviceKind::Metal);
            }
            kinds
        })
        .clone()
}

/// The default number of CPU threads: physical cores (hyper-threads don't speed up matmuls, which
/// are bound by memory and SIMD units), but no more than this process may run on at once.
pub fn default_threads() -> usize {
    let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
    num_cpus::get_physical().clamp(1, allowed)
}

/// The CPU threads a model's work runs on: a rayon pool of its own, never rayon's global one, so
/// that two models (or sessions) can use different counts in one process and a count can change
/// while a model is loaded.
///
/// Everything run through [`CpuThreads::install`] (the engine's kernels, and candle's CPU ops
/// that use rayon: float matmuls such as a prompt's attention scores, RMS norms, rotary
/// embeddings) splits its work across this
/// pool's threads. candle 0.11 also keeps a process-wide "barrier pool" for element-wise ops on
/// tensors of 64K+ elements (prompt chunks' residual adds, for instance); its size is fixed at
/// its first use from `CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the physical cores, and
/// no setting here can change it. candle's float matmuls also split into `RAYON_NUM_THREADS` (else
/// physical-core) pieces, which then run on this pool's threads.
#[derive(Clone)]
pub struct CpuThreads {
    pool: Arc<rayon::ThreadPool>,
}

impl CpuThreads {
    /// A pool of `n` threads (named `hearth-cpu-N`).
    pub fn new(n: usize) -> Result<Self> {
        if n == 0 {
            return Err(EngineError::InvalidArgument("the thread count must be at least 1".into()));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("hearth-cpu-{i}"))
            .build()
            .map_err(|e| EngineError::Device(format!("cannot start {n} CPU threads: {e}")))?;
        Ok(Self { pool: Arc::new(pool) })
    }

    /// `n` threads, or [`default_threads`] for None.
    pub fn with_count(n: Option<usize>) -> Result<Self> {
        Self::new(n.unwrap_or_else(default_threads))
    }

    /// Threads in the pool.
    pub fn count(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` on one of the pool's threads (the caller waits), so that the parallel work it
    /// starts runs on this pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

impl std::fmt::Debug for CpuThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuThreads").field("count", &self.count()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_lists_the_cpu_and_only_devices_that_load() {
        let kinds = available();
        assert_eq!(kinds.first(), Some(&DeviceKind::Cpu));
        if !cfg!(feature = "cuda") {
            assert!(!kinds.contains(&DeviceKind::Cuda), "{kinds:?} without the cuda feature");
        }
        if !cfg!(feature = "metal") {
            assert!(!kinds.contains(&DeviceKind::Metal), "{kinds:?} without the metal feature");
        }
        for kind in kinds {
            let device = select(kind.into()).unwrap();
            assert_eq!(DeviceKind::of(&device), kind);
        }
        assert_eq!(serde_json::to_string(&DeviceKind::Cuda).unwrap(), "\"cuda\"");
    }

    #[test]
    fn the_report_names_the_device_auto_picks_and_why() {
        let r = report();
        assert_eq!(DeviceKind::of(&select(DevicePreference::Auto).unwrap()), r.device);
        assert_eq!(available().contains(&DeviceKind::Cuda), r.device == DeviceKind::Cuda);
        if !cfg!(feature = "cuda") && !cfg!(feature = "metal") {
            assert_eq!(r.device, DeviceKind::Cpu);
            assert!(r.reason.contains("without the `cuda` or `metal` feature"), "{r:?}");
        }
    }

    #[test]
    fn thread_pools_have_the_asked_count_and_refuse_zero() {
        let pool = CpuThreads::new(3).unwrap();
        assert_eq!(pool.count(), 3);
        assert_eq!(pool.install(rayon::current_num_threads), 3);
        assert!(CpuThreads::new(0).is_err());
        let default = CpuThreads::with_count(None).unwrap().count();
        assert_eq!(default, default_threads());
        assert!(default >= 1);
    }
}
