//! The `db_minidb`, `db_lmdb` and `db_leveldb` targets: a DB through every reader the
//! library has.
//!
//! Input format (the same as `tests/data/hostile/db_minidb/`, `db_lmdb/` and `db_leveldb/`):
//! byte 0 is a flags byte, bytes 1.. are the DB: a minidb file; an LMDB `data.mdb`, placed
//! alone in a directory; for LevelDB the files of its directory in the container format of
//! [`leveldb_files`]. Flags: bits 0-1 pick TensorProtosDBInput's `batch_size` from
//! [1, 2, 3, 7]; bits 2-3, plus 1, are its number of outputs; bit 4 sets `prefetch_depth` = 2;
//! bit 5 sets `no_prefetch` = 1; bits 6-7 are unused.
//!
//! Readers, in order, each on its own: `c2rs_db_reader_new` + `c2rs_db_reader_read` (one
//! shard, then shard 1 of 2); `c2rs_db_open` + a cursor (`seek_to_first`, `valid`, `key`,
//! `value`, `next` to the end, then `seek` to keys taken from the file), with the first
//! records' values through `c2rs_batch_assemble`; `c2rs_batch_reader_new` + 3 batches (the
//! flags' batch size, outputs and depth; no thread with `no_prefetch`); `CreateDB` +
//! `TensorProtosDBInput` (a net run 3 iterations); `Load` with `load_all=1`. Every tensor a
//! batch holds is read back through every accessor. Opening a LevelDB writes to its
//! directory (recovery turns the log into a table), so each reader gets a fresh copy of the
//! input's directory: every reader sees the bytes of the input.
//!
//! Beyond the statuses, a cursor must end: LMDB and LevelDB keys must strictly increase along
//! it, and no cursor may yield more records than the DB can hold (8 bytes of header per
//! record at least in minidb and LMDB; LevelDB records may be a few bytes of a
//! Snappy-compressed block, so 8 records per byte there).
//!
//! The LevelDB owner thread turns a panic of the LevelDB crate into C2RS_PARSE_ERROR; in the
//! fuzz build libfuzzer-sys's panic hook aborts at the panic itself, before anything can
//! catch it, so such a panic is a finding like any other.

use std::ffi::{CString, c_char};
use std::path::{Path, PathBuf};
use std::ptr;

use caffe2rs::ffi::db::{
    c2rs_batch_assemble, c2rs_batch_reader_free, c2rs_batch_reader_new, c2rs_batch_reader_next,
    c2rs_db_cursor_free, c2rs_db_cursor_key, c2rs_db_cursor_new, c2rs_db_cursor_next,
    c2rs_db_cursor_seek, c2rs_db_cursor_seek_to_first, c2rs_db_cursor_supports_seek,
    c2rs_db_cursor_valid, c2rs_db_cursor_value, c2rs_db_free, c2rs_db_open, c2rs_db_reader_free,
    c2rs_db_reader_new, c2rs_db_reader_read,
};
use caffe2rs::ffi::handle::{c2rs_db_cursor, c2rs_tensor_list};
use caffe2rs::ffi::tensor::{c2rs_tensor_list_free, c2rs_tensor_list_get, c2rs_tensor_list_len};

use crate::check::{Oom, check, check_out, finding, touch};
use crate::defs;
use crate::operator::{Workspace, run_net, run_op};
use crate::scratch;
use crate::tensor::{self, take_buffer};

/// The on-disk formats.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    MiniDb,
    Lmdb,
    LevelDb,
}

impl Format {
    pub fn db_type(self) -> &'static str {
        match self {
            Format::MiniDb => "minidb",
            Format::Lmdb => "lmdb",
            Format::LevelDb => "leveldb",
        }
    }

    /// Whether keys strictly increase along a cursor (sorted formats).
    fn sorted(self) -> bool {
        self != Format::MiniDb
    }

    /// The most records `len` bytes of this format can hold.
    fn max_records(self, len: usize) -> usize {
        match self {
            Format::MiniDb | Format::Lmdb => len / 8 + 2,
            Format::LevelDb => len.saturating_mul(8) + 2,
        }
    }
}

