//! CPU events through the C ABI. Ported from Caffe2 `caffe2/core/event_test.cc`
//! (EventCPUTest.EventBasics) plus the spec's derived state-machine cases.

mod context_common;

use std::ffi::CString;
use std::sync::mpsc;
use std::time::Duration;

use caffe2rs::ffi::context::*;
use caffe2rs::ffi::event::*;
use caffe2rs::ffi::handle::c2rs_event;
use context_common::*;

/// A raw event pointer that may cross threads (events are fully concurrent for
/// Wait/Finish/Query).
#[derive(Clone, Copy)]
struct Shared(*mut c2rs_event);
// SAFETY: the C ABI documents Wait/Finish/Query/SetFinished as safe from any thread.
unsafe impl Send for Shared {}

fn cpu_event() -> *mut c2rs_event {
    new_event(&[])
}

#[test]
fn event_basics_follow_caffe2() {
    let ctx = cpu_context(None);
    let ev = cpu_event();
    assert_eq!(c2rs_context_record_event(ctx, ev, std::ptr::null()), 0);
    assert_eq!(query(ev), C2RS_EVENT_SCHEDULED);
    assert_eq!(c2rs_event_set_finished(ev, std::ptr::null()), 0);
    assert_eq!(query(ev), C2RS_EVENT_SUCCESS);
    assert_eq!(c2rs_context_wait_event(ctx, ev), 0);
    assert_eq!(c2rs_event_finish(ev), 0);

    assert_eq!(c2rs_event_reset(ev), 0);
    assert_eq!(query(ev), C2RS_EVENT_INITIALIZED);
    assert_eq!(c2rs_event_record(ev, 0, ctx, std::ptr::null()), 0);
    assert_eq!(c2rs_event_set_finished(ev, std::ptr::null()), 0);
    assert_eq!(c2rs_event_wait(ev, 0, ctx), 0);
    assert_eq!(c2rs_event_wait(ev, 0, std::ptr::null()), 0);
    c2rs_event_free(ev);
    c2rs_context_free(ctx);
}

#[test]
fn recording_twice_is_an_enforce() {
    let ev = cpu_event();
    assert_eq!(
        c2rs_event_record(ev, 0, std::ptr::null(), std::ptr::null()),
        0
    );
    assert_eq!(
        c2rs_event_record(ev, 0, std::ptr::null(), std::ptr::null()),
        1
    );
    assert!(
        last_error().ends_with("Calling Record multiple times"),
        "{}",
        last_error()
    );
    c2rs_event_free(ev);
}

#[test]
fn set_finished_after_success_is_an_enforce() {
    let ev = cpu_event();
    assert_eq!(c2rs_event_set_finished(ev, std::ptr::null()), 0);
    assert_eq!(c2rs_event_set_finished(ev, std::ptr::null()), 1);
    assert!(last_error().ends_with("Calling SetFinished on finished event"));
    c2rs_event_free(ev);
}

#[test]
fn record_with_error_fails_the_event_with_its_message() {
    let ev = cpu_event();
    assert_eq!(error_message(ev), "No error");
    let err = CString::new("op exploded").unwrap();
    assert_eq!(c2rs_event_record(ev, 0, std::ptr::null(), err.as_ptr()), 0);
    assert_eq!(query(ev), C2RS_EVENT_FAILED);
    assert_eq!(error_message(ev), "op exploded");
    assert_eq!(c2rs_event_finish(ev), 0, "finish returns on FAILED");
    assert_eq!(c2rs_event_reset(ev), 0);
    assert_eq!(error_message(ev), "No error");
    let err2 = CString::new("second").unwrap();
    assert_eq!(c2rs_event_set_finished(ev, err2.as_ptr()), 0);
    assert_eq!(error_message(ev), "second");
    c2rs_event_free(ev);
}

#[test]
fn set_finished_before_record_then_record_stays_success() {
    let ev = cpu_event();
    assert_eq!(c2rs_event_set_finished(ev, std::ptr::null()), 0);
    assert_eq!(
        c2rs_event_record(ev, 0, std::ptr::null(), std::ptr::null()),
        0
    );
    assert_eq!(query(ev), C2RS_EVENT_SUCCESS);
    c2rs_event_free(ev);
}

