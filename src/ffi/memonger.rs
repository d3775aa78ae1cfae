//! The memory optimizer: Caffe2-compatible recycling, the size-aware planner with its arena
//! plan and report, and the verifier. Every function is pure (bytes in, bytes out).

use std::collections::HashMap;
use std::ffi::{CStr, c_char};

use prost::Message;

use super::guard::{array_arg, byte_slice, ffi_fn, ffi_fn_or, out_param};
use super::handle::{c2rs_buffer, c2rs_memory_plan, free_handle, handle_ref, into_handle};
use crate::error::{C2rsError, Result};
use crate::memonger::{dag, fast, planner, python, shapes, verify};
use crate::proto::{NetDef, TensorShapes};

/// A `(char**, n)` list of NUL-terminated UTF-8 names.
fn name_list(ptr: *const *const c_char, n: usize, what: &str) -> Result<Vec<String>> {
    let ptrs = array_arg(ptr, n, what)?;
    ptrs.iter()
        .enumerate()
        .map(|(i, &p)| {
            if p.is_null() {
                return Err(C2rsError::invalid_argument(format!(
                    "`{what}[{i}]` is NULL"
                )));
            }
            // SAFETY: non-NULL; the caller guarantees a NUL-terminated string alive for the call.
            let s = unsafe { CStr::from_ptr(p) };
            s.to_str().map(str::to_string).map_err(|_| {
                C2rsError::invalid_argument(format!("`{what}[{i}]` is not valid UTF-8"))
            })
        })
        .collect()
}

fn decode_net(bytes: &[u8], what: &str) -> Result<NetDef> {
    NetDef::decode(bytes)
        .map_err(|e| C2rsError::parse(format!("`{what}` is not a valid NetDef: {e}")))
}

/// Caffe2's `optimize_inference_net`: sequential free-list recycling giving `__m<k>_shared`
/// names, with the safety fixes of spec/memonger.md §3 (external inputs and outputs always
/// static, ranges end at the last access, blobs read inside subnets kept).
///
/// Nets Caffe2 refuses (type other than "" or "simple", a `RecurrentNetwork` op, an
/// already-optimized net) come back byte-identical.
/// Ownership: inputs are only read; on success the caller owns `*out_net_def`
/// (`c2rs_buffer_free`), a serialized NetDef.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK (also for refusals); C2RS_INVALID_ARGUMENT for a NULL `out_net_def`, a
/// NULL pointer with a non-zero length or count, or a NULL or non-UTF-8 name;
/// C2RS_ENFORCE_NOT_MET when an op fails its registered schema ("Operator def did not pass
/// schema checking: <op>"); C2RS_PARSE_ERROR when `net_def` is not a NetDef.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_optimize_inference_net(
    net_def: *const u8,
    len: usize,
    static_blobs: *const *const c_char,
    n_static: usize,
    out_net_def: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_optimize_inference_net", {
        let out = out_param(out_net_def, "out_net_def")?;
        let bytes = byte_slice(net_def, len, "net_def")?;
        let statics = name_list(static_blobs, n_static, "static_blobs")?;
        let net = decode_net(bytes, "net_def")?;
        let result = match fast::optimize_inference_net(&net, &statics) {
            Ok(opt) => {
                let mut all = statics.clone();
                all.extend(net.external_input.iter().cloned());
                all.extend(net.external_output.iter().cloned());
                if verify::verify(&net, &opt, &all).is_empty() {
                    opt.encode_to_vec()
                } else {
                    bytes.to_vec()
                }
            }
            Err(fast::Refusal::SchemaCheck(m)) => return Err(C2rsError::enforce(m)),
            Err(_) => bytes.to_vec(),
        };
        out.set(into_handle(result));
        Ok(())
    })
}

