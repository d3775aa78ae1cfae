//! Queue statistics under Caffe2's keys (`<name>/queue_balance`, …). Relaxed atomics: each
//! counter is independent and read only for reporting, so no ordering with queue state is needed.
//! Reader-side and writer-side counters live on separate cache lines (the balance is kept as
//! two attempt counts), so a producer and a consumer never contend on a stats line.

use std::sync::atomic::{AtomicI64, Ordering};

pub struct QueueStats {
    name: String,
    field_names: Vec<String>,
    /// Counters only readers touch, on their own cache line(s) so that readers and writers
    /// never bounce one line between them on every record.
    read: ReadSide,
    /// Counters only writers touch.
    write: WriteSide,
}

/// Reader-side counters (128-byte aligned: two cache lines, as adjacent-line prefetch pairs).
#[repr(align(128))]
struct ReadSide {
    /// Read attempts (waiting and failed ones included); `balance = writes - reads`.
    attempts: AtomicI64,
    dequeued_records: AtomicI64,
    dequeued_bytes: AtomicI64,
    /// Per column, parallel to `field_names` (empty when no field names were given).
    dequeued_bytes_per_field: Vec<AtomicI64>,
    time_ns_sum: AtomicI64,
    time_ns_count: AtomicI64,
}

/// Writer-side counters.
#[repr(align(128))]
struct WriteSide {
    /// Write attempts (waiting and failed ones included).
    attempts: AtomicI64,
    time_ns_sum: AtomicI64,
    time_ns_count: AtomicI64,
}

/// A consistent-enough copy of the counters (each read independently).
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
            read: ReadSide {
                attempts: AtomicI64::new(0),
                dequeued_records: AtomicI64::new(0),
                dequeued_bytes: AtomicI64::new(0),
                dequeued_bytes_per_field: field_names.iter().map(|_| AtomicI64::new(0)).collect(),
                time_ns_sum: AtomicI64::new(0),
                time_ns_count: AtomicI64::new(0),
            },
            write: WriteSide {
                attempts: AtomicI64::new(0),
                time_ns_sum: AtomicI64::new(0),
                time_ns_count: AtomicI64::new(0),
            },
        }
    }

    pub(super) fn read_attempt(&self) {
        self.read.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn write_attempt(&self) {
        self.write.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn dequeued(&self, column_bytes: &[usize]) {
        self.read.dequeued_records.fetch_add(1, Ordering::Relaxed);
        let total: usize = column_bytes.iter().sum();
        self.read
            .dequeued_bytes
            .fetch_add(total as i64, Ordering::Relaxed);
        for (counter, &b) in self.read.dequeued_bytes_per_field.iter().zip(column_bytes) {
            counter.fetch_add(b as i64, Ordering::Relaxed);
        }
    }

    pub(super) fn read_time(&self, ns: u128) {
        self.read
            .time_ns_sum
            .fetch_add(ns.min(i64::MAX as u128) as i64, Ordering::Relaxed);
        self.read.time_ns_count.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn write_time(&self, ns: u128) {
        self.write
            .time_ns_sum
            .fetch_add(ns.min(i64::MAX as u128) as i64, Ordering::Relaxed);
        self.write.time_ns_count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            balance: self.write.attempts.load(Ordering::Relaxed)
                - self.read.attempts.load(Ordering::Relaxed),
            dequeued_records: self.read.dequeued_records.load(Ordering::Relaxed),
            dequeued_bytes: self.read.dequeued_bytes.load(Ordering::Relaxed),
            dequeued_bytes_per_field: self
                .field_names
                .iter()
                .cloned()
                .zip(
                    self.read
                        .dequeued_bytes_per_field
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed)),
                )
                .collect(),
            read_time_ns_sum: self.read.time_ns_sum.load(Ordering::Relaxed),
            read_time_ns_count: self.read.time_ns_count.load(Ordering::Relaxed),
            write_time_ns_sum: self.write.time_ns_sum.load(Ordering::Relaxed),
            write_time_ns_count: self.write.time_ns_count.load(Ordering::Relaxed),
        }
    }

    /// The counters as `(key, value)` pairs under Caffe2's stat keys.
    pub fn keyed(&self) -> Vec<(String, i64)> {
        let s = self.snapshot();
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
