//! The memory optimizer: Caffe2-compatible recycling, the size-aware planner with its arena
//! plan and report, and the verifier. Every function is pure (bytes in, bytes out).

use std::collections::HashMap;
use std::ffi::{c_char, c_void};

use prost::Message;

use super::guard::{array_arg, byte_slice, ffi_fn, ffi_fn_or, name_arg, out_param};
use super::handle::{c2rs_buffer, c2rs_memory_plan, free_handle, handle_ref, into_handle};
use crate::error::{C2rsError, Result};
use crate::memonger::{dag, fast, interference, planner, python, release, report, shapes, verify};
use crate::proto::{NetDef, TensorShapes};
use crate::workspace::names::decode_net_def;

/// A `(char**, n)` list of NUL-terminated UTF-8 names, collected into a `Vec` or a set
/// (the guard's `name_arg` checks each entry).
fn name_list<C: FromIterator<String>>(
    ptr: *const *const c_char,
    n: usize,
    what: &str,
) -> Result<C> {
    array_arg(ptr, n, what)?
        .iter()
        .enumerate()
        .map(|(i, &p)| name_arg(p, &format!("{what}[{i}]")).map(str::to_string))
        .collect()
}

fn decode_net(bytes: &[u8], what: &str) -> Result<NetDef> {
    decode_net_def(bytes).map_err(|e| e.context(format!("argument `{what}`")))
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
        let statics = name_list::<Vec<String>>(static_blobs, n_static, "static_blobs")?;
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
/// renamed or recycled (external inputs never are); external outputs keep their names and
/// their storage (`c2rs_memonger_plan_with_options` can let them be shared). The planner
/// searches for up to one second (counted from the start of planning) for a better plan
/// than its greedy one; the result is never worse than the greedy plan and may be better
/// with a larger budget (`c2rs_memonger_plan_with_options`). A search that ends before the
/// budget (most nets: it reached a proven optimum or its node limit) gives the same plan
/// on every run and machine; one stopped by the clock may differ between runs, and the
/// report's `arena_optimal` / `names_optimal` say whether more time could help. Shapes
/// naming no blob of the net and
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
        out.set(into_handle(plan_from_c(
            net_def,
            len,
            tensor_shapes,
            shapes_len,
            keep_blobs,
            n_keep,
            planner::PlanOptions::default(),
        )?));
        Ok(())
    })
}

/// Flag of `c2rs_memonger_plan_with_options`: activations may take an external output's
/// name (it becomes the last tenant of a shared name). Without it external outputs keep
/// their names and storage to themselves.
pub const C2RS_MEMONGER_SHARE_EXTERNAL_OUTPUTS: u32 = 1;

/// `c2rs_memonger_plan` with a search budget and flags.
///
/// After the greedy name plan and arenas, the planner searches for cheaper ones for at most
/// `search_budget_ms` milliseconds from the start of planning (0: greedy only;
/// `c2rs_memonger_plan` uses 1000); the result is never worse than the greedy one and may
/// improve with a larger budget. The searches are bounded by node counts as well: one that
/// ends within the budget gives the same plan on every run and machine, one cut by the
/// clock may differ between runs. The report says `arena_lb_bytes`,
/// `arena_optimal`, `name_lb_bytes`, `names_optimal`, `search_nodes` and `search_ms`.
/// `flags` is 0 or `C2RS_MEMONGER_SHARE_EXTERNAL_OUTPUTS`. Everything else as
/// `c2rs_memonger_plan`.
/// Ownership: inputs are only read; on success the caller owns `*out`
/// (`c2rs_memory_plan_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out`, a NULL pointer with a non-zero
/// length or count, a NULL or non-UTF-8 name, an unknown bit in `flags`, two different
/// shapes for one blob, or a net reading a blob that no op writes and that is neither an
/// external input nor kept; C2RS_ENFORCE_NOT_MET when an op fails its registered schema;
/// C2RS_PARSE_ERROR when `net_def` is not a NetDef or `tensor_shapes` not a TensorShapes.
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn c2rs_memonger_plan_with_options(
    net_def: *const u8,
    len: usize,
    tensor_shapes: *const u8,
    shapes_len: usize,
    keep_blobs: *const *const c_char,
    n_keep: usize,
    search_budget_ms: u32,
    flags: u32,
    out: *mut *mut c2rs_memory_plan,
) -> i32 {
    ffi_fn!("c2rs_memonger_plan_with_options", {
        let out = out_param(out, "out")?;
        if flags & !C2RS_MEMONGER_SHARE_EXTERNAL_OUTPUTS != 0 {
            return Err(C2rsError::invalid_argument(format!(
                "`flags` has unknown bits: {flags:#x}"
            )));
        }
        let opts = planner::PlanOptions {
            search_budget: std::time::Duration::from_millis(search_budget_ms as u64),
            share_external_outputs: flags & C2RS_MEMONGER_SHARE_EXTERNAL_OUTPUTS != 0,
            ..Default::default()
        };
        out.set(into_handle(plan_from_c(
            net_def,
            len,
            tensor_shapes,
            shapes_len,
            keep_blobs,
            n_keep,
            opts,
        )?));
        Ok(())
    })
}

