//! Checks of LevelDB files (Google's table and log formats) made before `rusty-leveldb` reads
//! them. The crate trusts its files more than this library may: it asserts on a bad footer
//! magic, allocates whatever size a block handle names before reading, indexes blocks by
//! offsets read from them, and its iterators skip a block that fails its checksum without
//! telling anyone. So every table, log and MANIFEST is walked here once, streaming (one block
//! in memory at a time): every checksum, every size against the bytes behind it, every block's
//! entry layout. A file that passes cannot make the crate allocate more than the file holds
//! (times Snappy's bounded expansion) or index out of a block.
//!
//! Formats (Google LevelDB `doc/table_format.md`, `doc/log_format.md`):
//! - table: blocks, each followed by a 5-byte trailer (compression type, masked CRC-32C of
//!   block + type); a 48-byte footer (metaindex handle, index handle, padding, magic).
//! - block: entries (varint shared, non-shared, value length; key delta; value), then the
//!   restart offsets (u32 LE each) and their count (u32 LE).
//! - log: 32 KiB blocks of records (masked CRC-32C u32, length u16, type u8, data); records
//!   shorter than a header at a block's end are padding.

use std::io::{self, Read};

/// The last 8 bytes of every table (little-endian 0xdb4775248b80fb57).
const TABLE_MAGIC: [u8; 8] = [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb];
const FOOTER_LEN: u64 = 48;
/// Compression type byte + masked CRC after every table block.
const BLOCK_TRAILER_LEN: u64 = 5;
const NO_COMPRESSION: u8 = 0;
const SNAPPY: u8 = 1;
/// Snappy's largest expansion: a 3-byte copy tag yields at most 64 bytes (21.3×).
const SNAPPY_MAX_EXPANSION: usize = 22;
/// Internal keys end in an 8-byte (sequence << 8 | type) tag.
const TAG_LEN: usize = 8;
const LOG_BLOCK: usize = 32 * 1024;
const LOG_HEADER: usize = 7;
/// A write batch starts with the sequence number (u64) and the record count (u32).
const BATCH_HEADER: usize = 12;

/// Why a file failed its check.
#[derive(Debug)]
pub enum CheckError {
    /// The OS could not read the file.
    Io(io::Error),
    /// The bytes are not a valid file of the format.
    Corrupt(String),
}

impl From<io::Error> for CheckError {
    fn from(e: io::Error) -> Self {
        CheckError::Io(e)
    }
}

fn corrupt<T>(message: impl Into<String>) -> Result<T, CheckError> {
    Err(CheckError::Corrupt(message.into()))
}

