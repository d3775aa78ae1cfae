//! Handing tensors over without copying: cheap clones, a consuming DLPack export that is
//! writable when nobody else holds the storage, and moving a tensor out of a tensor list
//! (a batch reader's output). What a host needs to pass batches between its own operators and
//! caffe2rs's without a copy.

use super::guard::{ffi_fn, out_param};
use super::handle::{
    c2rs_tensor, c2rs_tensor_list, free_handle, handle_mut, handle_ref, into_handle,
};
use crate::error::C2rsError;
use crate::tensor::dlpack::{self, DLManagedTensorVersioned};
use crate::tensor::{DataType, Tensor};

/// A tensor equal to `t` that shares its storage (no element is copied). Writes through either
/// handle copy first while both live (copy-on-write), so each keeps behaving as an independent
/// copy of the values.
///
/// Ownership: on success the caller owns `*out` (`c2rs_tensor_free`); `t` is unchanged.
/// Thread safety: read-only on `t`; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_clone(t: *const c2rs_tensor, out: *mut *mut c2rs_tensor) -> i32 {
    ffi_fn!("c2rs_tensor_clone", {
        let out = out_param(out, "out")?;
        out.set(into_handle(handle_ref(t, "t")?.clone()));
        Ok(())
    })
}

/// Whether `c2rs_tensor_mutable_data(t)` would return the current elements without copying:
/// no other tensor (a clone, a blob, a queue slot) or DLPack export holds the storage and it was
/// not adopted read-only. A consuming export (`c2rs_tensor_into_dlpack`) is writable exactly
/// when this is true.
///
/// Thread safety: read-only; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_writes_in_place(t: *const c2rs_tensor, out: *mut bool) -> i32 {
    ffi_fn!("c2rs_tensor_writes_in_place", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(t, "t")?.writes_in_place());
        Ok(())
    })
}

/// Hands `t` over as a DLPack v1 tensor without copying, consuming the handle (kDLCPU,
/// compact, `strides` NULL). When nobody else holds the storage (see
/// `c2rs_tensor_writes_in_place`) the export is writable (`flags` 0): the consumer holds the
/// only reference and may write the elements in place. When the storage is shared (a clone, a
/// blob still holding it, another export) or adopted read-only, the export carries
/// DLPACK_FLAG_BITMASK_READ_ONLY, or the call is refused when `require_writable` is true.
/// `*writable` (nullable) tells which export was made.
///
/// Ownership: on success `t` is consumed (do not use or free it) and the caller owns `*out`:
/// call `(*out)->deleter(*out)` exactly once. On failure `t` is untouched and still the
/// caller's.
/// Thread safety: no other call may use `t` concurrently; the export may be used and deleted
/// from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL; C2RS_ENFORCE_NOT_MET
/// when `require_writable` is true and the storage is shared or read-only; C2RS_UNSUPPORTED
/// for STRING tensors.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_into_dlpack(
    t: *mut c2rs_tensor,
    require_writable: bool,
    out: *mut *mut DLManagedTensorVersioned,
    writable: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_tensor_into_dlpack", {
        let out = out_param(out, "out")?;
        let writable_out = if writable.is_null() {
            None
        } else {
            Some(out_param(writable, "writable")?)
        };
        let tensor: &Tensor = handle_ref(t, "t")?;
        let (managed, is_writable) = dlpack::export_for_handover(tensor, require_writable)?;
        // The export now holds the storage; dropping the handle leaves it the only holder.
        free_handle(t);
        out.set(managed);
        if let Some(w) = writable_out {
            w.set(is_writable);
        }
        Ok(())
    })
}

