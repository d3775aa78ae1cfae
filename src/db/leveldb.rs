//! LevelDB as Caffe2 used it (`caffe2/db/leveldb.cc`): the source is a directory in Google's
//! LevelDB format, Snappy-compressed tables of 64 KiB blocks, bytewise key order, a 256 MiB
//! write buffer, 100 open files; a transaction is a write batch; one process per database
//! (the LOCK file).
//!
//! Why `rusty-leveldb` (pure Rust) and not Google's C++ LevelDB through FFI: it reads and
//! writes Google's format with Snappy (the golden database written by LevelDB 1.22 reads
//! record for record), needs no system library or C++ toolchain, and a failure inside it is a
//! Rust panic that can be caught, where a C++ LevelDB that crashes or throws `bad_alloc` on a
//! damaged file takes the host down. What the crate does not do is handled here:
//! - it trusts its files (asserts on a bad footer, allocates the size a block handle names,
//!   indexes blocks by offsets read from them) and its iterators skip unreadable blocks and
//!   tables silently: `env` checks every table, log and MANIFEST (`format`) before the crate
//!   reads it, and latches any failure the crate would swallow;
//! - its `DB` and iterators share `Rc`s (not thread-safe): `owner` keeps them on one thread
//!   per database, serving cursors and transactions over a channel, each request under
//!   `catch_unwind`. A panic or error poisons the database: it is closed (LOCK released) and
//!   every later call gets the first error.
//!
//! Within one process, every open of the same directory shares one database (LevelDB allows
//! one opener), so a reader, a Save and a deserialized reader may coexist; another process
//! gets an I/O error (LOCK held). Opening in any mode writes to the directory as LevelDB's own
//! recovery does (LOCK, the LOG info file, a new MANIFEST and log, the old log turned into a
//! table, compactions it finds due): a directory the process cannot write is an I/O error.
//! Reading never creates a missing directory.

mod env;
mod format;
mod owner;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::{Cursor, Db, Mode, RecordBytes, Transaction, io_error};
use crate::error::{C2rsError, Result};
use owner::{Batch, Client, Record, Reply, Request};

/// Open databases by canonical directory. Entries are weak: a database closes when its last
/// handle drops. `Client::drop` closes while holding this mutex, so an open of the same
/// directory waits for the LOCK file to be released; hence no `Client` may be dropped here
/// while it is held. Lock order: this mutex, nothing after it.
static OPEN: Lazy<Mutex<HashMap<PathBuf, Weak<Client>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// Checks the bytes of a LevelDB table file (`NNNNNN.ldb`) as they are checked before the
/// crate reads them: an entry point for fuzzing. Errors are C2RS_PARSE_ERROR.
pub fn check_leveldb_table(bytes: &[u8]) -> Result<()> {
    format::check_table_bytes(bytes).map_err(check_error)
}

/// Checks the bytes of a LevelDB log (`NNNNNN.log`, records holding write batches) or, with
/// `write_batches` false, a MANIFEST: an entry point for fuzzing.
pub fn check_leveldb_log(bytes: &[u8], write_batches: bool) -> Result<()> {
    let content = if write_batches {
        format::LogContent::WriteBatches
    } else {
        format::LogContent::VersionEdits
    };
    format::check_log_bytes(bytes, content).map_err(check_error)
}

fn check_error(e: format::CheckError) -> C2rsError {
    match e {
        format::CheckError::Io(e) => C2rsError::parse(format!("truncated: {e}")),
        format::CheckError::Corrupt(why) => C2rsError::parse(why),
    }
}

pub(super) struct LevelDb {
    mode: Mode,
    client: Arc<Client>,
}

/// Whether `dir` holds files of a LevelDB database (tables, logs, MANIFESTs).
fn has_leveldb_files(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("MANIFEST-")
            || [".ldb", ".sst", ".log"].iter().any(|s| {
                name.strip_suffix(s)
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
    })
}

impl LevelDb {
    pub(super) fn open(path: &str, mode: Mode) -> Result<Self> {
        let dir = Path::new(path);
        if dir.exists() && !dir.is_dir() {
            return Err(C2rsError::invalid_argument(format!(
                "LevelDB source must be a directory: {path}"
            )));
        }
        let current = dir.join("CURRENT").exists();
        match mode {
            Mode::Read if !current => {
                return Err(C2rsError::not_found(format!(
                    "LevelDB {path} does not exist (no CURRENT file)"
                )));
            }
            Mode::New if current => {
                return Err(C2rsError::already_exists(format!(
                    "LevelDB {path} already exists (mode NEW)"
                )));
            }
            Mode::Write | Mode::New if !current && has_leveldb_files(dir) => {
                // Starting a database here would delete the old files as obsolete.
                return Err(C2rsError::parse(format!(
                    "LevelDB {path} has database files but no CURRENT file (damaged); not starting a new database over them"
                )));
            }
            Mode::Write | Mode::New => std::fs::create_dir_all(dir)
                .map_err(|e| io_error(path, "cannot create LevelDB directory", &e))?,
            Mode::Read => {}
        }
        let canonical = dir
            .canonicalize()
            .map_err(|e| io_error(path, "cannot resolve LevelDB directory", &e))?;
        // A poisoned database found here (already closed) is dropped after the lock is
        // released: declared first, dropped last.
        let mut stale = None;
        let mut open = OPEN.lock();
        let client = match open.get(&canonical).and_then(Weak::upgrade) {
            Some(c) if !c.is_poisoned() => c,
            found => {
                stale = found;
                let c = Arc::new(Client::open(path, mode)?);
                open.retain(|_, w| w.strong_count() > 0);
                open.insert(canonical, Arc::downgrade(&c));
                c
            }
        };
        drop(open);
        drop(stale);
        Ok(Self { mode, client })
    }
}

