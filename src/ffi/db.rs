//! Databases (minidb, LMDB): open, iterate with cursors, write with transactions, and the
//! shared sharded reader.

use std::ffi::c_char;
use std::sync::Arc;

use super::guard::{array_arg, byte_slice, ffi_fn, ffi_fn_or, name_arg, out_param};
use super::handle::{
    arc_ref, c2rs_batch_reader, c2rs_buffer, c2rs_db, c2rs_db_cursor, c2rs_db_reader,
    c2rs_db_transaction, c2rs_tensor_list, c2rs_workspace, free_handle, handle_mut, handle_ref,
    into_handle,
};
use crate::db::{BatchAssembler, BatchReader, DbReader, Mode, open_db};
use crate::error::C2rsError;
use crate::proto::BlobProto;
use crate::workspace::serialize::{
    DB_READER_PROTO_TYPE, db_reader_from_proto, db_reader_to_proto, deserialize_blob,
    serialize_blob_to_proto,
};
use prost::Message;

/// Open for reading existing records (Caffe2 `db::READ`).
pub const C2RS_DB_READ: i32 = 0;
/// Open for appending (Caffe2 `db::WRITE`).
pub const C2RS_DB_WRITE: i32 = 1;
/// Create: truncate a minidb file, create a new LMDB directory, a new LevelDB (refused when
/// its directory holds one) (Caffe2 `db::NEW`).
pub const C2RS_DB_NEW: i32 = 2;

/// Opens `source` as a database of `db_type` ("minidb"/"MiniDB": a file; "lmdb"/"LMDB" and
/// "leveldb"/"LevelDB": a directory) in `mode` (C2RS_DB_READ, C2RS_DB_WRITE or C2RS_DB_NEW).
/// A LevelDB is opened once per process (every open of one directory shares it) and is
/// locked against other processes (its LOCK file); opening it writes to its directory.
///
/// LMDB is read (READ mode, and every cursor) by caffe2rs's own reader of LMDB 0.9's file
/// format, never by liblmdb: every page is checked before it is used, so a damaged or
/// truncated `data.mdb` is C2RS_PARSE_ERROR naming the file and the fault, never a crash or a
/// hang. WRITE and NEW write through liblmdb, after checking an existing file's meta pages.
/// Readers take no lock (as Caffe2's): a writer in another process may change what an open
/// cursor reads (it then fails or reads other records). The one case left: a `data.mdb`
/// truncated by another process while a cursor maps it raises SIGBUS, as for any mapped file.
///
/// Ownership: the strings are only read; on success the caller owns `*out` (`c2rs_db_free`).
/// Thread safety: safe from any thread; the DB handle may be shared by threads that only
/// create cursors and transactions.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for NULL or non-UTF-8 arguments, a bad `mode` or an
/// LMDB or LevelDB source that is a file; C2RS_NOT_FOUND for an unknown `db_type` (the message
/// lists the registered ones) or a missing file or directory; C2RS_ALREADY_EXISTS for a
/// LevelDB opened NEW over an existing one; C2RS_UNSUPPORTED for types this build lacks
/// (rocksdb, zmqdb) and for LMDB files with sorted duplicates; C2RS_PARSE_ERROR for a damaged
/// LevelDB, or an LMDB `data.mdb` whose meta pages are damaged or that is truncated;
/// C2RS_IO_ERROR when the OS refuses the open or another process holds the LevelDB. Messages
/// read
/// "Cannot open db: <source> of type <type>: <reason>".
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_open(
    db_type: *const c_char,
    source: *const c_char,
    mode: i32,
    out: *mut *mut c2rs_db,
) -> i32 {
    ffi_fn!("c2rs_db_open", {
        let out = out_param(out, "out")?;
        let db_type = name_arg(db_type, "db_type")?;
        let source = name_arg(source, "source")?;
        let mode = Mode::try_from(mode).map_err(|e| {
            C2rsError::invalid_argument(format!("argument `mode`: {}", e.message()))
        })?;
        out.set(into_handle(open_db(db_type, source, mode)?));
        Ok(())
    })
}

/// Closes `db`. Cursors and transactions made from it stay valid until freed.
///
/// Ownership: `db` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `db` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_db_free(db: *mut c2rs_db) {
    ffi_fn_or!("c2rs_db_free", (), {
        free_handle(db);
        Ok(())
    })
}

/// A cursor on the first record of `db` (invalid when the DB is empty). minidb allows one live
/// cursor or transaction per DB at a time; LMDB cursors read a consistent snapshot.
///
/// Ownership: the caller owns `*out` (`c2rs_db_cursor_free`).
/// Thread safety: safe on a shared `db`; a cursor is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `db` or `out` is NULL; C2RS_ENFORCE_NOT_MET
/// when a minidb is busy or open for writing; C2RS_PARSE_ERROR for a corrupt first record
/// (LMDB: any damaged page on the way to it; the message names `data.mdb` and the page);
/// C2RS_UNSUPPORTED for an LMDB record of a named sub-database; C2RS_IO_ERROR on read failures.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_cursor_new(db: *const c2rs_db, out: *mut *mut c2rs_db_cursor) -> i32 {
    ffi_fn!("c2rs_db_cursor_new", {
        let out = out_param(out, "out")?;
        out.set(into_handle(handle_ref(db, "db")?.new_cursor()?));
        Ok(())
    })
}

