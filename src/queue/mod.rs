//! Caffe2's blob queues: `BlobsQueue` (a bounded FIFO of records that move by swapping slot
//! contents) and `RebatchingQueue` (a FIFO of rows that re-batches tensors), each with its
//! statistics. Operators and the C ABI live in `ops/` and `ffi/`.

mod blobs_queue;
mod rebatching;
mod stats;

pub use blobs_queue::{BlobsQueue, Outcome};
pub use rebatching::RebatchingQueue;
pub use stats::{QueueStats, StatsReport, StatsSnapshot};
