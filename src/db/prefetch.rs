//! `BatchReader`: TensorProtosDBInput's prefetching machinery, usable from host threads.
//! Worker threads read records from a shared `DbReader` and assemble batches ahead of the
//! consumer, up to `depth` batches; batch order equals record order however many workers
//! decode. An error (with the record key) is delivered in order, then sticks: every later
//! `next` returns it again, as Caffe2's prefetch ops stayed failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::Records;
use super::batch::BatchAssembler;
use super::reader::DbReader;
use crate::error::{C2rsError, Result};
use crate::tensor::{BufferPool, Tensor};

/// Batch bookkeeping. Guarded by `Shared::state`.
/// Invariants: `next_to_take <= started`, `started - next_to_take <= depth` (batches in flight or
/// ready), `ready` holds only sequence numbers in `[next_to_take, started)`, and `wake_at` is
/// `Some` only while `waiting > 0`.
/// Lock order: `Shared::read_order` before `state`.
struct State {
    /// Batches reserved by workers so far (the next reservation gets this number).
    started: u64,
    /// The sequence number the consumer takes next.
    next_to_take: u64,
    ready: BTreeMap<u64, Result<Vec<Tensor>>>,
    /// The first error delivered to the consumer; returned again by every later call.
    failed: Option<C2rsError>,
    stop: bool,
    /// Consumers asleep on `batch_ready`.
    waiting: usize,
    /// While consumers sleep: they are woken once every batch in `[next_to_take, wake_at)` is
    /// ready (see `Shared::wake_batches`), not at every batch.
    wake_at: Option<u64>,
    /// Bytes of the last batch a worker finished (0 before the first, or after an error).
    batch_bytes: usize,
}

impl State {
    /// Whether sleeping consumers should be woken: the next batch is ready, and so is every
    /// batch up to `wake_at`.
    fn consumers_due(&self) -> bool {
        match self.wake_at {
            Some(end) if self.waiting > 0 => {
                self.ready.contains_key(&self.next_to_take)
                    && (self.next_to_take..end).all(|seq| self.ready.contains_key(&seq))
            }
            _ => false,
        }
    }
}