/// Whether the cursor rests on a record.
///
/// Thread safety: read-only; the cursor is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `cursor` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_cursor_valid(cursor: *const c2rs_db_cursor, out: *mut bool) -> i32 {
    ffi_fn!("c2rs_db_cursor_valid", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(cursor, "cursor")?.valid());
        Ok(())
    })
}

/// Whether `c2rs_db_cursor_seek` works on this cursor (LMDB yes, minidb no).
///
/// Thread safety: read-only; the cursor is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `cursor` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_cursor_supports_seek(
    cursor: *const c2rs_db_cursor,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_db_cursor_supports_seek", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(cursor, "cursor")?.supports_seek());
        Ok(())
    })
}

/// Moves to the next record; the cursor becomes invalid past the last one, and after a failed
/// move. LMDB keys strictly increase along a cursor (a damaged file that breaks the order is a
/// C2RS_PARSE_ERROR), so a walk from the first record always ends.
///
/// Thread safety: the cursor is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `cursor` is NULL; C2RS_PARSE_ERROR for a
/// corrupt or truncated record (the message names the file and the offset or LMDB page);
/// C2RS_UNSUPPORTED for an LMDB record of a named sub-database; C2RS_IO_ERROR.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_cursor_next(cursor: *mut c2rs_db_cursor) -> i32 {
    ffi_fn!("c2rs_db_cursor_next", {
        handle_mut(cursor, "cursor")?.next()
    })
}

/// Moves to the first record.
///
/// Thread safety: the cursor is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `cursor` is NULL; C2RS_PARSE_ERROR or
/// C2RS_IO_ERROR as for `c2rs_db_cursor_next`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_cursor_seek_to_first(cursor: *mut c2rs_db_cursor) -> i32 {
    ffi_fn!("c2rs_db_cursor_seek_to_first", {
        handle_mut(cursor, "cursor")?.seek_to_first()
    })
}

/// Moves to the first record whose key is ≥ the `len` bytes at `key` (bytewise order; an
/// empty key means the first record); invalid when there is none.
///
/// Thread safety: the cursor is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `cursor` is NULL or `key` is NULL with
/// `len > 0`; C2RS_UNSUPPORTED for minidb, which cannot seek; C2RS_PARSE_ERROR or
/// C2RS_IO_ERROR as for `c2rs_db_cursor_next` (a damaged LMDB page or record included).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_cursor_seek(
    cursor: *mut c2rs_db_cursor,
    key: *const u8,
    len: usize,
) -> i32 {
    ffi_fn!("c2rs_db_cursor_seek", {
        let key = byte_slice(key, len, "key")?;
        handle_mut(cursor, "cursor")?.seek(key)
    })
}

/// Key of the current record: `*len` bytes at `*ptr` (empty when the cursor is invalid).
///
/// Borrowed: valid until the cursor moves or is freed.
/// Thread safety: read-only; the cursor is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `cursor`, `ptr` or `len` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_cursor_key(
    cursor: *const c2rs_db_cursor,
    ptr: *mut *const u8,
    len: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_db_cursor_key", {
        let (ptr, len) = (out_param(ptr, "ptr")?, out_param(len, "len")?);
        let key = handle_ref(cursor, "cursor")?.key();
        ptr.set(key.as_ptr());
        len.set(key.len());
        Ok(())
    })
}

/// Value of the current record: `*len` bytes at `*ptr` (empty when the cursor is invalid).
///
/// Borrowed: valid until the cursor moves or is freed.
/// Thread safety: read-only; the cursor is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `cursor`, `ptr` or `len` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_cursor_value(
    cursor: *const c2rs_db_cursor,
    ptr: *mut *const u8,
    len: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_db_cursor_value", {
        let (ptr, len) = (out_param(ptr, "ptr")?, out_param(len, "len")?);
        let value = handle_ref(cursor, "cursor")?.value();
        ptr.set(value.as_ptr());
        len.set(value.len());
        Ok(())
    })
}

/// Releases `cursor` (and, for minidb, lets the DB make another cursor or transaction).
///
/// Ownership: `cursor` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `cursor` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_db_cursor_free(cursor: *mut c2rs_db_cursor) {
    ffi_fn_or!("c2rs_db_cursor_free", (), {
        free_handle(cursor);
        Ok(())
    })
}

