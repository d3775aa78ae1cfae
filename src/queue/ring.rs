//! `Ring`: the lock-free bounded store of a `BlobsQueue` (up to `RING_MAX_CAPACITY` records and
//! `RING_MAX_SLOTS` slots, all made up front). Dmitry Vyukov's bounded MPMC queue, as in
//! crossbeam-channel's array flavor: each cell carries a stamp saying which position it is
//! ready for, so producers and consumers meet only on the cell they use and on one counter each.
//!
//! Positions are encoded as crossbeam encodes them, `lap + index` with `index < capacity` and
//! `lap` a multiple of `one_lap = (capacity + 1).next_power_of_two()`, so that the cell is
//! `position & (one_lap - 1)` (no division) and the next position is `position + 1` within a
//! lap, `lap + one_lap` after its last index. A cell's stamp is
//! - `p`: free, waiting for the writer of position `p`;
//! - `p + 1`: holds record `p`, unread (`capacity < one_lap`, so this is never a position);
//! - `READING | (p + 1)`: record `p` claimed by one reader, which is checking or taking it.
//!
//! Writers claim position `tail` with a CAS on `tail` (Vyukov), fill the row and publish
//! `tail + 1`. Readers differ from Vyukov in one point: they claim record `head` with a CAS
//! on the cell's stamp (to `READING | …`) and only then advance `head` (a plain store: only the
//! claimer of record `head` may move it). A claimed record can thus still be refused, stamp
//! restored and `head` untouched, so a reader may check a record before it leaves the queue
//! (a host dequeue that finds a non-tensor column, SafeDequeueBlobs finding a shape mismatch
//! leave it queued, as under the former lock). Other readers wait for the few instructions of
//! the check; writers never do.
//!
//! Sleeping (see `waker.rs`) needs one rule from this file: a side may decide "empty" or
//! "full" only from counters and stamps that the other side changes with its claiming
//! read-modify-write (writers: the `tail` CAS; readers: the stamp CAS), and every notifier
//! loads the sleeper count after its claim. `is_empty`/`is_full` follow that rule: a record
//! being read (`READING`) is not "full".

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};

use super::QueueSlot;

/// Marks a stamp whose record a reader has claimed.
const READING: u64 = 1 << 63;

/// One atomic on its own cache line, so that cells (and the two counters) used by different
/// threads at once do not share a line.
#[repr(align(64))]
struct Padded(AtomicU64);

/// Result of one write attempt.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Push {
    Done,
    /// Every cell holds an unread record.
    Full,
    /// Another thread is mid-way through the cell this attempt needs; retry shortly.
    Busy,
}

/// Result of one read attempt.
#[derive(Debug)]
pub(super) enum Pop<E> {
    Done,
    Empty,
    /// Another thread is mid-way through the cell this attempt needs; retry shortly.
    Busy,
    /// The check refused the record; it stays queued, first in line.
    Refused(E),
}

/// Stores `value` into a cell's stamp (Release) when dropped: ends a claim on every path out
/// of a claimed section, unwinding from a caller's closure included.
struct Release<'a> {
    stamp: &'a AtomicU64,
    value: u64,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.stamp.store(self.value, Ordering::Release);
    }
}

/// Byte counts of one slot, for the stats. Only the claim holder of the slot's cell writes
/// them (plain load + store, no read-modify-write); Relaxed atomics so that `dequeued_bytes`
/// may read them meanwhile.
struct SlotBytes {
    /// Bytes of the record's content in this slot, set by its writer (whose data is hot).
    pending: AtomicU64,
    /// Bytes dequeued through this slot so far, added by each reader from `pending`.
    dequeued: AtomicU64,
}

pub(super) struct Ring<S> {
    capacity: u64,
    num_blobs: usize,
    /// `(capacity + 1).next_power_of_two()`: the position step of one lap.
    one_lap: u64,
    /// Next position to read. Written only by the reader holding the claim on record `head`
    /// (a store after its check passed), read by everyone; only moves forward.
    head: Padded,
    /// Next position to write; claimed by CAS (SeqCst: the claim readers' sleep decisions are
    /// ordered against, see the module doc). Invariant: `head <= tail <= head + capacity`,
    /// counted in records.
    tail: Padded,
    /// Per cell, the stamp described in the module doc. Its Acquire/Release pairs hand the
    /// cell's slots from writer to reader and back.
    stamps: Box<[Padded]>,
    /// `num_blobs` values per cell, cell-major. A cell's values are accessed only by the
    /// thread that holds its claim (a writer between its `tail` CAS and publishing, a reader
    /// between its stamp CAS and releasing).
    values: Box<[UnsafeCell<S>]>,
    /// Parallel to `values`.
    bytes: Box<[SlotBytes]>,
}

