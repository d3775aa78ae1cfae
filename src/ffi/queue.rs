//! Queues for host threads: a `BlobsQueue` or `RebatchingQueue` held in a workspace blob,
//! driven directly with tensor handles (blocking, try and timeout variants), closed, sized and
//! inspected. Operators (`EnqueueBlobs`, …) and host calls may share one queue.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Instant;

use super::guard::{array_arg, ffi_fn, ffi_fn_or, name_arg, out_param};
use super::handle::{
    arc_free, arc_into_handle, arc_ref, c2rs_blobs_queue, c2rs_buffer, c2rs_rebatching_queue,
    c2rs_tensor, c2rs_workspace, handle_ref, into_handle,
};
use super::tensor_handles::{free_tensor_handle, tensor_handle, tensor_handle_into_box};
use crate::error::{C2rsError, Result};
use crate::ops::queue_ops::{BlobQueue, deadline_after, new_blob_queue};
use crate::queue::{Outcome, RebatchingQueue, Slot};
use crate::tensor::Tensor;
use crate::workspace::{BlobNative, Workspace};

fn queue_blob<T: BlobNative>(ws: &Workspace, name: &str) -> Result<Arc<T>> {
    let blob = ws
        .get_blob(name)
        .ok_or_else(|| C2rsError::not_found(format!("blob {name} does not exist")))?;
    blob.native::<T>()
        .map_err(|e| C2rsError::new(e.kind(), format!("blob {name}: {}", e.message())))
}

fn check_count(what: &str, n: usize, want: usize) -> Result<()> {
    if n != want {
        return Err(C2rsError::invalid_argument(format!(
            "`{what}` has {n} entries, the queue has {want} blobs per record"
        )));
    }
    Ok(())
}

fn outcome_status(outcome: Outcome, what: &str) -> Result<()> {
    match outcome {
        Outcome::Done => Ok(()),
        Outcome::Closed => Err(C2rsError::closed(format!("{what}: the queue is closed"))),
        Outcome::TimedOut => Err(C2rsError::timeout(format!("{what}: timed out"))),
        Outcome::Full => Err(C2rsError::timeout(format!("{what}: the queue is full"))),
    }
}

/// Moves the tensors behind `handles` into the record's slots: each handle's own allocation
/// goes in as one pointer (`Slot::Tensor`), nothing is copied or allocated. The handles are
/// consumed only when the record goes in.
fn enqueue_handles(
    q: &BlobQueue,
    handles: &[*mut c2rs_tensor],
    try_only: bool,
    what: &str,
) -> Result<()> {
    check_count("tensors", handles.len(), q.num_blobs())?;
    if let Some(i) = handles.iter().position(|h| h.is_null()) {
        return Err(C2rsError::invalid_argument(format!(
            "`tensors[{i}]` is NULL"
        )));
    }
    let mut moved = false;
    let put = |row: &mut [Slot]| {
        // The queue calls `put` once, for the write that succeeds; the flag makes a second
        // call harmless instead of moving the handles twice.
        if std::mem::replace(&mut moved, true) {
            return;
        }
        for (slot, &h) in row.iter_mut().zip(handles) {
            // SAFETY: `h` is non-NULL (checked above) and, by the C contract, a live tensor
            // handle the caller hands over on success; this runs only for the write that puts
            // the record in, once, so each handle is consumed exactly once.
            let tensor = unsafe { tensor_handle_into_box(h) };
            // The slot's old content (empty, or an operator reader's recycled content) drops.
            slot.put_tensor(tensor);
        }
    };
    let outcome = if try_only {
        q.try_write(put)?
    } else {
        q.blocking_write(put)?
    };
    outcome_status(outcome, what)
}

