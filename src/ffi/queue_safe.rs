//! BlobsQueues for hosts that keep no caffe2rs workspace, and the handle-level forms of the
//! "safe" queue operators: SafeEnqueueBlobs, SafeDequeueBlobs (with `num_records`) and
//! WeightedSampleDequeueBlobs, with the operators' checks, end-of-stream flag and messages.
//! A queue made here can live in any blob (a host's, through `c2rs_object_from_blobs_queue`, or
//! a workspace's, `c2rs_workspace_put_object_n`), where the queue operators use it.
//!
//! Kept apart from `queue.rs` (the workspace-held queues and the plain enqueue/dequeue calls):
//! it only builds on the queue module's public record functions.

use std::ffi::c_char;
use std::sync::Arc;

use super::guard::{array_arg, ffi_fn, name_arg, out_param};
use super::handle::{
    arc_clone, arc_into_handle, arc_ref, c2rs_blobs_queue, c2rs_context, c2rs_tensor,
    c2rs_workspace, handle_mut, handle_ref, into_handle, take_handle,
};
use super::object::{ObjectValue, c2rs_object, object_native};
use crate::context::{Context, CpuContext, DeviceSpec};
use crate::error::{C2rsError, Result};
use crate::ops::queue_ops::{
    BlobQueue, new_blob_queue, read_record, safe_dequeue_many, write_record,
};
use crate::queue::Outcome;
use crate::tensor::Tensor;
use crate::tensor::rows::concat_rows;
use crate::workspace::{Blob, BlobContent, NativeObject};

/// `count` field names as strings (NULL with `count == 0` is no names).
fn field_names(names: *const *const c_char, count: usize) -> Result<Vec<String>> {
    array_arg(names, count, "field_names")?
        .iter()
        .enumerate()
        .map(|(i, &p)| Ok(name_arg(p, &format!("field_names[{i}]"))?.to_string()))
        .collect()
}

/// A BlobsQueue that belongs to no workspace: its slots live in the queue only (no slot blob
/// names anywhere), so two queues of one name never share slots. `name`
/// labels its stats (`<name>/queue_balance` …) and messages; `field_names` (`n_fields` of
/// them, or none) label the per-column byte stats as CreateBlobsQueue's `field_names` do.
/// `strict`: writes fail after close, TensorFlow-style (default Caffe2 semantics otherwise).
///
/// Ownership: the strings are copied; the caller owns `*out` (`c2rs_blobs_queue_free`). To use
/// it from operators, put it in a blob (`c2rs_object_from_blobs_queue`,
/// `c2rs_workspace_put_object_n`).
/// Thread safety: safe from any thread; queues are fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `name` or `out` is NULL, a string is not UTF-8
/// or `field_names` is NULL with `n_fields > 0`; C2RS_ENFORCE_NOT_MET when `capacity` or
/// `num_blobs` is < 1 ("capacity must be >= 1, got <c>") or `n_fields` is neither 0 nor
/// `num_blobs` ("Wrong number of fieldNames provided.").
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_new(
    name: *const c_char,
    capacity: i64,
    num_blobs: i64,
    field_names_: *const *const c_char,
    n_fields: usize,
    strict: bool,
    out: *mut *mut c2rs_blobs_queue,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_new", {
        let out = out_param(out, "out")?;
        let name = name_arg(name, "name")?;
        let fields = field_names(field_names_, n_fields)?;
        let queue = BlobQueue::new(name, capacity, num_blobs, &fields, strict)?;
        out.set(arc_into_handle(Arc::new(queue)));
        Ok(())
    })
}

/// `c2rs_blobs_queue_create` with CreateBlobsQueue's full argument set: the queue in blob
/// `name` of `ws` (with Caffe2's slot names as `c2rs_blobs_queue_create` makes them),
/// `enforce_unique_name` (refuse when a slot name is already visible,
/// "Queue internal blob already exists: <slot>"; the workspace is left unchanged) and
/// `field_names` (`n_fields` labels for the per-column stats, or none).
///
/// Ownership: the strings are copied; the caller owns `*out` (`c2rs_blobs_queue_free`); blob
/// `name` holds its own reference.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or a string is not UTF-8;
/// C2RS_ENFORCE_NOT_MET for a capacity or num_blobs < 1, a wrong number of field names or an
/// existing slot name with `enforce_unique_name`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_create_with_fields(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    capacity: i64,
    num_blobs: i64,
    enforce_unique_name: bool,
    field_names_: *const *const c_char,
    n_fields: usize,
    strict: bool,
    out: *mut *mut c2rs_blobs_queue,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_create_with_fields", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let fields = field_names(field_names_, n_fields)?;
        let queue = Arc::new(new_blob_queue(
            ws,
            name,
            capacity,
            num_blobs,
            enforce_unique_name,
            &fields,
            strict,
        )?);
        let blob = ws
            .create_blob(name)
            .ok_or_else(|| C2rsError::not_found(format!("blob {name} cannot be created")))?;
        blob.set_native(Arc::clone(&queue));
        out.set(arc_into_handle(queue));
        Ok(())
    })
}

