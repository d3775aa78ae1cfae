//! `RebatchingQueue`: a bounded FIFO of rows (elements) that splits enqueued batches and
//! concatenates dequeued rows under a new leading dim.
//!
//! Each enqueue makes one private deep copy of its tensors (a `Batch`), so a producer refilling
//! its tensors in place never changes queued data; the queue holds spans of rows (batch, row
//! range) into those copies, so splitting, queuing, checking and taking cost per span, not per
//! row. A dequeue copies each span with a single push per column; dequeuing exactly one
//! enqueued batch is one memcpy per column. A batch's memory goes back to the queue's buffer
//! pool when its last row leaves the queue.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::at_least_one;
use crate::error::{C2rsError, Result};
use crate::tensor::{BufferPool, DataType, SequentialFill, Tensor};

/// A private deep copy of one enqueue: `num_blobs` columns, each of dims `[rows] + row dims`.
/// Never written after construction.
struct Batch {
    columns: Vec<Tensor>,
}

impl Batch {
    fn row_dims(&self, c: usize) -> &[i64] {
        &self.columns[c].dims()[1..]
    }
}

/// Elements `start..end`: rows (along dim 0) of every column of `batch`.
struct Span {
    batch: Arc<Batch>,
    start: usize,
    end: usize,
}

impl Span {
    fn rows(&self) -> usize {
        self.end - self.start
    }
}

/// Guarded by `RebatchingQueue::state`. Invariant: `len` is the sum of the spans' rows and at
/// most `capacity`; spans are non-empty; every batch holds `num_blobs` columns of at least 1
/// dim, and `start < end <= dims[0]`.
struct Rows {
    spans: VecDeque<Span>,
    len: usize,
    closed: bool,
}

pub struct RebatchingQueue {
    capacity: usize,
    num_blobs: usize,
    /// Buffers of dropped batches and dequeued outputs, reused for new ones (its own mutex).
    pool: Arc<BufferPool>,
    state: Mutex<Rows>,
    /// Readers wait here for rows or close.
    not_empty: Condvar,
    /// Writers wait here for room or close.
    not_full: Condvar,
}

/// A copy of `t` that shares nothing with it, viewed with `dims` (same element count), in a
/// buffer from `pool`.
fn private_copy(t: &Tensor, dims: &[i64], pool: &Arc<BufferPool>) -> Result<Tensor> {
    if t.dtype() == DataType::String {
        Tensor::from_strings(dims, t.strings()?.to_vec())
    } else {
        let bytes = t.bytes()?;
        let mut fill = SequentialFill::pooled(bytes.len(), pool)?;
        fill.push(bytes)?;
        Tensor::from_storage(t.dtype(), dims, Arc::new(fill.finish()?))
    }
}

/// Free buffers a queue keeps for its copies (batches in, assembled rows out): a steady stream
/// of same-sized batches then refills memory it already touched instead of page-faulting fresh
/// allocations (which made a 1 MiB batch cost ten times its copy under glibc's heap trimming).
const POOLED_BUFFERS: usize = 4;

