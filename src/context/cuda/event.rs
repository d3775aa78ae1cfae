//! CUDA events with Caffe2's state machine: a `CUevent` (timing disabled) created on its gpu,
//! plus the status, the stream it was recorded on and the failure message.

use std::sync::atomic::{AtomicI32, Ordering};

use cudarc::driver::sys;
use parking_lot::{Condvar, Mutex};

use super::context::CudaContext;
use super::device::{DeviceGuard, ensure_init, get_device, resolve_gpu};
use super::error::{check, driver_error_text};
use crate::context::events::{EventStatus, NO_ERROR};
use crate::error::{C2rsError, Result};

struct Recorded {
    /// The stream the event was recorded on (None until recorded, and after reset).
    stream: Option<sys::CUstream>,
    message: String,
}

/// A CUDA event.
pub struct CudaEvent {
    gpu: i32,
    event: sys::CUevent,
    /// `EventStatus` as i32; changed only under `state` (Release), read lock-free (Acquire).
    status: AtomicI32,
    /// Guards every status change, the stream and the message.
    state: Mutex<Recorded>,
    /// Notified (all) when the status leaves INITIALIZED (recorded, failed or set finished).
    recorded: Condvar,
}

// SAFETY: the CUevent is a driver handle usable from any thread; the rest is synchronised.
unsafe impl Send for CudaEvent {}
// SAFETY: as above.
unsafe impl Sync for CudaEvent {}

impl CudaEvent {
    /// An event on `gpu` (None → the current device).
    pub fn new(gpu: Option<i32>) -> Result<Self> {
        ensure_init()?;
        let gpu = resolve_gpu(gpu)?;
        let _guard = DeviceGuard::new(gpu)?;
        let mut event: sys::CUevent = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the gpu's context is current.
        check(
            unsafe {
                sys::cuEventCreate(
                    &mut event,
                    sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32,
                )
            },
            "cuEventCreate",
        )?;
        Ok(Self {
            gpu,
            event,
            status: AtomicI32::new(EventStatus::Initialized as i32),
            state: Mutex::new(Recorded {
                stream: None,
                message: String::new(),
            }),
            recorded: Condvar::new(),
        })
    }

    pub fn gpu(&self) -> i32 {
        self.gpu
    }

    fn status(&self) -> EventStatus {
        EventStatus::from_i32(self.status.load(Ordering::Acquire)).unwrap_or(EventStatus::Failed)
    }

    fn set_status(&self, s: EventStatus) {
        self.status.store(s as i32, Ordering::Release);
    }

    pub fn record(&self, ctx: &CudaContext, err: Option<&str>) -> Result<()> {
        let mut st = self.state.lock();
        if self.status() != EventStatus::Initialized {
            return Err(C2rsError::enforce("Calling Record multiple times"));
        }
        match err {
            None => {
                if get_device()? != self.gpu {
                    return Err(C2rsError::enforce(
                        "When you call EventRecordCUDA, your current device should be the same as the device specified by the event.",
                    ));
                }
                if ctx.gpu_id() != self.gpu {
                    return Err(C2rsError::enforce(format!(
                        "The context's device {} differs from the event's device {}",
                        ctx.gpu_id(),
                        self.gpu
                    )));
                }
                let stream = ctx.cuda_stream()?;
                // SAFETY: live event and stream on the same device.
                check(
                    unsafe { sys::cuEventRecord(self.event, stream) },
                    "cuEventRecord",
                )?;
                st.stream = Some(stream);
                self.set_status(EventStatus::Scheduled);
            }
            Some(e) => {
                st.message = e.to_string();
                self.set_status(EventStatus::Failed);
            }
        }
        self.recorded.notify_all();
        Ok(())
    }

    /// Record with an error: FAILED with `err` (no stream involved).
    pub fn record_failure(&self, err: &str) -> Result<()> {
        let mut st = self.state.lock();
        if self.status() != EventStatus::Initialized {
            return Err(C2rsError::enforce("Calling Record multiple times"));
        }
        st.message = err.to_string();
        self.set_status(EventStatus::Failed);
        self.recorded.notify_all();
        Ok(())
    }

