//! The one-time GPU probe. Filled on first use, never at load time: libcuda present →
//! `cuInit(0)` → device count. Any failure leaves `runtime` empty with the reason, and every
//! CUDA entry point then answers `Unsupported` without touching cudarc again.

use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use cudarc::driver::sys;

use super::error::driver_error_text;
use super::unavailable;
use crate::error::Result;

/// What the probe found on a machine with a usable GPU.
pub struct GpuRuntime {
    pub device_count: i32,
    pub driver_version: i32,
    /// Primary context per device, retained on first use and never released (process
    /// lifetime: releasing races driver shutdown). Stored as addresses so the table is Sync.
    primary: Vec<OnceLock<usize>>,
}

struct Probe {
    runtime: Option<GpuRuntime>,
    /// Why `runtime` is empty ("" when it is not).
    reason: String,
}

static PROBE: OnceLock<Probe> = OnceLock::new();

fn visible_devices() -> String {
    match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(v) => format!("CUDA_VISIBLE_DEVICES={v:?}"),
        Err(_) => "CUDA_VISIBLE_DEVICES unset".to_string(),
    }
}

fn run_probe() -> Probe {
    let none = |reason: String| Probe {
        runtime: None,
        reason,
    };
    if std::env::var("C2RS_DISABLE_CUDA").is_ok_and(|v| v == "1") {
        return none("disabled by C2RS_DISABLE_CUDA=1".to_string());
    }
    if std::env::var_os("CAFFE2_DEBUG_CUDA_INIT_ORDER").is_some() {
        eprintln!("caffe2rs: first CUDA device query (probe)");
    }
    // cudarc panics on a missing library or symbol; contain that here as well.
    let found = catch_unwind(AssertUnwindSafe(
        || -> std::result::Result<GpuRuntime, String> {
            // SAFETY: only looks for the library file; loads nothing else.
            if !unsafe { sys::is_culib_present() } {
                return Err("the CUDA driver library (libcuda) is not installed".to_string());
            }
            // SAFETY: cuInit has no preconditions; the library is present.
            let rc = unsafe { sys::cuInit(0) };
            if rc != sys::CUresult::CUDA_SUCCESS {
                return Err(format!(
                    "cuInit failed with {} ({})",
                    driver_error_text(rc),
                    visible_devices()
                ));
            }
            let mut count: c_int = 0;
            // SAFETY: valid out-pointer; the driver is initialised.
            let rc = unsafe { sys::cuDeviceGetCount(&mut count) };
            if rc != sys::CUresult::CUDA_SUCCESS {
                return Err(format!(
                    "cuDeviceGetCount failed with {} ({})",
                    driver_error_text(rc),
                    visible_devices()
                ));
            }
            if count <= 0 {
                return Err(format!("no CUDA device ({})", visible_devices()));
            }
            let mut driver_version: c_int = 0;
            // SAFETY: valid out-pointer.
            let _ = unsafe { sys::cuDriverGetVersion(&mut driver_version) };
            Ok(GpuRuntime {
                device_count: count,
                driver_version,
                primary: (0..count).map(|_| OnceLock::new()).collect(),
            })
        },
    ));
    match found {
        Ok(Ok(rt)) => Probe {
            runtime: Some(rt),
            reason: String::new(),
        },
        Ok(Err(reason)) => {
            eprintln!("caffe2rs: no CUDA GPU: {reason}");
            none(reason)
        }
        Err(_) => none("the CUDA driver library could not be used (load failure)".to_string()),
    }
}

fn probe() -> &'static Probe {
    PROBE.get_or_init(run_probe)
}

/// The GPU runtime, or `Unsupported` with the probe's reason.
pub fn runtime() -> Result<&'static GpuRuntime> {
    let p = probe();
    p.runtime.as_ref().ok_or_else(|| unavailable(&p.reason))
}

/// Caffe2's `NumCudaDevices()`: 0 without a usable GPU (never aborts).
pub fn device_count() -> i32 {
    probe().runtime.as_ref().map_or(0, |r| r.device_count)
}

/// One line for diagnostics: driver version and device count, or why there is no GPU.
pub fn probe_report() -> String {
    let p = probe();
    match &p.runtime {
        Some(rt) => format!(
            "CUDA driver {}.{}, {} device(s), {}",
            rt.driver_version / 1000,
            (rt.driver_version % 1000) / 10,
            rt.device_count,
            visible_devices()
        ),
        None => format!("no CUDA GPU: {}", p.reason),
    }
}

impl GpuRuntime {
    /// Enforces `0 <= gpu < device_count`.
    pub fn check_ordinal(&self, gpu: i32) -> Result<()> {
        if gpu < 0 || gpu >= self.device_count {
            return Err(crate::error::C2rsError::invalid_argument(format!(
                "GPU id {gpu} is out of range: {} device(s)",
                self.device_count
            )));
        }
        // Per-device tables hold MAX_GPUS entries (a machine with more devices fails its
        // lazy init with that message; this keeps direct queries from indexing past them).
        if gpu as usize >= super::MAX_GPUS {
            return Err(crate::error::C2rsError::unsupported(format!(
                "GPU id {gpu} is beyond the {} devices caffe2rs supports in one process",
                super::MAX_GPUS
            )));
        }
        Ok(())
    }

    /// The retained primary context of `gpu` (interoperates with the CUDA runtime API).
    pub fn primary_context(&self, gpu: i32) -> Result<sys::CUcontext> {
        self.check_ordinal(gpu)?;
        let slot = &self.primary[gpu as usize];
        if let Some(&ctx) = slot.get() {
            return Ok(ctx as sys::CUcontext);
        }
        let mut dev: sys::CUdevice = 0;
        // SAFETY: valid out-pointer; `gpu` is in range.
        super::error::check(unsafe { sys::cuDeviceGet(&mut dev, gpu) }, "cuDeviceGet")?;
        let mut ctx: sys::CUcontext = std::ptr::null_mut();
        // SAFETY: valid out-pointer and device. Retaining twice in a race only bumps the
        // primary context's refcount; it is never released.
        super::error::check(
            unsafe { sys::cuDevicePrimaryCtxRetain(&mut ctx, dev) },
            "cuDevicePrimaryCtxRetain",
        )?;
        let _ = slot.set(ctx as usize);
        Ok(ctx)
    }

    /// The device ordinal whose primary context is `ctx`, if any.
    pub fn ordinal_of_context(&self, ctx: sys::CUcontext) -> Option<i32> {
        self.primary
            .iter()
            .position(|s| s.get().is_some_and(|&c| c == ctx as usize))
            .map(|i| i as i32)
    }
}
