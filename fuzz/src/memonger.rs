//! The `memonger` target: a NetDef and a TensorShapes into every memonger entry point
//! (`c2rs_memonger_*`, and `c2rs_memory_plan_*` on the plan `c2rs_memonger_plan` returns).
//!
//! Input format: byte 0 = flags; bytes 1..5 = the NetDef's length L (u32, little-endian);
//! then L bytes of NetDef (fewer when the input ends first); the rest is the TensorShapes
//! (empty = no shapes). An input shorter than 5 bytes is all NetDef after the flags byte.
//! Flags: bits 0-1 = `ordering` of optimize_interference (3 is invalid on purpose); bit 2 =
//! DYNAMIC_PROGRAMMING instead of GREEDY; bit 3 = share_activations; bit 4 = longest-path
//! topological sort; bit 5 = release_blobs_when_used with an op selector (every op whose
//! serialized length is even); bit 6 = compute_assignments without sizes; bit 7 = one
//! backward edge in the topological sort (a cycle when the net has two ops or more).
//!
//! DYNAMIC_PROGRAMMING is a budgeted branch and bound (2M search nodes) whose cost the caller
//! chooses: seconds per call under the sanitizer from about 20 ranges up, minutes on a golden
//! training net. The harness therefore asks for it only on problems of at most
//! [`DP_MAX_RANGES`] blobs (compute_assignments; optimize_interference when the net writes no
//! more blobs) and uses GREEDY above.
//!
//! The other arguments (static blobs, heads, losses, …) are names taken from the net itself
//! (external inputs and outputs, op outputs, `*_grad` blobs), so that they mean something.
//! Beyond the statuses: a net that `optimize_inference_net` changed passes the verifier, and
//! a topological order is a permutation of the nodes.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, c_char, c_void};
use std::ptr;

use caffe2rs::ffi::handle::c2rs_buffer;
use caffe2rs::ffi::memonger::{
    c2rs_memonger_compute_assignments, c2rs_memonger_compute_blob_recycling_for_dag,
    c2rs_memonger_compute_ranges, c2rs_memonger_estimate_memory_usage,
    c2rs_memonger_interference_graph, c2rs_memonger_optimize_inference_for_dag,
    c2rs_memonger_optimize_inference_net, c2rs_memonger_optimize_interference, c2rs_memonger_plan,
    c2rs_memonger_release_blobs_when_used, c2rs_memonger_share_grad_blobs,
    c2rs_memonger_topological_sort, c2rs_memonger_verify, c2rs_memonger_verify_graph_equality,
    c2rs_memonger_verify_inplace_blobs, c2rs_memory_plan_arena_bytes, c2rs_memory_plan_arena_json,
    c2rs_memory_plan_free, c2rs_memory_plan_net, c2rs_memory_plan_offset, c2rs_memory_plan_report,
};
use caffe2rs::proto::{NetDef, TensorShapes};
use prost::Message;

use crate::check::{Oom, check, check_out, finding, touch};
use crate::tensor::take_buffer;

/// The three parts of an input.
pub struct Input<'a> {
    pub flags: u8,
    pub net: &'a [u8],
    pub shapes: &'a [u8],
}

/// Splits an input into flags, NetDef bytes and TensorShapes bytes.
pub fn split(data: &[u8]) -> Input<'_> {
    let Some((&flags, rest)) = data.split_first() else {
        return Input {
            flags: 0,
            net: &[],
            shapes: &[],
        };
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Input {
            flags,
            net: rest,
            shapes: &[],
        };
    };
    let len = usize::try_from(u32::from_le_bytes(*len)).unwrap_or(usize::MAX);
    let (net, shapes) = rest.split_at(len.min(rest.len()));
    Input { flags, net, shapes }
}

