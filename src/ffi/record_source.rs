//! Host records for caffe2rs's batch assembly and prefetching: a DB reader whose records come
//! from a host callback, or from a bounded feed host threads push into. The reader is an
//! ordinary `c2rs_db_reader`: `c2rs_batch_reader_new` prefetches batches from it, and in a
//! workspace blob (`c2rs_workspace_set_db_reader`) TensorProtosDBInput reads it, with the same
//! dims/dtype checks and error messages as for records read from a DB file.
#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char, c_void};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::guard::{byte_slice, ffi_fn, ffi_fn_or, name_arg, out_param};
use super::handle::{
    ArcHandle, arc_clone, arc_free, arc_into_handle, arc_ref, c2rs_db_reader, into_handle,
};
use super::status::{
    C2RS_ALREADY_EXISTS, C2RS_CLOSED, C2RS_ENFORCE_NOT_MET, C2RS_INTERNAL, C2RS_INVALID_ARGUMENT,
    C2RS_IO_ERROR, C2RS_NOT_FOUND, C2RS_OK, C2RS_PARSE_ERROR, C2RS_SCHEMA_MISMATCH, C2RS_TIMEOUT,
    C2RS_TYPE_MISMATCH, C2RS_UNSUPPORTED,
};
use crate::db::{PullFn, RecordFeed, pull_reader};
use crate::error::{C2rsError, ErrorKind, Result};

/// One record a `c2rs_record_read_fn` hands over: `key_len` bytes at `key` and `value_len`
/// bytes at `value` (a serialized TensorProtos for TensorProtosDBInput), valid until the
/// callback is called again or destroyed; the library copies them before that. When the
/// callback fails it may point `error` at a NUL-terminated message (copied).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct c2rs_record_view {
    pub key: *const u8,
    pub key_len: usize,
    pub value: *const u8,
    pub value_len: usize,
    pub error: *const c_char,
}

/// Produces the next record into `*record` (zeroed before each call) and returns C2RS_OK;
/// C2RS_CLOSED ends the stream; any other status is a read error carrying `record->error`.
/// Never called concurrently with itself; may run on any thread (a prefetch worker).
pub type c2rs_record_read_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, record: *mut c2rs_record_view) -> i32>;
/// Releases `user` once, when the reader built on the callback is gone.
pub type c2rs_record_destroy_fn = Option<unsafe extern "C" fn(user: *mut c_void)>;

/// The host's callback, its user pointer, and the destroy that runs once when this drops.
struct HostSource {
    read: unsafe extern "C" fn(*mut c_void, *mut c2rs_record_view) -> i32,
    destroy: c2rs_record_destroy_fn,
    user: *mut c_void,
    name: String,
}

// SAFETY: `c2rs_db_reader_from_callback` documents that the callback and `user` are called
// from any thread (one call at a time); the host takes responsibility for that.
unsafe impl Send for HostSource {}

impl Drop for HostSource {
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy {
            // SAFETY: the host's destroy with its own `user`; this drop runs exactly once.
            unsafe { destroy(self.user) }
        }
    }
}

fn kind_of_status(status: i32) -> ErrorKind {
    match status {
        C2RS_ENFORCE_NOT_MET => ErrorKind::Enforce,
        C2RS_INVALID_ARGUMENT => ErrorKind::InvalidArgument,
        C2RS_NOT_FOUND => ErrorKind::NotFound,
        C2RS_ALREADY_EXISTS => ErrorKind::AlreadyExists,
        C2RS_TYPE_MISMATCH => ErrorKind::TypeMismatch,
        C2RS_SCHEMA_MISMATCH => ErrorKind::SchemaMismatch,
        C2RS_UNSUPPORTED => ErrorKind::Unsupported,
        C2RS_PARSE_ERROR => ErrorKind::Parse,
        C2RS_CLOSED => ErrorKind::Closed,
        C2RS_TIMEOUT => ErrorKind::Timeout,
        C2RS_IO_ERROR => ErrorKind::Io,
        C2RS_INTERNAL => ErrorKind::Internal,
        _ => ErrorKind::RunFailed,
    }
}