/// Decodes the C arguments of the plan exports and plans.
fn plan_from_c(
    net_def: *const u8,
    len: usize,
    tensor_shapes: *const u8,
    shapes_len: usize,
    keep_blobs: *const *const c_char,
    n_keep: usize,
    opts: planner::PlanOptions,
) -> Result<planner::MemoryPlan> {
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
        ..opts
    };
    planner::plan(&net, shapes.as_ref(), &opts)
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
        let name = name_arg(blob, "blob")?;
        let (o, b) = plan
            .offset(name)
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
        let statics = name_list::<Vec<String>>(static_blobs, n_static, "static_blobs")?;
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
    Ok(name_arg(p, what)?.to_string())
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
            shareable: name_list(shareable, n_shareable, "shareable")?,
            namescope: opt_str(namescope, "namescope")?,
            dont_share: name_list(dont_share, n_dont_share, "dont_share")?,
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
            param_grads: name_list(param_grads, n_param_grads, "param_grads")?,
            namescope: opt_str(namescope, "namescope")?,
            dont_share: name_list(dont_share, n_dont_share, "dont_share")?,
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
        let inputs = name_list::<Vec<String>>(input_blobs, n_input_blobs, "input_blobs")?;
        let ns = opt_str(namescope, "namescope")?;
        let r = python::optimize_inference_for_dag(&net, &inputs, &ns)?;
        out.set(into_handle(r.net.encode_to_vec()));
        Ok(())
    })
}

/// The graph-equality part of the verifier (Python's `verify_graph_equality`): same op
/// count, type, engine and device option per op, and every input read from the same
/// producing op in both nets.
///
/// Ownership: inputs are only read.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK when equal; C2RS_ENFORCE_NOT_MET with the differences in the message;
/// C2RS_INVALID_ARGUMENT for a NULL pointer with a non-zero length; C2RS_PARSE_ERROR when
/// either net does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_verify_graph_equality(
    before: *const u8,
    before_len: usize,
    after: *const u8,
    after_len: usize,
) -> i32 {
    ffi_fn!("c2rs_memonger_verify_graph_equality", {
        let before = decode_net(byte_slice(before, before_len, "before")?, "before")?;
        let after = decode_net(byte_slice(after, after_len, "after")?, "after")?;
        violations_to_status(verify::verify_graph_equality(&before, &after))
    })
}

/// The in-place part of the verifier (Python's `verify_inplace_blobs`): per op, the same
/// (input slot, output slot) pairs share a name in both nets.
///
/// Ownership: inputs are only read.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK when equal; C2RS_ENFORCE_NOT_MET naming the ops that differ;
/// C2RS_INVALID_ARGUMENT for a NULL pointer with a non-zero length; C2RS_PARSE_ERROR when
/// either net does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_verify_inplace_blobs(
    before: *const u8,
    before_len: usize,
    after: *const u8,
    after_len: usize,
) -> i32 {
    ffi_fn!("c2rs_memonger_verify_inplace_blobs", {
        let before = decode_net(byte_slice(before, before_len, "before")?, "before")?;
        let after = decode_net(byte_slice(after, after_len, "after")?, "after")?;
        violations_to_status(verify::verify_inplace_blobs(&before, &after))
    })
}

fn violations_to_status(v: Vec<verify::Violation>) -> Result<()> {
    if v.is_empty() {
        return Ok(());
    }
    let text: Vec<&str> = v.iter().map(|x| x.0.as_str()).collect();
    Err(C2rsError::enforce(format!(
        "{} violation(s): {}",
        v.len(),
        text.join("; ")
    )))
}

fn json_array<T>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> String) -> String {
    let v: Vec<String> = items.into_iter().map(f).collect();
    format!("[{}]", v.join(","))
}

fn chains_json(chains: &[Vec<String>]) -> String {
    json_array(chains, |c| json_array(c, |n| report::json_str(n)))
}

