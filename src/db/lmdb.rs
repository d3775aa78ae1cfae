//! LMDB through `heed` (LMDB 0.9, data format v1, file-compatible with the liblmdb C++ Caffe2
//! used). The source is a directory holding `data.mdb` (and `lock.mdb` unless read-only).
//! Readers open `READ_ONLY | NO_LOCK` without thread-local read transactions, so many
//! processes and threads can read one DB (without protection against a concurrent writer).

use std::collections::HashMap;
use std::ops::Bound;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, RoTxn, WithoutTls};
use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::{Cursor, Db, Mode, RecordBytes, Transaction, io_error};
use crate::error::{C2rsError, Result};

/// Caffe2's default map size: 1 TiB of address space (not disk).
const MAP_SIZE: usize = 1 << 40;
/// LMDB's compiled-in maximum key size.
const MAX_KEY: usize = 511;

/// One open environment and its unnamed database, shared by every `LmDb`, cursor and
/// transaction on the same directory: heed (like LMDB) allows one environment per path and
/// process.
struct Shared {
    path: String,
    read_only: bool,
    env: Env<WithoutTls>,
    db: Database<'static, Bytes, Bytes>,
}

/// Open environments by canonical path. Guarded by the mutex; entries are weak so an
/// environment closes when its last user drops. Lock order: this mutex before heed's own.
static OPEN_ENVS: Lazy<Mutex<HashMap<PathBuf, Weak<Shared>>>> =
    Lazy::new(|| Mutex::new(HashMap::new()));

pub(super) struct LmDb {
    mode: Mode,
    shared: Arc<Shared>,
}

fn lmdb_error(path: &str, what: &str, e: heed::Error) -> C2rsError {
    match e {
        heed::Error::Io(io) => io_error(path, what, &io),
        other => C2rsError::io(format!("{what} {path}: {other}")),
    }
}

impl LmDb {
    pub(super) fn open(path: &str, mode: Mode) -> Result<Self> {
        let p = Path::new(path);
        if p.exists() && !p.is_dir() {
            return Err(C2rsError::invalid_argument(format!(
                "LMDB source must be a directory: {path}"
            )));
        }
        if mode == Mode::New {
            std::fs::DirBuilder::new()
                .mode(0o744)
                .create(p)
                .map_err(|e| io_error(path, "cannot create LMDB directory", &e))?;
        } else if !p.exists() {
            return Err(C2rsError::not_found(format!(
                "LMDB directory {path} does not exist"
            )));
        }
        let canonical = p
            .canonicalize()
            .map_err(|e| io_error(path, "cannot resolve LMDB directory", &e))?;
        let read_only = mode == Mode::Read;
        let mut open = OPEN_ENVS.lock();
        if let Some(shared) = open.get(&canonical).and_then(Weak::upgrade) {
            if shared.read_only && !read_only {
                return Err(C2rsError::enforce(format!(
                    "LMDB {path} is already open read-only in this process ({})",
                    shared.path
                )));
            }
            return Ok(Self { mode, shared });
        }
        let shared = Arc::new(Self::open_env(path, &canonical, read_only)?);
        open.retain(|_, w| w.strong_count() > 0);
        open.insert(canonical, Arc::downgrade(&shared));
        Ok(Self { mode, shared })
    }