impl HostSource {
    fn pull(&mut self) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut view = c2rs_record_view {
            key: std::ptr::null(),
            key_len: 0,
            value: std::ptr::null(),
            value_len: 0,
            error: std::ptr::null(),
        };
        // SAFETY: the host's callback with its `user`; `view` outlives the call.
        let status = unsafe { (self.read)(self.user, &mut view) };
        if status == C2RS_CLOSED {
            return Err(C2rsError::closed(format!(
                "record source {} ended",
                self.name
            )));
        }
        if status != C2RS_OK {
            let detail = if view.error.is_null() {
                format!("status {status}")
            } else {
                // SAFETY: the callback set `error` to a NUL-terminated string valid until it
                // is called again.
                unsafe { CStr::from_ptr(view.error) }
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(C2rsError::new(
                kind_of_status(status),
                format!("record source {}: {detail}", self.name),
            ));
        }
        let key = byte_slice(view.key, view.key_len, "record.key")?.to_vec();
        let value = byte_slice(view.value, view.value_len, "record.value")?.to_vec();
        Ok((key, value))
    }
}

/// A DB reader whose records come from `read(user, &record)`, one call per record, in call
/// order (one shard, no wrap-around: C2RS_CLOSED from the callback ends the stream, and every
/// later read fails with C2RS_CLOSED). `name` names the source in messages. Batches read from
/// it (`c2rs_batch_reader_new`, or TensorProtosDBInput on a blob holding it) are checked and
/// reported exactly as batches from a DB file ("TensorProtosDBInput: record '<key>' …").
///
/// Ownership: on success the caller owns `*out` (`c2rs_db_reader_free`); the reader keeps
/// `user` and calls `destroy(user)` (when not NULL) exactly once, after its last reference is
/// gone. On failure nothing is kept and `destroy` is not called. `name` is copied.
/// Thread safety: safe from any thread. `read` is called from whichever thread reads (host
/// threads, prefetch workers), never concurrently with itself; it must not throw (unwind).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `read`, `name` or `out` is NULL or `name` is
/// not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_reader_from_callback(
    read: c2rs_record_read_fn,
    user: *mut c_void,
    destroy: c2rs_record_destroy_fn,
    name: *const c_char,
    out: *mut *mut c2rs_db_reader,
) -> i32 {
    ffi_fn!("c2rs_db_reader_from_callback", {
        let out = out_param(out, "out")?;
        let name = name_arg(name, "name")?;
        let read = read.ok_or_else(|| super::guard::null_arg("read"))?;
        let mut source = HostSource {
            read,
            destroy,
            user,
            name: name.to_string(),
        };
        let pull: PullFn = Box::new(move || source.pull());
        let reader = pull_reader(pull, "host", name)?;
        out.set(into_handle(Arc::new(reader)));
        Ok(())
    })
}

/// A bounded FIFO of records host threads push (`c2rs_record_feed_push`) and a DB reader made
/// by `c2rs_db_reader_from_feed` pulls. Shared (`Arc`); released by `c2rs_record_feed_free`.
/// Fully thread-safe.
pub struct c2rs_record_feed {
    _private: [u8; 0],
}

impl ArcHandle for c2rs_record_feed {
    type Target = RecordFeed;
}

/// Most records `c2rs_record_feed_new` accepts as capacity.
pub const C2RS_MAX_FEED_CAPACITY: usize = 1 << 20;
const _: () = assert!(C2RS_MAX_FEED_CAPACITY == crate::db::MAX_FEED_CAPACITY);

/// A record feed holding at most `capacity` records (pushes wait while it is full).
///
/// Ownership: the caller owns `*out` (`c2rs_record_feed_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `capacity` is not in
/// 1..=C2RS_MAX_FEED_CAPACITY.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_record_feed_new(capacity: usize, out: *mut *mut c2rs_record_feed) -> i32 {
    ffi_fn!("c2rs_record_feed_new", {
        let out = out_param(out, "out")?;
        out.set(arc_into_handle(Arc::new(RecordFeed::new(capacity)?)));
        Ok(())
    })
}

/// Appends a copy of one record (`value` a serialized TensorProtos for TensorProtosDBInput),
/// waiting while the feed is full: forever when `timeout_secs <= 0`, else at most that long.
///
/// Ownership: the bytes are copied.
/// Thread safety: fully thread-safe; many threads may push at once.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `feed` is NULL or `key`/`value` is NULL with a
/// length > 0; C2RS_CLOSED when the feed is (or gets) closed; C2RS_TIMEOUT when it stayed full.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_record_feed_push(
    feed: *const c2rs_record_feed,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    timeout_secs: f64,
) -> i32 {
    ffi_fn!("c2rs_record_feed_push", {
        let feed = arc_ref(feed, "feed")?;
        let key = byte_slice(key, key_len, "key")?.to_vec();
        let value = byte_slice(value, value_len, "value")?.to_vec();
        let deadline = if timeout_secs > 0.0 && timeout_secs.is_finite() {
            Duration::try_from_secs_f64(timeout_secs)
                .ok()
                .and_then(|d| Instant::now().checked_add(d))
        } else {
            None
        };
        feed.push(key, value, deadline)
    })
}