/// TensorProtosDBInput settings carried by byte 0 of an input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Flags {
    pub batch_size: i64,
    pub num_outputs: usize,
    pub prefetch_depth_2: bool,
    pub no_prefetch: bool,
}

const BATCH_SIZES: [i64; 4] = [1, 2, 3, 7];

impl Flags {
    pub fn parse(byte: u8) -> Self {
        Self {
            batch_size: BATCH_SIZES[usize::from(byte & 3)],
            num_outputs: usize::from((byte >> 2) & 3) + 1,
            prefetch_depth_2: byte & 0x10 != 0,
            no_prefetch: byte & 0x20 != 0,
        }
    }
}

/// Reads per reader: enough to wrap around a small DB, cheap on a large one.
const READER_READS: usize = 24;
/// Iterations of the TensorProtosDBInput net, and batches taken from the batch reader.
const NET_ITERATIONS: i32 = 3;
/// Records the cursor keeps for `c2rs_batch_assemble` (the largest batch size of the flags).
const BATCH_RECORDS: usize = 7;

/// One input through every reader.
pub fn run(format: Format, data: &[u8]) {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let mut source = Source::new(format, file);
    let max_records = format.max_records(file.len());
    let flags = Flags::parse(flags);
    read_with_reader(format, &source.next(), 1, 0);
    read_with_reader(format, &source.next(), 2, 1);
    read_with_cursor(format, &source.next(), max_records, flags);
    read_with_batch_reader(format, &source.next(), flags);
    read_with_tensor_protos_db_input(format, &source.next(), flags);
    read_with_load(format, &source.next());
}

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes())
        .unwrap_or_else(|_| finding("harness", "scratch path holds a NUL byte"))
}

/// Where the readers find the input's DB: one file (directory) for minidb and LMDB, which
/// reading leaves as it is; a fresh directory per reader for LevelDB. Removed when dropped.
struct Source<'a> {
    format: Format,
    file: &'a [u8],
    path: Option<PathBuf>,
}

impl<'a> Source<'a> {
    fn new(format: Format, file: &'a [u8]) -> Self {
        Self {
            format,
            file,
            path: None,
        }
    }

    /// The path of the DB for the next reader.
    fn next(&mut self) -> PathBuf {
        match &self.path {
            Some(path) if self.format != Format::LevelDb => path.clone(),
            _ => {
                self.remove();
                let path = write(self.format, self.file);
                self.path = Some(path.clone());
                path
            }
        }
    }

    fn remove(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        let _ = match self.format {
            Format::MiniDb => std::fs::remove_file(path),
            Format::Lmdb | Format::LevelDb => std::fs::remove_dir_all(path),
        };
    }
}

impl Drop for Source<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Writes the DB where the format expects it: a minidb file, `data.mdb` in a directory, or
/// the files of a LevelDB directory.
fn write(format: Format, file: &[u8]) -> PathBuf {
    let written = match format {
        Format::MiniDb => {
            let path = scratch::fresh("db", ".minidb");
            std::fs::write(&path, file).map(|()| path)
        }
        Format::Lmdb => {
            let dir = scratch::fresh("db", ".lmdb");
            std::fs::create_dir(&dir)
                .and_then(|()| std::fs::write(dir.join("data.mdb"), file))
                .map(|()| dir)
        }
        Format::LevelDb => {
            let dir = scratch::fresh("db", ".leveldb");
            std::fs::create_dir(&dir)
                .and_then(|()| {
                    leveldb_files(file)
                        .iter()
                        .try_for_each(|(name, data)| std::fs::write(dir.join(name), data))
                })
                .map(|()| dir)
        }
    };
    written.unwrap_or_else(|e| finding("harness", &format!("cannot write the DB: {e}")))
}

/// Files at most in one `db_leveldb` input, and the longest file name.
pub const MAX_LEVELDB_FILES: usize = 16;
pub const MAX_LEVELDB_NAME: usize = 32;

