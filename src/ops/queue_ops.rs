//! BlobsQueue operators (spec queues.md §3): `CreateBlobsQueue`, `EnqueueBlobs`,
//! `DequeueBlobs`, `CloseBlobsQueue`, `SafeEnqueueBlobs`, `SafeDequeueBlobs`,
//! `WeightedSampleDequeueBlobs` and `CreateBlobsQueueDB`.
//!
//! The queue blob holds an `Arc<BlobQueue>`; every run clones it first (Caffe2's "keeper"), so
//! resetting the handle blob while an operator blocks is safe. Records move by swapping the
//! caller's blob contents with the queue's slots (zero copy; the slot keeps the consumer's
//! previous content for the next producer, Caffe2's ping-pong). No blob lock is held while an
//! operator waits: each caller blob is locked only for its swap, while the queue holds the
//! record's claim.
//!
//! Slot contents live in the queue itself (`queue::Slot`), not in workspace blobs: that is
//! what lets a record move through the lock-free ring without a blob lock per column. For
//! queues small enough to be a preallocated ring, the `<name>_<i>_<j>` blobs Caffe2 created
//! are still created, empty, as name reservations (so `enforce_unique_name` and hosts that
//! look for them behave as before); they no longer show the queued contents.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::context::{CpuContext, DeviceSpec};
use crate::db::{Cursor, Db, DbReader, Transaction};
use crate::error::{C2rsError, Result};
use crate::operator::{DEVICE_CUDA, OpBase, OpSchema, Operator, Registry};
use crate::queue::{BlobsQueue, Outcome, Slot};
use crate::tensor::rows::concat_rows;
use crate::tensor::{DataType, Tensor};
use crate::workspace::{Blob, BlobContent, BlobNative, Workspace};

/// The queue a `CreateBlobsQueue` output blob holds.
pub type BlobQueue = BlobsQueue<Slot>;

impl BlobNative for BlobQueue {
    const TYPE_NAME: &'static str = "std::shared_ptr<caffe2::BlobsQueue>";
}

pub use crate::queue::content_bytes;

/// Builds the queue `name`. A queue small enough to be a preallocated ring
/// (`BlobQueue::is_ring`) also creates Caffe2's `capacity × num_blobs` slot blob names
/// `<name>_<i>_<j>` in `ws`, empty (see the module doc); a larger one makes its slot rows as
/// records arrive, so a huge capacity or num_blobs allocates nothing up front. With
/// `enforce_unique_name`, every slot name is checked before any is created, so a refused queue
/// leaves the workspace unchanged.
pub fn new_blob_queue(
    ws: &Workspace,
    name: &str,
    capacity: i64,
    num_blobs: i64,
    enforce_unique_name: bool,
    field_names: &[String],
    strict: bool,
) -> Result<BlobQueue> {
    // Validates the sizes before any name is looked at.
    let queue = BlobQueue::new(name, capacity, num_blobs, field_names, strict)?;
    let (capacity, num_blobs) = (queue.capacity(), queue.num_blobs());
    if enforce_unique_name {
        if let Some(slot) = existing_slot_name(ws, name, capacity as u64, num_blobs as u64) {
            return Err(C2rsError::enforce(format!(
                "Queue internal blob already exists: {slot}"
            )));
        }
    }
    if BlobQueue::is_ring(capacity, num_blobs) {
        for i in 0..capacity {
            for j in 0..num_blobs {
                let slot = format!("{name}_{i}_{j}");
                ws.create_blob(&slot).ok_or_else(|| {
                    C2rsError::enforce(format!(
                        "queue slot blob {slot} is forwarded to a parent blob that no longer exists"
                    ))
                })?;
            }
        }
    }
    Ok(queue)
}

