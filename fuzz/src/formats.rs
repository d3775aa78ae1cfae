//! The byte-level, in-memory targets: a file's bytes straight into the library's parser for
//! its format, with no file, no thread and no C ABI in between, so that each execution costs
//! microseconds (the end-to-end `db_*` targets write files and open every reader, hundreds of
//! executions per second). They call the library's doc-hidden fuzzing entry points, which run
//! the same parsing code as the DB cursors.
//!
//! - `minidb_format`: the `db_minidb` input (flags byte + minidb file) through
//!   `caffe2rs::db::minidb_fuzzing::records` (the cursor's record parser), then the records'
//!   values through the batch assembler as TensorProtosDBInput uses it (the flags' batch
//!   size and outputs, [`BATCHES`] batches wrapping around the records as the DB reader
//!   does) and record 0 alone through `decode_record`; every tensor is read back.
//! - `lmdb_format`: the `db_lmdb` input (flags byte, ignored + `data.mdb`) through
//!   `caffe2rs::db::lmdb_fuzzing::read_data_mdb` (a walk from the first record to the end,
//!   then seeks).
//! - `leveldb_format`: byte 0's low two bits pick what bytes 1.. are: 0 a table
//!   (`NNNNNN.ldb`), 1 a log of write batches (`NNNNNN.log`), 2 a MANIFEST, 3 all three in
//!   turn; through `caffe2rs::db::check_leveldb_table` / `check_leveldb_log`, the checks every
//!   LevelDB file passes before the LevelDB crate reads it.
//!
//! Verdicts as everywhere (`check`): C2RS_INTERNAL or a panic is a finding, and so is a
//! record count the file cannot hold.

use caffe2rs::db::{
    BatchAssembler, check_leveldb_log, check_leveldb_table, decode_record, lmdb_fuzzing,
    minidb_fuzzing,
};
use caffe2rs::tensor::Tensor;
use caffe2rs::{ErrorKind, Result};

use crate::check::{finding, touch, trace};
use crate::db::Flags;

/// Batches the minidb target assembles (as many as the `db_minidb` net runs).
pub const BATCHES: usize = 3;

/// True on Ok, false on a documented error; a finding on `Internal` or `Panic` and on an
/// error without a message.
pub fn verdict<T>(result: &Result<T>, call: &str) -> bool {
    let e = match result {
        Ok(_) => {
            trace(&format!("{call}: OK"));
            return true;
        }
        Err(e) => e,
    };
    trace(&format!("{call}: {:?}: {}", e.kind(), e.message()));
    if matches!(e.kind(), ErrorKind::Internal | ErrorKind::Panic) {
        finding(call, &format!("{:?}: {}", e.kind(), e.message()));
    }
    if e.message().is_empty() {
        finding(call, "an error without a message");
    }
    false
}

/// Reads a tensor back and touches its storage: numel agrees with dims, the bytes are
/// numel × itemsize and readable, every STRING element is readable.
pub fn inspect_tensor(t: &Tensor, call: &str) {
    let dims = t.dims();
    let product = if dims.contains(&0) {
        Some(0)
    } else {
        dims.iter().try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
    };
    if product != Some(t.numel()) {
        finding(
            call,
            &format!("numel {} disagrees with dims {dims:?}", t.numel()),
        );
    }
    match t.dtype().item_size() {
        Some(size) => match t.bytes() {
            Ok(bytes) if Some(bytes.len()) == t.numel().checked_mul(size) => {
                touch(bytes);
            }
            Ok(bytes) => finding(
                call,
                &format!("{} bytes for {} elements of {size}", bytes.len(), t.numel()),
            ),
            Err(e) => finding(call, &format!("no bytes for a fixed-size tensor: {e:?}")),
        },
        None => match t.strings() {
            Ok(strings) if strings.len() == t.numel() => {
                strings.iter().for_each(|s| {
                    touch(s);
                });
            }
            Ok(strings) => finding(
                call,
                &format!("{} strings for {} elements", strings.len(), t.numel()),
            ),
            Err(e) => finding(call, &format!("no strings for a STRING tensor: {e:?}")),
        },
    }
}

/// `minidb_format`: flags byte + a minidb file (the `db_minidb` format).
pub fn minidb(data: &[u8]) {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let flags = Flags::parse(flags);
    let records = minidb_fuzzing::records(file);
    if !verdict(&records, "minidb_fuzzing::records") {
        return;
    }
    let Ok(records) = records else { return };
    if records.len() > file.len() / 8 {
        finding(
            "minidb_fuzzing::records",
            &format!("{} records from {} bytes", records.len(), file.len()),
        );
    }
    if records.is_empty() {
        return;
    }
    let (key, value) = records[0];
    let decoded = decode_record(key, value, flags.num_outputs);
    if verdict(&decoded, "decode_record") {
        for t in decoded.iter().flatten() {
            inspect_tensor(t, "decode_record");
        }
    }
    let batch_size = usize::try_from(flags.batch_size).unwrap_or(1);
    let assembler = BatchAssembler {
        batch_size,
        num_outputs: flags.num_outputs,
    };
    // Records in the order the DB reader hands them out: wrapping around at the end.
    let mut next = records.iter().cycle();
    for _ in 0..BATCHES {
        let batch: Vec<(&[u8], &[u8])> = next.by_ref().take(batch_size).copied().collect();
        let tensors = assembler.assemble_borrowed(&batch);
        if !verdict(&tensors, "BatchAssembler::assemble_borrowed") {
            return;
        }
        for t in tensors.iter().flatten() {
            inspect_tensor(t, "BatchAssembler::assemble_borrowed");
        }
    }
}

/// Keys every `lmdb_format` input seeks to beyond those of its own records (which
/// `read_data_mdb` adds): the empty key and one above every short key.
const LMDB_SEEKS: [&[u8]; 2] = [b"", &[0xff; 16]];

/// `lmdb_format`: flags byte (unused) + an LMDB `data.mdb` (the `db_lmdb` format).
pub fn lmdb(data: &[u8]) {
    let Some((_, file)) = data.split_first() else {
        return;
    };
    let read = lmdb_fuzzing::read_data_mdb(file, &LMDB_SEEKS);
    verdict(&read, "lmdb_fuzzing::read_data_mdb");
    let records = read.map_or(0, |(records, _)| records);
    if records > file.len() / 8 + 2 {
        finding(
            "lmdb_fuzzing::read_data_mdb",
            &format!("{records} records from {} bytes", file.len()),
        );
    }
}

/// `leveldb_format`: byte 0 & 3 picks table, log, MANIFEST or all three; bytes 1.. the file.
pub fn leveldb(data: &[u8]) {
    let Some((&which, file)) = data.split_first() else {
        return;
    };
    let which = which & 3;
    if which == 0 || which == 3 {
        verdict(&check_leveldb_table(file), "check_leveldb_table");
    }
    if which == 1 || which == 3 {
        verdict(&check_leveldb_log(file, true), "check_leveldb_log (log)");
    }
    if which == 2 || which == 3 {
        verdict(
            &check_leveldb_log(file, false),
            "check_leveldb_log (MANIFEST)",
        );
    }
}
