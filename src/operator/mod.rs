//! Operators: the `Operator` trait, the base every operator is built from (its def, resolved
//! blobs, arguments, device option), creation from an `OperatorDef` through the registry with
//! schema checks and engine fallback, and the run wrapper that adds the operator to errors.

mod args;
pub mod catalog;
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
use crate::proto::{Argument, DeviceOption, OperatorDef};
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
    /// The name of an input or output whose blob was removed from the workspace after the
    /// operator was built and whose name now stands for another blob, if any. (A removed name
    /// that was not given again leaves the operator working on its own blob, as before.)
    pub fn replaced_blob(&self) -> Option<&str> {
        let names = self.def.input.iter().zip(&self.inputs);
        let mut all = names.chain(self.def.output.iter().zip(&self.outputs));
        all.find(|(name, blob)| {
            // The lookup runs only on the rare path of a removed blob.
            blob.is_removed()
                && self
                    .workspace
                    .upgrade()
                    .and_then(|ws| ws.get_blob(name))
                    .is_some_and(|now| !Arc::ptr_eq(&now, blob))
        })
        .map(|(name, _)| name.as_str())
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
        parts.push(format!("arg {{ {} }}", arg_debug_string(a)));
    }
    if let Some(e) = &def.engine {
        parts.push(format!("engine: {e:?}"));
    }
    parts.join(" ")
}

/// How many values of a repeated argument field an error message shows before it says how
/// many there were: a GivenTensorFill can carry millions of values, an error message should not.
const DEBUG_VALUES_SHOWN: usize = 8;
/// How many bytes of a bytes-valued argument an error message shows.
const DEBUG_BYTES_SHOWN: usize = 64;

/// One `Argument` as Caffe2's debug string shows it (`name: "shape" ints: 2 ints: 3`), with long
/// value lists and byte strings cut short; nested nets and tensors are named, not printed.
fn arg_debug_string(a: &Argument) -> String {
    fn bytes(b: &[u8]) -> String {
        let shown = &b[..b.len().min(DEBUG_BYTES_SHOWN)];
        let text = String::from_utf8_lossy(shown);
        if b.len() > shown.len() {
            format!("{text:?}… ({} bytes)", b.len())
        } else {
            format!("{text:?}")
        }
    }
    fn list<T>(field: &str, values: &[T], show: impl Fn(&T) -> String, out: &mut Vec<String>) {
        for v in values.iter().take(DEBUG_VALUES_SHOWN) {
            out.push(format!("{field}: {}", show(v)));
        }
        if values.len() > DEBUG_VALUES_SHOWN {
            out.push(format!("… ({} {field} in all)", values.len()));
        }
    }
    let mut out = vec![format!("name: {:?}", a.name())];
    if let Some(f) = a.f {
        out.push(format!("f: {f}"));
    }
    if let Some(i) = a.i {
        out.push(format!("i: {i}"));
    }
    if let Some(s) = &a.s {
        out.push(format!("s: {}", bytes(s)));
    }
    if a.t.is_some() {
        out.push("t: <tensor>".to_string());
    }
    if let Some(n) = &a.n {
        out.push(format!("n: <net {:?}>", n.name()));
    }
    list("floats", &a.floats, |v| v.to_string(), &mut out);
    list("ints", &a.ints, |v| v.to_string(), &mut out);
    list("strings", &a.strings, |v| bytes(v), &mut out);
    if !a.tensors.is_empty() {
        out.push(format!("tensors: <{} tensors>", a.tensors.len()));
    }
    list(
        "nets",
        &a.nets,
        |n| format!("<net {:?}>", n.name()),
        &mut out,
    );
    out.join(" ")
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
            "Cannot create operator of type '{op_type}' on the device '{}': caffe2rs has no \
             implementation of it for that device (c2rs_registered_operators lists the ones it \
             has; a host can add its own with c2rs_register_operator). Operator def: {}",
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
    let outcome = match base.replaced_blob() {
        Some(name) => C2rsError::enforce(format!(
            "blob {name} was removed from the workspace after this operator was created and \
             the name now holds another blob; create the operator (or its net) again to use it"
        )),
        None => match catch_unwind(AssertUnwindSafe(|| op.run())) {
            Ok(Ok(true)) => return Ok(()),
            Ok(Ok(false)) => C2rsError::run_failed("operator returned false"),
            Ok(Err(e)) => e,
            Err(payload) => C2rsError::from_panic(payload.as_ref()),
        },
    };
    if let Ok(ws) = base.workspace() {
        ws.set_last_failed_op_net_position(base.net_position());
    }
    Err(outcome.context(base.label()))
}
