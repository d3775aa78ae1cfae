//! Checkpoint operators: `Save`, `Load`, `Checkpoint` (alias `Snapshot`), reading and writing
//! DBs of `BlobProto` records that C++ Caffe2 reads and writes (shared/spec/data-input.md §6).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use prost::Message;

use super::db_ops::db_path;
use crate::db::{Cursor, DbReader, Mode, open_db};
use crate::error::{C2rsError, Result};
use crate::operator::{OpBase, OpSchema, Operator, Registry};
use crate::proto::BlobProto;
use crate::tensor::DataType;
use crate::workspace::Blob;
use crate::workspace::serialize::{
    CHUNK_SEPARATOR, TENSOR_PROTO_TYPE, TensorAssembly, TensorChunk, chunk_size_from_arg,
    deserialize_blob, serialize_blob,
};

/// What `Save` writes: DB, type, record names and chunking, fixed at construction.
struct SaveSpec {
    db: String,
    db_type: String,
    names: Vec<String>,
    chunk_size: usize,
}

impl SaveSpec {
    /// Reads Save's arguments (`db`, `db_type`, `strip_prefix`, `blob_name_overrides`,
    /// `chunk_size`) and the names every input is saved under.
    fn new(base: &OpBase, skip_inputs: usize) -> Result<Self> {
        let db = base.single_arg::<String>("db", String::new())?;
        if db.is_empty() {
            return Err(C2rsError::enforce("Must specify a db name."));
        }
        let db_type = base.single_arg::<String>("db_type", String::new())?;
        if db_type.is_empty() {
            return Err(C2rsError::enforce("Must specify a db type."));
        }
        base.single_arg::<bool>("absolute_path", false)?;
        let strip_prefix = base.single_arg::<String>("strip_prefix", String::new())?;
        let overrides = base.repeated_arg::<String>("blob_name_overrides")?;
        let chunk_size = chunk_size_from_arg(base.single_arg::<i64>("chunk_size", -1)?)?;
        let inputs: Vec<&str> = (skip_inputs..base.num_inputs())
            .map(|i| base.input_name(i))
            .collect();
        let names: Vec<String> = if base.has_argument("blob_name_overrides") {
            if !strip_prefix.is_empty() {
                return Err(C2rsError::enforce(
                    "strip_prefix and blob_name_overrides are mutually exclusive.",
                ));
            }
            if overrides.len() != inputs.len() {
                return Err(C2rsError::enforce(format!(
                    "Number of blobs and blob_name_overrides mismatch: {} inputs, {} overrides",
                    inputs.len(),
                    overrides.len()
                )));
            }
            overrides
        } else {
            inputs
                .iter()
                .map(|n| strip(n, &strip_prefix).to_string())
                .collect()
        };
        let mut seen = BTreeSet::new();
        for n in &names {
            if n.is_empty() {
                return Err(C2rsError::enforce("Blob name to save must not be empty."));
            }
            if !seen.insert(n.as_str()) {
                return Err(C2rsError::enforce(format!("Duplicated input: {n}")));
            }
        }
        Ok(Self {
            db,
            db_type,
            names,
            chunk_size,
        })
    }

    /// Writes inputs `skip_inputs..` to `path` (truncating it), one record per chunk, in a
    /// deterministic order: blob order, then chunk order.
    fn save(&self, base: &OpBase, path: &str, skip_inputs: usize) -> Result<()> {
        let db = open_db(&self.db_type, path, Mode::New)?;
        let mut txn = db.new_transaction()?;
        for (name, blob) in self.names.iter().zip(&base.inputs()[skip_inputs..]) {
            let content = blob.read().clone();
            serialize_blob(name, &content, self.chunk_size, |key, value| {
                txn.put(key.as_bytes(), &value)
            })
            .map_err(|e| e.context(format!("Save: blob {name}")))?;
            txn.commit()?;
        }
        txn.commit()
    }
}