// SAFETY: a cell's values are only touched by the one thread that holds the cell's claim
// (stamp protocol above; claims are exclusive by CAS and handed over with Acquire/Release), so
// sharing the ring between threads shares no `S` concurrently; `S: Send` lets values cross.
unsafe impl<S: Send> Sync for Ring<S> {}

impl<S: QueueSlot> Ring<S> {
    /// A ring of `capacity` cells of `num_blobs` default slots (the caller bounds the product).
    pub(super) fn new(capacity: usize, num_blobs: usize) -> Self {
        let slots = capacity * num_blobs;
        Self {
            capacity: capacity as u64,
            num_blobs,
            one_lap: (capacity as u64 + 1).next_power_of_two(),
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            stamps: (0..capacity as u64)
                .map(|c| Padded(AtomicU64::new(c)))
                .collect(),
            values: (0..slots).map(|_| UnsafeCell::new(S::default())).collect(),
            bytes: (0..slots)
                .map(|_| SlotBytes {
                    pending: AtomicU64::new(0),
                    dequeued: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    fn cell(&self, position: u64) -> usize {
        (position & (self.one_lap - 1)) as usize
    }

    /// The position after `position`.
    fn next(&self, position: u64) -> u64 {
        if (position & (self.one_lap - 1)) + 1 < self.capacity {
            position + 1
        } else {
            (position & !(self.one_lap - 1)) + self.one_lap
        }
    }

    /// Records before `position` (laps × capacity + index).
    fn count(&self, position: u64) -> u64 {
        (position >> self.one_lap.trailing_zeros()) * self.capacity
            + (position & (self.one_lap - 1))
    }

    /// The values of cell `c`, and their byte counts.
    ///
    /// # Safety
    /// The caller holds the claim on cell `c` for as long as it uses the values.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, c: usize) -> (&mut [S], &[SlotBytes]) {
        let range = c * self.num_blobs..(c + 1) * self.num_blobs;
        let cells = &self.values[range.clone()];
        // SAFETY: `UnsafeCell<S>` has the layout of `S`, so the cells are `num_blobs`
        // contiguous `S`; exclusive access is the caller's claim (function contract).
        let values = unsafe {
            std::slice::from_raw_parts_mut(UnsafeCell::raw_get(cells.as_ptr()), cells.len())
        };
        (values, &self.bytes[range])
    }

    /// One write attempt: on `Done`, `put` filled the row of the new record.
    pub(super) fn try_push(&self, put: &mut impl FnMut(&mut [S])) -> Push {
        let t = self.tail.0.load(Ordering::Relaxed);
        let c = self.cell(t);
        let stamp = self.stamps[c].0.load(Ordering::Acquire);
        if stamp == t {
            if self
                .tail
                .0
                .compare_exchange_weak(t, self.next(t), Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                return Push::Busy;
            }
            // Should `put` unwind, the record is published as it stands (its slots always hold
            // valid values), so that no reader waits for it forever.
            let publish = Release {
                stamp: &self.stamps[c].0,
                value: t + 1,
            };
            // SAFETY: the CAS made us the only writer of position `t`, and the stamp `t` says
            // its reader of the previous lap has released the cell: we hold its claim.
            let (values, bytes) = unsafe { self.row(c) };
            put(values);
            for (value, b) in values.iter().zip(bytes) {
                b.pending
                    .store(value.content_bytes() as u64, Ordering::Relaxed);
            }
            drop(publish);
            return Push::Done;
        }
        // The cell still holds record `t - one_lap` (unread): full unless it was read since.
        if stamp + self.one_lap == t + 1 && self.head.0.load(Ordering::SeqCst) + self.one_lap == t {
            return Push::Full;
        }
        Push::Busy
    }

    /// One read attempt: claims record `head`, lets `check` refuse it (it then stays queued),
    /// else adds its bytes to the stats and lets `take` empty the row.
    pub(super) fn try_pop<E>(
        &self,
        check: &mut impl FnMut(&[S]) -> Result<(), E>,
        take: &mut impl FnMut(&mut [S]),
    ) -> Pop<E> {
        let h = self.head.0.load(Ordering::Relaxed);
        let c = self.cell(h);
        let stamp = self.stamps[c].0.load(Ordering::Acquire);
        if stamp == h + 1 {
            if self.stamps[c]
                .0
                .compare_exchange(stamp, READING | stamp, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                return Pop::Busy;
            }
            // Should `check` unwind, the record stays queued (stamp restored).
            let mut release = Release {
                stamp: &self.stamps[c].0,
                value: stamp,
            };
            // SAFETY: the CAS from `h + 1` gave us the claim on record `h` (no other reader
            // can claim it, its writer published it, the next writer waits for its stamp).
            let (values, bytes) = unsafe { self.row(c) };
            if let Err(e) = check(values) {
                drop(release);
                return Pop::Refused(e);
            }
            // Only the claimer of record `h` moves `head` past it. From here on the record is
            // read: should `take` unwind, the cell is freed all the same.
            self.head.0.store(self.next(h), Ordering::Release);
            release.value = h + self.one_lap;
            for b in bytes {
                let n = b.pending.load(Ordering::Relaxed);
                if n > 0 {
                    let sum = b.dequeued.load(Ordering::Relaxed);
                    b.dequeued.store(sum.wrapping_add(n), Ordering::Relaxed);
                }
            }
            take(values);
            drop(release);
            return Pop::Done;
        }
        if stamp == h && self.tail.0.load(Ordering::SeqCst) == h {
            return Pop::Empty;
        }
        Pop::Busy
    }

    /// Whether a reader may sleep: nothing written or being written (SeqCst loads, after the
    /// caller registered as a sleeper).
    pub(super) fn is_empty(&self) -> bool {
        self.tail.0.load(Ordering::SeqCst) == self.head.0.load(Ordering::SeqCst)
    }

    /// Whether a writer may sleep: the next cell holds an unread record that no reader has
    /// claimed (a claimed one is about to be freed, so that is not "full").
    pub(super) fn is_full(&self) -> bool {
        let t = self.tail.0.load(Ordering::SeqCst);
        let stamp = self.stamps[self.cell(t)].0.load(Ordering::SeqCst);
        stamp + self.one_lap == t + 1 && self.head.0.load(Ordering::SeqCst) + self.one_lap == t
    }

    /// Records queued now (claimed ones included; a hint under concurrency).
    pub(super) fn len(&self) -> u64 {
        let h = self.count(self.head.0.load(Ordering::SeqCst));
        let t = self.count(self.tail.0.load(Ordering::SeqCst));
        t.saturating_sub(h)
    }

    /// Records read so far (= successful reads).
    pub(super) fn reads(&self) -> u64 {
        self.count(self.head.0.load(Ordering::SeqCst))
    }

    /// Records written so far (claimed writes included).
    pub(super) fn writes(&self) -> u64 {
        self.count(self.tail.0.load(Ordering::SeqCst))
    }

    /// Bytes dequeued per column (sums over the cells).
    pub(super) fn dequeued_bytes(&self) -> Vec<u64> {
        let mut per_column = vec![0u64; self.num_blobs];
        for (i, b) in self.bytes.iter().enumerate() {
            per_column[i % self.num_blobs] += b.dequeued.load(Ordering::Relaxed);
        }
        per_column
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(r: &Ring<Option<u64>>, v: u64) -> Push {
        r.try_push(&mut |row: &mut [Option<u64>]| row[0] = Some(v))
    }

    fn pop(r: &Ring<Option<u64>>) -> (Pop<()>, Option<u64>) {
        let mut got = None;
        let p = r.try_pop(
            &mut |_: &[Option<u64>]| Ok(()),
            &mut |row: &mut [Option<u64>]| got = row[0].take(),
        );
        (p, got)
    }

    /// A write that finds the next cell claimed by a reader that has not decided yet (its
    /// `check` runs) is `Busy`, to be retried, not `Full`: that record may be about to leave.
    #[test]
    fn a_write_during_a_readers_check_is_busy_not_full() {
        use std::sync::mpsc;
        let r = Ring::<Option<u64>>::new(1, 1);
        assert!(matches!(push(&r, 1), Push::Done));
        let (claimed_tx, claimed_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let ring = &r;
        std::thread::scope(|s| {
            let reader = s.spawn(move || {
                let mut got = None;
                let p = ring.try_pop(
                    &mut |_: &[Option<u64>]| {
                        claimed_tx.send(()).unwrap();
                        go_rx.recv().unwrap();
                        Ok::<(), ()>(())
                    },
                    &mut |row: &mut [Option<u64>]| got = row[0].take(),
                );
                (matches!(p, Pop::Done), got)
            });
            claimed_rx.recv().unwrap();
            // Looked at while the reader waits, asserted once it is let go.
            let write = push(&r, 2);
            let full = r.is_full();
            go_tx.send(()).unwrap();
            assert!(matches!(write, Push::Busy));
            assert!(!full, "a claimed record is not full");
            assert_eq!(reader.join().unwrap(), (true, Some(1)));
        });
        assert!(matches!(push(&r, 2), Push::Done));
        assert!(matches!(pop(&r), (Pop::Done, Some(2))));
    }

    /// A read that finds the next record claimed by a writer still filling it is `Busy`, to
    /// be retried, not `Empty`: the record is about to be published.
    #[test]
    fn a_read_during_a_writers_put_is_busy_not_empty() {
        use std::sync::mpsc;
        let r = Ring::<Option<u64>>::new(2, 1);
        let (claimed_tx, claimed_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let ring = &r;
        std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let p = ring.try_push(&mut |row: &mut [Option<u64>]| {
                    claimed_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    row[0] = Some(7);
                });
                matches!(p, Push::Done)
            });
            claimed_rx.recv().unwrap();
            // Looked at while the writer waits, asserted once it is let go.
            let (read, _) = pop(&r);
            let empty = r.is_empty();
            go_tx.send(()).unwrap();
            assert!(matches!(read, Pop::Busy));
            assert!(!empty, "a record being written is not nothing");
            assert!(writer.join().unwrap());
        });
        assert!(matches!(pop(&r), (Pop::Done, Some(7))));
        assert!(matches!(pop(&r), (Pop::Empty, None)));
    }

    #[test]
    fn capacity_one_cycles_through_its_stamps() {
        let r = Ring::<Option<u64>>::new(1, 1);
        assert!(r.is_empty());
        assert!(matches!(pop(&r).0, Pop::Empty));
        for v in 0..5 {
            assert_eq!(push(&r, v), Push::Done);
            assert!(r.is_full());
            assert_eq!(push(&r, 99), Push::Full);
            assert_eq!(pop(&r).1, Some(v));
            assert!(r.is_empty());
        }
        assert_eq!((r.reads(), r.writes()), (5, 5));
        assert_eq!(r.dequeued_bytes(), vec![40]);
        // Capacity 3 (one_lap 4): positions skip index 3 between laps.
        let r = Ring::<Option<u64>>::new(3, 1);
        for lap in 0..4 {
            for v in 0..3 {
                assert_eq!(push(&r, lap * 3 + v), Push::Done);
            }
            assert_eq!(push(&r, 99), Push::Full);
            assert_eq!(r.len(), 3);
            for v in 0..3 {
                assert_eq!(pop(&r).1, Some(lap * 3 + v));
            }
        }
        assert_eq!((r.reads(), r.writes()), (12, 12));
    }

    #[test]
    fn a_closure_that_panics_leaves_the_ring_usable() {
        let r = Ring::<Option<u64>>::new(2, 1);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.try_push(&mut |row: &mut [Option<u64>]| {
                row[0] = Some(1);
                panic!("put");
            })
        }));
        assert!(caught.is_err());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.try_pop(
                &mut |_: &[Option<u64>]| -> Result<(), ()> { panic!("check") },
                &mut |_: &mut [Option<u64>]| {},
            )
        }));
        assert!(caught.is_err());
        assert_eq!(
            r.len(),
            1,
            "published as it stood, still queued after the check"
        );
        assert_eq!(pop(&r).1, Some(1));
        assert_eq!(push(&r, 2), Push::Done);
        assert_eq!(pop(&r).1, Some(2));
    }

    #[test]
    fn a_refused_record_stays_first_in_line() {
        let r = Ring::<Option<u64>>::new(3, 1);
        push(&r, 1);
        push(&r, 2);
        let p = r.try_pop(
            &mut |_: &[Option<u64>]| Err("no"),
            &mut |_: &mut [Option<u64>]| unreachable!(),
        );
        assert!(matches!(p, Pop::Refused("no")));
        assert_eq!(r.len(), 2);
        assert_eq!(pop(&r).1, Some(1));
        assert_eq!(pop(&r).1, Some(2));
        assert_eq!(
            r.dequeued_bytes(),
            vec![16],
            "a refused read counts no bytes"
        );
    }
}