/// The first visible blob named like a slot of queue `name` (`<name>_<i>_<j>` with
/// `i < capacity`, `j < num_blobs`), in slot order. Small queues ask for each name; large ones
/// scan the workspace's names instead, so the cost is bounded by what the workspace holds.
fn existing_slot_name(ws: &Workspace, name: &str, capacity: u64, num_blobs: u64) -> Option<String> {
    if BlobQueue::is_ring(capacity as usize, num_blobs as usize) {
        return (0..capacity)
            .flat_map(|i| (0..num_blobs).map(move |j| format!("{name}_{i}_{j}")))
            .find(|slot| ws.has_blob(slot));
    }
    let prefix = format!("{name}_");
    ws.blobs()
        .iter()
        .filter_map(|blob| {
            let (i, j) = blob.strip_prefix(&prefix)?.split_once('_')?;
            let (i, j) = (canonical_index(i)?, canonical_index(j)?);
            (i < capacity && j < num_blobs).then(|| ((i, j), blob.clone()))
        })
        .min()
        .map(|(_, blob)| blob)
}

/// A decimal index as `format!` writes it (no sign, no leading zeros), or `None`.
fn canonical_index(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

/// Swaps `blobs[j]` with the slot row's column j (each blob locked for its own swap).
fn swap_row(row: &mut [Slot], blobs: &[Arc<Blob>]) {
    for (slot, blob) in row.iter_mut().zip(blobs) {
        slot.swap_content(&mut blob.write());
    }
}

/// Writes one record from `blobs` (the caller's blobs; their old content goes to the slot).
pub fn write_record(queue: &BlobQueue, blobs: &[Arc<Blob>]) -> Result<Outcome> {
    check_columns(queue, blobs.len())?;
    queue.blocking_write(|row| swap_row(row, blobs))
}

/// Reads one record into `blobs` (their old content goes to the slot for recycling).
pub fn read_record(
    queue: &BlobQueue,
    blobs: &[Arc<Blob>],
    deadline: Option<Instant>,
) -> Result<Outcome> {
    check_columns(queue, blobs.len())?;
    queue.blocking_read(deadline, |_| Ok(()), |row| swap_row(row, blobs))
}

fn check_columns(queue: &BlobQueue, n: usize) -> Result<()> {
    if n < queue.num_blobs() {
        return Err(C2rsError::enforce(format!(
            "queue {} has {} blobs per record, got {n}",
            queue.name(),
            queue.num_blobs()
        )));
    }
    Ok(())
}

/// A deadline `timeout_secs` from now; `<= 0` (or not finite) waits forever.
pub fn deadline_after(timeout_secs: f64) -> Option<Instant> {
    if timeout_secs > 0.0 && timeout_secs.is_finite() {
        Duration::try_from_secs_f64(timeout_secs)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))
    } else {
        None
    }
}

fn queue_input(base: &OpBase, i: usize) -> Result<Arc<BlobQueue>> {
    base.input(i)?.native::<BlobQueue>().map_err(|e| {
        C2rsError::new(
            e.kind(),
            format!(
                "{} Offending Blob name: {}.",
                e.message(),
                base.input_name(i)
            ),
        )
    })
}

fn set_status(base: &OpBase, i: usize, stop: bool) -> Result<()> {
    base.set_output_tensor(
        i,
        Tensor::from_slice(DataType::Bool, &[], &[u8::from(stop)])?,
    )
}

fn check_output_count(op: &str, queue: &BlobQueue, got: usize, extra: usize) -> Result<()> {
    let want = queue.num_blobs() + extra;
    if got != want {
        return Err(C2rsError::enforce(format!(
            "{op}: expected {want} outputs ({} queue blobs{}), got {got}",
            queue.num_blobs(),
            if extra > 0 { " + status" } else { "" }
        )));
    }
    Ok(())
}

fn check_no_duplicates(op: &str, base: &OpBase, count: usize) -> Result<()> {
    for i in 0..count {
        for j in 0..i {
            if base.output_name(i) == base.output_name(j) {
                return Err(C2rsError::enforce(format!(
                    "{op}: blob {} appears more than once",
                    base.output_name(i)
                )));
            }
        }
    }
    Ok(())
}

/// Which queue operator a `QueueOp` runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Enqueue,
    Dequeue,
    Close,
    SafeEnqueue,
    SafeDequeue,
}