#[test]
fn finish_blocks_until_another_thread_sets_finished() {
    let ev = cpu_event();
    assert_eq!(
        c2rs_event_record(ev, 0, std::ptr::null(), std::ptr::null()),
        0
    );
    let shared = Shared(ev);
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let s = shared;
        let rc = c2rs_event_finish(s.0);
        tx.send(rc).unwrap();
    });
    // The waiter must still be blocked: nothing arrives while the event is SCHEDULED.
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    assert_eq!(c2rs_event_set_finished(ev, std::ptr::null()), 0);
    // Timeout-guarded: a lost wake-up fails the test instead of hanging it.
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), 0);
    waiter.join().unwrap();
    c2rs_event_free(ev);
}

#[test]
fn sixteen_threads_query_and_wait_concurrently() {
    let ev = cpu_event();
    assert_eq!(
        c2rs_event_record(ev, 0, std::ptr::null(), std::ptr::null()),
        0
    );
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let s = Shared(ev);
            let tx = tx.clone();
            std::thread::spawn(move || {
                let s = s;
                let status = if i % 2 == 0 {
                    c2rs_event_wait(s.0, 0, std::ptr::null())
                } else {
                    let mut st = -1;
                    while st != C2RS_EVENT_SUCCESS {
                        assert_eq!(c2rs_event_query(s.0, &mut st), 0);
                        std::thread::yield_now();
                    }
                    0
                };
                tx.send(status).unwrap();
            })
        })
        .collect();
    assert_eq!(c2rs_event_set_finished(ev, std::ptr::null()), 0);
    for _ in 0..16 {
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), 0);
    }
    for t in threads {
        t.join().unwrap();
    }
    c2rs_event_free(ev);
}

#[test]
fn can_schedule_truth_table() {
    // (parent status, same type, child async) -> expected
    for status in [C2RS_EVENT_SCHEDULED, C2RS_EVENT_SUCCESS, C2RS_EVENT_FAILED] {
        for same in [true, false] {
            for child_async in [true, false] {
                let child_type = if same { 1 } else { 0 };
                let mut out = true;
                assert_eq!(
                    c2rs_event_can_schedule(1, status, child_type, child_async, &mut out),
                    0
                );
                let expected = match status {
                    C2RS_EVENT_SUCCESS => true,
                    C2RS_EVENT_SCHEDULED => same && child_async,
                    _ => false,
                };
                assert_eq!(
                    out, expected,
                    "status {status} same {same} async {child_async}"
                );
            }
        }
    }
    let mut out = false;
    assert_eq!(c2rs_event_can_schedule(0, 7, 0, true, &mut out), 2);
}

#[test]
fn wrong_record_type_unknown_waiter_and_unknown_device_are_enforces() {
    let ev = cpu_event();
    assert_eq!(
        c2rs_event_record(ev, 1, std::ptr::null(), std::ptr::null()),
        1
    );
    assert!(last_error().ends_with("You are trying to record with a wrong device type."));
    assert_eq!(c2rs_event_wait(ev, 5, std::ptr::null()), 1);
    assert!(
        last_error().ends_with("Device type 5 not registered."),
        "{}",
        last_error()
    );
    let opt = option_bytes(4, None, None);
    let mut out = std::ptr::null_mut();
    assert_eq!(c2rs_event_new(opt.as_ptr(), opt.len(), &mut out), 1);
    assert!(out.is_null());
    c2rs_event_free(ev);
}

#[test]
fn mkldnn_events_use_the_cpu_entries() {
    let ev = new_event(&option_bytes(2, None, None));
    let mut t = -1;
    assert_eq!(c2rs_event_device_type(ev, &mut t), 0);
    assert_eq!(t, 2);
    let ctx = cpu_context(None);
    assert_eq!(c2rs_context_record_event(ctx, ev, std::ptr::null()), 0);
    assert_eq!(query(ev), C2RS_EVENT_SCHEDULED);
    assert_eq!(c2rs_event_set_finished(ev, std::ptr::null()), 0);
    assert_eq!(c2rs_event_wait(ev, 2, std::ptr::null()), 0);
    c2rs_event_free(ev);
    c2rs_context_free(ctx);
}