/// An object sharing queue `q` (to keep it in a host blob, or put it in a workspace blob with
/// `c2rs_workspace_put_object_n`, where the queue operators find it).
///
/// Ownership: `q` is shared, not consumed; the caller owns `*out` (`c2rs_object_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `q` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_object_from_blobs_queue(
    q: *const c2rs_blobs_queue,
    out: *mut *mut c2rs_object,
) -> i32 {
    ffi_fn!("c2rs_object_from_blobs_queue", {
        let out = out_param(out, "out")?;
        let q: Arc<BlobQueue> = arc_clone(q, "q")?;
        out.set(into_handle(ObjectValue::new(BlobContent::Native(
            NativeObject::new(q),
        ))?));
        Ok(())
    })
}

/// The BlobsQueue `obj` holds (as made by CreateBlobsQueue), as a queue handle.
///
/// Ownership: the caller owns `*out` (`c2rs_blobs_queue_free`), one more reference.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `obj` or `out` is NULL; C2RS_TYPE_MISMATCH when
/// `obj` holds something else.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_object_blobs_queue(
    obj: *const c2rs_object,
    out: *mut *mut c2rs_blobs_queue,
) -> i32 {
    ffi_fn!("c2rs_object_blobs_queue", {
        let out = out_param(out, "out")?;
        out.set(arc_into_handle(object_native::<BlobQueue>(handle_ref(
            obj, "obj",
        )?)?));
        Ok(())
    })
}

fn check_count(what: &str, n: usize, q: &BlobQueue) -> Result<()> {
    if n != q.num_blobs() {
        return Err(C2rsError::invalid_argument(format!(
            "`{what}` has {n} entries, the queue has {} blobs per record",
            q.num_blobs()
        )));
    }
    Ok(())
}

/// SafeEnqueueBlobs for host tensors: writes one record of `n` tensors (`n` = num_blobs),
/// blocking while the queue is full; never fails for a closed queue, it reports it: `*stopped`
/// is true when the record could not go in (the queue is closed and full, or strict and
/// closed), as the operator's status output.
///
/// Ownership: when the record goes in (`*stopped` false) every `tensors[i]` is consumed (moved
/// into the queue, no copy; do not use or free them). When `*stopped` is true, or on an error,
/// the caller still owns them all.
/// Thread safety: fully thread-safe.
/// Returns: C2RS_OK (also when stopped); C2RS_INVALID_ARGUMENT when `q`, `tensors` (with
/// `n > 0`), an entry or `stopped` is NULL, or `n` is not the queue's num_blobs.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_safe_enqueue(
    q: *const c2rs_blobs_queue,
    tensors: *const *mut c2rs_tensor,
    n: usize,
    stopped: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_safe_enqueue", {
        let stopped = out_param(stopped, "stopped")?;
        let q = arc_ref(q, "q")?;
        let handles = array_arg(tensors, n, "tensors")?;
        check_count("tensors", n, q)?;
        // Shallow clones (shared storage) go in; the handles are freed only once the record is
        // in, so a refused record leaves the caller's tensors untouched.
        let scratch: Vec<Arc<Blob>> = handles
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let t = handle_ref(h, &format!("tensors[{i}]"))?.clone();
                Ok(Arc::new(Blob::with_content(BlobContent::Tensor(t))))
            })
            .collect::<Result<_>>()?;
        let done = write_record(q, &scratch)? == Outcome::Done;
        drop(scratch); // what the slots held before (recycled content) goes here
        if done {
            for &h in handles {
                drop(take_handle(h, "tensors")?);
            }
        }
        stopped.set(!done);
        Ok(())
    })
}

