//! Catalog documentation of the BlobsQueue and RebatchingQueue operator families (arguments
//! with type, default and meaning, inputs, outputs, differences from Caffe2), joined to their
//! schemas by type name when they are registered (`Registry::register_schema`). Kept apart from
//! `queue_ops.rs` / `rebatching_ops.rs` so the operators and their reference text can change
//! independently; what a schema already documents is never overridden or duplicated.

use crate::operator::OpSchema;

/// Arguments as (name, type, default, meaning).
type Args = &'static [(&'static str, &'static str, &'static str, &'static str)];
/// Inputs or outputs as (index, name, meaning).
type Slots = &'static [(usize, &'static str, &'static str)];

struct Entry {
    op: &'static str,
    args: Args,
    inputs: Slots,
    outputs: Slots,
    differences: &'static str,
}

const QUEUE_IN: &str = "The queue (a BlobsQueue from CreateBlobsQueue or a host's queue object).";

const ENTRIES: &[Entry] = &[
    Entry {
        op: "CreateBlobsQueue",
        args: &[
            (
                "capacity",
                "int",
                "1",
                "Records the queue holds; writers block while it is full. Must be >= 1.",
            ),
            ("num_blobs", "int", "1", "Blobs per record. Must be >= 1."),
            (
                "enforce_unique_name",
                "bool",
                "false",
                "Refuse when a slot blob <output>_<i>_<j> is already visible (\"Queue internal \
                 blob already exists\"); without it a same-name queue shares the slot blobs.",
            ),
            (
                "field_names",
                "string[]",
                "[]",
                "Labels of the record's columns for the per-column dequeued-bytes stats; empty \
                 or exactly num_blobs names.",
            ),
            (
                "strict",
                "bool",
                "false",
                "caffe2rs only: writes fail once the queue is closed (TensorFlow semantics); \
                 Caffe2 accepts writes to a closed queue that has room.",
            ),
        ],
        inputs: &[],
        outputs: &[(
            0,
            "queue",
            "The queue (std::shared_ptr<caffe2::BlobsQueue> blob).",
        )],
        differences: "capacity and num_blobs < 1 are refused (Caffe2 hung or crashed); waiters \
                      use two condition variables; strict is new.",
    },
    Entry {
        op: "EnqueueBlobs",
        args: &[],
        inputs: &[
            (0, "queue", QUEUE_IN),
            (
                1,
                "blobs",
                "The record's blobs (variadic), swapped into the queue.",
            ),
        ],
        outputs: &[(
            0,
            "blobs",
            "The same blobs (in place): they get what the slot held (consumed).",
        )],
        differences: "The same blob twice in one record is refused (Caffe2 corrupted it); a \
                      closed and full queue is an op failure naming the queue.",
    },
    Entry {
        op: "DequeueBlobs",
        args: &[(
            "timeout_secs",
            "float",
            "0",
            "Seconds to wait for a record; <= 0 waits forever. Full precision (Caffe2 truncated \
             to milliseconds).",
        )],
        inputs: &[(0, "queue", QUEUE_IN)],
        outputs: &[(
            0,
            "blobs",
            "The record's blobs (variadic, num_blobs of them), swapped out.",
        )],
        differences: "Timing out or a closed and empty queue is an op failure whose message \
                      says which (\"queue <q> is closed and empty\"), not \"operator returned \
                      false\"; cancel() closes the queue.",
    },
    Entry {
        op: "CloseBlobsQueue",
        args: &[],
        inputs: &[(0, "queue", QUEUE_IN)],
        outputs: &[],
        differences: "",
    },
    Entry {
        op: "SafeEnqueueBlobs",
        args: &[],
        inputs: &[
            (0, "queue", QUEUE_IN),
            (1, "blobs", "The record's blobs (variadic)."),
        ],
        outputs: &[
            (
                0,
                "blobs",
                "The same blobs, in place (consumed), then one more output:",
            ),
            (
                1,
                "status",
                "(last output) BOOL scalar: true when the record could not go in (closed and full).",
            ),
        ],
        differences: "The output-count error prints the actual count (Caffe2 printed num_blobs); \
                      cancel() closes the queue.",
    },
    Entry {
        op: "SafeDequeueBlobs",
        args: &[(
            "num_records",
            "int",
            "1",
            "Records per run: 1 moves one record; N > 1 reads N one at a time and concatenates \
             them along dim 0 (a partial batch at the end of the stream). Must be > 0.",
        )],
        inputs: &[(0, "queue", QUEUE_IN)],
        outputs: &[
            (
                0,
                "blobs",
                "The record's blobs (variadic), then one more output:",
            ),
            (
                1,
                "status",
                "(last output) BOOL scalar: true at the end of the stream (closed and empty).",
            ),
        ],
        differences: "With num_records > 1 every record is checked against the first for inner \
                      dims and dtype before it leaves the queue (Caffe2 overflowed); cancel() \
                      closes the queue.",
    },
    Entry {
        op: "WeightedSampleDequeueBlobs",
        args: &[
            (
                "weights",
                "float[]",
                "[] (all 1.0)",
                "Relative probability of each input queue; normalised, the sum must be positive \
                 and none negative.",
            ),
            (
                "table_idx_blob",
                "int",
                "-1",
                "When >= 0, the output that receives the chosen queue's index (INT32 [1]); must \
                 be < OutputSize() - 1.",
            ),
        ],
        inputs: &[(0, "queues", "The queues to sample from (variadic).")],
        outputs: &[
            (
                0,
                "blobs",
                "The chosen queue's record (variadic), then one more output:",
            ),
            (
                1,
                "status",
                "(last output) BOOL scalar: true when the chosen queue is closed and empty.",
            ),
        ],
        differences: "The draw uses the op's MT19937 seeded by device_option.random_seed; \
                      cancel() closes the queues.",
    },
    Entry {
        op: "CreateBlobsQueueDB",
        args: &[
            (
                "key_blob_index",
                "int",
                "-1",
                "Column of the record holding the key; -1 for none.",
            ),
            (
                "value_blob_index",
                "int",
                "0",
                "Column holding the value (a serialized TensorProtos for TensorProtosDBInput).",
            ),
            (
                "timeout_secs",
                "float",
                "0",
                "Seconds each read waits for a record; <= 0 waits forever.",
            ),
        ],
        inputs: &[(0, "queue", QUEUE_IN)],
        outputs: &[(
            0,
            "reader",
            "A DBReader over the queue (one shard, no seek, no writes).",
        )],
        differences: "A read after close or timeout is an error instead of silently repeating \
                      the last record; the indices are checked against num_blobs.",
    },
    Entry {
        op: "CreateRebatchingQueue",
        args: &[
            (
                "capacity",
                "int",
                "1",
                "Elements (rows) the queue holds. Must be >= 1.",
            ),
            (
                "num_blobs",
                "int",
                "1",
                "Tensors per element. Must be >= 1.",
            ),
        ],
        inputs: &[],
        outputs: &[(0, "queue", "The queue (a RebatchingQueue blob).")],
        differences: "capacity and num_blobs < 1 are refused.",
    },
    Entry {
        op: "EnqueueRebatchingQueue",
        args: &[(
            "enqueue_batch",
            "bool",
            "false",
            "Enqueue every row along dim 0 of the inputs (all >= 1-D with equal dim 0) instead \
             of the inputs as one element.",
        )],
        inputs: &[
            (0, "queue", "The RebatchingQueue."),
            (
                1,
                "tensors",
                "The element's tensors (variadic, num_blobs of them), copied in.",
            ),
        ],
        outputs: &[],
        differences: "Elements are deep copies (Caffe2 2018 stored shallow ones an in-place \
                      refill changed); a null queue is an error, not an abort; a closed queue \
                      refuses enqueues even with room, as in Caffe2.",
    },
    Entry {
        op: "DequeueRebatchingQueue",
        args: &[(
            "num_elements",
            "int",
            "1",
            "Elements per run (fewer only at close), stacked under a new leading dim. Must be >= 1.",
        )],
        inputs: &[(0, "queue", "The RebatchingQueue.")],
        outputs: &[(
            0,
            "tensors",
            "One output per tensor of an element (variadic): [rows] + element dims.",
        )],
        differences: "Rows are checked before they leave the queue and stay queued on a \
                      mismatch (Caffe2 lost them); the output count must equal num_blobs.",
    },
    Entry {
        op: "CloseRebatchingQueue",
        args: &[],
        inputs: &[(0, "queue", "The RebatchingQueue.")],
        outputs: &[],
        differences: "",
    },
];

