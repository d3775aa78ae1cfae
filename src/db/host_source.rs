//! Records that come from the host instead of a DB file: pulled from a host function, or
//! pushed by host threads into a bounded `RecordFeed`. Either becomes a streaming `Db` that a
//! `DbReader` reads one record per pull, so TensorProtosDBInput and `BatchReader` assemble and
//! prefetch host records with exactly the checks and messages they apply to DB records.

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::{Cursor, Db, DbReader, Transaction};
use crate::error::{C2rsError, Result};

/// Produces the next record, or an error: `Closed` at the end of the stream.
pub type PullFn = Box<dyn FnMut() -> Result<(Vec<u8>, Vec<u8>)> + Send>;

/// A streaming DB over a pull function. It has one cursor (the reader's); the pull function
/// moves into it.
struct PullDb {
    /// The pull function until the one cursor takes it. Guards nothing else.
    pull: Mutex<Option<PullFn>>,
    source: String,
}

impl Db for PullDb {
    fn new_cursor(&self) -> Result<Box<dyn Cursor>> {
        let pull = self.pull.lock().take().ok_or_else(|| {
            C2rsError::enforce(format!(
                "record source {} is already read by a reader",
                self.source
            ))
        })?;
        Ok(Box::new(PullCursor {
            pull,
            key: Vec::new(),
            value: Vec::new(),
            valid: false,
        }))
    }

    fn new_transaction(&self) -> Result<Box<dyn Transaction>> {
        Err(C2rsError::unsupported(format!(
            "record source {} cannot be written",
            self.source
        )))
    }
}

struct PullCursor {
    pull: PullFn,
    key: Vec<u8>,
    value: Vec<u8>,
    valid: bool,
}

impl Cursor for PullCursor {
    fn seek(&mut self, _key: &[u8]) -> Result<()> {
        Err(C2rsError::unsupported("a host record source does not seek"))
    }
    fn supports_seek(&self) -> bool {
        false
    }
    fn seek_to_first(&mut self) -> Result<()> {
        Ok(())
    }
    /// Pulls the next record; a failed pull leaves the cursor invalid (never a stale record).
    fn next(&mut self) -> Result<()> {
        self.valid = false;
        self.key.clear();
        self.value.clear();
        let (key, value) = (self.pull)()?;
        self.key = key;
        self.value = value;
        self.valid = true;
        Ok(())
    }
    fn key(&self) -> &[u8] {
        &self.key
    }
    fn value(&self) -> &[u8] {
        &self.value
    }
    fn valid(&self) -> bool {
        self.valid
    }
}

/// A one-shard `DbReader` whose every read pulls one record from `pull` (type name `db_type`,
/// `source` naming it in messages). Reads are serialized by the reader's lock, so `pull` never
/// runs concurrently with itself.
pub fn pull_reader(pull: PullFn, db_type: &str, source: &str) -> Result<DbReader> {
    let db = PullDb {
        pull: Mutex::new(Some(pull)),
        source: source.to_string(),
    };
    DbReader::streaming(Box::new(db), db_type, source)
}

/// Most records a feed may be configured to hold.
pub const MAX_FEED_CAPACITY: usize = 1 << 20;

/// Guarded by `RecordFeed::state`.
/// Invariant: `records.len() <= capacity`; once `closed`, never reopened.
struct FeedState {
    records: VecDeque<(Vec<u8>, Vec<u8>)>,
    closed: bool,
}

/// A bounded FIFO of records pushed by host threads and pulled by a reader. Pushing blocks
/// while full; closing wakes everyone: pushes then fail, pulls drain what is left and then
/// fail with `Closed`.
pub struct RecordFeed {
    capacity: usize,
    state: Mutex<FeedState>,
    /// Pullers wait here for a record or close. Signalled (one) after each push, all on close.
    not_empty: Condvar,
    /// Pushers wait here for room or close. Signalled (one) after each pull, all on close.
    not_full: Condvar,
}