/// Moves the tensors of `blobs` into fresh handles in `out` (all or none).
fn tensors_out(blobs: &[Arc<Blob>], what: &str) -> Result<Vec<Tensor>> {
    blobs
        .iter()
        .enumerate()
        .map(|(c, b)| match b.take() {
            BlobContent::Tensor(t) => Ok(t),
            other => Err(C2rsError::type_mismatch(format!(
                "{what}: column {c} holds {}, not a tensor",
                other.type_name()
            ))),
        })
        .collect()
}

/// SafeDequeueBlobs for host threads: reads `num_records` records (1 = one record, moved out
/// without a copy) into `out[0..n]` (`n` = num_blobs). With `num_records` N > 1 the records are
/// read one at a time (other consumers may interleave) and concatenated along dim 0 (a copy),
/// each checked as the operator checks them ("SafeDequeueBlobs: record <k> column <c> has shape
/// …/…, expected …/…"; a failing record stays queued). `*stopped` is true when the first read
/// found the queue closed and empty (end of stream; `out` stays NULL); a later record missing
/// gives the partial batch with `*stopped` false, as the operator does.
///
/// Ownership: on C2RS_OK with `*stopped` false the caller owns `out[0..n]` (`c2rs_tensor_free`).
/// Thread safety: fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `q`, `out` or `stopped` is NULL, `n` is not the
/// queue's num_blobs or `num_records` is 0; C2RS_ENFORCE_NOT_MET for a record that does not
/// fit the batch (0-D column or other inner dims/dtype); C2RS_TYPE_MISMATCH when a column of
/// the record is not a tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_safe_dequeue(
    q: *const c2rs_blobs_queue,
    num_records: usize,
    out: *mut *mut c2rs_tensor,
    n: usize,
    stopped: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_safe_dequeue", {
        let stopped = out_param(stopped, "stopped")?;
        let q = arc_ref(q, "q")?;
        if out.is_null() {
            return Err(super::guard::null_arg("out"));
        }
        // SAFETY: non-NULL; the caller passes `n` writable `c2rs_tensor*` slots (C contract).
        let out = unsafe { std::slice::from_raw_parts_mut(out, n) };
        out.fill(std::ptr::null_mut());
        check_count("out", n, q)?;
        if num_records == 0 {
            return Err(C2rsError::invalid_argument(
                "`num_records` must be at least 1",
            ));
        }
        let columns: Vec<Tensor> = if num_records == 1 {
            let scratch: Vec<Arc<Blob>> = (0..n).map(|_| Arc::new(Blob::new())).collect();
            if read_record(q, &scratch, None)? != Outcome::Done {
                stopped.set(true);
                return Ok(());
            }
            tensors_out(&scratch, "c2rs_blobs_queue_safe_dequeue")?
        } else {
            let (records, stop) = safe_dequeue_many(q, num_records)?;
            if records.is_empty() {
                stopped.set(stop);
                return Ok(());
            }
            (0..n)
                .map(|c| {
                    let column: Vec<&Tensor> = records.iter().map(|r| &r[c]).collect();
                    concat_rows(&column)
                })
                .collect::<Result<_>>()?
        };
        for (slot, t) in out.iter_mut().zip(columns) {
            *slot = into_handle(t);
        }
        Ok(())
    })
}

