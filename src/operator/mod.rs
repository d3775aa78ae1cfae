//! Operators: the `Operator` trait, the base every operator is built from (its def, resolved
//! blobs, arguments, device option), creation from an `OperatorDef` through the registry with
//! schema checks and engine fallback, and the run wrapper that adds the operator to errors.

mod args;
mod registry;
mod schema;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};

pub use args::{ArgValue, ArgumentHelper};
pub use registry::{
    Creator, DEVICE_CPU, DEVICE_CUDA, Registry, device_name, global_registry, register_builtin_ops,
    registered_operators, registry_key,
};
pub use schema::{DocEntry, OpSchema};

use crate::error::{C2rsError, ErrorKind, Result};
use crate::proto::{DeviceOption, OperatorDef};
use crate::tensor::Tensor;
use crate::workspace::{Blob, Workspace};

/// A runnable operator. Built once (inputs and outputs resolved to `Arc<Blob>`s), run any
/// number of times, possibly from several threads at once, so `run` takes `&self`.
///
/// Locking contract: an operator reads inputs as snapshots (`OpBase::input_tensor`) and writes
/// outputs with short blob locks; one that blocks (a queue dequeue) must hold no blob lock
/// and no workspace lock while blocking.
pub trait Operator: Send + Sync {
    /// The def, blobs and arguments the operator was built from.
    fn base(&self) -> &OpBase;
    /// Runs once. `Ok(false)` is Caffe2's "operator returned false" (a run failure).
    fn run(&self) -> Result<bool>;
    /// Asks a running (or future) `run` to stop early, e.g. by closing the queue it waits
    /// on. Called by the DAG net on operators still running after another one failed.
    fn cancel(&self) {}
}

/// What every operator is built from.
#[derive(Clone)]
pub struct OpBase {
    def: Arc<OperatorDef>,
    args: Arc<ArgumentHelper>,
    device_option: DeviceOption,
    inputs: Vec<Arc<Blob>>,
    outputs: Vec<Arc<Blob>>,
    /// The workspace the operator was created in; weak, since nets holding operators are
    /// owned by that workspace.
    workspace: Weak<Workspace>,
    engine: String,
    net_position: Option<usize>,
}

impl OpBase {
    /// Resolves `def` in `ws`: every input must exist (`"op <T>: Encountered a non-existing
    /// input blob: <x>"`), every output goes through `create_blob`, so outputs exist as soon
    /// as the operator does.
    pub fn new(
        def: &OperatorDef,
        ws: &Arc<Workspace>,
        net_position: Option<usize>,
    ) -> Result<Self> {
        let args = ArgumentHelper::new(&def.arg)?;
        let mut inputs = Vec::with_capacity(def.input.len());
        for name in &def.input {
            let blob = ws.get_blob(name).ok_or_else(|| {
                C2rsError::enforce(format!(
                    "op {}: Encountered a non-existing input blob: {name}",
                    def.r#type()
                ))
            })?;
            inputs.push(blob);
        }
        let mut outputs = Vec::with_capacity(def.output.len());
        for name in &def.output {
            let blob = ws.create_blob(name).ok_or_else(|| {
                C2rsError::enforce(format!(
                    "op {}: output blob {name} is forwarded to a parent blob that no longer exists",
                    def.r#type()
                ))
            })?;
            outputs.push(blob);
        }
        Ok(Self {
            device_option: def.device_option.clone().unwrap_or_default(),
            def: Arc::new(def.clone()),
            args: Arc::new(args),
            inputs,
            outputs,
            workspace: Arc::downgrade(ws),
            engine: String::new(),
            net_position,
        })
    }