/// Closes the feed (idempotent): pushes fail with C2RS_CLOSED, the reader drains what is
/// queued and then fails with C2RS_CLOSED (ending a batch reader's stream).
///
/// Thread safety: fully thread-safe.
/// Returns: nothing (NULL is a no-op).
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_record_feed_close(feed: *const c2rs_record_feed) {
    ffi_fn_or!("c2rs_record_feed_close", (), {
        if !feed.is_null() {
            arc_ref(feed, "feed")?.close();
        }
        Ok(())
    })
}

/// Records waiting in the feed now, and whether it is closed (`closed` nullable).
///
/// Thread safety: fully thread-safe (the answer may be stale at once).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `feed` or `size` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_record_feed_status(
    feed: *const c2rs_record_feed,
    size: *mut usize,
    closed: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_record_feed_status", {
        let size = out_param(size, "size")?;
        let closed = if closed.is_null() {
            None
        } else {
            Some(out_param(closed, "closed")?)
        };
        let (n, c) = arc_ref(feed, "feed")?.status();
        size.set(n);
        if let Some(out) = closed {
            out.set(c);
        }
        Ok(())
    })
}

/// Releases this handle's reference to the feed (a reader made from it keeps it alive). It does
/// not close the feed: close it first when no one will push again.
///
/// Ownership: `feed` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use this handle concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_record_feed_free(feed: *mut c2rs_record_feed) {
    ffi_fn_or!("c2rs_record_feed_free", (), {
        arc_free(feed);
        Ok(())
    })
}

