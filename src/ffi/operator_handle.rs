//! One operator as a handle: built once in a workspace from an OperatorDef, run any number of
//! times (keeping its state: a TensorProtosDBInput's prefetcher, a queue op's queue), cancelled
//! and freed. What a host's own operator registry calls to run a caffe2rs operator (see
//! include/caffe2rs/host_op.hpp). Also the schema of a registered operator type as JSON.
#![allow(non_camel_case_types)]

use std::ffi::c_char;
use std::sync::Arc;

use super::guard::{byte_slice, ffi_fn, ffi_fn_or, name_arg, out_param};
use super::handle::{
    BoxHandle, arc_clone, c2rs_buffer, c2rs_tensor, c2rs_workspace, free_handle, handle_ref,
    into_handle, take_handle,
};
use super::object::{ObjectValue, c2rs_object};
use crate::error::{C2rsError, Result};
use crate::operator::{Operator, catalog, create_operator, global_registry, run_operator};
use crate::workspace::names::decode_operator_def;
use crate::workspace::{Blob, BlobContent, Workspace};

/// An operator built in a workspace (`c2rs_operator_new`), released by `c2rs_operator_free`.
/// Runs may come from any thread.
pub struct c2rs_operator {
    _private: [u8; 0],
}

/// The operator and the workspace it was built in (kept alive: the operator's blobs live there).
pub(crate) struct OperatorHandle {
    op: Box<dyn Operator>,
    _ws: Arc<Workspace>,
}

impl BoxHandle for c2rs_operator {
    type Target = OperatorHandle;
}

/// Builds the operator a serialized OperatorDef describes in `ws`, as a net would (schema
/// check, engines tried in order with fallback to the plain type, so an engine such as "C2RS"
/// that caffe2rs does not have falls back to its own implementation). Inputs must exist in `ws`;
/// outputs are created there. The operator keeps the blobs it resolved: feed, take and fetch
/// them by name between runs.
///
/// Ownership: `op_def` is only read; on success the caller owns `*out` (`c2rs_operator_free`),
/// which also holds a reference to `ws`.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `op_def` is NULL with
/// `len > 0` or a name in it is not UTF-8; C2RS_PARSE_ERROR when the bytes are not an
/// OperatorDef; C2RS_SCHEMA_MISMATCH when the def fails the type's schema; C2RS_NOT_FOUND for
/// an unknown type; C2RS_ENFORCE_NOT_MET for a missing input blob or a bad argument.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_operator_new(
    ws: *mut c2rs_workspace,
    op_def: *const u8,
    len: usize,
    out: *mut *mut c2rs_operator,
) -> i32 {
    ffi_fn!("c2rs_operator_new", {
        let out = out_param(out, "out")?;
        let ws = arc_clone(ws, "ws")?;
        let def = decode_operator_def(byte_slice(op_def, len, "op_def")?)?;
        let op = create_operator(&def, &ws, None)?;
        out.set(into_handle(OperatorHandle { op, _ws: ws }));
        Ok(())
    })
}

/// Runs the operator once. A run that returns false is C2RS_RUN_FAILED; every failure's
/// message starts with "op (<Type>): " and carries the operator's own message.
///
/// Thread safety: safe from any thread; concurrent runs of one operator behave as concurrent
/// runs of one net's operator.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `op` is NULL; otherwise the operator's
/// failure status (C2RS_RUN_FAILED, C2RS_ENFORCE_NOT_MET, C2RS_CLOSED, C2RS_PARSE_ERROR …).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_operator_run(op: *const c2rs_operator) -> i32 {
    ffi_fn!("c2rs_operator_run", {
        run_operator(handle_ref(op, "op")?.op.as_ref())
    })
}

/// Asks a running (or the next) run to stop early: a blocking queue operator closes its
/// queue. Used when another operator of the host's net failed.
///
/// Thread safety: safe from any thread, also while `c2rs_operator_run` runs.
/// Returns: nothing (NULL is a no-op).
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_operator_cancel(op: *const c2rs_operator) {
    ffi_fn_or!("c2rs_operator_cancel", (), {
        if !op.is_null() {
            handle_ref(op, "op")?.op.cancel();
        }
        Ok(())
    })
}

/// Releases the operator (a prefetching operator stops and joins its threads first).
///
/// Ownership: `op` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `op` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_operator_free(op: *mut c2rs_operator) {
    ffi_fn_or!("c2rs_operator_free", (), {
        free_handle(op);
        Ok(())
    })
}

/// Input blob `i` / output blob `o` of the operator, or an argument error naming the range.
fn slot<'a>(blobs: &'a [Arc<Blob>], i: usize, what: &str) -> Result<&'a Arc<Blob>> {
    blobs.get(i).ok_or_else(|| {
        C2rsError::invalid_argument(format!(
            "{what} index {i} out of range ({} {what}s)",
            blobs.len()
        ))
    })
}

