//! minidb, Caffe2's simplest DB: a bare sequence of records, each `int32 key_len`,
//! `int32 value_len` (little-endian), key bytes, value bytes. No header, index or checksum.
//!
//! Differences from C++ Caffe2 (fixes, see spec data-input.md §4 and §8): empty keys or values
//! are refused on `put` (C++ wrote unreadable records); `commit` keeps the transaction usable;
//! a second live cursor or transaction is an error instead of a deadlock; `seek` is an error
//! instead of an abort.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::mapping::{MappedBytes, Mapping};
use super::{Cursor, Db, Mode, RecordBytes, SharedMemory, Transaction, io_error};
use crate::error::{C2rsError, Result};

pub(super) struct MiniDb {
    path: String,
    mode: Mode,
    /// Set while a cursor or transaction is alive. Only one may be (one file position).
    /// Acquire/Release pairs the hand-over between the old and the new user's thread.
    busy: Arc<AtomicBool>,
}

impl MiniDb {
    pub(super) fn open(path: &str, mode: Mode) -> Result<Self> {
        // Open once now so a missing file or a permission problem is an open error, and so NEW
        // empties the DB at open, as C++ fopen("wb") did.
        let result = match mode {
            Mode::Read => File::open(path),
            Mode::Write => OpenOptions::new().append(true).open(path),
            Mode::New => {
                // Replace an existing file instead of truncating it in place: a cursor that
                // still maps the old file keeps reading its records instead of faulting on
                // pages the truncation removed (see `Mapping`). Where the old file cannot be
                // removed, `create` truncates it as before.
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file()) {
                    let _ = std::fs::remove_file(path);
                }
                File::create(path)
            }
        };
        result.map_err(|e| io_error(path, "cannot open minidb file", &e))?;
        Ok(Self {
            path: path.to_string(),
            mode,
            busy: Arc::new(AtomicBool::new(false)),
        })
    }

    fn claim(&self) -> Result<BusyClaim> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(C2rsError::enforce(format!(
                "minidb {} is busy: another cursor or transaction is alive",
                self.path
            )));
        }
        Ok(BusyClaim(self.busy.clone()))
    }
}

/// Releases the DB's busy flag when the cursor or transaction holding it drops.
struct BusyClaim(Arc<AtomicBool>);
impl Drop for BusyClaim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Db for MiniDb {
    fn new_cursor(&self) -> Result<Box<dyn Cursor>> {
        if self.mode != Mode::Read {
            return Err(C2rsError::enforce(format!(
                "minidb {} is open for writing; cursors need READ mode",
                self.path
            )));
        }
        let claim = self.claim()?;
        let file = File::open(&self.path)
            .map_err(|e| io_error(&self.path, "cannot open minidb file", &e))?;
        let map = Mapping::of(&file, &self.path, "minidb")?.map(Arc::new);
        let mut cursor = MiniDbCursor {
            path: self.path.clone(),
            map,
            offset: 0,
            key: 0..0,
            value: 0..0,
            valid: false,
            _claim: claim,
        };
        cursor.next()?;
        Ok(Box::new(cursor))
    }

    fn new_transaction(&self) -> Result<Box<dyn Transaction>> {
        if self.mode == Mode::Read {
            return Err(C2rsError::enforce(format!(
                "minidb {} is open for reading; transactions need WRITE or NEW mode",
                self.path
            )));
        }
        let claim = self.claim()?;
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, "cannot open minidb file", &e))?;
        Ok(Box::new(MiniDbTransaction {
            path: self.path.clone(),
            writer: BufWriter::new(file),
            _claim: claim,
        }))
    }
}

/// The error for a damaged record at `offset` of the minidb file `path`.
fn corrupt(path: &str, offset: usize, what: String) -> C2rsError {
    C2rsError::parse(format!("minidb {path}: {what} (record at byte {offset})"))
}

/// Reads records straight from the mapped file: `key()` and `value()` borrow the mapping and
/// `take_shared` hands out shares of it, so no record byte is copied by the cursor.
struct MiniDbCursor {
    path: String,
    /// None for an empty file.
    map: Option<Arc<Mapping>>,
    /// Offset of the next unread record; at most the mapped length.
    offset: usize,
    /// The current record's key and value, within the mapping (empty when invalid).
    key: Range<usize>,
    value: Range<usize>,
    valid: bool,
    _claim: BusyClaim,
}

