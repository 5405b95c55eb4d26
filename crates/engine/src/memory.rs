//! The machine's RAM, measured when asked, through sysinfo so it answers on Linux, macOS and
//! Windows alike. `hearth models fit` judges models against it, and the engine's load-time
//! refusal (`EngineError::InsufficientMemory` in `model.rs`) uses it too.

/// Physical memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ram {
    pub total: u64,
    /// What new allocations can get without swapping: free memory plus reclaimable caches
    /// (`MemAvailable` on Linux).
    pub available: u64,
}

/// The RAM now; `None` where the OS does not tell (then callers skip their checks rather than
/// refuse on a made-up number).
pub fn ram() -> Option<Ram> {
    let mut sys = match sysinfo::System::new() {
        Ok(sys) => sys,
        Err(e) => {
            log::warn!("cannot read memory information: {e}");
            return None;
        }
    };
    sys.refresh_memory();
    let total = sys.total_memory();
    // sysinfo reports 0 where it could not read the numbers.
    (total > 0).then(|| Ram { total, available: sys.available_memory() })
}

/// Available RAM in bytes (see `Ram::available`).
pub fn available_bytes() -> Option<u64> {
    ram().map(|r| r.available)
}

/// Free memory on a GPU device, asked of its driver; `None` for the CPU, for Metal (which shares
/// system RAM) and where the driver does not tell.
pub fn device_free_bytes(device: &candle_core::Device) -> Option<u64> {
    match device {
        #[cfg(feature = "cuda")]
        candle_core::Device::Cuda(d) => d.cuda_stream().context().mem_get_info().ok().map(|(free, _)| free as u64),
        _ => None,
    }
}

/// Sets glibc's malloc to keep peak memory down; binaries call this once at start-up, before any
/// thread starts; elsewhere it does nothing.
///
/// - One arena: glibc gives each thread that allocates its own arena, and the model's forward
///   passes allocate on its pool's threads, so every pool thread would keep its own high-water
///   mark of temporaries: about 20 MiB more peak RSS on the 270M model at two threads.
/// - A fixed mmap threshold of `MMAP_THRESHOLD`: by default glibc raises the threshold to the size
///   of each large block freed, after which blocks of that size come from the heap and stay
///   there once freed. The vision encoder's 19 MB per-layer tensors then kept about 200 MB
///   more (SigLIP-So400m, one image: 2,346 MiB peak RSS, 2,149 MiB with the threshold fixed;
///   docs/benchmarks.md). Blocks this large are few, and each is worked on far longer than
///   mapping it takes.
pub fn configure_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's malloc.h.
        const M_MMAP_THRESHOLD: i32 = -3;
        const M_ARENA_MAX: i32 = -8;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only sets allocator parameters; it is called before other threads
        // exist, as glibc asks for M_ARENA_MAX.
        if unsafe { mallopt(M_ARENA_MAX, 1) } == 0 {
            log::debug!("mallopt(M_ARENA_MAX) was refused; peak memory may be higher");
        }
        // SAFETY: as above.
        if unsafe { mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) } == 0 {
            log::debug!("mallopt(M_MMAP_THRESHOLD) was refused; peak memory may be higher");
        }
    }
}

/// Blocks at least this large are mapped on their own and returned when freed (see
/// `configure_malloc`): above a text prompt chunk's largest temporaries on the small models
/// (4 MiB for the 270M's feed-forward), below the vision encoder's.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 8 << 20;

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_reports_plausible_memory() {
        let r = super::ram().expect("sysinfo reads memory on the platforms Hearth supports");
        assert!(r.total > 64 << 20, "total {}", r.total);
        assert!(r.available > 0 && r.available <= r.total, "{r:?}");
    }
}