/// The files of a LevelDB directory held by a `db_leveldb` input (bytes 1..): entries of a
/// name length N (u8), N bytes of name, a data length L (u32 little-endian) and L bytes of
/// data, one after the other; the last entry's data is whatever is left when fewer than L
/// bytes follow. A name must be 1..=32 bytes of `[A-Za-z0-9._-]` and not `.` or `..`; an
/// entry with another name is skipped. At most 16 entries are read; a later entry of the
/// same name replaces an earlier one.
pub fn leveldb_files(mut bytes: &[u8]) -> Vec<(String, &[u8])> {
    let mut files: Vec<(String, &[u8])> = Vec::new();
    for _ in 0..MAX_LEVELDB_FILES {
        let Some((&n, rest)) = bytes.split_first() else {
            break;
        };
        let Some((name, rest)) = rest.split_at_checked(usize::from(n)) else {
            break;
        };
        let (len, rest) = match rest.split_first_chunk::<4>() {
            Some((len, rest)) => (u32::from_le_bytes(*len) as usize, rest),
            None => (0, &[][..]),
        };
        let (data, rest) = rest.split_at(len.min(rest.len()));
        bytes = rest;
        let valid = !name.is_empty()
            && name.len() <= MAX_LEVELDB_NAME
            && name != b"."
            && name != b".."
            && name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            continue;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        files.retain(|(n, _)| *n != name);
        files.push((name, data));
    }
    files
}

