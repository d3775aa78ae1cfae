//! CUDA, cuBLAS, cuRAND and cuDNN statuses as enforce errors carrying the status name
//! (Caffe2's `... Error at: <file>:<line>: <NAME>`; we name the call instead of the line).

use cudarc::driver::sys;

use crate::error::{C2rsError, Result};

/// `CUDA_ERROR_X: description` for a driver status; never calls into a missing library
/// (only used after the probe found libcuda).
pub fn driver_error_text(rc: sys::CUresult) -> String {
    let e = cudarc::driver::result::DriverError(rc);
    let name = e
        .error_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{rc:?}"));
    match e.error_string() {
        Ok(s) => format!("{name}: {}", s.to_string_lossy()),
        Err(_) => name,
    }
}

/// Ok for CUDA_SUCCESS, else an enforce `"<what>: Error at: <NAME>: <description>"`.
pub fn check(rc: sys::CUresult, what: &str) -> Result<()> {
    if rc == sys::CUresult::CUDA_SUCCESS {
        Ok(())
    } else {
        Err(C2rsError::enforce(format!(
            "{what}: Error at: {}",
            driver_error_text(rc)
        )))
    }
}

/// An enforce for a library status whose `Debug` is the status name (cuBLAS, cuRAND, cuDNN).
pub fn lib_error(what: &str, status: impl std::fmt::Debug) -> C2rsError {
    C2rsError::enforce(format!("{what}: Error at: {status:?}"))
}
