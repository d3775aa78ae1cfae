//! The LMDB cursor: one snapshot of `data.mdb`, mapped, walked with the checked reader.

use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use super::super::mapping::{MappedBytes, Mapping};
use super::super::{Cursor, RecordBytes, SharedMemory, io_error};
use super::format::{self, Fault, Meta, Tree};
use super::walk::Walk;
use super::writer::Pin;
use crate::error::{C2rsError, Result};

/// `data.mdb` mapped, with the meta page of the snapshot read from it.
pub(super) struct Snapshot {
    /// The file, as named in messages.
    file: String,
    map: Arc<Mapping>,
    /// Chosen and checked against `map` by `format::pick_meta`.
    meta: Meta,
}

/// The status for a fault of the reader in `file`.
pub(super) fn fault_error(file: &str, fault: Fault) -> C2rsError {
    match fault {
        Fault::Damaged(m) => C2rsError::parse(format!("LMDB {file}: {m}")),
        Fault::Unsupported(m) => C2rsError::unsupported(format!("LMDB {file}: {m}")),
    }
}

impl Snapshot {
    /// Maps `file` and picks its snapshot: the newest valid one, or transaction `txnid`.
    pub(super) fn open(file: &str, txnid: Option<u64>) -> Result<Self> {
        let f = File::open(file).map_err(|e| io_error(file, "cannot open LMDB file", &e))?;
        let Some(map) = Mapping::of(&f, file, "LMDB")? else {
            return Err(C2rsError::parse(format!("LMDB {file}: the file is empty")));
        };
        let meta = format::pick_meta(map.bytes(), txnid).map_err(|f| fault_error(file, f))?;
        Ok(Self {
            file: file.to_string(),
            map: Arc::new(map),
            meta,
        })
    }

    fn tree(&self) -> Tree<'_> {
        Tree::new(self.map.bytes(), self.meta)
    }

    fn get(&self, range: Option<Range<usize>>) -> &[u8] {
        range
            .and_then(|r| self.map.bytes().get(r))
            .unwrap_or_default()
    }
}

/// A cursor over one snapshot. Keys and values stay in the mapping: `key()` and `value()`
/// borrow it and `take_shared` hands out shares of it, so moving copies nothing. After a failed
/// move the cursor is invalid.
pub(super) struct LmdbCursor {
    snapshot: Snapshot,
    walk: Walk,
    /// While this process has the DB open for writing: keeps the snapshot's pages unchanged.
    _pin: Option<Pin>,
}

impl LmdbCursor {
    pub(super) fn new(snapshot: Snapshot, pin: Option<Pin>) -> Self {
        Self {
            snapshot,
            walk: Walk::default(),
            _pin: pin,
        }
    }

    fn moved(&self, result: format::Checked<()>) -> Result<()> {
        result.map_err(|f| fault_error(&self.snapshot.file, f))
    }

    fn shared(&self, range: Option<Range<usize>>) -> RecordBytes {
        match range {
            Some(range) => RecordBytes::Mapped(MappedBytes::new(
                SharedMemory(Arc::clone(&self.snapshot.map)),
                range,
            )),
            None => RecordBytes::Owned(Vec::new()),
        }
    }
}

impl Cursor for LmdbCursor {
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        let result = self.walk.seek(&self.snapshot.tree(), key);
        self.moved(result)
    }

    fn supports_seek(&self) -> bool {
        true
    }

    fn seek_to_first(&mut self) -> Result<()> {
        let result = self.walk.first(&self.snapshot.tree());
        self.moved(result)
    }

    fn next(&mut self) -> Result<()> {
        let result = self.walk.next(&self.snapshot.tree());
        self.moved(result)
    }

    fn key(&self) -> &[u8] {
        self.snapshot.get(self.walk.entry().map(|e| e.key.clone()))
    }

    fn value(&self) -> &[u8] {
        self.snapshot
            .get(self.walk.entry().map(|e| e.value.clone()))
    }

    fn valid(&self) -> bool {
        self.walk.entry().is_some()
    }

    fn take_shared(&mut self) -> (RecordBytes, RecordBytes) {
        let entry = self.walk.entry();
        (
            self.shared(entry.map(|e| e.key.clone())),
            self.shared(entry.map(|e| e.value.clone())),
        )
    }

    fn shared_memory(&self) -> Option<SharedMemory> {
        Some(SharedMemory(Arc::clone(&self.snapshot.map)))
    }

    fn span(&self) -> Option<(Range<usize>, Range<usize>)> {
        self.walk.entry().map(|e| (e.key.clone(), e.value.clone()))
    }
}