/// A DB reader pulling the records of `feed` in push order (one shard, no wrap-around; a
/// closed, drained feed ends the stream with C2RS_CLOSED). `name` names it in messages. See
/// `c2rs_db_reader_from_callback` for how batches read from it are checked.
///
/// Ownership: `feed` is shared (the caller still frees its handle); the caller owns `*out`
/// (`c2rs_db_reader_free`). `name` is copied.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_reader_from_feed(
    feed: *const c2rs_record_feed,
    name: *const c_char,
    out: *mut *mut c2rs_db_reader,
) -> i32 {
    ffi_fn!("c2rs_db_reader_from_feed", {
        let out = out_param(out, "out")?;
        let name = name_arg(name, "name")?;
        let feed: Arc<RecordFeed> = arc_clone(feed, "feed")?;
        let pull: PullFn = Box::new(move || feed.pull());
        out.set(into_handle(Arc::new(pull_reader(pull, "feed", name)?)));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::db::{
        c2rs_batch_reader_free, c2rs_batch_reader_new, c2rs_batch_reader_next, c2rs_db_reader_free,
    };
    use crate::ffi::handle::{c2rs_batch_reader, c2rs_tensor_list};
    use crate::ffi::tensor::c2rs_tensor_list_free;
    use crate::ffi::version::c2rs_last_error_message;
    use crate::proto::TensorProtos;
    use crate::tensor::{DataType, Tensor, tensor_to_proto};
    use prost::Message;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn last_error() -> String {
        // SAFETY: this thread's NUL-terminated last error.
        unsafe { CStr::from_ptr(c2rs_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Host state of the callback tests: records produced and destroys seen.
    struct Counter {
        next: i32,
        end_after: i32,
        fail_at: i32,
        key: Vec<u8>,
        value: Vec<u8>,
        destroys: Arc<AtomicUsize>,
    }

    unsafe extern "C" fn read_counter(user: *mut c_void, rec: *mut c2rs_record_view) -> i32 {
        // SAFETY: `user` is the `Counter` these tests registered; `rec` is the library's view.
        let (c, rec) = unsafe { (&mut *(user as *mut Counter), &mut *rec) };
        if c.next == c.fail_at {
            rec.error = c"disk on fire".as_ptr();
            return C2RS_IO_ERROR;
        }
        if c.next >= c.end_after {
            return C2RS_CLOSED;
        }
        let t = Tensor::from_slice(DataType::Int32, &[], &[c.next]).unwrap();
        c.value = TensorProtos {
            protos: vec![tensor_to_proto(&t).unwrap()],
        }
        .encode_to_vec();
        c.key = format!("r{}", c.next).into_bytes();
        c.next += 1;
        rec.key = c.key.as_ptr();
        rec.key_len = c.key.len();
        rec.value = c.value.as_ptr();
        rec.value_len = c.value.len();
        C2RS_OK
    }

    unsafe extern "C" fn destroy_counter(user: *mut c_void) {
        // SAFETY: `user` is the boxed `Counter` handed over at registration; freed once here.
        let c = unsafe { Box::from_raw(user as *mut Counter) };
        c.destroys.fetch_add(1, Ordering::SeqCst);
    }

    fn counter_reader(end_after: i32, fail_at: i32) -> (*mut c2rs_db_reader, Arc<AtomicUsize>) {
        let destroys = Arc::new(AtomicUsize::new(0));
        let user = Box::into_raw(Box::new(Counter {
            next: 0,
            end_after,
            fail_at,
            key: Vec::new(),
            value: Vec::new(),
            destroys: Arc::clone(&destroys),
        }));
        let mut r = std::ptr::null_mut();
        assert_eq!(
            c2rs_db_reader_from_callback(
                Some(read_counter),
                user.cast(),
                Some(destroy_counter),
                c"counter".as_ptr(),
                &mut r
            ),
            C2RS_OK
        );
        (r, destroys)
    }

    fn batches(r: *mut c2rs_db_reader, batch: usize, threads: usize) -> *mut c2rs_batch_reader {
        let mut br = std::ptr::null_mut();
        assert_eq!(
            c2rs_batch_reader_new(r, batch, 1, 2, threads, &mut br),
            C2RS_OK,
            "{}",
            last_error()
        );
        br
    }

    fn next_values(br: *mut c2rs_batch_reader) -> std::result::Result<Vec<i32>, i32> {
        let mut list: *mut c2rs_tensor_list = std::ptr::null_mut();
        let status = c2rs_batch_reader_next(br, &mut list);
        if status != C2RS_OK {
            return Err(status);
        }
        let v = crate::ffi::handle::handle_ref(list, "list").unwrap()[0]
            .typed::<i32>()
            .unwrap()
            .to_vec();
        c2rs_tensor_list_free(list);
        Ok(v)
    }

    #[test]
    fn callback_records_are_prefetched_then_the_stream_ends_and_destroy_runs_once() {
        let (r, destroys) = counter_reader(5, -1);
        let br = batches(r, 2, 1);
        assert_eq!(next_values(br), Ok(vec![0, 1]));
        assert_eq!(next_values(br), Ok(vec![2, 3]));
        assert_eq!(next_values(br), Err(C2RS_CLOSED));
        assert!(
            last_error().contains("record source counter ended"),
            "{}",
            last_error()
        );
        assert_eq!(next_values(br), Err(C2RS_CLOSED), "sticky");
        c2rs_db_reader_free(r);
        assert_eq!(
            destroys.load(Ordering::SeqCst),
            0,
            "the batch reader still holds it"
        );
        c2rs_batch_reader_free(br);
        assert_eq!(destroys.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failing_callback_reports_its_status_and_message() {
        let (r, destroys) = counter_reader(10, 1);
        let br = batches(r, 2, 0);
        assert_eq!(next_values(br), Err(C2RS_IO_ERROR));
        assert!(
            last_error().contains("record source counter: disk on fire"),
            "{}",
            last_error()
        );
        c2rs_batch_reader_free(br);
        c2rs_db_reader_free(r);
        assert_eq!(destroys.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn bad_arguments_keep_nothing() {
        let mut r = std::ptr::null_mut();
        assert_eq!(
            c2rs_db_reader_from_callback(None, std::ptr::null_mut(), None, c"x".as_ptr(), &mut r),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_error().contains("`read`"));
        assert_eq!(
            c2rs_db_reader_from_callback(
                Some(read_counter),
                std::ptr::null_mut(),
                Some(destroy_counter),
                std::ptr::null(),
                &mut r
            ),
            C2RS_INVALID_ARGUMENT,
            "destroy must not run on the NULL user"
        );
        let mut f = std::ptr::null_mut();
        assert_eq!(c2rs_record_feed_new(0, &mut f), C2RS_INVALID_ARGUMENT);
        assert_eq!(c2rs_record_feed_new(4, &mut f), C2RS_OK);
        assert_eq!(
            c2rs_record_feed_push(f, std::ptr::null(), 1, std::ptr::null(), 0, 0.0),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_record_feed_push(
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                0.0
            ),
            C2RS_INVALID_ARGUMENT
        );
        let mut n = 7usize;
        assert_eq!(
            c2rs_record_feed_status(f, &mut n, std::ptr::null_mut()),
            C2RS_OK
        );
        assert_eq!(n, 0);
        c2rs_record_feed_close(f);
        assert_eq!(
            c2rs_record_feed_push(f, b"k".as_ptr(), 1, b"v".as_ptr(), 1, 0.0),
            C2RS_CLOSED
        );
        c2rs_record_feed_close(std::ptr::null());
        c2rs_record_feed_free(f);
        c2rs_record_feed_free(std::ptr::null_mut());
    }
}