/// Moves tensor `i` out of `list` without copying (e.g. one output of
/// `c2rs_batch_reader_next`), leaving entry `i` an empty FLOAT tensor of dims `[0]`; the
/// list's length is unchanged. A batch tensor taken this way is usually the only holder of its
/// storage, so it can be written in place or handed over writable (`c2rs_tensor_into_dlpack`).
///
/// Ownership: on success the caller owns `*out` (`c2rs_tensor_free`); the list still owns the
/// other entries and is freed as before.
/// Thread safety: no other call may use `list` concurrently.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `list` or `out` is NULL or `i` is out of range.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_list_take(
    list: *mut c2rs_tensor_list,
    i: usize,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_tensor_list_take", {
        let out = out_param(out, "out")?;
        let list = handle_mut(list, "list")?;
        let n = list.len();
        let slot = list.get_mut(i).ok_or_else(|| {
            C2rsError::invalid_argument(format!("index {i} is out of range for a list of {n}"))
        })?;
        let empty = Tensor::zeros(DataType::Float, &[0])?;
        out.set(into_handle(std::mem::replace(slot, empty)));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;
    use crate::ffi::tensor::{
        C2RS_DTYPE_FLOAT, C2RS_DTYPE_INT32, C2RS_DTYPE_STRING, c2rs_tensor_data, c2rs_tensor_free,
        c2rs_tensor_from_dlpack, c2rs_tensor_list_free, c2rs_tensor_list_get, c2rs_tensor_list_len,
        c2rs_tensor_mutable_data, c2rs_tensor_new, c2rs_tensor_protos_decode,
        c2rs_tensor_protos_encode, c2rs_tensor_to_dlpack,
    };
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn int_tensor(values: &[i32]) -> *mut c2rs_tensor {
        let dims = [values.len() as i64];
        let mut t = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_new(C2RS_DTYPE_INT32, dims.as_ptr(), 1, &mut t),
            C2RS_OK
        );
        let mut p: *mut c_void = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_mutable_data(t, &mut p), C2RS_OK);
        // SAFETY: `p` holds `values.len()` writable i32 of the live tensor.
        unsafe { std::slice::from_raw_parts_mut(p as *mut i32, values.len()) }
            .copy_from_slice(values);
        t
    }

    fn data(t: *const c2rs_tensor) -> *const c_void {
        let mut p: *const c_void = std::ptr::null();
        assert_eq!(c2rs_tensor_data(t, &mut p), C2RS_OK);
        p
    }

    fn in_place(t: *const c2rs_tensor) -> bool {
        let mut b = false;
        assert_eq!(c2rs_tensor_writes_in_place(t, &mut b), C2RS_OK);
        b
    }

    #[test]
    fn a_clone_shares_storage_and_writes_copy_first() {
        let t = int_tensor(&[1, 2, 3]);
        assert!(in_place(t));
        let mut c = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_clone(t, &mut c), C2RS_OK);
        assert_eq!(data(c), data(t), "no copy");
        assert!(!in_place(t) && !in_place(c));
        let mut p: *mut c_void = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_mutable_data(c, &mut p), C2RS_OK);
        assert_ne!(p as *const c_void, data(t), "the write copied");
        // SAFETY: three writable i32 of the live clone; three readable i32 of `t`.
        unsafe {
            *(p as *mut i32) = 9;
            assert_eq!(*(data(t) as *const i32), 1);
        }
        assert!(in_place(t) && in_place(c));
        c2rs_tensor_free(c);
        c2rs_tensor_free(t);
        assert_eq!(
            c2rs_tensor_clone(std::ptr::null(), &mut c),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_tensor_clone(t, std::ptr::null_mut()),
            C2RS_INVALID_ARGUMENT
        );
    }

    #[test]
    fn a_sole_holder_hands_over_a_writable_export_and_is_consumed() {
        let t = int_tensor(&[4, 5]);
        let before = data(t);
        let mut m: *mut DLManagedTensorVersioned = std::ptr::null_mut();
        let mut w = false;
        assert_eq!(c2rs_tensor_into_dlpack(t, true, &mut m, &mut w), C2RS_OK);
        assert!(w);
        // SAFETY: `m` is a live export of 2 int32; written (writable) then deleted once.
        unsafe {
            assert_eq!((*m).flags & dlpack::FLAG_READ_ONLY, 0);
            assert_eq!((*m).dl_tensor.data as *const c_void, before);
            *((*m).dl_tensor.data as *mut i32) = 7;
            assert_eq!(*((*m).dl_tensor.data as *const i32), 7);
            ((*m).deleter.unwrap())(m);
        }
    }

    #[test]
    fn shared_storage_exports_read_only_or_is_refused_without_consuming() {
        let t = int_tensor(&[1]);
        let mut c = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_clone(t, &mut c), C2RS_OK);
        let mut m: *mut DLManagedTensorVersioned = std::ptr::null_mut();
        let mut w = true;
        assert_eq!(
            c2rs_tensor_into_dlpack(t, true, &mut m, &mut w),
            C2RS_ENFORCE_NOT_MET
        );
        assert!(m.is_null() && !w, "out-params reset");
        // Refused: `t` is still the caller's and usable.
        assert_eq!(data(t), data(c));
        assert_eq!(c2rs_tensor_into_dlpack(t, false, &mut m, &mut w), C2RS_OK);
        assert!(!w);
        // SAFETY: `m` is a live export; read its flags, then delete it once.
        unsafe {
            assert_eq!((*m).flags & dlpack::FLAG_READ_ONLY, dlpack::FLAG_READ_ONLY);
            assert_eq!((*m).dl_tensor.data as *const c_void, data(c));
            ((*m).deleter.unwrap())(m);
        }
        // A live to_dlpack export is a holder too.
        let mut e: *mut DLManagedTensorVersioned = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_to_dlpack(c, &mut e), C2RS_OK);
        assert!(!in_place(c));
        assert_eq!(
            c2rs_tensor_into_dlpack(c, true, &mut m, std::ptr::null_mut()),
            C2RS_ENFORCE_NOT_MET
        );
        // SAFETY: `e` is a live export, deleted once.
        unsafe { ((*e).deleter.unwrap())(e) };
        assert!(in_place(c));
        assert_eq!(
            c2rs_tensor_into_dlpack(c, true, &mut m, std::ptr::null_mut()),
            C2RS_OK
        );
        // SAFETY: as above.
        unsafe { ((*m).deleter.unwrap())(m) };
    }

    static HOST_DELETES: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn a_host_buffer_round_trips_writable_and_its_deleter_runs_once() {
        unsafe extern "C" fn count(_: *mut DLManagedTensorVersioned) {
            HOST_DELETES.fetch_add(1, Ordering::SeqCst);
        }
        let mut values = [1.0f32, 2.0];
        let mut shape = [2i64];
        let make =
            |flags: u64, values: &mut [f32; 2], shape: &mut [i64; 1]| DLManagedTensorVersioned {
                version: dlpack::DLPackVersion { major: 1, minor: 0 },
                manager_ctx: std::ptr::null_mut(),
                deleter: Some(count),
                flags,
                dl_tensor: dlpack::DLTensor {
                    data: values.as_mut_ptr().cast(),
                    device: dlpack::DLDevice {
                        device_type: dlpack::DL_CPU,
                        device_id: 0,
                    },
                    ndim: 1,
                    dtype: dlpack::dl_dtype(DataType::Float).unwrap(),
                    shape: shape.as_mut_ptr(),
                    strides: std::ptr::null_mut(),
                    byte_offset: 0,
                },
            };
        // Writable host buffer: adopted, then handed back writable, same bytes.
        let mut host = make(0, &mut values, &mut shape);
        let mut t = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_from_dlpack(&mut host, &mut t), C2RS_OK);
        assert!(in_place(t));
        let mut m: *mut DLManagedTensorVersioned = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_into_dlpack(t, true, &mut m, std::ptr::null_mut()),
            C2RS_OK
        );
        // SAFETY: `m` is a live export of the host's two floats.
        unsafe {
            assert_eq!((*m).dl_tensor.data, values.as_mut_ptr().cast());
            assert_eq!(HOST_DELETES.load(Ordering::SeqCst), 0);
            ((*m).deleter.unwrap())(m);
        }
        assert_eq!(HOST_DELETES.load(Ordering::SeqCst), 1, "exactly once");
        // A read-only host buffer is never handed over writable.
        let mut host = make(dlpack::FLAG_READ_ONLY, &mut values, &mut shape);
        assert_eq!(c2rs_tensor_from_dlpack(&mut host, &mut t), C2RS_OK);
        assert!(!in_place(t));
        assert_eq!(
            c2rs_tensor_into_dlpack(t, true, &mut m, std::ptr::null_mut()),
            C2RS_ENFORCE_NOT_MET
        );
        c2rs_tensor_free(t);
        assert_eq!(HOST_DELETES.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn into_dlpack_refuses_bad_arguments_and_strings() {
        let mut m: *mut DLManagedTensorVersioned = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_into_dlpack(std::ptr::null_mut(), false, &mut m, std::ptr::null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        let t = int_tensor(&[1]);
        assert_eq!(
            c2rs_tensor_into_dlpack(t, false, std::ptr::null_mut(), std::ptr::null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_tensor_free(t);
        let dims = [2i64];
        let mut s = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_new(C2RS_DTYPE_STRING, dims.as_ptr(), 1, &mut s),
            C2RS_OK
        );
        assert_eq!(
            c2rs_tensor_into_dlpack(s, false, &mut m, std::ptr::null_mut()),
            C2RS_UNSUPPORTED
        );
        c2rs_tensor_free(s);
    }

    #[test]
    fn taking_from_a_list_moves_the_tensor_and_leaves_an_empty_entry() {
        let a = int_tensor(&[1, 2]);
        let b = int_tensor(&[3]);
        let handles = [a as *const c2rs_tensor, b as *const c2rs_tensor];
        let mut buf = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_protos_encode(handles.as_ptr(), 2, &mut buf),
            C2RS_OK
        );
        use crate::ffi::buffer::{c2rs_buffer_data, c2rs_buffer_free, c2rs_buffer_len};
        // SAFETY: the live buffer's bytes, copied before it is freed.
        let bytes =
            unsafe { std::slice::from_raw_parts(c2rs_buffer_data(buf), c2rs_buffer_len(buf)) }
                .to_vec();
        c2rs_buffer_free(buf);
        c2rs_tensor_free(a);
        c2rs_tensor_free(b);
        let mut list = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_protos_decode(bytes.as_ptr(), bytes.len(), &mut list),
            C2RS_OK
        );
        let mut entry: *const c2rs_tensor = std::ptr::null();
        assert_eq!(c2rs_tensor_list_get(list, 0, &mut entry), C2RS_OK);
        let before = data(entry);
        let mut taken = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_list_take(list, 0, &mut taken), C2RS_OK);
        assert_eq!(data(taken), before, "moved, not copied");
        assert!(in_place(taken), "the list no longer holds it");
        assert_eq!(c2rs_tensor_list_len(list), 2);
        assert_eq!(c2rs_tensor_list_get(list, 0, &mut entry), C2RS_OK);
        let mut n = 1i64;
        assert_eq!(
            crate::ffi::tensor::c2rs_tensor_numel(entry, &mut n),
            C2RS_OK
        );
        assert_eq!(n, 0);
        let mut dtype = 0;
        assert_eq!(
            crate::ffi::tensor::c2rs_tensor_dtype(entry, &mut dtype),
            C2RS_OK
        );
        assert_eq!(dtype, C2RS_DTYPE_FLOAT);
        let mut other = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_list_take(list, 2, &mut other),
            C2RS_INVALID_ARGUMENT
        );
        assert!(other.is_null());
        assert_eq!(
            c2rs_tensor_list_take(std::ptr::null_mut(), 0, &mut other),
            C2RS_INVALID_ARGUMENT
        );
        // The taken tensor outlives its list.
        c2rs_tensor_list_free(list);
        // SAFETY: two readable i32 of the live taken tensor.
        assert_eq!(
            unsafe { std::slice::from_raw_parts(data(taken) as *const i32, 2) },
            &[1, 2]
        );
        c2rs_tensor_free(taken);
    }
}
