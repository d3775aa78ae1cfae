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
/// ready), and `ready` holds only sequence numbers in `[next_to_take, started)`.
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
}

struct Shared {
    reader: Arc<DbReader>,
    assembler: BatchAssembler,
    /// Buffers of dropped batches, reused by the next ones (no page faults on refill).
    pool: Arc<BufferPool>,
    depth: u64,
    /// Serialises "take a sequence number and read its records", so sequence numbers follow
    /// record order. Guards nothing else.
    read_order: Mutex<()>,
    state: Mutex<State>,
    /// The consumer waits here for `ready[next_to_take]`.
    batch_ready: Condvar,
    /// Workers wait here for room (`started - next_to_take < depth`) or stop.
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
            read_order: Mutex::new(()),
            state: Mutex::new(State {
                started: 0,
                next_to_take: 0,
                ready: BTreeMap::new(),
                failed: None,
                stop: false,
            }),
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
            let result = s.take_records().and_then(|records| s.assemble(records));
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
            s.batch_ready.wait(&mut state);
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
            {
                let mut state = self.state.lock();
                while !state.stop && state.started - state.next_to_take >= self.depth {
                    self.room.wait(&mut state);
                }
                if state.stop {
                    return;
                }
            }
            let (seq, records) = {
                let _order = self.read_order.lock();
                let seq = {
                    let mut state = self.state.lock();
                    // Another worker may have taken the room while this one waited for the order lock.
                    if state.stop || state.started - state.next_to_take >= self.depth {
                        continue;
                    }
                    state.started += 1;
                    state.started - 1
                };
                (seq, self.take_records())
            };
            // Only taking records is ordered; assembling (the copying) runs in parallel
            // across workers.
            let result = records.and_then(|r| self.assemble(r));
            let mut state = self.state.lock();
            state.ready.insert(seq, result);
            drop(state);
            self.batch_ready.notify_all();
        }
    }
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
    fn a_prefetch_error_arrives_in_order_names_the_key_and_sticks() {
        let path = int_db("error", 10, Some(5));
        for threads in [0, 2] {
            let reader = Arc::new(DbReader::open("minidb", &path, 1, 0).unwrap());
            let br = BatchReader::new(
                reader,
                BatchAssembler {
                    batch_size: 2,
                    num_outputs: 1,
                },
                2,
                threads,
            )
            .unwrap();
            assert_eq!(values(&br.next().unwrap()), [0, 1]);
            assert_eq!(values(&br.next().unwrap()), [2, 3]);
            let e = br.next().unwrap_err();
            assert!(e.message().contains("record 'key005'"), "{}", e.message());
            assert_eq!(br.next().unwrap_err(), e, "sticky");
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
