//! minidb, Caffe2's simplest DB: a bare sequence of records, each `int32 key_len`,
//! `int32 value_len` (little-endian), key bytes, value bytes. No header, index or checksum.
//!
//! Differences from C++ Caffe2 (fixes, see spec data-input.md §4 and §8): empty keys or values
//! are refused on `put` (C++ wrote unreadable records); `commit` keeps the transaction usable;
//! a second live cursor or transaction is an error instead of a deadlock; `seek` is an error
//! instead of an abort.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Cursor, Db, DeferredValue, Mode, RecordValue, Transaction, io_error};
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
        // truncates at open, as C++ fopen("wb") did.
        let result = match mode {
            Mode::Read => File::open(path),
            Mode::Write => OpenOptions::new().append(true).open(path),
            Mode::New => File::create(path),
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
        let len = file
            .metadata()
            .map_err(|e| io_error(&self.path, "cannot stat minidb file", &e))?
            .len();
        let pread_file = Arc::new(
            file.try_clone()
                .map_err(|e| io_error(&self.path, "cannot open minidb file", &e))?,
        );
        let mut cursor = MiniDbCursor {
            path: self.path.clone(),
            pread_file,
            defer: false,
            pending: None,
            last_deferred: false,
            reader: BufReader::with_capacity(READ_BUFFER, file),
            len,
            offset: 0,
            key: Vec::new(),
            value: Vec::new(),
            spare: Vec::new(),
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

/// Bytes the cursor reads ahead: many small records per read(2).
const READ_BUFFER: usize = 64 * 1024;
/// Recycled value buffers a cursor keeps at most (a few batches' worth of records).
const SPARE_BUFFERS: usize = 128;

struct MiniDbCursor {
    path: String,
    /// The same file for positioned reads of deferred values (no shared file position).
    pread_file: Arc<File>,
    /// `set_defer_values`: moves skip values of `READ_BUFFER` bytes or more, leaving `pending`
    /// for `take_deferred` (smaller ones are cheaper to copy out of the read-ahead buffer than
    /// to fetch with one pread(2) each).
    defer: bool,
    /// Offset and length of the current record's value when it was skipped.
    pending: Option<(u64, usize)>,
    /// The last move skipped a large value: the next one reads its header with pread(2).
    last_deferred: bool,
    reader: BufReader<File>,
    /// File length when the cursor was made: lengths beyond it are corruption, not allocations.
    len: u64,
    /// Offset of the next unread record.
    offset: u64,
    key: Vec<u8>,
    value: Vec<u8>,
    /// Value buffers given back with `recycle`, used when `value` was taken.
    spare: Vec<Vec<u8>>,
    valid: bool,
    _claim: BusyClaim,
}

impl MiniDbCursor {
    fn corrupt(&self, what: String) -> C2rsError {
        C2rsError::parse(format!(
            "minidb {}: {what} (record at byte {})",
            self.path, self.offset
        ))
    }

    /// Reads up to `buf.len()` bytes; returns how many were read (short only at end of file).
    fn read_fully(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&self.path, "cannot read minidb file", &e)),
            }
        }
        Ok(filled)
    }

    /// Appends up to `n` bytes to `buf` without zero-filling it first; returns how many were
    /// read (short only at end of file). What the buffered reader holds is copied; a remainder
    /// smaller than its buffer refills the buffer (small records: one read(2) per
    /// `READ_BUFFER` bytes), a larger one is read straight from the file into `buf`'s spare
    /// capacity (large records: one read(2), one copy).
    fn read_exact_into(&mut self, buf: &mut Vec<u8>, n: u64) -> Result<u64> {
        // `n` is at most the file length left (checked by the caller), so this reservation is
        // bounded by the file, not by a corrupt length field.
        let n = n as usize;
        buf.reserve_exact(n);
        let start = buf.len();
        let read_error = |e: &std::io::Error| io_error(&self.path, "cannot read minidb file", e);
        loop {
            let remaining = n - (buf.len() - start);
            if remaining == 0 {
                break;
            }
            if !self.reader.buffer().is_empty() || remaining < self.reader.capacity() {
                let buffered = match self.reader.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(read_error(&e)),
                };
                if buffered.is_empty() {
                    break;
                }
                let m = buffered.len().min(remaining);
                buf.extend_from_slice(&buffered[..m]);
                self.reader.consume(m);
                continue;
            }
            // The buffer is empty, so the file position is where the record continues.
            let fd = self.reader.get_ref().as_raw_fd();
            let spare = buf.spare_capacity_mut();
            let want = remaining.min(spare.len());
            // SAFETY: `spare` is `want` or more bytes of writable memory owned by `buf`; read(2)
            // writes at most `want` bytes into it and does not read it.
            let got = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), want) };
            if got < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(read_error(&e));
            }
            if got == 0 {
                break;
            }
            let len = buf.len() + got as usize;
            // SAFETY: read(2) initialised the `got` (≤ `want` ≤ spare capacity) bytes after
            // the old length.
            unsafe { buf.set_len(len) };
        }
        Ok((buf.len() - start) as u64)
    }

    fn read_length(&mut self, field: &str) -> Result<u64> {
        let mut b = [0u8; 4];
        let n = self.read_fully(&mut b)?;
        if n < 4 {
            return Err(self.corrupt(format!("truncated {field} length ({n} of 4 bytes)")));
        }
        let v = i32::from_le_bytes(b);
        if v <= 0 {
            return Err(self.corrupt(format!("{field} length {v} is not positive")));
        }
        Ok(v as u64)
    }
}