/// The interference graph of a net (spec/memonger.md §6): an edge i → j (i < j) when an
/// output of op i is an input of op j, for every earlier writer, plus write-after-read and
/// write-after-write edges; as JSON `[[i, j], …]`, sorted.
///
/// Ownership: inputs are only read; on success the caller owns `*out_json`
/// (`c2rs_buffer_free`), UTF-8 without a NUL.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out_json` or a NULL pointer with a
/// non-zero length; C2RS_PARSE_ERROR when `net_def` does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_interference_graph(
    net_def: *const u8,
    len: usize,
    out_json: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_interference_graph", {
        let out = out_param(out_json, "out_json")?;
        let net = decode_net(byte_slice(net_def, len, "net_def")?, "net_def")?;
        let edges = interference::interference_graph(&net);
        out.set(into_handle(
            json_array(edges, |(a, b)| format!("[{a},{b}]")).into_bytes(),
        ));
        Ok(())
    })
}

/// A topological order of the graph with `n_nodes` nodes and `n_edges` edges
/// (`edges[2k] → edges[2k + 1]`): `longest_path == 0` gives Kahn's order with a LIFO
/// stack (Python's `topological_sort_traversal`), non-zero the longest-chains-first order
/// (`topological_sort_traversal_longest_path`). Writes `n_nodes` node indices to `out_order`.
///
/// Ownership: inputs are only read; `out_order` is caller memory of `n_nodes` entries.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL pointer with a non-zero count, an
/// edge naming a node ≥ `n_nodes`, or a cycle.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_topological_sort(
    n_nodes: usize,
    edges: *const usize,
    n_edges: usize,
    longest_path: i32,
    out_order: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_memonger_topological_sort", {
        let flat = array_arg(edges, n_edges.saturating_mul(2), "edges")?;
        let pairs: Vec<(usize, usize)> = flat.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        let order = if longest_path != 0 {
            interference::topological_sort_traversal_longest_path(n_nodes, &pairs)?
        } else {
            interference::topological_sort_traversal(n_nodes, &pairs)?
        };
        if n_nodes > 0 && out_order.is_null() {
            return Err(C2rsError::invalid_argument("`out_order` is NULL"));
        }
        if n_nodes > 0 {
            // SAFETY: non-NULL; the caller provides `n_nodes` writable entries.
            let dst = unsafe { std::slice::from_raw_parts_mut(out_order, n_nodes) };
            dst.copy_from_slice(&order);
        }
        Ok(())
    })
}

fn ranges_json(ranges: &[interference::NamedRange]) -> String {
    let opt = |v: Option<i64>| v.map_or("null".to_string(), |x| x.to_string());
    json_array(ranges, |(n, r)| {
        format!(
            "{{\"blob\":{},\"defined\":{},\"used\":{}}}",
            report::json_str(n),
            opt(r.defined),
            opt(r.used)
        )
    })
}

/// Python's `compute_ranges` over the ops in their NetDef order: per name (in order of first
/// appearance) the first writing op and the last reading op (extended to a later write), as
/// JSON `[{"blob", "defined", "used"}]` (`null` when none).
///
/// Ownership: inputs are only read; on success the caller owns `*out_json`
/// (`c2rs_buffer_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out_json` or a NULL pointer with a
/// non-zero length; C2RS_PARSE_ERROR when `net_def` does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_compute_ranges(
    net_def: *const u8,
    len: usize,
    out_json: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_compute_ranges", {
        let out = out_param(out_json, "out_json")?;
        let net = decode_net(byte_slice(net_def, len, "net_def")?, "net_def")?;
        let r = interference::compute_ranges(&net.op, None)?;
        out.set(into_handle(ranges_json(&r).into_bytes()));
        Ok(())
    })
}

fn algo_arg(algo: i32) -> Result<interference::AssignmentAlgorithm> {
    interference::AssignmentAlgorithm::from_i32(algo).ok_or_else(|| {
        C2rsError::invalid_argument(format!(
            "algo {algo} is neither GREEDY (0) nor DYNAMIC_PROGRAMMING (1)"
        ))
    })
}

