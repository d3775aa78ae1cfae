//! `RebatchingQueue`: a bounded FIFO of rows (elements) that splits enqueued batches and
//! concatenates dequeued rows under a new leading dim. The queue owns deep copies of its rows,
//! so a producer refilling its tensors in place never changes queued data.

use std::collections::VecDeque;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{C2rsError, Result};
use crate::tensor::Tensor;
use crate::tensor::rows::{check_same_shape, split_rows, stack_rows};

/// Guarded by `RebatchingQueue::state`. Invariant: `rows.len() <= capacity`; every row holds
/// `num_blobs` tensors.
struct Rows {
    rows: VecDeque<Vec<Tensor>>,
    closed: bool,
}

pub struct RebatchingQueue {
    capacity: usize,
    num_blobs: usize,
    state: Mutex<Rows>,
    /// Readers wait here for rows or close.
    not_empty: Condvar,
    /// Writers wait here for room or close.
    not_full: Condvar,
}

impl RebatchingQueue {
    pub fn new(capacity: i64, num_blobs: i64) -> Result<Self> {
        if capacity < 1 {
            return Err(C2rsError::enforce(format!(
                "capacity must be >= 1, got {capacity}"
            )));
        }
        if num_blobs < 1 {
            return Err(C2rsError::enforce(format!(
                "num_blobs must be >= 1, got {num_blobs}"
            )));
        }
        Ok(Self {
            capacity: capacity as usize,
            num_blobs: num_blobs as usize,
            state: Mutex::new(Rows {
                rows: VecDeque::new(),
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
        self.state.lock().rows.len()
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
        let row = inputs
            .iter()
            .map(|t| t.deep_copy())
            .collect::<Result<Vec<_>>>()?;
        Ok(self.enqueue_rows(vec![row]))
    }

    /// Splits the inputs (each ≥ 1-D, equal dim 0) into rows and enqueues them in order,
    /// blocking while full. Not atomic: after a close, rows already enqueued stay.
    /// `Ok(false)` when the queue closed before every row was in.
    pub fn enqueue_many(&self, inputs: &[&Tensor]) -> Result<bool> {
        self.check_inputs(inputs)?;
        let mut columns = Vec::with_capacity(inputs.len());
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
            columns.push(split_rows(t)?);
        }
        let n = columns.first().map_or(0, Vec::len);
        let mut rows: Vec<Vec<Tensor>> =
            (0..n).map(|_| Vec::with_capacity(self.num_blobs)).collect();
        for column in columns {
            for (row, t) in rows.iter_mut().zip(column) {
                row.push(t);
            }
        }
        Ok(self.enqueue_rows(rows))
    }

    fn enqueue_rows(&self, rows: Vec<Vec<Tensor>>) -> bool {
        let mut pending = rows.into_iter().peekable();
        let mut state = self.state.lock();
        while pending.peek().is_some() {
            while state.rows.len() >= self.capacity && !state.closed {
                self.not_full.wait(&mut state);
            }
            if state.closed {
                return false;
            }
            while state.rows.len() < self.capacity {
                match pending.next() {
                    Some(row) => state.rows.push_back(row),
                    None => break,
                }
            }
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
        let mut taken: Vec<Vec<Tensor>> = Vec::with_capacity(wanted);
        let mut state = self.state.lock();
        while taken.len() < wanted {
            while state.rows.is_empty() && !state.closed {
                self.not_empty.wait(&mut state);
            }
            if state.rows.is_empty() {
                break;
            }
            while taken.len() < wanted {
                let Some(row) = state.rows.front() else { break };
                if let Err(e) = Self::check_row(row, taken.first().unwrap_or(row), taken.len()) {
                    Self::put_back(&mut state, taken);
                    self.not_empty.notify_all();
                    return Err(e);
                }
                if let Some(row) = state.rows.pop_front() {
                    taken.push(row);
                }
            }
            self.not_full.notify_all();
        }
        drop(state);
        if taken.is_empty() {
            return Ok(None);
        }
        let outputs = (0..self.num_blobs)
            .map(|c| stack_rows(&taken.iter().map(|row| &row[c]).collect::<Vec<_>>()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(outputs))
    }

    fn check_row(row: &[Tensor], first: &[Tensor], k: usize) -> Result<()> {
        for (c, (t, t0)) in row.iter().zip(first).enumerate() {
            check_same_shape(t, t0, || format!("RebatchingQueue: element {k} column {c}"))?;
        }
        Ok(())
    }

    fn put_back(state: &mut MutexGuard<'_, Rows>, taken: Vec<Vec<Tensor>>) {
        for row in taken.into_iter().rev() {
            state.rows.push_front(row);
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
        q.close();
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
}
