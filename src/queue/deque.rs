//! `Deque`: the store of a `BlobsQueue` too large for a preallocated `Ring` (more than
//! `RING_MAX_SLOTS` slots or `RING_MAX_CAPACITY` records). Rows are made as records arrive and
//! only the rows of records in flight are kept (plus `SPARE_ROWS` spares), so a capacity of
//! 2^40 or num_blobs of 2^30 costs nothing until records use it (issue 11). One mutex guards
//! it; such queues trade the ring's lock-freedom for memory that follows what is queued.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::QueueSlot;
use super::ring::{Pop, Push};
use crate::error::{C2rsError, Result};

/// Spare rows kept after their record was read, so that consumers' old contents still come
/// back to the next producers (Caffe2's ping-pong recycling) without pinning `capacity` rows.
const SPARE_ROWS: usize = 64;

/// Guarded by `Deque::state`. Invariant: `rows.len() <= capacity`; `rows[k]` holds record
/// `reads + k`; every row has `num_blobs` slots.
struct State<S> {
    rows: VecDeque<Vec<S>>,
    spare: Vec<Vec<S>>,
    /// Bytes dequeued per column; empty until the first read (sized by a real record then).
    bytes: Vec<u64>,
}

pub(super) struct Deque<S> {
    capacity: u64,
    num_blobs: usize,
    state: Mutex<State<S>>,
    /// Successful reads and writes so far, stored under the lock (SeqCst: sleepers compare
    /// them after registering, see `waker.rs`; the lock release already orders them).
    reads: AtomicU64,
    writes: AtomicU64,
}

impl<S: QueueSlot> Deque<S> {
    pub(super) fn new(capacity: usize, num_blobs: usize) -> Self {
        Self {
            capacity: capacity as u64,
            num_blobs,
            state: Mutex::new(State {
                rows: VecDeque::new(),
                spare: Vec::new(),
                bytes: Vec::new(),
            }),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    /// One write attempt. The caller checked that its record has `num_blobs` columns, so a
    /// new row is backed by what the record holds; allocation failure is still an error.
    pub(super) fn try_push(&self, put: &mut impl FnMut(&mut [S])) -> Result<Push> {
        let mut state = self.state.lock();
        if state.rows.len() as u64 >= self.capacity {
            return Ok(Push::Full);
        }
        state
            .rows
            .try_reserve(1)
            .map_err(|_| C2rsError::internal("out of memory growing the BlobsQueue record list"))?;
        let mut row = match state.spare.pop() {
            Some(row) => row,
            None => new_row(self.num_blobs)?,
        };
        put(&mut row);
        state.rows.push_back(row);
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(Push::Done)
    }

    /// One read attempt, as `Ring::try_pop`.
    pub(super) fn try_pop<E>(
        &self,
        check: &mut impl FnMut(&[S]) -> Result<(), E>,
        take: &mut impl FnMut(&mut [S]),
    ) -> Result<Pop<E>> {
        let mut state = self.state.lock();
        let state = &mut *state;
        let Some(row) = state.rows.front_mut() else {
            return Ok(Pop::Empty);
        };
        if let Err(e) = check(row) {
            return Ok(Pop::Refused(e));
        }
        if state.bytes.is_empty() {
            state.bytes.try_reserve_exact(self.num_blobs).map_err(|_| {
                C2rsError::internal("out of memory allocating BlobsQueue byte counters")
            })?;
            state.bytes.resize(self.num_blobs, 0);
        }
        for (counter, slot) in state.bytes.iter_mut().zip(row.iter()) {
            *counter = counter.wrapping_add(slot.content_bytes() as u64);
        }
        take(row);
        if let Some(row) = state.rows.pop_front() {
            if state.spare.len() < SPARE_ROWS {
                state.spare.push(row);
            }
        }
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(Pop::Done)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.state.lock().rows.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.state.lock().rows.len() as u64 >= self.capacity
    }

    pub(super) fn len(&self) -> u64 {
        self.state.lock().rows.len() as u64
    }

    pub(super) fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    pub(super) fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    pub(super) fn dequeued_bytes(&self) -> Vec<u64> {
        let state = self.state.lock();
        if state.bytes.is_empty() {
            // Nothing read yet; report no columns rather than allocate num_blobs zeros.
            return Vec::new();
        }
        state.bytes.clone()
    }
}

/// A row of `num_blobs` default slots, allocated fallibly.
fn new_row<S: Default>(num_blobs: usize) -> Result<Vec<S>> {
    let mut row = Vec::new();
    row.try_reserve_exact(num_blobs).map_err(|_| {
        C2rsError::internal(format!(
            "out of memory allocating a BlobsQueue row of {num_blobs} slots"
        ))
    })?;
    row.resize_with(num_blobs, S::default);
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(d: &Deque<Option<u64>>, v: u64) -> Push {
        d.try_push(&mut |row: &mut [Option<u64>]| row[0] = Some(v))
            .unwrap()
    }

    /// Pops one record; returns what its row held and leaves the row's content in place (as
    /// an operator reader that swaps contents would leave its old ones).
    fn pop(d: &Deque<Option<u64>>) -> Option<u64> {
        let mut got = None;
        match d
            .try_pop(&mut |_: &[Option<u64>]| Ok::<(), ()>(()), &mut |row| {
                got = row[0]
            })
            .unwrap()
        {
            Pop::Done => got,
            Pop::Empty => None,
            Pop::Refused(()) | Pop::Busy => panic!("refused or busy"),
        }
    }

    #[test]
    fn rows_are_made_as_records_arrive_and_at_most_spare_rows_are_kept_after_reads() {
        let d = Deque::<Option<u64>>::new(1 << 40, 1);
        assert_eq!(d.state.lock().rows.capacity(), 0);
        let n = SPARE_ROWS as u64 + 10;
        for v in 0..n {
            assert!(matches!(push(&d, v), Push::Done));
        }
        assert_eq!(d.len(), n);
        for v in 0..n {
            assert_eq!(pop(&d), Some(v));
        }
        assert_eq!(pop(&d), None);
        let state = d.state.lock();
        assert!(state.rows.is_empty());
        assert_eq!(state.spare.len(), SPARE_ROWS);
    }

    #[test]
    fn a_read_row_comes_back_to_the_next_writer_with_its_old_content() {
        let d = Deque::<Option<u64>>::new(4, 1);
        assert!(matches!(push(&d, 7), Push::Done));
        assert_eq!(pop(&d), Some(7));
        // The next writer sees the recycled row's content before it writes.
        let mut seen = None;
        d.try_push(&mut |row: &mut [Option<u64>]| seen = row[0])
            .unwrap();
        assert_eq!(seen, Some(7));
        assert_eq!((d.reads(), d.writes()), (1, 2));
        assert_eq!(d.dequeued_bytes(), vec![8]);
    }

    #[test]
    fn a_full_deque_refuses_writes_until_a_read() {
        let d = Deque::<Option<u64>>::new(2, 1);
        assert!(d.is_empty() && !d.is_full());
        assert!(d.dequeued_bytes().is_empty());
        assert!(matches!(push(&d, 1), Push::Done));
        assert!(matches!(push(&d, 2), Push::Done));
        assert!(d.is_full() && !d.is_empty());
        assert!(matches!(push(&d, 3), Push::Full));
        assert_eq!(pop(&d), Some(1));
        assert!(matches!(push(&d, 3), Push::Done));
        assert_eq!((pop(&d), pop(&d), pop(&d)), (Some(2), Some(3), None));
    }
}