/// Python's `compute_assignments` on `n` live ranges: `names[k]` lives from `defined[k]` to
/// `used[k]` with size `sizes[k]` (a negative value means None: defined → −1, used → max
/// used + 1, size → 1; `sizes` may be NULL). Statics become singleton chains. `algo`:
/// GREEDY = 0, DYNAMIC_PROGRAMMING = 1 (exact). JSON out: `{"assignments": [[names]],
/// "baseline_nbytes", "optimized_nbytes"}`.
///
/// Ownership: inputs are only read; on success the caller owns `*out_json`
/// (`c2rs_buffer_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out_json`, a NULL array with
/// `n > 0` (except `sizes`), a bad name, an unknown `algo`, an op position above 2^62 or
/// sizes adding up to more than 2^63-1 bytes.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_compute_assignments(
    names: *const *const c_char,
    defined: *const i64,
    used: *const i64,
    sizes: *const i64,
    n: usize,
    static_blobs: *const *const c_char,
    n_static: usize,
    algo: i32,
    out_json: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_compute_assignments", {
        let out = out_param(out_json, "out_json")?;
        let names: Vec<String> = name_list(names, n, "names")?;
        let defined = array_arg(defined, n, "defined")?;
        let used = array_arg(used, n, "used")?;
        let sizes = if sizes.is_null() {
            None
        } else {
            Some(array_arg(sizes, n, "sizes")?)
        };
        let statics: std::collections::HashSet<String> =
            name_list(static_blobs, n_static, "static_blobs")?;
        let algo = algo_arg(algo)?;
        check_range_inputs(defined, used, sizes)?;
        let nonneg = |v: i64| (v >= 0).then_some(v);
        let ranges: Vec<interference::NamedRange> = (0..n)
            .map(|k| {
                (
                    names[k].clone(),
                    interference::LiveRange::new(
                        nonneg(defined[k]),
                        nonneg(used[k]),
                        sizes.and_then(|s| nonneg(s[k])).map(|v| v as u64),
                    ),
                )
            })
            .collect();
        let chains = interference::compute_assignments(&ranges, &statics, algo);
        let stats = interference::compute_statistics(&chains);
        let names: Vec<Vec<String>> = chains
            .iter()
            .map(|c| c.iter().map(|(n, _)| n.clone()).collect())
            .collect();
        let json = report::ObjectWriter::default()
            .raw("assignments", chains_json(&names))
            .num("baseline_nbytes", stats.baseline_nbytes)
            .num("optimized_nbytes", stats.optimized_nbytes)
            .finish();
        out.set(into_handle(json.into_bytes()));
        Ok(())
    })
}

/// Op positions above this are refused by `c2rs_memonger_compute_assignments` (the range
/// arithmetic adds one to them).
const MAX_OP_POSITION: i64 = 1 << 62;

/// Checks caller-given live ranges before the range arithmetic runs: op positions at most
/// `MAX_OP_POSITION`, non-negative sizes adding up to at most 2^63-1 bytes.
fn check_range_inputs(defined: &[i64], used: &[i64], sizes: Option<&[i64]>) -> Result<()> {
    for (what, values) in [("defined", defined), ("used", used)] {
        if let Some((k, v)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| **v > MAX_OP_POSITION)
        {
            return Err(C2rsError::invalid_argument(format!(
                "{what}[{k}] = {v} exceeds the largest op position {MAX_OP_POSITION}"
            )));
        }
    }
    let total = sizes
        .unwrap_or_default()
        .iter()
        .filter(|s| **s > 0)
        .try_fold(0i64, |acc, &s| acc.checked_add(s));
    if total.is_none() {
        return Err(C2rsError::invalid_argument(
            "sizes add up to more than 2^63-1 bytes",
        ));
    }
    Ok(())
}

/// Python's `optimize_interference` (spec/memonger.md §6): reorders the ops (`ordering`:
/// 0 = topological_sort_traversal, 1 = longest path, 2 = keep the NetDef order), computes
/// live ranges, chains blobs with `algo` (GREEDY = 0, DYNAMIC_PROGRAMMING = 1) and renames
/// each chain to its last member. External inputs and outputs, `static_blobs`, names read
/// before written and names inside subnets are never shared; chains never mix devices.
/// `blob_sizes` is a serialized `TensorShapes` sizing every blob of the net (empty: every
/// size 1). A rewrite the verifier rejects is dropped: the reordered net comes back
/// unrenamed and the violations are listed under `warnings`.
///
/// JSON out: `{"order": [original op index per op], "blob_mapping": {old: new},
/// "assignments": [[names]], "baseline_nbytes", "optimized_nbytes", "warnings": [..]}`.
/// Ownership: inputs are only read; on success the caller owns `*out_net_def` and
/// `*out_json` (`c2rs_buffer_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL out-parameter, a NULL pointer with a
/// non-zero length or count, a bad name, an unknown `ordering` or `algo`, a blob without a
/// size (when sizes are given) or a size unknown from its shape; C2RS_ENFORCE_NOT_MET when
/// an op fails its registered schema; C2RS_PARSE_ERROR when a protobuf does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_optimize_interference(
    net_def: *const u8,
    len: usize,
    static_blobs: *const *const c_char,
    n_static: usize,
    ordering: i32,
    blob_sizes: *const u8,
    sizes_len: usize,
    algo: i32,
    out_net_def: *mut *mut c2rs_buffer,
    out_json: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_optimize_interference", {
        let out_net = out_param(out_net_def, "out_net_def")?;
        let out_js = out_param(out_json, "out_json")?;
        let net = decode_net(byte_slice(net_def, len, "net_def")?, "net_def")?;
        let statics = name_list::<Vec<String>>(static_blobs, n_static, "static_blobs")?;
        let ordering = interference::Ordering::from_i32(ordering).ok_or_else(|| {
            C2rsError::invalid_argument(format!("ordering {ordering} is not 0, 1 or 2"))
        })?;
        let algo = algo_arg(algo)?;
        let size_bytes = byte_slice(blob_sizes, sizes_len, "blob_sizes")?;
        let sizes: Option<HashMap<String, u64>> = if size_bytes.is_empty() {
            None
        } else {
            let parsed = shapes::parse_shapes(size_bytes)?;
            let mut m = HashMap::new();
            for (name, info) in parsed {
                let b = info.bytes.ok_or_else(|| {
                    C2rsError::invalid_argument(
                        info.unknown_reason
                            .unwrap_or_else(|| format!("blob `{name}` has no known size")),
                    )
                })?;
                m.insert(name, b);
            }
            Some(m)
        };
        let o =
            interference::optimize_interference(&net, &statics, ordering, sizes.as_ref(), algo)?;
        let mapping: Vec<String> = o
            .blob_mapping
            .iter()
            .map(|(a, b)| format!("{}:{}", report::json_str(a), report::json_str(b)))
            .collect();
        let json = report::ObjectWriter::default()
            .raw("order", json_array(&o.order, |i| i.to_string()))
            .raw("blob_mapping", format!("{{{}}}", mapping.join(",")))
            .raw("assignments", chains_json(&o.assignments))
            .num("baseline_nbytes", o.stats.baseline_nbytes)
            .num("optimized_nbytes", o.stats.optimized_nbytes)
            .strs("warnings", o.warnings.iter().map(String::as_str))
            .finish();
        out_net.set(into_handle(o.net.encode_to_vec()));
        out_js.set(into_handle(json.into_bytes()));
        Ok(())
    })
}