impl MiniDbCursor {
    fn corrupt(&self, what: String) -> C2rsError {
        corrupt(&self.path, self.offset, what)
    }

    fn data(&self) -> &[u8] {
        self.map.as_deref().map_or(&[], Mapping::bytes)
    }

    fn shared(&self, range: &Range<usize>) -> RecordBytes {
        match &self.map {
            Some(map) if self.valid => RecordBytes::Mapped(MappedBytes::new(
                SharedMemory(Arc::clone(map)),
                range.clone(),
            )),
            _ => RecordBytes::Owned(Vec::new()),
        }
    }
}

fn le_i32(b: &[u8]) -> i32 {
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// One record of a minidb file, as ranges of the file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RecordAt {
    pub(super) key: Range<usize>,
    pub(super) value: Range<usize>,
}

impl RecordAt {
    /// Offset of the record after this one.
    pub(super) fn end(&self) -> usize {
        self.value.end
    }
}

/// Parses the record at `offset` of the file `data` (the one parser of the format, used by
/// the cursor and by `fuzzing`): `Ok(None)` at a clean end (fewer than 4 bytes left: 1-3
/// stray trailing bytes, which C++ Caffe2 also read as the end), `Err(what is wrong)` for a
/// damaged record. Every length is checked against the bytes behind it; the ranges returned
/// lie inside `data`.
pub(super) fn record_at(
    data: &[u8],
    offset: usize,
) -> std::result::Result<Option<RecordAt>, String> {
    let rest = data.get(offset..).unwrap_or_default();
    if rest.len() < 4 {
        return Ok(None);
    }
    let k = le_i32(rest);
    if k <= 0 {
        return Err(format!("key length {k} is not positive"));
    }
    if rest.len() < 8 {
        let got = rest.len() - 4;
        return Err(format!("truncated value length ({got} of 4 bytes)"));
    }
    let v = le_i32(&rest[4..]);
    if v <= 0 {
        return Err(format!("value length {v} is not positive"));
    }
    let (k, v) = (k as usize, v as usize);
    let remaining = rest.len() - 8;
    // Both are below 2^31, so the sum cannot overflow.
    if k + v > remaining {
        return Err(format!(
            "truncated record: key {k} + value {v} bytes, {remaining} left in the file"
        ));
    }
    let key_at = offset + 8;
    Ok(Some(RecordAt {
        key: key_at..key_at + k,
        value: key_at + k..key_at + k + v,
    }))
}

impl Cursor for MiniDbCursor {
    fn seek(&mut self, _key: &[u8]) -> Result<()> {
        Err(C2rsError::unsupported("minidb does not support seek"))
    }

    fn supports_seek(&self) -> bool {
        false
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.offset = 0;
        self.next()
    }

    fn next(&mut self) -> Result<()> {
        self.valid = false;
        self.key = 0..0;
        self.value = 0..0;
        // Invariant: `offset` ≤ the mapped length (it only advances over checked records).
        match record_at(self.data(), self.offset) {
            Ok(None) => Ok(()),
            Err(what) => Err(self.corrupt(what)),
            Ok(Some(record)) => {
                self.offset = record.end();
                self.key = record.key;
                self.value = record.value;
                self.valid = true;
                Ok(())
            }
        }
    }

    fn key(&self) -> &[u8] {
        &self.data()[self.key.clone()]
    }

    fn value(&self) -> &[u8] {
        &self.data()[self.value.clone()]
    }

    fn valid(&self) -> bool {
        self.valid
    }

    fn take_shared(&mut self) -> (RecordBytes, RecordBytes) {
        (self.shared(&self.key), self.shared(&self.value))
    }

    fn shared_memory(&self) -> Option<SharedMemory> {
        self.map.clone().map(SharedMemory)
    }

    fn span(&self) -> Option<(Range<usize>, Range<usize>)> {
        (self.valid && self.map.is_some()).then(|| (self.key.clone(), self.value.clone()))
    }
}

struct MiniDbTransaction {
    path: String,
    writer: BufWriter<File>,
    _claim: BusyClaim,
}

