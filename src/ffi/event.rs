//! Events (`c2rs_event_*`): Caffe2's device-typed completion flags with the state machine
//! INITIALIZED (0) → SCHEDULED (1) → SUCCESS (2) | FAILED (3).

use std::ffi::c_char;

use super::context::device_spec_arg;
use super::guard::{device_type_arg, ffi_fn, ffi_fn_or, opt_name_arg, out_param};
use super::handle::{c2rs_buffer, c2rs_context, c2rs_event, free_handle, handle_ref, into_handle};
use crate::context::events::{EventStatus, can_schedule};
use crate::context::{Context, Event};
use crate::error::Result;

/// Event status: created or reset, not recorded.
pub const C2RS_EVENT_INITIALIZED: i32 = 0;
/// Recorded; the work it follows may still run.
pub const C2RS_EVENT_SCHEDULED: i32 = 1;
/// Finished without error.
pub const C2RS_EVENT_SUCCESS: i32 = 2;
/// Finished with an error (see `c2rs_event_error_message`).
pub const C2RS_EVENT_FAILED: i32 = 3;

fn opt_context<'a>(ctx: *const c2rs_context) -> Result<Option<&'a Context>> {
    if ctx.is_null() {
        Ok(None)
    } else {
        handle_ref(ctx, "ctx").map(Some)
    }
}

/// Creates an event for the device of a serialized DeviceOption: CPU (0) and MKLDNN (2) →
/// a CPU event; CUDA (1) → a CUDA event on `device_id` (unset: the current device).
/// `len == 0` (NULL allowed) makes a CPU event.
///
/// Ownership: the caller owns `*out` (`c2rs_event_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `device_option` is NULL with
/// `len > 0`; C2RS_PARSE_ERROR for bad bytes; C2RS_ENFORCE_NOT_MET for an unregistered device
/// type; C2RS_UNSUPPORTED for CUDA without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_new(
    device_option: *const u8,
    len: usize,
    out: *mut *mut c2rs_event,
) -> i32 {
    ffi_fn!("c2rs_event_new", {
        let out = out_param(out, "out")?;
        let spec = device_spec_arg(device_option, len, "device_option")?;
        out.set(into_handle(Event::new(&spec)?));
        Ok(())
    })
}

/// Frees an event. Nobody may be waiting on it.
///
/// Ownership: consumes `event`; NULL is a no-op.
/// Thread safety: not concurrently with any other call on `event`.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_event_free(event: *mut c2rs_event) {
    ffi_fn_or!("c2rs_event_free", (), {
        free_handle(event);
        Ok(())
    })
}

/// The event's device type (0 CPU, 1 CUDA, 2 MKLDNN).
///
/// Thread safety: safe concurrently with any call on `event`.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `event` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_device_type(event: *const c2rs_event, out: *mut i32) -> i32 {
    ffi_fn!("c2rs_event_device_type", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(event, "event")?.device_type().as_i32());
        Ok(())
    })
}

/// Caffe2's `Event::Record(device_type, ctx, err)`. `device_type` must be the event's type.
/// CPU event: INITIALIZED → SCHEDULED (or FAILED with `err`); already SUCCESS/FAILED → no-op
/// (the async part finished first); SCHEDULED → "Calling Record multiple times". CUDA event:
/// must be INITIALIZED; records on `ctx`'s stream (`ctx` a CUDA context on the event's device,
/// which must be current); with `err` it fails without a stream (`ctx` may be NULL). A CPU
/// event ignores `ctx` (NULL allowed).
///
/// Thread safety: record once per event (until reset); safe concurrently with waits and queries.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `event` is NULL or `err` is not UTF-8;
/// C2RS_ENFORCE_NOT_MET for "You are trying to record with a wrong device type.", "Calling
/// Record multiple times", a CUDA record without a CUDA context, or a current device other
/// than the event's ("When you call EventRecordCUDA, your current device should be the same as
/// the device specified by the event.").
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_record(
    event: *const c2rs_event,
    device_type: i32,
    ctx: *const c2rs_context,
    err: *const c_char,
) -> i32 {
    ffi_fn!("c2rs_event_record", {
        let event = handle_ref(event, "event")?;
        let t = device_type_arg(device_type, "device_type")?;
        let err = opt_name_arg(err, "err")?;
        event.record(t, opt_context(ctx)?, err)
    })
}

