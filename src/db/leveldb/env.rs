//! The file layer `rusty-leveldb` runs on: its own disk env, with every table, log and
//! MANIFEST checked (`format`) the first time the crate opens it, and every failure the crate
//! would swallow (its iterators skip unreadable blocks and tables) kept in a `Latch` that the
//! owner thread reports after each request.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};
use rusty_leveldb::{PosixDiskEnv, Status, StatusCode};

use super::format::{self, CheckError, LogContent};
use crate::error::C2rsError;

/// CURRENT names the MANIFEST in one short line.
const MAX_CURRENT_LEN: u64 = 4096;

/// The first error the crate hit or would have skipped since the owner last looked. Owned by
/// the owner thread (the env lives inside the crate's `Options`, which are `!Send`).
#[derive(Clone, Default)]
pub(super) struct Latch(Rc<RefCell<Option<C2rsError>>>);

impl Latch {
    /// Keeps `e` unless an earlier error is waiting (the first cause is the useful one).
    fn set(&self, e: C2rsError) {
        self.0.borrow_mut().get_or_insert(e);
    }

    pub(super) fn take(&self) -> Option<C2rsError> {
        self.0.borrow_mut().take()
    }
}

/// A LevelDB file by its name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Table,
    Log,
    Manifest,
    Current,
    Other,
}

fn kind_of(p: &Path) -> Kind {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let numbered = |suffix: &str| {
        name.strip_suffix(suffix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if numbered(".ldb") || numbered(".sst") {
        Kind::Table
    } else if numbered(".log") {
        Kind::Log
    } else if name
        .strip_prefix("MANIFEST-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        Kind::Manifest
    } else if name == "CURRENT" {
        Kind::Current
    } else {
        Kind::Other
    }
}

pub(super) struct CheckedEnv {
    disk: PosixDiskEnv,
    latch: Latch,
    /// Reading only: the directory must not be created.
    read_only: bool,
    /// Tables that passed their check or that this env wrote: not checked again.
    trusted: RefCell<HashSet<PathBuf>>,
}

impl CheckedEnv {
    pub(super) fn new(latch: Latch, read_only: bool) -> Self {
        Self {
            disk: PosixDiskEnv::new(),
            latch,
            read_only,
            trusted: RefCell::new(HashSet::new()),
        }
    }

    /// Latches the failure of `p`'s check and returns it as the crate's status.
    fn refuse(&self, p: &Path, e: CheckError) -> Status {
        let (error, code) = match e {
            CheckError::Io(io) => (
                C2rsError::io(format!("cannot read {}: {io}", p.display())),
                StatusCode::IOError,
            ),
            CheckError::Corrupt(why) => (
                C2rsError::parse(format!("damaged file {}: {why}", p.display())),
                StatusCode::Corruption,
            ),
        };
        let status = Status::new(code, error.message());
        self.latch.set(error);
        status
    }

    fn open_file(&self, p: &Path) -> Result<File, Status> {
        File::open(p).map_err(|e| {
            let message = format!("cannot open {}: {e}", p.display());
            if e.kind() == std::io::ErrorKind::NotFound {
                // The crate probes for files (CURRENT of a new database): not a failure.
                return Status::new(StatusCode::NotFound, &message);
            }
            self.latch.set(C2rsError::io(message.clone()));
            Status::new(StatusCode::IOError, &message)
        })
    }

    fn check_table(&self, p: &Path) -> Result<(), Status> {
        if self.trusted.borrow().contains(p) {
            return Ok(());
        }
        let file = self.open_file(p)?;
        let len = file
            .metadata()
            .map_err(|e| self.refuse(p, CheckError::Io(e)))?
            .len();
        format::check_table(&file, len).map_err(|e| self.refuse(p, e))?;
        self.trusted.borrow_mut().insert(p.to_path_buf());
        Ok(())
    }

    /// Where table `p` is: `NNNNNN.ldb`, or `NNNNNN.sst` as LevelDB before 1.14 named it (the
    /// crate only knows the first). A live table that is missing is latched: the crate would
    /// skip it and its records.
    fn table_path(&self, p: &Path) -> Result<PathBuf, Status> {
        if p.exists() {
            return Ok(p.to_path_buf());
        }
        let old = p.with_extension("sst");
        if old.exists() {
            return Ok(old);
        }
        let error = C2rsError::parse(format!("table file {} is missing", p.display()));
        let status = Status::new(StatusCode::Corruption, error.message());
        self.latch.set(error);
        Err(status)
    }

    fn check_log(&self, p: &Path, content: LogContent) -> Result<(), Status> {
        let file = self.open_file(p)?;
        format::check_log(BufReader::new(file), content).map_err(|e| self.refuse(p, e))
    }

    /// CURRENT must name a MANIFEST in one line (the crate slices what it reads).
    fn read_current(&self, p: &Path) -> Result<Vec<u8>, Status> {
        let file = self.open_file(p)?;
        let mut bytes = Vec::new();
        file.take(MAX_CURRENT_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.refuse(p, CheckError::Io(e)))?;
        let line = bytes.strip_suffix(b"\n").unwrap_or(b"");
        let names_manifest = line
            .strip_prefix(b"MANIFEST-")
            .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit));
        if !names_manifest {
            return Err(self.refuse(
                p,
                CheckError::Corrupt("CURRENT does not name a MANIFEST-<number> file".into()),
            ));
        }
        Ok(bytes)
    }
}

