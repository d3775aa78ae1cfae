//! `BlobsQueue`: Caffe2's bounded FIFO of records, each `num_blobs` slots wide. Records move
//! by swapping slot contents with the caller's (zero copy); the swap itself is the caller's
//! closure, so the queue works for any slot type (workspace blobs, tensors in tests).
//!
//! Synchronisation: one mutex over the ring, two condition variables (`not_empty` for readers,
//! `not_full` for writers) with `notify_one` after each transfer and `notify_all` on close.
//! Every blocking call has one shape (STYLE.md §5.9): fast path under the lock → absolute
//! deadline → predicate loop → re-check under the lock and act if possible → only then report
//! closed or timed out. A waiter woken by `notify_one` therefore never leaves without acting
//! while it could, and a timed-out reader leaves no residue. Before parking, a waiter yields
//! its core a bounded couple of times with the lock released, watching a relaxed size hint
//! (see `wait_until`); this only delays the park, every decision is still made under the lock.
//! The `notify_one` after each transfer is made after the lock is released and costs one
//! relaxed load when nobody is parked (parking_lot's `Condvar::notify_one` returns early on an
//! empty wait state), so no waiter count is kept. What runs under the lock: the caller's
//! closure (slot swaps, blob locks), the ring indices, the size hint and the stats counts;
//! old slot contents, handle allocations and blocked-time sums are dealt with after it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::at_least_one;
use super::stats::{QueueStats, StatCounts, StatsReport};
use crate::error::{C2rsError, Result};

/// How a blocking call ended (errors from the caller's closure are `Err`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The record was transferred.
    Done,
    /// Read: closed and empty. Write: closed and full (or closed at all, in strict mode).
    Closed,
    /// Read only: the deadline passed with nothing to read.
    TimedOut,
    /// `try_write` only: the queue was full.
    Full,
}

/// Queues of at most this many slots (`capacity × num_blobs`) make every slot when they are
/// built, as Caffe2 did (named slot blobs included). Larger queues make slot rows as records
/// arrive and keep only the rows of the records in flight (plus a few spares), so a huge
/// `capacity` or `num_blobs` costs nothing until records use it (issue 11: capacity 2^40
/// used to build 2^40 slots up front).
pub const EAGER_SLOTS: usize = 4096;

/// Spare rows a growing queue keeps after their record was read, so that the consumer's old
/// contents still come back to the next producer (ping-pong recycling) without the queue
/// pinning `capacity` rows.
const SPARE_ROWS: usize = 64;

/// The slot rows.
enum Slots<S> {
    /// Every row, made at construction; record n lives in row `n % capacity`.
    Fixed(Vec<Vec<S>>),
    /// Rows of the records in flight, oldest first (`rows[k]` holds record `reader + k`), and
    /// up to `SPARE_ROWS` rows whose record was read (they hold the consumers' old contents).
    Growing {
        rows: VecDeque<Vec<S>>,
        spare: Vec<Vec<S>>,
    },
}

/// Guarded by `BlobsQueue::ring`. Invariant: `reader <= writer <= reader + capacity`; with
/// `Slots::Growing`, `rows.len() == writer - reader`. Lock order: this mutex, then blob locks
/// (taken by the swap closures); never the reverse.
struct Ring<S> {
    /// Next record to read; only grows.
    reader: u64,
    /// Next record to write; only grows.
    writer: u64,
    slots: Slots<S>,
    /// Statistics counters, updated by every call while it holds this lock (plain integers:
    /// no atomic read-modify-write on the per-record path; see `stats.rs`).
    counts: StatCounts,
}

impl<S> Ring<S> {
    fn can_read(&self) -> bool {
        self.reader != self.writer
    }

    fn can_write(&self, capacity: u64) -> bool {
        self.writer != self.reader + capacity
    }