/// WeightedSampleDequeueBlobs for host threads: picks queue i of `queues` (`n_queues`) with
/// probability `weights[i] / sum` (`weights` NULL = all equal), drawing from `ctx`'s generator
/// (a CPU context: MT19937 seeded by its device option's random_seed, so a seed gives a
/// reproducible sequence; NULL = a fresh, randomly seeded one per call), and reads one record
/// from that queue only (blocking; no fallback to another queue), moved into `out[0..n]` (`n` =
/// that queue's num_blobs). `*chosen` is the queue's index; `*stopped` is true when the chosen
/// queue is closed and empty (`out` stays NULL).
///
/// Ownership: on C2RS_OK with `*stopped` false the caller owns `out[0..n]`; the queues and
/// weights are only read.
/// Thread safety: fully thread-safe; `ctx` must not be used by another thread meanwhile.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a required pointer is NULL, `n_queues` is 0,
/// `n` differs from the chosen queue's num_blobs, or `ctx` is a CUDA context;
/// C2RS_ENFORCE_NOT_MET when the weights do not sum to a positive value ("Sum of weights must be
/// positive") or one is negative ("Each probability must be non-negative").
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn c2rs_blobs_queue_weighted_sample_dequeue(
    queues: *const *const c2rs_blobs_queue,
    n_queues: usize,
    weights: *const f32,
    ctx: *mut c2rs_context,
    out: *mut *mut c2rs_tensor,
    n: usize,
    chosen: *mut usize,
    stopped: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_weighted_sample_dequeue", {
        let chosen = out_param(chosen, "chosen")?;
        let stopped = out_param(stopped, "stopped")?;
        if out.is_null() {
            return Err(super::guard::null_arg("out"));
        }
        // SAFETY: non-NULL; the caller passes `n` writable `c2rs_tensor*` slots (C contract).
        let out = unsafe { std::slice::from_raw_parts_mut(out, n) };
        out.fill(std::ptr::null_mut());
        let handles = array_arg(queues, n_queues, "queues")?;
        if handles.is_empty() {
            return Err(C2rsError::invalid_argument("`n_queues` must be at least 1"));
        }
        let queues: Vec<&BlobQueue> = handles
            .iter()
            .enumerate()
            .map(|(i, &h)| arc_ref(h, &format!("queues[{i}]")))
            .collect::<Result<_>>()?;
        let weights = if weights.is_null() {
            vec![1.0f32; queues.len()]
        } else {
            array_arg(weights, queues.len(), "weights")?.to_vec()
        };
        let cumulative = cumulative_weights(&weights)?;
        let u = match ctx.is_null() {
            true => CpuContext::new(&DeviceSpec::default())?
                .rand_generator()
                .next_u32(),
            false => match handle_mut(ctx, "ctx")? {
                Context::Cpu(c) => c.rand_generator().next_u32(),
                Context::Cuda(_) => {
                    return Err(C2rsError::invalid_argument(
                        "argument `ctx` is a CUDA context; the draw needs a CPU context",
                    ));
                }
            },
        };
        let r = (f64::from(u) / 4_294_967_296.0) as f32;
        let idx = cumulative
            .iter()
            .position(|&c| c >= r)
            .unwrap_or(cumulative.len() - 1);
        let q = queues[idx];
        check_count("out", n, q)?;
        chosen.set(idx);
        let scratch: Vec<Arc<Blob>> = (0..n).map(|_| Arc::new(Blob::new())).collect();
        if read_record(q, &scratch, None)? != Outcome::Done {
            stopped.set(true);
            return Ok(());
        }
        for (slot, t) in out.iter_mut().zip(tensors_out(
            &scratch,
            "c2rs_blobs_queue_weighted_sample_dequeue",
        )?) {
            *slot = into_handle(t);
        }
        Ok(())
    })
}