/// Puts tensor `t` in the operator's input blob `i` (the blob the def's input `i` names),
/// without a name lookup: the fast path of a host bridge feeding each run.
///
/// Ownership: `t` is consumed in every case (unless it is NULL).
/// Thread safety: safe from any thread; not concurrently with a run reading that input.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `op` or `t` is NULL or `i` is out of range.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_operator_set_input(
    op: *const c2rs_operator,
    i: usize,
    t: *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_operator_set_input", {
        let tensor = take_handle(t, "t")?;
        let op = handle_ref(op, "op")?;
        slot(op.op.base().inputs(), i, "input")?.set_tensor(tensor);
        Ok(())
    })
}

/// Puts object `obj` (a queue, a DB reader, a byte string) in the operator's input blob `i`.
///
/// Ownership: `obj` is shared (a byte string copied), not consumed.
/// Thread safety: safe from any thread; not concurrently with a run reading that input.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `op` or `obj` is NULL or `i` is out of range.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_operator_set_input_object(
    op: *const c2rs_operator,
    i: usize,
    obj: *const c2rs_object,
) -> i32 {
    ffi_fn!("c2rs_operator_set_input_object", {
        let content = handle_ref(obj, "obj")?.content();
        let op = handle_ref(op, "op")?;
        *slot(op.op.base().inputs(), i, "input")?.write() = content;
        Ok(())
    })
}

/// Empties the operator's input blob `i`, releasing what it held (a host buffer, a queue
/// reference) until the next run feeds it.
///
/// Thread safety: safe from any thread; not concurrently with a run reading that input.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `op` is NULL or `i` is out of range.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_operator_clear_input(op: *const c2rs_operator, i: usize) -> i32 {
    ffi_fn!("c2rs_operator_clear_input", {
        let op = handle_ref(op, "op")?;
        drop(slot(op.op.base().inputs(), i, "input")?.take());
        Ok(())
    })
}

/// Moves the content of the operator's output blob `o` out, as `c2rs_workspace_take_n` does
/// for a named blob: a tensor to `*tensor`, anything else to `*object` (may be NULL when only
/// tensors are expected: another content is then refused and left in place); both NULL when
/// the blob is empty.
///
/// Ownership: on success the caller owns `*tensor` (`c2rs_tensor_free`) or `*object`
/// (`c2rs_object_free`).
/// Thread safety: safe from any thread; not concurrently with a run writing that output.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `op` or `tensor` is NULL or `o` is out of
/// range; C2RS_TYPE_MISMATCH when `object` is NULL and the blob holds a non-tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_operator_take_output(
    op: *const c2rs_operator,
    o: usize,
    tensor: *mut *mut c2rs_tensor,
    object: *mut *mut c2rs_object,
) -> i32 {
    ffi_fn!("c2rs_operator_take_output", {
        let tensor_out = out_param(tensor, "tensor")?;
        let object_out = if object.is_null() {
            None
        } else {
            Some(out_param(object, "object")?)
        };
        let op = handle_ref(op, "op")?;
        let blob = slot(op.op.base().outputs(), o, "output")?;
        let mut guard = blob.write();
        if object_out.is_none() && !matches!(&*guard, BlobContent::Tensor(_) | BlobContent::Empty) {
            return Err(C2rsError::type_mismatch(format!(
                "output {o} holds {}, not a tensor (pass `object` to take any content)",
                guard.type_name()
            )));
        }
        let content = std::mem::take(&mut *guard);
        drop(guard);
        match content {
            BlobContent::Empty => {}
            BlobContent::Tensor(t) => tensor_out.set(into_handle(t)),
            other => {
                if let Some(out) = object_out {
                    out.set(into_handle(ObjectValue::new(other)?));
                }
            }
        }
        Ok(())
    })
}

/// The schema of operator type `type` as JSON (UTF-8): `type`, `has_schema`, `devices`,
/// `engines`, and with a schema `doc`, `differences` (from Caffe2), `inputs` and `outputs`
/// (`min`, `max` — null when unbounded — and `docs`: index, name, doc) and `args` (name, type,
/// default, required, doc). docs/operators.md is generated from the same data.
///
/// Ownership: the caller owns `*json` (`c2rs_buffer_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `type` or `json` is NULL or `type` is not
/// UTF-8; C2RS_NOT_FOUND when no operator of that type is registered.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_operator_schema(r#type: *const c_char, json: *mut *mut c2rs_buffer) -> i32 {
    ffi_fn!("c2rs_operator_schema", {
        let out = out_param(json, "json")?;
        let op_type = name_arg(r#type, "type")?;
        out.set(into_handle(schema_json(op_type)?.into_bytes()));
        Ok(())
    })
}

fn schema_json(op_type: &str) -> Result<String> {
    let reg = global_registry().read();
    let entry = catalog::entry(&reg, op_type).ok_or_else(|| {
        C2rsError::not_found(format!(
            "no operator of type '{op_type}' is registered (c2rs_registered_operators lists them)"
        ))
    })?;
    Ok(catalog::entry_json(&entry))
}