/// A write transaction on `db` (opened WRITE or NEW).
///
/// Ownership: the caller owns `*out` (`c2rs_db_transaction_free`, which commits).
/// Thread safety: safe on a shared `db`; a transaction is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `db` or `out` is NULL; C2RS_ENFORCE_NOT_MET
/// when the DB was opened READ or a minidb is busy; C2RS_IO_ERROR.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_transaction_new(
    db: *const c2rs_db,
    out: *mut *mut c2rs_db_transaction,
) -> i32 {
    ffi_fn!("c2rs_db_transaction_new", {
        let out = out_param(out, "out")?;
        out.set(into_handle(handle_ref(db, "db")?.new_transaction()?));
        Ok(())
    })
}

/// Adds a record (copies of both byte strings). Not visible to readers until committed.
///
/// Thread safety: the transaction is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `txn` is NULL or a pointer is NULL with a
/// non-zero length; C2RS_ENFORCE_NOT_MET for an empty key or value (minidb), an empty key or a
/// key over 511 bytes (LMDB); C2RS_IO_ERROR.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_transaction_put(
    txn: *mut c2rs_db_transaction,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
) -> i32 {
    ffi_fn!("c2rs_db_transaction_put", {
        let key = byte_slice(key, key_len, "key")?;
        let value = byte_slice(value, value_len, "value")?;
        handle_mut(txn, "txn")?.put(key, value)
    })
}

/// Commits what was put (minidb: flushed to the file) and keeps the transaction usable.
///
/// Thread safety: the transaction is used by one thread at a time.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `txn` is NULL; C2RS_IO_ERROR when the write
/// fails (the records stay pending for LMDB).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_transaction_commit(txn: *mut c2rs_db_transaction) -> i32 {
    ffi_fn!("c2rs_db_transaction_commit", {
        handle_mut(txn, "txn")?.commit()
    })
}

/// Commits what is pending and releases `txn`. A commit failure here cannot be reported:
/// call `c2rs_db_transaction_commit` first to see it.
///
/// Ownership: `txn` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `txn` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_db_transaction_free(txn: *mut c2rs_db_transaction) {
    ffi_fn_or!("c2rs_db_transaction_free", (), {
        free_handle(txn);
        Ok(())
    })
}

/// Opens a reader over `source` for shard `shard_id` of `num_shards`: record i goes to shard
/// i mod num_shards; reading past the end silently wraps to the shard's first record.
///
/// Ownership: the caller owns `*out` (`c2rs_db_reader_free`).
/// Thread safety: safe from any thread; the reader itself is fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for NULL or non-UTF-8 arguments;
/// C2RS_ENFORCE_NOT_MET when `num_shards` is 0, `shard_id >= num_shards` or the DB has fewer
/// rows than `shard_id`; the statuses of `c2rs_db_open` for open failures.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_reader_new(
    db_type: *const c_char,
    source: *const c_char,
    num_shards: u32,
    shard_id: u32,
    out: *mut *mut c2rs_db_reader,
) -> i32 {
    ffi_fn!("c2rs_db_reader_new", {
        let out = out_param(out, "out")?;
        let db_type = name_arg(db_type, "db_type")?;
        let source = name_arg(source, "source")?;
        out.set(into_handle(Arc::new(DbReader::open(
            db_type, source, num_shards, shard_id,
        )?)));
        Ok(())
    })
}

/// Reads the next record of the reader's shard: copies of its key and value. Concurrent
/// callers each get a different record.
///
/// Ownership: on success the caller owns `*key` and `*value` (`c2rs_buffer_free`).
/// Thread safety: fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when an argument is NULL; C2RS_ENFORCE_NOT_MET
/// when the DB is empty ("Cursor is at invalid location!"); C2RS_PARSE_ERROR or C2RS_IO_ERROR
/// for a corrupt or unreadable DB.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_reader_read(
    reader: *const c2rs_db_reader,
    key: *mut *mut c2rs_buffer,
    value: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_db_reader_read", {
        let (key_out, value_out) = (out_param(key, "key")?, out_param(value, "value")?);
        let (k, v) = handle_ref(reader, "reader")?.read()?;
        key_out.set(into_handle(k));
        value_out.set(into_handle(v));
        Ok(())
    })
}

/// Releases this handle's reference to the reader (blobs holding it keep it alive).
///
/// Ownership: `reader` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use this handle concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_db_reader_free(reader: *mut c2rs_db_reader) {
    ffi_fn_or!("c2rs_db_reader_free", (), {
        free_handle(reader);
        Ok(())
    })
}

/// Most records per batch `c2rs_batch_reader_new` (and TensorProtosDBInput's `batch_size`)
/// accepts.
pub const C2RS_MAX_BATCH_SIZE: usize = 1 << 24;
/// Most prefetch threads `c2rs_batch_reader_new` (and TensorProtosDBInput's
/// `num_decode_threads`) accepts.
pub const C2RS_MAX_PREFETCH_THREADS: usize = 256;
/// Most batches prepared ahead that `c2rs_batch_reader_new` (and TensorProtosDBInput's
/// `prefetch_depth`) accepts.
pub const C2RS_MAX_PREFETCH_DEPTH: usize = 1024;

