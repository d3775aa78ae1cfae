//! Queue statistics under Caffe2's keys (`<name>/queue_balance`, …).
//!
//! The counters live in two places, chosen so that the per-record hot path does no atomic
//! read-modify-write for them:
//! - `StatCounts` (attempts, dequeued records/bytes, call counts) is plain integers kept
//!   inside the queue's ring and updated under the ring lock that every call takes anyway;
//! - `QueueStats` holds the name, the field names and the blocked-time sums, which are atomics
//!   (Relaxed: independent counters read only for reporting) touched only by calls that had to
//!   wait (an uncontended call adds 0 and skips them).
//!
//! A report (`StatsReport`) is taken under the ring lock, so the counts in it are consistent
//! with each other.

use std::sync::atomic::{AtomicI64, Ordering};

pub struct QueueStats {
    name: String,
    field_names: Vec<String>,
    /// Nanoseconds read calls spent blocked (on a separate line from the writers' sum).
    read_time_ns_sum: PaddedCounter,
    /// Nanoseconds write calls spent blocked.
    write_time_ns_sum: PaddedCounter,
}

/// One counter on its own 128-byte block (two cache lines, as adjacent-line prefetch pairs).
#[repr(align(128))]
struct PaddedCounter(AtomicI64);

/// Counters updated under the ring lock (plain integers: the lock orders every access).
#[derive(Clone, Debug, Default)]
pub(super) struct StatCounts {
    /// Read attempts (waiting and failed ones included); `balance = writes - reads`.
    read_attempts: i64,
    /// Write attempts (waiting and failed ones included).
    write_attempts: i64,
    dequeued_records: i64,
    dequeued_bytes: i64,
    /// Per column, parallel to the field names (empty when no field names were given).
    dequeued_bytes_per_field: Vec<i64>,
    read_calls: i64,
    write_calls: i64,
}

impl StatCounts {
    pub(super) fn new(num_fields: usize) -> Self {
        Self {
            dequeued_bytes_per_field: vec![0; num_fields],
            ..Self::default()
        }
    }

    pub(super) fn read_attempt(&mut self) {
        self.read_attempts += 1;
    }

    pub(super) fn write_attempt(&mut self) {
        self.write_attempts += 1;
    }

    /// A read call finished (done, closed or timed out): it counts in `read_time_ns/count`.
    pub(super) fn read_call(&mut self) {
        self.read_calls += 1;
    }

    /// A blocking write call finished.
    pub(super) fn write_call(&mut self) {
        self.write_calls += 1;
    }

    pub(super) fn dequeued(&mut self, column_bytes: &[usize]) {
        self.dequeued_records += 1;
        let total: usize = column_bytes.iter().sum();
        self.dequeued_bytes += total as i64;
        for (counter, &b) in self.dequeued_bytes_per_field.iter_mut().zip(column_bytes) {
            *counter += b as i64;
        }
    }
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
        }
    }

    pub(super) fn num_fields(&self) -> usize {
        self.field_names.len()
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

    /// A report from `counts` (copied under the ring lock by the caller) and the time sums.
    pub(super) fn report(&self, counts: &StatCounts) -> StatsReport {
        StatsReport {
            name: self.name.clone(),
            snapshot: StatsSnapshot {
                balance: counts.write_attempts - counts.read_attempts,
                dequeued_records: counts.dequeued_records,
                dequeued_bytes: counts.dequeued_bytes,
                dequeued_bytes_per_field: self
                    .field_names
                    .iter()
                    .cloned()
                    .zip(counts.dequeued_bytes_per_field.iter().copied())
                    .collect(),
                read_time_ns_sum: self.read_time_ns_sum.0.load(Ordering::Relaxed),
                read_time_ns_count: counts.read_calls,
                write_time_ns_sum: self.write_time_ns_sum.0.load(Ordering::Relaxed),
                write_time_ns_count: counts.write_calls,
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