/// Plans memory for a sequential net: renames activations so that blobs with disjoint
/// lifetimes share names (each name sized by its largest tenant), places every activation
/// in one arena per device, verifies the result and writes a JSON report.
///
/// `tensor_shapes` is a serialized `TensorShapes`; with `shapes_len == 0` every activation
/// counts as size 1 and the plan minimises the number of names. `keep_blobs` are never
/// renamed or recycled (external inputs never are). Shapes naming no blob of the net and
/// shapes with negative or unknown dims are listed under `warnings` in the report (such
/// blobs keep their names). A net Caffe2 would refuse is returned unchanged with a naive
/// arena and the reason under `refused`.
/// Ownership: inputs are only read; on success the caller owns `*out`
/// (`c2rs_memory_plan_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out`, a NULL pointer with a non-zero
/// length or count, a NULL or non-UTF-8 name, two different shapes for one blob, or a net
/// reading a blob that no op writes and that is neither an external input nor kept;
/// C2RS_ENFORCE_NOT_MET when an op fails its registered schema;
/// C2RS_PARSE_ERROR when `net_def` is not a NetDef or `tensor_shapes` not a TensorShapes.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_plan(
    net_def: *const u8,
    len: usize,
    tensor_shapes: *const u8,
    shapes_len: usize,
    keep_blobs: *const *const c_char,
    n_keep: usize,
    out: *mut *mut c2rs_memory_plan,
) -> i32 {
    ffi_fn!("c2rs_memonger_plan", {
        let out = out_param(out, "out")?;
        let bytes = byte_slice(net_def, len, "net_def")?;
        let shape_bytes = byte_slice(tensor_shapes, shapes_len, "tensor_shapes")?;
        let keep = name_list(keep_blobs, n_keep, "keep_blobs")?;
        let net = decode_net(bytes, "net_def")?;
        let shapes = if shape_bytes.is_empty() {
            None
        } else {
            Some(shapes::parse_shapes(shape_bytes)?)
        };
        let opts = planner::PlanOptions {
            static_blobs: keep,
            ..Default::default()
        };
        out.set(into_handle(planner::plan(&net, shapes.as_ref(), &opts)?));
        Ok(())
    })
}

/// The renamed NetDef of `plan`, serialized.
///
/// Ownership: the caller owns `*out_net_def` (`c2rs_buffer_free`); `plan` is unchanged.
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `plan` or `out_net_def` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memory_plan_net(
    plan: *const c2rs_memory_plan,
    out_net_def: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memory_plan_net", {
        let out = out_param(out_net_def, "out_net_def")?;
        let plan = handle_ref(plan, "plan")?;
        out.set(into_handle(plan.net.encode_to_vec()));
        Ok(())
    })
}

/// Total arena bytes of `plan` (the sum over devices; one device for most nets).
///
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `plan` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memory_plan_arena_bytes(
    plan: *const c2rs_memory_plan,
    out: *mut u64,
) -> i32 {
    ffi_fn!("c2rs_memory_plan_arena_bytes", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(plan, "plan")?.total_arena_bytes());
        Ok(())
    })
}

/// Offset and aligned size of the original activation `blob` in its device's arena.
///
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `blob` is not UTF-8;
/// C2RS_NOT_FOUND when `blob` has no arena slice (static, kept, excluded or unknown).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memory_plan_offset(
    plan: *const c2rs_memory_plan,
    blob: *const c_char,
    offset: *mut u64,
    bytes: *mut u64,
) -> i32 {
    ffi_fn!("c2rs_memory_plan_offset", {
        let offset = out_param(offset, "offset")?;
        let bytes = out_param(bytes, "bytes")?;
        let plan = handle_ref(plan, "plan")?;
        let name = name_list(&blob, 1, "blob")?.remove(0);
        let (o, b) = plan
            .offset(&name)
            .ok_or_else(|| C2rsError::not_found(format!("blob `{name}` has no arena slice")))?;
        offset.set(o);
        bytes.set(b);
        Ok(())
    })
}

/// The JSON report of `plan` (keys of spec/memonger.md §5.5: `naive_bytes`, `lb_bytes`,
/// `lb_count`, `names`, `name_bytes`, `arena_bytes`, ratios, exclusions, warnings …).
///
/// Ownership: the caller owns `*out_json` (`c2rs_buffer_free`), UTF-8 without a NUL.
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `plan` or `out_json` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memory_plan_report(
    plan: *const c2rs_memory_plan,
    out_json: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memory_plan_report", {
        let out = out_param(out_json, "out_json")?;
        out.set(into_handle(
            handle_ref(plan, "plan")?.report_json().as_bytes().to_vec(),
        ));
        Ok(())
    })
}