/// One operator of the family; `cancel` closes the queue it uses (pytorch/pytorch#45177).
struct QueueOp {
    base: OpBase,
    kind: Kind,
    num_records: usize,
    timeout_secs: f64,
}

impl QueueOp {
    fn build(base: OpBase, kind: Kind) -> Result<Box<dyn Operator>> {
        let mut num_records = 1;
        let mut timeout_secs = 0.0;
        match kind {
            Kind::Create => {
                base.single_arg::<i64>("capacity", 1)?;
                base.single_arg::<i64>("num_blobs", 1)?;
                base.single_arg::<bool>("enforce_unique_name", false)?;
                base.single_arg::<bool>("strict", false)?;
                base.repeated_arg::<String>("field_names")?;
                if base.num_outputs() != 1 {
                    return Err(C2rsError::enforce(format!(
                        "CreateBlobsQueue: expected 1 output, got {}",
                        base.num_outputs()
                    )));
                }
            }
            Kind::Enqueue => {
                if base.num_inputs() <= 1 {
                    return Err(C2rsError::enforce(
                        "EnqueueBlobs needs the queue and at least one blob",
                    ));
                }
                check_no_duplicates("EnqueueBlobs", &base, base.num_outputs())?;
            }
            Kind::SafeEnqueue => {
                check_no_duplicates("SafeEnqueueBlobs", &base, base.num_outputs())?;
            }
            Kind::Dequeue => {
                timeout_secs = f64::from(base.single_arg::<f32>("timeout_secs", 0.0)?);
                check_no_duplicates("DequeueBlobs", &base, base.num_outputs())?;
            }
            Kind::SafeDequeue => {
                let n = base.single_arg::<i64>("num_records", 1)?;
                if n <= 0 {
                    return Err(C2rsError::enforce(format!(
                        "SafeDequeueBlobs: num_records must be > 0, got {n}"
                    )));
                }
                num_records = usize::try_from(n).unwrap_or(usize::MAX);
                check_no_duplicates("SafeDequeueBlobs", &base, base.num_outputs())?;
            }
            Kind::Close => {
                if base.num_inputs() != 1 {
                    return Err(C2rsError::enforce(format!(
                        "CloseBlobsQueue: expected 1 input, got {}",
                        base.num_inputs()
                    )));
                }
            }
        }
        Ok(Box::new(Self {
            base,
            kind,
            num_records,
            timeout_secs,
        }))
    }

    fn create(&self) -> Result<bool> {
        let b = &self.base;
        let ws = b.workspace()?;
        let queue = new_blob_queue(
            &ws,
            b.output_name(0),
            b.single_arg::<i64>("capacity", 1)?,
            b.single_arg::<i64>("num_blobs", 1)?,
            b.single_arg::<bool>("enforce_unique_name", false)?,
            &b.repeated_arg::<String>("field_names")?,
            b.single_arg::<bool>("strict", false)?,
        )?;
        b.output(0)?.set_native(Arc::new(queue));
        Ok(true)
    }

    fn enqueue(&self, safe: bool) -> Result<bool> {
        let b = &self.base;
        let queue = queue_input(b, 0)?;
        let op = if safe {
            "SafeEnqueueBlobs"
        } else {
            "EnqueueBlobs"
        };
        check_output_count(op, &queue, b.num_outputs(), usize::from(safe))?;
        let n = queue.num_blobs();
        let done = write_record(&queue, &b.outputs()[..n])? == Outcome::Done;
        if safe {
            set_status(b, n, !done)?;
            return Ok(true);
        }
        Ok(done)
    }