const _: () = {
    assert!(C2RS_MAX_BATCH_SIZE == crate::db::MAX_BATCH_SIZE);
    assert!(C2RS_MAX_PREFETCH_THREADS == crate::db::MAX_PREFETCH_THREADS);
    assert!(C2RS_MAX_PREFETCH_DEPTH == crate::db::MAX_PREFETCH_DEPTH);
};

/// A prefetching batch reader: `num_threads` workers read records (serialized TensorProtos)
/// from `reader` and assemble up to `depth` batches ahead, in record order. With
/// `batch_size` B > 0 each batch holds `num_outputs` tensors of shape `[B] + record dims`; all
/// B records must agree in dims and dtype per output. With B = 0 a batch is one record's own
/// tensors. `num_threads == 0` reads inline in `c2rs_batch_reader_next` (no prefetch).
///
/// Ownership: `reader` is shared, not consumed (the caller still frees its handle); on
/// success the caller owns `*out` (`c2rs_batch_reader_free`).
/// Thread safety: safe from any thread; `c2rs_batch_reader_next` may be called from several
/// threads (each batch goes to one caller).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `reader` or `out` is NULL, `num_outputs` is
/// 0, `depth` is 0 with threads, or `batch_size`, `depth` or `num_threads` exceeds
/// C2RS_MAX_BATCH_SIZE, C2RS_MAX_PREFETCH_DEPTH or C2RS_MAX_PREFETCH_THREADS; C2RS_IO_ERROR
/// when the OS refuses a thread (the threads already started are stopped first).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_batch_reader_new(
    reader: *const c2rs_db_reader,
    batch_size: usize,
    num_outputs: usize,
    depth: usize,
    num_threads: usize,
    out: *mut *mut c2rs_batch_reader,
) -> i32 {
    ffi_fn!("c2rs_batch_reader_new", {
        let out = out_param(out, "out")?;
        let reader = handle_ref(reader, "reader")?.clone();
        if num_outputs == 0 {
            return Err(C2rsError::invalid_argument(
                "argument `num_outputs` must be at least 1",
            ));
        }
        let assembler = BatchAssembler {
            batch_size,
            num_outputs,
        };
        out.set(into_handle(BatchReader::new(
            reader,
            assembler,
            depth,
            num_threads,
        )?));
        Ok(())
    })
}

/// The next batch, in record order, blocking until it is ready.
///
/// Ownership: on success the caller owns `*out` (`c2rs_tensor_list_free`).
/// Thread safety: fully thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `br` or `out` is NULL; for a bad record
/// C2RS_ENFORCE_NOT_MET (tensor count or dims/dtype mismatch) or C2RS_PARSE_ERROR (bytes),
/// with the record's key in the message. After a failure every later call returns the same
/// error (the reader stays failed, as Caffe2's prefetching ops did).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_batch_reader_next(
    br: *const c2rs_batch_reader,
    out: *mut *mut c2rs_tensor_list,
) -> i32 {
    ffi_fn!("c2rs_batch_reader_next", {
        let out = out_param(out, "out")?;
        out.set(into_handle(handle_ref(br, "br")?.next()?));
        Ok(())
    })
}

/// Stops the workers (after the batch each is decoding), joins them and releases `br`.
///
/// Ownership: `br` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `br` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_batch_reader_free(br: *mut c2rs_batch_reader) {
    ffi_fn_or!("c2rs_batch_reader_free", (), {
        free_handle(br);
        Ok(())
    })
}

/// Assembles one batch from `n` records the host holds in memory (serialized TensorProtos
/// values, as TensorProtosDBInput reads them), without a DB: with `batch_size` B > 0, `n` must
/// be B and the batch holds `num_outputs` tensors of shape `[B] + record dims` (all records
/// agreeing in dims and dtype per output); with B = 0, `n` must be 1 and the batch is that
/// record's own tensors. `keys` (nullable) name the records in error messages.
///
/// Ownership: the records are only read; on success the caller owns `*out`
/// (`c2rs_tensor_list_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` or `values`/`value_lens` is NULL with
/// `n > 0`, a value is NULL with a non-zero length, `num_outputs` is 0, or `n` is not the
/// batch's record count (`batch_size`, 1 when `batch_size` is 0); for a bad record
/// C2RS_ENFORCE_NOT_MET (tensor count or dims/dtype mismatch) or C2RS_PARSE_ERROR (bytes),
/// naming the record's key; C2RS_INTERNAL when memory runs out.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_batch_assemble(
    keys: *const *const c_char,
    values: *const *const u8,
    value_lens: *const usize,
    n: usize,
    batch_size: usize,
    num_outputs: usize,
    out: *mut *mut c2rs_tensor_list,
) -> i32 {
    ffi_fn!("c2rs_batch_assemble", {
        let out = out_param(out, "out")?;
        if num_outputs == 0 {
            return Err(C2rsError::invalid_argument(
                "argument `num_outputs` must be at least 1",
            ));
        }
        let assembler = BatchAssembler {
            batch_size,
            num_outputs,
        };
        // The caller's count: checked here, before the assembler (which treats a mismatch
        // from its own callers as a broken invariant).
        if n != assembler.records_per_batch() {
            return Err(C2rsError::invalid_argument(format!(
                "argument `n` is {n}, but a batch of batch_size {batch_size} takes {} record(s)",
                assembler.records_per_batch()
            )));
        }
        let values = array_arg(values, n, "values")?;
        let lens = array_arg(value_lens, n, "value_lens")?;
        let keys = if keys.is_null() {
            None
        } else {
            Some(array_arg(keys, n, "keys")?)
        };
        let mut records: Vec<(Vec<u8>, &[u8])> = Vec::new();
        records.try_reserve_exact(n).map_err(|_| {
            C2rsError::internal(format!("out of memory allocating the list of {n} records"))
        })?;
        for i in 0..n {
            let key = match keys {
                Some(k) => name_arg(k[i], &format!("keys[{i}]"))?.as_bytes().to_vec(),
                None => format!("#{i}").into_bytes(),
            };
            records.push((
                key,
                byte_slice(values[i], lens[i], &format!("values[{i}]"))?,
            ));
        }
        out.set(into_handle(assembler.assemble_borrowed(&records)?));
        Ok(())
    })
}

