//! Count-down counters (Caffe2's `counter_ops`): `CreateCounter`, `ResetCounter`,
//! `CountDown`, `CheckCounterDone`, `CountUp`, `RetrieveCount`. A counter is an atomic INT64
//! shared through its blob; `ReaderWithLimit` and checkpoint epoch limiters build on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::{C2rsError, Result};
use crate::operator::{OpBase, OpSchema, Registry};
use crate::tensor::{DataType, Tensor};
use crate::workspace::BlobNative;

use super::FnOperator;

/// Caffe2's `Counter<int64_t>`.
pub struct Counter {
    /// The count. SeqCst: each operation is one atomic read-modify-write with no other data
    /// published through it, so any ordering would do; SeqCst keeps the reasoning trivial.
    /// Wraps (never UB) at the i64 range ends, which no real count reaches.
    count: AtomicI64,
}

impl Counter {
    pub fn new(count: i64) -> Self {
        Self {
            count: AtomicI64::new(count),
        }
    }
    /// Decrements; true ("done") when the count was already ≤ 0 before.
    pub fn count_down(&self) -> bool {
        self.count.fetch_sub(1, Ordering::SeqCst) <= 0
    }
    /// Increments and returns the previous count.
    pub fn count_up(&self) -> i64 {
        self.count.fetch_add(1, Ordering::SeqCst)
    }
    pub fn retrieve(&self) -> i64 {
        self.count.load(Ordering::SeqCst)
    }
    pub fn is_done(&self) -> bool {
        self.retrieve() <= 0
    }
    /// Sets the count, returning the previous one.
    pub fn reset(&self, count: i64) -> i64 {
        self.count.swap(count, Ordering::SeqCst)
    }
}

impl BlobNative for Counter {
    const TYPE_NAME: &'static str = "std::unique_ptr<Counter<int64_t>>";
}

fn init_count(base: &OpBase) -> Result<i64> {
    let n = base.single_arg::<i64>("init_count", 0)?;
    if n < 0 {
        return Err(C2rsError::enforce(format!(
            "negative init_count is not permitted. (init_count = {n})"
        )));
    }
    Ok(n)
}

fn counter(base: &OpBase) -> Result<Arc<Counter>> {
    base.input_native::<Counter>(0)
}

fn create_counter(base: &OpBase) -> Result<bool> {
    base.output(0)?
        .set_native(Arc::new(Counter::new(init_count(base)?)));
    Ok(true)
}

fn reset_counter(base: &OpBase) -> Result<bool> {
    let previous = counter(base)?.reset(init_count(base)?);
    if base.num_outputs() == 1 {
        base.set_output_tensor(0, Tensor::from_slice(DataType::Int64, &[], &[previous])?)?;
    }
    Ok(true)
}

fn count_down(base: &OpBase) -> Result<bool> {
    let done = counter(base)?.count_down();
    base.set_output_tensor(
        0,
        Tensor::from_slice(DataType::Bool, &[], &[u8::from(done)])?,
    )?;
    Ok(true)
}

fn check_counter_done(base: &OpBase) -> Result<bool> {
    let done = counter(base)?.is_done();
    base.set_output_tensor(
        0,
        Tensor::from_slice(DataType::Bool, &[], &[u8::from(done)])?,
    )?;
    Ok(true)
}

fn count_up(base: &OpBase) -> Result<bool> {
    let previous = counter(base)?.count_up();
    base.set_output_tensor(0, Tensor::from_slice(DataType::Int64, &[], &[previous])?)?;
    Ok(true)
}

fn retrieve_count(base: &OpBase) -> Result<bool> {
    let count = counter(base)?.retrieve();
    base.set_output_tensor(0, Tensor::from_slice(DataType::Int64, &[], &[count])?)?;
    Ok(true)
}

const COUNTER_INPUT: &str = "A blob pointing to an instance of a counter (from CreateCounter).";

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        OpSchema::new("CreateCounter")
            .num_inputs(0)
            .num_outputs(1)
            .set_doc(
                "Creates a count-down counter with initial value specified by the 'init_count' \
                 argument. Should not do gradient.",
            )
            .typed_arg(
                "init_count",
                "int",
                "0",
                "Initial count for the counter, must be >= 0.",
            )
            .output(
                0,
                "counter",
                "A blob pointing to an instance of a new counter.",
            ),
        |base| {
            init_count(&base)?;
            Ok(FnOperator::boxed(base, create_counter))
        },
    )?;
    registry.register(
        OpSchema::new("ResetCounter")
            .num_inputs(1)
            .num_outputs_range(0, 1)
            .set_doc(
                "Resets a count-down counter with initial value specified by the 'init_count' \
                 argument. Should not do gradient.",
            )
            .typed_arg(
                "init_count",
                "int",
                "0",
                "Resets counter to this value, must be >= 0.",
            )
            .input(0, "counter", COUNTER_INPUT)
            .output(
                0,
                "previous_value",
                "(optional) Previous value of the counter, an INT64 scalar.",
            ),
        |base| {
            init_count(&base)?;
            Ok(FnOperator::boxed(base, reset_counter))
        },
    )?;
    registry.register(
        OpSchema::new("CountDown")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc(
                "If the internal count value > 0, decreases count value by 1 and outputs false, \
                 otherwise outputs true. Should not do gradient.",
            )
            .input(0, "counter", COUNTER_INPUT)
            .output(
                0,
                "done",
                "BOOL scalar: false unless the internal count is zero.",
            ),
        |base| Ok(FnOperator::boxed(base, count_down)),
    )?;
    registry.register(
        OpSchema::new("CheckCounterDone")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("If the internal count value <= 0, outputs true, otherwise outputs false.")
            .input(0, "counter", COUNTER_INPUT)
            .output(
                0,
                "done",
                "BOOL scalar: true if the internal count is zero or negative.",
            ),
        |base| Ok(FnOperator::boxed(base, check_counter_done)),
    )?;
    registry.register(
        OpSchema::new("CountUp")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc(
                "Increases count value by 1 and outputs the previous value atomically. Should \
                 not do gradient.",
            )
            .input(0, "counter", COUNTER_INPUT)
            .output(
                0,
                "previous_count",
                "INT64 scalar: count value BEFORE this operation.",
            ),
        |base| Ok(FnOperator::boxed(base, count_up)),
    )?;
    registry.register(
        OpSchema::new("RetrieveCount")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Retrieve the current value from the counter. Should not do gradient.")
            .input(0, "counter", COUNTER_INPUT)
            .output(0, "count", "INT64 scalar: current count value."),
        |base| Ok(FnOperator::boxed(base, retrieve_count)),
    )?;
    Ok(())
}