impl Cursor for MiniDbCursor {
    fn seek(&mut self, _key: &[u8]) -> Result<()> {
        Err(C2rsError::unsupported("minidb does not support seek"))
    }

    fn supports_seek(&self) -> bool {
        false
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| io_error(&self.path, "cannot rewind minidb file", &e))?;
        self.offset = 0;
        self.next()
    }

    fn next(&mut self) -> Result<()> {
        self.valid = false;
        self.pending = None;
        self.key.clear();
        self.value.clear();
        if self.defer && self.last_deferred && self.reader.buffer().is_empty() {
            // After a large skipped value, filling the read-ahead buffer would mostly read
            // bytes of the next large value only to discard them: read the header and key with
            // pread(2) instead.
            return self.next_positioned();
        }
        self.last_deferred = false;
        let mut first = [0u8; 4];
        let n = self.read_fully(&mut first)?;
        if n < 4 {
            // A clean end, or 1–3 stray trailing bytes, which C++ Caffe2 also read as the end.
            return Ok(());
        }
        let k = i32::from_le_bytes(first);
        if k <= 0 {
            return Err(self.corrupt(format!("key length {k} is not positive")));
        }
        let v = self.read_length("value")?;
        let k = k as u64;
        let remaining = self.len.saturating_sub(self.offset + 8);
        if k + v > remaining {
            return Err(self.corrupt(format!(
                "truncated record: key {k} + value {v} bytes, {remaining} left in the file"
            )));
        }
        if self.defer && v >= READ_BUFFER as u64 {
            let mut key = std::mem::take(&mut self.key);
            if self.read_exact_into(&mut key, k)? != k {
                return Err(self.corrupt("truncated record".to_string()));
            }
            self.key = key;
            self.reader
                .seek_relative(v as i64)
                .map_err(|e| io_error(&self.path, "cannot seek in minidb file", &e))?;
            self.pending = Some((self.offset + 8 + k, v as usize));
            self.offset += 8 + k + v;
            self.valid = true;
            self.last_deferred = true;
            return Ok(());
        }
        // Read into spare capacity: no zero-filling of buffers about to be overwritten. The
        // buffers may have been handed out by `take_record`; then these are fresh ones.
        let mut key = std::mem::take(&mut self.key);
        let mut value = std::mem::take(&mut self.value);
        if value.capacity() < v as usize {
            if let Some(spare) = self.spare.pop() {
                value = spare;
                value.clear();
            }
        }
        let got = self.read_exact_into(&mut key, k)? + self.read_exact_into(&mut value, v)?;
        if got != k + v {
            return Err(self.corrupt("truncated record".to_string()));
        }
        self.key = key;
        self.value = value;
        self.offset += 8 + k + v;
        self.valid = true;
        Ok(())
    }

    fn key(&self) -> &[u8] {
        &self.key
    }

    fn value(&self) -> &[u8] {
        &self.value
    }

    fn valid(&self) -> bool {
        self.valid
    }

    fn set_defer_values(&mut self, on: bool) -> Result<()> {
        self.defer = on;
        if let (false, Some((offset, len))) = (on, self.pending.take()) {
            let buffer = self.spare.pop().unwrap_or_default();
            self.value = Box::new(self.deferred(offset, len, buffer)).read()?;
        }
        Ok(())
    }

    fn take_deferred(&mut self) -> (Vec<u8>, RecordValue) {
        let key = std::mem::take(&mut self.key);
        match self.pending.take() {
            Some((offset, len)) => {
                let buffer = self.spare.pop().unwrap_or_default();
                let value = self.deferred(offset, len, buffer);
                (key, RecordValue::Deferred(Box::new(value)))
            }
            None => (key, RecordValue::Ready(std::mem::take(&mut self.value))),
        }
    }

    fn recycle(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && buffer.capacity() > 0 {
            self.spare.push(buffer);
        }
    }
}