impl RecordFeed {
    /// A feed holding at most `capacity` (1 ..= `MAX_FEED_CAPACITY`) records.
    pub fn new(capacity: usize) -> Result<Self> {
        if !(1..=MAX_FEED_CAPACITY).contains(&capacity) {
            return Err(C2rsError::invalid_argument(format!(
                "capacity must be in 1..={MAX_FEED_CAPACITY}, got {capacity}"
            )));
        }
        Ok(Self {
            capacity,
            state: Mutex::new(FeedState {
                records: VecDeque::new(),
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends a record, waiting for room until `deadline` (forever when None). Fails with
    /// `Closed` once the feed is closed (also while waiting), `Timeout` past the deadline.
    pub fn push(&self, key: Vec<u8>, value: Vec<u8>, deadline: Option<Instant>) -> Result<()> {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return Err(C2rsError::closed("the record feed is closed"));
            }
            if state.records.len() < self.capacity {
                state
                    .records
                    .try_reserve(1)
                    .map_err(|_| C2rsError::internal("out of memory growing the record feed"))?;
                state.records.push_back((key, value));
                debug_assert!(state.records.len() <= self.capacity);
                drop(state);
                self.not_empty.notify_one();
                return Ok(());
            }
            match deadline {
                None => self.not_full.wait(&mut state),
                Some(d) => {
                    if self.not_full.wait_until(&mut state, d).timed_out()
                        && state.records.len() >= self.capacity
                        && !state.closed
                    {
                        return Err(C2rsError::timeout("the record feed stayed full"));
                    }
                }
            }
        }
    }

    /// Takes the oldest record, waiting for one; `Closed` once the feed is closed and empty.
    pub fn pull(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut state = self.state.lock();
        loop {
            if let Some(record) = state.records.pop_front() {
                drop(state);
                self.not_full.notify_one();
                return Ok(record);
            }
            if state.closed {
                return Err(C2rsError::closed("the record feed is closed and empty"));
            }
            self.not_empty.wait(&mut state);
        }
    }

    /// Closes the feed (idempotent): waiting pushers fail, pullers drain then fail.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Records waiting, and whether the feed is closed.
    pub fn status(&self) -> (usize, bool) {
        let state = self.state.lock();
        (state.records.len(), state.closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::db::{BatchAssembler, BatchReader};
    use crate::proto::TensorProtos;
    use crate::tensor::{DataType, Tensor, tensor_to_proto};
    use prost::Message;
    use std::sync::Arc;
    use std::time::Duration;

    fn record(i: i32, dims: &[i64]) -> (Vec<u8>, Vec<u8>) {
        let n: i64 = dims.iter().product();
        let t = Tensor::from_slice(DataType::Int32, dims, &vec![i; n as usize]).unwrap();
        let value = TensorProtos {
            protos: vec![tensor_to_proto(&t).unwrap()],
        }
        .encode_to_vec();
        (format!("k{i}").into_bytes(), value)
    }

    #[test]
    fn a_pull_function_feeds_prefetched_batches_in_order() {
        let mut i = 0;
        let pull: PullFn = Box::new(move || {
            i += 1;
            Ok(record(i, &[2]))
        });
        let reader = Arc::new(pull_reader(pull, "host", "counter").unwrap());
        let br = BatchReader::new(
            reader,
            BatchAssembler {
                batch_size: 3,
                num_outputs: 1,
            },
            2,
            2,
        )
        .unwrap();
        for b in 0..4 {
            let batch = br.next().unwrap();
            assert_eq!(batch[0].dims(), &[3, 2]);
            let v = batch[0].typed::<i32>().unwrap();
            let want: Vec<i32> = (1..=3).flat_map(|k| [3 * b + k, 3 * b + k]).collect();
            assert_eq!(v, want.as_slice());
        }
    }

    #[test]
    fn host_records_get_the_db_checks_and_messages() {
        let mut i = 0;
        let pull: PullFn = Box::new(move || {
            i += 1;
            // Record 3 has another shape than the batch's first.
            Ok(record(i, if i == 3 { &[3] } else { &[2] }))
        });
        let reader = Arc::new(pull_reader(pull, "host", "shapes").unwrap());
        let br = BatchReader::new(
            reader,
            BatchAssembler {
                batch_size: 3,
                num_outputs: 1,
            },
            1,
            0,
        )
        .unwrap();
        let e = br.next().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Enforce);
        assert_eq!(
            e.message(),
            "TensorProtosDBInput: record 'k3' output 0 has [3]/INT32, batch expects [2]/INT32"
        );
    }

    #[test]
    fn a_closed_feed_drains_then_ends_the_stream() {
        let feed = Arc::new(RecordFeed::new(2).unwrap());
        let f = Arc::clone(&feed);
        let pull: PullFn = Box::new(move || f.pull());
        let reader = Arc::new(pull_reader(pull, "feed", "feed").unwrap());
        let producer = {
            let feed = Arc::clone(&feed);
            std::thread::spawn(move || {
                for i in 0..5 {
                    let (k, v) = record(i, &[]);
                    feed.push(k, v, None).unwrap();
                }
                feed.close();
            })
        };
        let br = BatchReader::new(
            reader,
            BatchAssembler {
                batch_size: 2,
                num_outputs: 1,
            },
            1,
            1,
        )
        .unwrap();
        assert_eq!(br.next().unwrap()[0].typed::<i32>().unwrap(), &[0, 1]);
        assert_eq!(br.next().unwrap()[0].typed::<i32>().unwrap(), &[2, 3]);
        let e = br.next().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed, "{}", e.message());
        producer.join().unwrap();
        let e = feed.push(vec![1], vec![1], None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed);
    }

    #[test]
    fn a_full_feed_blocks_pushers_until_room_times_out_or_closes() {
        let feed = Arc::new(RecordFeed::new(1).unwrap());
        feed.push(b"a".to_vec(), b"1".to_vec(), None).unwrap();
        let e = feed
            .push(
                b"b".to_vec(),
                b"2".to_vec(),
                Some(Instant::now() + Duration::from_millis(20)),
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        let blocked = {
            let feed = Arc::clone(&feed);
            std::thread::spawn(move || feed.push(b"c".to_vec(), b"3".to_vec(), None))
        };
        assert_eq!(feed.pull().unwrap().0, b"a");
        blocked.join().unwrap().unwrap();
        assert_eq!(feed.status(), (1, false));
        let blocked = {
            let feed = Arc::clone(&feed);
            std::thread::spawn(move || feed.push(b"d".to_vec(), b"4".to_vec(), None))
        };
        feed.close();
        assert_eq!(
            blocked.join().unwrap().unwrap_err().kind(),
            ErrorKind::Closed
        );
        assert_eq!(feed.pull().unwrap().0, b"c", "drained after close");
        assert_eq!(feed.pull().unwrap_err().kind(), ErrorKind::Closed);
        assert!(RecordFeed::new(0).is_err());
        assert!(RecordFeed::new(MAX_FEED_CAPACITY + 1).is_err());
    }
}
