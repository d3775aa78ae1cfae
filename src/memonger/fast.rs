//! Compatible mode A: Caffe2's `optimize_inference_net` (spec §3) — one sequential pass with a
//! LIFO free list, `__m<k>_shared` names, Caffe2's refusals, and the §3 safety fixes
//! (external lists static, ranges end at the last access, read-first names static, subnet
//! names read at the parent op). O(N + E).

use super::graph::{BlobId, NetGraph};
use super::liveness::reads_of;
use crate::proto::NetDef;

/// Why a net was returned unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NetType(String),
    RecurrentNetwork,
    AlreadyOptimized,
    /// An op failed its registered schema (spec §1): an enforce, not a plain refusal.
    SchemaCheck(String),
}

impl Refusal {
    /// Caffe2's log line for the refusal.
    pub fn message(&self) -> String {
        match self {
            Refusal::NetType(t) => format!("Cannot optimize memory for nets of type: {t}"),
            Refusal::RecurrentNetwork => "Memonger does not support RecurrentNetwork yet".into(),
            Refusal::AlreadyOptimized => "Net was already memongered!".into(),
            Refusal::SchemaCheck(m) => m.clone(),
        }
    }
}

/// The sharing decided by the fast pass.
#[derive(Clone, Debug)]
pub struct FastAssignment {
    /// Per name id: the final name when the name is renamed.
    pub final_name: Vec<Option<String>>,
    /// Number of `__m<k>_shared` names created.
    pub shared: usize,
}

/// Refusals shared by every sequential mode (§3 step 1, §5.1) except "already optimized".
pub fn sequential_refusal(net: &NetDef) -> Option<Refusal> {
    let t = net.r#type.as_deref().unwrap_or("");
    if !(t.is_empty() || t == "simple") {
        return Some(Refusal::NetType(t.to_string()));
    }
    if net
        .op
        .iter()
        .any(|op| op.r#type.as_deref() == Some("RecurrentNetwork"))
    {
        return Some(Refusal::RecurrentNetwork);
    }
    None
}

/// Runs the recycling pass on `g` with `is_static` (caller statics; the external lists and
/// read-first names are added here). Sizes and devices are ignored, as in Caffe2.
pub fn fast_assignment(g: &NetGraph, is_static: &[bool]) -> Result<FastAssignment, Refusal> {
    let names = g.num_names();
    let mut stat = is_static.to_vec();
    for &b in g.external_input.iter().chain(g.external_output.iter()) {
        stat[b as usize] = true;
    }
    // Names a subnet references are kept: the pass does not rewrite subnets.
    for op in &g.ops {
        for &b in &op.subnet_names {
            stat[b as usize] = true;
        }
    }
    // Ranges: inputs before outputs; the first access being a read makes a name static.
    let mut range: Vec<Option<(u32, u32)>> = vec![None; names];
    let mut seen = vec![false; names];
    for (i, op) in g.ops.iter().enumerate() {
        let t = i as u32;
        for b in reads_of(g, i) {
            let bi = b as usize;
            if !seen[bi] {
                seen[bi] = true;
                stat[bi] = true;
            }
            if let Some(r) = range[bi].as_mut() {
                r.1 = t;
            }
        }
        for &b in &op.outputs {
            let bi = b as usize;
            seen[bi] = true;
            if stat[bi] {
                continue;
            }
            match range[bi].as_mut() {
                Some(r) => r.1 = r.1.max(t),
                None => range[bi] = Some((t, t)),
            }
        }
    }
    let mut mapping: Vec<Option<BlobId>> = vec![None; names];
    let mut renaming: Vec<Option<usize>> = vec![None; names];
    let mut shared = 0usize;
    let mut free: Vec<BlobId> = Vec::new();
    let mut freed_here: Vec<BlobId> = Vec::new();
    let mut in_freed = vec![false; names];
    for (i, op) in g.ops.iter().enumerate() {
        let t = i as u32;
        freed_here.clear();
        for b in reads_of(g, i) {
            let Some((_, end)) = range[b as usize] else {
                continue;
            };
            if end != t {
                continue;
            }
            let canonical = mapping[b as usize].unwrap_or(b);
            if renaming[canonical as usize].is_none() {
                let name = format!("__m{shared}_shared");
                if g.id(&name).is_some() {
                    return Err(Refusal::AlreadyOptimized);
                }
                renaming[canonical as usize] = Some(shared);
                mapping[canonical as usize] = Some(canonical);
                shared += 1;
            }
            if !in_freed[canonical as usize] {
                in_freed[canonical as usize] = true;
                freed_here.push(canonical);
            }
        }
        for &out in &op.outputs {
            let oi = out as usize;
            if range[oi].is_some_and(|r| r.0 == t) && mapping[oi].is_none() {
                if let Some(c) = free.pop() {
                    mapping[oi] = Some(c);
                }
            }
        }
        for &c in &freed_here {
            in_freed[c as usize] = false;
            free.push(c);
        }
    }
    let final_name = (0..names)
        .map(|b| {
            mapping[b]
                .and_then(|c| renaming[c as usize])
                .map(|k| format!("__m{k}_shared"))
        })
        .collect();
    Ok(FastAssignment { final_name, shared })
}

/// Renames every op input and output of `net` whose id has a final name (external lists,
/// args and everything else untouched).
pub fn rename_ops(net: &NetDef, g: &NetGraph, final_name: &[Option<String>]) -> NetDef {
    let mut out = net.clone();
    for op in &mut out.op {
        for name in op.input.iter_mut().chain(op.output.iter_mut()) {
            if let Some(Some(new)) = g.id(name).map(|id| &final_name[id as usize]) {
                *name = new.clone();
            }
        }
    }
    out
}

/// `optimize_inference_net(net, static_blobs)`: the renamed net, or the refusal.
/// An op failing its registered schema gives `Refusal::SchemaCheck` with the enforce text.
pub fn optimize_inference_net(net: &NetDef, static_blobs: &[String]) -> Result<NetDef, Refusal> {
    if let Err(e) = super::schema_check::check_schemas(net) {
        return Err(Refusal::SchemaCheck(e.message().to_string()));
    }
    if let Some(r) = sequential_refusal(net) {
        return Err(r);
    }
    let g = NetGraph::build(net);
    let mut is_static = vec![false; g.num_names()];
    for s in static_blobs {
        if let Some(id) = g.id(s) {
            is_static[id as usize] = true;
        }
    }
    let a = fast_assignment(&g, &is_static)?;
    Ok(rename_ops(net, &g, &a.final_name))
}
