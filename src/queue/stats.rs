//! Queue statistics under Caffe2's keys (`<name>/queue_balance`, …). Relaxed atomics: each
//! counter is independent and read only for reporting, so no ordering with queue state is needed.

use std::sync::atomic::{AtomicI64, Ordering};

pub struct QueueStats {
    name: String,
    field_names: Vec<String>,
    /// +1 per write attempt, −1 per read attempt (waiting included).
    balance: AtomicI64,
    dequeued_records: AtomicI64,
    dequeued_bytes: AtomicI64,
    /// Per column, parallel to `field_names` (empty when no field names were given).
    dequeued_bytes_per_field: Vec<AtomicI64>,
    read_time_ns_sum: AtomicI64,
    read_time_ns_count: AtomicI64,
    write_time_ns_sum: AtomicI64,
    write_time_ns_count: AtomicI64,
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
            balance: AtomicI64::new(0),
            dequeued_records: AtomicI64::new(0),
            dequeued_bytes: AtomicI64::new(0),
            dequeued_bytes_per_field: field_names.iter().map(|_| AtomicI64::new(0)).collect(),
            read_time_ns_sum: AtomicI64::new(0),
            read_time_ns_count: AtomicI64::new(0),
            write_time_ns_sum: AtomicI64::new(0),
            write_time_ns_count: AtomicI64::new(0),
        }
    }

    pub(super) fn read_attempt(&self) {
        self.balance.fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn write_attempt(&self) {
        self.balance.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn dequeued(&self, column_bytes: &[usize]) {
        self.dequeued_records.fetch_add(1, Ordering::Relaxed);
        let total: usize = column_bytes.iter().sum();
        self.dequeued_bytes
            .fetch_add(total as i64, Ordering::Relaxed);
        for (counter, &b) in self.dequeued_bytes_per_field.iter().zip(column_bytes) {
            counter.fetch_add(b as i64, Ordering::Relaxed);
        }
    }

    pub(super) fn read_time(&self, ns: u128) {
        self.read_time_ns_sum
            .fetch_add(ns.min(i64::MAX as u128) as i64, Ordering::Relaxed);
        self.read_time_ns_count.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn write_time(&self, ns: u128) {
        self.write_time_ns_sum
            .fetch_add(ns.min(i64::MAX as u128) as i64, Ordering::Relaxed);
        self.write_time_ns_count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            balance: self.balance.load(Ordering::Relaxed),
            dequeued_records: self.dequeued_records.load(Ordering::Relaxed),
            dequeued_bytes: self.dequeued_bytes.load(Ordering::Relaxed),
            dequeued_bytes_per_field: self
                .field_names
                .iter()
                .cloned()
                .zip(
                    self.dequeued_bytes_per_field
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed)),
                )
                .collect(),
            read_time_ns_sum: self.read_time_ns_sum.load(Ordering::Relaxed),
            read_time_ns_count: self.read_time_ns_count.load(Ordering::Relaxed),
            write_time_ns_sum: self.write_time_ns_sum.load(Ordering::Relaxed),
            write_time_ns_count: self.write_time_ns_count.load(Ordering::Relaxed),
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
