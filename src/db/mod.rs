//! Key-value databases as Caffe2 used them: `DB` / `Cursor` / `Transaction` with modes READ,
//! WRITE and NEW, a registry by type name, minidb (in-house) and LMDB (read in-house, written
//! through heed), and the thread-safe, sharded `DbReader`.

mod batch;
mod host_source;
mod leveldb;
mod lmdb;
mod mapping;
mod minidb;
mod prefetch;
mod reader;
mod scan;

pub use batch::{BatchAssembler, Record, decode_record};
pub use host_source::{MAX_FEED_CAPACITY, PullFn, RecordFeed, pull_reader};
pub use leveldb::{check_leveldb_log, check_leveldb_table};
pub use prefetch::{
    BatchReader, MAX_BATCH_SIZE, MAX_PREFETCH_DEPTH, MAX_PREFETCH_THREADS, check_prefetch_settings,
};
pub use reader::{DbReader, Records};

/// Entry points for fuzz targets (not a stable API).
#[doc(hidden)]
pub use lmdb::fuzzing as lmdb_fuzzing;
/// Entry points for fuzz targets (not a stable API).
#[doc(hidden)]
pub use minidb::fuzzing as minidb_fuzzing;

use std::ops::Range;
use std::sync::Arc;

use crate::error::{C2rsError, Result};

/// How a DB is opened (Caffe2's `db::Mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read existing records.
    Read,
    /// Append to an existing DB.
    Write,
    /// Create a new DB, truncating (minidb) or refusing (LMDB) an existing one.
    New,
}

impl TryFrom<i32> for Mode {
    type Error = C2rsError;
    /// Caffe2 numbering: READ 0, WRITE 1, NEW 2.
    fn try_from(value: i32) -> Result<Self> {
        match value {
            0 => Ok(Mode::Read),
            1 => Ok(Mode::Write),
            2 => Ok(Mode::New),
            _ => Err(C2rsError::invalid_argument(format!(
                "DB mode {value} is not READ 0, WRITE 1 or NEW 2"
            ))),
        }
    }
}

/// An open database. Cursors and transactions hold what they need, so they may outlive it.
pub trait Db: Send + Sync {
    /// A cursor positioned at the first record (invalid when the DB is empty).
    fn new_cursor(&self) -> Result<Box<dyn Cursor>>;
    /// A transaction for `put`s; committed on `commit` and when dropped.
    fn new_transaction(&self) -> Result<Box<dyn Transaction>>;
}

/// Iterates records in the DB's order (insertion order for minidb, bytewise key order for LMDB).
pub trait Cursor: Send {
    /// Moves to the first record whose key is ≥ `key` (invalid if none).
    fn seek(&mut self, key: &[u8]) -> Result<()>;
    fn supports_seek(&self) -> bool;
    fn seek_to_first(&mut self) -> Result<()>;
    /// Moves to the next record; invalid past the end.
    fn next(&mut self) -> Result<()>;
    /// Key of the current record; empty when invalid.
    fn key(&self) -> &[u8];
    /// Value of the current record; empty when invalid.
    fn value(&self) -> &[u8];
    fn valid(&self) -> bool;
    /// The current record's key and value as owned buffers, for a caller about to move on.
    /// Empty when invalid.
    fn take_record(&mut self) -> Result<(Vec<u8>, Vec<u8>)> {
        let (key, value) = self.take_shared();
        Ok((key.into_vec(), value.into_vec()))
    }
    /// As `take_record`, sharing the bytes instead of copying where the cursor can (minidb and
    /// LMDB: ranges of their mapped file). `valid()` is unchanged. The default copies.
    fn take_shared(&mut self) -> (RecordBytes, RecordBytes) {
        (
            RecordBytes::Owned(self.key().to_vec()),
            RecordBytes::Owned(self.value().to_vec()),
        )
    }
    /// The memory this cursor's records live in when it can share them (minidb, LMDB: its mapped
    /// file); the same for the cursor's whole life. None (the default) when it cannot.
    fn shared_memory(&self) -> Option<SharedMemory> {
        None
    }
    /// The current record's key and value as ranges of `shared_memory()`; None when invalid
    /// or not shared.
    fn span(&self) -> Option<(Range<usize>, Range<usize>)> {
        None
    }
}