    pub fn def(&self) -> &OperatorDef {
        &self.def
    }
    pub fn op_type(&self) -> &str {
        self.def.r#type()
    }
    /// The engine this operator was built for ("" = default).
    pub fn engine(&self) -> &str {
        &self.engine
    }
    pub fn net_position(&self) -> Option<usize> {
        self.net_position
    }
    /// The device option (random_seed, device type), the net's when the def has none.
    pub fn device_option(&self) -> &DeviceOption {
        &self.device_option
    }
    pub fn args(&self) -> &ArgumentHelper {
        &self.args
    }
    /// The workspace the operator was created in, while it is alive.
    pub fn workspace(&self) -> Result<Arc<Workspace>> {
        self.workspace
            .upgrade()
            .ok_or_else(|| C2rsError::enforce("the operator's workspace no longer exists"))
    }

    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }
    pub fn inputs(&self) -> &[Arc<Blob>] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[Arc<Blob>] {
        &self.outputs
    }
    pub fn input_name(&self, i: usize) -> &str {
        self.def.input.get(i).map_or("", String::as_str)
    }
    pub fn output_name(&self, i: usize) -> &str {
        self.def.output.get(i).map_or("", String::as_str)
    }

    /// Input blob `i`.
    pub fn input(&self, i: usize) -> Result<&Arc<Blob>> {
        self.inputs.get(i).ok_or_else(|| {
            C2rsError::enforce(format!(
                "input index {i} out of range ({} inputs)",
                self.inputs.len()
            ))
        })
    }

    /// Output blob `i`.
    pub fn output(&self, i: usize) -> Result<&Arc<Blob>> {
        self.outputs.get(i).ok_or_else(|| {
            C2rsError::enforce(format!(
                "output index {i} out of range ({} outputs)",
                self.outputs.len()
            ))
        })
    }

    /// A snapshot of input tensor `i` (shares storage; no lock held afterwards).
    pub fn input_tensor(&self, i: usize) -> Result<Tensor> {
        self.input(i)?
            .tensor()
            .map_err(|e| self.offending_input(i, e))
    }

    /// The native object (queue, counter, mutex …) input `i` holds; another content is the
    /// Caffe2 "wrong type" error naming the blob.
    pub fn input_native<T: crate::workspace::BlobNative>(&self, i: usize) -> Result<Arc<T>> {
        self.input(i)?
            .native::<T>()
            .map_err(|e| self.offending_input(i, e))
    }

    /// `e` with Caffe2's "Offending Blob name: <input i>." appended.
    fn offending_input(&self, i: usize, e: C2rsError) -> C2rsError {
        C2rsError::new(
            e.kind(),
            format!(
                "{} Offending Blob name: {}.",
                e.message(),
                self.input_name(i)
            ),
        )
    }

    /// A snapshot of output tensor `i`, `None` when the output is not a tensor yet.
    pub fn output_tensor(&self, i: usize) -> Result<Option<Tensor>> {
        let blob = self.output(i)?;
        let guard = blob.read();
        Ok(match &*guard {
            crate::workspace::BlobContent::Tensor(t) => Some(t.clone()),
            _ => None,
        })
    }

    /// Stores `tensor` in output `i`.
    pub fn set_output_tensor(&self, i: usize, tensor: Tensor) -> Result<()> {
        self.output(i)?.set_tensor(tensor);
        Ok(())
    }

    /// Caffe2's `GetSingleArgument<T>(name, default)`.
    pub fn single_arg<T: ArgValue>(&self, name: &str, default: T) -> Result<T> {
        self.args.single(name, default)
    }
    /// Caffe2's `GetRepeatedArgument<T>(name)`.
    pub fn repeated_arg<T: ArgValue>(&self, name: &str) -> Result<Vec<T>> {
        self.args.repeated(name)
    }
    pub fn has_argument(&self, name: &str) -> bool {
        self.args.has_argument(name)
    }

    /// `op #3 (Relu)` in a net, `op (Relu)` alone: the prefix of run errors.
    pub fn label(&self) -> String {
        op_label(self.op_type(), self.net_position)
    }
}

fn op_label(op_type: &str, position: Option<usize>) -> String {
    match position {
        Some(i) => format!("op #{i} ({op_type})"),
        None => format!("op ({op_type})"),
    }
}