/// Takes one record's tensors out of the slots as handles: a host-enqueued tensor leaves in
/// its own handle allocation (no allocation), an operator's one gets a cached handle. A record
/// with a column that is not a tensor is refused while claimed, so it stays queued, whole.
fn dequeue_handles(
    q: &BlobQueue,
    out: *mut *mut c2rs_tensor,
    n: usize,
    deadline: Option<Instant>,
    what: &str,
) -> Result<()> {
    check_count("out", n, q.num_blobs())?;
    if out.is_null() {
        return Err(super::guard::null_arg("out"));
    }
    // SAFETY: non-NULL; the caller passes `n` writable `c2rs_tensor*` slots (C contract).
    let out = unsafe { std::slice::from_raw_parts_mut(out, n) };
    for o in out.iter_mut() {
        *o = std::ptr::null_mut();
    }
    let outcome = q.blocking_read(
        deadline,
        |row| match row.iter().position(|slot| slot.tensor().is_none()) {
            None => Ok(()),
            Some(c) => Err(C2rsError::type_mismatch(format!(
                "record column {c} holds a {}, not a tensor; it stays queued",
                row[c].type_name()
            ))),
        },
        |row| {
            for (slot, o) in row.iter_mut().zip(out.iter_mut()) {
                // Every column is a tensor: the check above ran under the same claim.
                *o = slot
                    .take_tensor(|t| tensor_handle(t) as *mut Tensor)
                    .map_or(std::ptr::null_mut(), |p| p as *mut c2rs_tensor);
            }
        },
    )?;
    outcome_status(outcome, what)?;
    if out.iter().any(|h| h.is_null()) {
        for h in out.iter_mut() {
            free_tensor_handle(std::mem::replace(h, std::ptr::null_mut()));
        }
        return Err(C2rsError::internal(
            "a checked record column was not a tensor",
        ));
    }
    Ok(())
}

/// Creates a BlobsQueue in blob `name` of `ws` (as the `CreateBlobsQueue` operator: slot blobs
/// `<name>_<i>_<j>` when `capacity × num_blobs` is at most 4096, private slots made as records
/// arrive otherwise, so a huge capacity allocates nothing up front; Caffe2 close semantics
/// unless `strict`, where any write after close fails) and returns a handle to it. An existing
/// queue in `name` is replaced (it closes when unused).
///
/// Ownership: on success the caller owns `*out` (`c2rs_blobs_queue_free`); the workspace blob
/// holds its own reference.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_ENFORCE_NOT_MET when `capacity` or `num_blobs` is < 1.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_create(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    capacity: i64,
    num_blobs: i64,
    strict: bool,
    out: *mut *mut c2rs_blobs_queue,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_create", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let queue = Arc::new(new_blob_queue(
            ws,
            name,
            capacity,
            num_blobs,
            false,
            &[],
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

/// The BlobsQueue held in blob `name` of `ws` (made by `CreateBlobsQueue` or
/// `c2rs_blobs_queue_create`).
///
/// Ownership: on success the caller owns `*out` (`c2rs_blobs_queue_free`); the queue stays
/// alive while any handle, blob or operator holds it.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL; C2RS_NOT_FOUND when the
/// blob does not exist; C2RS_TYPE_MISMATCH when it holds no BlobsQueue.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_from_workspace(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut c2rs_blobs_queue,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_from_workspace", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(arc_into_handle(queue_blob::<BlobQueue>(
            ws,
            name_arg(name, "name")?,
        )?));
        Ok(())
    })
}

/// Releases a queue handle (the queue itself lives on while a blob or operator holds it).
///
/// Ownership: `q` is released; NULL is a no-op.
/// Thread safety: no other call may use this handle concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_blobs_queue_free(q: *mut c2rs_blobs_queue) {
    ffi_fn_or!("c2rs_blobs_queue_free", (), {
        arc_free(q);
        Ok(())
    })
}

/// Enqueues one record of `n` tensors (`n` = the queue's `num_blobs`), blocking while the
/// queue is full. The tensors are moved into the queue's slot blobs (no copy).
///
/// Ownership: on C2RS_OK every `tensors[i]` is consumed (do not free them); on any other
/// status the caller still owns them.
/// Thread safety: queues are fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `n` is not `num_blobs`;
/// C2RS_CLOSED when the queue is closed and full (strict queue: closed).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_enqueue(
    q: *const c2rs_blobs_queue,
    tensors: *const *mut c2rs_tensor,
    n: usize,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_enqueue", {
        let q = arc_ref(q, "q")?;
        let handles = array_arg(tensors, n, "tensors")?;
        enqueue_handles(q, handles, false, "enqueue")
    })
}

/// Enqueues one record if there is room now; never blocks. Ignores close (as Caffe2's
/// `tryWrite`) unless the queue is strict.
///
/// Ownership: on C2RS_OK every `tensors[i]` is consumed; otherwise the caller still owns them.
/// Thread safety: queues are fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT as `c2rs_blobs_queue_enqueue`; C2RS_TIMEOUT when
/// the queue is full; C2RS_CLOSED when a strict queue is closed.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_try_enqueue(
    q: *const c2rs_blobs_queue,
    tensors: *const *mut c2rs_tensor,
    n: usize,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_try_enqueue", {
        let q = arc_ref(q, "q")?;
        let handles = array_arg(tensors, n, "tensors")?;
        enqueue_handles(q, handles, true, "try_enqueue")
    })
}

