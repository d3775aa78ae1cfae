//! CUDA tensors in workspace blobs from C: where a blob's tensor lives, host ↔ device copies,
//! the device pointer, and DLPack exchange with device kDLCUDA.
//!
//! A CUDA tensor is a blob of type `"CudaTensor"` (`c2rs_workspace_blob_type`), made by the
//! copy operators (`CopyCPUToGPU`, …) or by `c2rs_cuda_tensor_feed` /
//! `c2rs_cuda_tensor_from_dlpack`. Without a usable GPU every `c2rs_cuda_tensor_*` call
//! returns C2RS_UNSUPPORTED with the probe's reason.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::guard::{ffi_fn, name_arg, null_arg, out_param};
use super::handle::{arc_ref, c2rs_tensor, c2rs_workspace, handle_ref, into_handle};
use crate::context::cuda::{CudaTensor, device_count, probe_report};
use crate::error::{C2rsError, Result};
use crate::tensor::dlpack::DLManagedTensorVersioned;
use crate::workspace::{Blob, BlobContent, Workspace};

fn need_gpu() -> Result<()> {
    if device_count() > 0 {
        Ok(())
    } else {
        Err(C2rsError::unsupported(format!(
            "CUDA tensors need a CUDA device: {}",
            probe_report()
        )))
    }
}

fn blob_or_not_found(ws: &Workspace, name: &str) -> Result<Arc<Blob>> {
    ws.get_blob(name)
        .ok_or_else(|| C2rsError::not_found(format!("Can't find blob: {name}")))
}

fn cuda_tensor(ws: &Workspace, name: &str) -> Result<Arc<CudaTensor>> {
    blob_or_not_found(ws, name)?
        .native::<CudaTensor>()
        .map_err(|e| e.context(format!("blob {name}")))
}

/// Where the tensor in blob `name` lives: `*device_type` 0 (CPU) with `*device_id` 0, or 1
/// (CUDA) with the GPU ordinal. Works without a GPU.
///
/// Borrowed: `ws` and `name` for the call.
/// Thread safety: safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible; C2RS_TYPE_MISMATCH when the blob holds no
/// tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_blob_device(
    ws: *const c2rs_workspace,
    name: *const c_char,
    device_type: *mut i32,
    device_id: *mut i32,
) -> i32 {
    ffi_fn!("c2rs_workspace_blob_device", {
        let device_type = out_param(device_type, "device_type")?;
        let device_id = out_param(device_id, "device_id")?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let blob = blob_or_not_found(ws, name)?;
        let (t, id) = match &*blob.read() {
            BlobContent::Tensor(_) => (0, 0),
            BlobContent::Native(n) => match n.downcast::<CudaTensor>() {
                Some(c) => (1, c.gpu()),
                None => {
                    return Err(C2rsError::type_mismatch(format!(
                        "blob {name} holds {}, not a tensor",
                        n.type_name()
                    )));
                }
            },
            other => {
                return Err(C2rsError::type_mismatch(format!(
                    "blob {name} holds {}, not a tensor",
                    other.type_name()
                )));
            }
        };
        device_type.set(t);
        device_id.set(id);
        Ok(())
    })
}

/// Copies the CPU tensor `t` to GPU `gpu` and stores the result in blob `name` (created as
/// `c2rs_workspace_create_blob` does). Returns after the copy has completed.
///
/// Borrowed: `ws`, `name` and `t` for the call (`t` is copied, not consumed).
/// Thread safety: safe from many threads; `t` must not be written concurrently.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL, `name` is not UTF-8 or
/// `gpu` is out of range; C2RS_TYPE_MISMATCH for STRING tensors; C2RS_NOT_FOUND when `name`
/// is forwarded to a parent blob that no longer exists; C2RS_UNSUPPORTED without a usable GPU;
/// C2RS_ENFORCE_NOT_MET for CUDA errors (out of memory, failed copy).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_tensor_feed(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    gpu: i32,
    t: *const c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_cuda_tensor_feed", {
        need_gpu()?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let host = handle_ref(t, "t")?;
        let device = CudaTensor::from_host(host, gpu)?;
        let blob = ws.create_blob(name).ok_or_else(|| {
            C2rsError::not_found(format!(
                "blob {name} is forwarded to a parent blob that no longer exists"
            ))
        })?;
        blob.set_native(Arc::new(device));
        Ok(())
    })
}

