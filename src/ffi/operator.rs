//! The operator registry from C: listing registered types and registering host kernels
//! (create/run/cancel/destroy callbacks) that nets run like built-in operators, plus the
//! context API those callbacks use to reach inputs, outputs and arguments.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::guard::{array_arg, dtype_arg, ffi_fn, ffi_fn_or, name_arg, out_param};
use super::handle::{
    BoxHandle, c2rs_op_context, c2rs_string_list, c2rs_tensor, handle_mut, handle_ref, into_handle,
    lend_handle, take_handle,
};
use super::status::{C2RS_OK, C2RS_UNSUPPORTED};
use crate::error::{C2rsError, Result};
use crate::operator::{
    DEVICE_CPU, OpBase, OpSchema, Operator, global_registry, registered_operators,
};
use crate::tensor::Tensor;

/// In-place rule of a host operator schema: no input may share a name with an output.
pub const C2RS_INPLACE_NONE: i32 = 0;
/// Input i may share its name with output i.
pub const C2RS_INPLACE_ALLOW_ONE_TO_ONE: i32 = 1;
/// Input i must share its name with output i.
pub const C2RS_INPLACE_ENFORCE_ONE_TO_ONE: i32 = 2;
/// Any input may share its name with any output.
pub const C2RS_INPLACE_ALLOW_ANY: i32 = 3;

/// Schema of a host operator, checked on every OperatorDef before `create` is called.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct c2rs_op_schema {
    /// Fewest inputs (>= 0).
    pub min_inputs: i32,
    /// Most inputs; -1 = unbounded.
    pub max_inputs: i32,
    /// Fewest outputs (>= 0).
    pub min_outputs: i32,
    /// Most outputs; -1 = unbounded.
    pub max_outputs: i32,
    /// One of the C2RS_INPLACE_* values.
    pub inplace: i32,
}

/// Builds the per-operator state when an operator is created (in `create_net` or
/// `run_operator_once`). `ctx` gives arguments and counts (no tensors yet). A non-zero
/// status fails the creation with the message set by `c2rs_op_context_set_error`;
/// C2RS_UNSUPPORTED means "this def is not supported" (Caffe2's UnsupportedOperatorFeature).
pub type c2rs_op_create_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        ctx: *mut c2rs_op_context,
        state: *mut *mut c_void,
    ) -> i32,
>;
/// Runs the operator once. A non-zero status is a run failure (C2RS_RUN_FAILED) carrying the
/// message set by `c2rs_op_context_set_error`.
pub type c2rs_op_run_fn = Option<
    unsafe extern "C" fn(user: *mut c_void, state: *mut c_void, ctx: *mut c2rs_op_context) -> i32,
>;
/// Asks a running `run` to return early (the DAG net calls it after another op failed). May
/// be called from another thread while `run` executes.
pub type c2rs_op_cancel_fn = Option<unsafe extern "C" fn(user: *mut c_void, state: *mut c_void)>;
/// Releases the state made by `create` when the operator is dropped.
pub type c2rs_op_destroy_fn = Option<unsafe extern "C" fn(user: *mut c_void, state: *mut c_void)>;

/// Callbacks of a host operator; only `run` is required.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct c2rs_op_callbacks {
    pub create: c2rs_op_create_fn,
    pub run: c2rs_op_run_fn,
    pub cancel: c2rs_op_cancel_fn,
    pub destroy: c2rs_op_destroy_fn,
}

/// A host pointer moved between threads; the host promised thread safety at registration.
#[derive(Clone, Copy)]
struct HostPtr(*mut c_void);
// SAFETY: `c2rs_register_operator` documents that `user` and the per-op state are used from
// any thread, concurrently; the host takes responsibility for their synchronisation.
unsafe impl Send for HostPtr {}
// SAFETY: as above.
unsafe impl Sync for HostPtr {}

/// The context behind a `c2rs_op_context*` lent to a callback.
pub(crate) struct OpContext {
    base: Arc<OpBase>,
    /// Input snapshots (run only); `None` where the input blob holds no tensor.
    inputs: Vec<Option<Tensor>>,
    /// Outputs set during this run; written to the blobs when `run` succeeds.
    outputs: Vec<Option<Tensor>>,
    running: bool,
    error: Option<String>,
}

impl BoxHandle for c2rs_op_context {
    type Target = OpContext;
}