    fn check(&self, capacity: u64) {
        debug_assert!(
            self.reader <= self.writer && self.writer <= self.reader + capacity,
            "ring invariant broken: reader {} writer {} capacity {capacity}",
            self.reader,
            self.writer
        );
        debug_assert!(
            match &self.slots {
                Slots::Fixed(_) => true,
                Slots::Growing { rows, .. } => rows.len() as u64 == self.writer - self.reader,
            },
            "growing slots out of step with the counters"
        );
    }

    /// The row of the next record to read (`can_read` holds).
    fn read_row(&mut self, capacity: u64) -> Option<&mut Vec<S>> {
        match &mut self.slots {
            Slots::Fixed(rows) => rows.get_mut((self.reader % capacity) as usize),
            Slots::Growing { rows, .. } => rows.front_mut(),
        }
    }

    /// After a successful read: a growing queue keeps the row as a spare (or drops it).
    fn finish_read(&mut self) {
        self.reader += 1;
        if let Slots::Growing { rows, spare } = &mut self.slots {
            if let Some(row) = rows.pop_front() {
                if spare.len() < SPARE_ROWS {
                    spare.push(row);
                }
            }
        }
    }
}

/// How many times a waiter yields its core (`sched_yield`), re-checking the size hint after
/// each, before it parks. Measured with bench_queue on the 2-core shared host (records/s
/// through the C ABI, 1×1 / 2×2 / 4×4 at capacity 1, 4, 64): yielding twice instead of the
/// earlier 100-round `spin_loop` spin (which only rings of capacity ≥ 16 did) raised capacity
/// 1 and 4 from 0.1-0.5M to 0.3-1.0M records/s and capacity 64 from 1.2-2.6M to 4.2-4.6M.
/// A busy-spin burns the time slice the other side needs when both share a core; a yield
/// hands it over, and when the core is otherwise idle it returns at once (≈ a syscall), so
/// the bound keeps the cost of an unproductive wait to two syscalls before the park.
/// 1, 4 and 8 yields measured about the same; 2 was the steadiest.
const YIELD_ROUNDS: u32 = 2;

pub struct BlobsQueue<S> {
    name: String,
    capacity: u64,
    num_blobs: usize,
    /// Refuse every write once closed (TensorFlow-style) instead of Caffe2's "closed and full".
    strict: bool,
    ring: Mutex<Ring<S>>,
    /// Readers wait here for `can_read || closing`.
    not_empty: Condvar,
    /// Writers wait here for `can_write || closing`.
    not_full: Condvar,
    /// Set once by `close` (Release) before it takes the lock and wakes everyone; waiters read
    /// it under the lock (Acquire), so a close is never missed between check and wait.
    closing: AtomicBool,
    /// Mirror of `writer - reader`, stored under the lock after every transfer (Relaxed: only
    /// a hint for the bounded yield in `wait_until`; every decision re-checks under the lock).
    queued_hint: AtomicU64,
    stats: QueueStats,
}