/// The arena plan of `plan` as JSON: `{"alignment", "devices": [{"device_type",
/// "device_id", "arena_bytes", "entries": [{"blob", "final_name", "offset", "bytes",
/// "first", "last"}]}]}`.
///
/// Ownership: the caller owns `*out_json` (`c2rs_buffer_free`), UTF-8 without a NUL.
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `plan` or `out_json` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memory_plan_arena_json(
    plan: *const c2rs_memory_plan,
    out_json: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memory_plan_arena_json", {
        let out = out_param(out_json, "out_json")?;
        out.set(into_handle(
            handle_ref(plan, "plan")?.arena_json().into_bytes(),
        ));
        Ok(())
    })
}

/// Releases `plan`.
///
/// Ownership: `plan` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `plan` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_memory_plan_free(plan: *mut c2rs_memory_plan) {
    ffi_fn_or!("c2rs_memory_plan_free", (), {
        free_handle(plan);
        Ok(())
    })
}

/// Checks that `after` is a safe renaming of `before`: same ops (type, engine, device,
/// arguments), same producer for every read, same in-place pairs, distinct outputs per op,
/// static blobs (`static_blobs`, external inputs and outputs) and external lists untouched,
/// and no two activations alive at one op sharing a name.
///
/// Ownership: inputs are only read.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK when the rewrite is safe; C2RS_ENFORCE_NOT_MET with every violation in
/// the message (naming the blobs and the op); C2RS_INVALID_ARGUMENT for a NULL pointer
/// with a non-zero length or count or a bad name; C2RS_PARSE_ERROR when either net does
/// not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_verify(
    before: *const u8,
    before_len: usize,
    after: *const u8,
    after_len: usize,
    static_blobs: *const *const c_char,
    n_static: usize,
) -> i32 {
    ffi_fn!("c2rs_memonger_verify", {
        let before = decode_net(byte_slice(before, before_len, "before")?, "before")?;
        let after = decode_net(byte_slice(after, after_len, "after")?, "after")?;
        let statics = name_list(static_blobs, n_static, "static_blobs")?;
        let v = verify::verify(&before, &after, &statics);
        if v.is_empty() {
            Ok(())
        } else {
            let text: Vec<&str> = v.iter().map(|x| x.0.as_str()).collect();
            Err(C2rsError::enforce(format!(
                "{} violation(s): {}",
                v.len(),
                text.join("; ")
            )))
        }
    })
}

/// An optional NUL-terminated UTF-8 string; NULL reads as "".
fn opt_str(p: *const c_char, what: &str) -> Result<String> {
    if p.is_null() {
        return Ok(String::new());
    }
    Ok(name_list(&p, 1, what)?.remove(0))
}

/// Dims per name from a serialized `TensorShapes` (empty bytes: no shapes).
fn dims_of(bytes: &[u8]) -> Result<HashMap<String, Vec<i64>>> {
    if bytes.is_empty() {
        return Ok(HashMap::new());
    }
    // Same validation as the planner (conflicting duplicates are an error).
    shapes::parse_shapes(bytes)?;
    let s = TensorShapes::decode(bytes)
        .map_err(|e| C2rsError::parse(format!("bytes are not a valid TensorShapes: {e}")))?;
    Ok(s.shapes
        .into_iter()
        .map(|t| {
            (
                String::from_utf8_lossy(&t.name.unwrap_or_default()).into_owned(),
                t.dims,
            )
        })
        .collect())
}