impl OpContext {
    fn for_create(base: Arc<OpBase>) -> Self {
        Self {
            base,
            inputs: Vec::new(),
            outputs: Vec::new(),
            running: false,
            error: None,
        }
    }

    fn for_run(base: Arc<OpBase>) -> Self {
        let inputs = base.inputs().iter().map(|b| b.tensor().ok()).collect();
        let outputs = vec![None; base.num_outputs()];
        Self {
            base,
            inputs,
            outputs,
            running: true,
            error: None,
        }
    }

    fn message(&self, status: i32, what: &str) -> String {
        self.error
            .clone()
            .unwrap_or_else(|| format!("host operator {what} callback returned status {status}"))
    }

    fn check_running(&self, what: &str) -> Result<()> {
        if self.running {
            Ok(())
        } else {
            Err(C2rsError::invalid_argument(format!(
                "{what} is only available inside the run callback"
            )))
        }
    }
}

struct HostOp {
    base: Arc<OpBase>,
    callbacks: c2rs_op_callbacks,
    user: HostPtr,
    state: HostPtr,
}

impl Operator for HostOp {
    fn base(&self) -> &OpBase {
        &self.base
    }

    fn run(&self) -> Result<bool> {
        let Some(run) = self.callbacks.run else {
            return Err(C2rsError::internal("host operator without a run callback"));
        };
        let mut ctx = OpContext::for_run(Arc::clone(&self.base));
        // SAFETY: `run` is the host's callback registered with this type; `ctx` outlives the
        // call and is only reachable through the pointer during it; user/state are the host's.
        let status = unsafe { run(self.user.0, self.state.0, lend_handle(&mut ctx)) };
        if status != C2RS_OK {
            return Err(C2rsError::run_failed(ctx.message(status, "run")));
        }
        for (i, t) in ctx.outputs.into_iter().enumerate() {
            if let Some(t) = t {
                self.base.set_output_tensor(i, t)?;
            }
        }
        Ok(true)
    }

    fn cancel(&self) {
        if let Some(cancel) = self.callbacks.cancel {
            // SAFETY: the host's cancel callback, documented as callable concurrently with run.
            unsafe { cancel(self.user.0, self.state.0) }
        }
    }
}

impl Drop for HostOp {
    fn drop(&mut self) {
        if let Some(destroy) = self.callbacks.destroy {
            // SAFETY: the state was made by this op's `create`; destroy runs exactly once.
            unsafe { destroy(self.user.0, self.state.0) }
        }
    }
}

fn host_schema(op_type: &str, s: &c2rs_op_schema) -> Result<OpSchema> {
    let count = |v: i32, what: &str| -> Result<usize> {
        if v == -1 && what.starts_with("max") {
            return Ok(usize::MAX);
        }
        usize::try_from(v).map_err(|_| {
            C2rsError::invalid_argument(format!("argument `schema`: {what} = {v} is negative"))
        })
    };
    let (min_in, max_in) = (
        count(s.min_inputs, "min_inputs")?,
        count(s.max_inputs, "max_inputs")?,
    );
    let (min_out, max_out) = (
        count(s.min_outputs, "min_outputs")?,
        count(s.max_outputs, "max_outputs")?,
    );
    if min_in > max_in || min_out > max_out {
        return Err(C2rsError::invalid_argument(
            "argument `schema`: a minimum exceeds its maximum",
        ));
    }
    let schema = OpSchema::new(op_type)
        .num_inputs_range(min_in, max_in)
        .num_outputs_range(min_out, max_out);
    Ok(match s.inplace {
        C2RS_INPLACE_NONE => schema,
        C2RS_INPLACE_ALLOW_ONE_TO_ONE => schema.allow_one_to_one_inplace(),
        C2RS_INPLACE_ENFORCE_ONE_TO_ONE => schema.enforce_one_to_one_inplace(),
        C2RS_INPLACE_ALLOW_ANY => schema.allow_inplace_fn(|_, _| true),
        other => {
            return Err(C2rsError::invalid_argument(format!(
                "argument `schema`: inplace = {other} is not a C2RS_INPLACE_* value"
            )));
        }
    })
}