/// Caffe2's `Event::Wait(waiter_type, ctx)`: CPU waiter → blocks until the event finishes
/// (forever if nobody finishes it); CUDA waiter on a CUDA event → after it is recorded, `ctx`'s
/// stream waits for it on the device (no host block; same stream: nothing); CUDA waiter on a
/// CPU event → blocks the host. `ctx` is needed only for a CUDA waiter on a CUDA event.
///
/// Thread safety: safe concurrently with other waits, finishes and queries.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `event` is NULL; C2RS_ENFORCE_NOT_MET for an
/// unregistered waiter type, a missing CUDA context, or a driver error.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_wait(
    event: *const c2rs_event,
    waiter_type: i32,
    ctx: *const c2rs_context,
) -> i32 {
    ffi_fn!("c2rs_event_wait", {
        let event = handle_ref(event, "event")?;
        let t = device_type_arg(waiter_type, "waiter_type")?;
        event.wait(t, opt_context(ctx)?)
    })
}

/// Caffe2's `Event::Finish()`: blocks until SUCCESS or FAILED (CUDA: until recorded, then
/// synchronises the recorded work; a device error makes the event FAILED).
///
/// Thread safety: safe concurrently with other waits, finishes and queries.
/// Returns: C2RS_OK (also when the event FAILED: read its status); C2RS_INVALID_ARGUMENT when
/// `event` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_finish(event: *const c2rs_event) -> i32 {
    ffi_fn!("c2rs_event_finish", {
        handle_ref(event, "event")?.finish()
    })
}

/// Caffe2's `Event::Query()`: the status (C2RS_EVENT_*), a scheduled CUDA event being
/// checked on the device first (never blocks).
///
/// Thread safety: safe concurrently with other waits, finishes and queries.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `event` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_query(event: *const c2rs_event, out: *mut i32) -> i32 {
    ffi_fn!("c2rs_event_query", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(event, "event")?.query() as i32);
        Ok(())
    })
}

/// Caffe2's `Event::ErrorMessage()`: the failure message of a FAILED event, "No error"
/// otherwise (query a CUDA event first to pick up device errors).
///
/// Ownership: the caller owns `*out` (`c2rs_buffer_free`); UTF-8 text without a NUL.
/// Thread safety: safe concurrently with any call on `event` except free.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `event` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_error_message(
    event: *const c2rs_event,
    out: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_event_error_message", {
        let out = out_param(out, "out")?;
        let msg = handle_ref(event, "event")?.error_message();
        out.set(into_handle(msg.into_bytes()));
        Ok(())
    })
}

/// Caffe2's `Event::SetFinished(err)`: SUCCESS, or FAILED with `err` (non-NULL), waking every
/// waiter. A CPU event must be INITIALIZED or SCHEDULED, a CUDA event INITIALIZED.
///
/// Thread safety: safe concurrently with waits and queries.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `event` is NULL or `err` is not UTF-8;
/// C2RS_ENFORCE_NOT_MET for "Calling SetFinished on finished event" (CPU) and "Calling
/// SetFinished on recorded CUDA event".
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_set_finished(event: *const c2rs_event, err: *const c_char) -> i32 {
    ffi_fn!("c2rs_event_set_finished", {
        let event = handle_ref(event, "event")?;
        event.set_finished(opt_name_arg(err, "err")?)
    })
}

/// Caffe2's `Event::Reset()`: back to INITIALIZED with no message (CUDA: stream forgotten).
///
/// Thread safety: not while anyone waits on or records `event`.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `event` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_reset(event: *const c2rs_event) -> i32 {
    ffi_fn!("c2rs_event_reset", {
        handle_ref(event, "event")?.reset();
        Ok(())
    })
}

/// Caffe2's `Event::CanSchedule`: may a child op of `child_type` start when its parent's
/// event of `parent_type` has `parent_status`? SUCCESS → true; SCHEDULED → only on the same
/// device type and when the child supports async scheduling; otherwise false.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `parent_status` is not
/// 0..=3; C2RS_ENFORCE_NOT_MET for an unregistered device type.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_event_can_schedule(
    parent_type: i32,
    parent_status: i32,
    child_type: i32,
    child_supports_async: bool,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_event_can_schedule", {
        let out = out_param(out, "out")?;
        let p = device_type_arg(parent_type, "parent_type")?;
        let c = device_type_arg(child_type, "child_type")?;
        let s = EventStatus::from_i32(parent_status)?;
        out.set(can_schedule(p, s, c, child_supports_async));
        Ok(())
    })
}
