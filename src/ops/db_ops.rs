//! DB operators: `CreateDB` (a `DbReader` blob), `TensorProtosDBInput` (batches from a reader,
//! prefetched by background threads), `DBExists`. The DB-reader blob type lives here too.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::db::{
    BatchAssembler, BatchReader, DbReader, MAX_BATCH_SIZE, MAX_PREFETCH_DEPTH,
    MAX_PREFETCH_THREADS, Mode, REGISTERED, check_prefetch_settings, open_db,
};
use crate::error::{C2rsError, Result};
use crate::operator::{OpBase, OpSchema, Operator, Registry};
use crate::tensor::{DataType, Tensor};
use crate::workspace::BlobNative;

use super::FnOperator;

impl BlobNative for DbReader {
    const TYPE_NAME: &'static str = "std::unique_ptr<caffe2::db::DBReader>";
}

/// `<root folder>/<db>` unless `absolute_path` (Caffe2's path rule for Save/Load/DBExists).
pub(crate) fn db_path(base: &OpBase, db: &str) -> Result<String> {
    if base.single_arg::<bool>("absolute_path", false)? {
        Ok(db.to_string())
    } else {
        Ok(format!("{}/{db}", base.workspace()?.root_folder()))
    }
}

/// `CreateDB`: opens `db` (used as given) of `db_type` for shard `shard_id` of `num_shards`
/// and stores the reader in the output. Every run opens a fresh reader at the beginning.
fn create_db(base: &OpBase) -> Result<bool> {
    let db_type = base.single_arg::<String>("db_type", "leveldb".to_string())?;
    let db = base.single_arg::<String>("db", String::new())?;
    let num_shards = base.single_arg::<u32>("num_shards", 1)?;
    let shard_id = base.single_arg::<u32>("shard_id", 0)?;
    let reader = DbReader::open(&db_type, &db, num_shards, shard_id)?;
    base.output(0)?.set_native(Arc::new(reader));
    Ok(true)
}

/// `DBExists`: a scalar BOOL, true iff `db_name` opens for reading as `db_type`. An unknown
/// type is an error, not `false` (Caffe2 answered true).
fn db_exists(base: &OpBase) -> Result<bool> {
    let db_type = base.single_arg::<String>("db_type", "leveldb".to_string())?;
    let db_name = base.single_arg::<String>("db_name", String::new())?;
    let path = db_path(base, &db_name)?;
    let exists = if REGISTERED.contains(&db_type.as_str()) {
        open_db(&db_type, &path, Mode::Read).is_ok()
    } else {
        // Unknown or not-built type: report that error.
        open_db(&db_type, &path, Mode::Read)?;
        true
    };
    base.set_output_tensor(
        0,
        Tensor::from_slice(DataType::Bool, &[], &[u8::from(exists)])?,
    )?;
    Ok(true)
}

/// The running prefetcher and the reader it reads from.
struct Prefetch {
    reader: Arc<DbReader>,
    batches: BatchReader,
}

/// `TensorProtosDBInput`: one input (a DB reader), one output per tensor of a record.
/// `batch_size` 0 gives one record's own tensors; B > 0 gives `[B] + dims` per output, all B
/// records agreeing in dims and dtype. Prefetching starts on the first run: `prefetch_depth`
/// batches (default 1) are decoded ahead by `num_decode_threads` threads (default 1), in
/// record order; `no_prefetch` reads inline. `batch_size`, `prefetch_depth` and
/// `num_decode_threads` are limited to `MAX_BATCH_SIZE`, `MAX_PREFETCH_DEPTH` and
/// `MAX_PREFETCH_THREADS` (an enforce error at creation above them). A batch is allocated only
/// after every record of it showed a payload that can fill its row. An error (naming the
/// record key) is returned by the run that would have received that batch and by every later
/// run. Dropping the operator stops and joins its threads.
pub struct TensorProtosDbInput {
    base: OpBase,
    assembler: BatchAssembler,
    depth: usize,
    threads: usize,
    /// The prefetcher, created on the first run and re-created when the input blob holds
    /// another reader (a re-run `CreateDB`). Held for the whole of `run`: runs are serialised.
    state: Mutex<Option<Prefetch>>,
}

impl TensorProtosDbInput {
    fn new(base: OpBase) -> Result<Self> {
        let batch_size = base.single_arg::<i64>("batch_size", 0)?;
        let batch_size = usize::try_from(batch_size).map_err(|_| {
            C2rsError::enforce(format!("batch_size must be >= 0, got {batch_size}"))
        })?;
        let no_prefetch = base.single_arg::<bool>("no_prefetch", false)?;
        let depth = base.single_arg::<i64>("prefetch_depth", 1)?;
        let threads = base.single_arg::<i64>("num_decode_threads", 1)?;
        if depth < 1 || threads < 1 {
            return Err(C2rsError::enforce(format!(
                "prefetch_depth ({depth}) and num_decode_threads ({threads}) must be >= 1"
            )));
        }
        // Positive i64 values; anything beyond usize is beyond the maximums too.
        let (depth, threads) = (
            usize::try_from(depth).unwrap_or(usize::MAX),
            usize::try_from(threads).unwrap_or(usize::MAX),
        );
        check_prefetch_settings(
            batch_size,
            depth,
            threads,
            ["batch_size", "prefetch_depth", "num_decode_threads"],
        )
        .map_err(|m| C2rsError::enforce(format!("TensorProtosDBInput: {m}")))?;
        let assembler = BatchAssembler {
            batch_size,
            num_outputs: base.num_outputs(),
        };
        Ok(Self {
            base,
            assembler,
            depth,
            threads: if no_prefetch { 0 } else { threads },
            state: Mutex::new(None),
        })
    }
}

