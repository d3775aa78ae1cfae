//! Iteration counters: `Iter` (an INT64 scalar-like tensor incremented per run), `AtomicIter`
//! (the same under a mutex blob) and `CreateMutex` (the mutex blob). The counter is always a
//! CPU tensor of one INT64 element, also when the operator runs under a CUDA device option
//! (as Caffe2's CUDA registration).

use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{C2rsError, Result};
use crate::operator::{DEVICE_CUDA, OpBase, OpSchema, Operator, Registry};
use crate::tensor::{DataType, Tensor};
use crate::workspace::{Blob, BlobContent, BlobNative};

use super::FnOperator;

/// The mutex a `CreateMutex` blob holds (Caffe2's `std::unique_ptr<std::mutex>`).
#[derive(Default)]
pub struct BlobMutex {
    /// Guards nothing by itself: `AtomicIter` holds it around its read-modify-write of the
    /// counter blob, so concurrent `AtomicIter`s sharing this mutex never lose an increment.
    lock: Mutex<()>,
}

impl BlobMutex {
    /// Runs `f` with the mutex held.
    pub fn with_lock<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = self.lock.lock();
        f()
    }
}

impl BlobNative for BlobMutex {
    const TYPE_NAME: &'static str = "std::unique_ptr<std::mutex>";
}

/// Caffe2's `IncrementIter` on `blob`: it must hold one INT64 element, ≥ 0 and below
/// `i64::MAX` ("Overflow will happen!"), which is then incremented in place. The whole
/// read-modify-write happens under the blob's write lock.
pub fn increment_iter(blob: &Blob, name: &str) -> Result<()> {
    let mut guard = blob.write();
    let BlobContent::Tensor(t) = &mut *guard else {
        return Err(C2rsError::enforce(format!(
            "The output of IterOp exists, but not of the right size. (blob {name} holds {}, \
             not a 1-element INT64 tensor)",
            guard.type_name()
        )));
    };
    if t.numel() != 1 {
        return Err(C2rsError::enforce(format!(
            "The output of IterOp exists, but not of the right size. (blob {name} has {} \
             elements, expected 1)",
            t.numel()
        )));
    }
    if t.dtype() != DataType::Int64 {
        return Err(C2rsError::type_mismatch(format!(
            "The iteration counter {name} must be an INT64 tensor, it is {}",
            t.dtype()
        )));
    }
    let iter = &mut t.typed_mut::<i64>()?[0];
    if *iter < 0 {
        return Err(C2rsError::enforce("Previous iteration number is negative."));
    }
    if *iter == i64::MAX {
        return Err(C2rsError::enforce("Overflow will happen!"));
    }
    *iter += 1;
    Ok(())
}

/// `Iter`: with no input, an output that is not a tensor yet starts at 0 (shape `[1]`) and
/// is incremented to 1; otherwise the existing counter is incremented.
fn iter(base: &OpBase) -> Result<bool> {
    let out = base.output(0)?;
    if base.num_inputs() == 0 && !out.is_tensor() {
        // Caffe2 logs that this form (no in-place input) is deprecated, then starts at 0.
        out.set_tensor(Tensor::from_slice(DataType::Int64, &[1], &[0i64])?);
    }
    increment_iter(out, base.output_name(0))?;
    Ok(true)
}

/// `AtomicIter`: input 0 is a mutex blob, input 1 ≡ output 0 the counter.
fn atomic_iter(base: &OpBase) -> Result<bool> {
    let mutex = base.input_native::<BlobMutex>(0)?;
    mutex.with_lock(|| increment_iter(base.output(0)?, base.output_name(0)))?;
    Ok(true)
}

/// `CreateMutex`: output 0 holds a new, unlocked mutex.
fn create_mutex(base: &OpBase) -> Result<bool> {
    base.output(0)?.set_native(Arc::new(BlobMutex::default()));
    Ok(true)
}

fn boxed(run: fn(&OpBase) -> Result<bool>) -> crate::operator::Creator {
    Arc::new(move |base: OpBase| -> Result<Box<dyn Operator>> { Ok(FnOperator::boxed(base, run)) })
}

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        OpSchema::new("Iter")
            .num_inputs_range(0, 1)
            .num_outputs(1)
            .enforce_inplace(&[(0, 0)])
            .set_doc(
                "Stores a single integer, that gets incremented on each call to Run(). Useful \
                 for tracking the iteration count during SGD, for example. The counter is a \
                 1-element INT64 CPU tensor; with no input and no counter yet it starts at 0 \
                 (the first run leaves 1). Fails with \"Overflow will happen!\" when the counter \
                 is already INT64 max, and when it is negative, not INT64 or not 1 element. \
                 No gradient.",
            )
            .input(
                0,
                "iter",
                "(optional, in place with the output) The counter to increment.",
            )
            .output(0, "iter", "The incremented counter."),
        |base| Ok(FnOperator::boxed(base, iter)),
    )?;
    registry.register_creator(DEVICE_CUDA, "Iter", boxed(iter))?;
    registry.register(
        OpSchema::new("AtomicIter")
            .num_inputs(2)
            .num_outputs(1)
            .enforce_inplace(&[(1, 0)])
            .set_doc(
                "Similar to Iter, but takes a mutex as the first input to make sure that updates \
                 are carried out atomically. This can be used in e.g. Hogwild sgd algorithms. \
                 No gradient.",
            )
            .input(
                0,
                "mutex",
                "The mutex used to do atomic increment (from CreateMutex).",
            )
            .input(1, "iter", "The iter counter as an int64_t TensorCPU.")
            .output(
                0,
                "iter",
                "The incremented counter (in place with input 1).",
            ),
        |base| Ok(FnOperator::boxed(base, atomic_iter)),
    )?;
    registry.register_creator(DEVICE_CUDA, "AtomicIter", boxed(atomic_iter))?;
    registry.register(
        OpSchema::new("CreateMutex")
            .num_inputs(0)
            .num_outputs(1)
            .set_doc("Creates an unlocked mutex and returns it in a unique_ptr blob. No gradient.")
            .output(0, "mutex_ptr", "Blob containing a std::unique_ptr<mutex>."),
        |base| Ok(FnOperator::boxed(base, create_mutex)),
    )?;
    Ok(())
}
