//! Writing LMDB through heed (liblmdb): one environment per directory and process, shared by
//! every WRITE/NEW handle on it, and read transactions of it that pin a cursor's snapshot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, WithoutTls};
use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::super::{Transaction, io_error};
use crate::error::{C2rsError, Result};

/// Caffe2's default map size: 1 TiB of address space (not disk).
const MAP_SIZE: usize = 1 << 40;
/// LMDB's compiled-in maximum key size.
const MAX_KEY: usize = 511;

/// One open environment and its unnamed database, shared by every writing `LmDb`, its
/// transactions, and the cursors pinning a snapshot of it: heed (like LMDB) allows one
/// environment per path and process.
pub(super) struct WriteEnv {
    path: String,
    env: Env<WithoutTls>,
    db: Database<'static, Bytes, Bytes>,
}

/// Open environments by canonical directory. Guarded by the mutex; entries are weak so an
/// environment closes when its last user drops. Lock order: this mutex before heed's own.
static OPEN_ENVS: Lazy<Mutex<HashMap<PathBuf, Weak<WriteEnv>>>> =
    Lazy::new(|| Mutex::new(HashMap::new()));

fn lmdb_error(path: &str, what: &str, e: heed::Error) -> C2rsError {
    match e {
        heed::Error::Io(io) => io_error(path, what, &io),
        other => C2rsError::io(format!("{what} {path}: {other}")),
    }
}

/// The environment this process has open on `dir` (canonical), if any.
pub(super) fn open_env(dir: &Path) -> Option<Arc<WriteEnv>> {
    OPEN_ENVS.lock().get(dir).and_then(Weak::upgrade)
}

/// The environment on `dir` (canonical), opened for writing unless this process has it open.
/// `check` runs first when it is not open yet (the caller's look at the file before liblmdb
/// trusts it).
pub(super) fn open_for_writing(
    path: &str,
    dir: &Path,
    check: impl FnOnce() -> Result<()>,
) -> Result<Arc<WriteEnv>> {
    let mut open = OPEN_ENVS.lock();
    if let Some(env) = open.get(dir).and_then(Weak::upgrade) {
        return Ok(env);
    }
    check()?;
    let env = Arc::new(WriteEnv::open(path, dir)?);
    open.retain(|_, w| w.strong_count() > 0);
    open.insert(dir.to_path_buf(), Arc::downgrade(&env));
    Ok(env)
}

impl WriteEnv {
    fn open(path: &str, dir: &Path) -> Result<Self> {
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(MAP_SIZE);
        // SAFETY: heed's contract for memory-mapped files: the mapping is only read through
        // heed, and the file must not be truncated by another process while mapped, which
        // callers of a DB accept (LMDB's own documented restriction).
        let env = unsafe { options.open(dir) }
            .map_err(|e| lmdb_error(path, "cannot open LMDB environment", e))?;
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
        let db = match created {
            CommitOrAbort::Commit(db) => db,
            CommitOrAbort::Abort(()) => {
                return Err(C2rsError::internal(format!(
                    "LMDB {path}: database creation aborted"
                )));
            }
        };
        Ok(Self {
            path: path.to_string(),
            env,
            db,
        })
    }

    /// A read transaction on the newest committed snapshot, which keeps liblmdb from reusing
    /// that snapshot's pages while a cursor of this process reads them from its own mapping.
    pub(super) fn pin(self: &Arc<Self>) -> Result<Pin> {
        let txn = self
            .env
            .clone()
            .static_read_txn()
            .map_err(|e| lmdb_error(&self.path, "cannot begin LMDB read", e))?;
        Ok(Pin {
            txnid: txn.id() as u64,
            _txn: txn,
            _env: Arc::clone(self),
        })
    }
}

/// A live read transaction of this process's environment: while it lives, writers here and
/// elsewhere (through the lock file) leave the pages of snapshot `txnid` alone.
pub(super) struct Pin {
    pub(super) txnid: u64,
    _txn: RoTxn<'static, WithoutTls>,
    /// Keeps the environment registered, so a new WRITE handle shares it instead of opening a
    /// second one on the same path.
    _env: Arc<WriteEnv>,
}

/// Collects puts and writes them in one LMDB write transaction on `commit` (and on drop).
/// Until then nothing is visible to readers, exactly as with a live LMDB write transaction.
pub(super) struct LmdbTransaction {
    env: Arc<WriteEnv>,
    pending: Vec<(Vec<u8>, Vec<u8>)>,
}

impl LmdbTransaction {
    pub(super) fn new(env: Arc<WriteEnv>) -> Self {
        Self {
            env,
            pending: Vec::new(),
        }
    }
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
        let s = &self.env;
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
