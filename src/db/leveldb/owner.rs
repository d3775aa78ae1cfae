//! The thread that owns one open `rusty-leveldb` database. The crate's `DB` and iterators
//! share `Rc`s, so they must stay on one thread: handles (`Client`) send it requests over a
//! channel and wait for the answer. Each request runs under `catch_unwind`; a panic (the crate
//! asserts on data it did not expect), an error, or a failure the crate would have skipped
//! (`Latch`) poisons the database: it is closed at once (releasing the LOCK file) and every
//! later request gets the first error.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use rusty_leveldb::compressor::{CompressorId, SnappyCompressor};
use rusty_leveldb::{DB, DBIterator, LdbIterator, Options, Status, StatusCode, WriteBatch};

use super::env::{CheckedEnv, Latch};
use crate::db::Mode;
use crate::error::{C2rsError, ErrorKind, Result};

/// Caffe2's `caffe2_leveldb_block_size` default.
const BLOCK_SIZE: usize = 64 << 10;
/// Caffe2's write buffer (`options.write_buffer_size = 268435456`).
const WRITE_BUFFER_SIZE: usize = 256 << 20;
/// Caffe2's `options.max_open_files = 100` (the table cache keeps 10 fewer, as LevelDB does).
const MAX_OPEN_FILES: usize = 100;
/// LevelDB's default block cache.
const BLOCK_CACHE_BYTES: usize = 8 << 20;
/// A cursor is sent the records after its position in batches of at most this many records
/// or bytes (at least one record), so a sequential read costs one round trip per batch.
const BATCH_RECORDS: usize = 256;
const BATCH_BYTES: usize = 4 << 20;

pub(super) type Record = (Vec<u8>, Vec<u8>);

/// Records from a cursor's position on, and whether they run to the end of its snapshot.
pub(super) struct Batch {
    pub(super) records: VecDeque<Record>,
    pub(super) end: bool,
}

pub(super) enum Request {
    /// A cursor on a snapshot of now, at the first record: `Reply::Cursor`.
    NewCursor,
    /// Moves a cursor to the first key ≥ `to` (the first record when None) and returns that
    /// record alone: `Reply::Batch`.
    Seek { cursor: u64, to: Option<Vec<u8>> },
    /// The next records after what the cursor was sent: `Reply::Batch`.
    Fill { cursor: u64 },
    /// Forgets a cursor (no reply).
    DropCursor { cursor: u64 },
    /// Writes the records as one write batch: `Reply::Done`.
    Write { records: Vec<Record> },
    /// Panics on the owner thread, as the crate may on data it did not expect.
    #[cfg(test)]
    Panic,
}

pub(super) enum Reply {
    Cursor { id: u64, batch: Batch },
    Batch(Batch),
    Done,
}

struct Envelope {
    request: Request,
    reply: Option<Sender<Result<Reply>>>,
}

/// A handle on the owner thread. Dropping the last one closes the database and waits for it.
pub(super) struct Client {
    path: String,
    /// None only while dropping.
    requests: Option<Sender<Envelope>>,
    thread: Option<JoinHandle<()>>,
    /// Set by the owner thread when the database is poisoned (so `open` makes a new one);
    /// only a hint, hence relaxed: a request still gets the poisoned answer.
    poisoned: Arc<AtomicBool>,
}

