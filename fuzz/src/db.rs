//! The `db_minidb` and `db_lmdb` targets: a DB file through every reader the library has.
//!
//! Input format (the same as `tests/data/hostile/db_minidb/` and `db_lmdb/`): byte 0 is a
//! flags byte, bytes 1.. are the file (a minidb file; an LMDB `data.mdb`, placed alone in a
//! directory). Flags: bits 0-1 pick TensorProtosDBInput's `batch_size` from [1, 2, 3, 7];
//! bits 2-3, plus 1, are its number of outputs; bit 4 sets `prefetch_depth` = 2; bit 5 sets
//! `no_prefetch` = 1; bits 6-7 are unused.
//!
//! Readers, in order, each on its own: `c2rs_db_reader_new` + `c2rs_db_reader_read` (one
//! shard, then shard 1 of 2); `c2rs_db_open` + a cursor (`seek_to_first`, `valid`, `key`,
//! `value`, `next` to the end, then `seek` to keys taken from the file), with the first
//! records' values through `c2rs_batch_assemble`; `c2rs_batch_reader_new` + 3 batches (the
//! flags' batch size, outputs and depth; no thread with `no_prefetch`); `CreateDB` +
//! `TensorProtosDBInput` (a net run 3 iterations); `Load` with `load_all=1`. Every tensor a
//! batch holds is read back through every accessor.
//!
//! Beyond the statuses, a cursor must end: LMDB keys must strictly increase along it, and no
//! cursor may yield more records than the file can hold (8 bytes of header per record at
//! least, in both formats).

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

/// The two on-disk formats.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    MiniDb,
    Lmdb,
}

impl Format {
    pub fn db_type(self) -> &'static str {
        match self {
            Format::MiniDb => "minidb",
            Format::Lmdb => "lmdb",
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
    let source = write(format, file);
    let source_c = cstring(&source);
    let max_records = file.len() / 8 + 2;
    read_with_reader(format, &source_c, 1, 0);
    read_with_reader(format, &source_c, 2, 1);
    let flags = Flags::parse(flags);
    read_with_cursor(format, &source_c, max_records, flags);
    read_with_batch_reader(format, &source_c, flags);
    read_with_tensor_protos_db_input(format, &source, flags);
    read_with_load(format, &source);
    remove(format, &source);
}

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes())
        .unwrap_or_else(|_| finding("harness", "scratch path holds a NUL byte"))
}

/// Writes the file where the format expects it: a minidb file, or `data.mdb` in a directory.
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
    };
    written.unwrap_or_else(|e| finding("harness", &format!("cannot write the DB file: {e}")))
}

fn remove(format: Format, source: &Path) {
    let _ = match format {
        Format::MiniDb => std::fs::remove_file(source),
        Format::Lmdb => std::fs::remove_dir_all(source),
    };
}

fn read_with_reader(format: Format, source: &CString, num_shards: u32, shard_id: u32) {
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
        if format == Format::Lmdb
            && let Some(prev) = keys.last()
            && key <= *prev
        {
            finding(
                "c2rs_db_cursor_next",
                &format!(
                    "LMDB keys do not increase: {prev:?} then {key:?} (the walk may never end)"
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

fn read_with_cursor(format: Format, source: &CString, max_records: usize, flags: Flags) {
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
fn read_with_batch_reader(format: Format, source: &CString, flags: Flags) {
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
