//! RebatchingQueue operators (spec queues.md §4), CPU only: `CreateRebatchingQueue`,
//! `EnqueueRebatchingQueue`, `DequeueRebatchingQueue`, `CloseRebatchingQueue`.
//!
//! The handle blob holds an `Arc<RebatchingQueue>`, cloned at the start of every run, so
//! destroying the handle while an operator blocks cannot free the queue under it.

use std::sync::Arc;

use crate::error::{C2rsError, Result};
use crate::operator::{OpBase, OpSchema, Operator, Registry};
use crate::queue::RebatchingQueue;
use crate::tensor::Tensor;
use crate::workspace::BlobNative;

impl BlobNative for RebatchingQueue {
    const TYPE_NAME: &'static str = "std::unique_ptr<caffe2::RebatchingQueue>";
}

fn queue_input(base: &OpBase) -> Result<Arc<RebatchingQueue>> {
    let blob = base.input(0)?;
    if blob.is_empty() {
        return Err(C2rsError::enforce(format!(
            "{}: queue blob {} holds no RebatchingQueue",
            base.op_type(),
            base.input_name(0)
        )));
    }
    blob.native::<RebatchingQueue>().map_err(|e| {
        C2rsError::new(
            e.kind(),
            format!(
                "{} Offending Blob name: {}.",
                e.message(),
                base.input_name(0)
            ),
        )
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Enqueue,
    Dequeue,
    Close,
}

struct RebatchingOp {
    base: OpBase,
    kind: Kind,
}

impl RebatchingOp {
    fn build(base: OpBase, kind: Kind) -> Result<Box<dyn Operator>> {
        match kind {
            Kind::Create => {
                base.single_arg::<i64>("capacity", 1)?;
                base.single_arg::<i64>("num_blobs", 1)?;
            }
            Kind::Enqueue => {
                base.single_arg::<bool>("enqueue_batch", false)?;
            }
            Kind::Dequeue => {
                let n = base.single_arg::<i64>("num_elements", 1)?;
                if n < 1 {
                    return Err(C2rsError::enforce(format!(
                        "num_elements must be >= 1, got {n}"
                    )));
                }
            }
            Kind::Close => {
                if base.num_inputs() != 1 {
                    return Err(C2rsError::enforce(format!(
                        "CloseRebatchingQueue: expected 1 input, got {}",
                        base.num_inputs()
                    )));
                }
            }
        }
        Ok(Box::new(Self { base, kind }))
    }

    fn enqueue(&self) -> Result<bool> {
        let b = &self.base;
        let queue = queue_input(b)?;
        if b.num_inputs() != queue.num_blobs() + 1 {
            return Err(C2rsError::enforce(format!(
                "EnqueueRebatchingQueue: expected {} inputs (queue + {} tensors), got {}",
                queue.num_blobs() + 1,
                queue.num_blobs(),
                b.num_inputs()
            )));
        }
        let tensors = (1..b.num_inputs())
            .map(|i| b.input_tensor(i))
            .collect::<Result<Vec<Tensor>>>()?;
        let refs: Vec<&Tensor> = tensors.iter().collect();
        if b.single_arg::<bool>("enqueue_batch", false)? {
            queue.enqueue_many(&refs)
        } else {
            queue.enqueue_one(&refs)
        }
    }

    fn dequeue(&self) -> Result<bool> {
        let b = &self.base;
        let queue = queue_input(b)?;
        if b.num_outputs() != queue.num_blobs() {
            return Err(C2rsError::enforce(format!(
                "DequeueRebatchingQueue: expected {} outputs, got {}",
                queue.num_blobs(),
                b.num_outputs()
            )));
        }
        let Some(outputs) = queue.dequeue(b.single_arg::<i64>("num_elements", 1)?)? else {
            return Ok(false);
        };
        for (i, t) in outputs.into_iter().enumerate() {
            b.set_output_tensor(i, t)?;
        }
        Ok(true)
    }
}

impl Operator for RebatchingOp {
    fn base(&self) -> &OpBase {
        &self.base
    }

    fn run(&self) -> Result<bool> {
        match self.kind {
            Kind::Create => {
                let queue = RebatchingQueue::new(
                    self.base.single_arg::<i64>("capacity", 1)?,
                    self.base.single_arg::<i64>("num_blobs", 1)?,
                )?;
                self.base.output(0)?.set_native(Arc::new(queue));
                Ok(true)
            }
            Kind::Enqueue => self.enqueue(),
            Kind::Dequeue => self.dequeue(),
            Kind::Close => {
                queue_input(&self.base)?.close();
                Ok(true)
            }
        }
    }

    fn cancel(&self) {
        if matches!(self.kind, Kind::Enqueue | Kind::Dequeue) {
            if let Ok(q) = queue_input(&self.base) {
                q.close();
            }
        }
    }
}

pub fn register(registry: &mut Registry) -> Result<()> {
    let ops = [
        (
            OpSchema::new("CreateRebatchingQueue")
                .num_inputs(0)
                .num_outputs(1)
                .set_doc(
                    "Creates a RebatchingQueue of `capacity` elements of `num_blobs` tensors.",
                ),
            Kind::Create,
        ),
        (
            OpSchema::new("EnqueueRebatchingQueue")
                .num_inputs_range(2, usize::MAX)
                .num_outputs(0)
                .set_doc(
                    "Enqueues one element, or with `enqueue_batch` every row along dim 0. If the \
                     Queue is closed this operation will fail.",
                ),
            Kind::Enqueue,
        ),
        (
            OpSchema::new("DequeueRebatchingQueue")
                .num_inputs(1)
                .num_outputs_range(1, usize::MAX)
                .set_doc("Dequeues `num_elements` elements stacked under a new leading dim."),
            Kind::Dequeue,
        ),
        (
            OpSchema::new("CloseRebatchingQueue")
                .num_inputs(1)
                .num_outputs(0)
                .set_doc("Closes the queue: enqueues fail, dequeues drain then fail."),
            Kind::Close,
        ),
    ];
    for (schema, kind) in ops {
        registry.register(schema, move |base| RebatchingOp::build(base, kind))?;
    }
    Ok(())
}