    fn dequeue(&self) -> Result<bool> {
        let b = &self.base;
        let queue = queue_input(b, 0)?;
        check_output_count("DequeueBlobs", &queue, b.num_outputs(), 0)?;
        // Both failures stay op failures (C2RS_RUN_FAILED, as a Caffe2 op returning false), with
        // a message that says which one it was instead of "operator returned false".
        match read_record(&queue, b.outputs(), deadline_after(self.timeout_secs))? {
            Outcome::Done => Ok(true),
            Outcome::TimedOut => {
                eprintln!("DequeueBlobs timed out in {} secs", self.timeout_secs);
                // The argument is a float: print it as given (0.05, not 0.0500000007…).
                Err(C2rsError::run_failed(format!(
                    "DequeueBlobs timed out in {} secs waiting for a record of queue {}",
                    self.timeout_secs as f32,
                    queue.name()
                )))
            }
            Outcome::Closed | Outcome::Full => Err(C2rsError::run_failed(format!(
                "DequeueBlobs: queue {} is closed and empty (end of stream)",
                queue.name()
            ))),
        }
    }

    fn safe_dequeue(&self) -> Result<bool> {
        let b = &self.base;
        let queue = queue_input(b, 0)?;
        check_output_count("SafeDequeueBlobs", &queue, b.num_outputs(), 1)?;
        let n = queue.num_blobs();
        let outputs = &b.outputs()[..n];
        if self.num_records == 1 {
            let done = read_record(&queue, outputs, None)? == Outcome::Done;
            set_status(b, n, !done)?;
            return Ok(true);
        }
        let (records, stop) = safe_dequeue_many(&queue, self.num_records)?;
        if records.is_empty() {
            set_status(b, n, stop)?;
            return Ok(true);
        }
        for (c, out) in outputs.iter().enumerate() {
            let column: Vec<&Tensor> = records.iter().map(|r| &r[c]).collect();
            out.set_tensor(concat_rows(&column)?);
        }
        set_status(b, n, false)?;
        Ok(true)
    }
}

/// Reads up to `num_records` records one at a time into private scratch blobs (each read takes
/// the ring lock separately). Each record is validated *before* it leaves its slot (inside the
/// queue's critical section): a record with a 0-D column, a non-tensor column or other inner
/// dims/dtype than record 0 stays queued and the call fails. Returns the records and whether
/// the very first read failed (end of stream).
pub fn safe_dequeue_many(
    queue: &BlobQueue,
    num_records: usize,
) -> Result<(Vec<Vec<Tensor>>, bool)> {
    let n = queue.num_blobs();
    let mut records: Vec<Vec<Tensor>> = Vec::new();
    let scratch: Vec<Arc<Blob>> = (0..n).map(|_| Arc::new(Blob::new())).collect();
    for k in 0..num_records {
        let first = records.first();
        let outcome = queue.blocking_read(
            None,
            |row| {
                for (c, slot) in row.iter().enumerate() {
                    let Some(t) = slot.tensor() else {
                        return Err(C2rsError::enforce(format!(
                            "SafeDequeueBlobs: record {k} column {c} is a {}, not a tensor",
                            slot.type_name()
                        )));
                    };
                    if t.dims().is_empty() {
                        return Err(C2rsError::enforce(format!(
                            "Empty tensor to dequeue at column {c} within {n} total columns"
                        )));
                    }
                    if let Some(first) = first {
                        let t0: &Tensor = &first[c];
                        if t.dtype() != t0.dtype() || t.dims()[1..] != t0.dims()[1..] {
                            return Err(C2rsError::enforce(format!(
                                "SafeDequeueBlobs: record {k} column {c} has shape {:?}/{}, expected {:?}/{}",
                                t.dims(),
                                t.dtype(),
                                t0.dims(),
                                t0.dtype()
                            )));
                        }
                    }
                }
                Ok(())
            },
            |row| swap_row(row, &scratch),
        )?;
        if outcome != Outcome::Done {
            let stop = k == 0;
            return Ok((records, stop));
        }
        records.push(
            scratch
                .iter()
                .map(|blob| match blob.take() {
                    BlobContent::Tensor(t) => Ok(t),
                    _ => Err(C2rsError::internal(
                        "validated record column is not a tensor",
                    )),
                })
                .collect::<Result<Vec<_>>>()?,
        );
    }
    Ok((records, false))
}

impl Operator for QueueOp {
    fn base(&self) -> &OpBase {
        &self.base
    }

