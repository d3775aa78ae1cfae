//! Python's `release_blobs_when_used` and `estimate_memory_usage` (spec §6): insert `Free`
//! ops after each blob's last use, and simulate allocation of a sequence of nets on one
//! device.

use std::collections::{BTreeMap, HashSet};

use super::graph::{Device, NetGraph, effective_device};
use super::liveness::reads_of;
use super::shapes::ShapeMap;
use crate::error::Result;
use crate::proto::{NetDef, OperatorDef};

/// Inserts `Free([b], [b])` right after the last op reading `b`, for every releasable `b`:
/// written before it is ever read, read at least once, not an external output, not in
/// `dont_free`, and never an input or output of an `Alias` op (its storage is shared). When
/// `selector` is given, a blob whose last reader it rejects is not freed. Control inputs and
/// names inside subnet arguments count as reads. Several Frees after one op follow the order
/// of the op's reads.
pub fn release_blobs_when_used(
    net: &NetDef,
    dont_free: &HashSet<String>,
    selector: Option<&dyn Fn(&OperatorDef) -> bool>,
) -> Result<NetDef> {
    super::schema_check::check_schemas(net)?;
    let g = NetGraph::build(net);
    let names = g.num_names();
    let mut first_write: Vec<Option<usize>> = vec![None; names];
    let mut first_read: Vec<Option<usize>> = vec![None; names];
    let mut last_read: Vec<Option<usize>> = vec![None; names];
    let mut aliased = vec![false; names];
    for (i, op) in g.ops.iter().enumerate() {
        for b in reads_of(&g, i) {
            first_read[b as usize].get_or_insert(i);
            last_read[b as usize] = Some(i);
        }
        for &b in &op.outputs {
            first_write[b as usize].get_or_insert(i);
        }
        if op.op_type == "Alias" {
            for &b in op.inputs.iter().chain(&op.outputs) {
                aliased[b as usize] = true;
            }
        }
    }
    let mut kept = vec![false; names];
    for &b in &g.external_output {
        kept[b as usize] = true;
    }
    for name in dont_free {
        if let Some(id) = g.id(name) {
            kept[id as usize] = true;
        }
    }
    let mut frees: Vec<Vec<u32>> = vec![Vec::new(); g.ops.len()];
    for (i, op_frees) in frees.iter_mut().enumerate() {
        for b in reads_of(&g, i) {
            let u = b as usize;
            let releasable = !kept[u]
                && !aliased[u]
                && last_read[u] == Some(i)
                && matches!((first_write[u], first_read[u]), (Some(w), Some(r)) if w < r)
                && !op_frees.contains(&b);
            if releasable && selector.is_none_or(|f| f(&net.op[i])) {
                op_frees.push(b);
            }
        }
    }
    let mut out = net.clone();
    out.op = Vec::with_capacity(net.op.len() + frees.iter().map(Vec::len).sum::<usize>());
    for (i, op) in net.op.iter().enumerate() {
        out.op.push(op.clone());
        for &b in &frees[i] {
            let name = g.name(b).to_string();
            out.op.push(OperatorDef {
                r#type: Some("Free".into()),
                input: vec![name.clone()],
                output: vec![name],
                device_option: op.device_option.clone(),
                ..Default::default()
            });
        }
    }
    Ok(out)
}

/// What `estimate_memory_usage` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Σ bytes of every allocation.
    pub total_bytes: u64,
    /// Most bytes allocated at once.
    pub high_water_bytes: u64,
    /// Allocated bytes per op type.
    pub by_op_type: BTreeMap<String, u64>,
    /// Outputs allocated without a known size (counted as 0 bytes).
    pub unknown: Vec<String>,
}

/// Simulates `nets` in order on `device` (ops whose effective device differs are skipped,
/// except `Free` and `Alias`): `Free`/`Alias` release their outputs; any other op allocates
/// each output not yet allocated at its size from `shapes` (dtype size × ∏dims; unknown
/// sizes count 0 and are listed). Single-threaded execution and final sizes are assumed.
pub fn estimate_memory_usage(nets: &[NetDef], shapes: &ShapeMap, device: Device) -> MemoryEstimate {
    let mut est = MemoryEstimate::default();
    let mut allocated: std::collections::HashMap<String, u64> = Default::default();
    let mut current = 0u64;
    for net in nets {
        for op in &net.op {
            let ty = op.r#type.as_deref().unwrap_or("");
            if ty == "Free" || ty == "Alias" {
                for o in &op.output {
                    if let Some(b) = allocated.remove(o) {
                        current -= b;
                    }
                }
                continue;
            }
            if effective_device(net, op) != device {
                continue;
            }
            for o in &op.output {
                if allocated.contains_key(o) {
                    continue;
                }
                let bytes = match shapes.get(o).and_then(|s| s.bytes) {
                    Some(b) => b,
                    None => {
                        if !est.unknown.contains(o) {
                            est.unknown.push(o.clone());
                        }
                        0
                    }
                };
                allocated.insert(o.clone(), bytes);
                current = current.saturating_add(bytes);
                est.total_bytes = est.total_bytes.saturating_add(bytes);
                est.high_water_bytes = est.high_water_bytes.max(current);
                *est.by_op_type.entry(ty.to_string()).or_default() += bytes;
            }
        }
    }
    est
}