/// Dequeues one record into `out[0..n]` (`n` = `num_blobs`), blocking until a record arrives
/// or the queue is closed and empty. Every column must hold a tensor.
///
/// Ownership: on success the caller owns each `out[i]` (`c2rs_tensor_free`); `out[i]` are NULL
/// otherwise.
/// Thread safety: queues are fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `n` is not `num_blobs`;
/// C2RS_CLOSED when closed and empty; C2RS_TYPE_MISMATCH when a column is not a tensor (the
/// record stays queued).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_dequeue(
    q: *const c2rs_blobs_queue,
    out: *mut *mut c2rs_tensor,
    n: usize,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_dequeue", {
        dequeue_handles(arc_ref(q, "q")?, out, n, None, "dequeue")
    })
}

/// As `c2rs_blobs_queue_dequeue`, waiting at most `timeout_secs` (full precision; `<= 0`
/// waits forever). A record that arrives by the time the waiter re-checks is still taken.
///
/// Ownership: as `c2rs_blobs_queue_dequeue`.
/// Thread safety: queues are fully thread-safe.
/// Returns: as `c2rs_blobs_queue_dequeue`, plus C2RS_TIMEOUT when the time ran out.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_dequeue_timeout(
    q: *const c2rs_blobs_queue,
    timeout_secs: f64,
    out: *mut *mut c2rs_tensor,
    n: usize,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_dequeue_timeout", {
        dequeue_handles(
            arc_ref(q, "q")?,
            out,
            n,
            deadline_after(timeout_secs),
            "dequeue_timeout",
        )
    })
}

/// Dequeues one record if one is queued now; never waits.
///
/// Ownership: as `c2rs_blobs_queue_dequeue`.
/// Thread safety: queues are fully thread-safe.
/// Returns: as `c2rs_blobs_queue_dequeue`, plus C2RS_TIMEOUT when the queue is empty and open.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_try_dequeue(
    q: *const c2rs_blobs_queue,
    out: *mut *mut c2rs_tensor,
    n: usize,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_try_dequeue", {
        dequeue_handles(
            arc_ref(q, "q")?,
            out,
            n,
            Some(Instant::now()),
            "try_dequeue",
        )
    })
}

/// Closes the queue (idempotent): every blocked reader and writer wakes at once; readers drain
/// what is left, writers fail only when the queue is full (strict: always).
///
/// Thread safety: queues are fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `q` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_close(q: *const c2rs_blobs_queue) -> i32 {
    ffi_fn!("c2rs_blobs_queue_close", {
        arc_ref(q, "q")?.close();
        Ok(())
    })
}

/// Queue facts: records queued now, capacity, blobs per record, whether closed. Any out
/// pointer may be NULL to skip it.
///
/// Thread safety: queues are fully thread-safe (the size may change right after).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `q` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_info(
    q: *const c2rs_blobs_queue,
    size: *mut usize,
    capacity: *mut usize,
    num_blobs: *mut usize,
    closed: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_info", {
        let q = arc_ref(q, "q")?;
        if !size.is_null() {
            out_param(size, "size")?.set(q.size());
        }
        if !capacity.is_null() {
            out_param(capacity, "capacity")?.set(q.capacity());
        }
        if !num_blobs.is_null() {
            out_param(num_blobs, "num_blobs")?.set(q.num_blobs());
        }
        if !closed.is_null() {
            out_param(closed, "closed")?.set(q.is_closed());
        }
        Ok(())
    })
}