/// The part of `name` after the first occurrence of `prefix` (unchanged when absent or empty).
/// The blob name in a Save key: the key without its chunk suffix `#%<decimal digits>`, which
/// Save appends to every tensor chunk. Only that trailing suffix is cut, so a name that itself
/// contains `#%` comes back whole (Caffe2 cut at the first `#%` and lost the rest of such a
/// name). A key without the suffix is the name itself (non-tensor blobs; a non-tensor blob
/// whose own name ends in `#%<digits>` is the one case that still reads shorter).
fn chunk_base(key: &str) -> &str {
    match key.rsplit_once(CHUNK_SEPARATOR) {
        Some((base, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}

fn strip<'a>(name: &'a str, prefix: &str) -> &'a str {
    if prefix.is_empty() {
        return name;
    }
    match name.find(prefix) {
        Some(i) => &name[i + prefix.len()..],
        None => name,
    }
}

/// `Save`: writes every input to a new DB.
struct SaveOp {
    base: OpBase,
    spec: SaveSpec,
}

impl Operator for SaveOp {
    fn base(&self) -> &OpBase {
        &self.base
    }
    fn run(&self) -> Result<bool> {
        let path = db_path(&self.base, &self.spec.db)?;
        self.spec.save(&self.base, &path, 0)?;
        Ok(true)
    }
}

/// `Checkpoint`: every `every` iterations, `Save` of all inputs (the iteration included) to
/// the DB named by the printf pattern `db` applied to the iteration.
struct CheckpointOp {
    base: OpBase,
    spec: SaveSpec,
    pattern: Pattern,
    every: i64,
}

impl Operator for CheckpointOp {
    fn base(&self) -> &OpBase {
        &self.base
    }
    fn run(&self) -> Result<bool> {
        let iter_tensor = self.base.input_tensor(0)?;
        if iter_tensor.dtype() != DataType::Int64 || iter_tensor.numel() != 1 {
            return Err(C2rsError::enforce(format!(
                "Checkpoint: input {} must be an INT64 scalar (the iteration), got {} {:?}",
                self.base.input_name(0),
                iter_tensor.dtype(),
                iter_tensor.dims()
            )));
        }
        let iter = iter_tensor.typed::<i64>()?[0];
        if iter % self.every != 0 {
            return Ok(true);
        }
        let name = self.pattern.format(iter)?;
        let path = db_path(&self.base, &name)?;
        self.spec.save(&self.base, &path, 0)?;
        Ok(true)
    }
}

/// A printf pattern with exactly one integer conversion (`%d`, `%i`, `%ld`, `%lld`, with flags
/// and width such as `%08d`) and any number of `%%`.
struct Pattern {
    before: String,
    after: String,
    flags: String,
    width: usize,
}

impl Pattern {
    fn parse(pattern: &str) -> Result<Self> {
        let bad = || {
            C2rsError::enforce(format!(
                "Checkpoint: db pattern {pattern:?} must contain exactly one integer conversion \
                 (%d, %i, %ld, %lld with optional flags and width) and otherwise only %%"
            ))
        };
        let chars: Vec<char> = pattern.chars().collect();
        let mut before = String::new();
        let mut after = String::new();
        let mut conversion: Option<(String, usize)> = None;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let out = if conversion.is_some() {
                &mut after
            } else {
                &mut before
            };
            if c != '%' {
                out.push(c);
                i += 1;
                continue;
            }
            if chars.get(i + 1) == Some(&'%') {
                out.push('%');
                i += 2;
                continue;
            }
            if conversion.is_some() {
                return Err(bad());
            }
            let mut j = i + 1;
            let mut flags = String::new();
            while let Some(&f @ ('-' | '+' | ' ' | '0' | '#')) = chars.get(j) {
                flags.push(f);
                j += 1;
            }
            let mut width = String::new();
            while let Some(&d) = chars.get(j).filter(|d| d.is_ascii_digit()) {
                width.push(d);
                j += 1;
            }
            let mut longs = 0;
            while chars.get(j) == Some(&'l') {
                longs += 1;
                j += 1;
            }
            if longs > 2 || !matches!(chars.get(j), Some('d' | 'i')) {
                return Err(bad());
            }
            let width = if width.is_empty() {
                0
            } else {
                width.parse().map_err(|_| bad())?
            };
            conversion = Some((flags, width));
            i = j + 1;
        }
        let (flags, width) = conversion.ok_or_else(bad)?;
        Ok(Self {
            before,
            after,
            flags,
            width,
        })
    }

    fn format(&self, v: i64) -> Result<String> {
        let left = self.flags.contains('-');
        let zero = self.flags.contains('0') && !left;
        let sign = if v < 0 {
            "-"
        } else if self.flags.contains('+') {
            "+"
        } else if self.flags.contains(' ') {
            " "
        } else {
            ""
        };
        let digits = v.unsigned_abs().to_string();
        let len = sign.len() + digits.len();
        let pad = self.width.saturating_sub(len);
        if pad > 1024 {
            return Err(C2rsError::enforce(
                "Checkpoint: db name is 1024 bytes or longer",
            ));
        }
        let number = if left {
            format!("{sign}{digits}{}", " ".repeat(pad))
        } else if zero {
            format!("{sign}{}{digits}", "0".repeat(pad))
        } else {
            format!("{}{sign}{digits}", " ".repeat(pad))
        };
        let name = format!("{}{number}{}", self.before, self.after);
        if name.len() >= 1024 {
            return Err(C2rsError::enforce(format!(
                "Checkpoint: db name for iteration {v} is {} bytes, the limit is 1023",
                name.len()
            )));
        }
        Ok(name)
    }
}

