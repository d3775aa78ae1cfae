//! The thread's current device (the primary context bound to the thread), `DeviceGuard`,
//! peer access, pointer attributes and the one-time lazy global init.

use std::cell::Cell;
use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

use cudarc::driver::sys;

use super::error::check;
use super::probe::runtime;
use super::{MAX_GPUS, full_device_control};
use crate::error::{C2rsError, Result};

thread_local! {
    /// With `caffe2_cuda_full_device_control`, the device this thread last set (−1: unknown).
    static CACHED_DEVICE: Cell<i32> = const { Cell::new(-1) };
}

/// Caffe2's `CaffeCudaGetDevice()`: the device whose primary context is current on this
/// thread; 0 when none is bound yet (the CUDA runtime's default).
pub fn get_device() -> Result<i32> {
    let rt = runtime()?;
    if full_device_control() {
        let cached = CACHED_DEVICE.with(Cell::get);
        if cached >= 0 {
            return Ok(cached);
        }
    }
    let mut ctx: sys::CUcontext = std::ptr::null_mut();
    // SAFETY: valid out-pointer; the driver is initialised (probe).
    check(unsafe { sys::cuCtxGetCurrent(&mut ctx) }, "cuCtxGetCurrent")?;
    if ctx.is_null() {
        // Like the CUDA runtime: a thread that never chose a device uses device 0; bind its
        // primary context so that driver calls made next find a current context.
        set_device(0)?;
        return Ok(0);
    }
    if let Some(i) = rt.ordinal_of_context(ctx) {
        return Ok(i);
    }
    let mut dev: sys::CUdevice = 0;
    // SAFETY: valid out-pointer; a context is current.
    check(unsafe { sys::cuCtxGetDevice(&mut dev) }, "cuCtxGetDevice")?;
    Ok(dev)
}

/// Caffe2's `CaffeCudaSetDevice(id)`: binds `id`'s primary context to this thread.
pub fn set_device(id: i32) -> Result<()> {
    let rt = runtime()?;
    rt.check_ordinal(id)?;
    if full_device_control() && CACHED_DEVICE.with(Cell::get) == id {
        return Ok(());
    }
    let ctx = rt.primary_context(id)?;
    // SAFETY: `ctx` is a retained primary context that is never released.
    check(unsafe { sys::cuCtxSetCurrent(ctx) }, "cuCtxSetCurrent")?;
    CACHED_DEVICE.with(|c| c.set(id));
    Ok(())
}

/// Switches to a device for a scope and always switches back (only when different).
pub struct DeviceGuard {
    previous: i32,
    switched: bool,
}

impl DeviceGuard {
    pub fn new(device: i32) -> Result<Self> {
        let previous = get_device()?;
        let switched = previous != device;
        if switched {
            set_device(device)?;
        }
        Ok(Self { previous, switched })
    }
}

impl Drop for DeviceGuard {
    fn drop(&mut self) {
        if self.switched {
            // Restoring cannot fail for a device that was current a moment ago; ignore errors
            // rather than panic in drop.
            let _ = set_device(self.previous);
        }
    }
}

/// Resolves "unset" (None) to the thread's current device and checks the range.
pub fn resolve_gpu(gpu: Option<i32>) -> Result<i32> {
    let rt = runtime()?;
    let g = match gpu {
        Some(g) => g,
        None => get_device()?,
    };
    rt.check_ordinal(g)?;
    Ok(g)
}

fn can_access_peer(a: i32, b: i32) -> Result<bool> {
    let mut da: sys::CUdevice = 0;
    let mut db: sys::CUdevice = 0;
    // SAFETY: valid out-pointers; ordinals are in range (checked by callers).
    check(unsafe { sys::cuDeviceGet(&mut da, a) }, "cuDeviceGet")?;
    // SAFETY: as above.
    check(unsafe { sys::cuDeviceGet(&mut db, b) }, "cuDeviceGet")?;
    let mut can: c_int = 0;
    // SAFETY: valid out-pointer and devices.
    check(
        unsafe { sys::cuDeviceCanAccessPeer(&mut can, da, db) },
        "cuDeviceCanAccessPeer",
    )?;
    Ok(can != 0)
}

