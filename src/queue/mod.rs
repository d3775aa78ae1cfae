//! Caffe2's blob queues: `BlobsQueue` (a bounded FIFO of records that move by moving slot
//! contents) and `RebatchingQueue` (a FIFO of rows that re-batches tensors), each with its
//! statistics. Operators and the C ABI live in `ops/` and `ffi/`.

mod blobs_queue;
mod deque;
mod rebatching;
mod ring;
mod slot;
mod stats;
mod waker;

pub use blobs_queue::{BlobsQueue, Outcome, RING_MAX_CAPACITY, RING_MAX_SLOTS};
pub use rebatching::RebatchingQueue;
pub use slot::{Slot, content_bytes};
pub use stats::{QueueStats, StatsReport, StatsSnapshot};

/// What a `BlobsQueue` slot holds. `Default` is an empty slot (what a queue starts with and
/// what new rows are made of).
pub trait QueueSlot: Default + Send {
    /// Bytes of the content, for the `queue_dequeued_bytes` stats.
    fn content_bytes(&self) -> usize;
}

/// The probe queue `new_blob_queue` builds to validate sizes.
impl QueueSlot for () {
    fn content_bytes(&self) -> usize {
        0
    }
}

/// Test slots: a value of 8 bytes, or nothing.
impl QueueSlot for Option<u64> {
    fn content_bytes(&self) -> usize {
        if self.is_some() { 8 } else { 0 }
    }
}

/// A queue's size argument (`capacity`, `num_blobs`) as a count: enforce `>= 1`.
fn at_least_one(v: i64, what: &str) -> crate::Result<usize> {
    if v < 1 {
        return Err(crate::error::C2rsError::enforce(format!(
            "{what} must be >= 1, got {v}"
        )));
    }
    usize::try_from(v).map_err(|_| {
        crate::error::C2rsError::enforce(format!("{what} {v} does not fit this platform"))
    })
}