/// Load progress of one blob.
#[derive(Default)]
struct BlobState {
    /// Tensor blobs: the chunks received so far (the blob is set once they are complete).
    tensor: Option<TensorAssembly>,
    /// Chunked content: expected chunk count and chunk ids seen.
    num_chunks: Option<i32>,
    chunk_ids: BTreeSet<i32>,
    /// Other blobs: seen once.
    seen: bool,
}

impl BlobState {
    fn complete(&self) -> bool {
        if let Some(t) = &self.tensor {
            t.is_complete()
        } else if let Some(n) = self.num_chunks {
            self.chunk_ids.len() == n as usize
        } else {
            self.seen
        }
    }

    /// Adds one tensor chunk of the blob; the first chunk of a blob in this run starts a new
    /// tensor. Sets `blob` when the tensor is complete.
    fn add_tensor_chunk(&mut self, chunk: TensorChunk, first: bool, blob: &Blob) -> Result<()> {
        if first {
            self.tensor = Some(TensorAssembly::new(&chunk));
        }
        let Some(assembly) = self.tensor.as_mut() else {
            return Err(C2rsError::enforce(
                "a tensor chunk follows a blob that is not a tensor",
            ));
        };
        if !chunk.had_segment && assembly.received() != 0 {
            return Err(C2rsError::enforce(
                "the blob is chunked but a chunk has no segment info",
            ));
        }
        let was_complete = assembly.is_complete() && !first;
        assembly.add(chunk)?;
        if assembly.is_complete() && !was_complete {
            blob.set_tensor(assembly.tensor()?);
        }
        Ok(())
    }
}

/// `Load`: reads blobs from DBReader inputs (from their current position) or from `db`/`dbs`.
struct LoadOp {
    base: OpBase,
    db_type: String,
    db_names: Vec<String>,
    add_prefix: String,
    strip_prefix: String,
    load_all: bool,
    allow_incomplete: bool,
    /// Blob name (after key mapping) → output index; empty with `load_all`.
    output_indices: HashMap<String, usize>,
}