/// Caffe2's `GetCudaPeerAccessPattern()`: `[i][j]` = device i can access j (diagonal true);
/// a failing query counts as false.
pub fn peer_access_pattern() -> Result<Vec<Vec<bool>>> {
    let n = runtime()?.device_count;
    Ok((0..n)
        .map(|i| {
            (0..n)
                .map(|j| i == j || can_access_peer(i, j).unwrap_or(false))
                .collect()
        })
        .collect())
}

/// Caffe2's `TensorCoreAvailable()` for the current device: compute capability ≥ 7.
pub fn tensor_core_available() -> Result<bool> {
    let gpu = get_device()?;
    let mut dev: sys::CUdevice = 0;
    // SAFETY: valid out-pointer; `gpu` came from the driver.
    check(unsafe { sys::cuDeviceGet(&mut dev, gpu) }, "cuDeviceGet")?;
    let mut major: c_int = 0;
    // SAFETY: valid out-pointer and device.
    check(
        unsafe {
            sys::cuDeviceGetAttribute(
                &mut major,
                sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                dev,
            )
        },
        "cuDeviceGetAttribute",
    )?;
    Ok(major >= 7)
}

/// Caffe2's `GetGPUIDForPointer(p)`: the device owning `p`; −1 for host memory, including
/// pageable memory the driver does not know (its invalid-value error is cleared).
pub fn pointer_device(ptr: *const c_void) -> Result<i32> {
    runtime()?;
    // The driver answers CUDA_ERROR_INVALID_CONTEXT on a thread with no current context
    // (a host thread calling in first); bind one as the runtime API would.
    get_device()?;
    let mut mem_type: c_uint = 0;
    // SAFETY: `mem_type` is the 4-byte out-value this attribute writes; any pointer value may
    // be queried.
    let rc = unsafe {
        sys::cuPointerGetAttribute(
            &mut mem_type as *mut c_uint as *mut c_void,
            sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
            ptr as sys::CUdeviceptr,
        )
    };
    if rc == sys::CUresult::CUDA_ERROR_INVALID_VALUE {
        return Ok(-1);
    }
    check(rc, "cuPointerGetAttribute")?;
    if mem_type != sys::CUmemorytype::CU_MEMORYTYPE_DEVICE as c_uint {
        return Ok(-1);
    }
    let mut ordinal: c_int = -1;
    // SAFETY: as above; this attribute writes an int.
    check(
        unsafe {
            sys::cuPointerGetAttribute(
                &mut ordinal as *mut c_int as *mut c_void,
                sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                ptr as sys::CUdeviceptr,
            )
        },
        "cuPointerGetAttribute",
    )?;
    Ok(ordinal)
}

/// Enables peer access between devices of the same group of 8 where the hardware allows.
fn enable_peer_access(n: i32) -> Result<()> {
    let rt = runtime()?;
    for i in 0..n {
        let _guard = DeviceGuard::new(i)?;
        for j in 0..n {
            if i == j || i / 8 != j / 8 || !can_access_peer(i, j).unwrap_or(false) {
                continue;
            }
            let peer = rt.primary_context(j)?;
            // SAFETY: `peer` is a retained primary context; the current context is device i's.
            let rc = unsafe { sys::cuCtxEnablePeerAccess(peer, 0) };
            if rc != sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED {
                check(rc, "cuCtxEnablePeerAccess")?;
            }
        }
    }
    Ok(())
}

/// The lazy global init's outcome, shared by every later caller.
static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Caffe2's one-time CUDA init, run on the first CUDA context or allocation (never at load):
/// ≤ 16 devices, peer access in groups of 8, then the CPU allocator switches to pinned memory.
pub fn ensure_init() -> Result<()> {
    let rt = runtime()?;
    let outcome = INIT.get_or_init(|| {
        let n = rt.device_count;
        if n as usize > MAX_GPUS {
            return Err(format!(
                "Number of CUDA devices on the machine is larger than the compiled max number of gpus expected ({MAX_GPUS}). Increase that and recompile."
            ));
        }
        if let Err(e) = enable_peer_access(n) {
            // Peer access is an optimisation; copies still work through the host.
            eprintln!("caffe2rs: peer access not enabled: {}", e.message());
        }
        super::pinned::install_pinned_cpu_allocator();
        Ok(())
    });
    outcome.clone().map_err(C2rsError::enforce)
}