impl RebatchingQueue {
    pub fn new(capacity: i64, num_blobs: i64) -> Result<Self> {
        let capacity = at_least_one(capacity, "capacity")?;
        let num_blobs = at_least_one(num_blobs, "num_blobs")?;
        Ok(Self {
            capacity,
            num_blobs,
            pool: BufferPool::new(POOLED_BUFFERS),
            state: Mutex::new(Rows {
                spans: VecDeque::new(),
                len: 0,
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn num_blobs(&self) -> usize {
        self.num_blobs
    }

    pub fn size(&self) -> usize {
        self.state.lock().len
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    fn check_inputs(&self, inputs: &[&Tensor]) -> Result<()> {
        if inputs.len() != self.num_blobs {
            return Err(C2rsError::enforce(format!(
                "expected {} tensors, got {}",
                self.num_blobs,
                inputs.len()
            )));
        }
        Ok(())
    }

    /// Enqueues the inputs as one element (deep copies). `Ok(false)` when the queue is closed.
    pub fn enqueue_one(&self, inputs: &[&Tensor]) -> Result<bool> {
        self.check_inputs(inputs)?;
        let columns = inputs
            .iter()
            .map(|t| {
                let mut dims = Vec::with_capacity(t.dims().len() + 1);
                dims.push(1);
                dims.extend_from_slice(t.dims());
                private_copy(t, &dims, &self.pool)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.enqueue_batch(Batch { columns }, 1))
    }

    /// Splits the inputs (each ≥ 1-D, equal dim 0) into rows and enqueues them in order,
    /// blocking while full. Not atomic: after a close, rows already enqueued stay.
    /// `Ok(false)` when the queue closed before every row was in.
    pub fn enqueue_many(&self, inputs: &[&Tensor]) -> Result<bool> {
        self.check_inputs(inputs)?;
        for (c, t) in inputs.iter().enumerate() {
            if t.dims().is_empty() {
                return Err(C2rsError::enforce(format!(
                    "enqueue_batch needs tensors of at least 1 dim; column {c} is a scalar"
                )));
            }
            if t.dims()[0] != inputs[0].dims()[0] {
                return Err(C2rsError::enforce(format!(
                    "enqueue_batch needs equal first dims; column {c} has {}, column 0 has {}",
                    t.dims()[0],
                    inputs[0].dims()[0]
                )));
            }
        }
        let n = inputs.first().map_or(0, |t| t.dims()[0] as usize);
        if n == 0 {
            return Ok(true);
        }
        let columns = inputs
            .iter()
            .map(|t| private_copy(t, t.dims(), &self.pool))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.enqueue_batch(Batch { columns }, n))
    }

    /// Enqueues rows `0..n` of `batch`, blocking while full.
    fn enqueue_batch(&self, batch: Batch, n: usize) -> bool {
        let batch = Arc::new(batch);
        let mut next = 0;
        let mut state = self.state.lock();
        while next < n {
            while state.len >= self.capacity && !state.closed {
                self.not_full.wait(&mut state);
            }
            if state.closed {
                return false;
            }
            let room = (self.capacity - state.len).min(n - next);
            state.spans.push_back(Span {
                batch: batch.clone(),
                start: next,
                end: next + room,
            });
            state.len += room;
            next += room;
            self.not_empty.notify_all();
        }
        true
    }

    /// Takes up to `num_elements` rows (fewer only when the queue closes) and stacks each column
    /// under a new leading dim. `Ok(None)` when closed and empty. Rows are validated against the
    /// first one before they leave the queue; on a mismatch every row taken goes back to the
    /// front and the error names the element and column.
    pub fn dequeue(&self, num_elements: i64) -> Result<Option<Vec<Tensor>>> {
        if num_elements < 1 {
            return Err(C2rsError::enforce(format!(
                "num_elements must be >= 1, got {num_elements}"
            )));
        }
        let wanted = num_elements as usize;
        // Grown by what is queued, never by the request: `num_elements` comes from the caller
        // and may be far larger than anything that will ever arrive.
        let mut taken: Vec<Span> = Vec::new();
        let mut rows = 0;
        let mut state = self.state.lock();
        while rows < wanted {
            while state.len == 0 && !state.closed {
                self.not_empty.wait(&mut state);
            }
            if state.len == 0 {
                break;
            }
            while rows < wanted {
                let Some(span) = state.spans.front_mut() else {
                    break;
                };
                if let Err(e) = Self::check_span(span, taken.first(), taken.last(), rows) {
                    Self::put_back(&mut state, taken);
                    self.not_empty.notify_all();
                    return Err(e);
                }
                let n = span.rows().min(wanted - rows);
                let part = Span {
                    batch: Arc::clone(&span.batch),
                    start: span.start,
                    end: span.start + n,
                };
                if taken.try_reserve(1).is_err() {
                    Self::put_back(&mut state, taken);
                    self.not_empty.notify_all();
                    return Err(C2rsError::internal(
                        "out of memory collecting RebatchingQueue rows",
                    ));
                }
                span.start += n;
                if span.start == span.end {
                    state.spans.pop_front();
                }
                state.len -= n;
                rows += n;
                taken.push(part);
            }
            self.not_full.notify_all();
        }
        drop(state);
        if taken.is_empty() {
            return Ok(None);
        }
        let outputs = (0..self.num_blobs)
            .map(|c| Self::assemble(&taken, rows, c, &self.pool))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(outputs))
    }

    /// Checks that `span` (whose first element is element `k` of the dequeue) has the dtypes
    /// and row dims of `first`. A span of the batch of `last` shares its shapes, so it passes
    /// without comparing.
    fn check_span(span: &Span, first: Option<&Span>, last: Option<&Span>, k: usize) -> Result<()> {
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(());
        };
        if Arc::ptr_eq(&span.batch, &last.batch) {
            return Ok(());
        }
        for c in 0..span.batch.columns.len() {
            let (t, t0) = (&span.batch.columns[c], &first.batch.columns[c]);
            let (dims, dims0) = (span.batch.row_dims(c), first.batch.row_dims(c));
            if t.dtype() != t0.dtype() || dims != dims0 {
                return Err(C2rsError::enforce(format!(
                    "RebatchingQueue: element {k} column {c} has shape/dtype {dims:?}/{}, \
                     expected {dims0:?}/{}",
                    t.dtype(),
                    t0.dtype()
                )));
            }
        }
        Ok(())
    }

    /// Stacks column `c` of `spans` (`rows` elements in all, validated: equal dtype and row
    /// dims) under a new leading dim, copying each span at once.
    fn assemble(spans: &[Span], rows: usize, c: usize, pool: &Arc<BufferPool>) -> Result<Tensor> {
        let first = &spans[0].batch;
        let row_dims = first.row_dims(c);
        let dtype = first.columns[c].dtype();
        let mut dims = Vec::with_capacity(row_dims.len() + 1);
        dims.push(rows as i64);
        dims.extend_from_slice(row_dims);
        let column = &first.columns[c];
        if dtype == DataType::String {
            let row_len = column.numel() / column.dims()[0] as usize;
            let mut values = Vec::with_capacity(rows * row_len);
            for span in spans {
                values.extend_from_slice(
                    &span.batch.columns[c].strings()?[span.start * row_len..span.end * row_len],
                );
            }
            return Tensor::from_strings(&dims, values);
        }
        // Columns hold at least one row (empty batches are never queued).
        let row_bytes = column.nbytes() / column.dims()[0] as usize;
        let total = row_bytes.checked_mul(rows).ok_or_else(|| {
            C2rsError::invalid_argument(format!("{rows} rows of {row_bytes} bytes overflow"))
        })?;
        let mut fill = SequentialFill::pooled(total, pool)?;
        for span in spans {
            fill.push(
                &span.batch.columns[c].bytes()?[span.start * row_bytes..span.end * row_bytes],
            )?;
        }
        Tensor::from_storage(dtype, &dims, Arc::new(fill.finish()?))
    }

    /// Puts taken spans back at the front, in order, rejoining a span that was split.
    fn put_back(state: &mut MutexGuard<'_, Rows>, taken: Vec<Span>) {
        for span in taken.into_iter().rev() {
            state.len += span.rows();
            match state.spans.front_mut() {
                Some(front)
                    if Arc::ptr_eq(&front.batch, &span.batch) && front.start == span.end =>
                {
                    front.start = span.start;
                }
                _ => state.spans.push_front(span),
            }
        }
    }

    /// Closes the queue: enqueues fail from now on; dequeues drain what is left.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DataType;
    use std::sync::Arc;

    fn scalar(v: f32) -> Tensor {
        Tensor::from_slice(DataType::Float, &[], &[v]).unwrap()
    }

    // Ported from rebatching_queue_test.py test_rebatching_queue_single_enqueue_dequeue.
    #[test]
    fn single_enqueue_dequeue_gives_one_row_batches() {
        let q = RebatchingQueue::new(10, 1).unwrap();
        for _ in 0..3 {
            assert!(q.enqueue_one(&[&scalar(1.0)]).unwrap());
        }
        for _ in 0..3 {
            let out = q.dequeue(1).unwrap().unwrap();
            assert_eq!(out[0].dims(), &[1]);
            assert_eq!(out[0].typed::<f32>().unwrap(), &[1.0]);
        }
    }

    // Ported from test_rebatching_queue_multi_enqueue_dequeue and closes_properly.
    #[test]
    fn batch_enqueue_splits_and_drains_after_close() {
        let q = RebatchingQueue::new(10, 1).unwrap();
        let values: Vec<i32> = (0..10).collect();
        let t = Tensor::from_slice(DataType::Int32, &[10], &values).unwrap();
        assert!(q.enqueue_many(&[&t]).unwrap());
        assert!(!q.is_closed());
        q.close();
        assert!(q.is_closed());
        assert_eq!(q.size(), 10, "close keeps the queued rows");
        assert_eq!(
            q.dequeue(5).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &values[..5]
        );
        assert_eq!(
            q.dequeue(5).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &values[5..]
        );
        assert!(q.dequeue(1).unwrap().is_none(), "closed and empty");
        assert!(
            !q.enqueue_one(&[&t]).unwrap(),
            "closed rejects enqueue even with room"
        );
    }

    // Ported from test_rebatching_queue_multiple_components.
    #[test]
    fn multiple_components_keep_their_rows_together() {
        let q = RebatchingQueue::new(10, 4).unwrap();
        let a =
            Tensor::from_slice(DataType::Int64, &[10], &(0..10i64).collect::<Vec<_>>()).unwrap();
        let b = Tensor::from_slice(
            DataType::Float,
            &[10],
            &(0..10).map(|i| i as f32 * 0.5).collect::<Vec<_>>(),
        )
        .unwrap();
        let c = Tensor::from_slice(
            DataType::Bool,
            &[10],
            &(0..10).map(|i| (i % 2) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        let d =
            Tensor::from_slice(DataType::Int32, &[10, 2], &(0..20).collect::<Vec<i32>>()).unwrap();
        assert!(q.enqueue_many(&[&a, &b, &c, &d]).unwrap());
        let out = q.dequeue(5).unwrap().unwrap();
        assert_eq!(out[0].typed::<i64>().unwrap(), &[0, 1, 2, 3, 4]);
        assert_eq!(out[1].typed::<f32>().unwrap(), &[0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(out[2].typed::<u8>().unwrap(), &[0, 1, 0, 1, 0]);
        assert_eq!(out[3].dims(), &[5, 2]);
        assert_eq!(
            out[3].typed::<i32>().unwrap(),
            &(0..10).collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn queued_rows_do_not_alias_the_producer() {
        let q = RebatchingQueue::new(2, 1).unwrap();
        let mut t = scalar(1.0);
        q.enqueue_one(&[&t]).unwrap();
        t.typed_mut::<f32>().unwrap()[0] = 9.0;
        assert_eq!(
            q.dequeue(1).unwrap().unwrap()[0].typed::<f32>().unwrap(),
            &[1.0]
        );
    }

    #[test]
    fn mismatched_rows_stay_queued_and_the_error_names_them() {
        let q = RebatchingQueue::new(4, 1).unwrap();
        q.enqueue_one(&[&Tensor::zeros(DataType::Float, &[2]).unwrap()])
            .unwrap();
        q.enqueue_one(&[&Tensor::zeros(DataType::Float, &[3]).unwrap()])
            .unwrap();
        let e = q.dequeue(2).unwrap_err();
        assert_eq!(
            e.message(),
            "RebatchingQueue: element 1 column 0 has shape/dtype [3]/FLOAT, expected [2]/FLOAT"
        );
        assert_eq!(q.size(), 2, "no row lost");
        assert_eq!(q.dequeue(1).unwrap().unwrap()[0].dims(), &[1, 2]);
    }

    // Issue 11 item 6: sizes from the caller allocate nothing until rows arrive.
    #[test]
    fn huge_capacity_and_request_allocate_only_what_is_queued() {
        let q = RebatchingQueue::new(1 << 40, 1 << 30).unwrap();
        assert_eq!(q.capacity(), 1 << 40);
        // A short record is refused against num_blobs before anything is copied.
        assert!(q.enqueue_one(&[&scalar(1.0)]).is_err());
        let q = RebatchingQueue::new(1 << 40, 1).unwrap();
        assert!(q.enqueue_many(&[&ints(&[1, 2, 3], &[3])]).unwrap());
        q.close();
        let out = q.dequeue(1 << 40).unwrap().unwrap();
        assert_eq!(
            out[0].typed::<i32>().unwrap(),
            &[1, 2, 3],
            "fewer rows at close"
        );
        assert!(q.dequeue(i64::MAX).unwrap().is_none());
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(RebatchingQueue::new(0, 1).is_err());
        assert!(RebatchingQueue::new(1, 0).is_err());
        let q = RebatchingQueue::new(1, 1).unwrap();
        assert!(q.dequeue(0).is_err());
        assert!(q.enqueue_many(&[&scalar(1.0)]).is_err());
        assert!(q.enqueue_one(&[]).is_err());
    }

    // Ported from test_rebatching_parallel_producer_consumer (fixed grid): every row arrives once.
    #[test]
    fn parallel_producers_and_consumers_move_every_row_once() {
        for (producers, consumers, batch, iterations, capacity) in [
            (1, 1, 1, 1, 1),
            (5, 5, 10, 10, 10),
            (3, 2, 7, 4, 3),
            (2, 4, 4, 6, 1),
        ] {
            let q = Arc::new(RebatchingQueue::new(capacity, 1).unwrap());
            let total = producers * batch * iterations;
            let ps: Vec<_> = (0..producers)
                .map(|p| {
                    let q = q.clone();
                    std::thread::spawn(move || {
                        for it in 0..iterations {
                            let values: Vec<i64> = (0..batch)
                                .map(|j| ((p * iterations + it) * batch + j) as i64)
                                .collect();
                            assert!(
                                q.enqueue_many(&[&Tensor::from_slice(
                                    DataType::Int64,
                                    &[batch as i64],
                                    &values
                                )
                                .unwrap()])
                                    .unwrap()
                            );
                        }
                    })
                })
                .collect();
            let share = |c: usize| total / consumers + usize::from(c < total % consumers);
            let cs: Vec<_> = (0..consumers)
                .map(|c| {
                    let q = q.clone();
                    let mut remaining = share(c);
                    std::thread::spawn(move || {
                        let mut got = Vec::new();
                        while remaining > 0 {
                            let n = remaining.min(3);
                            let out = q.dequeue(n as i64).unwrap().unwrap();
                            got.extend_from_slice(out[0].typed::<i64>().unwrap());
                            remaining -= n;
                        }
                        got
                    })
                })
                .collect();
            for p in ps {
                p.join().unwrap();
            }
            let mut all: Vec<i64> = cs.into_iter().flat_map(|c| c.join().unwrap()).collect();
            all.sort_unstable();
            assert_eq!(all, (0..total as i64).collect::<Vec<_>>());
        }
    }

    fn ints(values: &[i32], dims: &[i64]) -> Tensor {
        Tensor::from_slice(DataType::Int32, dims, values).unwrap()
    }

    #[test]
    fn dequeue_joins_runs_across_batches_and_single_rows() {
        let q = RebatchingQueue::new(20, 2).unwrap();
        let a = ints(&[0, 1, 2, 3], &[4]);
        let s = |v: &[&str]| {
            Tensor::from_strings(
                &[v.len() as i64],
                v.iter().map(|x| x.as_bytes().to_vec()).collect(),
            )
            .unwrap()
        };
        assert!(q.enqueue_many(&[&a, &s(&["a", "b", "c", "d"])]).unwrap());
        let one = ints(&[4], &[]);
        let one_s = Tensor::from_strings(&[], vec![b"e".to_vec()]).unwrap();
        assert!(q.enqueue_one(&[&one, &one_s]).unwrap());
        assert!(
            q.enqueue_many(&[&ints(&[5, 6, 7], &[3]), &s(&["f", "g", "h"])])
                .unwrap()
        );
        assert_eq!(q.size(), 8, "capacity is counted in rows");
        let out = q.dequeue(3).unwrap().unwrap();
        assert_eq!(out[0].typed::<i32>().unwrap(), &[0, 1, 2]);
        assert_eq!(out[1].dims(), &[3]);
        let out = q.dequeue(4).unwrap().unwrap();
        assert_eq!(out[0].typed::<i32>().unwrap(), &[3, 4, 5, 6]);
        assert_eq!(
            out[1].strings().unwrap(),
            &[b"d".to_vec(), b"e".to_vec(), b"f".to_vec(), b"g".to_vec()]
        );
        q.close();
        let out = q.dequeue(5).unwrap().unwrap();
        assert_eq!(out[0].typed::<i32>().unwrap(), &[7], "fewer rows at close");
        assert_eq!(out[1].strings().unwrap(), &[b"h".to_vec()]);
        assert!(q.dequeue(1).unwrap().is_none());
    }

    /// String rows of several strings each are taken whole, also from a batch split by an
    /// earlier take.
    #[test]
    fn string_rows_of_several_strings_split_at_row_boundaries() {
        let q = RebatchingQueue::new(8, 1).unwrap();
        let rows = |v: &[&str]| {
            Tensor::from_strings(
                &[v.len() as i64 / 2, 2],
                v.iter().map(|x| x.as_bytes().to_vec()).collect(),
            )
            .unwrap()
        };
        let strs = |t: &Tensor| -> Vec<String> {
            t.strings()
                .unwrap()
                .iter()
                .map(|b| String::from_utf8(b.clone()).unwrap())
                .collect()
        };
        q.enqueue_many(&[&rows(&["a0", "a1", "b0", "b1", "c0", "c1"])])
            .unwrap();
        q.enqueue_many(&[&rows(&["d0", "d1", "e0", "e1"])]).unwrap();
        let out = q.dequeue(1).unwrap().unwrap();
        assert_eq!(out[0].dims(), &[1, 2]);
        assert_eq!(strs(&out[0]), ["a0", "a1"]);
        let out = q.dequeue(3).unwrap().unwrap();
        assert_eq!(out[0].dims(), &[3, 2]);
        assert_eq!(strs(&out[0]), ["b0", "b1", "c0", "c1", "d0", "d1"]);
        assert_eq!(strs(&q.dequeue(1).unwrap().unwrap()[0]), ["e0", "e1"]);
    }

    #[test]
    fn batch_rows_do_not_alias_the_producer_or_the_output() {
        let q = RebatchingQueue::new(4, 1).unwrap();
        let mut t = ints(&[1, 2, 3, 4], &[2, 2]);
        assert!(q.enqueue_many(&[&t]).unwrap());
        t.typed_mut::<i32>().unwrap().fill(9);
        let mut first = q.dequeue(1).unwrap().unwrap().remove(0);
        assert_eq!(first.dims(), &[1, 2]);
        assert_eq!(first.typed::<i32>().unwrap(), &[1, 2]);
        first.typed_mut::<i32>().unwrap().fill(7);
        assert_eq!(
            q.dequeue(1).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &[3, 4]
        );
    }

    #[test]
    fn a_mismatched_batch_is_refused_whole_and_nothing_is_lost() {
        let q = RebatchingQueue::new(8, 1).unwrap();
        q.enqueue_many(&[&ints(&[0; 4], &[2, 2])]).unwrap();
        q.enqueue_many(&[&ints(&[0; 6], &[2, 3])]).unwrap();
        let e = q.dequeue(3).unwrap_err();
        assert_eq!(
            e.message(),
            "RebatchingQueue: element 2 column 0 has shape/dtype [3]/INT32, expected [2]/INT32"
        );
        assert_eq!(q.size(), 4);
        assert_eq!(q.dequeue(2).unwrap().unwrap()[0].dims(), &[2, 2]);
        assert_eq!(q.dequeue(2).unwrap().unwrap()[0].dims(), &[2, 3]);
    }

    #[test]
    fn split_spans_are_taken_in_order_and_rejoined_when_refused() {
        let q = RebatchingQueue::new(16, 1).unwrap();
        q.enqueue_many(&[&ints(&[0, 1, 2, 3, 4, 5, 6, 7], &[4, 2])])
            .unwrap();
        q.enqueue_many(&[&ints(&[0; 6], &[2, 3])]).unwrap();
        let e = q.dequeue(5).unwrap_err();
        assert!(
            e.message().contains("element 4 column 0"),
            "{}",
            e.message()
        );
        assert_eq!(q.size(), 6);
        assert_eq!(
            q.dequeue(1).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &[0, 1],
            "a span split by a partial take"
        );
        let e = q.dequeue(4).unwrap_err();
        assert!(
            e.message().contains("element 3 column 0"),
            "{}",
            e.message()
        );
        assert_eq!(q.size(), 5, "the split span went back whole");
        assert_eq!(
            q.dequeue(3).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &[2, 3, 4, 5, 6, 7]
        );
        assert_eq!(q.dequeue(2).unwrap().unwrap()[0].dims(), &[2, 3]);
        assert_eq!(q.size(), 0);
    }

    #[test]
    fn a_batch_larger_than_capacity_flows_through_and_stops_at_close() {
        let q = Arc::new(RebatchingQueue::new(3, 1).unwrap());
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || q.enqueue_many(&[&ints(&[0, 1, 2, 3, 4], &[5])]).unwrap())
        };
        assert_eq!(
            q.dequeue(2).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &[0, 1]
        );
        assert_eq!(
            q.dequeue(3).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &[2, 3, 4]
        );
        assert!(producer.join().unwrap());

        let producer = {
            let q = q.clone();
            std::thread::spawn(move || q.enqueue_many(&[&ints(&[0, 1, 2, 3, 4], &[5])]).unwrap())
        };
        while q.size() < 3 {
            std::thread::yield_now();
        }
        q.close();
        assert!(!producer.join().unwrap(), "closed before every row was in");
        assert_eq!(
            q.dequeue(5).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &[0, 1, 2]
        );
        assert!(q.dequeue(1).unwrap().is_none());
    }
    #[test]
    fn a_batch_fills_only_the_room_left_and_waits_for_the_rest() {
        let q = Arc::new(RebatchingQueue::new(4, 1).unwrap());
        assert!(q.enqueue_many(&[&ints(&[0, 1], &[2])]).unwrap());
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || q.enqueue_many(&[&ints(&[2, 3, 4, 5], &[4])]).unwrap())
        };
        // The producer puts in the 2 rows that fit, at once, then waits: the size never
        // passes the capacity.
        while q.size() < 4 {
            std::thread::yield_now();
        }
        assert_eq!(q.size(), 4);
        assert_eq!(
            q.dequeue(3).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &[0, 1, 2]
        );
        assert!(producer.join().unwrap());
        assert_eq!(q.size(), 3);
        assert_eq!(
            q.dequeue(3).unwrap().unwrap()[0].typed::<i32>().unwrap(),
            &[3, 4, 5]
        );
    }
}
