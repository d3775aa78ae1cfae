//! Caffe2 events: a device-typed completion flag with the state machine
//! INITIALIZED → SCHEDULED → SUCCESS | FAILED. CPU events are a mutex, a condvar and an atomic
//! status; CUDA events wrap a `CUevent` (see `cuda`). Record should happen at most once per
//! event; Wait, Finish and Query may run concurrently from any thread.

use std::sync::atomic::{AtomicI32, Ordering};

use parking_lot::{Condvar, Mutex};

use super::cuda::CudaEvent;
use super::{Context, DeviceSpec, DeviceType};
use crate::error::{C2rsError, Result};

/// Caffe2's `EventStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventStatus {
    Initialized = 0,
    Scheduled = 1,
    Success = 2,
    Failed = 3,
}

impl EventStatus {
    pub fn from_i32(v: i32) -> Result<Self> {
        match v {
            0 => Ok(EventStatus::Initialized),
            1 => Ok(EventStatus::Scheduled),
            2 => Ok(EventStatus::Success),
            3 => Ok(EventStatus::Failed),
            n => Err(C2rsError::invalid_argument(format!(
                "event status {n} is not one of 0..=3"
            ))),
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, EventStatus::Success | EventStatus::Failed)
    }
}

/// Text of `ErrorMessage()` for an event that did not fail.
pub const NO_ERROR: &str = "No error";

/// A CPU event.
pub struct CpuEvent {
    /// The `EventStatus` as i32. Written only while holding `message`, so waiters that check
    /// it under the lock cannot miss a change; read lock-free by `query` (Acquire pairs with
    /// the Release store so a reader seeing FAILED also sees the message once it locks).
    status: AtomicI32,
    /// The failure message (empty unless FAILED). Guards every status transition.
    message: Mutex<String>,
    /// Notified (all) when the status becomes SUCCESS or FAILED.
    completed: Condvar,
}

impl Default for CpuEvent {
    fn default() -> Self {
        Self {
            status: AtomicI32::new(EventStatus::Initialized as i32),
            message: Mutex::new(String::new()),
            completed: Condvar::new(),
        }
    }
}

impl CpuEvent {
    fn status(&self) -> EventStatus {
        match self.status.load(Ordering::Acquire) {
            1 => EventStatus::Scheduled,
            2 => EventStatus::Success,
            3 => EventStatus::Failed,
            _ => EventStatus::Initialized,
        }
    }

    fn set_status(&self, s: EventStatus) {
        self.status.store(s as i32, Ordering::Release);
    }

    pub fn record(&self, err: Option<&str>) -> Result<()> {
        let mut msg = self.message.lock();
        let status = self.status();
        if status == EventStatus::Scheduled {
            return Err(C2rsError::enforce("Calling Record multiple times"));
        }
        // SUCCESS/FAILED: the async part finished first; the record is a no-op.
        if status == EventStatus::Initialized {
            match err {
                None => self.set_status(EventStatus::Scheduled),
                Some(e) => {
                    *msg = e.to_string();
                    self.set_status(EventStatus::Failed);
                    self.completed.notify_all();
                }
            }
        }
        Ok(())
    }

    /// Blocks until SUCCESS or FAILED (forever if nobody finishes the event).
    pub fn finish(&self) {
        let mut msg = self.message.lock();
        while !self.status().is_finished() {
            self.completed.wait(&mut msg);
        }
    }

    pub fn query(&self) -> EventStatus {
        self.status()
    }

    pub fn error_message(&self) -> String {
        let msg = self.message.lock();
        if self.status() == EventStatus::Failed {
            msg.clone()
        } else {
            NO_ERROR.to_string()
        }
    }

    pub fn set_finished(&self, err: Option<&str>) -> Result<()> {
        let mut msg = self.message.lock();
        if self.status().is_finished() {
            return Err(C2rsError::enforce("Calling SetFinished on finished event"));
        }
        match err {
            None => self.set_status(EventStatus::Success),
            Some(e) => {
                *msg = e.to_string();
                self.set_status(EventStatus::Failed);
            }
        }
        self.completed.notify_all();
        Ok(())
    }

    pub fn reset(&self) {
        let mut msg = self.message.lock();
        msg.clear();
        self.set_status(EventStatus::Initialized);
    }
}

enum EventImpl {
    Cpu(CpuEvent),
    Cuda(CudaEvent),
}

/// Caffe2's `Event`: dispatches on the device type it was created for.
pub struct Event {
    device_type: DeviceType,
    inner: EventImpl,
}