impl Operator for TensorProtosDbInput {
    fn base(&self) -> &OpBase {
        &self.base
    }

    fn run(&self) -> Result<bool> {
        let reader = self.base.input(0)?.native::<DbReader>().map_err(|e| {
            e.context(format!(
                "input {} of TensorProtosDBInput",
                self.base.input_name(0)
            ))
        })?;
        let mut state = self.state.lock();
        let stale = state
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(&p.reader, &reader));
        if stale {
            // Stop the old workers before starting new ones on the new reader.
            *state = None;
            let batches = BatchReader::new(
                Arc::clone(&reader),
                self.assembler,
                self.depth,
                self.threads,
            )?;
            *state = Some(Prefetch { reader, batches });
        }
        let Some(prefetch) = state.as_ref() else {
            return Err(C2rsError::internal("prefetcher missing after creation"));
        };
        let batch = prefetch.batches.next()?;
        for (i, t) in batch.into_iter().enumerate() {
            self.base.set_output_tensor(i, t)?;
        }
        Ok(true)
    }
}

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        OpSchema::new("CreateDB")
            .num_inputs(0)
            .num_outputs(1)
            .set_doc(
                "Opens a DB for reading and outputs a DBReader on the first record of its shard. \
                 Every run opens a fresh reader at the beginning.",
            )
            .typed_arg(
                "db",
                "string",
                "(none: required)",
                "Required (checked when the operator is created). Path of the DB (used as given: no root folder is prepended).",
            )
            .typed_arg(
                "db_type",
                "string",
                "leveldb",
                "DB type: minidb, lmdb or leveldb (either spelling, e.g. LMDB).",
            )
            .typed_arg(
                "num_shards",
                "int",
                "1",
                "Number of shards the records are split into; reads take every num_shards-th \
                 record.",
            )
            .typed_arg(
                "shard_id",
                "int",
                "0",
                "This reader's shard, 0 <= shard_id < num_shards.",
            )
            .output(
                0,
                "reader",
                "A DBReader blob (shared by the operators that read it).",
            )
            .caffe2_differences(
                "An unknown db_type and a DB that fails to open are distinct errors naming the \
                 cause; a missing db is refused when the operator is created.",
            ),
        |base| {
            if base.single_arg::<String>("db", String::new())?.is_empty() {
                return Err(C2rsError::enforce("Must specify a db name."));
            }
            base.single_arg::<String>("db_type", String::new())?;
            base.single_arg::<u32>("num_shards", 1)?;
            base.single_arg::<u32>("shard_id", 0)?;
            Ok(FnOperator::boxed(base, create_db))
        },
    )?;
    registry.register(
        OpSchema::new("TensorProtosDBInput")
            .num_inputs(1)
            .num_outputs_range(1, usize::MAX)
            .set_doc(
                "Reads records of serialized TensorProtos from a DBReader into one output per \
                 tensor of a record, `batch_size` records per run, prefetched in the \
                 background. The stream wraps around at the end of the DB.",
            )
            .typed_arg(
                "batch_size",
                "int",
                "0",
                format!(
                    "Records per run. 0: one record per run, each output with that record's \
                     own dims. B > 0: output i has dims [B] + dims of tensor i, and all B \
                     records must agree in dims and dtype per output. At most {MAX_BATCH_SIZE}."
                ),
            )
            .typed_arg(
                "no_prefetch",
                "bool",
                "false",
                "Read and assemble inside the run instead of on background threads.",
            )
            .typed_arg(
                "prefetch_depth",
                "int",
                "1",
                format!("Batches prepared ahead (at most {MAX_PREFETCH_DEPTH})."),
            )
            .typed_arg(
                "num_decode_threads",
                "int",
                "1",
                format!(
                    "Threads decoding batches in parallel, delivered in record order (at most \
                     {MAX_PREFETCH_THREADS})."
                ),
            )
            .input(
                0,
                "reader",
                "A DBReader (from CreateDB, Load's inputs, or a host source).",
            )
            .output(
                0,
                "data",
                "One output per tensor of a record (variadic): tensor i of the records, \
                 batched.",
            )
            .caffe2_differences(
                "Every record of a batch is checked against the first for dims and dtype (Caffe2 \
                 only had a debug check and could corrupt memory); dims are int64; a record \
                 whose tensor count differs from the outputs is named with a hint when it looks \
                 like a Caffe Datum; prefetch_depth and num_decode_threads are new; a \
                 prefetch error stays (every later run fails) as Caffe2's did.",
            ),
        |base| Ok(Box::new(TensorProtosDbInput::new(base)?) as Box<dyn Operator>),
    )?;
    registry.register(
        OpSchema::new("DBExists")
            .num_inputs(0)
            .num_outputs(1)
            .set_doc("Outputs a scalar BOOL: whether db_name opens for reading as db_type.")
            .typed_arg(
                "db_name",
                "string",
                "\"\"",
                "Path of the DB (relative to the workspace root folder unless absolute_path).",
            )
            .typed_arg(
                "db_type",
                "string",
                "leveldb",
                "DB type: minidb, lmdb or leveldb.",
            )
            .typed_arg(
                "absolute_path",
                "bool",
                "false",
                "Use db_name as given instead of under the workspace root folder.",
            )
            .output(0, "exists", "BOOL scalar.")
            .caffe2_differences("An unknown db_type is an error (Caffe2 answered true)."),
        |base| {
            base.single_arg::<String>("db_name", String::new())?;
            base.single_arg::<bool>("absolute_path", false)?;
            Ok(FnOperator::boxed(base, db_exists))
        },
    )?;
    Ok(())
}