/// Decides whether a `Free` may follow an op: gets the serialized OperatorDef and `user`;
/// non-zero means yes.
///
/// Thread safety: called on the thread that called `c2rs_memonger_release_blobs_when_used`.
/// Returns: non-zero to allow the Free ops after this op.
#[allow(non_camel_case_types)]
pub type c2rs_op_selector_fn =
    Option<unsafe extern "C" fn(op_def: *const u8, len: usize, user: *mut c_void) -> i32>;

/// Python's `release_blobs_when_used` (spec/memonger.md §6): inserts `Free([b], [b])` right
/// after the last reader of every blob that is written before it is read, read at least
/// once, not an external output, not in `dont_free` and not used by an `Alias` op. With a
/// non-NULL `selector`, blobs whose last reader it rejects are not freed.
///
/// Ownership: inputs are only read; `user` is passed to `selector` untouched; on success the
/// caller owns `*out_net_def` (`c2rs_buffer_free`).
/// Thread safety: safe from any thread; `selector` runs on the calling thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out_net_def`, a NULL pointer with a
/// non-zero length or count, or a bad name; C2RS_ENFORCE_NOT_MET when an op fails its
/// registered schema; C2RS_PARSE_ERROR when `net_def` does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_release_blobs_when_used(
    net_def: *const u8,
    len: usize,
    dont_free: *const *const c_char,
    n_dont_free: usize,
    selector: c2rs_op_selector_fn,
    user: *mut c_void,
    out_net_def: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_release_blobs_when_used", {
        let out = out_param(out_net_def, "out_net_def")?;
        let net = decode_net(byte_slice(net_def, len, "net_def")?, "net_def")?;
        let keep: std::collections::HashSet<String> =
            name_list(dont_free, n_dont_free, "dont_free")?;
        let pick = |op: &crate::proto::OperatorDef| -> bool {
            let Some(f) = selector else { return true };
            let bytes = op.encode_to_vec();
            // SAFETY: the caller guarantees `selector` is callable with these arguments;
            // `bytes` outlives the call.
            unsafe { f(bytes.as_ptr(), bytes.len(), user) != 0 }
        };
        let sel: Option<&dyn Fn(&crate::proto::OperatorDef) -> bool> =
            selector.is_some().then_some(&pick);
        let r = release::release_blobs_when_used(&net, &keep, sel)?;
        out.set(into_handle(r.encode_to_vec()));
        Ok(())
    })
}