impl Event {
    /// An event for `spec`'s device (CUDA: on its gpu, or the current device when unset).
    pub fn new(spec: &DeviceSpec) -> Result<Self> {
        let inner = match spec.device_type.canonical() {
            DeviceType::Cuda => EventImpl::Cuda(CudaEvent::new(spec.device_id)?),
            _ => EventImpl::Cpu(CpuEvent::default()),
        };
        Ok(Self {
            device_type: spec.device_type,
            inner,
        })
    }

    /// A CPU event.
    pub fn cpu() -> Self {
        Self {
            device_type: DeviceType::Cpu,
            inner: EventImpl::Cpu(CpuEvent::default()),
        }
    }

    pub fn device_type(&self) -> DeviceType {
        self.device_type
    }

    /// type (MKLDNN counts as CPU); with `err` the event fails with that message. A CUDA event
    /// needs the CUDA context whose stream it records; a CPU event ignores `ctx`.
    /// type (MKLDNN counts as CPU); with `err` the event fails with that message.
    pub fn record(
        &self,
        recording_type: DeviceType,
        ctx: Option<&Context>,
        err: Option<&str>,
    ) -> Result<()> {
        if recording_type.canonical() != self.device_type.canonical() {
            return Err(C2rsError::enforce(
                "You are trying to record with a wrong device type.",
            ));
        }
        match &self.inner {
            EventImpl::Cpu(e) => e.record(err),
            EventImpl::Cuda(e) => match (ctx, err) {
                (Some(Context::Cuda(c)), _) => e.record(c, err),
                // A failure needs no stream.
                (_, Some(msg)) => e.record_failure(msg),
                _ => Err(C2rsError::enforce(
                    "Recording a CUDA event needs the CUDA context whose stream it follows",
                )),
            },
        }
    }

    /// Caffe2's `Event::Wait(waiter_type, context)` through the wait table:
    /// CPU←CPU finishes; CUDA←CUDA makes the context's stream wait (host not blocked);
    /// CPU←CUDA and CUDA←CPU block the host until the event finishes. Only CUDA←CUDA uses
    /// `ctx` (the waiting CUDA context).
    pub fn wait(&self, waiter_type: DeviceType, ctx: Option<&Context>) -> Result<()> {
        match (&self.inner, waiter_type.canonical()) {
            (EventImpl::Cpu(e), _) => {
                e.finish();
                Ok(())
            }
            (EventImpl::Cuda(e), DeviceType::Cuda) => match ctx {
                Some(Context::Cuda(c)) => e.wait_on_stream(c),
                _ => Err(C2rsError::enforce(
                    "A CUDA waiter needs a CUDA context to wait on a CUDA event",
                )),
            },
            (EventImpl::Cuda(e), _) => e.finish(),
        }
    }

    /// Blocks until the event is SUCCESS or FAILED (CUDA: synchronises the recorded work).
    pub fn finish(&self) -> Result<()> {
        match &self.inner {
            EventImpl::Cpu(e) => {
                e.finish();
                Ok(())
            }
            EventImpl::Cuda(e) => e.finish(),
        }
    }

    /// The status, updated from the device for a scheduled CUDA event.
    pub fn query(&self) -> EventStatus {
        match &self.inner {
            EventImpl::Cpu(e) => e.query(),
            EventImpl::Cuda(e) => e.query(),
        }
    }

    pub fn is_scheduled(&self) -> bool {
        self.query() == EventStatus::Scheduled
    }

    pub fn is_finished(&self) -> bool {
        self.query().is_finished()
    }

    /// The failure message, or "No error".
    pub fn error_message(&self) -> String {
        match &self.inner {
            EventImpl::Cpu(e) => e.error_message(),
            EventImpl::Cuda(e) => e.error_message(),
        }
    }

    /// Finishes the event without device work: SUCCESS, or FAILED with `err`.
    pub fn set_finished(&self, err: Option<&str>) -> Result<()> {
        match &self.inner {
            EventImpl::Cpu(e) => e.set_finished(err),
            EventImpl::Cuda(e) => e.set_finished(err),
        }
    }

    /// Back to INITIALIZED with no message, ready to be recorded again.
    pub fn reset(&self) {
        match &self.inner {
            EventImpl::Cpu(e) => e.reset(),
            EventImpl::Cuda(e) => e.reset(),
        }
    }
}

/// Caffe2's `EventCanScheduleCPU/CUDA`: may a child of type `child_type` start when its
/// parent's event (of `parent_type`) has `parent_status`? SUCCESS: yes; SCHEDULED: only on the
/// same device type and when the child supports async scheduling; otherwise no.
pub fn can_schedule(
    parent_type: DeviceType,
    parent_status: EventStatus,
    child_type: DeviceType,
    child_supports_async: bool,
) -> bool {
    match parent_status {
        EventStatus::Success => true,
        EventStatus::Scheduled => {
            parent_type.canonical() == child_type.canonical() && child_supports_async
        }
        _ => false,
    }
}
