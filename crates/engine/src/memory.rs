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

/// Caps glibc's malloc arenas. glibc gives each thread that allocates its own arena, and the
/// model's forward passes allocate on its pool's threads, so every pool thread would keep its
/// own high-water mark of temporaries: about 20 MiB more peak RSS on the 270M model at two
/// threads. Binaries call this once at start-up, before any thread starts; elsewhere it does
/// nothing.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's malloc.h: #define M_ARENA_MAX -8
        const M_ARENA_MAX: i32 = -8;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only sets an allocator parameter; it is called before other threads
        // exist, as glibc asks for M_ARENA_MAX.
        if unsafe { mallopt(M_ARENA_MAX, 1) } == 0 {
            log::debug!("mallopt(M_ARENA_MAX) was refused; peak memory may be higher");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_reports_plausible_memory() {
        let r = super::ram().expect("sysinfo reads memory on the platforms Hearth supports");
        assert!(r.total > 64 << 20, "total {}", r.total);
        assert!(r.available > 0 && r.available <= r.total, "{r:?}");
    }
}
