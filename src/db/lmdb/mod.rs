//! LMDB, file-compatible with the liblmdb C++ Caffe2 used (LMDB 0.9.x, data format version 1).
//! The source is a directory holding `data.mdb` (and `lock.mdb` once written).
//!
//! Reading never goes through liblmdb. A cursor maps `data.mdb` read-only and walks it with
//! this module's own reader (`format`: pages and meta pages; `walk`: the cursor's path), which
//! checks every page before using it: page numbers inside the snapshot and the file, page
//! headers and node offsets inside the page, key and value lengths inside the page or the
//! overflow run, the depth bounded, keys strictly increasing along the cursor. A damaged file
//! is a C2RS_PARSE_ERROR naming the file and the fault, never a crash or a hang; named
//! sub-databases and sorted duplicates (never written by Caffe2) are C2RS_UNSUPPORTED.
//! Writing (WRITE and NEW handles) goes through heed (`writer`); before liblmdb opens an
//! existing file for writing, its meta pages are checked the same way.
//!
//! Snapshots: a cursor reads the snapshot of the newest valid meta page at its creation, for
//! its whole life, as an LMDB read transaction would. Readers use no lock file (as Caffe2's
//! `READ_ONLY | NO_LOCK` readers), so a writer in another process does not know about them
//! and may reuse a snapshot's pages two commits later; such a cursor then reads what is there,
//! checked like any damage (an error or other records, never a crash). While this process has
//! the directory open for writing, a cursor also holds a read transaction of that environment,
//! which keeps the pages of its snapshot from being reused.
//!
//! The one case left: `data.mdb` truncated by another process while it is mapped. The kernel
//! then raises SIGBUS on access to the lost pages, as it does for liblmdb itself. LMDB never
//! shrinks its file and caffe2rs never truncates it.

mod cursor;
mod format;
pub mod fuzzing;
mod walk;
mod writer;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Cursor, Db, Mode, Transaction, io_error};
use crate::error::{C2rsError, Result};
use cursor::{LmdbCursor, Snapshot};
use writer::{LmdbTransaction, WriteEnv};

/// Tries at finding the meta page of a pinned snapshot (see `LmDb::new_cursor`).
const PIN_ATTEMPTS: u32 = 3;

pub(super) struct LmDb {
    /// The source directory, as given.
    dir: String,
    /// `data.mdb` in it, as named in messages.
    file: String,
    /// The directory resolved, which identifies this process's environment on it.
    canonical: PathBuf,
    /// WRITE and NEW: the environment transactions commit through. None in READ mode.
    writer: Option<Arc<WriteEnv>>,
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
        let file = p.join("data.mdb").to_string_lossy().into_owned();
        let writer = match mode {
            Mode::Read => {
                // Looked at now, so a missing or damaged file is an open error.
                Snapshot::open(&file, None)?;
                None
            }
            Mode::Write | Mode::New => Some(writer::open_for_writing(path, &canonical, || {
                // An existing file is checked before liblmdb trusts its meta pages; an empty
                // or missing one is what liblmdb initializes.
                match std::fs::metadata(&file) {
                    Ok(m) if m.len() > 0 => Snapshot::open(&file, None).map(|_| ()),
                    _ => Ok(()),
                }
            })?),
        };
        Ok(Self {
            dir: path.to_string(),
            file,
            canonical,
            writer,
        })
    }
}

impl Db for LmDb {
    fn new_cursor(&self) -> Result<Box<dyn Cursor>> {
        let env = match &self.writer {
            Some(env) => Some(Arc::clone(env)),
            None => writer::open_env(&self.canonical),
        };
        let (snapshot, pin) = match env {
            None => (Snapshot::open(&self.file, None)?, None),
            Some(env) => {
                let (snapshot, pin) = open_pinned(
                    || env.pin(),
                    |pin: &writer::Pin| Snapshot::open(&self.file, Some(pin.txnid)),
                )?;
                (snapshot, Some(pin))
            }
        };
        let mut cursor = LmdbCursor::new(snapshot, pin);
        cursor.seek_to_first()?;
        Ok(Box::new(cursor))
    }

    fn new_transaction(&self) -> Result<Box<dyn Transaction>> {
        match &self.writer {
            Some(env) => Ok(Box::new(LmdbTransaction::new(Arc::clone(env)))),
            None => Err(C2rsError::enforce(format!(
                "LMDB {} is open for reading; transactions need WRITE or NEW mode",
                self.dir
            ))),
        }
    }
}

/// Opens the snapshot of a pinned read transaction: `pin` takes the transaction, `open` finds
/// its meta page in the file. That meta page stays in the file until two more commits; should
/// other threads commit that fast, the pin is dropped and taken again, `PIN_ATTEMPTS` times in
/// all, and the last failure is the result. (`pin` and `open` are parameters so that tests can
/// make the race happen.)
fn open_pinned<P, S>(
    mut pin: impl FnMut() -> Result<P>,
    mut open: impl FnMut(&P) -> Result<S>,
) -> Result<(S, P)> {
    let mut attempt = 1;
    loop {
        let p = pin()?;
        match open(&p) {
            Ok(snapshot) => return Ok((snapshot, p)),
            Err(_) if attempt < PIN_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