impl Client {
    /// Starts an owner thread and opens `path` there with Caffe2's options.
    pub(super) fn open(path: &str, mode: Mode) -> Result<Self> {
        let (requests, inbox) = mpsc::channel();
        let (opened_tx, opened) = mpsc::channel();
        let poisoned = Arc::new(AtomicBool::new(false));
        let p = path.to_string();
        let flag = poisoned.clone();
        let thread = std::thread::Builder::new()
            .name("c2rs-leveldb".into())
            .spawn(move || {
                let owner = Owner {
                    path: p,
                    latch: Latch::default(),
                    poisoned: flag,
                };
                owner.run(mode, inbox, opened_tx)
            })
            .map_err(|e| C2rsError::io(format!("cannot start the LevelDB thread: {e}")))?;
        match opened.recv() {
            Ok(Ok(())) => Ok(Self {
                path: path.to_string(),
                requests: Some(requests),
                thread: Some(thread),
                poisoned,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(C2rsError::internal(format!(
                    "LevelDB {path}: the owner thread ended while opening"
                )))
            }
        }
    }

    pub(super) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    pub(super) fn path(&self) -> &str {
        &self.path
    }

    pub(super) fn call(&self, request: Request) -> Result<Reply> {
        let (tx, rx) = mpsc::channel();
        self.send(Envelope {
            request,
            reply: Some(tx),
        })?;
        rx.recv().map_err(|_| self.gone())?
    }

    /// Sends a request that has no answer.
    pub(super) fn tell(&self, request: Request) {
        let _ = self.send(Envelope {
            request,
            reply: None,
        });
    }

    fn send(&self, envelope: Envelope) -> Result<()> {
        match &self.requests {
            Some(tx) => tx.send(envelope).map_err(|_| self.gone()),
            None => Err(self.gone()),
        }
    }

    fn gone(&self) -> C2rsError {
        C2rsError::internal(format!("LevelDB {}: the owner thread is gone", self.path))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Closing the channel ends the owner loop, which closes the database (LOCK released);
        // joining under the registry lock makes the close finish before any open of the same
        // directory looks it up.
        let _registry = super::OPEN.lock();
        drop(self.requests.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An open database and its cursors' iterators, all on the owner thread.
struct Open {
    db: DB,
    iterators: HashMap<u64, DBIterator>,
    next_id: u64,
}

enum State {
    Open(Box<Open>),
    /// Closed after this error; every request gets it again.
    Poisoned(C2rsError),
}

struct Owner {
    path: String,
    latch: Latch,
    poisoned: Arc<AtomicBool>,
}

impl Owner {
    fn run(self, mode: Mode, inbox: Receiver<Envelope>, opened: Sender<Result<()>>) {
        let attempt = catch_unwind(AssertUnwindSafe(|| self.open_db(mode)));
        let db = match self.outcome(attempt) {
            Ok(db) => db,
            Err(e) => {
                let _ = opened.send(Err(e));
                return;
            }
        };
        let mut state = State::Open(Box::new(Open {
            db,
            iterators: HashMap::new(),
            next_id: 0,
        }));
        if opened.send(Ok(())).is_err() {
            return;
        }
        for Envelope { request, reply } in inbox {
            let answer = match &mut state {
                State::Poisoned(first) => Err(C2rsError::new(
                    first.kind(),
                    format!(
                        "LevelDB {} is unusable after an earlier error: {}",
                        self.path,
                        first.message()
                    ),
                )),
                State::Open(open) => {
                    let attempt = catch_unwind(AssertUnwindSafe(|| open.serve(request)));
                    self.outcome(attempt)
                }
            };
            if let (Err(e), State::Open(_)) = (&answer, &state) {
                let old = std::mem::replace(&mut state, State::Poisoned(e.clone()));
                self.poisoned.store(true, Ordering::Relaxed);
                // Closing may touch the crate's state the failure left behind.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(old)));
            }
            if let Some(reply) = reply {
                let _ = reply.send(answer);
            }
        }
        let _ = catch_unwind(AssertUnwindSafe(move || drop(state)));
    }

    /// A request's result as the host sees it: a latched failure first (the crate may have
    /// skipped data, so an Ok answer is not to be trusted), then a panic, then the result.
    fn outcome<T>(&self, attempt: std::thread::Result<Result<T>>) -> Result<T> {
        let latched = self.latch.take();
        let result = match attempt {
            Ok(r) => r,
            Err(payload) => Err(C2rsError::parse(format!(
                "the LevelDB reader failed on damaged data ({})",
                C2rsError::from_panic(payload.as_ref()).message()
            ))),
        };
        match (latched, result) {
            (Some(e), _) | (None, Err(e)) => Err(C2rsError::new(
                e.kind(),
                format!("LevelDB {}: {}", self.path, e.message()),
            )),
            (None, Ok(v)) => Ok(v),
        }
    }

    fn open_db(&self, mode: Mode) -> Result<DB> {
        let opt = Options {
            env: Rc::new(Box::new(CheckedEnv::new(
                self.latch.clone(),
                mode == Mode::Read,
            ))),
            create_if_missing: mode != Mode::Read,
            // `error_if_exists` (mode NEW) is checked by the caller as LevelDB does it: a
            // CURRENT file exists. The crate's own check refuses any existing directory.
            error_if_exists: false,
            block_size: BLOCK_SIZE,
            write_buffer_size: WRITE_BUFFER_SIZE,
            max_open_files: MAX_OPEN_FILES,
            block_cache_capacity_bytes: BLOCK_CACHE_BYTES,
            compressor: SnappyCompressor::ID,
            // LevelDB's defaults (the crate reuses logs and MANIFESTs by default).
            reuse_logs: false,
            reuse_manifest: false,
            ..Options::default()
        };
        DB::open(&self.path, opt).map_err(|s| status_error("cannot open", s))
    }
}

impl Open {
    fn serve(&mut self, request: Request) -> Result<Reply> {
        match request {
            Request::NewCursor => {
                let mut it = self
                    .db
                    .new_iter()
                    .map_err(|s| status_error("cannot make a cursor", s))?;
                it.seek_to_first();
                let batch = take_one(&mut it);
                let id = self.next_id;
                self.next_id += 1;
                self.iterators.insert(id, it);
                Ok(Reply::Cursor { id, batch })
            }
            Request::Seek { cursor, to } => {
                let it = self.iterator(cursor)?;
                match to {
                    Some(key) => it.seek(&key),
                    None => it.seek_to_first(),
                }
                Ok(Reply::Batch(take_one(it)))
            }
            Request::Fill { cursor } => {
                let it = self.iterator(cursor)?;
                let mut records = VecDeque::new();
                let mut bytes = 0;
                while it.valid() && records.len() < BATCH_RECORDS && bytes < BATCH_BYTES {
                    if let Some(record) = current(it) {
                        bytes += record.0.len() + record.1.len();
                        records.push_back(record);
                    }
                    it.advance();
                }
                Ok(Reply::Batch(Batch {
                    records,
                    end: !it.valid(),
                }))
            }
            Request::DropCursor { cursor } => {
                self.iterators.remove(&cursor);
                Ok(Reply::Done)
            }
            Request::Write { records } => {
                let mut batch = WriteBatch::default();
                for (k, v) in &records {
                    batch.put(k, v);
                }
                // sync = true flushes the log to the OS (no fsync), as LevelDB's Write does.
                self.db
                    .write(batch, true)
                    .map_err(|s| status_error("cannot write", s))?;
                Ok(Reply::Done)
            }
            #[cfg(test)]
            Request::Panic => panic!("injected failure"),
        }
    }

    fn iterator(&mut self, id: u64) -> Result<&mut DBIterator> {
        self.iterators
            .get_mut(&id)
            .ok_or_else(|| C2rsError::internal(format!("no LevelDB cursor #{id}")))
    }
}

fn current(it: &DBIterator) -> Option<Record> {
    it.current().map(|(k, v)| (Vec::from(k), Vec::from(v)))
}

/// The record under `it` (none when invalid), then steps past it.
fn take_one(it: &mut DBIterator) -> Batch {
    let mut records = VecDeque::new();
    if let Some(record) = current(it) {
        records.push_back(record);
        it.advance();
    }
    Batch {
        records,
        end: !it.valid(),
    }
}

fn status_error(what: &str, s: Status) -> C2rsError {
    let kind = match s.code {
        StatusCode::Corruption | StatusCode::InvalidData | StatusCode::CompressionError => {
            ErrorKind::Parse
        }
        StatusCode::NotFound => ErrorKind::NotFound,
        StatusCode::AlreadyExists => ErrorKind::AlreadyExists,
        StatusCode::InvalidArgument => ErrorKind::InvalidArgument,
        StatusCode::NotSupported => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    };
    C2rsError::new(kind, format!("{what}: {}", s.err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_poisons_the_database_closes_it_and_every_later_call_gets_the_error() {
        let dir = std::env::temp_dir().join(format!("c2rs-leveldb-owner-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.to_string_lossy().into_owned();
        let client = Client::open(&path, Mode::New).unwrap();
        client
            .call(Request::Write {
                records: vec![(b"k".to_vec(), b"v".to_vec())],
            })
            .unwrap();
        let e = client.call(Request::Panic).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(
            e.message().starts_with(&format!("LevelDB {path}: "))
                && e.message().contains("injected failure"),
            "{}",
            e.message()
        );
        assert!(client.is_poisoned());
        let again = client.call(Request::NewCursor).err().unwrap();
        assert_eq!(again.kind(), ErrorKind::Parse);
        assert!(
            again.message().contains("unusable after an earlier error")
                && again.message().contains("injected failure"),
            "{}",
            again.message()
        );
        // Closed at once: the LOCK is free while the poisoned handle is still alive, and
        // what was written before the failure is there.
        let fresh = Client::open(&path, Mode::Read).unwrap();
        match fresh.call(Request::NewCursor).unwrap() {
            Reply::Cursor { batch, .. } => {
                assert_eq!(batch.records, [(b"k".to_vec(), b"v".to_vec())]);
            }
            _ => panic!("expected a cursor"),
        }
        drop(client);
    }
}