/// Read-only memory a cursor shares its records from (a mapped minidb file or LMDB
/// `data.mdb`), kept alive by whoever holds records of it.
#[derive(Clone)]
pub struct SharedMemory(Arc<mapping::Mapping>);

impl SharedMemory {
    /// `range` of the memory; empty when out of bounds (ranges come from the cursor, which
    /// checked them against this memory).
    pub fn get(&self, range: Range<usize>) -> &[u8] {
        self.0.bytes().get(range).unwrap_or_default()
    }
}

/// A record's key or value as a cursor handed it out: owned, or shared with the DB's mapping.
pub enum RecordBytes {
    Owned(Vec<u8>),
    Mapped(mapping::MappedBytes),
}

impl RecordBytes {
    /// The bytes as a vector (moved when owned, copied when mapped).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            RecordBytes::Owned(v) => v,
            RecordBytes::Mapped(m) => m.as_ref().to_vec(),
        }
    }
}

impl AsRef<[u8]> for RecordBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            RecordBytes::Owned(v) => v,
            RecordBytes::Mapped(m) => m.as_ref(),
        }
    }
}

/// Writes records. `commit` makes what was put durable (flushed) and keeps the transaction usable.
pub trait Transaction: Send {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;
    fn commit(&mut self) -> Result<()>;
}

/// DB types that Caffe2 knew but this build does not include.
const NOT_BUILT: [&str; 4] = ["rocksdb", "RocksDB", "zmqdb", "ZmqDB"];
/// Registered type names (both spellings, case-sensitive, as Caffe2 registered them).
pub const REGISTERED: [&str; 6] = ["leveldb", "LevelDB", "lmdb", "LMDB", "minidb", "MiniDB"];

/// Opens `source` as a DB of `db_type`. An unknown type and a failed open are distinct errors.
pub fn open_db(db_type: &str, source: &str, mode: Mode) -> Result<Box<dyn Db>> {
    let opened: Result<Box<dyn Db>> = match db_type {
        "minidb" | "MiniDB" => {
            minidb::MiniDb::open(source, mode).map(|d| Box::new(d) as Box<dyn Db>)
        }
        "lmdb" | "LMDB" => lmdb::LmDb::open(source, mode).map(|d| Box::new(d) as Box<dyn Db>),
        "leveldb" | "LevelDB" => {
            leveldb::LevelDb::open(source, mode).map(|d| Box::new(d) as Box<dyn Db>)
        }
        t if NOT_BUILT.contains(&t) => {
            return Err(C2rsError::unsupported(format!(
                "caffe2rs was built without {t} support"
            )));
        }
        t => {
            return Err(C2rsError::not_found(format!(
                "Unknown db type: {t} (registered: {})",
                REGISTERED.join(", ")
            )));
        }
    };
    opened.map_err(|e| {
        C2rsError::new(
            e.kind(),
            format!(
                "Cannot open db: {source} of type {db_type}: {}",
                e.message()
            ),
        )
    })
}

/// The error for an OS failure on `path`: missing files are `NotFound`, the rest `Io`.
fn io_error(path: &str, what: &str, e: &std::io::Error) -> C2rsError {
    let message = format!("{what} {path}: {e}");
    if e.kind() == std::io::ErrorKind::NotFound {
        C2rsError::not_found(message)
    } else {
        C2rsError::io(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn unknown_and_unbuilt_types_are_distinct_errors() {
        let e = open_db("foodb", "/tmp/x", Mode::Read)
            .err()
            .expect("unknown type");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.message(),
            "Unknown db type: foodb (registered: leveldb, LevelDB, lmdb, LMDB, minidb, MiniDB)"
        );
        let e = open_db("RocksDB", "/tmp/x", Mode::Read)
            .err()
            .expect("not built");
        assert_eq!(
            (e.kind(), e.message()),
            (
                ErrorKind::Unsupported,
                "caffe2rs was built without RocksDB support"
            )
        );
        let e = open_db("minidb", "/nonexistent/dir/file", Mode::Read)
            .err()
            .expect("missing file");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.message()
                .starts_with("Cannot open db: /nonexistent/dir/file of type minidb: "),
            "{}",
            e.message()
        );
    }

    #[test]
    fn mode_numbers_follow_caffe2() {
        assert_eq!(Mode::try_from(0).unwrap(), Mode::Read);
        assert_eq!(Mode::try_from(2).unwrap(), Mode::New);
        assert!(Mode::try_from(3).is_err());
    }
}
