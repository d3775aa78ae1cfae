//! `BlobsQueue`: Caffe2's bounded FIFO of records, each `num_blobs` slots wide. Records move
//! by moving slot contents (a swap with the caller's blobs for operators, a handle's pointer
//! for hosts): the move itself is the caller's closure, so the queue works for any slot type.
//!
//! Storage (see `ring.rs`, `deque.rs`): a queue of up to `RING_MAX_CAPACITY` records and
//! `RING_MAX_SLOTS` slots gets a lock-free ring made up front (Vyukov's bounded MPMC queue);
//! a larger one gets a mutex-guarded deque whose rows are made as records arrive, so a huge
//! capacity costs nothing until used (issue 11).
//!
//! Every blocking call has one shape (STYLE.md §5.9): try → on "busy" (the other side is
//! mid-way through our cell) spin/yield and retry → on "empty"/"full" check close and the
//! deadline, back off a few rounds, then sleep on the side's `Waker` (register, re-check,
//! wait) → after any wake-up retry, and act if possible → only then report closed or timed
//! out. A notifier pays one load when nobody sleeps. A timed-out waiter leaves no residue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::deque::Deque;
use super::ring::{Pop, Push, Ring};
use super::stats::{QueueStats, StatsReport, StoreCounts};
use super::waker::Waker;
use super::{QueueSlot, at_least_one};
use crate::error::{C2rsError, Result};

/// How a blocking call ended (errors from the caller's closures are `Err`).
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

/// Largest capacity (records) stored in a preallocated ring.
pub const RING_MAX_CAPACITY: usize = 1024;
/// Largest `capacity × num_blobs` stored in a preallocated ring; Caffe2's named slot blobs are
/// created (as name reservations) only for such queues.
pub const RING_MAX_SLOTS: usize = 4096;

/// Spin rounds (`2^k` pause instructions in round k: 63 in all) before a waiter starts
/// yielding.
const SPIN_ROUNDS: u32 = 6;
/// Yield rounds (`sched_yield`) after the spins before a waiter sleeps. A yield hands the core
/// to a runnable thread when there is one (on two cores shared by producers and consumers,
/// usually the other side, which then makes the transfer) and returns at once when there is
/// none, so the waiter keeps polling for a few microseconds without sleeping: a consumer that
/// parks as soon as a capacity-4 queue is empty costs its producer a futex wake per record.
/// bench_queue on the idle 2-CPU VM, three interleaved runs of five reps, caffe2rs ÷ moodycamel
/// and ÷ crossbeam records/s: at 1x1 capacity 4, 2 spin + 2 yield rounds (the earlier choice,
/// made under load 10-13) gave 0.03-0.08 / 0.02-0.04 at 9-20× crossbeam's CPU per record;
/// these 6 + 20 rounds give 0.85-1.34 / 0.48-0.54 at 1.9-2.2×; 2x2 capacity 4 0.20-0.42 /
/// 0.11-0.36 became 0.93-1.36 / 0.43-0.54 (crossbeam's own Backoff, 7 + 4: 1x1 0.66-1.19 /
/// 0.11-0.75). Under four busy loops beside the benchmark no setting was consistently better.
const YIELD_ROUNDS: u32 = 20;

/// Bounded spin-then-yield between attempts.
struct Backoff {
    round: u32,
}

impl Backoff {
    fn new() -> Self {
        Self { round: 0 }
    }