/// Keeps what it holds on cache lines of its own, so that the workers' order lock, the state
/// lock and the read-mostly fields do not share a line (each lock taken or released would
/// otherwise take the line away from the threads using its neighbours).
#[repr(align(128))]
struct OwnLine<T>(T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Most batches a sleeping consumer waits for at once (see `Shared::wake_batches`).
const MAX_WAKE_BATCHES: u64 = 4;
/// Batches of at least this many bytes wake a sleeping consumer one by one: making one takes
/// long enough (tens of µs and more) that a wake-up per batch costs little, while every batch
/// held ready longer adds its bytes to what is written between two uses of a pooled buffer,
/// i.e. to the cache misses of the copies.
const WAKE_EACH_BATCH_BYTES: usize = 1 << 20;

struct Shared {
    reader: Arc<DbReader>,
    assembler: BatchAssembler,
    /// Buffers of dropped batches, reused by the next ones (no page faults on refill).
    pool: Arc<BufferPool>,
    depth: u64,
    /// How many batches a consumer that has to sleep waits for before it is woken:
    /// `depth - threads`, at least 1, at most `MAX_WAKE_BATCHES`. A consumer faster than the
    /// workers would otherwise sleep and be woken once per batch: a futex wake in the worker
    /// and, when every CPU runs a worker, a preemption of one of them, which on small batches
    /// cost as much as making the batch. Waiting for several costs no throughput: the
    /// workers keep working meanwhile, since `depth - threads` batches can be ready while
    /// each worker makes one more.
    wake_batches: u64,
    /// Serialises "take a sequence number and read its records", so sequence numbers follow
    /// record order. Guards nothing else. A worker holding it may sleep on `room` (when there
    /// is no room for it there is none for any other worker either).
    read_order: OwnLine<Mutex<()>>,
    state: OwnLine<Mutex<State>>,
    /// Consumers wait here until `State::consumers_due`.
    batch_ready: Condvar,
    /// A worker (the one holding `read_order`) waits here for room
    /// (`started - next_to_take < depth`) or stop.
    room: Condvar,
}

pub struct BatchReader {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// Most decode threads one batch reader (or TensorProtosDBInput) starts.
pub const MAX_PREFETCH_THREADS: usize = 256;
/// Most batches one batch reader prepares ahead (each holds a batch's buffers).
pub const MAX_PREFETCH_DEPTH: usize = 1024;
/// Most records in one batch read from a DB reader (2^24): the reader takes them one by one
/// (wrapping around a small DB), so a larger batch is a mistake, not a workload.
pub const MAX_BATCH_SIZE: usize = 1 << 24;

/// Checks batch size, prefetch depth and thread count against their maximums (and depth ≥ 1
/// when prefetching); the message names the argument as `names` spells it
/// (`[batch_size, depth, threads]`).
pub fn check_prefetch_settings(
    batch_size: usize,
    depth: usize,
    num_threads: usize,
    names: [&str; 3],
) -> std::result::Result<(), String> {
    let [batch_name, depth_name, threads_name] = names;
    if batch_size > MAX_BATCH_SIZE {
        return Err(format!(
            "{batch_name} {batch_size} exceeds the maximum {MAX_BATCH_SIZE}"
        ));
    }
    if num_threads > MAX_PREFETCH_THREADS {
        return Err(format!(
            "{threads_name} {num_threads} exceeds the maximum {MAX_PREFETCH_THREADS}"
        ));
    }
    if depth > MAX_PREFETCH_DEPTH {
        return Err(format!(
            "{depth_name} {depth} exceeds the maximum {MAX_PREFETCH_DEPTH}"
        ));
    }
    if num_threads > 0 && depth == 0 {
        return Err(format!("{depth_name} must be >= 1 when prefetching"));
    }
    Ok(())
}

impl BatchReader {
    /// Reads batches from `reader`. `num_threads == 0` disables prefetching: `next` reads and
    /// assembles inline. Otherwise `depth` (≥ 1) batches are prepared ahead by `num_threads`
    /// workers, started now. Batch size, depth and threads are limited to `MAX_BATCH_SIZE`,
    /// `MAX_PREFETCH_DEPTH` and `MAX_PREFETCH_THREADS` (`InvalidArgument` above them); a thread
    /// the OS refuses is an `Io` error, after the workers already started are stopped.
    pub fn new(
        reader: Arc<DbReader>,
        assembler: BatchAssembler,
        depth: usize,
        num_threads: usize,
    ) -> Result<Self> {
        check_prefetch_settings(
            assembler.batch_size,
            depth,
            num_threads,
            ["batch_size", "prefetch depth", "num_threads"],
        )
        .map_err(C2rsError::invalid_argument)?;
        let shared = Arc::new(Shared {
            reader,
            assembler,
            // Batches alive at once: `depth` ready, one per worker being filled, and a couple
            // held by the consumer; each has one buffer per output.
            pool: BufferPool::new(
                depth
                    .saturating_add(num_threads)
                    .saturating_add(2)
                    .saturating_mul(assembler.num_outputs),
            ),
            depth: depth as u64,
            wake_batches: (depth.saturating_sub(num_threads) as u64).clamp(1, MAX_WAKE_BATCHES),
            read_order: OwnLine(Mutex::new(())),
            state: OwnLine(Mutex::new(State {
                started: 0,
                next_to_take: 0,
                ready: BTreeMap::new(),
                failed: None,
                stop: false,
                waiting: 0,
                wake_at: None,
                batch_bytes: 0,
            })),
            batch_ready: Condvar::new(),
            room: Condvar::new(),
        });
        let mut this = Self {
            shared,
            workers: Vec::with_capacity(num_threads),
        };
        for i in 0..num_threads {
            let s = this.shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("c2rs-prefetch-{i}"))
                .spawn(move || s.work())
                // Dropping `this` stops and joins the workers started so far.
                .map_err(|e| C2rsError::io(format!("cannot start prefetch thread {i}: {e}")))?;
            this.workers.push(handle);
        }
        Ok(this)
    }

    /// The next batch in record order (blocking until it is ready).
    pub fn next(&self) -> Result<Vec<Tensor>> {
        if self.workers.is_empty() {
            let s = &self.shared;
            if let Some(e) = &s.state.lock().failed {
                return Err(e.clone());
            }
            let result = caught(|| s.take_records()).and_then(|r| caught(|| s.assemble(r)));
            if let Err(e) = &result {
                s.state.lock().failed = Some(e.clone());
            }
            return result;
        }
        let s = &self.shared;
        let mut state = s.state.lock();
        if let Some(e) = &state.failed {
            return Err(e.clone());
        }
        loop {
            let seq = state.next_to_take;
            if let Some(result) = state.ready.remove(&seq) {
                state.next_to_take += 1;
                if let Err(e) = &result {
                    state.failed = Some(e.clone());
                }
                drop(state);
                s.room.notify_one();
                return result;
            }
            // Sleep until the next `wake_batches` batches are ready (one for large batches;
            // an earlier sleeper's smaller target stands).
            let batches = if state.batch_bytes >= WAKE_EACH_BATCH_BYTES {
                1
            } else {
                s.wake_batches
            };
            let target = seq + batches;
            state.wake_at = Some(state.wake_at.map_or(target, |w| w.min(target)));
            state.waiting += 1;
            s.batch_ready.wait(&mut state);
            state.waiting -= 1;
            if state.waiting == 0 {
                state.wake_at = None;
            }
        }
    }
}

impl Shared {
    /// Takes the next batch's records from the reader, in order, under one reader lock. From
    /// minidb they are ranges of the mapped file: nothing is copied here.
    fn take_records(&self) -> Result<Records> {
        self.reader.read_many(self.assembler.records_per_batch())
    }

    /// Assembles a batch straight from the records' bytes (one copy, into the batch), into
    /// buffers of batches the consumer already dropped where there are some.
    fn assemble(&self, records: Records) -> Result<Vec<Tensor>> {
        self.assembler
            .assemble_pooled(&records.pairs(), Some(&self.pool))
    }

    fn work(&self) {
        loop {
            let (seq, records) = {
                let _order = self.read_order.lock();
                let seq = {
                    let mut state = self.state.lock();
                    while !state.stop && state.started - state.next_to_take >= self.depth {
                        self.room.wait(&mut state);
                    }
                    if state.stop {
                        return;
                    }
                    state.started += 1;
                    state.started - 1
                };
                (seq, caught(|| self.take_records()))
            };
            // Only taking records is ordered; assembling (the copying) runs in parallel
            // across workers.
            let result = records.and_then(|r| caught(|| self.assemble(r)));
            let bytes = result
                .as_ref()
                .map_or(0, |batch| batch.iter().map(Tensor::nbytes).sum());
            let mut state = self.state.lock();
            state.batch_bytes = bytes;
            state.ready.insert(seq, result);
            let wake = state.consumers_due();
            if wake {
                state.wake_at = None;
            }
            drop(state);
            if wake {
                self.batch_ready.notify_all();
            }
        }
    }
}

/// Runs one step of a worker, turning a panic into that batch's error. A worker that died
/// mid-batch would never fill its sequence number, and consumers wait for batches in order:
/// without this, a bug in decoding (or in a DB's cursor) would hang every consumer instead of
/// failing the batch, which then sticks like any other error. The step's state is not reused:
/// the reader fails for good at that batch.
fn caught<T>(step: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step))
        .unwrap_or_else(|payload| Err(C2rsError::from_panic(&*payload).context("prefetch thread")))
}

