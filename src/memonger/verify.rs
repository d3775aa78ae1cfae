//! The verifier every rewrite passes (spec §5.6): same ops, same producer for every read,
//! same in-place pairs, distinct outputs, statics untouched, and no two activations alive at
//! one op sharing a final name. O((N + E) log E).

use super::graph::{FastMap as HashMap, NetGraph, effective_device, is_subnet_arg};
use super::liveness::Liveness;
use crate::proto::{Argument, NetDef, OperatorDef};

/// One problem found by the verifier, with a message naming blobs and op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

fn op_label(op: &OperatorDef, i: usize) -> String {
    format!("op #{i} ({})", op.r#type.as_deref().unwrap_or(""))
}

fn comparable_args(args: &[Argument]) -> Vec<Argument> {
    let mut out: Vec<Argument> = args
        .iter()
        .filter(|a| !a.name.as_deref().unwrap_or("").ends_with(".rename"))
        .map(|a| {
            if is_subnet_arg(a) {
                // Subnet blobs may be renamed consistently; compare the argument's presence.
                Argument {
                    name: a.name.clone(),
                    ..Default::default()
                }
            } else {
                a.clone()
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Per op input slot (and control input), the index of the latest earlier op writing it.
fn producers(net: &NetDef) -> Vec<Vec<Option<usize>>> {
    let mut last: HashMap<&str, usize> = HashMap::default();
    let mut out = Vec::with_capacity(net.op.len());
    for (i, op) in net.op.iter().enumerate() {
        out.push(
            op.input
                .iter()
                .chain(op.control_input.iter())
                .map(|x| last.get(x.as_str()).copied())
                .collect(),
        );
        for o in &op.output {
            last.insert(o, i);
        }
    }
    out
}

/// Graph equality (§5.6 (2)) plus type/engine/device equality; Python's
/// `verify_graph_equality`.
pub fn verify_graph_equality(before: &NetDef, after: &NetDef) -> Vec<Violation> {
    let mut v = Vec::new();
    if before.op.len() != after.op.len() {
        v.push(Violation(format!(
            "op count differs: {} before, {} after",
            before.op.len(),
            after.op.len()
        )));
        return v;
    }
    for (i, (a, b)) in before.op.iter().zip(&after.op).enumerate() {
        if a.r#type != b.r#type || a.engine != b.engine || a.device_option != b.device_option {
            v.push(Violation(format!(
                "{}: type, engine or device option changed",
                op_label(a, i)
            )));
        }
        if a.input.len() != b.input.len()
            || a.output.len() != b.output.len()
            || a.control_input.len() != b.control_input.len()
        {
            v.push(Violation(format!(
                "{}: slot counts changed",
                op_label(a, i)
            )));
        }
    }
    if !v.is_empty() {
        return v;
    }
    let (pa, pb) = (producers(before), producers(after));
    for (i, (sa, sb)) in pa.iter().zip(&pb).enumerate() {
        for (j, (x, y)) in sa.iter().zip(sb).enumerate() {
            if x != y {
                let op = &before.op[i];
                let name = op
                    .input
                    .iter()
                    .chain(op.control_input.iter())
                    .nth(j)
                    .map_or("", |s| s.as_str());
                v.push(Violation(format!(
                    "{}: input `{name}` is produced by op {x:?} before and by op {y:?} after",
                    op_label(op, i)
                )));
            }
        }
    }
    v
}

fn inplace_pairs(op: &OperatorDef) -> Vec<(usize, usize)> {
    // Ops have a handful of slots: a nested scan beats a hash map.
    let mut pairs = Vec::new();
    for (j, x) in op.input.iter().enumerate() {
        for (k, o) in op.output.iter().enumerate() {
            if x == o {
                pairs.push((j, k));
            }
        }
    }
    pairs
}

/// In-place equality (§5.6 (3)); Python's `verify_inplace_blobs`.
pub fn verify_inplace_blobs(before: &NetDef, after: &NetDef) -> Vec<Violation> {
    before
        .op
        .iter()
        .zip(&after.op)
        .enumerate()
        .filter(|(_, (a, b))| inplace_pairs(a) != inplace_pairs(b))
        .map(|(i, (a, _))| {
            Violation(format!(
                "{}: in-place input/output pairs differ",
                op_label(a, i)
            ))
        })
        .collect()
}

/// The full verifier: `static_blobs` plus both external lists must be untouched.
pub fn verify(before: &NetDef, after: &NetDef, static_blobs: &[String]) -> Vec<Violation> {
    let mut v = verify_graph_equality(before, after);
    if !v.is_empty() {
        return v;
    }
    v.extend(verify_inplace_blobs(before, after));
    for (i, (a, b)) in before.op.iter().zip(&after.op).enumerate() {
        if a.arg != b.arg && comparable_args(&a.arg) != comparable_args(&b.arg) {
            v.push(Violation(format!("{}: arguments changed", op_label(a, i))));
        }
        for (k, o) in b.output.iter().enumerate() {
            if b.output[..k].contains(o) {
                v.push(Violation(format!(
                    "{}: output `{o}` appears twice after the rewrite",
                    op_label(a, i)
                )));
            }
        }
    }
    if before.external_input != after.external_input
        || before.external_output != after.external_output
    {
        v.push(Violation("external input or output lists changed".into()));
    }
    // Map each original name to its final name, slot by slot.
    let g = NetGraph::build(before);
    let mut is_static = vec![false; g.num_names()];
    for s in static_blobs {
        if let Some(id) = g.id(s) {
            is_static[id as usize] = true;
        }
    }
    for &b in &g.external_input {
        is_static[b as usize] = true;
    }
    let live = Liveness::compute(&g, &is_static);
    let mut final_of: Vec<Option<&str>> = vec![None; g.num_names()];
    for (i, (a, b)) in before.op.iter().zip(&after.op).enumerate() {
        let pairs = a
            .input
            .iter()
            .zip(&b.input)
            .chain(a.output.iter().zip(&b.output));
        for (x, y) in pairs {
            let Some(id) = g.id(x) else { continue };
            let keep = live.get(id).is_none() || g.external_output.contains(&id);
            if keep && x != y {
                v.push(Violation(format!(
                    "{}: static or external blob `{x}` was renamed to `{y}`",
                    op_label(a, i)
                )));
            }
            match final_of[id as usize] {
                None => final_of[id as usize] = Some(y),
                Some(prev) if prev != y => v.push(Violation(format!(
                    "{}: blob `{x}` is renamed inconsistently (`{prev}` and `{y}`)",
                    op_label(a, i)
                ))),
                Some(_) => {}
            }
        }
    }
    // A renamed activation must not take the name of a kept (static or unwritten) blob.
    let mut tenants: Vec<(&str, u32)> = Vec::with_capacity(live.activations.len());
    for &b in &live.activations {
        let name = final_of[b as usize].unwrap_or(g.name(b));
        if name != g.name(b)
            && g.id(name)
                .is_some_and(|id| live.interval[id as usize].is_none())
        {
            v.push(Violation(format!(
                "activation `{}` was renamed to the static blob `{name}`",
                g.name(b)
            )));
        }
        tenants.push((name, b));
    }
    tenants.sort_unstable();
    let device_of = |b: u32| -> (i32, i32) {
        let first = live.get(b).map_or(0, |iv| iv.first) as usize;
        effective_device(before, &before.op[first])
    };
    let mut start = 0;
    while start < tenants.len() {
        let name = tenants[start].0;
        let mut end = start + 1;
        while end < tenants.len() && tenants[end].0 == name {
            end += 1;
        }
        let mut t: Vec<u32> = tenants[start..end].iter().map(|&(_, b)| b).collect();
        start = end;
        if t.len() < 2 {
            continue;
        }
        t.sort_by_key(|&b| live.get(b).map_or(0, |iv| iv.first));
        let mut prev = t[0];
        for &b in &t[1..] {
            let (ip, ib) = (live.get(prev), live.get(b));
            if let (Some(ip), Some(ib)) = (ip, ib) {
                if ib.first <= ip.last {
                    let at = ib.first as usize;
                    v.push(Violation(format!(
                        "blobs `{}` and `{}` are both alive at {} but share the name `{name}`",
                        g.name(prev),
                        g.name(b),
                        op_label(&before.op[at], at)
                    )));
                }
                if device_of(prev) != device_of(b) {
                    v.push(Violation(format!(
                        "blobs `{}` and `{}` live on different devices but share the name `{name}`",
                        g.name(prev),
                        g.name(b)
                    )));
                }
                if ib.last > ip.last {
                    prev = b;
                }
            }
        }
    }
    v
}