impl LoadOp {
    fn new(base: OpBase) -> Result<Self> {
        let db_type = base.single_arg::<String>("db_type", String::new())?;
        let db = base.single_arg::<String>("db", String::new())?;
        let dbs = base.repeated_arg::<String>("dbs")?;
        let add_prefix = base.single_arg::<String>("add_prefix", String::new())?;
        let strip_prefix = base.single_arg::<String>("strip_prefix", String::new())?;
        base.single_arg::<bool>("keep_device", false)?;
        base.single_arg::<bool>("absolute_path", false)?;
        let load_all = base.single_arg::<bool>("load_all", false)?;
        let allow_incomplete = base.single_arg::<bool>("allow_incomplete", false)?;
        let source_names = base.repeated_arg::<String>("source_blob_names")?;
        let mut db_names = Vec::new();
        if base.num_inputs() == 0 {
            if db_type.is_empty() {
                return Err(C2rsError::enforce("Must specify a db type."));
            }
            if dbs.is_empty() {
                if db.is_empty() {
                    return Err(C2rsError::enforce("Must specify a db name."));
                }
                db_names.push(db);
            } else {
                let mut seen = BTreeSet::new();
                for d in dbs {
                    if d.is_empty() {
                        return Err(C2rsError::enforce("Db name should not be empty."));
                    }
                    if !seen.insert(d.clone()) {
                        return Err(C2rsError::enforce(format!("Duplicated db name: {d}")));
                    }
                    db_names.push(d);
                }
            }
        }
        if !source_names.is_empty() {
            if source_names.len() != base.num_outputs() {
                return Err(C2rsError::enforce(
                    "Number of output blobs and source_blob_names mismatch.",
                ));
            }
            if !strip_prefix.is_empty() {
                return Err(C2rsError::enforce(
                    "strip_prefix and source_blob_names are mutually exclusive.",
                ));
            }
            if load_all {
                return Err(C2rsError::enforce(
                    "cannot load_all while using source_blob_names.",
                ));
            }
        }
        let mut output_indices = HashMap::new();
        let mut outputs_seen = BTreeSet::new();
        for i in 0..base.num_outputs() {
            let out = base.output_name(i);
            if !outputs_seen.insert(out.to_string()) {
                return Err(C2rsError::enforce(format!("Duplicated output: {out}")));
            }
            if !load_all {
                let name = source_names.get(i).map_or(out, String::as_str);
                if output_indices.insert(name.to_string(), i).is_some() {
                    return Err(C2rsError::enforce(format!(
                        "Duplicated source blob name: {name}"
                    )));
                }
            }
        }
        Ok(Self {
            base,
            db_type,
            db_names,
            add_prefix,
            strip_prefix,
            load_all,
            allow_incomplete,
            output_indices,
        })
    }

    /// Key → blob name: drop the chunk suffix (`chunk_base`), strip up to and including
    /// `strip_prefix`, prepend `add_prefix`.
    fn blob_name(&self, key: &[u8]) -> Result<String> {
        let key = std::str::from_utf8(key).map_err(|_| {
            C2rsError::enforce(format!(
                "Load: key is not valid UTF-8: {}",
                key.escape_ascii()
            ))
        })?;
        let base = chunk_base(key);
        Ok(format!(
            "{}{}",
            self.add_prefix,
            strip(base, &self.strip_prefix)
        ))
    }