impl Drop for BatchReader {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.room.notify_all();
        for w in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up; its panic is not ours to rethrow in drop.
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_above_their_maximum_are_refused_naming_the_argument() {
        let names = ["batch_size", "depth", "threads"];
        assert!(
            check_prefetch_settings(
                MAX_BATCH_SIZE,
                MAX_PREFETCH_DEPTH,
                MAX_PREFETCH_THREADS,
                names
            )
            .is_ok()
        );
        assert_eq!(
            check_prefetch_settings(1 << 30, 1, 1, names).unwrap_err(),
            "batch_size 1073741824 exceeds the maximum 16777216"
        );
        assert_eq!(
            check_prefetch_settings(1, 1, 1 << 20, names).unwrap_err(),
            "threads 1048576 exceeds the maximum 256"
        );
        assert_eq!(
            check_prefetch_settings(1, 1 << 40, 1, names).unwrap_err(),
            "depth 1099511627776 exceeds the maximum 1024"
        );
        assert_eq!(
            check_prefetch_settings(1, 0, 1, names).unwrap_err(),
            "depth must be >= 1 when prefetching"
        );
        assert!(check_prefetch_settings(1, 0, 0, names).is_ok());
    }
    use crate::db::{Mode, open_db};
    use crate::proto::TensorProtos;
    use crate::tensor::{DataType, tensor_to_proto};
    use prost::Message;