/// A checked table: reads that fail or come up short (the file changed after its check) are
/// latched, since the crate would skip the block.
struct LatchedFile {
    file: File,
    path: PathBuf,
    latch: Latch,
}

impl RandomAccess for LatchedFile {
    fn read_at(&self, off: usize, dst: &mut [u8]) -> rusty_leveldb::Result<usize> {
        match std::os::unix::fs::FileExt::read_at(&self.file, dst, off as u64) {
            Ok(n) if n == dst.len() => Ok(n),
            Ok(n) => {
                self.latch.set(C2rsError::io(format!(
                    "short read of {} ({n} of {} bytes at {off}): the file changed while open",
                    self.path.display(),
                    dst.len()
                )));
                Ok(n)
            }
            Err(e) => {
                let message = format!("cannot read {}: {e}", self.path.display());
                self.latch.set(C2rsError::io(message.clone()));
                Err(Status::new(StatusCode::IOError, &message))
            }
        }
    }
}

impl Env for CheckedEnv {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Read>> {
        match kind_of(p) {
            Kind::Log => self.check_log(p, LogContent::WriteBatches)?,
            Kind::Manifest => self.check_log(p, LogContent::VersionEdits)?,
            Kind::Current => return Ok(Box::new(std::io::Cursor::new(self.read_current(p)?))),
            Kind::Table | Kind::Other => {}
        }
        Ok(Box::new(self.open_file(p)?))
    }

    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        let path = if kind_of(p) == Kind::Table {
            let path = self.table_path(p)?;
            self.check_table(&path)?;
            path
        } else {
            p.to_path_buf()
        };
        Ok(Box::new(LatchedFile {
            file: self.open_file(&path)?,
            path,
            latch: self.latch.clone(),
        }))
    }

    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        let file = self.disk.open_writable_file(p)?;
        if kind_of(p) == Kind::Table {
            self.trusted.borrow_mut().insert(p.to_path_buf());
        }
        Ok(file)
    }

    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.disk.open_appendable_file(p)
    }

    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        self.disk.exists(p)
    }

    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        self.disk.children(p)
    }

    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        if kind_of(p) == Kind::Table {
            return self.disk.size_of(&self.table_path(p)?);
        }
        self.disk.size_of(p)
    }

    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.trusted.borrow_mut().remove(p);
        self.disk.delete(p)
    }

    fn mkdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        if self.read_only {
            // Opened for reading: the directory was checked to exist; never create one.
            return Ok(());
        }
        self.disk.mkdir(p)
    }

    fn rmdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.disk.rmdir(p)
    }

    fn rename(&self, old: &Path, new: &Path) -> rusty_leveldb::Result<()> {
        let was_trusted = self.trusted.borrow_mut().remove(old);
        if was_trusted {
            self.trusted.borrow_mut().insert(new.to_path_buf());
        }
        self.disk.rename(old, new)
    }

    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        self.disk.lock(p)
    }

    fn unlock(&self, l: FileLock) -> rusty_leveldb::Result<()> {
        self.disk.unlock(l)
    }

    fn new_logger(&self, p: &Path) -> rusty_leveldb::Result<Logger> {
        self.disk.new_logger(p)
    }

    fn micros(&self) -> u64 {
        self.disk.micros()
    }

    fn sleep_for(&self, micros: u32) {
        self.disk.sleep_for(micros)
    }
}