/// Positional reads (a file, or bytes in memory for fuzzing and tests).
pub trait ReadAt {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// CRC-32C as LevelDB stores it (rotated and offset, so a CRC of data holding CRCs differs).
fn masked_crc(parts: &[&[u8]]) -> u32 {
    let crc = parts.iter().fold(0, |crc, p| crc32c::crc32c_append(crc, p));
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn u32_le(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// A varint (at most 10 bytes) at the start of `b`: (value, bytes used).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in b.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A varint length at the start of `b` that fits in what follows it: (length, bytes used).
fn varint_len(b: &[u8]) -> Option<(usize, usize)> {
    let (v, n) = varint(b)?;
    let v = usize::try_from(v).ok()?;
    (v <= b.len() - n).then_some((v, n))
}

/// Location of a block inside a table (the trailer follows it).
#[derive(Clone, Copy, Debug)]
struct Handle {
    offset: u64,
    size: u64,
}

impl Handle {
    fn decode(b: &[u8]) -> Option<(Handle, usize)> {
        let (offset, n1) = varint(b)?;
        let (size, n2) = varint(&b[n1..])?;
        Some((Handle { offset, size }, n1 + n2))
    }
}

/// What a block's entries are.
#[derive(Clone, Copy, PartialEq)]
enum Keys {
    /// Internal keys (user key + 8-byte tag): data and index blocks.
    Internal,
    /// Plain names: the metaindex block.
    Plain,
}

/// Checks a whole table file of `len` bytes: footer, index and metaindex blocks, and every
/// block they point to.
pub fn check_table(src: &(impl ReadAt + ?Sized), len: u64) -> Result<(), CheckError> {
    if len < FOOTER_LEN {
        return corrupt(format!(
            "table of {len} bytes is shorter than its {FOOTER_LEN}-byte footer"
        ));
    }
    let mut footer = [0u8; FOOTER_LEN as usize];
    src.read_exact_at(&mut footer, len - FOOTER_LEN)?;
    if footer[40..] != TABLE_MAGIC {
        return corrupt("bad table magic number (not a LevelDB table, or truncated)");
    }
    let blocks_end = len - FOOTER_LEN;
    let Some((metaindex, n)) = Handle::decode(&footer[..40]) else {
        return corrupt("bad metaindex handle in the table footer");
    };
    let Some((index, _)) = Handle::decode(&footer[n..40]) else {
        return corrupt("bad index handle in the table footer");
    };
    let index_block = read_block(src, index, blocks_end, "index")?;
    for value in entries(&index_block, Keys::Internal, "index")? {
        let handle = whole_handle(value, "index")?;
        let data = read_block(src, handle, blocks_end, "data")?;
        entries(&data, Keys::Internal, "data")?;
    }
    let meta_block = read_block(src, metaindex, blocks_end, "metaindex")?;
    for value in entries(&meta_block, Keys::Plain, "metaindex")? {
        // Filter blocks: checked as raw blocks (their layout is the filter policy's).
        let handle = whole_handle(value, "metaindex")?;
        read_block(src, handle, blocks_end, "meta")?;
    }
    Ok(())
}

fn whole_handle(value: &[u8], what: &str) -> Result<Handle, CheckError> {
    match Handle::decode(value) {
        Some((h, n)) if n == value.len() => Ok(h),
        _ => corrupt(format!("bad block handle in the {what} block")),
    }
}

/// Reads the block at `h` (which must end, trailer included, by `end`), checks its checksum
/// and returns its uncompressed contents.
fn read_block(
    src: &(impl ReadAt + ?Sized),
    h: Handle,
    end: u64,
    what: &str,
) -> Result<Vec<u8>, CheckError> {
    let fits = h
        .offset
        .checked_add(h.size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN))
        .is_some_and(|e| e <= end);
    if !fits {
        return corrupt(format!(
            "{what} block at {} of {} bytes runs past the table's blocks ({end} bytes)",
            h.offset, h.size
        ));
    }
    // Fits in the file, so in memory as far as the file's own size allows.
    let size = usize::try_from(h.size).map_err(|_| {
        CheckError::Corrupt(format!("{what} block of {} bytes is too large", h.size))
    })?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(size + BLOCK_TRAILER_LEN as usize)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    buf.resize(size + BLOCK_TRAILER_LEN as usize, 0);
    src.read_exact_at(&mut buf, h.offset)?;
    let (data, trailer) = buf.split_at(size);
    let kind = trailer[0];
    if masked_crc(&[data, &trailer[..1]]) != u32_le(&trailer[1..]) {
        return corrupt(format!(
            "checksum mismatch in the {what} block at {}",
            h.offset
        ));
    }
    match kind {
        NO_COMPRESSION => {
            buf.truncate(size);
            Ok(buf)
        }
        SNAPPY => snappy(data, what, h.offset),
        other => corrupt(format!(
            "{what} block at {} has compression type {other} (only none 0 and Snappy 1 are supported)",
            h.offset
        )),
    }
}

fn snappy(data: &[u8], what: &str, offset: u64) -> Result<Vec<u8>, CheckError> {
    let bad = |e: snap::Error| {
        CheckError::Corrupt(format!("{what} block at {offset}: bad Snappy data: {e}"))
    };
    let n = snap::raw::decompress_len(data).map_err(bad)?;
    if n > data.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
        return corrupt(format!(
            "{what} block at {offset}: Snappy length {n} is impossible for {} compressed bytes",
            data.len()
        ));
    }
    snap::raw::Decoder::new().decompress_vec(data).map_err(bad)
}

/// Walks a block's entries, checking the layout, and returns their values.
fn entries<'a>(block: &'a [u8], keys: Keys, what: &str) -> Result<Vec<&'a [u8]>, CheckError> {
    let bad = |why: &str| corrupt(format!("{what} block: {why}"));
    if block.len() < 4 {
        return bad("shorter than its restart count");
    }
    let restarts = u32_le(&block[block.len() - 4..]) as usize;
    let Some(entries_end) = restarts
        .checked_add(1)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| block.len().checked_sub(n))
    else {
        return bad("restart count larger than the block");
    };
    let restart_at = |i: usize| u32_le(&block[entries_end + 4 * i..]) as usize;
    if restarts == 0 && entries_end > 0 {
        return bad("entries without a restart point");
    }
    let mut next_restart = 0;
    let mut key = Vec::new();
    let mut values = Vec::new();
    let mut at = 0;
    while at < entries_end {
        let is_restart = next_restart < restarts && restart_at(next_restart) == at;
        if next_restart < restarts && restart_at(next_restart) < at {
            return bad("restart point inside an entry");
        }
        let rest = &block[at..entries_end];
        let Some((shared, n1)) = varint(rest) else {
            return bad("bad entry header");
        };
        let Some((unshared, n2)) = varint(&rest[n1..]) else {
            return bad("bad entry header");
        };
        let Some((value_len, n3)) = varint(&rest[n1 + n2..]) else {
            return bad("bad entry header");
        };
        let head = n1 + n2 + n3;
        let (Ok(shared), Ok(unshared), Ok(value_len)) = (
            usize::try_from(shared),
            usize::try_from(unshared),
            usize::try_from(value_len),
        ) else {
            return bad("entry sizes out of range");
        };
        if shared > key.len() || (is_restart || at == 0) && shared != 0 {
            return bad("entry shares more of the previous key than there is");
        }
        let Some(end) = unshared
            .checked_add(value_len)
            .and_then(|n| n.checked_add(head))
            .filter(|&n| n <= rest.len())
        else {
            return bad("entry runs past the block's entries");
        };
        key.truncate(shared);
        key.extend_from_slice(&rest[head..head + unshared]);
        if keys == Keys::Internal {
            // The tag is (sequence << 8 | type) little-endian: its first byte is the type.
            match key.len().checked_sub(TAG_LEN).map(|t| key[t]) {
                None => return bad("internal key shorter than its 8-byte tag"),
                Some(t) if t > 1 => return bad("internal key with an unknown value type"),
                Some(_) => {}
            }
        }
        values.push(&rest[head + unshared..end]);
        if is_restart {
            next_restart += 1;
        }
        at += end;
    }
    if next_restart != restarts && !(restarts == 1 && entries_end == 0 && restart_at(0) == 0) {
        return bad("restart point outside the entries");
    }
    Ok(values)
}