impl<S: Default> BlobsQueue<S> {
    /// A queue of `capacity` records of `num_blobs` slots. Up to `EAGER_SLOTS` slots are all
    /// made here by `make_slot(slot, column)`; a larger queue makes `S::default()` rows as
    /// records arrive (see `Slots`).
    pub fn new(
        name: &str,
        capacity: i64,
        num_blobs: i64,
        field_names: &[String],
        strict: bool,
        mut make_slot: impl FnMut(usize, usize) -> Result<S>,
    ) -> Result<Self> {
        let (cap, nb) = (
            at_least_one(capacity, "capacity")?,
            at_least_one(num_blobs, "num_blobs")?,
        );
        if !field_names.is_empty() && field_names.len() as i64 != num_blobs {
            return Err(C2rsError::enforce("Wrong number of fieldNames provided."));
        }
        let slots = if Self::is_eager(cap, nb) {
            Slots::Fixed(
                (0..cap)
                    .map(|i| (0..nb).map(|j| make_slot(i, j)).collect::<Result<Vec<S>>>())
                    .collect::<Result<Vec<_>>>()?,
            )
        } else {
            Slots::Growing {
                rows: VecDeque::new(),
                spare: Vec::new(),
            }
        };
        let stats = QueueStats::new(name, field_names);
        Ok(Self {
            name: name.to_string(),
            capacity: capacity as u64,
            num_blobs: nb,
            strict,
            ring: Mutex::new(Ring {
                reader: 0,
                writer: 0,
                slots,
                counts: StatCounts::new(stats.num_fields()),
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            closing: AtomicBool::new(false),
            queued_hint: AtomicU64::new(0),
            stats,
        })
    }

    /// Whether a queue of this size makes all its slots up front (`EAGER_SLOTS`).
    pub fn is_eager(capacity: usize, num_blobs: usize) -> bool {
        capacity
            .checked_mul(num_blobs)
            .is_some_and(|n| n <= EAGER_SLOTS)
    }
}

impl<S: Default> BlobsQueue<S> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    pub fn num_blobs(&self) -> usize {
        self.num_blobs
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// The statistics now (counts taken under the ring lock, so consistent with each other).
    pub fn stats(&self) -> StatsReport {
        let counts = self.ring.lock().counts.clone();
        self.stats.report(&counts)
    }

    /// Records currently queued.
    pub fn size(&self) -> usize {
        let ring = self.ring.lock();
        (ring.writer - ring.reader) as usize
    }

    pub fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Waits on `cv` until `ready` holds, the queue closes, or `deadline` passes.
    ///
    /// Before parking, yields its core up to `YIELD_ROUNDS` times with the lock released,
    /// watching `queued_hint` for `spin_done`: the other side, given the core, usually makes
    /// the transfer sooner than a park/unpark round trip (two futex calls and a context switch
    /// on each side), and a waiter that never parks costs its peer no wake-up syscall. The
    /// wait is bounded and only a hint: the predicate is re-checked under the lock as before.
    /// (A timed wait may overrun its deadline by these few yields.)
    fn wait_until(
        &self,
        ring: &mut MutexGuard<'_, Ring<S>>,
        cv: &Condvar,
        ready: impl Fn(&Ring<S>) -> bool,
        spin_done: impl Fn(u64) -> bool,
        deadline: Option<Instant>,
        started: &mut Option<Instant>,
    ) {
        if ready(ring) || self.closing.load(Ordering::Acquire) {
            return;
        }
        let now = *started.get_or_insert_with(Instant::now);
        // A try (deadline already passed) never waits.
        if deadline.is_some_and(|d| d <= now) {
            return;
        }
        MutexGuard::unlocked(ring, || {
            for _ in 0..YIELD_ROUNDS {
                std::thread::yield_now();
                if spin_done(self.queued_hint.load(Ordering::Relaxed))
                    || self.closing.load(Ordering::Relaxed)
                {
                    break;
                }
            }
        });
        while !ready(ring) && !self.closing.load(Ordering::Acquire) {
            match deadline {
                None => cv.wait(ring),
                Some(d) => {
                    if cv.wait_until(ring, d).timed_out() {
                        return;
                    }
                }
            }
        }
    }

    /// Takes the ring lock; when it is contended, starts the call's stopwatch first (an
    /// uncontended call reads no clock: see `elapsed_ns`).
    fn lock_timed(&self, started: &mut Option<Instant>) -> MutexGuard<'_, Ring<S>> {
        if let Some(ring) = self.ring.try_lock() {
            return ring;
        }
        *started = Some(Instant::now());
        self.ring.lock()
    }

    /// Reads one record: `take` receives the slot row and swaps its contents out, returning the
    /// byte size of each column (for the stats). Blocks until data, close, or `deadline`.
    /// After close, remaining records are still read (drain).
    pub fn blocking_read<B: AsRef<[usize]>>(
        &self,
        deadline: Option<Instant>,
        take: impl FnOnce(&mut [S]) -> Result<B>,
    ) -> Result<Outcome> {
        let mut started = None;
        let mut ring = self.lock_timed(&mut started);
        // Counted on arrival, before any wait (a blocked reader shows in the balance).
        ring.counts.read_attempt();
        self.wait_until(
            &mut ring,
            &self.not_empty,
            Ring::can_read,
            |queued| queued > 0,
            deadline,
            &mut started,
        );
        // Re-check under the lock: read if possible, even past the deadline.
        if !ring.can_read() {
            ring.counts.read_call();
            drop(ring);
            self.stats.read_time(elapsed_ns(started));
            return Ok(if self.is_closed() {
                Outcome::Closed
            } else {
                Outcome::TimedOut
            });
        }
        let row = ring
            .read_row(self.capacity)
            .ok_or_else(|| C2rsError::internal("BlobsQueue: readable record has no slot row"))?;
        let bytes = take(row)?;
        ring.finish_read();
        self.queued_hint
            .store(ring.writer - ring.reader, Ordering::Relaxed);
        ring.counts.dequeued(bytes.as_ref());
        ring.counts.read_call();
        ring.check(self.capacity);
        drop(ring);
        self.not_full.notify_one();
        self.stats.read_time(elapsed_ns(started));
        Ok(Outcome::Done)
    }

    /// Writes one record: `put` receives the slot row and swaps the caller's contents in.
    /// Blocks while full; fails only when closed and full (strict mode: whenever closed).
    pub fn blocking_write(&self, put: impl FnOnce(&mut [S]) -> Result<()>) -> Result<Outcome> {
        let mut started = None;
        let mut ring = self.lock_timed(&mut started);
        // Counted on arrival, before any wait (a blocked writer shows in the balance).
        ring.counts.write_attempt();
        if self.strict && self.is_closed() {
            return Ok(Outcome::Closed);
        }
        let capacity = self.capacity;
        self.wait_until(
            &mut ring,
            &self.not_full,
            |r| r.can_write(capacity),
            |queued| queued < capacity,
            None,
            &mut started,
        );
        if !ring.can_write(capacity) || (self.strict && self.is_closed()) {
            ring.counts.write_call();
            drop(ring);
            self.stats.write_time(elapsed_ns(started));
            return Ok(Outcome::Closed);
        }
        self.write_locked(&mut ring, put)?;
        ring.counts.write_call();
        drop(ring);
        self.not_empty.notify_one();
        self.stats.write_time(elapsed_ns(started));
        Ok(Outcome::Done)
    }

    /// Writes one record if there is room right now (ignores close, as Caffe2's `tryWrite`,
    /// except in strict mode). Never blocks.
    pub fn try_write(&self, put: impl FnOnce(&mut [S]) -> Result<()>) -> Result<Outcome> {
        let mut ring = self.ring.lock();
        if self.strict && self.is_closed() {
            return Ok(Outcome::Closed);
        }
        if !ring.can_write(self.capacity) {
            return Ok(Outcome::Full);
        }
        ring.counts.write_attempt();
        self.write_locked(&mut ring, put)?;
        drop(ring);
        self.not_empty.notify_one();
        Ok(Outcome::Done)
    }

    fn write_locked(
        &self,
        ring: &mut MutexGuard<'_, Ring<S>>,
        put: impl FnOnce(&mut [S]) -> Result<()>,
    ) -> Result<()> {
        let capacity = self.capacity;
        let num_blobs = self.num_blobs;
        let ring = &mut **ring;
        match &mut ring.slots {
            Slots::Fixed(rows) => {
                let index = (ring.writer % capacity) as usize;
                let row = rows.get_mut(index).ok_or_else(|| {
                    C2rsError::internal("BlobsQueue: slot index outside the ring")
                })?;
                put(row)?;
            }
            Slots::Growing { rows, spare } => {
                // The caller checked that its record has `num_blobs` columns, so this row is
                // backed by what the record holds; the reservation is fallible all the same.
                rows.try_reserve(1).map_err(|_| {
                    C2rsError::internal("out of memory growing the BlobsQueue slot list")
                })?;
                let mut row = match spare.pop() {
                    Some(row) => row,
                    None => new_row(num_blobs)?,
                };
                if let Err(e) = put(&mut row) {
                    spare.push(row);
                    return Err(e);
                }
                rows.push_back(row);
            }
        }
        ring.writer += 1;
        self.queued_hint
            .store(ring.writer - ring.reader, Ordering::Relaxed);
        ring.check(self.capacity);
        Ok(())
    }

    /// Closes the queue (idempotent, no reopen) and wakes every waiter at once.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        // Taking the lock orders the flag before any waiter's next predicate check.
        let _ring = self.ring.lock();
        self.not_empty.notify_all();
        self.not_full.notify_all();
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

/// Nanoseconds since `started`, or 0 for a call that never had to wait (neither for the lock
/// nor for the ring): such a call takes well under a microsecond, and skipping its two clock
/// reads keeps the uncontended hot path free of clock calls. So `read_time_ns`/`write_time_ns`
/// sum the time calls spent blocked (lock contention, spinning, parking, timed waits); the
/// counts still cover every call.
fn elapsed_ns(started: Option<Instant>) -> u128 {
    started.map_or(0, |s| s.elapsed().as_nanos())
}

impl<S> Drop for BlobsQueue<S> {
    fn drop(&mut self) {
        // Nobody can be waiting: waiters hold an Arc to the queue.
        self.closing.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A queue of `Option<u64>` slots: writes swap a value in, reads swap it out.
    fn queue(capacity: i64, strict: bool) -> Arc<BlobsQueue<Option<u64>>> {
        Arc::new(BlobsQueue::new("q", capacity, 1, &[], strict, |_, _| Ok(None)).unwrap())
    }

    fn write(q: &BlobsQueue<Option<u64>>, v: u64) -> Outcome {
        q.blocking_write(|row| {
            row[0] = Some(v);
            Ok(())
        })
        .unwrap()
    }

    fn read(q: &BlobsQueue<Option<u64>>, timeout: Option<Duration>) -> (Outcome, Option<u64>) {
        let mut got = None;
        let outcome = q
            .blocking_read(timeout.map(|t| Instant::now() + t), |row| {
                got = row[0].take();
                Ok(vec![8])
            })
            .unwrap();
        (outcome, got)
    }

    #[test]
    fn read_blocks_until_write() {
        let q = queue(2, false);
        let q2 = q.clone();
        let reader = std::thread::spawn(move || read(&q2, None));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(write(&q, 7), Outcome::Done);
        assert_eq!(reader.join().unwrap(), (Outcome::Done, Some(7)));
    }

    #[test]
    fn read_times_out_after_deadline() {
        let q = queue(5, false);
        let start = Instant::now();
        assert_eq!(
            read(&q, Some(Duration::from_millis(30))).0,
            Outcome::TimedOut
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        // A timed-out read leaves no residue: the next write/read pair works.
        assert_eq!(write(&q, 1), Outcome::Done);
        assert_eq!(
            read(&q, Some(Duration::from_millis(1))),
            (Outcome::Done, Some(1))
        );
    }

    #[test]
    fn close_wakes_blocked_reader_and_writer() {
        let q = queue(1, false);
        let qr = queue(1, false);
        assert_eq!(write(&q, 1), Outcome::Done);
        let (qw, qrr) = (q.clone(), qr.clone());
        let writer = std::thread::spawn(move || write(&qw, 2));
        let reader = std::thread::spawn(move || read(&qrr, None));
        std::thread::sleep(Duration::from_millis(20));
        q.close();
        qr.close();
        assert_eq!(writer.join().unwrap(), Outcome::Closed);
        assert_eq!(reader.join().unwrap(), (Outcome::Closed, None));
    }

    // spec queues.md §2.4, cell by cell.
    #[test]
    fn outcome_table_matches_caffe2() {
        let q = queue(2, false);
        assert_eq!(write(&q, 1), Outcome::Done); // open, empty: write
        assert_eq!(read(&q, None), (Outcome::Done, Some(1)));
        assert_eq!(
            read(&q, Some(Duration::from_millis(5))).0,
            Outcome::TimedOut
        ); // open, empty: read blocks
        assert_eq!(write(&q, 2), Outcome::Done);
        assert_eq!(write(&q, 3), Outcome::Done); // open, partial: write
        q.close();
        assert_eq!(write(&q, 4), Outcome::Closed); // closed, full: write fails
        assert_eq!(read(&q, None), (Outcome::Done, Some(2))); // closed, full: read drains
        assert_eq!(write(&q, 5), Outcome::Done); // closed, partial: write accepted
        assert_eq!(read(&q, None), (Outcome::Done, Some(3))); // closed, partial: read
        assert_eq!(read(&q, None), (Outcome::Done, Some(5)));
        assert_eq!(read(&q, None), (Outcome::Closed, None)); // closed, empty: read fails at once
        assert_eq!(write(&q, 6), Outcome::Done); // closed, empty: write accepted
    }

    #[test]
    fn write_after_close_succeeds_when_not_full_unless_strict() {
        let q = queue(2, false);
        q.close();
        assert_eq!(write(&q, 1), Outcome::Done);
        let s = queue(2, true);
        s.close();
        assert_eq!(write(&s, 1), Outcome::Closed);
        assert_eq!(s.try_write(|_| Ok(())).unwrap(), Outcome::Closed);
    }

    #[test]
    fn try_write_reports_full_without_blocking() {
        let q = queue(1, false);
        assert_eq!(
            q.try_write(|r| {
                r[0] = Some(1);
                Ok(())
            })
            .unwrap(),
            Outcome::Done
        );
        assert_eq!(q.try_write(|_| Ok(())).unwrap(), Outcome::Full);
        assert_eq!(q.size(), 1);
    }

    #[test]
    fn bad_construction_is_refused() {
        assert_eq!(
            BlobsQueue::<()>::new("q", 0, 1, &[], false, |_, _| Ok(()))
                .err()
                .unwrap()
                .message(),
            "capacity must be >= 1, got 0"
        );
        assert_eq!(
            BlobsQueue::<()>::new("q", 1, 0, &[], false, |_, _| Ok(()))
                .err()
                .unwrap()
                .message(),
            "num_blobs must be >= 1, got 0"
        );
        assert!(BlobsQueue::<()>::new("q", -3, 1, &[], false, |_, _| Ok(())).is_err());
        let e = BlobsQueue::<()>::new("q", 1, 2, &["a".into()], false, |_, _| Ok(()))
            .err()
            .unwrap();
        assert_eq!(e.message(), "Wrong number of fieldNames provided.");
    }

    // Issue 11 item 6: capacity 2^40 used to build 2^40 slots up front (abort after 20+ s).
    #[test]
    fn huge_capacity_allocates_nothing_up_front_and_works() {
        let made = std::cell::Cell::new(0usize);
        let q = BlobsQueue::new("big", 1 << 40, 1, &[], false, |_, _| {
            made.set(made.get() + 1);
            Ok(None::<u64>)
        })
        .unwrap();
        assert_eq!(made.get(), 0, "no slot made before a record arrives");
        assert_eq!(q.capacity(), 1 << 40);
        for v in 0..100 {
            assert_eq!(write(&q, v), Outcome::Done);
        }
        assert_eq!(q.size(), 100);
        for v in 0..100 {
            assert_eq!(read(&q, None), (Outcome::Done, Some(v)));
        }
        assert_eq!(
            read(&q, Some(Duration::from_millis(1))).0,
            Outcome::TimedOut
        );
        q.close();
        assert_eq!(read(&q, None), (Outcome::Closed, None));
    }

    // Issue 11 item 6: num_blobs 2^30 (or capacity = num_blobs = 2^20) used to spin building
    // slots; rows are now made for records that arrive, as wide as num_blobs.
    #[test]
    fn huge_num_blobs_makes_rows_only_for_records() {
        for (capacity, num_blobs) in [(1i64, 1i64 << 30), (1 << 20, 1 << 20)] {
            let q = BlobsQueue::new("wide", capacity, num_blobs, &[], false, |_, _| {
                Ok(None::<u64>)
            })
            .unwrap();
            assert_eq!(q.num_blobs(), num_blobs as usize);
            assert_eq!(q.size(), 0);
            q.close();
            assert_eq!(read(&q, None), (Outcome::Closed, None));
        }
    }

    #[test]
    fn growing_queue_recycles_the_consumers_old_content_to_the_next_producer() {
        let q = BlobsQueue::new("big", 1 << 40, 1, &[], false, |_, _| Ok(None::<u64>)).unwrap();
        write(&q, 1);
        // The consumer swaps its previous value (7) in for the record.
        let mut got = Some(7);
        q.blocking_read(None, |row| {
            std::mem::swap(&mut row[0], &mut got);
            Ok(vec![8])
        })
        .unwrap();
        assert_eq!(got, Some(1));
        // The next producer gets the consumer's old value back (Caffe2's ping-pong).
        let mut mine = Some(2);
        q.blocking_write(|row| {
            std::mem::swap(&mut row[0], &mut mine);
            Ok(())
        })
        .unwrap();
        assert_eq!(mine, Some(7));
        assert_eq!(read(&q, None), (Outcome::Done, Some(2)));
    }

    #[test]
    fn every_record_dequeued_exactly_once_in_producer_order() {
        const PRODUCERS: u64 = 4;
        let per_producer: u64 = if cfg!(miri) { 50 } else { 25_000 };
        let q = queue(4, false);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..per_producer {
                        assert_eq!(write(&q, p << 32 | i), Outcome::Done);
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let (Outcome::Done, Some(v)) = read(&q, Some(Duration::from_secs(30))) {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.close();
        let mut all = Vec::new();
        for c in consumers {
            let got = c.join().unwrap();
            // Per consumer, each producer's values arrive in increasing order (FIFO).
            for p in 0..PRODUCERS {
                let mine: Vec<u64> = got
                    .iter()
                    .filter(|v| *v >> 32 == p)
                    .map(|v| v & 0xffff_ffff)
                    .collect();
                assert!(
                    mine.windows(2).all(|w| w[0] < w[1]),
                    "producer {p} out of order"
                );
            }
            all.extend(got);
        }
        all.sort_unstable();
        let expected: Vec<u64> = (0..PRODUCERS)
            .flat_map(|p| (0..per_producer).map(move |i| p << 32 | i))
            .collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn stats_count_attempts_records_and_bytes() {
        let q = Arc::new(
            BlobsQueue::new("stats_q", 2, 1, &["data".to_string()], false, |_, _| {
                Ok(None::<u64>)
            })
            .unwrap(),
        );
        write(&q, 1);
        write(&q, 2);
        read(&q, None);
        read(&q, Some(Duration::from_millis(1)));
        read(&q, Some(Duration::from_millis(1)));
        let keyed = q.stats().keyed();
        let get = |k: &str| keyed.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        assert_eq!(get("stats_q/queue_balance"), Some(2 - 3));
        assert_eq!(get("stats_q/queue_dequeued_records"), Some(2));
        assert_eq!(get("stats_q/queue_dequeued_bytes"), Some(16));
        assert_eq!(get("stats_q/queue_dequeued_bytes/data"), Some(16));
        assert_eq!(get("stats_q/read_time_ns/count"), Some(3));
        assert_eq!(get("stats_q/write_time_ns/count"), Some(2));
    }
}