/// The queue's stats as a JSON object under Caffe2's keys (`<name>/queue_balance`,
/// `<name>/queue_dequeued_records`, `<name>/queue_dequeued_bytes[/<field>]`,
/// `<name>/read_time_ns/sum|count`, `<name>/write_time_ns/sum|count`), integer values.
/// Unlike Caffe2, the time sums add only the time of calls that had to wait (from their first
/// attempt that found the queue empty, or full, to the end of the call); a call that found the
/// queue ready adds 0 but still counts, because two clock reads would cost more than the
/// record's own path. `write_time_ns/count` counts every successful write (try-writes too) and
/// every failed blocking one; a read refused by its check (a non-tensor column) counts as a
/// read call. Counters are read one by one: under concurrent traffic a call that just finished
/// may show in one counter and not yet in another.
///
/// Ownership: on success the caller owns `*out` (`c2rs_buffer_free`).
/// Thread safety: queues are fully thread-safe (counters are read one by one).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blobs_queue_stats(
    q: *const c2rs_blobs_queue,
    out: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_blobs_queue_stats", {
        let out = out_param(out, "out")?;
        let q = arc_ref(q, "q")?;
        let body: Vec<String> = q
            .stats()
            .keyed()
            .into_iter()
            .map(|(k, v)| format!("{}:{v}", json_string(&k)))
            .collect();
        out.set(into_handle(format!("{{{}}}", body.join(",")).into_bytes()));
        Ok(())
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Creates a RebatchingQueue in blob `name` of `ws` (as `CreateRebatchingQueue`; `capacity`
/// counts elements) and returns a handle to it.
///
/// Ownership: on success the caller owns `*out` (`c2rs_rebatching_queue_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL; C2RS_ENFORCE_NOT_MET when
/// `capacity` or `num_blobs` is < 1.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_rebatching_queue_create(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    capacity: i64,
    num_blobs: i64,
    out: *mut *mut c2rs_rebatching_queue,
) -> i32 {
    ffi_fn!("c2rs_rebatching_queue_create", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let queue = Arc::new(RebatchingQueue::new(capacity, num_blobs)?);
        let blob = ws
            .create_blob(name)
            .ok_or_else(|| C2rsError::not_found(format!("blob {name} cannot be created")))?;
        blob.set_native(Arc::clone(&queue));
        out.set(arc_into_handle(queue));
        Ok(())
    })
}

/// The RebatchingQueue held in blob `name` of `ws`.
///
/// Ownership: on success the caller owns `*out` (`c2rs_rebatching_queue_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL; C2RS_NOT_FOUND when the
/// blob does not exist; C2RS_TYPE_MISMATCH when it holds no RebatchingQueue.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_rebatching_queue_from_workspace(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut c2rs_rebatching_queue,
) -> i32 {
    ffi_fn!("c2rs_rebatching_queue_from_workspace", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(arc_into_handle(queue_blob::<RebatchingQueue>(
            ws,
            name_arg(name, "name")?,
        )?));
        Ok(())
    })
}

/// Releases a RebatchingQueue handle.
///
/// Ownership: `q` is released; NULL is a no-op.
/// Thread safety: no other call may use this handle concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_rebatching_queue_free(q: *mut c2rs_rebatching_queue) {
    ffi_fn_or!("c2rs_rebatching_queue_free", (), {
        arc_free(q);
        Ok(())
    })
}

/// Enqueues `n` tensors (`n` = `num_blobs`) as one element, or with `batch` every row along
/// dim 0 (all tensors ≥ 1-D with equal dim 0), blocking while full. Rows are deep copies.
/// A batch enqueue is not atomic: rows already in stay when the queue closes midway.
///
/// Ownership: the tensors are only read; the caller keeps them.
/// Thread safety: queues are fully thread-safe; the tensors must not be written concurrently.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL; C2RS_ENFORCE_NOT_MET for a
/// wrong count or shapes; C2RS_CLOSED when the queue is closed (even with room).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_rebatching_queue_enqueue(
    q: *const c2rs_rebatching_queue,
    tensors: *const *const c2rs_tensor,
    n: usize,
    batch: bool,
) -> i32 {
    ffi_fn!("c2rs_rebatching_queue_enqueue", {
        let q = arc_ref(q, "q")?;
        let refs = array_arg(tensors, n, "tensors")?
            .iter()
            .enumerate()
            .map(|(i, &t)| handle_ref(t, &format!("tensors[{i}]")))
            .collect::<Result<Vec<&Tensor>>>()?;
        let ok = if batch {
            q.enqueue_many(&refs)?
        } else {
            q.enqueue_one(&refs)?
        };
        if !ok {
            return Err(C2rsError::closed("enqueue: the queue is closed"));
        }
        Ok(())
    })
}