/// The inverse of [`split`].
pub fn join(flags: u8, net: &[u8], shapes: &[u8]) -> Vec<u8> {
    let len = u32::try_from(net.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(5 + net.len() + shapes.len());
    out.push(flags);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(net);
    out.extend_from_slice(shapes);
    out
}

/// Caps on the name lists and graph sizes the harness derives (the library is not limited).
const MAX_NAMES: usize = 4096;
const MAX_NODES: usize = 4096;
const MAX_ASSIGNED: usize = 256;
/// Largest problem given to DYNAMIC_PROGRAMMING (see the module comment).
pub const DP_MAX_RANGES: usize = 10;

/// A list of C names, kept alive alongside the pointer array the C ABI takes.
struct Names {
    _owned: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl Names {
    fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let owned: Vec<CString> = names
            .into_iter()
            .filter_map(|n| CString::new(n).ok())
            .take(MAX_NAMES)
            .collect();
        let ptrs = owned.iter().map(|c| c.as_ptr()).collect();
        Self {
            _owned: owned,
            ptrs,
        }
    }

    fn ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    fn len(&self) -> usize {
        self.ptrs.len()
    }
}

/// Names the harness passes as arguments, derived from the (decoded) net.
struct Derived {
    external_inputs: Names,
    external_outputs: Names,
    external_both: Names,
    heads: Names,
    shareable: Names,
    losses: Names,
    param_grads: Names,
    blobs: Vec<String>,
    op_count: usize,
    /// producer → consumer op pairs (the last writer of each input before the reader).
    edges: Vec<(usize, usize)>,
}

fn derive(net: &NetDef) -> Derived {
    let ext_in: Vec<&str> = net.external_input.iter().map(String::as_str).collect();
    let ext_out: Vec<&str> = net.external_output.iter().map(String::as_str).collect();
    let external: HashSet<&str> = ext_in.iter().chain(&ext_out).copied().collect();
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    let mut last_writer: HashMap<&str, usize> = HashMap::new();
    let mut edges = Vec::new();
    for (j, op) in net.op.iter().enumerate().take(MAX_NODES) {
        for input in &op.input {
            if let Some(&i) = last_writer.get(input.as_str())
                && edges.len() < 4 * MAX_NODES
            {
                edges.push((i, j));
            }
        }
        for output in &op.output {
            last_writer.insert(output.as_str(), j);
            if seen.insert(output.as_str()) && blobs.len() < MAX_NAMES {
                blobs.push(output.clone());
            }
        }
    }
    let shareable = blobs
        .iter()
        .map(String::as_str)
        .filter(|b| !external.contains(b));
    let losses = net
        .op
        .last()
        .map(|op| op.output.as_slice())
        .unwrap_or_default();
    Derived {
        external_inputs: Names::new(ext_in.iter().copied()),
        external_outputs: Names::new(ext_out.iter().copied()),
        external_both: Names::new(ext_in.iter().chain(&ext_out).copied()),
        heads: Names::new(ext_in.iter().copied().take(4)),
        shareable: Names::new(shareable),
        losses: Names::new(losses.iter().map(String::as_str)),
        param_grads: Names::new(
            blobs
                .iter()
                .map(String::as_str)
                .filter(|b| b.ends_with("_grad")),
        ),
        op_count: net.op.len().min(MAX_NODES),
        blobs,
        edges,
    }
}

fn buffer_out(status: i32, buf: *mut c2rs_buffer, call: &str) -> Option<Vec<u8>> {
    check_out(status, buf, call, Oom::Finding).then(|| {
        let bytes = take_buffer(buf);
        touch(&bytes);
        bytes
    })
}

/// The op selector of `release_blobs_when_used` (bit 5): ops whose encoding has even length.
unsafe extern "C" fn select_even(_op_def: *const u8, len: usize, _user: *mut c_void) -> i32 {
    i32::from(len & 1 == 0)
}

/// One input through every entry point.
pub fn run(data: &[u8]) {
    let input = split(data);
    let flags = input.flags;
    let net_bytes = input.net;
    let shapes = input.shapes;
    let net = NetDef::decode(net_bytes).unwrap_or_default();
    let d = derive(&net);
    let namescope = CString::default();

    // optimize_inference_net: a changed net must pass the verifier it was checked with.
    let mut out = ptr::null_mut();
    let status = c2rs_memonger_optimize_inference_net(
        net_bytes.as_ptr(),
        net_bytes.len(),
        d.external_inputs.ptr(),
        d.external_inputs.len(),
        &mut out,
    );
    let optimized = buffer_out(status, out, "c2rs_memonger_optimize_inference_net");
    if let Some(opt) = optimized.as_deref()
        && opt != net_bytes
    {
        let status = c2rs_memonger_verify(
            net_bytes.as_ptr(),
            net_bytes.len(),
            opt.as_ptr(),
            opt.len(),
            d.external_both.ptr(),
            d.external_both.len(),
        );
        if !check(status, "c2rs_memonger_verify (optimized net)", Oom::Finding) {
            finding(
                "c2rs_memonger_optimize_inference_net",
                "returned a changed net that c2rs_memonger_verify rejects",
            );
        }
    }
    let after: &[u8] = optimized.as_deref().unwrap_or(net_bytes);

    plan(net_bytes, shapes, &d);

    check(
        c2rs_memonger_verify(
            net_bytes.as_ptr(),
            net_bytes.len(),
            net_bytes.as_ptr(),
            net_bytes.len(),
            d.external_inputs.ptr(),
            d.external_inputs.len(),
        ),
        "c2rs_memonger_verify",
        Oom::Finding,
    );
    check(
        c2rs_memonger_verify_graph_equality(
            net_bytes.as_ptr(),
            net_bytes.len(),
            after.as_ptr(),
            after.len(),
        ),
        "c2rs_memonger_verify_graph_equality",
        Oom::Finding,
    );
    check(
        c2rs_memonger_verify_inplace_blobs(
            net_bytes.as_ptr(),
            net_bytes.len(),
            after.as_ptr(),
            after.len(),
        ),
        "c2rs_memonger_verify_inplace_blobs",
        Oom::Finding,
    );

    let op_indices: Vec<i32> = (0..d.op_count)
        .filter_map(|i| i32::try_from(i).ok())
        .collect();
    let mut out = ptr::null_mut();
    let status = c2rs_memonger_compute_blob_recycling_for_dag(
        net_bytes.as_ptr(),
        net_bytes.len(),
        d.heads.ptr(),
        d.heads.len(),
        op_indices.as_ptr(),
        op_indices.len(),
        d.shareable.ptr(),
        d.shareable.len(),
        namescope.as_ptr(),
        d.external_outputs.ptr(),
        d.external_outputs.len(),
        shapes.as_ptr(),
        shapes.len(),
        &mut out,
    );
    buffer_out(status, out, "c2rs_memonger_compute_blob_recycling_for_dag");

    let mut out = ptr::null_mut();
    let status = c2rs_memonger_share_grad_blobs(
        net_bytes.as_ptr(),
        net_bytes.len(),
        d.losses.ptr(),
        d.losses.len(),
        d.param_grads.ptr(),
        d.param_grads.len(),
        namescope.as_ptr(),
        d.external_outputs.ptr(),
        d.external_outputs.len(),
        i32::from(flags & 0x08 != 0),
        shapes.as_ptr(),
        shapes.len(),
        &mut out,
    );
    buffer_out(status, out, "c2rs_memonger_share_grad_blobs");

    let mut out = ptr::null_mut();
    let status = c2rs_memonger_optimize_inference_for_dag(
        net_bytes.as_ptr(),
        net_bytes.len(),
        d.external_inputs.ptr(),
        d.external_inputs.len(),
        namescope.as_ptr(),
        &mut out,
    );
    buffer_out(status, out, "c2rs_memonger_optimize_inference_for_dag");

    let mut out = ptr::null_mut();
    let status = c2rs_memonger_interference_graph(net_bytes.as_ptr(), net_bytes.len(), &mut out);
    buffer_out(status, out, "c2rs_memonger_interference_graph");

    topological_sort(&d, flags);

    let mut out = ptr::null_mut();
    let status = c2rs_memonger_compute_ranges(net_bytes.as_ptr(), net_bytes.len(), &mut out);
    buffer_out(status, out, "c2rs_memonger_compute_ranges");

    compute_assignments(&net, &d, shapes, flags, &d.external_outputs);

    let (mut out_net, mut out_json) = (ptr::null_mut(), ptr::null_mut());
    let status = c2rs_memonger_optimize_interference(
        net_bytes.as_ptr(),
        net_bytes.len(),
        d.external_inputs.ptr(),
        d.external_inputs.len(),
        i32::from(flags & 3),
        shapes.as_ptr(),
        shapes.len(),
        i32::from(flags & 0x04 != 0 && d.blobs.len() <= DP_MAX_RANGES),
        &mut out_net,
        &mut out_json,
    );
    if buffer_out(status, out_net, "c2rs_memonger_optimize_interference").is_some() {
        buffer_out(
            status,
            out_json,
            "c2rs_memonger_optimize_interference (json)",
        );
    }

    let mut out = ptr::null_mut();
    let selector = if flags & 0x20 != 0 {
        Some(select_even as unsafe extern "C" fn(*const u8, usize, *mut c_void) -> i32)
    } else {
        None
    };
    let status = c2rs_memonger_release_blobs_when_used(
        net_bytes.as_ptr(),
        net_bytes.len(),
        d.external_outputs.ptr(),
        d.external_outputs.len(),
        selector,
        ptr::null_mut(),
        &mut out,
    );
    buffer_out(status, out, "c2rs_memonger_release_blobs_when_used");

    let nets: [&[u8]; 2] = [net_bytes, after];
    let ptrs: Vec<*const u8> = nets.iter().map(|n| n.as_ptr()).collect();
    let lens: Vec<usize> = nets.iter().map(|n| n.len()).collect();
    let (mut total, mut high, mut json) = (0u64, 0u64, ptr::null_mut());
    let status = c2rs_memonger_estimate_memory_usage(
        ptrs.as_ptr(),
        lens.as_ptr(),
        nets.len(),
        shapes.as_ptr(),
        shapes.len(),
        0,
        0,
        &mut total,
        &mut high,
        &mut json,
    );
    buffer_out(status, json, "c2rs_memonger_estimate_memory_usage");
}

/// `c2rs_memonger_plan`, then every `c2rs_memory_plan_*` accessor on the plan.
fn plan(net: &[u8], shapes: &[u8], d: &Derived) {
    let mut plan = ptr::null_mut();
    let status = c2rs_memonger_plan(
        net.as_ptr(),
        net.len(),
        shapes.as_ptr(),
        shapes.len(),
        d.external_outputs.ptr(),
        d.external_outputs.len(),
        &mut plan,
    );
    if !check_out(status, plan, "c2rs_memonger_plan", Oom::Finding) {
        return;
    }
    let mut out = ptr::null_mut();
    let status = c2rs_memory_plan_net(plan, &mut out);
    if buffer_out(status, out, "c2rs_memory_plan_net").is_none() {
        finding("c2rs_memory_plan_net", "refused on a live plan");
    }
    let mut arena = 0u64;
    if !check(
        c2rs_memory_plan_arena_bytes(plan, &mut arena),
        "c2rs_memory_plan_arena_bytes",
        Oom::Finding,
    ) {
        finding("c2rs_memory_plan_arena_bytes", "refused on a live plan");
    }
    let names = Names::new(
        d.blobs
            .iter()
            .map(String::as_str)
            .take(64)
            .chain(["no such blob"]),
    );
    for &name in &names.ptrs {
        let (mut offset, mut bytes) = (0u64, 0u64);
        let status = c2rs_memory_plan_offset(plan, name, &mut offset, &mut bytes);
        if check(status, "c2rs_memory_plan_offset", Oom::Finding)
            && offset.checked_add(bytes).is_none_or(|end| end > arena)
        {
            finding(
                "c2rs_memory_plan_offset",
                &format!("slice {offset}+{bytes} lies outside the {arena}-byte arena"),
            );
        }
    }
    let mut out = ptr::null_mut();
    let status = c2rs_memory_plan_report(plan, &mut out);
    if buffer_out(status, out, "c2rs_memory_plan_report").is_none() {
        finding("c2rs_memory_plan_report", "refused on a live plan");
    }
    let mut out = ptr::null_mut();
    let status = c2rs_memory_plan_arena_json(plan, &mut out);
    if buffer_out(status, out, "c2rs_memory_plan_arena_json").is_none() {
        finding("c2rs_memory_plan_arena_json", "refused on a live plan");
    }
    c2rs_memory_plan_free(plan);
}

fn topological_sort(d: &Derived, flags: u8) {
    let n = d.op_count;
    let mut flat: Vec<usize> = d.edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    if flags & 0x80 != 0 && n > 1 {
        flat.extend([n - 1, 0]);
    }
    let mut order = vec![usize::MAX; n];
    let status = c2rs_memonger_topological_sort(
        n,
        flat.as_ptr(),
        flat.len() / 2,
        i32::from(flags & 0x10 != 0),
        order.as_mut_ptr(),
    );
    if check(status, "c2rs_memonger_topological_sort", Oom::Finding) {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        if sorted.iter().enumerate().any(|(i, &v)| i != v) {
            finding(
                "c2rs_memonger_topological_sort",
                "the order is not a permutation",
            );
        }
    }
}

/// Live ranges of the net's first op outputs, sizes from the TensorShapes where it names
/// them (-1 = unknown), into `c2rs_memonger_compute_assignments`.
fn compute_assignments(net: &NetDef, d: &Derived, shapes: &[u8], flags: u8, statics: &Names) {
    let dp = flags & 0x04 != 0;
    let cap = if dp { DP_MAX_RANGES } else { MAX_ASSIGNED };
    let names: Vec<&str> = d.blobs.iter().map(String::as_str).take(cap).collect();
    let mut defined = vec![-1i64; names.len()];
    let mut used = vec![-1i64; names.len()];
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(k, &n)| (n, k)).collect();
    for (j, op) in net.op.iter().enumerate().take(MAX_NODES) {
        let j = j as i64;
        for input in &op.input {
            if let Some(&k) = index.get(input.as_str()) {
                used[k] = j;
            }
        }
        for output in &op.output {
            if let Some(&k) = index.get(output.as_str())
                && defined[k] < 0
            {
                defined[k] = j;
            }
        }
    }
    let dims: HashMap<Vec<u8>, i64> = TensorShapes::decode(shapes)
        .map(|s| {
            s.shapes
                .into_iter()
                .map(|t| {
                    let numel = t.dims.iter().fold(1i64, |a, &x| a.saturating_mul(x));
                    (t.name.unwrap_or_default(), numel.saturating_mul(4))
                })
                .collect()
        })
        .unwrap_or_default();
    let sizes: Vec<i64> = names
        .iter()
        .map(|n| dims.get(n.as_bytes()).copied().unwrap_or(-1))
        .collect();
    let c_names = Names::new(names.iter().copied());
    if c_names.len() != names.len() {
        return; // a name with a NUL byte: the arrays would not line up
    }
    let sizes_ptr = if flags & 0x40 != 0 {
        ptr::null()
    } else {
        sizes.as_ptr()
    };
    let mut out = ptr::null_mut();
    let status = c2rs_memonger_compute_assignments(
        c_names.ptr(),
        defined.as_ptr(),
        used.as_ptr(),
        sizes_ptr,
        names.len(),
        statics.ptr(),
        statics.len(),
        i32::from(dp),
        &mut out,
    );
    buffer_out(status, out, "c2rs_memonger_compute_assignments");
}