/// Registers a host (C/C++) kernel as CPU operator `type`, usable in nets and
/// `c2rs_workspace_run_operator_once` like a built-in one.
///
/// When an operator of this type is created, `schema` (when not NULL) is checked, inputs are
/// resolved and outputs created, then `callbacks->create` (when not NULL) makes the per-op
/// state (NULL otherwise). Each run calls `callbacks->run`; `callbacks->destroy` (when not
/// NULL) releases the state when the operator is dropped (net deleted or replaced, workspace
/// freed, `run_operator_once` done). Callbacks must not unwind (throw) into the library.
/// Ownership: `type`, `schema` and `callbacks` are copied; `user` is kept for the life of the
/// process (there is no unregistration) and passed to every callback.
/// Thread safety: safe from any thread. Callbacks may run on any thread, and `run` of one
/// operator may run concurrently with itself (same net run from two threads) and with
/// `cancel`; `user` and the state must tolerate that.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `type` or `callbacks` is NULL, `type` is empty
/// or not UTF-8, `callbacks->run` is NULL or `schema` is inconsistent; C2RS_ALREADY_EXISTS
/// when `type` is already registered.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_register_operator(
    r#type: *const c_char,
    schema: *const c2rs_op_schema,
    callbacks: *const c2rs_op_callbacks,
    user: *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_register_operator", {
        let op_type = name_arg(r#type, "type")?;
        if op_type.is_empty() {
            return Err(C2rsError::invalid_argument("argument `type` is empty"));
        }
        if callbacks.is_null() {
            return Err(super::guard::null_arg("callbacks"));
        }
        // SAFETY: non-NULL; the caller passes a readable `c2rs_op_callbacks`.
        let callbacks = unsafe { *callbacks };
        if callbacks.run.is_none() {
            return Err(C2rsError::invalid_argument(
                "argument `callbacks`: `run` is NULL",
            ));
        }
        let schema = if schema.is_null() {
            None
        } else {
            // SAFETY: non-NULL; the caller passes a readable `c2rs_op_schema`.
            Some(host_schema(op_type, unsafe { &*schema })?)
        };
        let user = HostPtr(user);
        let creator = move |base: OpBase| -> Result<Box<dyn Operator>> {
            let base = Arc::new(base);
            let mut state: *mut c_void = std::ptr::null_mut();
            if let Some(create) = callbacks.create {
                let mut ctx = OpContext::for_create(Arc::clone(&base));
                // SAFETY: the host's create callback; `ctx` and `state` outlive the call.
                let status = unsafe { create(user.0, lend_handle(&mut ctx), &mut state) };
                if status != C2RS_OK {
                    let message = ctx.message(status, "create");
                    return Err(if status == C2RS_UNSUPPORTED {
                        C2rsError::unsupported(message)
                    } else {
                        C2rsError::enforce(message)
                    });
                }
            }
            Ok(Box::new(HostOp {
                base,
                callbacks,
                user,
                state: HostPtr(state),
            }))
        };
        let mut reg = global_registry().write();
        if reg.creator(DEVICE_CPU, op_type).is_some() || reg.schema(op_type).is_some() {
            return Err(C2rsError::already_exists(format!(
                "Operator {op_type} is already registered"
            )));
        }
        match schema {
            Some(s) => reg.register(s, creator),
            None => reg.register_creator(DEVICE_CPU, op_type, Arc::new(creator)),
        }
    })
}

/// Lists every registered operator type (and `Type_ENGINE_X` engine variants), sorted.
///
/// Ownership: the caller owns `*out` (`c2rs_string_list_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_registered_operators(out: *mut *mut c2rs_string_list) -> i32 {
    ffi_fn!("c2rs_registered_operators", {
        let out = out_param(out, "out")?;
        out.set(into_handle(super::workspace::string_list(
            registered_operators(),
        )?));
        Ok(())
    })
}

/// Number of inputs of the operator behind `ctx`.
///
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: the count; 0 when `ctx` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_op_context_num_inputs(ctx: *const c2rs_op_context) -> usize {
    ffi_fn_or!("c2rs_op_context_num_inputs", 0, {
        Ok(handle_ref(ctx, "ctx")?.base.num_inputs())
    })
}

/// Number of outputs of the operator behind `ctx`.
///
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: the count; 0 when `ctx` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_op_context_num_outputs(ctx: *const c2rs_op_context) -> usize {
    ffi_fn_or!("c2rs_op_context_num_outputs", 0, {
        Ok(handle_ref(ctx, "ctx")?.base.num_outputs())
    })
}