    fn run(&self) -> Result<bool> {
        match self.kind {
            Kind::Create => self.create(),
            Kind::Enqueue => self.enqueue(false),
            Kind::SafeEnqueue => self.enqueue(true),
            Kind::Dequeue => self.dequeue(),
            Kind::SafeDequeue => self.safe_dequeue(),
            Kind::Close => {
                queue_input(&self.base, 0)?.close();
                Ok(true)
            }
        }
    }

    fn cancel(&self) {
        if self.kind != Kind::Create {
            if let Ok(q) = queue_input(&self.base, 0) {
                q.close();
            }
        }
    }
}

/// `WeightedSampleDequeueBlobs`: picks one input queue at random by weight, reads one record
/// from it only (blocking), optionally writes the chosen index into `table_idx_blob`.
struct WeightedSampleDequeue {
    base: OpBase,
    /// Cumulative normalised weights; the last entry is 1.0001 so every draw finds a queue.
    cumulative: Vec<f32>,
    table_idx_blob: i64,
    /// The op's CPU context (MT19937 seeded by `device_option.random_seed`); runs serialize here.
    context: Mutex<CpuContext>,
}

impl WeightedSampleDequeue {
    fn build(base: OpBase) -> Result<Box<dyn Operator>> {
        let mut weights = base.repeated_arg::<f32>("weights")?;
        if weights.is_empty() {
            weights = vec![1.0; base.num_inputs()];
        }
        let table_idx_blob = base.single_arg::<i64>("table_idx_blob", -1)?;
        if table_idx_blob >= base.num_outputs() as i64 - 1 {
            return Err(C2rsError::enforce(format!(
                "table_idx_blob {table_idx_blob} must be < OutputSize() - 1 = {}",
                base.num_outputs() as i64 - 1
            )));
        }
        if base.num_inputs() != weights.len() {
            return Err(C2rsError::enforce(format!(
                "WeightedSampleDequeueBlobs: {} queues but {} weights",
                base.num_inputs(),
                weights.len()
            )));
        }
        let sum: f32 = weights.iter().sum();
        if sum <= 0.0 || sum.is_nan() {
            return Err(C2rsError::enforce("Sum of weights must be positive"));
        }
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut acc = 0.0f32;
        for w in &weights {
            let p = w / sum;
            if p < 0.0 {
                return Err(C2rsError::enforce("Each probability must be non-negative"));
            }
            acc += p;
            cumulative.push(acc);
        }
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0001;
        }
        let mut spec = DeviceSpec::from_proto(base.device_option())?;
        spec.device_type = crate::context::DeviceType::Cpu;
        let context = Mutex::new(CpuContext::new(&spec)?);
        Ok(Box::new(Self {
            base,
            cumulative,
            table_idx_blob,
            context,
        }))
    }

    /// The queue index for a uniform draw in [0, 1).
    fn pick(&self) -> usize {
        let u = self.context.lock().rand_generator().next_u32();
        let r = (f64::from(u) / 4_294_967_296.0) as f32;
        self.cumulative
            .iter()
            .position(|&c| c >= r)
            .unwrap_or(self.cumulative.len() - 1)
    }
}

impl Operator for WeightedSampleDequeue {
    fn base(&self) -> &OpBase {
        &self.base
    }

    fn run(&self) -> Result<bool> {
        let b = &self.base;
        let idx = self.pick();
        let queue = queue_input(b, idx)?;
        check_output_count("WeightedSampleDequeueBlobs", &queue, b.num_outputs(), 1)?;
        let n = queue.num_blobs();
        let done = read_record(&queue, &b.outputs()[..n], None)? == Outcome::Done;
        if self.table_idx_blob >= 0 {
            b.set_output_tensor(
                self.table_idx_blob as usize,
                Tensor::from_slice(DataType::Int32, &[1], &[idx as i32])?,
            )?;
        }
        set_status(b, n, !done)?;
        Ok(true)
    }