/// Python's `estimate_memory_usage` (spec/memonger.md §6): runs `n_nets` nets
/// (`nets[k]`, `lens[k]` bytes each) in order on device (`device_type`, `device_id`) —
/// ops on other devices are skipped except `Free` and `Alias`, which release their outputs
/// — allocating each new output at its size from `tensor_shapes` (unknown sizes count 0).
/// Writes total and high-water bytes, and JSON `{"by_op_type": {type: bytes}, "unknown":
/// [names]}` to `*out_json` when `out_json` is not NULL.
///
/// Ownership: inputs are only read; the caller owns `*out_json` (`c2rs_buffer_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for a NULL `out_total`/`out_high_water`, a NULL
/// pointer with a non-zero count, or two shapes for one blob; C2RS_PARSE_ERROR when a
/// protobuf does not decode.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_memonger_estimate_memory_usage(
    nets: *const *const u8,
    lens: *const usize,
    n_nets: usize,
    tensor_shapes: *const u8,
    shapes_len: usize,
    device_type: i32,
    device_id: i32,
    out_total: *mut u64,
    out_high_water: *mut u64,
    out_json: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_memonger_estimate_memory_usage", {
        let total = out_param(out_total, "out_total")?;
        let high = out_param(out_high_water, "out_high_water")?;
        let js = if out_json.is_null() {
            None
        } else {
            Some(out_param(out_json, "out_json")?)
        };
        let ptrs = array_arg(nets, n_nets, "nets")?;
        let lens = array_arg(lens, n_nets, "lens")?;
        let mut decoded = Vec::with_capacity(n_nets);
        for (k, (&p, &l)) in ptrs.iter().zip(lens).enumerate() {
            let what = format!("nets[{k}]");
            decoded.push(decode_net(byte_slice(p, l, &what)?, &what)?);
        }
        let sb = byte_slice(tensor_shapes, shapes_len, "tensor_shapes")?;
        let map = if sb.is_empty() {
            shapes::ShapeMap::default()
        } else {
            shapes::parse_shapes(sb)?
        };
        let est = release::estimate_memory_usage(&decoded, &map, (device_type, device_id));
        total.set(est.total_bytes);
        high.set(est.high_water_bytes);
        if let Some(js) = js {
            let by: Vec<String> = est
                .by_op_type
                .iter()
                .map(|(t, b)| format!("{}:{b}", report::json_str(t)))
                .collect();
            let json = report::ObjectWriter::default()
                .raw("by_op_type", format!("{{{}}}", by.join(",")))
                .strs("unknown", est.unknown.iter().map(String::as_str))
                .finish();
            js.set(into_handle(json.into_bytes()));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::buffer::{c2rs_buffer_data, c2rs_buffer_free, c2rs_buffer_len};
    use crate::ffi::status::*;
    use crate::memonger::test_op as op;
    use crate::proto::OperatorDef;
    use std::ffi::CString;

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

    /// Ops (by index) of the renamed net of `plan` that write `name`.
    fn writers_of(plan: *mut c2rs_memory_plan, name: &str) -> Vec<usize> {
        let mut buf = std::ptr::null_mut();
        assert_eq!(c2rs_memory_plan_net(plan, &mut buf), C2RS_OK);
        let net = NetDef::decode(bytes_of(buf).as_slice()).unwrap();
        (0..net.op.len())
            .filter(|&i| net.op[i].output.iter().any(|o| o == name))
            .collect()
    }

    #[test]
    fn plan_keeps_external_outputs_unless_the_flag_shares_them() {
        let net = chain_net();
        let plan_with = |budget: u32, flags: u32| {
            let mut plan = std::ptr::null_mut();
            let st = c2rs_memonger_plan_with_options(
                net.as_ptr(),
                net.len(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                budget,
                flags,
                &mut plan,
            );
            (st, plan)
        };
        let mut plan = std::ptr::null_mut();
        let st = c2rs_memonger_plan(
            net.as_ptr(),
            net.len(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            &mut plan,
        );
        assert_eq!(st, C2RS_OK);
        assert_eq!(
            writers_of(plan, "out"),
            vec![3],
            "`out` keeps its name alone"
        );
        let mut buf = std::ptr::null_mut();
        assert_eq!(c2rs_memory_plan_report(plan, &mut buf), C2RS_OK);
        let report = String::from_utf8(bytes_of(buf)).unwrap();
        assert!(report.contains("\"arena_lb_bytes\":128"), "{report}");
        assert!(report.contains("\"arena_optimal\":true"), "{report}");
        c2rs_memory_plan_free(plan);
        let (st, plan) = plan_with(0, C2RS_MEMONGER_SHARE_EXTERNAL_OUTPUTS);
        assert_eq!(st, C2RS_OK);
        assert_eq!(
            writers_of(plan, "out"),
            vec![1, 3],
            "`b` takes the name `out`"
        );
        c2rs_memory_plan_free(plan);
        let (st, plan) = plan_with(5, 0);
        assert_eq!(st, C2RS_OK);
        assert_eq!(writers_of(plan, "out"), vec![3]);
        c2rs_memory_plan_free(plan);
        let (st, plan) = plan_with(0, 2);
        assert_eq!(st, C2RS_INVALID_ARGUMENT);
        assert!(plan.is_null());
        assert!(last_message().contains("flags"), "{}", last_message());
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
        // SAFETY: this thread's last error message, a valid NUL-terminated string.
        let msg = unsafe { std::ffi::CStr::from_ptr(crate::ffi::guard::last_error_message()) }
            .to_string_lossy()
            .into_owned();
        assert!(msg.contains("op #1 (Relu)"), "{msg}");
    }

    fn schema_bad_net() -> Vec<u8> {
        NetDef {
            op: vec![
                op("Relu", &["data"], &["a"]),
                op("Relu", &["a", "data"], &["b"]),
                op("Relu", &["b"], &["out"]),
            ],
            external_input: vec!["data".into()],
            external_output: vec!["out".into()],
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn last_message() -> String {
        // SAFETY: the guard keeps a NUL-terminated message for this thread.
        unsafe { std::ffi::CStr::from_ptr(crate::ffi::guard::last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn every_entry_point_enforces_registered_schemas() {
        let bytes = schema_bad_net();
        let (p, l) = (bytes.as_ptr(), bytes.len());
        let heads = [CString::new("data").unwrap()];
        let hp: Vec<*const c_char> = heads.iter().map(|c| c.as_ptr()).collect();
        let idx = [0i32, 1, 2];
        let mut buf: *mut c2rs_buffer = std::ptr::null_mut();
        let mut buf2: *mut c2rs_buffer = std::ptr::null_mut();
        let mut plan = std::ptr::null_mut();
        let null_names: *const *const c_char = std::ptr::null();
        let statuses = [
            c2rs_memonger_optimize_inference_net(p, l, null_names, 0, &mut buf),
            c2rs_memonger_plan(p, l, std::ptr::null(), 0, null_names, 0, &mut plan),
            c2rs_memonger_compute_blob_recycling_for_dag(
                p,
                l,
                hp.as_ptr(),
                1,
                idx.as_ptr(),
                3,
                null_names,
                0,
                std::ptr::null(),
                null_names,
                0,
                std::ptr::null(),
                0,
                &mut buf,
            ),
            c2rs_memonger_share_grad_blobs(
                p,
                l,
                hp.as_ptr(),
                1,
                null_names,
                0,
                std::ptr::null(),
                null_names,
                0,
                0,
                std::ptr::null(),
                0,
                &mut buf,
            ),
            c2rs_memonger_optimize_inference_for_dag(
                p,
                l,
                hp.as_ptr(),
                1,
                std::ptr::null(),
                &mut buf,
            ),
            c2rs_memonger_optimize_interference(
                p,
                l,
                null_names,
                0,
                0,
                std::ptr::null(),
                0,
                0,
                &mut buf,
                &mut buf2,
            ),
            c2rs_memonger_release_blobs_when_used(
                p,
                l,
                null_names,
                0,
                None,
                std::ptr::null_mut(),
                &mut buf,
            ),
        ];
        for (k, st) in statuses.iter().enumerate() {
            assert_eq!(*st, C2RS_ENFORCE_NOT_MET, "entry point #{k}");
        }
        assert!(
            last_message().contains("Operator def did not pass schema checking"),
            "{}",
            last_message()
        );
        assert!(buf.is_null() && buf2.is_null() && plan.is_null());
    }

    unsafe extern "C" fn only_last(op: *const u8, len: usize, user: *mut c_void) -> i32 {
        // SAFETY: the export passes a live serialized OperatorDef and our counter.
        let bytes = unsafe { std::slice::from_raw_parts(op, len) };
        let calls = unsafe { &mut *(user as *mut usize) };
        *calls += 1;
        let def = OperatorDef::decode(bytes).unwrap_or_default();
        i32::from(def.output.first().map(String::as_str) == Some("out"))
    }

    #[test]
    fn utility_exports_order_assign_release_and_estimate() {
        let net = chain_net();
        let mut buf = std::ptr::null_mut();
        assert_eq!(
            c2rs_memonger_interference_graph(net.as_ptr(), net.len(), &mut buf),
            C2RS_OK
        );
        assert_eq!(
            String::from_utf8(bytes_of(buf)).unwrap(),
            "[[0,1],[1,2],[2,3]]"
        );
        let edges = [0usize, 1, 2, 3];
        let mut order = [9usize; 4];
        assert_eq!(
            c2rs_memonger_topological_sort(4, edges.as_ptr(), 2, 0, order.as_mut_ptr()),
            C2RS_OK
        );
        assert_eq!(order, [2, 3, 0, 1]);
        assert_eq!(
            c2rs_memonger_topological_sort(4, edges.as_ptr(), 2, 1, order.as_mut_ptr()),
            C2RS_OK
        );
        assert_eq!(order, [0, 1, 2, 3]);
        let cyc = [0usize, 1, 1, 0];
        assert_eq!(
            c2rs_memonger_topological_sort(2, cyc.as_ptr(), 2, 0, order.as_mut_ptr()),
            C2RS_INVALID_ARGUMENT
        );
        // compute_assignments_dp1 through the ABI.
        let names = ["b1", "b2", "b3"].map(|s| CString::new(s).unwrap());
        let np: Vec<*const c_char> = names.iter().map(|c| c.as_ptr()).collect();
        let (d, u, z) = ([1i64, 4, 5], [2i64, 6, 6], [10i64, 1, 10]);
        for (algo, cost) in [(0, 20), (1, 11)] {
            assert_eq!(
                c2rs_memonger_compute_assignments(
                    np.as_ptr(),
                    d.as_ptr(),
                    u.as_ptr(),
                    z.as_ptr(),
                    3,
                    std::ptr::null(),
                    0,
                    algo,
                    &mut buf
                ),
                C2RS_OK
            );
            let js = String::from_utf8(bytes_of(buf)).unwrap();
            assert!(js.contains(&format!("\"optimized_nbytes\":{cost}")), "{js}");
        }
        assert_eq!(
            c2rs_memonger_compute_assignments(
                np.as_ptr(),
                d.as_ptr(),
                u.as_ptr(),
                z.as_ptr(),
                3,
                std::ptr::null(),
                0,
                7,
                &mut buf
            ),
            C2RS_INVALID_ARGUMENT
        );
        let mut js = std::ptr::null_mut();
        assert_eq!(
            c2rs_memonger_optimize_interference(
                net.as_ptr(),
                net.len(),
                std::ptr::null(),
                0,
                1,
                std::ptr::null(),
                0,
                0,
                &mut buf,
                &mut js
            ),
            C2RS_OK
        );
        let opt = NetDef::decode(&bytes_of(buf)[..]).unwrap();
        let report = String::from_utf8(bytes_of(js)).unwrap();
        assert!(report.contains("\"order\":[0,1,2,3]"), "{report}");
        assert!(report.contains("\"warnings\":[]"), "{report}");
        // a -> c: a chain renamed to its last member.
        assert_eq!(opt.op[0].output[0], "c");
        assert_eq!(opt.op[3].output[0], "out");
        assert_eq!(
            c2rs_memonger_verify_graph_equality(
                net.as_ptr(),
                net.len(),
                opt.encode_to_vec().as_ptr(),
                opt.encode_to_vec().len()
            ),
            C2RS_OK
        );
        let enc = opt.encode_to_vec();
        assert_eq!(
            c2rs_memonger_verify_inplace_blobs(net.as_ptr(), net.len(), enc.as_ptr(), enc.len()),
            C2RS_OK
        );
        // release with a selector that only allows Frees after the op writing `out`.
        let mut calls = 0usize;
        assert_eq!(
            c2rs_memonger_release_blobs_when_used(
                net.as_ptr(),
                net.len(),
                std::ptr::null(),
                0,
                Some(only_last),
                &mut calls as *mut usize as *mut c_void,
                &mut buf
            ),
            C2RS_OK
        );
        let rel = NetDef::decode(&bytes_of(buf)[..]).unwrap();
        assert_eq!(rel.op.len(), 5);
        assert_eq!(rel.op[4].r#type.as_deref(), Some("Free"));
        assert_eq!(rel.op[4].input, vec!["c".to_string()]);
        assert!(calls >= 3, "{calls}");
        // estimate on the released net with shapes.
        let shapes = TensorShapes {
            shapes: ["a", "b", "c", "out"]
                .iter()
                .map(|n| crate::proto::TensorShape {
                    name: Some(n.as_bytes().to_vec()),
                    dims: vec![4],
                    data_type: Some(1),
                    ..Default::default()
                })
                .collect(),
        }
        .encode_to_vec();
        let rb = rel.encode_to_vec();
        let ptrs = [rb.as_ptr()];
        let lens = [rb.len()];
        let (mut total, mut high) = (0u64, 0u64);
        assert_eq!(
            c2rs_memonger_estimate_memory_usage(
                ptrs.as_ptr(),
                lens.as_ptr(),
                1,
                shapes.as_ptr(),
                shapes.len(),
                0,
                0,
                &mut total,
                &mut high,
                &mut buf
            ),
            C2RS_OK
        );
        assert_eq!((total, high), (64, 64));
        let js = String::from_utf8(bytes_of(buf)).unwrap();
        assert_eq!(js, "{\"by_op_type\":{\"Relu\":64},\"unknown\":[]}");
    }
}
