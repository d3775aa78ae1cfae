//! Queue statistics under Caffe2's keys (`<name>/queue_balance`, …).
//!
//! The per-record path touches no counter of its own: successful reads and writes are the
//! store's own positions (`head`/`tail` of the ring), dequeued bytes are per-slot counters the
//! reading thread owns while it holds the record (see `ring.rs`). What is counted here is only
//! what happens on slow paths, as relaxed atomics (independent counters, read only for
//! reporting): calls that failed, calls currently waiting (they count in the balance as Caffe2
//! counted attempts before waiting) and the time calls spent blocked.
//!
//! So `read attempts = reads + failed reads + waiting reads` and `read calls = reads + failed
//! reads` (writes alike). A report reads these one by one: under concurrent traffic a call
//! that just finished may be counted twice or not yet; single-threaded sequences are exact.

use std::sync::atomic::{AtomicI64, Ordering};

pub struct QueueStats {
    name: String,
    field_names: Vec<String>,
    /// Nanoseconds read calls spent blocked (on a separate line from the writers' sum).
    read_time_ns_sum: PaddedCounter,
    /// Nanoseconds write calls spent blocked.
    write_time_ns_sum: PaddedCounter,
    /// Read calls that returned without a record (closed, timed out, refused by a check).
    reads_failed: AtomicI64,
    /// Read calls waiting now (counted from their first failed attempt until they return).
    reads_waiting: AtomicI64,
    /// Write calls that returned without writing (closed).
    writes_failed: AtomicI64,
    /// Write calls waiting now.
    writes_waiting: AtomicI64,
}

/// One counter on its own 128-byte block (two cache lines, as adjacent-line prefetch pairs).
#[repr(align(128))]
struct PaddedCounter(AtomicI64);

/// What the store counts: successful reads and writes, bytes dequeued per column.
pub(super) struct StoreCounts {
    pub(super) reads: u64,
    pub(super) writes: u64,
    pub(super) bytes_per_column: Vec<u64>,
}

/// A consistent-enough copy of the counters (the counts are consistent with each other; the
/// time sums are read independently).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub balance: i64,
    pub dequeued_records: i64,
    pub dequeued_bytes: i64,
    pub dequeued_bytes_per_field: Vec<(String, i64)>,
    pub read_time_ns_sum: i64,
    pub read_time_ns_count: i64,
    pub write_time_ns_sum: i64,
    pub write_time_ns_count: i64,
}

impl QueueStats {
    pub fn new(name: &str, field_names: &[String]) -> Self {
        Self {
            name: name.to_string(),
            field_names: field_names.to_vec(),
            read_time_ns_sum: PaddedCounter(AtomicI64::new(0)),
            write_time_ns_sum: PaddedCounter(AtomicI64::new(0)),
            reads_failed: AtomicI64::new(0),
            reads_waiting: AtomicI64::new(0),
            writes_failed: AtomicI64::new(0),
            writes_waiting: AtomicI64::new(0),
        }
    }

    /// A read call started waiting (it stays in the balance until it returns).
    pub(super) fn read_waits(&self) {
        self.reads_waiting.fetch_add(1, Ordering::Relaxed);
    }

    /// A read call that had waited returned.
    pub(super) fn read_waited(&self) {
        self.reads_waiting.fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn read_failed(&self) {
        self.reads_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn write_waits(&self) {
        self.writes_waiting.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn write_waited(&self) {
        self.writes_waiting.fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn write_failed(&self) {
        self.writes_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds blocked time of a read call; 0 (a call that never waited) touches nothing.
    pub(super) fn read_time(&self, ns: u128) {
        if ns > 0 {
            self.read_time_ns_sum
                .0
                .fetch_add(ns.min(i64::MAX as u128) as i64, Ordering::Relaxed);
        }
    }

    /// Adds blocked time of a write call; 0 touches nothing.
    pub(super) fn write_time(&self, ns: u128) {
        if ns > 0 {
            self.write_time_ns_sum
                .0
                .fetch_add(ns.min(i64::MAX as u128) as i64, Ordering::Relaxed);
        }
    }

    /// A report from the store's counts and the slow-path counters.
    pub(super) fn report(&self, store: StoreCounts) -> StatsReport {
        let load = |c: &AtomicI64| c.load(Ordering::Relaxed);
        let (reads, writes) = (store.reads as i64, store.writes as i64);
        let read_attempts = reads + load(&self.reads_failed) + load(&self.reads_waiting);
        let write_attempts = writes + load(&self.writes_failed) + load(&self.writes_waiting);
        let total: u64 = store.bytes_per_column.iter().sum();
        StatsReport {
            name: self.name.clone(),
            snapshot: StatsSnapshot {
                balance: write_attempts - read_attempts,
                dequeued_records: reads,
                dequeued_bytes: total as i64,
                dequeued_bytes_per_field: self
                    .field_names
                    .iter()
                    .enumerate()
                    .map(|(j, f)| {
                        let b = store.bytes_per_column.get(j).copied().unwrap_or(0);
                        (f.clone(), b as i64)
                    })
                    .collect(),
                read_time_ns_sum: self.read_time_ns_sum.0.load(Ordering::Relaxed),
                read_time_ns_count: reads + load(&self.reads_failed),
                write_time_ns_sum: self.write_time_ns_sum.0.load(Ordering::Relaxed),
                write_time_ns_count: writes + load(&self.writes_failed),
            },
        }
    }
}

/// The statistics of one queue at one moment (`BlobsQueue::stats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsReport {
    name: String,
    snapshot: StatsSnapshot,
}

impl StatsReport {
    pub fn snapshot(&self) -> &StatsSnapshot {
        &self.snapshot
    }

    /// The counters as `(key, value)` pairs under Caffe2's stat keys.
    pub fn keyed(&self) -> Vec<(String, i64)> {
        let s = &self.snapshot;
        let n = &self.name;
        let mut out = vec![
            (format!("{n}/queue_balance"), s.balance),
            (format!("{n}/queue_dequeued_records"), s.dequeued_records),
            (format!("{n}/queue_dequeued_bytes"), s.dequeued_bytes),
        ];
        out.extend(
            s.dequeued_bytes_per_field
                .iter()
                .map(|(f, v)| (format!("{n}/queue_dequeued_bytes/{f}"), *v)),
        );
        out.extend([
            (format!("{n}/read_time_ns/sum"), s.read_time_ns_sum),
            (format!("{n}/read_time_ns/count"), s.read_time_ns_count),
            (format!("{n}/write_time_ns/sum"), s.write_time_ns_sum),
            (format!("{n}/write_time_ns/count"), s.write_time_ns_count),
        ]);
        out
    }
}