    /// Loads the records of one cursor (from its current position) with DB id `db_id`.
    #[allow(clippy::too_many_arguments)]
    fn extract(
        &self,
        cursor: &mut dyn Cursor,
        db_id: usize,
        states: &mut BTreeMap<String, BlobState>,
        key_db: &mut HashMap<String, usize>,
        loaded: &mut usize,
        source: &str,
    ) -> Result<()> {
        let ws = self.base.workspace()?;
        while cursor.valid() {
            if !self.load_all && *loaded == self.base.num_outputs() {
                break;
            }
            let name = self.blob_name(cursor.key())?;
            let blob: Option<Arc<Blob>> = if self.load_all {
                ws.create_blob(&name)
            } else {
                self.output_indices
                    .get(&name)
                    .map(|&i| Arc::clone(&self.base.outputs()[i]))
            };
            let Some(blob) = blob else {
                cursor.next()?;
                continue;
            };
            if let Some(&other) = key_db.get(&name) {
                if other != db_id {
                    return Err(C2rsError::enforce(format!(
                        "Duplicate Key {name} is found!"
                    )));
                }
            } else {
                key_db.insert(name.clone(), db_id);
            }
            let proto = BlobProto::decode(cursor.value()).map_err(|e| {
                C2rsError::parse(format!(
                    "Load: record {} of {source} is not a BlobProto: {e}",
                    cursor.key().escape_ascii()
                ))
            })?;
            let first = !states.contains_key(&name);
            let state = states.entry(name.clone()).or_default();
            let was_complete = !first && state.complete();
            let context = |e: C2rsError| e.context(format!("Load: blob {name} from {source}"));
            match proto.r#type.as_deref() {
                Some(TENSOR_PROTO_TYPE) => {
                    let tensor = proto.tensor.ok_or_else(|| {
                        context(C2rsError::parse(
                            "BlobProto of type Tensor has no tensor field",
                        ))
                    })?;
                    let chunk = TensorChunk::decode(tensor).map_err(context)?;
                    state
                        .add_tensor_chunk(chunk, first, &blob)
                        .map_err(context)?;
                }
                _ => {
                    let (num_chunks, chunk_id) = (proto.content_num_chunks, proto.content_chunk_id);
                    deserialize_blob(proto, &blob, first).map_err(context)?;
                    match num_chunks {
                        Some(n) if n > 0 => {
                            let id = chunk_id.unwrap_or(0);
                            if !(0..n).contains(&id) {
                                return Err(C2rsError::enforce(format!(
                                    "Blob {name}: content chunk id {id} outside [0, {n})"
                                )));
                            }
                            state.num_chunks = Some(n);
                            state.chunk_ids.insert(id);
                        }
                        _ => state.seen = true,
                    }
                }
            }
            if !was_complete && state.complete() {
                *loaded += 1;
            }
            cursor.next()?;
        }
        Ok(())
    }
}

impl Operator for LoadOp {
    fn base(&self) -> &OpBase {
        &self.base
    }

