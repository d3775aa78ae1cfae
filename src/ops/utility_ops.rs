//! Blob utilities: `Free` (drop blob contents; `c2rs_memonger_release_blobs_when_used`
//! inserts it after a blob's last use) and `Alias` (output shares the input's storage).

use std::sync::Arc;

use crate::error::{C2rsError, Result};
use crate::operator::{DEVICE_CUDA, OpBase, OpSchema, Operator, Registry};

use super::FnOperator;

/// `Free`: every output blob (in place with its input) becomes empty (Caffe2's
/// `Blob::Reset`), whatever it held: tensors, strings, queues, readers.
fn free(base: &OpBase) -> Result<bool> {
    for out in base.outputs() {
        out.reset();
    }
    Ok(true)
}

/// `Alias`: output 0 is input 0's tensor, sharing its storage (no copy).
///
/// Storage here is copy-on-write: a later writer of either blob copies first, so the two
/// stop sharing where Caffe2 would have written through both.
fn alias(base: &OpBase) -> Result<bool> {
    let input = base.input_tensor(0)?;
    base.set_output_tensor(0, input)?;
    Ok(true)
}

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        OpSchema::new("Free")
            .num_inputs_range(1, usize::MAX)
            .num_outputs_range(1, usize::MAX)
            .same_number_of_output()
            .enforce_one_to_one_inplace()
            .set_doc(
                "Frees the content of the blobs. The input and output blobs should be \
                 one-to-one inplace. Afterwards each blob exists but is uninitialized (a later \
                 reader fails until something writes it). Registered for CPU and CUDA. \
                 Should not do gradient.",
            )
            .input(
                0,
                "blobs",
                "The blobs to free (each also an output of the same name).",
            )
            .output(0, "blobs", "The same blobs, now empty."),
        |base| Ok(FnOperator::boxed(base, free)),
    )?;
    registry.register_creator(
        DEVICE_CUDA,
        "Free",
        Arc::new(|base: OpBase| -> Result<Box<dyn Operator>> { Ok(FnOperator::boxed(base, free)) }),
    )?;
    registry.register(
        OpSchema::new("Alias")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc(
                "Makes the output and the input share the same underlying storage. WARNING: \
                 in general, different tensors should have different underlying storage, \
                 which is the assumption made by components such as the dependency engine and \
                 memory optimization (release_blobs_when_used never frees an aliased blob). \
                 In caffe2rs the storage is copy-on-write: a later in-place writer of either \
                 blob copies first. The input must be a CPU tensor. Should not do gradient.",
            )
            .input(0, "input", "Input tensor whose storage will be shared.")
            .output(
                0,
                "output",
                "Tensor of same shape as input, sharing its storage.",
            ),
        |base| {
            if base.input_name(0) == base.output_name(0) {
                return Err(C2rsError::enforce("Alias: input and output must differ"));
            }
            Ok(FnOperator::boxed(base, alias))
        },
    )?;
    Ok(())
}