    fn int_db(name: &str, n: i32, bad_at: Option<i32>) -> String {
        let path = std::env::temp_dir()
            .join(format!("c2rs-prefetch-{}-{name}", std::process::id()))
            .to_string_lossy()
            .into_owned();
        let db = open_db("minidb", &path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        for i in 0..n {
            let dims: &[i64] = if Some(i) == bad_at { &[2] } else { &[] };
            let tensor = Tensor::from_slice(
                DataType::Int32,
                dims,
                &vec![i; dims.iter().product::<i64>() as usize],
            )
            .unwrap();
            let value = TensorProtos {
                protos: vec![tensor_to_proto(&tensor).unwrap()],
            }
            .encode_to_vec();
            t.put(format!("key{i:03}").as_bytes(), &value).unwrap();
        }
        t.commit().unwrap();
        path
    }

    fn values(batch: &[Tensor]) -> Vec<i32> {
        batch[0].typed::<i32>().unwrap().to_vec()
    }

    #[test]
    fn batches_keep_record_order_with_many_workers_and_wrap() {
        let path = int_db("order", 10, None);
        for (threads, depth) in [(0, 0), (1, 1), (2, 3), (4, 2)] {
            let reader = Arc::new(DbReader::open("minidb", &path, 1, 0).unwrap());
            let br = BatchReader::new(
                reader,
                BatchAssembler {
                    batch_size: 3,
                    num_outputs: 1,
                },
                depth,
                threads,
            )
            .unwrap();
            let got: Vec<i32> = (0..7).flat_map(|_| values(&br.next().unwrap())).collect();
            let expected: Vec<i32> = (0..21).map(|i| i % 10).collect();
            assert_eq!(got, expected, "threads {threads} depth {depth}");
        }
    }

    #[test]
    fn sleeping_consumers_are_due_once_their_whole_run_of_batches_is_ready() {
        let mut state = State {
            started: 8,
            next_to_take: 3,
            ready: BTreeMap::new(),
            failed: None,
            stop: false,
            waiting: 0,
            wake_at: Some(5),
            batch_bytes: 0,
        };
        let batch = || Ok(Vec::new());
        state.ready.insert(4, batch());
        state.waiting = 1;
        assert!(!state.consumers_due(), "batch 3 missing");
        state.ready.insert(3, Err(C2rsError::parse("bad record")));
        assert!(state.consumers_due(), "3 (an error counts) and 4 ready");
        state.waiting = 0;
        assert!(!state.consumers_due(), "nobody waits");
        state.waiting = 1;
        state.wake_at = Some(6);
        assert!(!state.consumers_due(), "5 missing");
        state.wake_at = None;
        assert!(!state.consumers_due(), "no target");
    }

    #[test]
    fn every_batch_reaches_exactly_one_of_many_consumers_for_any_depth_and_threads() {
        let path = int_db("consumers", 10, None);
        for (threads, depth) in [
            (1, 1),
            (1, 2),
            (1, 5),
            (2, 2),
            (2, 3),
            (3, 8),
            (4, 4),
            (2, 16),
        ] {
            let reader = Arc::new(DbReader::open("minidb", &path, 1, 0).unwrap());
            let br = BatchReader::new(
                reader,
                BatchAssembler {
                    batch_size: 1,
                    num_outputs: 1,
                },
                depth,
                threads,
            )
            .unwrap();
            let per_consumer = if cfg!(miri) { 3 } else { 60 };
            let mut got: Vec<i32> = std::thread::scope(|s| {
                let consumers: Vec<_> = (0..3)
                    .map(|_| {
                        s.spawn(|| {
                            (0..per_consumer)
                                .flat_map(|_| values(&br.next().unwrap()))
                                .collect::<Vec<i32>>()
                        })
                    })
                    .collect();
                consumers
                    .into_iter()
                    .flat_map(|c| c.join().unwrap())
                    .collect()
            });
            got.sort_unstable();
            let mut expected: Vec<i32> = (0..3 * per_consumer).map(|i| i % 10).collect();
            expected.sort_unstable();
            assert_eq!(got, expected, "threads {threads} depth {depth}");
        }
    }

    /// Batches of two one-output records, two batches ahead.
    fn pairs(reader: Arc<DbReader>, threads: usize) -> BatchReader {
        let assembler = BatchAssembler {
            batch_size: 2,
            num_outputs: 1,
        };
        BatchReader::new(reader, assembler, 2, threads).unwrap()
    }

    #[test]
    fn a_prefetch_error_arrives_in_order_names_the_key_and_sticks() {
        let path = int_db("error", 10, Some(5));
        for threads in [0, 2] {
            let reader = Arc::new(DbReader::open("minidb", &path, 1, 0).unwrap());
            let br = pairs(reader, threads);
            assert_eq!(values(&br.next().unwrap()), [0, 1]);
            assert_eq!(values(&br.next().unwrap()), [2, 3]);
            let e = br.next().unwrap_err();
            assert!(e.message().contains("record 'key005'"), "{}", e.message());
            assert_eq!(br.next().unwrap_err(), e, "sticky");
        }
    }

    /// A DB whose cursor yields `records` int records and panics when asked to move past
    /// `panic_at` (a stand-in for a bug in a DB backend or in decoding).
    struct PanickingDb {
        records: Vec<Vec<u8>>,
        panic_at: usize,
    }

    struct PanickingCursor {
        records: Vec<Vec<u8>>,
        panic_at: usize,
        at: usize,
    }

    impl crate::db::Db for PanickingDb {
        fn new_cursor(&self) -> Result<Box<dyn crate::db::Cursor>> {
            Ok(Box::new(PanickingCursor {
                records: self.records.clone(),
                panic_at: self.panic_at,
                at: usize::MAX,
            }))
        }
        fn new_transaction(&self) -> Result<Box<dyn crate::db::Transaction>> {
            Err(C2rsError::unsupported("read-only test DB"))
        }
    }

    impl crate::db::Cursor for PanickingCursor {
        fn seek(&mut self, _: &[u8]) -> Result<()> {
            Err(C2rsError::unsupported("no seek"))
        }
        fn supports_seek(&self) -> bool {
            false
        }
        fn seek_to_first(&mut self) -> Result<()> {
            self.at = 0;
            Ok(())
        }
        fn next(&mut self) -> Result<()> {
            let next = self.at.wrapping_add(1);
            assert!(next != self.panic_at, "cursor bug at record {next}");
            self.at = next;
            Ok(())
        }
        fn key(&self) -> &[u8] {
            b"k"
        }
        fn value(&self) -> &[u8] {
            self.records.get(self.at).map_or(&[], |v| v)
        }
        fn valid(&self) -> bool {
            self.at < self.records.len()
        }
    }

    #[test]
    fn a_panic_in_a_worker_fails_that_batch_in_order_instead_of_hanging_the_consumer() {
        let records: Vec<Vec<u8>> = (0..8)
            .map(|i| {
                let t = Tensor::from_slice(DataType::Int32, &[], &[i]).unwrap();
                TensorProtos {
                    protos: vec![tensor_to_proto(&t).unwrap()],
                }
                .encode_to_vec()
            })
            .collect();
        for threads in [0, 1, 3] {
            let db = PanickingDb {
                records: records.clone(),
                panic_at: 4,
            };
            let reader = Arc::new(DbReader::streaming(Box::new(db), "panicky", "test").unwrap());
            let br = pairs(reader, threads);
            // The streaming reader pulls before each record: records 0-3 are two batches, the
            // pull of record 4 panics.
            assert_eq!(values(&br.next().unwrap()), [0, 1], "threads {threads}");
            assert_eq!(values(&br.next().unwrap()), [2, 3], "threads {threads}");
            let e = br.next().unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Panic, "threads {threads}");
            assert_eq!(
                e.message(),
                "prefetch thread: panic: cursor bug at record 4",
                "threads {threads}"
            );
            assert_eq!(br.next().unwrap_err(), e, "sticky, threads {threads}");
        }
    }