/// Dequeues `num_elements` elements (fewer only at close) into `out[0..n]`, each stacked
/// under a new leading dim, blocking until they are available.
///
/// Ownership: on success the caller owns each `out[i]` (`c2rs_tensor_free`); NULL otherwise.
/// Thread safety: queues are fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `n` is not `num_blobs`;
/// C2RS_ENFORCE_NOT_MET when `num_elements < 1` or rows differ in shape (they stay queued);
/// C2RS_CLOSED when closed and empty.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_rebatching_queue_dequeue(
    q: *const c2rs_rebatching_queue,
    num_elements: i64,
    out: *mut *mut c2rs_tensor,
    n: usize,
) -> i32 {
    ffi_fn!("c2rs_rebatching_queue_dequeue", {
        let q = arc_ref(q, "q")?;
        check_count("out", n, q.num_blobs())?;
        if out.is_null() {
            return Err(super::guard::null_arg("out"));
        }
        // SAFETY: non-NULL; the caller passes `n` writable `c2rs_tensor*` slots (C contract).
        let out = unsafe { std::slice::from_raw_parts_mut(out, n) };
        out.fill(std::ptr::null_mut());
        let Some(tensors) = q.dequeue(num_elements)? else {
            return Err(C2rsError::closed("dequeue: the queue is closed and empty"));
        };
        for (slot, t) in out.iter_mut().zip(tensors) {
            *slot = tensor_handle(t);
        }
        Ok(())
    })
}

/// Closes the RebatchingQueue: enqueues fail from now on, dequeues drain then fail.
///
/// Thread safety: queues are fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `q` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_rebatching_queue_close(q: *const c2rs_rebatching_queue) -> i32 {
    ffi_fn!("c2rs_rebatching_queue_close", {
        arc_ref(q, "q")?.close();
        Ok(())
    })
}

/// Elements queued now and the capacity (in elements). Either out pointer may be NULL.
///
/// Thread safety: queues are fully thread-safe (the size may change right after).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `q` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_rebatching_queue_info(
    q: *const c2rs_rebatching_queue,
    size: *mut usize,
    capacity: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_rebatching_queue_info", {
        let q = arc_ref(q, "q")?;
        if !size.is_null() {
            out_param(size, "size")?.set(q.size());
        }
        if !capacity.is_null() {
            out_param(capacity, "capacity")?.set(q.capacity());
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::status::*;
    use super::*;
    use crate::tensor::DataType;

    fn ws() -> *mut c2rs_workspace {
        arc_into_handle(Workspace::new())
    }

    fn tensor(v: i32) -> *mut c2rs_tensor {
        into_handle(Tensor::from_slice(DataType::Int32, &[1], &[v]).unwrap())
    }

    #[test]
    fn null_and_bad_arguments_are_refused_without_consuming() {
        let w = ws();
        let mut q = std::ptr::null_mut();
        assert_eq!(
            c2rs_blobs_queue_create(w, c"q".as_ptr(), 0, 1, false, &mut q),
            C2RS_ENFORCE_NOT_MET
        );
        assert_eq!(
            c2rs_blobs_queue_create(w, c"q".as_ptr(), 1, 1, false, std::ptr::null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_blobs_queue_create(w, c"q".as_ptr(), 1, 1, false, &mut q),
            C2RS_OK
        );
        let t = tensor(1);
        // Wrong count: nothing consumed.
        assert_eq!(
            c2rs_blobs_queue_enqueue(q, [t, t].as_ptr(), 2),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(c2rs_blobs_queue_enqueue(q, [t].as_ptr(), 1), C2RS_OK);
        // Full: try gives the tensor back.
        let t2 = tensor(2);
        assert_eq!(
            c2rs_blobs_queue_try_enqueue(q, [t2].as_ptr(), 1),
            C2RS_TIMEOUT
        );
        super::super::tensor::c2rs_tensor_free(t2);
        let mut out = [std::ptr::null_mut()];
        assert_eq!(c2rs_blobs_queue_dequeue(q, out.as_mut_ptr(), 1), C2RS_OK);
        assert_eq!(
            handle_ref(out[0], "t").unwrap().typed::<i32>().unwrap(),
            &[1]
        );
        super::super::tensor::c2rs_tensor_free(out[0]);
        assert_eq!(
            c2rs_blobs_queue_try_dequeue(q, out.as_mut_ptr(), 1),
            C2RS_TIMEOUT
        );
        assert_eq!(c2rs_blobs_queue_close(q), C2RS_OK);
        assert_eq!(
            c2rs_blobs_queue_dequeue_timeout(q, 0.5, out.as_mut_ptr(), 1),
            C2RS_CLOSED
        );
        assert!(out[0].is_null());
        let mut rq = std::ptr::null_mut();
        assert_eq!(
            c2rs_rebatching_queue_from_workspace(w, c"q".as_ptr(), &mut rq),
            C2RS_TYPE_MISMATCH
        );
        assert_eq!(
            c2rs_blobs_queue_from_workspace(w, c"nope".as_ptr(), &mut q),
            C2RS_NOT_FOUND
        );
        c2rs_blobs_queue_free(std::ptr::null_mut());
        super::super::workspace::c2rs_workspace_free(w);
    }
}