    fn run(&self) -> Result<bool> {
        let mut states = BTreeMap::new();
        let mut key_db = HashMap::new();
        let mut loaded = 0usize;
        if self.base.num_inputs() > 0 {
            for (i, input) in self.base.inputs().iter().enumerate() {
                let reader = input
                    .native::<DbReader>()
                    .map_err(|e| e.context(format!("Load: input {}", self.base.input_name(i))))?;
                let source = reader.source().to_string();
                reader.with_cursor(|c| {
                    self.extract(c, i, &mut states, &mut key_db, &mut loaded, &source)
                })?;
            }
        } else {
            for (i, name) in self.db_names.iter().enumerate() {
                let path = db_path(&self.base, name)?;
                let db = open_db(&self.db_type, &path, Mode::Read)?;
                let mut cursor = db.new_cursor()?;
                self.extract(
                    cursor.as_mut(),
                    i,
                    &mut states,
                    &mut key_db,
                    &mut loaded,
                    &path,
                )?;
            }
        }
        for (name, state) in &states {
            if !state.complete() {
                return Err(C2rsError::enforce(format!(
                    "Data size mismatch for blob {name}"
                )));
            }
        }
        if !self.load_all && loaded < self.base.num_outputs() && !self.allow_incomplete {
            let missing: Vec<&str> = self
                .output_indices
                .keys()
                .filter(|n| !states.get(*n).is_some_and(BlobState::complete))
                .map(String::as_str)
                .collect();
            let mut missing = missing;
            missing.sort_unstable();
            return Err(C2rsError::enforce(format!(
                "Expected to load {} blobs, got {loaded} only. Missing: {}",
                self.base.num_outputs(),
                missing.join(", ")
            )));
        }
        Ok(true)
    }
}

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        OpSchema::new("Save")
            .num_inputs_range(1, usize::MAX)
            .num_outputs(0)
            .set_doc(
                "Saves the inputs to a new DB (truncated or created) as BlobProto records, one \
                 per chunk of chunk_size elements under the key <name>#%<chunk index>.",
            )
            .typed_arg(
                "db",
                "string",
                "(none: required)",
                "Required (checked when the operator is created). Path of the DB (under the workspace root folder unless absolute_path).",
            )
            .typed_arg(
                "db_type",
                "string",
                "(none: required)",
                "Required (checked when the operator is created). DB type: minidb, lmdb or leveldb.")
            .typed_arg(
                "absolute_path",
                "bool",
                "false",
                "Use db as given instead of under the workspace root folder.",
            )
            .typed_arg(
                "strip_prefix",
                "string",
                "\"\"",
                "Saved names drop everything up to and including the first occurrence of this \
                 text (names without it are kept). Exclusive with blob_name_overrides.",
            )
            .typed_arg(
                "blob_name_overrides",
                "string[]",
                "[]",
                "Names to save the inputs under, one per input, in order. Exclusive with \
                 strip_prefix.",
            )
            .typed_arg(
                "chunk_size",
                "int",
                "-1",
                "Elements per chunk: -1 the default (1 000 000), 0 no chunking, > 0 that many.",
            )
            .input(0, "blobs", "The blobs to save (variadic, at least one).")
            .caffe2_differences(
                "Record order is deterministic (Caffe2 wrote chunks from parallel workers); \
                 duplicated or empty saved names are refused at creation; CPU tensors carry \
                 device_detail {device_type: 0} as later Caffe2 wrote.",
            ),
        |base| {
            let spec = SaveSpec::new(&base, 0)?;
            Ok(Box::new(SaveOp { base, spec }) as Box<dyn Operator>)
        },
    )?;
    registry.register(
        OpSchema::new("Load")
            .set_doc(
                "Loads blobs saved by Save (BlobProto records, chunked tensors reassembled) from \
                 DBReader inputs, read from their current position, or from the DB(s) named by \
                 db / dbs. Keys map to blob names by cutting the #% chunk suffix, applying \
                 strip_prefix and add_prefix; without load_all only the outputs are loaded and \
                 reading stops once they are complete.",
            )
            .typed_arg(
                "db",
                "string",
                "\"\"",
                "The DB to load from when there are no inputs (under the root folder unless \
                 absolute_path).",
            )
            .typed_arg(
                "dbs",
                "string[]",
                "[]",
                "Several DBs to load from (no duplicates); a key found in two of them is an \
                 error.",
            )
            .typed_arg(
                "db_type",
                "string",
                "\"\"",
                "DB type of db / dbs; required when there are no DBReader inputs.",
            )
            .typed_arg(
                "absolute_path",
                "bool",
                "false",
                "Use db / dbs as given instead of under the workspace root folder.",
            )
            .typed_arg(
                "add_prefix",
                "string",
                "\"\"",
                "Prepended to every loaded blob name.",
            )
            .typed_arg(
                "strip_prefix",
                "string",
                "\"\"",
                "Dropped (with everything before its first occurrence) from every key. \
                 Exclusive with source_blob_names.",
            )
            .typed_arg(
                "keep_device",
                "bool",
                "false",
                "Keep each tensor's saved device; otherwise it is loaded to the op's device.",
            )
            .typed_arg(
                "load_all",
                "bool",
                "false",
                "Load every blob of the DB(s), not only the outputs.",
            )
            .typed_arg(
                "allow_incomplete",
                "bool",
                "false",
                "Succeed when some outputs were not found (each missing name is logged).",
            )
            .typed_arg(
                "source_blob_names",
                "string[]",
                "[]",
                "The saved names to load into the outputs, one per output. Exclusive with \
                 strip_prefix and load_all.",
            )
            .input(
                0,
                "readers",
                "Optional DBReaders (variadic), read from their current position.",
            )
            .output(
                0,
                "blobs",
                "The blobs to load (variadic; none with load_all).",
            )
            .caffe2_differences(
                "A key that is not UTF-8 is an error naming it (blob names are UTF-8); \
                 incomplete chunked blobs are \"Data size mismatch\" errors; outputs listed \
                 twice are refused at creation.",
            ),
        |base| Ok(Box::new(LoadOp::new(base)?) as Box<dyn Operator>),
    )?;
    for name in ["Checkpoint", "Snapshot"] {
        registry.register(
            OpSchema::new(name)
                .num_inputs_range(1, usize::MAX)
                .num_outputs(0)
                .set_doc("Saves all inputs (iteration first) every `every` iterations to the DB named by the printf pattern `db`.")
                .typed_arg(
                "db",
                "string",
                "(none: required)",
                "Required (checked when the operator is created). printf pattern of the DB path with one integer conversion for the \
                     iteration (e.g. ckpt_%05d.minidb; %% for a percent sign).",
                )
                .typed_arg(
                "db_type",
                "string",
                "(none: required)",
                "Required (checked when the operator is created). DB type: minidb, lmdb or leveldb.")
                .typed_arg(
                    "every",
                    "int",
                    "1",
                    "Save when iteration % every == 0 (must be >= 1).",
                )
                .typed_arg(
                    "absolute_path",
                    "bool",
                    "false",
                    "Use the formatted path as given instead of under the root folder.",
                )
                .typed_arg(
                    "strip_prefix",
                    "string",
                    "\"\"",
                    "As Save's strip_prefix.",
                )
                .typed_arg(
                    "blob_name_overrides",
                    "string[]",
                    "[]",
                    "As Save's blob_name_overrides.",
                )
                .typed_arg("chunk_size", "int", "-1", "As Save's chunk_size.")
                .input(0, "iter", "The iteration: an INT64 CPU scalar (saved too).")
                .caffe2_differences(
                    "The pattern must hold exactly one integer conversion; a path of 1024 bytes \
                     or more is an error (Caffe2 aborted).",
                ),
            |base| {
                let pattern = Pattern::parse(&base.single_arg::<String>("db", String::new())?)?;
                let every = base.single_arg::<i64>("every", 1)?;
                if every < 1 {
                    return Err(C2rsError::enforce(format!(
                        "Checkpoint interval should be positive, got every = {every}"
                    )));
                }
                let spec = SaveSpec::new(&base, 0)?;
                Ok(Box::new(CheckpointOp {
                    base,
                    spec,
                    pattern,
                    every,
                }) as Box<dyn Operator>)
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_patterns_take_one_integer_conversion() {
        let p = Pattern::parse("ckpt_%05d.%%minidb").unwrap();
        assert_eq!(p.format(42).unwrap(), "ckpt_00042.%minidb");
        assert_eq!(Pattern::parse("a%lld").unwrap().format(-3).unwrap(), "a-3");
        assert_eq!(Pattern::parse("%-4i|").unwrap().format(7).unwrap(), "7   |");
        assert_eq!(Pattern::parse("%3ld").unwrap().format(7).unwrap(), "  7");
        for bad in ["plain", "%d%d", "%s", "%f", "%llld", "%"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}%d", "x".repeat(1020));
        assert!(Pattern::parse(&long).unwrap().format(12345).is_err());
        assert!(Pattern::parse("%2000d").unwrap().format(1).is_err());
    }

    #[test]
    fn chunk_suffix_is_cut_only_at_the_end() {
        assert_eq!(chunk_base("w#%0"), "w");
        assert_eq!(chunk_base("w#%12"), "w");
        assert_eq!(chunk_base("a#%b#%3"), "a#%b");
        assert_eq!(chunk_base("a#%b"), "a#%b");
        assert_eq!(chunk_base("a#%"), "a#%");
        assert_eq!(chunk_base("a#%1x"), "a#%1x");
        assert_eq!(chunk_base("\0é#%0"), "\0é");
        assert_eq!(chunk_base("plain"), "plain");
    }

    #[test]
    fn strip_prefix_cuts_after_the_first_occurrence() {
        assert_eq!(strip("gpu_0/fc_w", "gpu_0/"), "fc_w");
        assert_eq!(strip("a/b/a/c", "a/"), "b/a/c");
        assert_eq!(strip("fc_w", "gpu_0/"), "fc_w");
        assert_eq!(strip("fc_w", ""), "fc_w");
    }
}
