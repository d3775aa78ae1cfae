//! Wall-clock timers (Caffe2's `stats_ops` timers): `TimerBegin`, `TimerEnd`,
//! `TimerGetAndEnd`, `TimerGet`. Checkpoint tasks time their Save/Load with them.
//!
//! Differences from Caffe2: the timer is shared by `Arc` between the `TimerBegin` operator
//! and its output blob (Caffe2 stored a raw pointer into the operator, dangling once the net
//! was gone); the `time_ns` stat Caffe2 published on `TimerEnd` is not kept.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::error::{C2rsError, Result};
use crate::operator::{OpBase, OpSchema, Operator, Registry};
use crate::tensor::{DataType, Tensor};
use crate::workspace::BlobNative;

use super::FnOperator;

/// A timer a `TimerBegin` blob holds.
pub struct Timer {
    /// The `counter_name` (default: the TimerBegin output name).
    name: String,
    /// When the running timer started; `None` while stopped. Short critical sections only.
    started: Mutex<Option<Instant>>,
}

impl Timer {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            started: Mutex::new(None),
        }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn is_running(&self) -> bool {
        self.started.lock().is_some()
    }
    fn begin(&self) -> Result<()> {
        let mut s = self.started.lock();
        if s.is_some() {
            return Err(C2rsError::enforce(
                "Called TimerBegin on an already running timer.",
            ));
        }
        *s = Some(Instant::now());
        Ok(())
    }
    /// Nanoseconds since `begin`; with `stop` the timer stops too.
    fn elapsed_ns(&self, stop: bool, what: &str) -> Result<i64> {
        let mut s = self.started.lock();
        let Some(start) = *s else {
            return Err(C2rsError::enforce(format!(
                "Called {what} on a stopped timer."
            )));
        };
        if stop {
            *s = None;
        }
        Ok(i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX))
    }
}

impl BlobNative for Timer {
    const TYPE_NAME: &'static str = "caffe2::TimerInstance*";
}

/// `TimerBegin`: the operator owns one timer; each run stores it in the output and starts it.
struct TimerBegin {
    base: OpBase,
    timer: Arc<Timer>,
}

impl Operator for TimerBegin {
    fn base(&self) -> &OpBase {
        &self.base
    }
    fn run(&self) -> Result<bool> {
        self.base.output(0)?.set_native(Arc::clone(&self.timer));
        self.timer.begin()?;
        Ok(true)
    }
}

fn timer_input(base: &OpBase) -> Result<Arc<Timer>> {
    base.input_native::<Timer>(0)
}

fn timer_end(base: &OpBase) -> Result<bool> {
    timer_input(base)?.elapsed_ns(true, "TimerEnd")?;
    Ok(true)
}

fn timer_get_and_end(base: &OpBase) -> Result<bool> {
    let ns = timer_input(base)?.elapsed_ns(true, "TimerGet")?;
    base.set_output_tensor(0, Tensor::from_slice(DataType::Int64, &[1], &[ns])?)?;
    Ok(true)
}

fn timer_get(base: &OpBase) -> Result<bool> {
    let ns = timer_input(base)?.elapsed_ns(false, "TimerGet")?;
    base.set_output_tensor(0, Tensor::from_slice(DataType::Int64, &[], &[ns])?)?;
    Ok(true)
}

const TIMER_INPUT: &str = "The timer, obtained from TimerBegin.";

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        OpSchema::new("TimerBegin")
            .num_inputs(0)
            .num_outputs(1)
            .set_doc(
                "Start a wallclock timer, returning a handle to it. The timer is stopped by \
                 calling TimerEnd (or TimerGetAndEnd). Running it again while the timer runs \
                 fails (\"Called TimerBegin on an already running timer.\").",
            )
            .typed_arg(
                "counter_name",
                "string",
                "the output's name",
                "Name of the timer. If not provided, use output name.",
            )
            .output(0, "timer", "The timer, to be passed to TimerEnd."),
        |base| {
            let name =
                base.single_arg::<String>("counter_name", base.output_name(0).to_string())?;
            let timer = Arc::new(Timer::new(&name));
            Ok(Box::new(TimerBegin { base, timer }))
        },
    )?;
    registry.register(
        OpSchema::new("TimerEnd")
            .num_inputs(1)
            .num_outputs(0)
            .set_doc("Stop a timer started with TimerBegin (fails on a stopped timer).")
            .input(0, "timer", TIMER_INPUT),
        |base| Ok(FnOperator::boxed(base, timer_end)),
    )?;
    registry.register(
        OpSchema::new("TimerGetAndEnd")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Queries the current time of a timer in nanos, stops the timer.")
            .input(0, "timer", TIMER_INPUT)
            .output(0, "nanos", "Nanoseconds, an INT64 tensor of shape [1]."),
        |base| Ok(FnOperator::boxed(base, timer_get_and_end)),
    )?;
    registry.register(
        OpSchema::new("TimerGet")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Queries the current time of a timer in nanos (the timer keeps running).")
            .input(0, "timer", TIMER_INPUT)
            .output(0, "nanos", "Nanoseconds, an INT64 scalar."),
        |base| Ok(FnOperator::boxed(base, timer_get)),
    )?;
    Ok(())
}