/// Input tensor `i` (a snapshot taken when the run started).
///
/// Borrowed: `*out` is valid until the run callback returns; do not free it or write to it.
/// Thread safety: only inside the run callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL, `i` is out of range or
/// the call is made from `create`; C2RS_TYPE_MISMATCH when the input blob holds no tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_input(
    ctx: *mut c2rs_op_context,
    i: usize,
    out: *mut *const c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_op_context_input", {
        let out = out_param(out, "out")?;
        let ctx = handle_ref(ctx, "ctx")?;
        ctx.check_running("c2rs_op_context_input")?;
        let n = ctx.inputs.len();
        let slot = ctx.inputs.get(i).ok_or_else(|| {
            C2rsError::invalid_argument(format!("input index {i} out of range ({n} inputs)"))
        })?;
        let t = slot.as_ref().ok_or_else(|| {
            let blob = ctx.base.inputs().get(i).map_or("?", |b| b.type_name());
            C2rsError::type_mismatch(format!(
                "input {i} ({}) holds {blob}, not a tensor",
                ctx.base.input_name(i)
            ))
        })?;
        out.set(t as *const Tensor as *const c2rs_tensor);
        Ok(())
    })
}

/// Output tensor `i`, shaped `dims` (`ndim` values) with dtype `dtype`, ready for writing. When
/// the output already holds a tensor of that dtype and shape (from an earlier run, or in
/// place with an input), its values are kept; otherwise it starts zero-filled. The tensor is
/// stored in the output blob when `run` returns C2RS_OK.
///
/// Borrowed: `*out` is valid until the run callback returns or output `i` is requested again
/// or set; do not free it.
/// Thread safety: only inside the run callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL, `dims` is NULL with
/// `ndim > 0`, a dim is negative, `dtype` is unknown, `i` is out of range or the call is made
/// from `create`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_output(
    ctx: *mut c2rs_op_context,
    i: usize,
    dtype: i32,
    dims: *const i64,
    ndim: usize,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_op_context_output", {
        let out = out_param(out, "out")?;
        let ctx = handle_mut(ctx, "ctx")?;
        ctx.check_running("c2rs_op_context_output")?;
        let dtype = dtype_arg(dtype, "dtype")?;
        let dims = array_arg(dims, ndim, "dims")?;
        let n = ctx.outputs.len();
        if i >= n {
            return Err(C2rsError::invalid_argument(format!(
                "output index {i} out of range ({n} outputs)"
            )));
        }
        let current = match ctx.outputs[i].take() {
            Some(t) => Some(t),
            None => ctx.base.output_tensor(i)?,
        };
        let tensor = match current {
            Some(t) if t.dtype() == dtype && t.dims() == dims => t,
            _ => Tensor::zeros(dtype, dims)?,
        };
        let slot = ctx.outputs[i].insert(tensor);
        out.set(slot as *mut Tensor as *mut c2rs_tensor);
        Ok(())
    })
}

/// Sets output `i` to tensor `t`, stored in the output blob when `run` returns C2RS_OK.
///
/// Ownership: `t` is consumed, also on failure (except when `t` itself is NULL).
/// Thread safety: only inside the run callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `t` is NULL, `i` is out of range or
/// the call is made from `create`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_set_output(
    ctx: *mut c2rs_op_context,
    i: usize,
    t: *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_op_context_set_output", {
        let tensor = take_handle::<c2rs_tensor>(t, "t")?;
        let ctx = handle_mut(ctx, "ctx")?;
        ctx.check_running("c2rs_op_context_set_output")?;
        let n = ctx.outputs.len();
        let slot = ctx.outputs.get_mut(i).ok_or_else(|| {
            C2rsError::invalid_argument(format!("output index {i} out of range ({n} outputs)"))
        })?;
        *slot = Some(tensor);
        Ok(())
    })
}

/// Sets the message reported when the current callback returns a non-zero status.
///
/// Ownership: `message` is copied.
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `message` is NULL or not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_set_error(
    ctx: *mut c2rs_op_context,
    message: *const c_char,
) -> i32 {
    ffi_fn!("c2rs_op_context_set_error", {
        let message = name_arg(message, "message")?;
        handle_mut(ctx, "ctx")?.error = Some(message.to_string());
        Ok(())
    })
}