impl MiniDbCursor {
    /// `next` with positioned reads (same checks and messages as the buffered path); leaves
    /// the buffered reader at the following record.
    fn next_positioned(&mut self) -> Result<()> {
        let mut head = Vec::with_capacity(8);
        let n = pread_into(&self.pread_file, &self.path, &mut head, self.offset, 8)?;
        if n < 4 {
            self.last_deferred = false;
            return Ok(());
        }
        let k = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if k <= 0 {
            return Err(self.corrupt(format!("key length {k} is not positive")));
        }
        if n < 8 {
            let got = n - 4;
            return Err(self.corrupt(format!("truncated value length ({got} of 4 bytes)")));
        }
        let v = i32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if v <= 0 {
            return Err(self.corrupt(format!("value length {v} is not positive")));
        }
        let (k, v) = (k as u64, v as u64);
        let remaining = self.len.saturating_sub(self.offset + 8);
        if k + v > remaining {
            return Err(self.corrupt(format!(
                "truncated record: key {k} + value {v} bytes, {remaining} left in the file"
            )));
        }
        let mut key = std::mem::take(&mut self.key);
        let key_at = self.offset + 8;
        if pread_into(&self.pread_file, &self.path, &mut key, key_at, k as usize)? < k as usize {
            return Err(self.corrupt("truncated record".to_string()));
        }
        self.key = key;
        let value_at = key_at + k;
        if v >= READ_BUFFER as u64 {
            self.pending = Some((value_at, v as usize));
            self.last_deferred = true;
        } else {
            let mut value = std::mem::take(&mut self.value);
            if value.capacity() < v as usize {
                if let Some(spare) = self.spare.pop() {
                    value = spare;
                    value.clear();
                }
            }
            let got = pread_into(
                &self.pread_file,
                &self.path,
                &mut value,
                value_at,
                v as usize,
            )?;
            if got < v as usize {
                return Err(self.corrupt("truncated record".to_string()));
            }
            self.value = value;
            self.last_deferred = false;
        }
        self.offset = value_at + v;
        self.reader
            .seek(SeekFrom::Start(self.offset))
            .map_err(|e| io_error(&self.path, "cannot seek in minidb file", &e))?;
        self.valid = true;
        Ok(())
    }

    fn deferred(&self, offset: u64, len: usize, buffer: Vec<u8>) -> MiniDbValue {
        MiniDbValue {
            path: self.path.clone(),
            file: self.pread_file.clone(),
            offset,
            len,
            buffer,
        }
    }
}

/// A value the cursor skipped: `len` bytes at `offset`, read with pread(2) by its taker.
struct MiniDbValue {
    path: String,
    file: Arc<File>,
    offset: u64,
    len: usize,
    /// A recycled buffer to read into (no zero-filling, memory already touched).
    buffer: Vec<u8>,
}

impl DeferredValue for MiniDbValue {
    fn read(self: Box<Self>) -> Result<Vec<u8>> {
        let MiniDbValue {
            path,
            file,
            offset,
            len,
            mut buffer,
        } = *self;
        buffer.clear();
        if pread_into(&file, &path, &mut buffer, offset, len)? < len {
            return Err(C2rsError::parse(format!(
                "minidb {path}: truncated record (value of {len} bytes at byte {offset})"
            )));
        }
        Ok(buffer)
    }
}

/// Appends up to `len` bytes read at `offset` to `buf` without zero-filling (pread(2), no
/// shared file position); returns how many (short only at end of file).
fn pread_into(
    file: &File,
    path: &str,
    buf: &mut Vec<u8>,
    offset: u64,
    len: usize,
) -> Result<usize> {
    buf.reserve_exact(len);
    let start = buf.len();
    let fd = file.as_raw_fd();
    while buf.len() - start < len {
        let done = buf.len() - start;
        let at = offset + done as u64;
        let Ok(at) = libc::off_t::try_from(at) else {
            return Err(C2rsError::parse(format!(
                "minidb {path}: offset {at} too large"
            )));
        };
        let spare = buf.spare_capacity_mut();
        let want = (len - done).min(spare.len());
        // SAFETY: `spare` is `want` or more bytes of writable memory owned by `buf`; pread(2)
        // writes at most `want` bytes into it and does not read it.
        let got = unsafe { libc::pread(fd, spare.as_mut_ptr().cast(), want, at) };
        if got < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(io_error(path, "cannot read minidb file", &e));
        }
        if got == 0 {
            break;
        }
        let new_len = buf.len() + got as usize;
        // SAFETY: pread(2) initialised the `got` (≤ `want` ≤ spare capacity) bytes after the
        // old length.
        unsafe { buf.set_len(new_len) };
    }
    Ok(buf.len() - start)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("c2rs-minidb-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("db").to_string_lossy().into_owned()
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
    fn a_record_cut_mid_write_keeps_the_complete_records_then_errors() {
        let path = temp_path("cut");
        let db = MiniDb::open(&path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        t.put(b"first", b"one").unwrap();
        t.put(b"second", b"two").unwrap();
        drop(t);
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
        // Larger than the read-ahead buffer: partly buffered, the rest read straight in.
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
}