/// `schema` with the documentation of its type added where it has none of its own.
pub(crate) fn supplement(mut schema: OpSchema) -> OpSchema {
    let Some(entry) = ENTRIES.iter().find(|e| e.op == schema.name()) else {
        return schema;
    };
    for &(name, ty, default, doc) in entry.args {
        if !schema.arg_docs().iter().any(|a| a.name == name) {
            schema = schema.typed_arg(name, ty, default, doc);
        }
    }
    if schema.input_docs().is_empty() {
        for &(i, name, doc) in entry.inputs {
            schema = schema.input(i, name, doc);
        }
    }
    if schema.output_docs().is_empty() {
        for &(i, name, doc) in entry.outputs {
            schema = schema.output(i, name, doc);
        }
    }
    if schema.differences().is_empty() && !entry.differences.is_empty() {
        schema = schema.caffe2_differences(entry.differences);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supplements_only_what_a_schema_lacks() {
        let s = supplement(OpSchema::new("DequeueBlobs").typed_arg(
            "timeout_secs",
            "float",
            "0",
            "own",
        ));
        assert_eq!(s.arg_docs().len(), 1);
        assert_eq!(s.arg_docs()[0].doc, "own", "never overridden");
        assert_eq!(s.input_docs().len(), 1);
        let other = supplement(OpSchema::new("NotAQueueOp"));
        assert!(other.arg_docs().is_empty() && other.differences().is_empty());
    }
}