    /// Waits a little: spins first, then yields the core.
    fn snooze(&mut self) {
        if self.round < SPIN_ROUNDS {
            for _ in 0..1u32 << self.round {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        self.round = self.round.saturating_add(1);
    }

    /// Whether the waiter is still in its first, spinning rounds (a few dozen cycles each;
    /// not yet counted as waiting).
    fn is_spinning(&self) -> bool {
        self.round < SPIN_ROUNDS
    }

    /// Whether the waiter should sleep instead of snoozing again.
    fn is_completed(&self) -> bool {
        self.round >= SPIN_ROUNDS + YIELD_ROUNDS
    }
}

enum Store<S> {
    Ring(Ring<S>),
    Deque(Deque<S>),
}

impl<S: QueueSlot> Store<S> {
    fn try_push(&self, put: &mut impl FnMut(&mut [S])) -> Result<Push> {
        match self {
            Store::Ring(r) => Ok(r.try_push(put)),
            Store::Deque(d) => d.try_push(put),
        }
    }

    fn try_pop(
        &self,
        check: &mut impl FnMut(&[S]) -> Result<()>,
        take: &mut impl FnMut(&mut [S]),
    ) -> Result<Pop<C2rsError>> {
        match self {
            Store::Ring(r) => Ok(r.try_pop(check, take)),
            Store::Deque(d) => d.try_pop(check, take),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Store::Ring(r) => r.is_empty(),
            Store::Deque(d) => d.is_empty(),
        }
    }

    fn is_full(&self) -> bool {
        match self {
            Store::Ring(r) => r.is_full(),
            Store::Deque(d) => d.is_full(),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Store::Ring(r) => r.len(),
            Store::Deque(d) => d.len(),
        }
    }

    fn counts(&self) -> StoreCounts {
        match self {
            Store::Ring(r) => StoreCounts {
                reads: r.reads(),
                writes: r.writes(),
                bytes_per_column: r.dequeued_bytes(),
            },
            Store::Deque(d) => StoreCounts {
                reads: d.reads(),
                writes: d.writes(),
                bytes_per_column: d.dequeued_bytes(),
            },
        }
    }
}

pub struct BlobsQueue<S> {
    name: String,
    capacity: u64,
    num_blobs: usize,
    /// Refuse every write once closed (TensorFlow-style) instead of Caffe2's "closed and full".
    strict: bool,
    store: Store<S>,
    /// Readers sleep here while the queue is empty.
    readers: Waker,
    /// Writers sleep here while the queue is full.
    writers: Waker,
    /// Set once by `close` (SeqCst, before it wakes every sleeper); sleepers load it after
    /// registering, so a close is never missed between their check and their wait.
    closing: AtomicBool,
    stats: QueueStats,
}

impl<S: QueueSlot> BlobsQueue<S> {
    /// A queue of `capacity` records of `num_blobs` slots (see the module doc for storage).
    pub fn new(
        name: &str,
        capacity: i64,
        num_blobs: i64,
        field_names: &[String],
        strict: bool,
    ) -> Result<Self> {
        let (cap, nb) = (
            at_least_one(capacity, "capacity")?,
            at_least_one(num_blobs, "num_blobs")?,
        );
        if !field_names.is_empty() && field_names.len() as i64 != num_blobs {
            return Err(C2rsError::enforce("Wrong number of fieldNames provided."));
        }
        let store = if Self::is_ring(cap, nb) {
            Store::Ring(Ring::new(cap, nb))
        } else {
            Store::Deque(Deque::new(cap, nb))
        };
        Ok(Self {
            name: name.to_string(),
            capacity: cap as u64,
            num_blobs: nb,
            strict,
            store,
            readers: Waker::new(),
            writers: Waker::new(),
            closing: AtomicBool::new(false),
            stats: QueueStats::new(name, field_names),
        })
    }
}

impl<S> BlobsQueue<S> {
    /// Whether a queue of this size is a preallocated ring (else rows are made as records
    /// arrive).
    pub fn is_ring(capacity: usize, num_blobs: usize) -> bool {
        capacity <= RING_MAX_CAPACITY
            && capacity
                .checked_mul(num_blobs)
                .is_some_and(|n| n <= RING_MAX_SLOTS)
    }

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

    pub fn is_closed(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

impl<S: QueueSlot> BlobsQueue<S> {
    /// The statistics now (see `stats.rs` for how exact they are under concurrency).
    pub fn stats(&self) -> StatsReport {
        self.stats.report(self.store.counts())
    }

    /// Records currently queued.
    pub fn size(&self) -> usize {
        self.store.len() as usize
    }

    /// Reads one record: `check` may refuse it (the error is returned and the record stays
    /// queued, first in line); otherwise `take` empties the row. Blocks until data, close, or
    /// `deadline`; after close, remaining records are still read (drain). A record that
    /// arrives by the time the waiter re-checks is taken even past the deadline.
    pub fn blocking_read(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&[S]) -> Result<()>,
        mut take: impl FnMut(&mut [S]),
    ) -> Result<Outcome> {
        // Fast path: one attempt, nothing set up.
        match self.store.try_pop(&mut check, &mut take) {
            Ok(Pop::Done) => {
                self.writers.notify_one();
                Ok(Outcome::Done)
            }
            Ok(Pop::Refused(e)) | Err(e) => {
                self.end_call(None, true, true);
                Err(e)
            }
            Ok(Pop::Empty | Pop::Busy) => self.read_slow(deadline, check, take),
        }
    }

    #[inline(never)]
    fn read_slow(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&[S]) -> Result<()>,
        mut take: impl FnMut(&mut [S]),
    ) -> Result<Outcome> {
        let mut backoff = Backoff::new();
        let mut waiting: Option<Instant> = None;
        let outcome = loop {
            match self.store.try_pop(&mut check, &mut take) {
                Ok(Pop::Done) => {
                    self.writers.notify_one();
                    break Ok(Outcome::Done);
                }
                // Another reader is checking the record ahead, or its writer is publishing.
                Ok(Pop::Busy) => backoff.snooze(),
                Ok(Pop::Empty) => {
                    if self.is_closed() {
                        break Ok(Outcome::Closed);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break Ok(Outcome::TimedOut);
                    }
                    if backoff.is_spinning() {
                        backoff.snooze();
                        continue;
                    }
                    self.start_wait(&mut waiting, true);
                    if backoff.is_completed() {
                        self.readers.sleep(|| self.readers_blocked(), deadline);
                    } else {
                        backoff.snooze();
                    }
                }
                Ok(Pop::Refused(e)) | Err(e) => break Err(e),
            }
        };
        self.end_call(waiting, true, !matches!(outcome, Ok(Outcome::Done)));
        outcome
    }

    /// Whether a reader must keep sleeping: nothing to read and not closed. Re-checked under
    /// the waker's lock after registering, so a write or close in between is not missed.
    fn readers_blocked(&self) -> bool {
        self.store.is_empty() && !self.is_closed()
    }

    /// Whether a writer must keep sleeping: no room and not closed (as for readers).
    fn writers_blocked(&self) -> bool {
        self.store.is_full() && !self.is_closed()
    }

    /// Writes one record: `put` fills the row (the caller's record goes in, the slot's old
    /// contents come out). Blocks while full; fails only when closed and full (strict mode:
    /// whenever closed).
    pub fn blocking_write(&self, mut put: impl FnMut(&mut [S])) -> Result<Outcome> {
        if !self.strict {
            // Fast path: one attempt, nothing set up.
            match self.store.try_push(&mut put) {
                Ok(Push::Done) => {
                    self.readers.notify_one();
                    return Ok(Outcome::Done);
                }
                Err(e) => {
                    self.end_call(None, false, true);
                    return Err(e);
                }
                Ok(Push::Full | Push::Busy) => {}
            }
        }
        self.write_slow(put)
    }

    #[inline(never)]
    fn write_slow(&self, mut put: impl FnMut(&mut [S])) -> Result<Outcome> {
        let mut backoff = Backoff::new();
        let mut waiting: Option<Instant> = None;
        let outcome = loop {
            if self.strict && self.is_closed() {
                break Ok(Outcome::Closed);
            }
            match self.store.try_push(&mut put) {
                Ok(Push::Done) => {
                    self.readers.notify_one();
                    break Ok(Outcome::Done);
                }
                // Another writer claimed the position first, or a reader is releasing the cell.
                Ok(Push::Busy) => backoff.snooze(),
                Ok(Push::Full) => {
                    if self.is_closed() {
                        break Ok(Outcome::Closed);
                    }
                    if backoff.is_spinning() {
                        backoff.snooze();
                        continue;
                    }
                    self.start_wait(&mut waiting, false);
                    if backoff.is_completed() {
                        self.writers.sleep(|| self.writers_blocked(), None);
                    } else {
                        backoff.snooze();
                    }
                }
                Err(e) => break Err(e),
            }
        };
        self.end_call(waiting, false, !matches!(outcome, Ok(Outcome::Done)));
        outcome
    }

    /// Writes one record if there is room right now (ignores close, as Caffe2's `tryWrite`,
    /// except in strict mode). Never sleeps. Only a successful write counts in the stats.
    pub fn try_write(&self, mut put: impl FnMut(&mut [S])) -> Result<Outcome> {
        let mut backoff = Backoff::new();
        loop {
            if self.strict && self.is_closed() {
                return Ok(Outcome::Closed);
            }
            match self.store.try_push(&mut put)? {
                Push::Done => {
                    self.readers.notify_one();
                    return Ok(Outcome::Done);
                }
                Push::Full => return Ok(Outcome::Full),
                // Another thread is mid-way through the cell; it finishes in a few steps.
                Push::Busy => backoff.snooze(),
            }
        }
    }

    /// Called each time an attempt could not complete once the first spins are over: the first
    /// time starts the call's stopwatch and counts it as waiting (Caffe2 counted attempts
    /// before waiting). Not done for the spins themselves, which usually end the wait: a clock
    /// read and two shared-counter updates would cost more than they do.
    fn start_wait(&self, waiting: &mut Option<Instant>, read: bool) {
        if waiting.is_none() {
            *waiting = Some(Instant::now());
            if read {
                self.stats.read_waits();
            } else {
                self.stats.write_waits();
            }
        }
    }

    /// Stats for a finished call: a failure counts as an attempt and a call; a call that waited
    /// adds its blocked time (an uncontended call reads no clock: see `c2rs_blobs_queue_stats`).
    fn end_call(&self, waiting: Option<Instant>, read: bool, failed: bool) {
        if failed {
            if read {
                self.stats.read_failed();
            } else {
                self.stats.write_failed();
            }
        }
        if let Some(started) = waiting {
            let ns = started.elapsed().as_nanos();
            if read {
                self.stats.read_waited();
                self.stats.read_time(ns);
            } else {
                self.stats.write_waited();
                self.stats.write_time(ns);
            }
        }
    }

    /// Closes the queue (idempotent, no reopen) and wakes every sleeper at once.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.readers.notify_all();
        self.writers.notify_all();
    }
}

impl<S> Drop for BlobsQueue<S> {
    fn drop(&mut self) {
        // Nobody can be waiting: waiters hold an Arc to the queue.
        debug_assert!(
            !self.readers.has_sleepers() && !self.writers.has_sleepers(),
            "a BlobsQueue dropped with sleepers"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A queue of `Option<u64>` slots: writes put a value in, reads take it out.
    fn queue(capacity: i64, strict: bool) -> Arc<BlobsQueue<Option<u64>>> {
        Arc::new(BlobsQueue::new("q", capacity, 1, &[], strict).unwrap())
    }

    fn write(q: &BlobsQueue<Option<u64>>, v: u64) -> Outcome {
        q.blocking_write(|row| row[0] = Some(v)).unwrap()
    }

    fn read(q: &BlobsQueue<Option<u64>>, timeout: Option<Duration>) -> (Outcome, Option<u64>) {
        let mut got = None;
        let outcome = q
            .blocking_read(
                timeout.map(|t| Instant::now() + t),
                |_| Ok(()),
                |row| got = row[0].take(),
            )
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

    // spec queues.md §2.4, cell by cell, for both stores.
    #[test]
    fn outcome_table_matches_caffe2() {
        for capacity in [2, 1 << 40] {
            let q = queue(capacity, false);
            assert_eq!(write(&q, 1), Outcome::Done); // open, empty: write
            assert_eq!(read(&q, None), (Outcome::Done, Some(1)));
            assert_eq!(
                read(&q, Some(Duration::from_millis(5))).0,
                Outcome::TimedOut
            ); // open, empty: read blocks
            assert_eq!(write(&q, 2), Outcome::Done);
            if capacity == 2 {
                assert_eq!(write(&q, 3), Outcome::Done); // open, partial: write
                q.close();
                assert_eq!(write(&q, 4), Outcome::Closed); // closed, full: write fails
                assert_eq!(read(&q, None), (Outcome::Done, Some(2))); // closed, full: drain
                assert_eq!(write(&q, 5), Outcome::Done); // closed, partial: write accepted
                assert_eq!(read(&q, None), (Outcome::Done, Some(3))); // closed, partial: read
                assert_eq!(read(&q, None), (Outcome::Done, Some(5)));
            } else {
                q.close();
                assert_eq!(write(&q, 3), Outcome::Done); // closed, partial: write accepted
                assert_eq!(read(&q, None), (Outcome::Done, Some(2)));
                assert_eq!(read(&q, None), (Outcome::Done, Some(3)));
            }
            assert_eq!(read(&q, None), (Outcome::Closed, None)); // closed, empty: fails at once
            assert_eq!(write(&q, 6), Outcome::Done); // closed, empty: write accepted
        }
    }

    #[test]
    fn write_after_close_succeeds_when_not_full_unless_strict() {
        let q = queue(2, false);
        q.close();
        assert_eq!(write(&q, 1), Outcome::Done);
        let s = queue(2, true);
        s.close();
        assert_eq!(write(&s, 1), Outcome::Closed);
        assert_eq!(s.try_write(|_| ()).unwrap(), Outcome::Closed);
    }

    #[test]
    fn try_write_reports_full_without_blocking() {
        for capacity in [1, 1 << 40] {
            let q = queue(capacity, false);
            let mut n = 0;
            while q.try_write(|r| r[0] = Some(n)).unwrap() == Outcome::Done && n < 3 {
                n += 1;
            }
            let expected = if capacity == 1 { 1 } else { 4 };
            assert_eq!(q.size(), expected);
        }
        let q = queue(1, false);
        assert_eq!(q.try_write(|r| r[0] = Some(1)).unwrap(), Outcome::Done);
        assert_eq!(q.try_write(|_| ()).unwrap(), Outcome::Full);
        assert_eq!(q.size(), 1);
    }

    #[test]
    fn a_refused_read_leaves_the_record_first_in_line() {
        for capacity in [4, 1 << 40] {
            let q = queue(capacity, false);
            write(&q, 1);
            write(&q, 2);
            let e = q
                .blocking_read(
                    None,
                    |row| {
                        if row[0] == Some(1) {
                            Err(C2rsError::enforce("not that one"))
                        } else {
                            Ok(())
                        }
                    },
                    |_| unreachable!("refused records are not taken"),
                )
                .unwrap_err();
            assert_eq!(e.message(), "not that one");
            assert_eq!(q.size(), 2);
            assert_eq!(read(&q, None), (Outcome::Done, Some(1)));
            assert_eq!(read(&q, None), (Outcome::Done, Some(2)));
        }
    }

    #[test]
    fn bad_construction_is_refused() {
        let new = |c, n, f: &[String]| BlobsQueue::<()>::new("q", c, n, f, false);
        assert_eq!(
            new(0, 1, &[]).err().unwrap().message(),
            "capacity must be >= 1, got 0"
        );
        assert_eq!(
            new(1, 0, &[]).err().unwrap().message(),
            "num_blobs must be >= 1, got 0"
        );
        assert!(new(-3, 1, &[]).is_err());
        let e = new(1, 2, &["a".into()]).err().unwrap();
        assert_eq!(e.message(), "Wrong number of fieldNames provided.");
    }

    // Issue 11 item 6: capacity 2^40 used to build 2^40 slots up front (abort after 20+ s).
    #[test]
    fn huge_capacity_allocates_nothing_up_front_and_works() {
        let q = queue(1 << 40, false);
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
            let q =
                BlobsQueue::<Option<u64>>::new("wide", capacity, num_blobs, &[], false).unwrap();
            assert_eq!(q.num_blobs(), num_blobs as usize);
            assert_eq!(q.size(), 0);
            assert_eq!(q.stats().snapshot().dequeued_bytes, 0);
            q.close();
            assert_eq!(read(&q, None), (Outcome::Closed, None));
        }
    }

    #[test]
    fn the_consumers_old_content_comes_back_to_the_next_producer() {
        for capacity in [1, 1 << 40] {
            let q = queue(capacity, false);
            write(&q, 1);
            // The consumer swaps its previous value (7) in for the record.
            let mut got = Some(7);
            q.blocking_read(
                None,
                |_| Ok(()),
                |row| std::mem::swap(&mut row[0], &mut got),
            )
            .unwrap();
            assert_eq!(got, Some(1));
            // The next producer gets the consumer's old value back (Caffe2's ping-pong).
            let mut mine = Some(2);
            q.blocking_write(|row| std::mem::swap(&mut row[0], &mut mine))
                .unwrap();
            assert_eq!(mine, Some(7));
            assert_eq!(read(&q, None), (Outcome::Done, Some(2)));
        }
    }

    /// Many producers and consumers on both stores: every record arrives exactly once and each
    /// producer's records arrive in order at each consumer (crossbeam's `mpmc`/`linearizable`).
    #[test]
    fn every_record_dequeued_exactly_once_in_producer_order() {
        for (capacity, producers, consumers) in [(4, 4u64, 4), (1, 3, 5), (1 << 40, 4, 2)] {
            let per_producer: u64 = if cfg!(miri) { 50 } else { 20_000 };
            let q = queue(capacity, false);
            let ps: Vec<_> = (0..producers)
                .map(|p| {
                    let q = q.clone();
                    std::thread::spawn(move || {
                        for i in 0..per_producer {
                            assert_eq!(write(&q, p << 32 | i), Outcome::Done);
                        }
                    })
                })
                .collect();
            let cs: Vec<_> = (0..consumers)
                .map(|_| {
                    let q = q.clone();
                    std::thread::spawn(move || {
                        let mut got = Vec::new();
                        while let (Outcome::Done, Some(v)) = read(&q, None) {
                            got.push(v);
                        }
                        got
                    })
                })
                .collect();
            for p in ps {
                p.join().unwrap();
            }
            q.close();
            let mut all = Vec::new();
            for c in cs {
                let got = c.join().unwrap();
                for p in 0..producers {
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
            let expected: Vec<u64> = (0..producers)
                .flat_map(|p| (0..per_producer).map(move |i| p << 32 | i))
                .collect();
            assert_eq!(all, expected, "capacity {capacity}");
            assert_eq!(
                q.stats().snapshot().dequeued_records,
                (producers * per_producer) as i64
            );
        }
    }

    /// No lost wake-up: one producer and one consumer that both sleep at every record (the
    /// queue alternates empty and full at capacity 1), many rounds; and threads blocked on a
    /// full or empty queue are all released by the transfers that unblock them.
    #[test]
    fn sleepers_are_woken_by_every_transfer_under_stress() {
        let rounds: u64 = if cfg!(miri) { 20 } else { 20_000 };
        for capacity in [1, 1 << 40] {
            let q = queue(capacity, false);
            let q2 = q.clone();
            let consumer = std::thread::spawn(move || {
                let mut sum = 0;
                for _ in 0..rounds {
                    // A generous deadline: a lost wake-up shows as a timeout, not a hang.
                    let (o, v) = read(&q2, Some(Duration::from_secs(30)));
                    assert_eq!(o, Outcome::Done, "reader never woken");
                    sum += v.unwrap();
                }
                sum
            });
            for v in 0..rounds {
                assert_eq!(write(&q, v), Outcome::Done);
            }
            assert_eq!(consumer.join().unwrap(), rounds * (rounds - 1) / 2);
        }
        // 8 writers blocked on a full queue, then 8 readers blocked on the empty one: each
        // transfer must wake a sleeper of the other side (notify_one), none may be left behind.
        let q = queue(1, false);
        write(&q, 0);
        let writers: Vec<_> = (1..=8)
            .map(|v| {
                let q = q.clone();
                std::thread::spawn(move || write(&q, v))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        let mut sum = 0;
        for _ in 0..9 {
            let (o, v) = read(&q, Some(Duration::from_secs(30)));
            assert_eq!(o, Outcome::Done);
            sum += v.unwrap();
        }
        assert_eq!(sum, 36);
        for w in writers {
            assert_eq!(w.join().unwrap(), Outcome::Done);
        }
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || read(&q, Some(Duration::from_secs(30))))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        for v in 0..8 {
            assert_eq!(write(&q, v), Outcome::Done);
        }
        let mut got: Vec<u64> = readers
            .into_iter()
            .map(|r| {
                let (o, v) = r.join().unwrap();
                assert_eq!(o, Outcome::Done, "a reader was left asleep");
                v.unwrap()
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..8).collect::<Vec<_>>());
    }

    /// The predicates a sleeper re-checks under the waker's lock (`sleep(|| is_empty …)`):
    /// a wrong one puts a thread to sleep after the transfer that should have kept it awake,
    /// a lost wake-up the stress test above can only hit by chance. Both layouts: the ring
    /// (up to 1024 records) and the deque above it.
    #[test]
    fn store_predicates_follow_the_records_in_both_layouts() {
        for capacity in [2i64, 1025] {
            let q = queue(capacity, false);
            assert!(matches!(q.store, Store::Ring(_)) == (capacity == 2));
            assert!(q.store.is_empty() && !q.store.is_full(), "{capacity}: new");
            for v in 0..capacity as u64 - 1 {
                write(&q, v);
            }
            assert!(
                !q.store.is_empty() && !q.store.is_full(),
                "{capacity}: one free"
            );
            write(&q, 99);
            assert!(!q.store.is_empty() && q.store.is_full(), "{capacity}: full");
            for _ in 0..capacity {
                assert_eq!(read(&q, None).0, Outcome::Done);
            }
            assert!(
                q.store.is_empty() && !q.store.is_full(),
                "{capacity}: drained"
            );
        }
    }

    /// Sleepers stay asleep only while their side is blocked and the queue is open.
    #[test]
    fn sleepers_stay_blocked_only_while_their_side_cannot_go_on_and_the_queue_is_open() {
        let q = queue(1, false);
        assert!(q.readers_blocked() && !q.writers_blocked(), "empty");
        write(&q, 1);
        assert!(!q.readers_blocked() && q.writers_blocked(), "full");
        q.close();
        assert!(!q.readers_blocked() && !q.writers_blocked(), "full, closed");
        assert_eq!(read(&q, None).0, Outcome::Done);
        assert!(
            !q.readers_blocked() && !q.writers_blocked(),
            "empty, closed"
        );
    }

    #[test]
    fn stats_count_attempts_records_and_bytes() {
        for capacity in [2, 1 << 40] {
            let q: BlobsQueue<Option<u64>> =
                BlobsQueue::new("stats_q", capacity, 1, &["data".to_string()], false).unwrap();
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
            assert!(
                get("stats_q/read_time_ns/sum").unwrap() >= 1_000_000,
                "the timed-out read"
            );
        }
    }

    /// A write that fails (full, then closed) is an attempt: it counts in the balance and in
    /// the write time count, as a read that fails does.
    #[test]
    fn stats_count_a_failed_write_as_an_attempt() {
        for capacity in [2, 1 << 40] {
            let q: BlobsQueue<Option<u64>> =
                BlobsQueue::new("fail_q", capacity, 1, &["data".to_string()], false).unwrap();
            let queued = capacity.min(2);
            for v in 0..queued as u64 {
                assert_eq!(write(&q, v), Outcome::Done);
            }
            if capacity == 2 {
                // Full: the next write waits until close makes it fail.
                std::thread::scope(|s| {
                    let w = s.spawn(|| write(&q, 9));
                    while q.stats().snapshot().balance != queued + 1 {
                        std::thread::yield_now();
                    }
                    q.close();
                    assert_eq!(w.join().unwrap(), Outcome::Closed);
                });
            } else {
                q.close();
                // Not full: a non-strict write after close still goes in (Caffe2).
                assert_eq!(write(&q, 9), Outcome::Done);
            }
            let keyed = q.stats().keyed();
            let get = |k: &str| keyed.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
            let attempts = queued + 1;
            assert_eq!(
                get("fail_q/queue_balance"),
                Some(attempts),
                "capacity {capacity}"
            );
            assert_eq!(get("fail_q/write_time_ns/count"), Some(attempts));
        }
    }

    /// `try_write` as Caffe2's `tryWrite` (close ignored) unless strict (close refuses), on
    /// both stores: open and closed, with room and full.
    #[test]
    fn try_write_before_and_after_close_in_strict_and_non_strict_mode() {
        for capacity in [2, 1 << 40] {
            for strict in [false, true] {
                let q = queue(capacity, strict);
                assert_eq!(q.is_strict(), strict);
                let what = format!("capacity {capacity}, strict {strict}");
                // Open: both modes write while there is room.
                assert_eq!(
                    q.try_write(|r| r[0] = Some(1)).unwrap(),
                    Outcome::Done,
                    "{what}"
                );
                q.close();
                assert!(q.is_closed());
                let after = q.try_write(|r| r[0] = Some(2)).unwrap();
                if strict {
                    assert_eq!(after, Outcome::Closed, "{what}");
                    assert_eq!(q.size(), 1, "{what}: nothing written after close");
                } else {
                    assert_eq!(after, Outcome::Done, "{what}");
                    assert_eq!(q.size(), 2, "{what}");
                }
                // What was written is drained in order after close.
                assert_eq!(read(&q, None), (Outcome::Done, Some(1)), "{what}");
                if !strict {
                    assert_eq!(read(&q, None), (Outcome::Done, Some(2)), "{what}");
                }
                assert_eq!(read(&q, None), (Outcome::Closed, None), "{what}");
            }
        }
        // Closed and full: non-strict reports Full (there is no room), strict Closed.
        let q = queue(1, false);
        assert_eq!(q.try_write(|r| r[0] = Some(1)).unwrap(), Outcome::Done);
        q.close();
        assert_eq!(q.try_write(|r| r[0] = Some(2)).unwrap(), Outcome::Full);
        let s = queue(1, true);
        assert_eq!(s.try_write(|r| r[0] = Some(1)).unwrap(), Outcome::Done);
        assert_eq!(s.try_write(|r| r[0] = Some(2)).unwrap(), Outcome::Full);
        s.close();
        assert_eq!(s.try_write(|r| r[0] = Some(2)).unwrap(), Outcome::Closed);
        // A strict queue's blocking write works while it is open.
        let s = queue(3, true);
        assert_eq!(write(&s, 5), Outcome::Done);
        assert_eq!(read(&s, None), (Outcome::Done, Some(5)));
    }

    /// `size()` counts queued records through writes and reads; `capacity()` is the size asked
    /// for, on both stores.
    #[test]
    fn size_follows_writes_and_reads_and_capacity_is_as_created() {
        for capacity in [5, 3000, 1 << 40] {
            let q = queue(capacity, false);
            assert_eq!(q.capacity(), capacity as usize);
            assert_eq!(q.size(), 0);
            for v in 0..5 {
                write(&q, v);
                assert_eq!(q.size(), v as usize + 1, "capacity {capacity}");
            }
            for left in (0..5).rev() {
                read(&q, None);
                assert_eq!(q.size(), left, "capacity {capacity}");
            }
        }
        let wide = BlobsQueue::<Option<u64>>::new("w", 7, 3, &[], false).unwrap();
        assert_eq!(
            (wide.capacity(), wide.num_blobs(), wide.name()),
            (7, 3, "w")
        );
    }

    /// Blocked time is summed per side: a writer held on a full queue and a reader held on an
    /// empty one each add at least the time they were held; calls that never wait add nothing.
    #[test]
    fn stats_sum_the_time_readers_and_writers_were_blocked() {
        let hold = Duration::from_millis(30);
        // Waits until a blocked call is counted as waiting (the balance counts it), which
        // happens after its stopwatch started; returns when that was seen.
        let until_balance = |q: &BlobsQueue<Option<u64>>, balance: i64| {
            while q.stats().snapshot().balance != balance {
                std::thread::sleep(Duration::from_millis(1));
            }
            Instant::now()
        };
        for capacity in [1, 1 << 40] {
            let q = queue(capacity, false);
            let sums = |q: &BlobsQueue<Option<u64>>| {
                let s = q.stats().snapshot().clone();
                (s.read_time_ns_sum, s.write_time_ns_sum)
            };
            // Uncontended calls: no time at all.
            write(&q, 1);
            read(&q, None);
            assert_eq!(sums(&q), (0, 0), "capacity {capacity}");
            // A reader blocked on the empty queue until a write at least 30 ms later.
            let q2 = q.clone();
            let reader = std::thread::spawn(move || read(&q2, None));
            let seen = until_balance(&q, -1);
            std::thread::sleep(hold.saturating_sub(seen.elapsed()));
            write(&q, 2);
            assert_eq!(reader.join().unwrap(), (Outcome::Done, Some(2)));
            let (read_ns, write_ns) = sums(&q);
            assert!(read_ns >= hold.as_nanos() as i64, "read sum {read_ns}");
            assert_eq!(write_ns, 0, "capacity {capacity}: no writer waited");
            if capacity == 1 {
                // A writer blocked on the full queue until a read at least 30 ms later.
                write(&q, 3);
                let q2 = q.clone();
                let writer = std::thread::spawn(move || write(&q2, 4));
                let seen = until_balance(&q, 2);
                std::thread::sleep(hold.saturating_sub(seen.elapsed()));
                assert_eq!(read(&q, None), (Outcome::Done, Some(3)));
                assert_eq!(writer.join().unwrap(), Outcome::Done);
                let (read_after, write_ns) = sums(&q);
                assert!(write_ns >= hold.as_nanos() as i64, "write sum {write_ns}");
                assert_eq!(read_after, read_ns, "the uncontended read added nothing");
                let s = q.stats().snapshot().clone();
                assert_eq!((s.read_time_ns_count, s.write_time_ns_count), (3, 4));
                assert_eq!(s.balance, 1, "one record queued");
            }
        }
    }
}