impl Transaction for MiniDbTransaction {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let (k, v) = (i32::try_from(key.len()), i32::try_from(value.len()));
        let (Ok(k), Ok(v)) = (k, v) else {
            return Err(C2rsError::enforce(format!(
                "minidb {}: key or value longer than 2^31-1 bytes",
                self.path
            )));
        };
        if k == 0 || v == 0 {
            return Err(C2rsError::enforce(format!(
                "minidb {}: empty keys and values cannot be read back and are refused",
                self.path
            )));
        }
        let record = [&k.to_le_bytes()[..], &v.to_le_bytes(), key, value];
        for part in record {
            self.writer
                .write_all(part)
                .map_err(|e| io_error(&self.path, "cannot write minidb file", &e))?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(|e| io_error(&self.path, "cannot flush minidb file", &e))
    }
}

impl Drop for MiniDbTransaction {
    fn drop(&mut self) {
        // Drop commits, as in Caffe2; an error here has no caller to go to (BufWriter's own
        // drop would also ignore it), and `commit` reports it to callers who ask.
        let _ = self.writer.flush();
    }
}

/// The minidb reader over bytes in memory, for fuzz targets (not a stable API).
pub mod fuzzing {
    use super::{corrupt, record_at};
    use crate::error::Result;

    /// Reads `file` as the bytes of a minidb file, record by record with the cursor's parser,
    /// and returns every record's (key, value) in file order. A damaged record gives the
    /// cursor's C2RS_PARSE_ERROR, naming "<memory>" and the record's offset. At most
    /// `file.len() / 8` records (each takes 8 bytes of lengths and 2 of content at least).
    pub fn records(file: &[u8]) -> Result<Vec<(&[u8], &[u8])>> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            match record_at(file, offset) {
                Ok(None) => return Ok(out),
                Err(what) => return Err(corrupt("<memory>", offset, what)),
                Ok(Some(record)) => {
                    offset = record.end();
                    out.push((&file[record.key], &file[record.value]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("c2rs-minidb-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("db").to_string_lossy().into_owned()
    }

    /// A new DB holding `first` = `one` and `second` = `two`, closed; its path.
    fn two_record_db(name: &str) -> String {
        let path = temp_path(name);
        let db = MiniDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        t.put(b"first", b"one").unwrap();
        t.put(b"second", b"two").unwrap();
        drop(t);
        path
    }

    fn read_all(path: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let db = MiniDb::open(path, Mode::Read)?;
        let mut c = db.new_cursor()?;
        let mut out = Vec::new();
        while c.valid() {
            out.push((c.key().to_vec(), c.value().to_vec()));
            c.next()?;
        }
        Ok(out)
    }

    #[test]
    fn writes_the_exact_byte_format() {
        let path = temp_path("format");
        let db = MiniDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        t.put(b"ab", b"xyz").unwrap();
        t.put(b"k", b"\x00").unwrap();
        t.commit().unwrap();
        drop(t);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            bytes,
            b"\x02\x00\x00\x00\x03\x00\x00\x00abxyz\x01\x00\x00\x00\x01\x00\x00\x00k\x00"
        );
    }

    // Ported from caffe2/python/db_test.py: append to an existing empty file in WRITE mode with
    // nine separate transactions; read back in insertion order.
    #[test]
    fn appends_in_separate_transactions_and_reads_in_order() {
        let path = temp_path("append");
        std::fs::write(&path, b"").unwrap();
        let db = MiniDb::open(&path, Mode::Write).unwrap();
        for i in 1..=9 {
            let mut t = db.new_transaction().unwrap();
            t.put(format!("key{i}").as_bytes(), format!("value{i}").as_bytes())
                .unwrap();
            t.commit().unwrap();
        }
        drop(db);
        let records = read_all(&path).unwrap();
        let expected: Vec<_> = (1..=9)
            .map(|i| {
                (
                    format!("key{i}").into_bytes(),
                    format!("value{i}").into_bytes(),
                )
            })
            .collect();
        assert_eq!(records, expected);
    }

    #[test]
    fn put_after_commit_works_and_drop_commits() {
        let path = temp_path("after-commit");
        let db = MiniDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        t.put(b"a", b"1").unwrap();
        t.commit().unwrap();
        t.put(b"b", b"2").unwrap();
        drop(t);
        assert_eq!(read_all(&path).unwrap().len(), 2);
    }

    #[test]
    fn one_to_three_trailing_bytes_end_the_db_four_garbage_bytes_do_not() {
        let path = temp_path("trailing");
        let db = MiniDb::open(&path, Mode::New).unwrap();
        db.new_transaction().unwrap().put(b"a", b"1").unwrap();
        let good = std::fs::read(&path).unwrap();
        for extra in 1..=3 {
            std::fs::write(&path, [&good[..], &vec![7u8; extra]].concat()).unwrap();
            assert_eq!(read_all(&path).unwrap().len(), 1, "{extra} trailing bytes");
        }
        std::fs::write(&path, [&good[..], &[7u8, 0, 0, 0]].concat()).unwrap();
        let e = read_all(&path).unwrap_err();
        assert!(e.message().contains("truncated"), "{}", e.message());
        std::fs::write(&path, [0u8; 20]).unwrap();
        let e = read_all(&path).unwrap_err();
        assert!(
            e.message().contains("key length 0 is not positive"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn a_file_that_cannot_be_mapped_is_read_with_the_same_bytes() {
        let path = temp_path("read-fallback");
        std::fs::write(&path, b"\x01\x00\x00\x00\x02\x00\x00\x00kvv").unwrap();
        let file = File::open(&path).unwrap();
        let read = Mapping::read(&file, &path, "minidb", 11).unwrap();
        let mapped = Mapping::of(&file, &path, "minidb").unwrap().unwrap();
        assert!(matches!(read, Mapping::Read(_)) && matches!(mapped, Mapping::Mapped { .. }));
        assert_eq!(read.bytes(), mapped.bytes());
        // A file shorter than its stat length when read: the bytes that are there.
        assert_eq!(
            Mapping::read(&file, &path, "minidb", 20)
                .unwrap()
                .bytes()
                .len(),
            11
        );
    }

    #[test]
    fn lengths_beyond_the_mapped_file_are_parse_errors() {
        let path = temp_path("lengths");
        let cases: [(&[u8], &str); 4] = [
            // Both lengths and nothing after them.
            (
                b"\x01\x00\x00\x00\x01\x00\x00\x00",
                "truncated record: key 1 + value 1 bytes, 0 left in the file (record at byte 0)",
            ),
            (
                b"\x01\x00\x00\x00\xff\xff\xff\x7fk",
                "truncated record: key 1 + value 2147483647 bytes, 1 left in the file (record at byte 0)",
            ),
            (
                b"\x01\x00\x00\x00\x00\x00\x00\x80kv",
                "value length -2147483648 is not positive (record at byte 0)",
            ),
            (
                b"\x01\x00\x00\x00\x01\x00",
                "truncated value length (2 of 4 bytes) (record at byte 0)",
            ),
        ];
        for (bytes, message) in cases {
            std::fs::write(&path, bytes).unwrap();
            let e = read_all(&path).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Parse);
            assert!(e.message().ends_with(message), "{}", e.message());
        }
    }

    #[test]
    fn a_record_cut_mid_write_keeps_the_complete_records_then_errors() {
        let path = two_record_db("cut");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let db = MiniDb::open(&path, Mode::Read).unwrap();
        let mut c = db.new_cursor().unwrap();
        assert_eq!(c.key(), b"first");
        let e = c.next().unwrap_err();
        assert!(
            e.message().contains(&path) && e.message().contains("truncated record"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn take_record_hands_over_the_record_and_the_cursor_reads_on() {
        let path = temp_path("take");
        let db = MiniDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        t.put(b"k1", &[1u8; 20000]).unwrap();
        t.put(b"k2", b"short").unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        t.put(b"k3", &big).unwrap();
        drop(t);
        let db = MiniDb::open(&path, Mode::Read).unwrap();
        let mut c = db.new_cursor().unwrap();
        assert_eq!(c.take_record().unwrap(), (b"k1".to_vec(), vec![1u8; 20000]));
        assert!(c.valid());
        c.next().unwrap();
        assert_eq!((c.key(), c.value()), (&b"k2"[..], &b"short"[..]));
        assert_eq!(
            c.take_record().unwrap(),
            (b"k2".to_vec(), b"short".to_vec())
        );
        c.next().unwrap();
        assert_eq!(c.take_record().unwrap(), (b"k3".to_vec(), big));
        c.next().unwrap();
        assert!(!c.valid());
        c.seek_to_first().unwrap();
        assert_eq!(c.take_record().unwrap(), (b"k1".to_vec(), vec![1u8; 20000]));
    }

    #[test]
    fn empty_keys_or_values_are_refused() {
        let path = temp_path("empty");
        let db = MiniDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        assert!(t.put(b"", b"v").is_err());
        assert!(t.put(b"k", b"").is_err());
    }

    #[test]
    fn a_second_live_cursor_is_busy_and_seek_is_unsupported() {
        let path = temp_path("busy");
        std::fs::write(&path, b"").unwrap();
        let db = MiniDb::open(&path, Mode::Read).unwrap();
        let mut c = db.new_cursor().unwrap();
        assert!(!c.valid(), "an empty file is an empty DB");
        let e = db.new_cursor().err().expect("busy");
        assert!(e.message().contains("is busy"), "{}", e.message());
        assert_eq!(
            c.seek(b"x").unwrap_err().message(),
            "minidb does not support seek"
        );
        drop(c);
        assert!(db.new_cursor().is_ok());
    }

    #[test]
    fn the_in_memory_reader_gives_the_cursors_records_and_errors() {
        let path = two_record_db("in-memory");
        let bytes = std::fs::read(&path).unwrap();
        let from_cursor = read_all(&path).unwrap();
        let in_memory: Vec<(Vec<u8>, Vec<u8>)> = fuzzing::records(&bytes)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(in_memory, from_cursor);
        let e = fuzzing::records(&bytes[..bytes.len() - 2]).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Parse);
        assert_eq!(
            e.message(),
            "minidb <memory>: truncated record: key 6 + value 3 bytes, 7 left in the file (record at byte 16)"
        );
    }

    /// `commit` writes the records through to the file while the transaction stays open, so
    /// another handle reading the DB sees them without waiting for the transaction's end.
    #[test]
    fn committed_records_are_visible_to_a_reader_while_the_transaction_stays_open() {
        let path = temp_path("commit-visible");
        let db = MiniDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        t.put(b"k1", b"v1").unwrap();
        t.commit().unwrap();
        assert_eq!(
            read_all(&path).unwrap(),
            vec![(b"k1".to_vec(), b"v1".to_vec())]
        );
        t.put(b"k2", b"v2").unwrap();
        t.commit().unwrap();
        assert_eq!(read_all(&path).unwrap().len(), 2);
        drop(t);
    }

    /// The mapped lines of this process that name `path`.
    #[cfg(target_os = "linux")]
    fn mappings_of(path: &str) -> usize {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines().filter(|l| l.ends_with(path)).count()
    }

    /// A cursor maps the file and the mapping goes away with the cursor and the last record
    /// it handed out: reading many DBs one after the other does not pile up mappings.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_file_is_unmapped_when_the_cursor_and_its_records_are_dropped() {
        let path = temp_path("unmap");
        let db = MiniDb::open(&path, Mode::New).unwrap();
        db.new_transaction().unwrap().put(b"key", b"value").unwrap();
        let db = MiniDb::open(&path, Mode::Read).unwrap();
        assert_eq!(mappings_of(&path), 0);
        let mut c = db.new_cursor().unwrap();
        assert_eq!(mappings_of(&path), 1, "the cursor maps the file");
        let (_key, value) = c.take_shared();
        drop(c);
        assert_eq!(value.as_ref(), b"value", "a record keeps the mapping alive");
        assert_eq!(mappings_of(&path), 1);
        drop(value);
        drop(_key);
        assert_eq!(mappings_of(&path), 0, "unmapped with the last user");
        for _ in 0..3 {
            let c = db.new_cursor().unwrap();
            assert_eq!(c.value(), b"value");
        }
        assert_eq!(mappings_of(&path), 0);
        // Past the end the cursor hands out empty records that hold no mapping.
        let mut c = db.new_cursor().unwrap();
        c.next().unwrap();
        assert!(!c.valid());
        let (key, value) = c.take_shared();
        drop(c);
        assert!(key.as_ref().is_empty() && value.as_ref().is_empty());
        assert_eq!(
            mappings_of(&path),
            0,
            "an invalid cursor's records map nothing"
        );
    }
}