    fn open_env(path: &str, dir: &Path, read_only: bool) -> Result<Shared> {
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(MAP_SIZE);
        if read_only {
            // SAFETY: READ_ONLY | NO_LOCK is what C++ Caffe2 used for readers; the flags are
            // valid for `mdb_env_open`. Without the lock file, a concurrent writer is not
            // detected (documented limitation, as in Caffe2).
            unsafe { options.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK) };
        }
        // SAFETY: heed's contract for memory-mapped files: the mapping is only read through
        // heed, and the file must not be truncated by another process while mapped, which
        // callers of a DB accept (LMDB's own documented restriction).
        let env = unsafe { options.open(dir) }
            .map_err(|e| lmdb_error(path, "cannot open LMDB environment", e))?;
        let db = if read_only {
            let rtxn = env
                .read_txn()
                .map_err(|e| lmdb_error(path, "cannot begin LMDB read", e))?;
            let opened = env
                .open_databases_and_commit(rtxn, |opener, rtxn| -> heed::Result<_> {
                    Ok(CommitOrAbort::<_, ()>::Commit(
                        opener.open_database::<Bytes, Bytes>(rtxn, None)?,
                    ))
                })
                .map_err(|e| lmdb_error(path, "cannot open LMDB database", e))?;
            match opened {
                CommitOrAbort::Commit(Some(db)) => db,
                _ => {
                    return Err(C2rsError::parse(format!(
                        "LMDB {path} has no unnamed database"
                    )));
                }
            }
        } else {
            let wtxn = env
                .write_txn()
                .map_err(|e| lmdb_error(path, "cannot begin LMDB write", e))?;
            let created = env
                .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                    Ok(CommitOrAbort::<_, ()>::Commit(
                        opener.create_database::<Bytes, Bytes>(wtxn, None)?,
                    ))
                })
                .map_err(|e| lmdb_error(path, "cannot create LMDB database", e))?;
            match created {
                CommitOrAbort::Commit(db) => db,
                CommitOrAbort::Abort(()) => {
                    return Err(C2rsError::internal(format!(
                        "LMDB {path}: database creation aborted"
                    )));
                }
            }
        };
        Ok(Shared {
            path: path.to_string(),
            read_only,
            env,
            db,
        })
    }
}

impl Db for LmDb {
    fn new_cursor(&self) -> Result<Box<dyn Cursor>> {
        let s = &self.shared;
        let txn = s
            .env
            .clone()
            .static_read_txn()
            .map_err(|e| lmdb_error(&s.path, "cannot begin LMDB read", e))?;
        let mut cursor = LmdbCursor {
            shared: s.clone(),
            txn,
            at: Position::default(),
        };
        cursor.seek_to_first()?;
        Ok(Box::new(cursor))
    }

    fn new_transaction(&self) -> Result<Box<dyn Transaction>> {
        if self.mode == Mode::Read {
            return Err(C2rsError::enforce(format!(
                "LMDB {} is open for reading; transactions need WRITE or NEW mode",
                self.shared.path
            )));
        }
        Ok(Box::new(LmdbTransaction {
            shared: self.shared.clone(),
            pending: Vec::new(),
        }))
    }
}

/// A cursor owning its read transaction (a consistent snapshot). Each move is one B-tree
/// lookup relative to the current key; key and value are copied out of the map.
struct LmdbCursor {
    shared: Arc<Shared>,
    txn: RoTxn<'static, WithoutTls>,
    at: Position,
}

/// The record a cursor rests on, copied out of the map.
#[derive(Default)]
struct Position {
    key: Vec<u8>,
    value: Vec<u8>,
    valid: bool,
}

impl Position {
    fn land(&mut self, path: &str, found: heed::Result<Option<(&[u8], &[u8])>>) -> Result<()> {
        let found = found.map_err(|e| lmdb_error(path, "cannot read LMDB", e))?;
        self.valid = found.is_some();
        self.key.clear();
        self.value.clear();
        if let Some((k, v)) = found {
            self.key.extend_from_slice(k);
            self.value.extend_from_slice(v);
        }
        Ok(())
    }
}

impl Cursor for LmdbCursor {
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            // LMDB rejects empty keys in a range lookup; every key is ≥ "".
            return self.seek_to_first();
        }
        let found = self.shared.db.get_greater_than_or_equal_to(&self.txn, key);
        self.at.land(&self.shared.path, found)
    }

    fn supports_seek(&self) -> bool {
        true
    }

    fn seek_to_first(&mut self) -> Result<()> {
        let found = self.shared.db.first(&self.txn);
        self.at.land(&self.shared.path, found)
    }

    fn next(&mut self) -> Result<()> {
        if !self.at.valid {
            return Ok(());
        }
        let current = std::mem::take(&mut self.at.key);
        let path = &self.shared.path;
        let found = self
            .shared
            .db
            .range(
                &self.txn,
                &(Bound::Excluded(current.as_slice()), Bound::Unbounded),
            )
            .map_err(|e| lmdb_error(path, "cannot read LMDB", e))?
            .next()
            .transpose();
        self.at.land(path, found)
    }

    fn key(&self) -> &[u8] {
        &self.at.key
    }

    fn value(&self) -> &[u8] {
        &self.at.value
    }

    fn valid(&self) -> bool {
        self.at.valid
    }

    /// Moves the value out; the key is copied, as `next` looks up the record after it.
    fn take_shared(&mut self) -> (RecordBytes, RecordBytes) {
        (
            RecordBytes::Owned(self.at.key.clone()),
            RecordBytes::Owned(std::mem::take(&mut self.at.value)),
        )
    }
}