    fn cancel(&self) {
        for i in 0..self.base.num_inputs() {
            if let Ok(q) = queue_input(&self.base, i) {
                q.close();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// BlobsQueueDB: the queue as a read-only DB (spec §5).

/// A read-only DB whose cursor pulls one record from a queue per `next()`.
pub struct BlobsQueueDb {
    queue: Arc<BlobQueue>,
    key_blob_index: i64,
    value_blob_index: i64,
    timeout_secs: f64,
}

impl BlobsQueueDb {
    pub fn new(
        queue: Arc<BlobQueue>,
        key_blob_index: i64,
        value_blob_index: i64,
        timeout_secs: f64,
    ) -> Result<Self> {
        if value_blob_index < 0 {
            return Err(C2rsError::enforce("value_blob_index < 0"));
        }
        let nb = queue.num_blobs() as i64;
        if value_blob_index >= nb || key_blob_index >= nb {
            return Err(C2rsError::enforce(format!(
                "BlobsQueueDB: key_blob_index {key_blob_index} and value_blob_index \
                 {value_blob_index} must be < num_blobs {nb}"
            )));
        }
        Ok(Self {
            queue,
            key_blob_index,
            value_blob_index,
            timeout_secs,
        })
    }
}

impl Db for BlobsQueueDb {
    fn new_cursor(&self) -> Result<Box<dyn Cursor>> {
        let n = self.queue.num_blobs();
        Ok(Box::new(BlobsQueueCursor {
            queue: Arc::clone(&self.queue),
            key_blob_index: self.key_blob_index,
            value_blob_index: self.value_blob_index as usize,
            timeout_secs: self.timeout_secs,
            scratch: (0..n).map(|_| Arc::new(Blob::new())).collect(),
            key: Vec::new(),
            value: Vec::new(),
            valid: false,
        }))
    }

    fn new_transaction(&self) -> Result<Box<dyn Transaction>> {
        Err(C2rsError::enforce("Not implemented."))
    }
}

struct BlobsQueueCursor {
    queue: Arc<BlobQueue>,
    key_blob_index: i64,
    value_blob_index: usize,
    timeout_secs: f64,
    scratch: Vec<Arc<Blob>>,
    key: Vec<u8>,
    value: Vec<u8>,
    valid: bool,
}

fn record_bytes(blob: &Blob) -> Result<Vec<u8>> {
    match &*blob.read() {
        BlobContent::String(s) => Ok(s.clone()),
        BlobContent::Tensor(t) if t.dtype() == DataType::String => t
            .strings()?
            .first()
            .cloned()
            .ok_or_else(|| C2rsError::enforce("Unsupported Blob type")),
        _ => Err(C2rsError::enforce("Unsupported Blob type")),
    }
}

impl Cursor for BlobsQueueCursor {
    fn seek(&mut self, _key: &[u8]) -> Result<()> {
        Err(C2rsError::enforce("Seek is not supported."))
    }
    fn supports_seek(&self) -> bool {
        false
    }
    fn seek_to_first(&mut self) -> Result<()> {
        Ok(())
    }
    /// Pulls the next record. A closed-and-empty queue or a timeout invalidates the cursor and
    /// is an error, so a reader never repeats the previous record (Caffe2 did).
    fn next(&mut self) -> Result<()> {
        self.valid = false;
        self.key.clear();
        self.value.clear();
        let outcome = read_record(
            &self.queue,
            &self.scratch,
            deadline_after(self.timeout_secs),
        )?;
        if outcome != Outcome::Done {
            eprintln!("Timed out reading from BlobsQueue or it is closed");
            return Err(C2rsError::enforce(
                "BlobsQueueDB: queue closed or read timed out",
            ));
        }
        self.value = record_bytes(&self.scratch[self.value_blob_index])?;
        if self.key_blob_index >= 0 {
            self.key = record_bytes(&self.scratch[self.key_blob_index as usize])?;
        }
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
}

fn create_blobs_queue_db(base: &OpBase) -> Result<bool> {
    let queue = queue_input(base, 0).map_err(|e| e.context("queue is null"))?;
    let db = BlobsQueueDb::new(
        queue,
        base.single_arg::<i64>("key_blob_index", -1)?,
        base.single_arg::<i64>("value_blob_index", 0)?,
        f64::from(base.single_arg::<f32>("timeout_secs", 0.0)?),
    )?;
    let reader = DbReader::streaming(Box::new(db), "blobs_queue_db", "")?;
    base.output(0)?.set_native(Arc::new(reader));
    Ok(true)
}

/// Registers `op` for CPU and (same code, the swap is device-agnostic) CUDA.
fn register_both(registry: &mut Registry, schema: OpSchema, kind: Kind) -> Result<()> {
    let name = schema.name().to_string();
    registry.register(schema, move |base| QueueOp::build(base, kind))?;
    registry.register_creator(
        DEVICE_CUDA,
        &name,
        Arc::new(move |base| QueueOp::build(base, kind)),
    )
}

pub fn register(registry: &mut Registry) -> Result<()> {
    register_both(
        registry,
        OpSchema::new("CreateBlobsQueue")
            .num_inputs(0)
            .num_outputs(1)
            .set_doc("Creates a BlobsQueue of `capacity` records of `num_blobs` blobs."),
        Kind::Create,
    )?;
    register_both(
        registry,
        OpSchema::new("EnqueueBlobs")
            .num_inputs_range(2, usize::MAX)
            .num_outputs_range(1, usize::MAX)
            .num_inputs_outputs(|i, o| i == o + 1)
            .enforce_inplace_fn(|i, o| i == o + 1)
            // Other shared names are duplicates; the creator names them (spec §7.2).
            .allow_inplace_fn(|_, _| true)
            .set_doc("Enqueues the blobs (swapped into the queue; inputs are consumed)."),
        Kind::Enqueue,
    )?;
    register_both(
        registry,
        OpSchema::new("DequeueBlobs")
            .num_inputs(1)
            .num_outputs_range(1, usize::MAX)
            .set_doc("Dequeues one record; fails on timeout or when closed and empty."),
        Kind::Dequeue,
    )?;
    register_both(
        registry,
        OpSchema::new("CloseBlobsQueue")
            .num_inputs(1)
            .num_outputs(0)
            .set_doc("Closes the queue: readers drain then fail."),
        Kind::Close,
    )?;
    register_both(
        registry,
        OpSchema::new("SafeEnqueueBlobs")
            .num_inputs_range(2, usize::MAX)
            .num_outputs_range(2, usize::MAX)
            .num_inputs_outputs(|i, o| i == o)
            .enforce_inplace_fn(|i, o| i == o + 1)
            // Other shared names are duplicates; the creator names them (spec §7.2).
            .allow_inplace_fn(|_, _| true)
            .set_doc("Enqueues the blobs; the last output is a bool status (true = closed)."),
        Kind::SafeEnqueue,
    )?;
    register_both(
        registry,
        OpSchema::new("SafeDequeueBlobs")
            .num_inputs(1)
            .num_outputs_range(2, usize::MAX)
            .set_doc(
                "Dequeues `num_records` records (concatenated on dim 0); the last output is a \
                 bool status (true = end of stream).",
            ),
        Kind::SafeDequeue,
    )?;
    registry.register(
        OpSchema::new("WeightedSampleDequeueBlobs")
            .num_inputs_range(1, usize::MAX)
            .num_outputs_range(2, usize::MAX)
            .set_doc("Dequeues one record from a queue chosen at random by `weights`."),
        WeightedSampleDequeue::build,
    )?;
    registry.register(
        OpSchema::new("CreateBlobsQueueDB")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Exposes a BlobsQueue as a read-only DB wrapped in a DBReader."),
        |base| {
            base.single_arg::<i64>("key_blob_index", -1)?;
            base.single_arg::<i64>("value_blob_index", 0)?;
            base.single_arg::<f32>("timeout_secs", 0.0)?;
            Ok(super::FnOperator::boxed(base, create_blobs_queue_db))
        },
    )?;
    super::rebatching_ops::register(registry)
}