/// The DB reader held by blob `name` of `ws` (made by the CreateDB operator, or stored with
/// `c2rs_workspace_set_db_reader`): reading from it consumes records the workspace's
/// operators would otherwise read.
///
/// Ownership: on success the caller owns `*out` (`c2rs_db_reader_free`), one reference to the
/// reader the blob shares.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible; C2RS_TYPE_MISMATCH when it holds no DB reader.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_db_reader(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut c2rs_db_reader,
) -> i32 {
    ffi_fn!("c2rs_workspace_db_reader", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let blob = ws
            .get_blob(name)
            .ok_or_else(|| C2rsError::not_found(format!("Can't find blob: {name}")))?;
        out.set(into_handle(blob.native::<DbReader>()?));
        Ok(())
    })
}

/// Stores `reader` in blob `name` of `ws` (created if missing), replacing its content, so
/// operators (TensorProtosDBInput, Load) can read from a reader the host opened.
///
/// Ownership: `reader` is shared, not consumed (the caller still frees its handle).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when `name` is forwarded to a parent blob that no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_set_db_reader(
    ws: *const c2rs_workspace,
    name: *const c_char,
    reader: *const c2rs_db_reader,
) -> i32 {
    ffi_fn!("c2rs_workspace_set_db_reader", {
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let reader = handle_ref(reader, "reader")?.clone();
        let blob = ws.create_blob(name).ok_or_else(|| {
            C2rsError::not_found(format!(
                "blob {name} is forwarded to a parent blob that no longer exists"
            ))
        })?;
        blob.set_native(reader);
        Ok(())
    })
}

/// Serializes `reader` as Caffe2 does: a BlobProto named `name` of type "DBReader" whose
/// content is a DBReaderProto {name, source, db_type, key}; `key` (the record the next read
/// returns) only when the cursor can seek (LMDB, not minidb). Shard settings are not stored.
///
/// Ownership: on success the caller owns `*out` (`c2rs_buffer_free`).
/// Thread safety: fully thread-safe (waits for a concurrent read to finish).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_reader_serialize(
    reader: *const c2rs_db_reader,
    name: *const c_char,
    out: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_db_reader_serialize", {
        let out = out_param(out, "out")?;
        let reader = handle_ref(reader, "reader")?;
        let name = name_arg(name, "name")?;
        out.set(into_handle(
            db_reader_to_proto(name, reader)?.encode_to_vec(),
        ));
        Ok(())
    })
}

/// Opens the reader a serialized BlobProto of type "DBReader" describes (shard 0 of 1) and
/// seeks to its key, if it has one.
///
/// Ownership: the bytes are only read; on success the caller owns `*out`
/// (`c2rs_db_reader_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `bytes` is NULL with
/// `len > 0`; C2RS_PARSE_ERROR when the bytes are not such a BlobProto; C2RS_ENFORCE_NOT_MET
/// when the type is not "DBReader" or a key is given for a DB that cannot seek; the statuses
/// of `c2rs_db_open` for open failures.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_db_reader_deserialize(
    bytes: *const u8,
    len: usize,
    out: *mut *mut c2rs_db_reader,
) -> i32 {
    ffi_fn!("c2rs_db_reader_deserialize", {
        let out = out_param(out, "out")?;
        let bytes = byte_slice(bytes, len, "bytes")?;
        let proto = BlobProto::decode(bytes)
            .map_err(|e| C2rsError::parse(format!("bytes are not a valid BlobProto: {e}")))?;
        if proto.r#type.as_deref() != Some(DB_READER_PROTO_TYPE) {
            return Err(C2rsError::enforce(format!(
                "BlobProto type is {:?}, not \"DBReader\"",
                proto.r#type.as_deref().unwrap_or("")
            )));
        }
        let reader = db_reader_from_proto(proto.content.as_deref().unwrap_or(&[]))?;
        out.set(into_handle(Arc::new(reader)));
        Ok(())
    })
}

