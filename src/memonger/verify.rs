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

#[cfg(test)]
mod tests {
    use super::*;

    fn op(ty: &str, inputs: &[&str], outputs: &[&str], arg: Vec<Argument>) -> OperatorDef {
        OperatorDef {
            r#type: Some(ty.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            arg,
            ..Default::default()
        }
    }

    fn net(ops: Vec<OperatorDef>) -> NetDef {
        NetDef {
            op: ops,
            external_input: vec!["x".into()],
            external_output: vec!["y".into()],
            ..Default::default()
        }
    }

    fn int_arg(name: &str, i: i64) -> Argument {
        Argument {
            name: Some(name.into()),
            i: Some(i),
            ..Default::default()
        }
    }

    fn subnet_arg(name: &str, reads: &str) -> Argument {
        Argument {
            name: Some(name.into()),
            n: Some(net(vec![op("Copy", &[reads], &["out"], vec![])])),
            ..Default::default()
        }
    }

    /// `x -> a -> y`, with `args` on the first op.
    fn chain(args: Vec<Argument>) -> NetDef {
        net(vec![
            op("Relu", &["x"], &["a"], args),
            op("Relu", &["a"], &["y"], vec![]),
        ])
    }

    fn messages(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|x| x.0.as_str()).collect()
    }

    #[test]
    fn changed_arguments_are_violations_but_rename_args_and_renamed_subnets_are_not() {
        let before = chain(vec![int_arg("axis", 1), subnet_arg("then_net", "a")]);
        assert!(verify(&before, &before, &[]).is_empty());
        // A plain argument's value changed.
        let after = chain(vec![int_arg("axis", 2), subnet_arg("then_net", "a")]);
        assert_eq!(
            messages(&verify(&before, &after, &[])),
            ["op #0 (Relu): arguments changed"]
        );
        // A `.rename` argument added (as on RecurrentNetwork ops) and the names inside a
        // subnet renamed: not a change of the op's arguments.
        let mut renamed = chain(vec![int_arg("axis", 1), subnet_arg("then_net", "b")]);
        renamed.op[0].arg.push(Argument {
            name: Some("a.rename".into()),
            s: Some(b"b".to_vec()),
            ..Default::default()
        });
        assert!(verify(&before, &renamed, &[]).is_empty());
        // A subnet moved to another argument is a change.
        let moved = chain(vec![int_arg("axis", 1), subnet_arg("else_net", "a")]);
        assert_eq!(
            messages(&verify(&before, &moved, &[])),
            ["op #0 (Relu): arguments changed"]
        );
    }

    #[test]
    fn in_place_pairs_must_stay_as_they_were() {
        let in_place = |out: &str| {
            net(vec![
                op("Relu", &["x"], &["a"], vec![]),
                op("Sum", &["a", "x"], &[out], vec![]),
                op("Relu", &[out], &["y"], vec![]),
            ])
        };
        let before = in_place("a");
        // Renamed consistently, still in place: fine.
        let renamed = net(vec![
            op("Relu", &["x"], &["b"], vec![]),
            op("Sum", &["b", "x"], &["b"], vec![]),
            op("Relu", &["b"], &["y"], vec![]),
        ]);
        assert!(verify_inplace_blobs(&before, &renamed).is_empty());
        // No longer in place, or newly in place.
        let moved = ["op #1 (Sum): in-place input/output pairs differ"];
        assert_eq!(
            messages(&verify_inplace_blobs(&before, &in_place("c"))),
            moved
        );
        assert_eq!(
            messages(&verify_inplace_blobs(&in_place("c"), &before)),
            moved
        );
        assert_eq!(
            messages(&verify(&before, &in_place("c"), &[])).first(),
            moved.first()
        );
        // Only in-place pairs are compared here (slot counts are verify_graph_equality's):
        // an op that gains an input while staying out of place passes this check.
        let wider = net(vec![
            op("Relu", &["x"], &["a"], vec![]),
            op("Sum", &["a", "x", "x"], &["c"], vec![]),
            op("Relu", &["c"], &["y"], vec![]),
        ]);
        assert!(verify_inplace_blobs(&in_place("c"), &wider).is_empty());
    }

    #[test]
    fn external_lists_and_the_names_of_static_and_external_blobs_must_stay() {
        let before = chain(vec![]);
        let lists = ["external input or output lists changed"];
        let mut after = before.clone();
        after.external_input.push("w".into());
        assert_eq!(messages(&verify(&before, &after, &[])), lists);
        let mut after = before.clone();
        after.external_output.push("a".into());
        assert_eq!(messages(&verify(&before, &after, &[])), lists);
        // The external input (static) renamed where it is read.
        let mut after = before.clone();
        after.op[0].input[0] = "x2".into();
        assert!(
            messages(&verify(&before, &after, &[]))
                .contains(&"op #0 (Relu): static or external blob `x` was renamed to `x2`"),
            "{:?}",
            verify(&before, &after, &[])
        );
        // The external output renamed where it is written.
        let mut after = before.clone();
        after.op[1].output[0] = "y2".into();
        assert!(
            messages(&verify(&before, &after, &[]))
                .contains(&"op #1 (Relu): static or external blob `y` was renamed to `y2`"),
            "{:?}",
            verify(&before, &after, &[])
        );
        // An activation renamed consistently is fine.
        let mut after = before.clone();
        after.op[0].output[0] = "a2".into();
        after.op[1].input[0] = "a2".into();
        assert!(verify(&before, &after, &[]).is_empty());
    }

    /// `x -> a -> b -> c -> y`.
    fn long_chain() -> NetDef {
        net(vec![
            op("Relu", &["x"], &["a"], vec![]),
            op("Relu", &["a"], &["b"], vec![]),
            op("Relu", &["b"], &["c"], vec![]),
            op("Relu", &["c"], &["y"], vec![]),
        ])
    }

    /// `net` with slot `(op, is_output, slot)` renamed to `to`.
    fn renamed(net: &NetDef, slots: &[(usize, bool, usize)], to: &str) -> NetDef {
        let mut after = net.clone();
        for &(i, out, k) in slots {
            let names = if out {
                &mut after.op[i].output
            } else {
                &mut after.op[i].input
            };
            names[k] = to.into();
        }
        after
    }

    #[test]
    fn shared_names_must_be_consistent_not_static_and_never_held_by_two_live_blobs() {
        let before = long_chain();
        // `a` and `c` do not overlap ([0, 1] and [2, 3]): sharing a name is the point.
        let shared = renamed(&before, &[(2, true, 0), (3, false, 0)], "a");
        assert!(verify(&before, &shared, &[]).is_empty());
        // `a` written twice (ops 0 and 2), each version renamed on its own: the producers
        // hold, but one name is given two final names.
        let twice = net(vec![
            op("Relu", &["x"], &["a"], vec![]),
            op("Relu", &["a"], &["b"], vec![]),
            op("Relu", &["b"], &["a"], vec![]),
            op("Relu", &["a"], &["y"], vec![]),
        ]);
        let split = renamed(
            &renamed(&twice, &[(0, true, 0), (1, false, 0)], "p"),
            &[(2, true, 0), (3, false, 0)],
            "q",
        );
        assert!(
            messages(&verify(&twice, &split, &[]))
                .contains(&"op #2 (Relu): blob `a` is renamed inconsistently (`p` and `q`)"),
            "{:?}",
            verify(&twice, &split, &[])
        );
        // An activation renamed to the external input.
        let to_static = renamed(&before, &[(2, true, 0), (3, false, 0)], "x");
        assert!(
            messages(&verify(&before, &to_static, &[]))
                .contains(&"activation `c` was renamed to the static blob `x`"),
            "{:?}",
            verify(&before, &to_static, &[])
        );
        // `b` ([1, 2]) renamed to `a` ([0, 1]): both alive at op 1 (where `a` is read and `b`
        // written, now in place).
        let overlap = renamed(&before, &[(1, true, 0), (2, false, 0)], "a");
        assert!(
            messages(&verify(&before, &overlap, &[])).contains(
                &"blobs `a` and `b` are both alive at op #1 (Relu) but share the name `a`"
            ),
            "{:?}",
            verify(&before, &overlap, &[])
        );
    }

    #[test]
    fn two_live_blobs_among_three_under_one_name_are_found() {
        let before = net(vec![
            op("Relu", &["x"], &["a"], vec![]),
            op("Relu", &["a"], &["b"], vec![]),
            op("Relu", &["b"], &["c"], vec![]),
            op("Relu", &["c"], &["d"], vec![]),
            op("Relu", &["d"], &["y"], vec![]),
        ]);
        // `a` [0, 1] and `c` [2, 3] may share; `d` [3, 4] overlaps `c` at op 3.
        let three = renamed(&before, &[(2, true, 0), (3, false, 0)], "a");
        assert!(verify(&before, &three, &[]).is_empty());
        let three = renamed(&three, &[(3, true, 0), (4, false, 0)], "a");
        assert!(
            messages(&verify(&before, &three, &[])).contains(
                &"blobs `c` and `d` are both alive at op #3 (Relu) but share the name `a`"
            ),
            "{:?}",
            verify(&before, &three, &[])
        );
    }

    #[test]
    fn a_long_lived_tenant_is_checked_against_every_later_one() {
        // `a` and `b` both written at op 0; `a` read at op 1 (or op 4), `b` at op 4 (or op 1);
        // `c` written at op 4.
        let build = |late: &str, early: &str| {
            net(vec![
                op("Split", &["x"], &["a", "b"], vec![]),
                op("Relu", &[early], &["p"], vec![]),
                op("Relu", &["p"], &["q"], vec![]),
                op("Relu", &["q"], &["r"], vec![]),
                op("Sum", &[late, "r"], &["c"], vec![]),
                op("Relu", &["c"], &["y"], vec![]),
            ])
        };
        let has = |before: &NetDef, after: &NetDef, m: &str| {
            let v = verify(before, after, &[]);
            assert!(messages(&v).contains(&m), "{v:?}");
        };
        // `a` [0, 4] outlives `b` [0, 1]; `c` [4, 5] overlaps `a`, not `b`.
        let before = build("a", "b");
        let after = renamed(
            &before,
            &[(0, true, 1), (1, false, 0), (4, true, 0), (5, false, 0)],
            "a",
        );
        has(
            &before,
            &after,
            "blobs `a` and `c` are both alive at op #4 (Sum) but share the name `a`",
        );
        // `b` [0, 4] outlives `a` [0, 1]; `c` [4, 5] overlaps `b`, not `a`.
        let before = build("b", "a");
        let after = renamed(
            &before,
            &[(0, true, 0), (1, false, 0), (4, true, 0), (5, false, 0)],
            "b",
        );
        has(
            &before,
            &after,
            "blobs `b` and `c` are both alive at op #4 (Sum) but share the name `b`",
        );
    }

    #[test]
    fn a_shared_name_must_stay_on_one_device() {
        let mut before = long_chain();
        before.op[2].device_option = Some(crate::proto::DeviceOption {
            device_type: Some(1),
            ..Default::default()
        });
        let shared = renamed(&before, &[(2, true, 0), (3, false, 0)], "a");
        assert_eq!(
            messages(&verify(&before, &shared, &[])),
            ["blobs `a` and `c` live on different devices but share the name `a`"]
        );
    }

    #[test]
    fn a_changed_type_engine_or_device_is_a_violation() {
        let before = chain(vec![]);
        let change = |f: &dyn Fn(&mut OperatorDef)| {
            let mut after = before.clone();
            f(&mut after.op[1]);
            messages(&verify_graph_equality(&before, &after))
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        let changed = ["op #1 (Relu): type, engine or device option changed"];
        assert_eq!(change(&|o| o.r#type = Some("Sigmoid".into())), changed);
        assert_eq!(change(&|o| o.engine = Some("CUDNN".into())), changed);
        assert_eq!(
            change(&|o| o.device_option = Some(crate::proto::DeviceOption {
                device_type: Some(1),
                ..Default::default()
            })),
            changed
        );
    }

    #[test]
    fn a_changed_slot_count_is_a_violation_whichever_slots_changed() {
        let before = chain(vec![]);
        let grow = |f: &dyn Fn(&mut OperatorDef)| {
            let mut after = before.clone();
            f(&mut after.op[0]);
            messages(&verify_graph_equality(&before, &after))
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        let changed = ["op #0 (Relu): slot counts changed"];
        assert_eq!(grow(&|o| o.input.push("x".into())), changed);
        assert_eq!(grow(&|o| o.output.push("extra".into())), changed);
        assert_eq!(grow(&|o| o.control_input.push("x".into())), changed);
        assert!(grow(&|_| {}).is_empty());
    }
}