/// Whether the operator's def has an argument `name`.
///
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx`, `name` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_has_arg(
    ctx: *const c2rs_op_context,
    name: *const c_char,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_op_context_has_arg", {
        let out = out_param(out, "out")?;
        let name = name_arg(name, "name")?;
        out.set(handle_ref(ctx, "ctx")?.base.has_argument(name));
        Ok(())
    })
}

/// Integer argument `name` (field `i`), `default_value` when absent.
///
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx`, `name` or `out` is NULL;
/// C2RS_ENFORCE_NOT_MET when the argument exists without an `i` field.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_arg_int(
    ctx: *const c2rs_op_context,
    name: *const c_char,
    default_value: i64,
    out: *mut i64,
) -> i32 {
    ffi_fn!("c2rs_op_context_arg_int", {
        let out = out_param(out, "out")?;
        let name = name_arg(name, "name")?;
        out.set(
            handle_ref(ctx, "ctx")?
                .base
                .single_arg::<i64>(name, default_value)?,
        );
        Ok(())
    })
}

/// Float argument `name` (field `f`), `default_value` when absent.
///
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx`, `name` or `out` is NULL;
/// C2RS_ENFORCE_NOT_MET when the argument exists without an `f` field.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_arg_float(
    ctx: *const c2rs_op_context,
    name: *const c_char,
    default_value: f32,
    out: *mut f32,
) -> i32 {
    ffi_fn!("c2rs_op_context_arg_float", {
        let out = out_param(out, "out")?;
        let name = name_arg(name, "name")?;
        out.set(
            handle_ref(ctx, "ctx")?
                .base
                .single_arg::<f32>(name, default_value)?,
        );
        Ok(())
    })
}

/// String argument `name` (field `s`, arbitrary bytes).
///
/// Borrowed: `*ptr` (`*len` bytes, not NUL-terminated) is valid while the operator exists.
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL; C2RS_NOT_FOUND when the
/// argument is absent; C2RS_ENFORCE_NOT_MET when it has no `s` field.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_arg_string(
    ctx: *const c2rs_op_context,
    name: *const c_char,
    ptr: *mut *const u8,
    len: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_op_context_arg_string", {
        let ptr = out_param(ptr, "ptr")?;
        let len = out_param(len, "len")?;
        let name = name_arg(name, "name")?;
        let arg = handle_ref(ctx, "ctx")?
            .base
            .args()
            .get(name)
            .ok_or_else(|| C2rsError::not_found(format!("argument {name} is absent")))?;
        let s = arg.s.as_ref().ok_or_else(|| {
            C2rsError::enforce(format!(
                "Argument {name} does not have the right field: expected field s"
            ))
        })?;
        ptr.set(s.as_ptr());
        len.set(s.len());
        Ok(())
    })
}

/// Repeated integer argument `name` (field `ints`); empty when absent.
///
/// Borrowed: `*values` (`*len` entries) is valid while the operator exists; NULL when empty.
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_arg_ints(
    ctx: *const c2rs_op_context,
    name: *const c_char,
    values: *mut *const i64,
    len: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_op_context_arg_ints", {
        let values = out_param(values, "values")?;
        let len = out_param(len, "len")?;
        let name = name_arg(name, "name")?;
        if let Some(arg) = handle_ref(ctx, "ctx")?.base.args().get(name) {
            if !arg.ints.is_empty() {
                values.set(arg.ints.as_ptr());
                len.set(arg.ints.len());
            }
        }
        Ok(())
    })
}

/// Repeated float argument `name` (field `floats`); empty when absent.
///
/// Borrowed: `*values` (`*len` entries) is valid while the operator exists; NULL when empty.
/// Thread safety: only inside the callback `ctx` was passed to.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_op_context_arg_floats(
    ctx: *const c2rs_op_context,
    name: *const c_char,
    values: *mut *const f32,
    len: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_op_context_arg_floats", {
        let values = out_param(values, "values")?;
        let len = out_param(len, "len")?;
        let name = name_arg(name, "name")?;
        if let Some(arg) = handle_ref(ctx, "ctx")?.base.args().get(name) {
            if !arg.floats.is_empty() {
                values.set(arg.floats.as_ptr());
                len.set(arg.floats.len());
            }
        }
        Ok(())
    })
}