/// A host copy of the CUDA tensor in blob `name` (returns after the copy has completed).
///
/// Ownership: the caller owns `*out` (`c2rs_tensor_free`).
/// Thread safety: safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible; C2RS_TYPE_MISMATCH when it holds no CUDA
/// tensor; C2RS_UNSUPPORTED without a usable GPU; C2RS_ENFORCE_NOT_MET for CUDA errors.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_tensor_fetch(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_cuda_tensor_fetch", {
        let out = out_param(out, "out")?;
        need_gpu()?;
        let ws = arc_ref(ws, "ws")?;
        let t = cuda_tensor(ws, name_arg(name, "name")?)?;
        out.set(into_handle(t.to_host()?));
        Ok(())
    })
}

/// The device address of the first element of the CUDA tensor in blob `name` (NULL for an
/// empty tensor that never allocated).
///
/// Borrowed: `*out` is valid while the blob holds this tensor (until the blob is written,
/// reset or removed); never dereference it on the host.
/// Thread safety: safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible; C2RS_TYPE_MISMATCH when it holds no CUDA
/// tensor; C2RS_UNSUPPORTED without a usable GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_tensor_data(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_cuda_tensor_data", {
        let out = out_param(out, "out")?;
        need_gpu()?;
        let ws = arc_ref(ws, "ws")?;
        out.set(cuda_tensor(ws, name_arg(name, "name")?)?.data_ptr());
        Ok(())
    })
}

/// Exports the CUDA tensor in blob `name` as a DLPack v1 tensor without copying: device
/// kDLCUDA (2) with `device_id` = its GPU, compact (`strides` NULL), read-only flag set. The
/// export keeps the device memory alive after the blob is overwritten or removed. The tensor's
/// values are complete (every copy into it has been waited for), so consumers need no stream
/// hand-off.
///
/// Ownership: the caller owns `*out` and must call `(*out)->deleter(*out)` exactly once.
/// Thread safety: safe from many threads; the export may be deleted from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible; C2RS_TYPE_MISMATCH when it holds no CUDA
/// tensor; C2RS_UNSUPPORTED without a usable GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_tensor_to_dlpack(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut DLManagedTensorVersioned,
) -> i32 {
    ffi_fn!("c2rs_cuda_tensor_to_dlpack", {
        let out = out_param(out, "out")?;
        need_gpu()?;
        let ws = arc_ref(ws, "ws")?;
        out.set(cuda_tensor(ws, name_arg(name, "name")?)?.to_dlpack()?);
        Ok(())
    })
}

/// Adopts a kDLCUDA DLPack v1 tensor without copying and stores it in blob `name` (created as
/// `c2rs_workspace_create_blob` does). The producer's work on the data must be complete
/// (or ordered before any use by the host).
///
/// Accepted: as `c2rs_tensor_from_dlpack` (dtypes, compact strides, alignment), device kDLCUDA
/// with an existing `device_id` whose memory `data` is (checked with the driver).
/// Ownership: on success the blob owns `in`: its deleter is called exactly once, when the blob
/// and every export or operator snapshot sharing it let go. On failure the caller still owns
/// `in`, and a blob `name` that did not exist before the call does not exist after it.
/// Thread safety: safe from any thread; the deleter may later run on any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL, `name` is not UTF-8, the
/// shape is invalid, `device_id` is out of range or the data is not that GPU's memory;
/// C2RS_NOT_FOUND when `name` is forwarded to a parent blob that no longer exists;
/// C2RS_UNSUPPORTED without a usable GPU, for another device type, major version, a dtype
/// without a Caffe2 equivalent or non-compact strides.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_tensor_from_dlpack(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    r#in: *mut DLManagedTensorVersioned,
) -> i32 {
    ffi_fn!("c2rs_cuda_tensor_from_dlpack", {
        if r#in.is_null() {
            return Err(null_arg("in"));
        }
        need_gpu()?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        // The blob is made before adopting (so a failed lookup leaves `in` with the caller)
        // and removed again when adoption fails, so a failed call leaves no empty blob.
        let existed = ws.has_blob(name);
        let blob = ws.create_blob(name).ok_or_else(|| {
            C2rsError::not_found(format!(
                "blob {name} is forwarded to a parent blob that no longer exists"
            ))
        })?;
        // SAFETY: non-NULL; the C contract makes `in` a valid DLPack tensor handed over to us.
        match unsafe { CudaTensor::from_dlpack(r#in) } {
            Ok(t) => {
                blob.set_native(Arc::new(t));
                Ok(())
            }
            Err(e) => {
                if !existed {
                    ws.remove_blob(name);
                }
                Err(e)
            }
        }
    })
}