/// WeightedSampleDequeueBlobs's cumulative probabilities: normalised weights summed, the last
/// forced to 1.0001 so every draw in [0, 1) finds a queue.
fn cumulative_weights(weights: &[f32]) -> Result<Vec<f32>> {
    let sum: f32 = weights.iter().sum();
    if sum <= 0.0 || sum.is_nan() {
        return Err(C2rsError::enforce("Sum of weights must be positive"));
    }
    let mut acc = 0.0f32;
    let mut cumulative = Vec::with_capacity(weights.len());
    for w in weights {
        let p = w / sum;
        if p < 0.0 {
            return Err(C2rsError::enforce("Each probability must be non-negative"));
        }
        acc += p;
        cumulative.push(acc);
    }
    if let Some(last) = cumulative.last_mut() {
        *last = 1.0001;
    }
    Ok(cumulative)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::queue::{c2rs_blobs_queue_close, c2rs_blobs_queue_free, c2rs_blobs_queue_info};
    use crate::ffi::status::*;
    use crate::ffi::tensor::{C2RS_DTYPE_INT32, c2rs_tensor_free, c2rs_tensor_new};

    fn queue(capacity: i64, num_blobs: i64) -> *mut c2rs_blobs_queue {
        let mut q = std::ptr::null_mut();
        assert_eq!(
            c2rs_blobs_queue_new(
                c"q".as_ptr(),
                capacity,
                num_blobs,
                std::ptr::null(),
                0,
                false,
                &mut q
            ),
            C2RS_OK
        );
        q
    }

    fn int_tensor(values: &[i32], dims: &[i64]) -> *mut c2rs_tensor {
        let mut t = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_new(C2RS_DTYPE_INT32, dims.as_ptr(), dims.len(), &mut t),
            C2RS_OK
        );
        handle_mut(t, "t")
            .unwrap()
            .typed_mut::<i32>()
            .unwrap()
            .copy_from_slice(values);
        t
    }

    fn values(t: *mut c2rs_tensor) -> Vec<i32> {
        let v = handle_ref(t, "t").unwrap().typed::<i32>().unwrap().to_vec();
        c2rs_tensor_free(t);
        v
    }

    #[test]
    fn a_workspace_free_queue_checks_sizes_and_field_names() {
        let mut q = std::ptr::null_mut();
        assert_eq!(
            c2rs_blobs_queue_new(c"q".as_ptr(), 0, 1, std::ptr::null(), 0, false, &mut q),
            C2RS_ENFORCE_NOT_MET
        );
        let names = [c"a".as_ptr(), c"b".as_ptr()];
        assert_eq!(
            c2rs_blobs_queue_new(c"q".as_ptr(), 2, 3, names.as_ptr(), 2, false, &mut q),
            C2RS_ENFORCE_NOT_MET,
            "Wrong number of fieldNames provided."
        );
        assert_eq!(
            c2rs_blobs_queue_new(c"q".as_ptr(), 2, 2, names.as_ptr(), 2, false, &mut q),
            C2RS_OK
        );
        let (mut size, mut cap, mut nb, mut closed) = (9, 0, 0, true);
        assert_eq!(
            c2rs_blobs_queue_info(q, &mut size, &mut cap, &mut nb, &mut closed),
            C2RS_OK
        );
        assert_eq!((size, cap, nb, closed), (0, 2, 2, false));
        c2rs_blobs_queue_free(q);
        assert_eq!(
            c2rs_blobs_queue_new(std::ptr::null(), 1, 1, std::ptr::null(), 0, false, &mut q),
            C2RS_INVALID_ARGUMENT
        );
    }

    #[test]
    fn safe_enqueue_reports_a_closed_full_queue_and_keeps_the_tensors() {
        let q = queue(1, 1);
        let a = int_tensor(&[1], &[1]);
        let mut stopped = true;
        assert_eq!(
            c2rs_blobs_queue_safe_enqueue(q, &a, 1, &mut stopped),
            C2RS_OK
        );
        assert!(!stopped, "went in; `a` is consumed");
        assert_eq!(c2rs_blobs_queue_close(q), C2RS_OK);
        let b = int_tensor(&[2], &[1]);
        assert_eq!(
            c2rs_blobs_queue_safe_enqueue(q, &b, 1, &mut stopped),
            C2RS_OK
        );
        assert!(stopped, "closed and full");
        assert_eq!(values(b), [2], "still the caller's");
        // Drain, then the stream ends.
        let mut out = [std::ptr::null_mut()];
        assert_eq!(
            c2rs_blobs_queue_safe_dequeue(q, 1, out.as_mut_ptr(), 1, &mut stopped),
            C2RS_OK
        );
        assert!(!stopped);
        assert_eq!(values(out[0]), [1]);
        assert_eq!(
            c2rs_blobs_queue_safe_dequeue(q, 1, out.as_mut_ptr(), 1, &mut stopped),
            C2RS_OK
        );
        assert!(stopped && out[0].is_null());
        assert_eq!(
            c2rs_blobs_queue_safe_enqueue(q, &b, 2, &mut stopped),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_blobs_queue_free(q);
    }

    // Ported from pipeline_test.py test_dequeue_many: 17 records through capacity 11,
    // num_records 3 -> 6 batches, the last with 2 records and status false.
    #[test]
    fn safe_dequeue_many_batches_records_and_ends_with_a_partial_batch() {
        let q = queue(11, 1);
        let producer = {
            let q = q as usize;
            std::thread::spawn(move || {
                let q = q as *const c2rs_blobs_queue;
                for i in 0..17 {
                    let t = int_tensor(&[i, i], &[1, 2]);
                    let mut stopped = true;
                    assert_eq!(
                        c2rs_blobs_queue_safe_enqueue(q, &t, 1, &mut stopped),
                        C2RS_OK
                    );
                    assert!(!stopped);
                }
                assert_eq!(c2rs_blobs_queue_close(q), C2RS_OK);
            })
        };
        let mut got = Vec::new();
        loop {
            let mut out = [std::ptr::null_mut()];
            let mut stopped = false;
            assert_eq!(
                c2rs_blobs_queue_safe_dequeue(q, 3, out.as_mut_ptr(), 1, &mut stopped),
                C2RS_OK
            );
            if stopped {
                break;
            }
            got.push(values(out[0]));
        }
        producer.join().unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[5], [15, 15, 16, 16]);
        assert_eq!(got[0], [0, 0, 1, 1, 2, 2]);
        c2rs_blobs_queue_free(q);
    }

    #[test]
    fn safe_dequeue_many_refuses_a_mismatched_record_and_leaves_it_queued() {
        let q = queue(4, 1);
        let mut stopped = false;
        for (v, dims) in [(1, [1i64, 2]), (2, [1, 3])] {
            let t = int_tensor(&vec![v; dims[1] as usize], &dims);
            assert_eq!(
                c2rs_blobs_queue_safe_enqueue(q, &t, 1, &mut stopped),
                C2RS_OK
            );
        }
        let mut out = [std::ptr::null_mut()];
        assert_eq!(
            c2rs_blobs_queue_safe_dequeue(q, 2, out.as_mut_ptr(), 1, &mut stopped),
            C2RS_ENFORCE_NOT_MET
        );
        let mut size = 0;
        assert_eq!(
            c2rs_blobs_queue_info(
                q,
                &mut size,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut()
            ),
            C2RS_OK
        );
        assert_eq!(size, 1, "the mismatched record stays queued");
        assert_eq!(
            c2rs_blobs_queue_safe_dequeue(q, 0, out.as_mut_ptr(), 1, &mut stopped),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_blobs_queue_free(q);
    }

    #[test]
    fn weighted_sample_picks_by_weight_reproducibly_and_reports_the_choice() {
        let qs = [queue(8, 1), queue(8, 1)];
        let mut stopped = false;
        for (k, &q) in qs.iter().enumerate() {
            for _ in 0..8 {
                let t = int_tensor(&[k as i32], &[1]);
                assert_eq!(
                    c2rs_blobs_queue_safe_enqueue(q, &t, 1, &mut stopped),
                    C2RS_OK
                );
            }
        }
        // Weight 0 on queue 0: every draw picks queue 1.
        let weights = [0.0f32, 1.0];
        let handles = [qs[0] as *const c2rs_blobs_queue, qs[1] as *const _];
        for _ in 0..3 {
            let (mut out, mut chosen) = ([std::ptr::null_mut()], 9usize);
            assert_eq!(
                c2rs_blobs_queue_weighted_sample_dequeue(
                    handles.as_ptr(),
                    2,
                    weights.as_ptr(),
                    std::ptr::null_mut(),
                    out.as_mut_ptr(),
                    1,
                    &mut chosen,
                    &mut stopped
                ),
                C2RS_OK
            );
            assert_eq!((chosen, stopped), (1, false));
            assert_eq!(values(out[0]), [1]);
        }
        let bad = [-1.0f32, 0.5];
        let (mut out, mut chosen) = ([std::ptr::null_mut()], 0usize);
        assert_eq!(
            c2rs_blobs_queue_weighted_sample_dequeue(
                handles.as_ptr(),
                2,
                bad.as_ptr(),
                std::ptr::null_mut(),
                out.as_mut_ptr(),
                1,
                &mut chosen,
                &mut stopped
            ),
            C2RS_ENFORCE_NOT_MET
        );
        // The chosen queue closed: its 5 records drain, then the draw reports stopped.
        assert_eq!(c2rs_blobs_queue_close(qs[1]), C2RS_OK);
        for _ in 0..6 {
            let (mut out, mut chosen) = ([std::ptr::null_mut()], 0usize);
            assert_eq!(
                c2rs_blobs_queue_weighted_sample_dequeue(
                    handles.as_ptr(),
                    2,
                    weights.as_ptr(),
                    std::ptr::null_mut(),
                    out.as_mut_ptr(),
                    1,
                    &mut chosen,
                    &mut stopped
                ),
                C2RS_OK
            );
            if out[0].is_null() {
                break;
            }
            c2rs_tensor_free(out[0]);
        }
        assert!(stopped);
        for q in qs {
            c2rs_blobs_queue_free(q);
        }
    }
}