    #[test]
    fn a_dropped_batch_gives_its_buffer_to_a_later_batch() {
        let path = int_db("reuse", 4, None);
        let reader = Arc::new(DbReader::open("minidb", &path, 1, 0).unwrap());
        let assembler = BatchAssembler {
            batch_size: 2,
            num_outputs: 1,
        };
        let br = BatchReader::new(reader, assembler, 0, 0).unwrap();
        let first = br.next().unwrap();
        let buffer = first[0].storage().unwrap().as_ptr();
        assert_eq!(values(&first), [0, 1]);
        drop(first);
        let second = br.next().unwrap();
        assert_eq!(second[0].storage().unwrap().as_ptr(), buffer);
        assert_eq!(values(&second), [2, 3], "refilled with the new records");
        // A batch still held keeps its buffer: the next one gets another.
        let third = br.next().unwrap();
        assert_ne!(third[0].storage().unwrap().as_ptr(), buffer);
        assert_eq!((values(&second), values(&third)), (vec![2, 3], vec![0, 1]));
    }

    #[test]
    fn dropping_a_reader_with_idle_workers_returns() {
        let path = int_db("drop", 4, None);
        let reader = Arc::new(DbReader::open("minidb", &path, 1, 0).unwrap());
        let br = BatchReader::new(
            reader,
            BatchAssembler {
                batch_size: 1,
                num_outputs: 1,
            },
            4,
            3,
        )
        .unwrap();
        assert_eq!(values(&br.next().unwrap()), [0]);
        drop(br);
    }
}