/// What the records of a log file hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogContent {
    /// Write batches (a `NNNNNN.log` file).
    WriteBatches,
    /// Version edits (a MANIFEST).
    VersionEdits,
}

/// Checks a log file read from `src`: every record checksummed, fragments in sequence, each
/// whole record a valid write batch or version edit. A file that ends inside a record (its
/// writer died mid-write) is an error here, where LevelDB drops that record silently: the
/// host learns the database lost data. Padding (block trailers, zeroed preallocated space) is
/// skipped as LevelDB skips it.
pub fn check_log(mut src: impl Read, content: LogContent) -> Result<(), CheckError> {
    let mut block = vec![0u8; LOG_BLOCK];
    let mut record: Vec<u8> = Vec::new();
    let mut in_record = false;
    let mut offset = 0u64;
    loop {
        let got = read_full(&mut src, &mut block)?;
        let last = got < LOG_BLOCK;
        let mut at = 0;
        let mut zeroed = false;
        while got - at >= LOG_HEADER {
            let h = &block[at..at + LOG_HEADER];
            let crc = u32_le(h);
            let len = usize::from(u16::from_le_bytes([h[4], h[5]]));
            let kind = h[6];
            let where_ = offset + at as u64;
            if kind == 0 && len == 0 && crc == 0 {
                // Preallocated, never written space: LevelDB skips the rest of the block.
                zeroed = true;
                break;
            }
            if at + LOG_HEADER + len > got {
                return corrupt(if last {
                    format!("the file ends inside the record at {where_}")
                } else {
                    format!("the record at {where_} runs past its 32 KiB block")
                });
            }
            let data = &block[at + LOG_HEADER..at + LOG_HEADER + len];
            if masked_crc(&[&[kind], data]) != crc {
                return corrupt(format!("checksum mismatch in the record at {where_}"));
            }
            let (first, end) = match kind {
                1 => (true, true),
                2 => (true, false),
                3 => (false, false),
                4 => (false, true),
                other => {
                    return corrupt(format!("the record at {where_} has unknown type {other}"));
                }
            };
            if first == in_record {
                return corrupt(format!(
                    "the record at {where_} breaks its record's fragment sequence"
                ));
            }
            if first {
                record.clear();
            }
            record.extend_from_slice(data);
            in_record = !end;
            if end {
                let checked = match content {
                    LogContent::WriteBatches => check_write_batch(&record),
                    LogContent::VersionEdits => check_version_edit(&record),
                };
                checked.map_err(|why| {
                    CheckError::Corrupt(format!("the record ending at {where_}: {why}"))
                })?;
            }
            at += LOG_HEADER + len;
        }
        if last {
            // A full block's last 1-6 bytes are a trailer; in the last, partial block they
            // can only be the start of a header the writer did not finish.
            if !zeroed && block[at..got].iter().any(|&b| b != 0) {
                return corrupt("the file ends inside a record header");
            }
            if in_record {
                return corrupt("the file ends inside a fragmented record");
            }
            return Ok(());
        }
        offset += LOG_BLOCK as u64;
    }
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A write batch: sequence (u64), count (u32), then `count` records, each a type byte
/// (1 put: key and value; 0 delete: key) and varint-length-prefixed strings, nothing after.
fn check_write_batch(b: &[u8]) -> Result<(), String> {
    if b.len() < BATCH_HEADER {
        return Err(format!("{} bytes is shorter than its header", b.len()));
    }
    let count = u32_le(&b[8..]);
    let mut rest = &b[BATCH_HEADER..];
    for i in 0..count {
        let strings = match rest.first() {
            Some(1) => 2,
            Some(0) => 1,
            Some(t) => return Err(format!("record {i} has unknown type {t}")),
            None => return Err(format!("holds {i} records, its header says {count}")),
        };
        rest = &rest[1..];
        for _ in 0..strings {
            let Some((len, n)) = varint_len(rest) else {
                return Err(format!("record {i} runs past the batch"));
            };
            rest = &rest[n + len..];
        }
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after its {count} records", rest.len()));
    }
    Ok(())
}

/// LevelDB's number of levels: a level read from a MANIFEST indexes arrays of this size.
const NUM_LEVELS: u64 = 7;

/// A version edit: tagged fields until the end of the record. Tags (LevelDB
/// `db/version_edit.cc`): 1 comparator name, 2 log number, 3 next file number, 4 last
/// sequence, 5 compact pointer (level, internal key), 6 deleted file (level, number), 7 new
/// file (level, number, size, smallest and largest internal keys), 9 previous log number.
fn check_version_edit(b: &[u8]) -> Result<(), String> {
    let mut rest = b;
    while !rest.is_empty() {
        match take_number(&mut rest, "field tag")? {
            1 => take_string(&mut rest, "comparator name", false)?,
            2 | 3 | 4 | 9 => {
                take_number(&mut rest, "number")?;
            }
            5 => {
                take_level(&mut rest)?;
                take_string(&mut rest, "compaction pointer", true)?;
            }
            6 => {
                take_level(&mut rest)?;
                take_number(&mut rest, "file number")?;
            }
            7 => {
                take_level(&mut rest)?;
                take_number(&mut rest, "file number")?;
                take_number(&mut rest, "file size")?;
                take_string(&mut rest, "smallest key", true)?;
                take_string(&mut rest, "largest key", true)?;
            }
            other => return Err(format!("unknown version edit field {other}")),
        }
    }
    Ok(())
}

fn take_number(rest: &mut &[u8], what: &str) -> Result<u64, String> {
    let (v, n) = varint(rest).ok_or_else(|| format!("bad {what}"))?;
    *rest = &rest[n..];
    Ok(v)
}

fn take_level(rest: &mut &[u8]) -> Result<(), String> {
    let level = take_number(rest, "level")?;
    if level >= NUM_LEVELS {
        return Err(format!("level {level} is not below {NUM_LEVELS}"));
    }
    Ok(())
}

/// A length-prefixed string that fits in the record (an internal key when `internal`).
fn take_string(rest: &mut &[u8], what: &str, internal: bool) -> Result<(), String> {
    let (len, n) = varint_len(rest).ok_or_else(|| format!("{what} runs past the record"))?;
    if internal && len < TAG_LEN {
        return Err(format!("{what} is shorter than an internal key's tag"));
    }
    *rest = &rest[n + len..];
    Ok(())
}

/// `check_table` over bytes in memory: an entry point for fuzzing.
pub fn check_table_bytes(bytes: &[u8]) -> Result<(), CheckError> {
    check_table(bytes, bytes.len() as u64)
}

/// `check_log` over bytes in memory: an entry point for fuzzing.
pub fn check_log_bytes(bytes: &[u8], content: LogContent) -> Result<(), CheckError> {
    check_log(bytes, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `records` as LevelDB writes it (each record FULL, or split in FIRST/LAST
    /// when `split`).
    fn log(records: &[Vec<u8>], split: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut frag = |kind: u8, data: &[u8]| {
            let crc = masked_crc(&[&[kind], data]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u16).to_le_bytes());
            out.push(kind);
            out.extend_from_slice(data);
        };
        for r in records {
            if split {
                let (a, b) = r.split_at(r.len() / 2);
                frag(2, a);
                frag(4, b);
            } else {
                frag(1, r);
            }
        }
        out
    }

    /// A write batch putting `pairs`.
    fn batch(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = 7u64.to_le_bytes().to_vec();
        b.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
        for (k, v) in pairs {
            b.push(1);
            b.push(k.len() as u8);
            b.extend_from_slice(k);
            b.push(v.len() as u8);
            b.extend_from_slice(v);
        }
        b
    }

    fn corrupt_message(r: Result<(), CheckError>) -> String {
        match r {
            Err(CheckError::Corrupt(m)) => m,
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn logs_pass_whole_and_fail_when_damaged_cut_or_out_of_sequence() {
        let records = [batch(&[(b"a", b"1")]), batch(&[(b"b", b"2"), (b"c", b"")])];
        for split in [false, true] {
            let good = log(&records, split);
            check_log_bytes(&good, LogContent::WriteBatches).unwrap();
            let mut flipped = good.clone();
            flipped[9] ^= 1;
            assert!(
                corrupt_message(check_log_bytes(&flipped, LogContent::WriteBatches))
                    .contains("checksum mismatch")
            );
            let cut = &good[..good.len() - 1];
            assert!(check_log_bytes(cut, LogContent::WriteBatches).is_err());
        }
        // A LAST fragment with no FIRST before it.
        let mut orphan = log(&records, true);
        let first_len = 7 + records[0].len() / 2;
        orphan.drain(..first_len);
        assert!(
            corrupt_message(check_log_bytes(&orphan, LogContent::WriteBatches))
                .contains("fragment sequence")
        );
        // Zeroed, preallocated space after the records is padding.
        let mut padded = log(&records, false);
        padded.extend_from_slice(&[0; 100]);
        check_log_bytes(&padded, LogContent::WriteBatches).unwrap();
        check_log_bytes(&[], LogContent::WriteBatches).unwrap();
    }

    #[test]
    fn write_batches_must_hold_the_records_their_header_counts() {
        let mut b = batch(&[(b"k", b"v")]);
        b[8] = 2; // count 2, one record
        let m = corrupt_message(check_log_bytes(&log(&[b], false), LogContent::WriteBatches));
        assert!(m.contains("holds 1 records, its header says 2"), "{m}");
        let mut long = batch(&[(b"k", b"v")]);
        long.push(0);
        assert!(check_log_bytes(&log(&[long], false), LogContent::WriteBatches).is_err());
        let short = log(&[vec![0; 11]], false);
        assert!(check_log_bytes(&short, LogContent::WriteBatches).is_err());
    }

    #[test]
    fn version_edits_with_unknown_fields_bad_levels_or_lengths_fail() {
        let ok = [
            vec![1, 3, b'c', b'm', b'p', 2, 5, 3, 9, 4, 20],
            vec![
                7, 1, 5, 100, 8, 1, 2, 3, 4, 5, 6, 7, 8, 8, 1, 2, 3, 4, 5, 6, 7, 8,
            ],
        ];
        for edit in &ok {
            check_log_bytes(
                &log(std::slice::from_ref(edit), false),
                LogContent::VersionEdits,
            )
            .unwrap();
        }
        for (bad, why) in [
            (vec![8, 1], "unknown version edit field 8"),
            (vec![6, 7, 1], "level 7 is not below 7"),
            // A 2^40-byte comparator name in a 7-byte record.
            (
                vec![1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20],
                "runs past the record",
            ),
            (vec![5, 0, 3, 1, 2, 3], "shorter than an internal key"),
        ] {
            let m = corrupt_message(check_log_bytes(
                &log(&[bad], false),
                LogContent::VersionEdits,
            ));
            assert!(m.contains(why), "{m}");
        }
    }

    /// A table holding one uncompressed block of `block` (index and metaindex empty).
    fn table_with_data_block(block: &[u8], kind: u8) -> Vec<u8> {
        let mut t = block.to_vec();
        t.push(kind);
        t.extend_from_slice(&masked_crc(&[block, &[kind]]).to_le_bytes());
        // Index block: one entry (key "k" + 8-byte tag, value = handle of the data block).
        let data_len = block.len() as u8;
        let mut index = vec![0, 9, 2, b'k', 1, 0, 0, 0, 0, 0, 0, 0, 0, data_len];
        index.extend_from_slice(&0u32.to_le_bytes());
        index.extend_from_slice(&1u32.to_le_bytes());
        let index_at = t.len() as u8;
        t.extend_from_slice(&index);
        t.push(0);
        t.extend_from_slice(&masked_crc(&[&index, &[0]]).to_le_bytes());
        let meta = [0u8, 0, 0, 0, 1, 0, 0, 0];
        let meta_at = t.len() as u8;
        t.extend_from_slice(&meta);
        t.push(0);
        t.extend_from_slice(&masked_crc(&[&meta, &[0]]).to_le_bytes());
        let mut footer = vec![meta_at, meta.len() as u8, index_at, index.len() as u8];
        footer.resize(40, 0);
        footer.extend_from_slice(&TABLE_MAGIC);
        t.extend_from_slice(&footer);
        t
    }

    #[test]
    fn tables_are_checked_block_by_block() {
        // One entry "a" + tag (type 1), value "v"; one restart at 0.
        let mut block = vec![0, 9, 1, b'a', 1, 0, 0, 0, 0, 0, 0, 0, b'v'];
        block.extend_from_slice(&0u32.to_le_bytes());
        block.extend_from_slice(&1u32.to_le_bytes());
        check_table_bytes(&table_with_data_block(&block, NO_COMPRESSION)).unwrap();

        let m = corrupt_message(check_table_bytes(&table_with_data_block(&block, 7)));
        assert!(m.contains("compression type 7"), "{m}");
        let mut bad_type = block.clone();
        bad_type[4] = 2; // value type 2
        let m = corrupt_message(check_table_bytes(&table_with_data_block(&bad_type, 0)));
        assert!(m.contains("unknown value type"), "{m}");
        let mut past = block.clone();
        past[2] = 50; // value longer than the block
        let m = corrupt_message(check_table_bytes(&table_with_data_block(&past, 0)));
        assert!(m.contains("runs past"), "{m}");
        let mut restarts = block.clone();
        let n = restarts.len();
        restarts[n - 4] = 200; // 200 restarts in a 21-byte block
        let m = corrupt_message(check_table_bytes(&table_with_data_block(&restarts, 0)));
        assert!(m.contains("restart count"), "{m}");

        // A Snappy block whose header claims 1 GiB from a few bytes: refused before any
        // allocation of that size.
        let bomb = [0x80, 0x80, 0x80, 0x80, 0x04, 0, 0, 0];
        let m = corrupt_message(check_table_bytes(&table_with_data_block(&bomb, SNAPPY)));
        assert!(m.contains("impossible"), "{m}");

        // A footer handle naming more bytes than the file has.
        let mut t = table_with_data_block(&block, NO_COMPRESSION);
        let footer = t.len() - 48;
        t[footer + 1] = 0x7f;
        let m = corrupt_message(check_table_bytes(&t));
        assert!(m.contains("runs past the table"), "{m}");
        assert!(corrupt_message(check_table_bytes(&t[..40])).contains("shorter than"));
    }
}