/// Caffe2's `compute_blob_recycling_for_dag` (spec/memonger.md §4): DAG-safe recycling of
/// the `shareable` names among the ops `op_indices`, walking from the consumers of `heads`;
/// a blob is reused only by an op ordered after every op that touched it in any parallel
/// execution, on the same device. Shared names are `namescope + "__m<k>_shared"`, numbered
/// in order of first mapping; step nets of `RecurrentNetwork*` ops (with `.rename` args and
/// their blob-name args) and `then_net`/`else_net` of `If`/`AsyncIf` are renamed
/// consistently. External inputs and outputs and `dont_share` are never recycled.
///
/// `namescope` may be NULL (""). `tensor_shapes` (serialized `TensorShapes`, may be empty)
/// guides which free blob an output takes.
/// Ownership: inputs are only read; on success the caller owns `*out_net_def`
/// (`c2rs_buffer_free`), a serialized NetDef.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out_net_def`, a NULL pointer with a
/// non-zero length or count, a bad name, a negative or out-of-range op index, or two shapes
/// for one blob; C2RS_ENFORCE_NOT_MET when a shareable input of an op was not written by an
/// earlier op or an op fails its registered schema; C2RS_PARSE_ERROR when `net_def` or `tensor_shapes` does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_compute_blob_recycling_for_dag(
    net_def: *const u8,
    len: usize,
    heads: *const *const c_char,
    n_heads: usize,
    op_indices: *const i32,
    n_op_indices: usize,
    shareable: *const *const c_char,
    n_shareable: usize,
    namescope: *const c_char,
    dont_share: *const *const c_char,
    n_dont_share: usize,
    tensor_shapes: *const u8,
    shapes_len: usize,
    out_net_def: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_compute_blob_recycling_for_dag", {
        let out = out_param(out_net_def, "out_net_def")?;
        let net = decode_net(byte_slice(net_def, len, "net_def")?, "net_def")?;
        let idx = array_arg(op_indices, n_op_indices, "op_indices")?
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .map_err(|_| C2rsError::invalid_argument(format!("op index {i} is negative")))
            })
            .collect::<Result<Vec<usize>>>()?;
        let opts = dag::DagOptions {
            heads: name_list(heads, n_heads, "heads")?,
            op_indices: idx,
            shareable: name_list(shareable, n_shareable, "shareable")?
                .into_iter()
                .collect(),
            namescope: opt_str(namescope, "namescope")?,
            dont_share: name_list(dont_share, n_dont_share, "dont_share")?
                .into_iter()
                .collect(),
            blob_shapes: dims_of(byte_slice(tensor_shapes, shapes_len, "tensor_shapes")?)?,
            best_fit: false,
        };
        let r = dag::compute_blob_recycling_for_dag(&net, &opts)?;
        out.set(into_handle(r.net.encode_to_vec()));
        Ok(())
    })
}

/// Python's `memonger.share_grad_blobs` (spec/memonger.md §6): recycles gradient blobs
/// (names ending in `_grad` under `namescope`, parameter gradients excluded) and, when
/// `share_activations` is non-zero, forward activations, starting at `losses`; the result
/// passes the graph-equality and in-place verifiers.
///
/// `namescope` may be NULL (""); a non-empty one gets "/" appended.
/// Ownership: inputs are only read; on success the caller owns `*out_net_def`
/// (`c2rs_buffer_free`), a serialized NetDef.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out_net_def`, a NULL pointer with a
/// non-zero length or count, or a bad name; C2RS_ENFORCE_NOT_MET when the recycling or
/// its verification fails; C2RS_PARSE_ERROR when a protobuf does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_share_grad_blobs(
    net_def: *const u8,
    len: usize,
    losses: *const *const c_char,
    n_losses: usize,
    param_grads: *const *const c_char,
    n_param_grads: usize,
    namescope: *const c_char,
    dont_share: *const *const c_char,
    n_dont_share: usize,
    share_activations: i32,
    tensor_shapes: *const u8,
    shapes_len: usize,
    out_net_def: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_share_grad_blobs", {
        let out = out_param(out_net_def, "out_net_def")?;
        let net = decode_net(byte_slice(net_def, len, "net_def")?, "net_def")?;
        let o = python::ShareGradOptions {
            losses: name_list(losses, n_losses, "losses")?,
            param_grads: name_list(param_grads, n_param_grads, "param_grads")?
                .into_iter()
                .collect(),
            namescope: opt_str(namescope, "namescope")?,
            dont_share: name_list(dont_share, n_dont_share, "dont_share")?
                .into_iter()
                .collect(),
            share_activations: share_activations != 0,
            blob_shapes: dims_of(byte_slice(tensor_shapes, shapes_len, "tensor_shapes")?)?,
        };
        let r = python::share_grad_blobs(&net, &o)?;
        out.set(into_handle(r.net.encode_to_vec()));
        Ok(())
    })
}