impl Db for LevelDb {
    fn new_cursor(&self) -> Result<Box<dyn Cursor>> {
        match self.client.call(Request::NewCursor)? {
            Reply::Cursor { id, batch } => {
                let mut cursor = LevelDbCursor {
                    client: self.client.clone(),
                    id,
                    current: None,
                    ahead: VecDeque::new(),
                    end: true,
                };
                cursor.land(batch);
                Ok(Box::new(cursor))
            }
            _ => Err(unexpected(&self.client)),
        }
    }

    fn new_transaction(&self) -> Result<Box<dyn Transaction>> {
        if self.mode == Mode::Read {
            return Err(C2rsError::enforce(format!(
                "LevelDB {} is open for reading; transactions need WRITE or NEW mode",
                self.client.path()
            )));
        }
        Ok(Box::new(LevelDbTransaction {
            client: self.client.clone(),
            pending: Vec::new(),
        }))
    }
}

fn unexpected(client: &Client) -> C2rsError {
    C2rsError::internal(format!(
        "LevelDB {}: unexpected answer from the owner thread",
        client.path()
    ))
}

/// A cursor on a snapshot taken when it was made. The owner thread's iterator stays just past
/// the records sent here: `current`, then `ahead` (fetched in batches), then, unless `end`,
/// more to fetch.
struct LevelDbCursor {
    client: Arc<Client>,
    id: u64,
    /// The record the cursor rests on; None when invalid.
    current: Option<Record>,
    ahead: VecDeque<Record>,
    /// No records follow `ahead`.
    end: bool,
}

impl LevelDbCursor {
    fn land(&mut self, batch: Batch) {
        self.ahead = batch.records;
        self.end = batch.end;
        self.current = self.ahead.pop_front();
    }

    fn seek_to(&mut self, to: Option<Vec<u8>>) -> Result<()> {
        self.current = None;
        match self.client.call(Request::Seek {
            cursor: self.id,
            to,
        })? {
            Reply::Batch(batch) => {
                self.land(batch);
                Ok(())
            }
            _ => Err(unexpected(&self.client)),
        }
    }
}

impl Cursor for LevelDbCursor {
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.seek_to(Some(key.to_vec()))
    }

    fn supports_seek(&self) -> bool {
        true
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.seek_to(None)
    }

    fn next(&mut self) -> Result<()> {
        if self.current.is_none() {
            return Ok(());
        }
        if self.ahead.is_empty() && !self.end {
            self.current = None;
            match self.client.call(Request::Fill { cursor: self.id })? {
                Reply::Batch(batch) => {
                    self.ahead = batch.records;
                    self.end = batch.end;
                }
                _ => return Err(unexpected(&self.client)),
            }
        }
        self.current = self.ahead.pop_front();
        Ok(())
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |(k, _)| k)
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |(_, v)| v)
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    /// Moves the value out (`value()` is then empty until the next move); copies the key.
    fn take_shared(&mut self) -> (RecordBytes, RecordBytes) {
        match &mut self.current {
            Some((k, v)) => (
                RecordBytes::Owned(k.clone()),
                RecordBytes::Owned(std::mem::take(v)),
            ),
            None => (
                RecordBytes::Owned(Vec::new()),
                RecordBytes::Owned(Vec::new()),
            ),
        }
    }
}

impl Drop for LevelDbCursor {
    fn drop(&mut self) {
        self.client.tell(Request::DropCursor { cursor: self.id });
    }
}

/// Collects puts into one LevelDB write batch, written on `commit` (and on drop).
struct LevelDbTransaction {
    client: Arc<Client>,
    pending: Vec<Record>,
}

impl Transaction for LevelDbTransaction {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.pending.push((key.to_vec(), value.to_vec()));
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        match self.client.call(Request::Write { records })? {
            Reply::Done => Ok(()),
            _ => Err(unexpected(&self.client)),
        }
    }
}

impl Drop for LevelDbTransaction {
    fn drop(&mut self) {
        // Drop commits, as in Caffe2; a failure here has nobody to report to.
        let _ = self.commit();
    }
}
