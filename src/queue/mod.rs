//! Caffe2's blob queues: `BlobsQueue` (a bounded FIFO of records that move by swapping slot
//! contents) and `RebatchingQueue` (a FIFO of rows that re-batches tensors), each with its
//! statistics. Operators and the C ABI live in `ops/` and `ffi/`.

mod blobs_queue;
mod rebatching;
mod stats;

pub use blobs_queue::{BlobsQueue, Outcome};
pub use rebatching::RebatchingQueue;
pub use stats::{QueueStats, StatsReport, StatsSnapshot};

/// A queue's size argument (`capacity`, `num_blobs`) as a count: enforce `>= 1`.
fn at_least_one(v: i64, what: &str) -> crate::Result<usize> {
    if v < 1 {
        return Err(crate::error::C2rsError::enforce(format!(
            "{what} must be >= 1, got {v}"
        )));
    }
    Ok(v as usize)
}