/// Collects puts and writes them in one LMDB write transaction on `commit` (and on drop).
/// Until then nothing is visible to readers, exactly as with a live LMDB write transaction.
struct LmdbTransaction {
    shared: Arc<Shared>,
    pending: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Transaction for LmdbTransaction {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY {
            return Err(C2rsError::enforce(format!(
                "LMDB key too long ({} > {MAX_KEY} bytes)",
                key.len()
            )));
        }
        if key.is_empty() {
            return Err(C2rsError::enforce("LMDB keys cannot be empty"));
        }
        self.pending.push((key.to_vec(), value.to_vec()));
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let s = &self.shared;
        let path = &s.path;
        let mut wtxn = s
            .env
            .write_txn()
            .map_err(|e| lmdb_error(path, "cannot begin LMDB write", e))?;
        for (k, v) in &self.pending {
            s.db.put(&mut wtxn, k, v)
                .map_err(|e| lmdb_error(path, "cannot write LMDB", e))?;
        }
        wtxn.commit()
            .map_err(|e| lmdb_error(path, "cannot commit LMDB", e))?;
        self.pending.clear();
        Ok(())
    }
}

impl Drop for LmdbTransaction {
    fn drop(&mut self) {
        // Drop commits, as in Caffe2; a failure here has nobody to report to.
        let _ = self.commit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("c2rs-lmdb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.to_string_lossy().into_owned()
    }

    // Ported from caffe2/core/db_test.cc DBSeekTest (LMDB).
    #[test]
    fn seek_finds_the_first_key_not_less() {
        let path = temp_dir("seek");
        let db = LmDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        for i in 0..10 {
            let k = format!("{i:02}");
            t.put(k.as_bytes(), k.as_bytes()).unwrap();
        }
        t.commit().unwrap();
        drop(t);
        drop(db);
        let db = LmDb::open(&path, Mode::Read).unwrap();
        let mut c = db.new_cursor().unwrap();
        let at = |c: &dyn Cursor| {
            (
                String::from_utf8_lossy(c.key()).into_owned(),
                String::from_utf8_lossy(c.value()).into_owned(),
            )
        };
        c.seek_to_first().unwrap();
        assert_eq!(at(&*c), ("00".into(), "00".into()));
        c.next().unwrap();
        assert_eq!(at(&*c).0, "01");
        c.next().unwrap();
        assert_eq!(at(&*c).0, "02");
        c.seek_to_first().unwrap();
        assert_eq!(at(&*c).0, "00");
        c.seek(b"05").unwrap();
        assert_eq!(at(&*c), ("05".into(), "05".into()));
        c.seek(b"07.5").unwrap();
        assert_eq!(at(&*c).0, "08");
        c.seek(b"11").unwrap();
        assert!(!c.valid());
        c.seek(b"").unwrap();
        assert_eq!(at(&*c).0, "00");
    }

    #[test]
    fn new_refuses_an_existing_directory_and_files_are_not_sources() {
        let path = temp_dir("exists");
        std::fs::create_dir_all(&path).unwrap();
        assert!(LmDb::open(&path, Mode::New).is_err());
        let file = format!("{path}/file");
        std::fs::write(&file, b"x").unwrap();
        let e = LmDb::open(&file, Mode::Read).err().expect("file source");
        assert_eq!(
            e.message(),
            format!("LMDB source must be a directory: {file}")
        );
    }

    #[test]
    fn long_keys_are_refused() {
        let path = temp_dir("long");
        let db = LmDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        let e = t.put(&[b'k'; 512], b"v").unwrap_err();
        assert_eq!(e.message(), "LMDB key too long (512 > 511 bytes)");
        assert!(t.put(&[b'k'; 511], b"v").is_ok());
    }
}
