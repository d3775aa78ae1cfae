//! Helpers shared by the context test files: DeviceOption bytes, status checks, GPU skips.
#![allow(dead_code)]

use std::ffi::CStr;

use caffe2rs::ffi::buffer::{c2rs_buffer_data, c2rs_buffer_free, c2rs_buffer_len};
use caffe2rs::ffi::context::*;
use caffe2rs::ffi::event::*;
use caffe2rs::ffi::handle::{c2rs_buffer, c2rs_context, c2rs_event};
use caffe2rs::ffi::version::c2rs_last_error_message;
use caffe2rs::proto::DeviceOption;
use prost::Message;

pub fn last_error() -> String {
    // SAFETY: this thread's last message, read before any other call.
    unsafe { CStr::from_ptr(c2rs_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

pub fn option_bytes(device_type: i32, device_id: Option<i32>, seed: Option<u32>) -> Vec<u8> {
    DeviceOption {
        device_type: Some(device_type),
        device_id,
        random_seed: seed,
        ..Default::default()
    }
    .encode_to_vec()
}

pub fn new_context(option: &[u8]) -> *mut c2rs_context {
    let mut ctx = std::ptr::null_mut();
    let rc = c2rs_context_new(option.as_ptr(), option.len(), &mut ctx);
    assert_eq!(rc, 0, "c2rs_context_new: {}", last_error());
    ctx
}

pub fn cpu_context(seed: Option<u32>) -> *mut c2rs_context {
    new_context(&option_bytes(0, None, seed))
}

pub fn new_event(option: &[u8]) -> *mut c2rs_event {
    let mut ev = std::ptr::null_mut();
    let rc = c2rs_event_new(option.as_ptr(), option.len(), &mut ev);
    assert_eq!(rc, 0, "c2rs_event_new: {}", last_error());
    ev
}

pub fn query(ev: *const c2rs_event) -> i32 {
    let mut s = -1;
    assert_eq!(c2rs_event_query(ev, &mut s), 0);
    s
}

pub fn take_text(buf: *mut c2rs_buffer) -> String {
    let len = c2rs_buffer_len(buf);
    let data = c2rs_buffer_data(buf);
    let text = if len == 0 {
        String::new()
    } else {
        // SAFETY: the buffer holds `len` bytes at `data` until freed below.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(data, len) }).into_owned()
    };
    c2rs_buffer_free(buf);
    text
}

pub fn error_message(ev: *const c2rs_event) -> String {
    let mut buf = std::ptr::null_mut();
    assert_eq!(c2rs_event_error_message(ev, &mut buf), 0);
    take_text(buf)
}

pub fn probe_report() -> String {
    let mut buf = std::ptr::null_mut();
    assert_eq!(c2rs_cuda_probe_report(&mut buf), 0);
    take_text(buf)
}

/// True when at least `min` GPUs exist. Otherwise skips (returns false), except that
/// `C2RS_REQUIRE_GPU=1` turns a skip for lack of any GPU into a failure.
pub fn gpus_or_skip(test: &str, min: i32) -> bool {
    let n = c2rs_cuda_device_count();
    if n >= min {
        return true;
    }
    if n == 0 && std::env::var("C2RS_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("{test}: C2RS_REQUIRE_GPU=1 but no GPU: {}", probe_report());
    }
    eprintln!(
        "{test}: skipped, {n} GPU(s) (needs {min}): {}",
        probe_report()
    );
    false
}

/// Upstream TestSetGetDevice*: set each device (ascending, then descending) and read it back
/// (vacuous without devices).
pub fn set_then_get_every_device() {
    let n = c2rs_cuda_device_count();
    for order in [(0..n).collect::<Vec<_>>(), (0..n).rev().collect()] {
        for i in order {
            assert_eq!(c2rs_cuda_set_device(i), 0, "{}", last_error());
            let mut got = -1;
            assert_eq!(c2rs_cuda_get_device(&mut got), 0);
            assert_eq!(got, i);
        }
    }
}