/// A one-line text rendering of an OperatorDef for messages.
pub fn op_debug_string(def: &OperatorDef) -> String {
    let mut parts = Vec::new();
    for i in &def.input {
        parts.push(format!("input: {i:?}"));
    }
    for o in &def.output {
        parts.push(format!("output: {o:?}"));
    }
    if let Some(n) = &def.name {
        parts.push(format!("name: {n:?}"));
    }
    parts.push(format!("type: {:?}", def.r#type()));
    for a in &def.arg {
        parts.push(format!("arg {{ name: {:?} }}", a.name()));
    }
    if let Some(e) = &def.engine {
        parts.push(format!("engine: {e:?}"));
    }
    parts.join(" ")
}

/// Caffe2's `CreateOperator`: schema check, device check, engine candidates, fallback to the
/// plain key. Failures record `net_position` in the workspace.
pub fn create_operator(
    def: &OperatorDef,
    ws: &Arc<Workspace>,
    net_position: Option<usize>,
) -> Result<Box<dyn Operator>> {
    let result = create_operator_inner(def, ws, net_position);
    if result.is_err() {
        ws.set_last_failed_op_net_position(net_position);
    }
    result
}

fn create_operator_inner(
    def: &OperatorDef,
    ws: &Arc<Workspace>,
    net_position: Option<usize>,
) -> Result<Box<dyn Operator>> {
    let op_type = def.r#type();
    let device = def
        .device_option
        .as_ref()
        .map_or(DEVICE_CPU, |d| d.device_type());
    // Collect what is needed under one short read lock; creators run without it.
    let (schema, candidates, fallback) = {
        let reg = global_registry().read();
        if let Some(e) = reg.init_error() {
            return Err(e.clone());
        }
        if !reg.has_device(device) {
            return Err(C2rsError::enforce(format!(
                "Device type {device} not registered."
            )));
        }
        let candidates: Vec<(String, Creator)> = reg
            .engine_candidates(device, op_type, def.engine(), true)
            .into_iter()
            .filter_map(|e| {
                let key = registry_key(op_type, &e);
                reg.creator(device, &key).map(|c| (e, c))
            })
            .collect();
        (
            reg.schema(op_type),
            candidates,
            reg.creator(device, op_type),
        )
    };
    if let Some(schema) = &schema {
        schema.verify(def).map_err(|reason| {
            C2rsError::schema_mismatch(format!(
                "Operator def did not pass schema checking: {}: {reason}",
                op_debug_string(def)
            ))
        })?;
    }
    if candidates.is_empty() && fallback.is_none() {
        return Err(C2rsError::not_found(format!(
            "Cannot create operator of type '{op_type}' on the device '{}'. Verify that \
             implementation for the corresponding device exist. It might also happen if the \
             binary is not linked with the operator implementation code. Operator def: {}",
            device_name(device),
            op_debug_string(def)
        )));
    }
    let base = OpBase::new(def, ws, net_position)?;
    for (engine, creator) in candidates {
        let mut b = base.clone();
        b.engine = engine;
        match creator(b) {
            Ok(op) => return Ok(op),
            Err(e) if e.kind() == ErrorKind::Unsupported => continue,
            Err(e) => return Err(e),
        }
    }
    match fallback {
        Some(creator) => creator(base),
        None => Err(C2rsError::not_found(format!(
            "Cannot create operator of type '{op_type}' on the device '{}': no engine among \
             '{}' could build it. Operator def: {}",
            device_name(device),
            def.engine(),
            op_debug_string(def)
        ))),
    }
}

/// Runs `op` once: `Ok(false)` becomes a `RunFailed` error, a panic a `Panic` error, and
/// every error gets the `op #i (Type): ` prefix and records the position in the workspace.
pub fn run_operator(op: &dyn Operator) -> Result<()> {
    let base = op.base();
    let outcome = match catch_unwind(AssertUnwindSafe(|| op.run())) {
        Ok(Ok(true)) => return Ok(()),
        Ok(Ok(false)) => C2rsError::run_failed("operator returned false"),
        Ok(Err(e)) => e,
        Err(payload) => C2rsError::from_panic(payload.as_ref()),
    };
    if let Ok(ws) = base.workspace() {
        ws.set_last_failed_op_net_position(base.net_position());
    }
    Err(outcome.context(base.label()))
}