/// Serializes blob `name` of `ws` as one BlobProto, unchunked (Caffe2's `Blob::Serialize`):
/// tensors as type "Tensor" (full dims, segment, CPU device_detail), byte strings as
/// "std::string", DB readers as "DBReader".
///
/// Ownership: on success the caller owns `*out` (`c2rs_buffer_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible; C2RS_ENFORCE_NOT_MET when the blob is empty
/// or holds an object without a serializer.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_serialize_blob(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_workspace_serialize_blob", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let blob = ws
            .get_blob(name)
            .ok_or_else(|| C2rsError::not_found(format!("Can't find blob: {name}")))?;
        let content = blob.read().clone();
        out.set(into_handle(
            serialize_blob_to_proto(name, &content)?.encode_to_vec(),
        ));
        Ok(())
    })
}

/// Deserializes a BlobProto ("Tensor", "std::string" or "DBReader") into blob `name` of `ws`
/// (created if missing), replacing its content. A tensor chunk fills its segment of a fresh
/// zeroed tensor of the full dims, at most C2RS_MAX_IMPLICIT_ZERO_BYTES of zeros outside it
/// (chunked tensors are loaded with the Load operator, which assembles them).
///
/// Ownership: the bytes are only read.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL (`bytes` may be NULL when
/// `len` is 0) or `name` is not UTF-8; C2RS_PARSE_ERROR for bytes that are not a consistent
/// BlobProto; C2RS_ENFORCE_NOT_MET for a type without a deserializer ("No registered
/// deserializer for type <t>"); the statuses of `c2rs_db_open` for a DBReader that cannot open.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_deserialize_blob(
    ws: *const c2rs_workspace,
    name: *const c_char,
    bytes: *const u8,
    len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_deserialize_blob", {
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let bytes = byte_slice(bytes, len, "bytes")?;
        let proto = BlobProto::decode(bytes)
            .map_err(|e| C2rsError::parse(format!("bytes are not a valid BlobProto: {e}")))?;
        let blob = ws.create_blob(name).ok_or_else(|| {
            C2rsError::not_found(format!(
                "blob {name} is forwarded to a parent blob that no longer exists"
            ))
        })?;
        deserialize_blob(proto, &blob, true)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::buffer::{c2rs_buffer_data, c2rs_buffer_free, c2rs_buffer_len};
    use crate::ffi::status::*;

    fn temp(name: &str) -> std::ffi::CString {
        let p = std::env::temp_dir().join(format!("c2rs-ffi-db-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::remove_file(&p);
        std::ffi::CString::new(p.to_string_lossy().into_owned()).unwrap()
    }

    #[test]
    fn write_then_read_records_through_the_c_abi() {
        let path = temp("rw");
        let mut db = std::ptr::null_mut();
        assert_eq!(
            c2rs_db_open(c"minidb".as_ptr(), path.as_ptr(), C2RS_DB_NEW, &mut db),
            C2RS_OK
        );
        let mut txn = std::ptr::null_mut();
        assert_eq!(c2rs_db_transaction_new(db, &mut txn), C2RS_OK);
        for (k, v) in [(&b"k1"[..], &b"v1"[..]), (b"k2", b"v\x002")] {
            assert_eq!(
                c2rs_db_transaction_put(txn, k.as_ptr(), k.len(), v.as_ptr(), v.len()),
                C2RS_OK
            );
        }
        assert_eq!(
            c2rs_db_transaction_put(txn, std::ptr::null(), 0, b"v".as_ptr(), 1),
            C2RS_ENFORCE_NOT_MET
        );
        assert_eq!(c2rs_db_transaction_commit(txn), C2RS_OK);
        c2rs_db_transaction_free(txn);
        c2rs_db_free(db);

        let mut reader = std::ptr::null_mut();
        assert_eq!(
            c2rs_db_reader_new(c"minidb".as_ptr(), path.as_ptr(), 1, 0, &mut reader),
            C2RS_OK
        );
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (mut k, mut v) = (std::ptr::null_mut(), std::ptr::null_mut());
            assert_eq!(c2rs_db_reader_read(reader, &mut k, &mut v), C2RS_OK);
            // SAFETY: live buffers of the stated lengths.
            unsafe {
                seen.push((
                    std::slice::from_raw_parts(c2rs_buffer_data(k), c2rs_buffer_len(k)).to_vec(),
                    std::slice::from_raw_parts(c2rs_buffer_data(v), c2rs_buffer_len(v)).to_vec(),
                ));
            }
            c2rs_buffer_free(k);
            c2rs_buffer_free(v);
        }
        assert_eq!(
            seen,
            vec![
                (b"k1".to_vec(), b"v1".to_vec()),
                (b"k2".to_vec(), b"v\x002".to_vec()),
                (b"k1".to_vec(), b"v1".to_vec())
            ]
        );
        c2rs_db_reader_free(reader);
    }

    #[test]
    fn open_failures_say_which_failure() {
        let mut db = std::ptr::null_mut();
        assert_eq!(
            c2rs_db_open(
                c"nosuchdb".as_ptr(),
                c"/tmp/x".as_ptr(),
                C2RS_DB_READ,
                &mut db
            ),
            C2RS_NOT_FOUND
        );
        assert_eq!(
            c2rs_db_open(
                c"minidb".as_ptr(),
                c"/nonexistent/x".as_ptr(),
                C2RS_DB_READ,
                &mut db
            ),
            C2RS_NOT_FOUND
        );
        assert_eq!(
            c2rs_db_open(c"minidb".as_ptr(), c"/tmp/x".as_ptr(), 7, &mut db),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_db_open(std::ptr::null(), c"/tmp/x".as_ptr(), 0, &mut db),
            C2RS_INVALID_ARGUMENT
        );
        assert!(db.is_null());
        c2rs_db_free(std::ptr::null_mut());
        c2rs_db_cursor_free(std::ptr::null_mut());
        c2rs_db_transaction_free(std::ptr::null_mut());
        c2rs_db_reader_free(std::ptr::null_mut());
    }

    #[test]
    fn cursor_walks_and_seeks_lmdb() {
        let path = temp("lmdb");
        let mut db = std::ptr::null_mut();
        assert_eq!(
            c2rs_db_open(c"lmdb".as_ptr(), path.as_ptr(), C2RS_DB_NEW, &mut db),
            C2RS_OK
        );
        let mut txn = std::ptr::null_mut();
        assert_eq!(c2rs_db_transaction_new(db, &mut txn), C2RS_OK);
        for k in ["b", "a", "c"] {
            assert_eq!(
                c2rs_db_transaction_put(txn, k.as_ptr(), 1, k.as_ptr(), 1),
                C2RS_OK
            );
        }
        c2rs_db_transaction_free(txn);
        let mut cursor = std::ptr::null_mut();
        assert_eq!(c2rs_db_cursor_new(db, &mut cursor), C2RS_OK);
        let key = |c| {
            let (mut p, mut n) = (std::ptr::null(), 0);
            assert_eq!(c2rs_db_cursor_key(c, &mut p, &mut n), C2RS_OK);
            // SAFETY: borrowed key bytes of a live cursor.
            unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
        };
        assert_eq!(key(cursor), b"a");
        assert_eq!(c2rs_db_cursor_seek(cursor, b"bb".as_ptr(), 2), C2RS_OK);
        assert_eq!(key(cursor), b"c");
        assert_eq!(c2rs_db_cursor_next(cursor), C2RS_OK);
        let mut valid = true;
        assert_eq!(c2rs_db_cursor_valid(cursor, &mut valid), C2RS_OK);
        assert!(!valid);
        c2rs_db_cursor_free(cursor);
        c2rs_db_free(db);
    }

    #[test]
    fn readers_move_between_workspace_blobs_and_bytes() {
        use crate::ffi::workspace::{c2rs_workspace_free, c2rs_workspace_new_with_root};
        let path = temp("lmdb-ser");
        let db = open_db("lmdb", path.to_str().unwrap(), Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        for k in ["a", "b", "c"] {
            t.put(k.as_bytes(), k.as_bytes()).unwrap();
        }
        t.commit().unwrap();
        drop(t);
        drop(db);
        let mut ws = std::ptr::null_mut();
        assert_eq!(
            c2rs_workspace_new_with_root(std::ptr::null_mut(), c"/tmp".as_ptr(), &mut ws),
            C2RS_OK
        );
        let mut reader = std::ptr::null_mut();
        assert_eq!(
            c2rs_db_reader_new(c"lmdb".as_ptr(), path.as_ptr(), 1, 0, &mut reader),
            C2RS_OK
        );
        assert_eq!(
            c2rs_workspace_set_db_reader(ws, c"r".as_ptr(), reader),
            C2RS_OK
        );
        let mut again = std::ptr::null_mut();
        assert_eq!(
            c2rs_workspace_db_reader(ws, c"r".as_ptr(), &mut again),
            C2RS_OK
        );
        // Both handles share one reader: a read through one advances the other.
        let (mut k, mut v) = (std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(c2rs_db_reader_read(again, &mut k, &mut v), C2RS_OK);
        c2rs_buffer_free(k);
        c2rs_buffer_free(v);
        let mut bytes = std::ptr::null_mut();
        assert_eq!(
            c2rs_db_reader_serialize(reader, c"saved".as_ptr(), &mut bytes),
            C2RS_OK
        );
        let mut restored = std::ptr::null_mut();
        let (data, len) = (c2rs_buffer_data(bytes), c2rs_buffer_len(bytes));
        assert_eq!(
            c2rs_db_reader_deserialize(data, len, &mut restored),
            C2RS_OK
        );
        assert_eq!(
            c2rs_workspace_deserialize_blob(ws, c"copy".as_ptr(), data, len),
            C2RS_OK
        );
        let mut ser = std::ptr::null_mut();
        assert_eq!(
            c2rs_workspace_serialize_blob(ws, c"copy".as_ptr(), &mut ser),
            C2RS_OK
        );
        c2rs_buffer_free(ser);
        c2rs_buffer_free(bytes);
        assert_eq!(
            handle_ref(restored, "r").unwrap().read().unwrap().0,
            b"b".to_vec()
        );
        // Errors: missing blob, garbage bytes, NULLs.
        let mut none = std::ptr::null_mut();
        let mut none_buf = std::ptr::null_mut();
        assert_eq!(
            c2rs_workspace_db_reader(ws, c"nope".as_ptr(), &mut none),
            C2RS_NOT_FOUND
        );
        assert_eq!(
            c2rs_workspace_serialize_blob(ws, c"nope".as_ptr(), &mut none_buf),
            C2RS_NOT_FOUND
        );
        assert_eq!(
            c2rs_db_reader_deserialize(b"\xff".as_ptr(), 1, &mut none),
            C2RS_PARSE_ERROR
        );
        assert_eq!(
            c2rs_db_reader_deserialize(std::ptr::null(), 0, &mut none),
            C2RS_ENFORCE_NOT_MET
        );
        assert_eq!(
            c2rs_workspace_set_db_reader(ws, c"r".as_ptr(), std::ptr::null()),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_db_reader_serialize(reader, c"x".as_ptr(), std::ptr::null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_db_reader_free(reader);
        c2rs_db_reader_free(again);
        c2rs_db_reader_free(restored);
        c2rs_workspace_free(ws);
    }

    #[test]
    fn batches_assemble_from_host_records_and_name_bad_keys() {
        use crate::proto::TensorProtos;
        use crate::tensor::{DataType, Tensor, tensor_to_proto};
        let rec = |dims: &[i64]| {
            let n = dims.iter().product::<i64>() as usize;
            let t = Tensor::from_slice(DataType::Float, dims, &vec![1f32; n]).unwrap();
            TensorProtos {
                protos: vec![tensor_to_proto(&t).unwrap()],
            }
            .encode_to_vec()
        };
        let (a, b) = (rec(&[2]), rec(&[3]));
        let values = [a.as_ptr(), a.as_ptr()];
        let lens = [a.len(), a.len()];
        let mut out = std::ptr::null_mut();
        assert_eq!(
            c2rs_batch_assemble(
                std::ptr::null(),
                values.as_ptr(),
                lens.as_ptr(),
                2,
                2,
                1,
                &mut out
            ),
            C2RS_OK
        );
        assert_eq!(handle_ref(out, "out").unwrap()[0].dims(), &[2, 2]);
        free_handle(out);
        let values = [a.as_ptr(), b.as_ptr()];
        let lens = [a.len(), b.len()];
        let keys = [c"first".as_ptr(), c"second".as_ptr()];
        let mut bad = std::ptr::null_mut();
        assert_eq!(
            c2rs_batch_assemble(
                keys.as_ptr(),
                values.as_ptr(),
                lens.as_ptr(),
                2,
                2,
                1,
                &mut bad
            ),
            C2RS_ENFORCE_NOT_MET
        );
        assert!(bad.is_null());
        assert_eq!(
            c2rs_batch_assemble(
                std::ptr::null(),
                std::ptr::null(),
                lens.as_ptr(),
                2,
                2,
                1,
                &mut bad
            ),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_batch_assemble(
                std::ptr::null(),
                values.as_ptr(),
                lens.as_ptr(),
                2,
                2,
                0,
                &mut bad
            ),
            C2RS_INVALID_ARGUMENT
        );
    }

    #[test]
    fn batch_assemble_refuses_a_record_count_other_than_the_batch_takes_as_an_argument_error() {
        use crate::ffi::version::c2rs_last_error_message;
        let value = [0u8; 0];
        let values = [value.as_ptr(), value.as_ptr()];
        let lens = [0usize, 0];
        // (n, batch_size, records the batch takes)
        for (n, batch_size, takes) in [(1, 2, 2), (2, 0, 1), (0, 0, 1), (2, 3, 3)] {
            let mut out = std::ptr::null_mut();
            let st = c2rs_batch_assemble(
                std::ptr::null(),
                values.as_ptr(),
                lens.as_ptr(),
                n,
                batch_size,
                1,
                &mut out,
            );
            assert_eq!(st, C2RS_INVALID_ARGUMENT, "n {n}, batch_size {batch_size}");
            assert!(out.is_null());
            // SAFETY: the library's thread-local message, read right after the call.
            let message = unsafe { std::ffi::CStr::from_ptr(c2rs_last_error_message()) };
            assert_eq!(
                message.to_str().unwrap(),
                format!(
                    "c2rs_batch_assemble: argument `n` is {n}, but a batch of batch_size \
                     {batch_size} takes {takes} record(s)"
                )
            );
        }
    }
}