/// Python's `memonger.optimize_inference_for_dag` (spec/memonger.md §6): DAG-safe
/// recycling of every name in neither external list over all ops, starting at
/// `input_blobs`; shared names are `namescope + "__m<k>_shared"` (no "/" added).
///
/// `namescope` may be NULL ("").
/// Ownership: inputs are only read; on success the caller owns `*out_net_def`
/// (`c2rs_buffer_free`), a serialized NetDef.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out_net_def`, a NULL pointer with a
/// non-zero length or count, or a bad name; C2RS_ENFORCE_NOT_MET for a gradient op, an
/// input no earlier op wrote, or a failed verification; C2RS_PARSE_ERROR when `net_def`
/// does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_optimize_inference_for_dag(
    net_def: *const u8,
    len: usize,
    input_blobs: *const *const c_char,
    n_input_blobs: usize,
    namescope: *const c_char,
    out_net_def: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_optimize_inference_for_dag", {
        let out = out_param(out_net_def, "out_net_def")?;
        let net = decode_net(byte_slice(net_def, len, "net_def")?, "net_def")?;
        let inputs = name_list(input_blobs, n_input_blobs, "input_blobs")?;
        let ns = opt_str(namescope, "namescope")?;
        let r = python::optimize_inference_for_dag(&net, &inputs, &ns)?;
        out.set(into_handle(r.net.encode_to_vec()));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::buffer::{c2rs_buffer_data, c2rs_buffer_free, c2rs_buffer_len};
    use crate::ffi::status::*;
    use crate::proto::OperatorDef;
    use std::ffi::CString;

    fn op(ty: &str, i: &[&str], o: &[&str]) -> OperatorDef {
        OperatorDef {
            r#type: Some(ty.into()),
            input: i.iter().map(|s| s.to_string()).collect(),
            output: o.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn chain_net() -> Vec<u8> {
        NetDef {
            op: vec![
                op("Relu", &["data"], &["a"]),
                op("Relu", &["a"], &["b"]),
                op("Relu", &["b"], &["c"]),
                op("Relu", &["c"], &["out"]),
            ],
            external_input: vec!["data".into()],
            external_output: vec!["out".into()],
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn bytes_of(b: *mut c2rs_buffer) -> Vec<u8> {
        let len = c2rs_buffer_len(b);
        // SAFETY: `b` is live and holds `len` bytes.
        let v = unsafe { std::slice::from_raw_parts(c2rs_buffer_data(b), len) }.to_vec();
        c2rs_buffer_free(b);
        v
    }

    #[test]
    fn dag_exports_recycle_and_report_bad_input() {
        let bytes = chain_net();
        let heads = [CString::new("data").unwrap()];
        let head_ptrs: Vec<*const c_char> = heads.iter().map(|c| c.as_ptr()).collect();
        let names = ["a", "b", "c"].map(|s| CString::new(s).unwrap());
        let ptrs: Vec<*const c_char> = names.iter().map(|c| c.as_ptr()).collect();
        let idx = [0i32, 1, 2, 3];
        let mut out: *mut c2rs_buffer = std::ptr::null_mut();
        let st = c2rs_memonger_compute_blob_recycling_for_dag(
            bytes.as_ptr(),
            bytes.len(),
            head_ptrs.as_ptr(),
            1,
            idx.as_ptr(),
            4,
            ptrs.as_ptr(),
            3,
            std::ptr::null(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            &mut out,
        );
        assert_eq!(st, C2RS_OK);
        let net = NetDef::decode(&bytes_of(out)[..]).unwrap();
        assert_eq!(net.op[2].output[0], "__m0_shared");
        assert_eq!(net.op[0].output[0], "__m0_shared");
        let bad = [-1i32];
        let st = c2rs_memonger_compute_blob_recycling_for_dag(
            bytes.as_ptr(),
            bytes.len(),
            head_ptrs.as_ptr(),
            1,
            bad.as_ptr(),
            1,
            ptrs.as_ptr(),
            3,
            std::ptr::null(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            &mut out,
        );
        assert_eq!(st, C2RS_INVALID_ARGUMENT);
        let st = c2rs_memonger_optimize_inference_for_dag(
            bytes.as_ptr(),
            bytes.len(),
            head_ptrs.as_ptr(),
            1,
            std::ptr::null(),
            &mut out,
        );
        assert_eq!(st, C2RS_OK);
        let net = NetDef::decode(&bytes_of(out)[..]).unwrap();
        assert_eq!(net.op[3].output[0], "out");
        let garbage = [0xffu8; 7];
        let st = c2rs_memonger_share_grad_blobs(
            garbage.as_ptr(),
            garbage.len(),
            head_ptrs.as_ptr(),
            1,
            std::ptr::null(),
            0,
            std::ptr::null(),
            std::ptr::null(),
            0,
            1,
            std::ptr::null(),
            0,
            &mut out,
        );
        assert_eq!(st, C2RS_PARSE_ERROR);
    }

    #[test]
    fn plan_exports_report_offsets_and_renamed_net() {
        let net = chain_net();
        let mut plan = std::ptr::null_mut();
        assert_eq!(
            c2rs_memonger_plan(
                net.as_ptr(),
                net.len(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                &mut plan
            ),
            C2RS_OK
        );
        let mut arena = 0u64;
        assert_eq!(c2rs_memory_plan_arena_bytes(plan, &mut arena), C2RS_OK);
        assert_eq!(
            arena, 128,
            "a chain of size-1 blobs needs two 64-byte slots"
        );
        let name = CString::new("b").unwrap();
        let (mut off, mut len) = (7u64, 7u64);
        assert_eq!(
            c2rs_memory_plan_offset(plan, name.as_ptr(), &mut off, &mut len),
            C2RS_OK
        );
        assert_eq!(len, 64);
        let missing = CString::new("data").unwrap();
        assert_eq!(
            c2rs_memory_plan_offset(plan, missing.as_ptr(), &mut off, &mut len),
            C2RS_NOT_FOUND
        );
        assert_eq!((off, len), (0, 0));
        let mut buf = std::ptr::null_mut();
        assert_eq!(c2rs_memory_plan_report(plan, &mut buf), C2RS_OK);
        let report = String::from_utf8(bytes_of(buf)).unwrap();
        assert!(report.contains("\"lb_count\":2"), "{report}");
        assert_eq!(c2rs_memory_plan_net(plan, &mut buf), C2RS_OK);
        let renamed = bytes_of(buf);
        let keep = [CString::new("data").unwrap()];
        let ptrs: Vec<*const c_char> = keep.iter().map(|c| c.as_ptr()).collect();
        assert_eq!(
            c2rs_memonger_verify(
                net.as_ptr(),
                net.len(),
                renamed.as_ptr(),
                renamed.len(),
                ptrs.as_ptr(),
                1
            ),
            C2RS_OK
        );
        c2rs_memory_plan_free(plan);
        c2rs_memory_plan_free(std::ptr::null_mut());
    }

    #[test]
    fn null_and_garbage_inputs_give_statuses() {
        let mut plan = std::ptr::null_mut();
        assert_eq!(
            c2rs_memonger_plan(
                std::ptr::null(),
                3,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                &mut plan
            ),
            C2RS_INVALID_ARGUMENT
        );
        let junk = [0xffu8, 0xff, 0xff, 0x07];
        assert_eq!(
            c2rs_memonger_plan(
                junk.as_ptr(),
                junk.len(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                &mut plan
            ),
            C2RS_PARSE_ERROR
        );
        let net = chain_net();
        assert_eq!(
            c2rs_memonger_plan(
                net.as_ptr(),
                net.len(),
                junk.as_ptr(),
                junk.len(),
                std::ptr::null(),
                0,
                &mut plan
            ),
            C2RS_PARSE_ERROR
        );
        assert!(plan.is_null());
        assert_eq!(
            c2rs_memonger_plan(
                net.as_ptr(),
                net.len(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                std::ptr::null_mut()
            ),
            C2RS_INVALID_ARGUMENT
        );
        let mut arena = 0;
        assert_eq!(
            c2rs_memory_plan_arena_bytes(std::ptr::null(), &mut arena),
            C2RS_INVALID_ARGUMENT
        );
        let mut out = std::ptr::null_mut();
        assert_eq!(
            c2rs_memonger_optimize_inference_net(
                net.as_ptr(),
                net.len(),
                std::ptr::null(),
                1,
                &mut out
            ),
            C2RS_INVALID_ARGUMENT
        );
    }

    #[test]
    fn verify_rejects_a_rename_that_merges_live_blobs() {
        let before = chain_net();
        let mut bad = NetDef::decode(&before[..]).unwrap();
        bad.op[1].output[0] = "a".into(); // b -> a while a is read by op 1: in-place change
        bad.op[2].input[0] = "a".into();
        let bad = bad.encode_to_vec();
        assert_eq!(
            c2rs_memonger_verify(
                before.as_ptr(),
                before.len(),
                bad.as_ptr(),
                bad.len(),
                std::ptr::null(),
                0
            ),
            C2RS_ENFORCE_NOT_MET
        );
        let msg = unsafe { CStr::from_ptr(crate::ffi::guard::last_error_message()) }
            .to_string_lossy()
            .into_owned();
        assert!(msg.contains("op #1 (Relu)"), "{msg}");
    }
}