/// The container [`leveldb_files`] reads back: (name, data) entries in order. Names are at
/// most 255 bytes and data at most 4 GiB - 1 (longer ones are cut).
pub fn join_leveldb_files<N: AsRef<str>, D: AsRef<[u8]>>(files: &[(N, D)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let name = name.as_ref().as_bytes();
        let name = &name[..name.len().min(255)];
        let data = data.as_ref();
        let data = &data[..data.len().min(u32::MAX as usize)];
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

fn read_with_reader(format: Format, source: &Path, num_shards: u32, shard_id: u32) {
    let source = cstring(source);
    let db_type = cstring_of(format.db_type());
    let mut reader = ptr::null_mut();
    let status = c2rs_db_reader_new(
        db_type.as_ptr(),
        source.as_ptr(),
        num_shards,
        shard_id,
        &mut reader,
    );
    if !check_out(status, reader, "c2rs_db_reader_new", Oom::Finding) {
        return;
    }
    for _ in 0..READER_READS {
        let (mut key, mut value) = (ptr::null_mut(), ptr::null_mut());
        let status = c2rs_db_reader_read(reader, &mut key, &mut value);
        if !check_out(status, key, "c2rs_db_reader_read", Oom::Finding) {
            break;
        }
        touch(&take_buffer(key));
        touch(&take_buffer(value));
    }
    c2rs_db_reader_free(reader);
}

fn cstring_of(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| finding("harness", "a fixed name holds a NUL byte"))
}

/// The cursor's current key and value, copied; touches both.
fn current(cursor: *const c2rs_db_cursor) -> (Vec<u8>, Vec<u8>) {
    let (mut kp, mut kl) = (ptr::null(), 0usize);
    let (mut vp, mut vl) = (ptr::null(), 0usize);
    if !check(
        c2rs_db_cursor_key(cursor, &mut kp, &mut kl),
        "c2rs_db_cursor_key",
        Oom::Finding,
    ) || !check(
        c2rs_db_cursor_value(cursor, &mut vp, &mut vl),
        "c2rs_db_cursor_value",
        Oom::Finding,
    ) {
        finding("c2rs_db_cursor_key/value", "refused on a valid cursor");
    }
    let view = |p: *const u8, l: usize| -> Vec<u8> {
        if l == 0 {
            Vec::new()
        } else {
            // SAFETY: a valid cursor's key and value stay readable until it moves.
            unsafe { std::slice::from_raw_parts(p, l) }.to_vec()
        }
    };
    let (key, value) = (view(kp, kl), view(vp, vl));
    touch(&key);
    touch(&value);
    (key, value)
}

fn valid(cursor: *const c2rs_db_cursor) -> bool {
    let mut v = false;
    if !check(
        c2rs_db_cursor_valid(cursor, &mut v),
        "c2rs_db_cursor_valid",
        Oom::Finding,
    ) {
        finding("c2rs_db_cursor_valid", "refused on a live cursor");
    }
    v
}

/// Walks from the cursor's position to the end (or an error), checking that the walk ends:
/// at most `max_records` records, and (LMDB) keys strictly increasing. Returns the keys seen
/// and the first [`BATCH_RECORDS`] values.
fn walk(
    format: Format,
    cursor: *mut c2rs_db_cursor,
    max_records: usize,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut values: Vec<Vec<u8>> = Vec::new();
    while valid(cursor) {
        let (key, value) = current(cursor);
        if values.len() < BATCH_RECORDS {
            values.push(value);
        }
        let prev = keys.last().filter(|prev| format.sorted() && key <= **prev);
        if let Some(prev) = prev {
            finding(
                "c2rs_db_cursor_next",
                &format!(
                    "{} keys do not increase: {prev:?} then {key:?} (the walk may never end)",
                    format.db_type()
                ),
            );
        }
        keys.push(key);
        if keys.len() > max_records {
            finding(
                "c2rs_db_cursor_next",
                &format!("more than {max_records} records from a file that cannot hold them"),
            );
        }
        if !check(
            c2rs_db_cursor_next(cursor),
            "c2rs_db_cursor_next",
            Oom::Finding,
        ) {
            break;
        }
    }
    (keys, values)
}

fn read_with_cursor(format: Format, source: &Path, max_records: usize, flags: Flags) {
    let source = cstring(source);
    let db_type = cstring_of(format.db_type());
    let mut db = ptr::null_mut();
    let status = c2rs_db_open(db_type.as_ptr(), source.as_ptr(), 0, &mut db);
    if !check_out(status, db, "c2rs_db_open", Oom::Finding) {
        return;
    }
    let mut cursor = ptr::null_mut();
    let status = c2rs_db_cursor_new(db, &mut cursor);
    if check_out(status, cursor, "c2rs_db_cursor_new", Oom::Finding) {
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        if check(
            c2rs_db_cursor_seek_to_first(cursor),
            "c2rs_db_cursor_seek_to_first",
            Oom::Finding,
        ) {
            (keys, values) = walk(format, cursor, max_records);
        }
        assemble(&keys, &values, flags);
        let mut seekable = false;
        let status = c2rs_db_cursor_supports_seek(cursor, &mut seekable);
        if !check(status, "c2rs_db_cursor_supports_seek", Oom::Finding) {
            finding("c2rs_db_cursor_supports_seek", "refused on a live cursor");
        }
        if seekable {
            for target in seek_targets(&keys) {
                let status = c2rs_db_cursor_seek(cursor, target.as_ptr(), target.len());
                if check(status, "c2rs_db_cursor_seek", Oom::Finding) {
                    let _ = walk(format, cursor, max_records);
                }
            }
        }
        c2rs_db_cursor_free(cursor);
    }
    c2rs_db_free(db);
}

/// `c2rs_batch_assemble` on the first records the cursor read: one batch of `batch_size`
/// records when there are that many, and record 0 alone (batch size 0).
fn assemble(keys: &[Vec<u8>], values: &[Vec<u8>], flags: Flags) {
    let batch = usize::try_from(flags.batch_size).unwrap_or(1);
    for (n, batch_size) in [(batch, batch), (1, 0)] {
        if values.len() < n || keys.len() < n {
            continue;
        }
        // Keys with a NUL byte cannot cross as C strings: records are named by index then.
        let c_keys: Option<Vec<CString>> = keys[..n]
            .iter()
            .map(|k| CString::new(k.clone()).ok())
            .collect();
        let key_ptrs: Option<Vec<*const c_char>> = c_keys
            .as_ref()
            .map(|ks| ks.iter().map(|k| k.as_ptr()).collect());
        let value_ptrs: Vec<*const u8> = values[..n].iter().map(|v| v.as_ptr()).collect();
        let lens: Vec<usize> = values[..n].iter().map(Vec::len).collect();
        let mut list = ptr::null_mut();
        let status = c2rs_batch_assemble(
            key_ptrs.as_ref().map_or(ptr::null(), |k| k.as_ptr()),
            value_ptrs.as_ptr(),
            lens.as_ptr(),
            n,
            batch_size,
            flags.num_outputs,
            &mut list,
        );
        if check_out(status, list, "c2rs_batch_assemble", Oom::Finding) {
            inspect_list(list);
            c2rs_tensor_list_free(list);
        }
    }
}

/// Reads every tensor of a list through every accessor.
fn inspect_list(list: *const c2rs_tensor_list) {
    for i in 0..c2rs_tensor_list_len(list) {
        let mut t = ptr::null();
        let status = c2rs_tensor_list_get(list, i, &mut t);
        if !check_out(status, t, "c2rs_tensor_list_get", Oom::Finding) {
            finding("c2rs_tensor_list_get", "refused an index below the length");
        }
        tensor::inspect(t);
    }
}

/// `c2rs_batch_reader_new` on a one-shard reader (the flags' batch size, outputs and prefetch
/// depth; one thread, none with `no_prefetch`), then [`NET_ITERATIONS`] batches.
fn read_with_batch_reader(format: Format, source: &Path, flags: Flags) {
    let source = cstring(source);
    let db_type = cstring_of(format.db_type());
    let mut reader = ptr::null_mut();
    let status = c2rs_db_reader_new(db_type.as_ptr(), source.as_ptr(), 1, 0, &mut reader);
    if !check_out(status, reader, "c2rs_db_reader_new", Oom::Finding) {
        return;
    }
    let mut batches = ptr::null_mut();
    let status = c2rs_batch_reader_new(
        reader,
        usize::try_from(flags.batch_size).unwrap_or(1),
        flags.num_outputs,
        if flags.prefetch_depth_2 { 2 } else { 1 },
        usize::from(!flags.no_prefetch),
        &mut batches,
    );
    if check_out(status, batches, "c2rs_batch_reader_new", Oom::Finding) {
        for _ in 0..NET_ITERATIONS {
            let mut list = ptr::null_mut();
            let status = c2rs_batch_reader_next(batches, &mut list);
            if !check_out(status, list, "c2rs_batch_reader_next", Oom::Finding) {
                break;
            }
            inspect_list(list);
            c2rs_tensor_list_free(list);
        }
        c2rs_batch_reader_free(batches);
    }
    c2rs_db_reader_free(reader);
}

/// Keys to seek to: the first and last keys seen, just past the first, in the middle of the
/// first, the empty key and one after every printable key.
fn seek_targets(keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut targets = vec![Vec::new(), vec![0xff; 16]];
    if let (Some(first), Some(last)) = (keys.first(), keys.last()) {
        targets.push(first.clone());
        targets.push(last.clone());
        let mut past = first.clone();
        past.push(0);
        targets.push(past);
        targets.push(first[..first.len() / 2].to_vec());
    }
    targets
}

fn read_with_tensor_protos_db_input(format: Format, source: &Path, flags: Flags) {
    let ws = Workspace::new(None);
    let source = source.to_string_lossy();
    let create = defs::op(
        "CreateDB",
        &[],
        &["reader"],
        vec![
            defs::string("db_type", format.db_type()),
            defs::string("db", &source),
        ],
    );
    if !run_op(&ws, &defs::bytes(&create), Oom::Finding) {
        return;
    }
    let outputs: Vec<String> = (0..flags.num_outputs).map(|i| format!("out{i}")).collect();
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let mut args = vec![defs::int("batch_size", flags.batch_size)];
    if flags.prefetch_depth_2 {
        args.push(defs::int("prefetch_depth", 2));
    }
    if flags.no_prefetch {
        args.push(defs::int("no_prefetch", 1));
    }
    let input = defs::op("TensorProtosDBInput", &["reader"], &outputs, args);
    run_net(
        &ws,
        &defs::net("db_input", vec![input]),
        NET_ITERATIONS,
        Oom::Finding,
    );
}

fn read_with_load(format: Format, source: &Path) {
    let ws = Workspace::new(None);
    let load = defs::op(
        "Load",
        &[],
        &[],
        vec![
            defs::string("db_type", format.db_type()),
            defs::string("db", &source.to_string_lossy()),
            defs::int("absolute_path", 1),
            defs::int("load_all", 1),
        ],
    );
    run_op(&ws, &defs::bytes(&load), Oom::Finding);
}