    fn wait_recorded(&self) -> parking_lot::MutexGuard<'_, Recorded> {
        let mut st = self.state.lock();
        while self.status() == EventStatus::Initialized {
            self.recorded.wait(&mut st);
        }
        st
    }

    /// Waits until recorded, then for the recorded work: SUCCESS, or FAILED with the error.
    pub fn finish(&self) -> Result<()> {
        let st = self.wait_recorded();
        if self.status() != EventStatus::Scheduled {
            return Ok(());
        }
        drop(st);
        // The driver may refuse event calls on a thread with no current context (cudarc binds
        // one before each); a failed switch leaves the call to report that itself.
        let guard = DeviceGuard::new(self.gpu).ok();
        // SAFETY: a live event; synchronising needs no lock (Query/Wait may run meanwhile).
        let rc = unsafe { sys::cuEventSynchronize(self.event) };
        drop(guard);
        let mut st = self.state.lock();
        if self.status() == EventStatus::Scheduled {
            if rc == sys::CUresult::CUDA_SUCCESS {
                self.set_status(EventStatus::Success);
            } else {
                st.message = driver_error_text(rc);
                self.set_status(EventStatus::Failed);
            }
        }
        Ok(())
    }

    /// The status; a scheduled event is queried on the device first.
    pub fn query(&self) -> EventStatus {
        if self.status() != EventStatus::Scheduled {
            return self.status();
        }
        let mut st = self.state.lock();
        if self.status() == EventStatus::Scheduled {
            let _guard = DeviceGuard::new(self.gpu).ok();
            // SAFETY: a live event.
            let rc = unsafe { sys::cuEventQuery(self.event) };
            if rc == sys::CUresult::CUDA_SUCCESS {
                self.set_status(EventStatus::Success);
            } else if rc != sys::CUresult::CUDA_ERROR_NOT_READY {
                st.message = driver_error_text(rc);
                self.set_status(EventStatus::Failed);
            }
        }
        self.status()
    }

    pub fn error_message(&self) -> String {
        let st = self.state.lock();
        if self.status() == EventStatus::Failed {
            st.message.clone()
        } else {
            NO_ERROR.to_string()
        }
    }

    pub fn set_finished(&self, err: Option<&str>) -> Result<()> {
        let mut st = self.state.lock();
        if self.status() != EventStatus::Initialized {
            return Err(C2rsError::enforce(
                "Calling SetFinished on recorded CUDA event",
            ));
        }
        match err {
            None => self.set_status(EventStatus::Success),
            Some(e) => {
                st.message = e.to_string();
                self.set_status(EventStatus::Failed);
            }
        }
        self.recorded.notify_all();
        Ok(())
    }

    pub fn reset(&self) {
        let mut st = self.state.lock();
        st.message.clear();
        st.stream = None;
        self.set_status(EventStatus::Initialized);
    }

    /// CUDA waits CUDA: after the event is recorded, the context's stream waits for it on the
    /// device (the host does not block); same stream → nothing to do.
    pub fn wait_on_stream(&self, ctx: &CudaContext) -> Result<()> {
        let st = self.wait_recorded();
        if self.status() != EventStatus::Scheduled {
            return Ok(());
        }
        let event_stream = st.stream;
        drop(st);
        let stream = ctx.cuda_stream()?;
        if event_stream == Some(stream) {
            return Ok(());
        }
        // SAFETY: live stream and event; cross-device waits are allowed.
        check(
            unsafe { sys::cuStreamWaitEvent(stream, self.event, 0) },
            "cuStreamWaitEvent",
        )
    }
}

impl Drop for CudaEvent {
    fn drop(&mut self) {
        let _guard = DeviceGuard::new(self.gpu).ok();
        // SAFETY: created by this event, destroyed once; errors ignored in teardown.
        let _ = unsafe { sys::cuEventDestroy_v2(self.event) };
    }
}
