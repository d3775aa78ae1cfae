//! The planner and the fast pass on every golden net (tests/data/golden/netdefs and
//! tests/data/golden/memonger): name counts against the lower bound and Caffe2's counts, byte
//! ratios against `lb_bytes`, and an independent check (lifetimes recomputed here from the
//! original net) that no two live activations share a name or overlapping arena bytes.

mod common;

use caffe2rs::memonger::{fast, planner, shapes, verify};
use caffe2rs::proto::NetDef;
use common::*;
use std::collections::HashMap;

/// Lifetimes recomputed from scratch: name -> (first write, last access), external outputs
/// to N. Independent of the library's liveness module.
fn lifetimes(net: &NetDef) -> HashMap<String, (usize, usize)> {
    let stat: std::collections::HashSet<&String> = net.external_input.iter().collect();
    let mut life: HashMap<String, (usize, usize)> = HashMap::new();
    for (i, op) in net.op.iter().enumerate() {
        for x in &op.input {
            if let Some(l) = life.get_mut(x) {
                l.1 = i;
            }
        }
        for a in &op.arg {
            for sub in a.n.iter() {
                for sop in &sub.op {
                    for x in sop.input.iter().chain(sop.output.iter()) {
                        if let Some(l) = life.get_mut(x) {
                            l.1 = i;
                        }
                    }
                }
            }
        }
        for x in &op.output {
            if !stat.contains(x) {
                life.entry(x.clone()).or_insert((i, i)).1 = i;
            }
        }
    }
    for x in &net.external_output {
        if let Some(l) = life.get_mut(x) {
            l.1 = net.op.len();
        }
    }
    life
}

/// Final name of every original activation, pairing slots of both nets.
fn final_names(before: &NetDef, after: &NetDef) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for (a, b) in before.op.iter().zip(&after.op) {
        for (x, y) in a
            .input
            .iter()
            .zip(&b.input)
            .chain(a.output.iter().zip(&b.output))
        {
            let prev = m.insert(x.clone(), y.clone());
            assert!(prev.is_none_or(|p| &p == y), "`{x}` renamed inconsistently");
        }
    }
    m
}

fn assert_no_live_name_sharing(before: &NetDef, after: &NetDef) -> usize {
    assert_eq!(before.op.len(), after.op.len());
    let life = lifetimes(before);
    let fin = final_names(before, after);
    let mut by_name: HashMap<&str, Vec<(usize, usize, &str)>> = HashMap::new();
    for (blob, &(f, l)) in &life {
        by_name
            .entry(fin[blob].as_str())
            .or_default()
            .push((f, l, blob));
    }
    for (name, mut t) in by_name.clone() {
        t.sort();
        for w in t.windows(2) {
            assert!(
                w[0].1 < w[1].0,
                "`{}` and `{}` share `{name}` while alive",
                w[0].2,
                w[1].2
            );
        }
    }
    by_name.len()
}

fn assert_arena_disjoint(before: &NetDef, plan: &planner::MemoryPlan) {
    let life = lifetimes(before);
    for a in &plan.arenas {
        let mut e: Vec<_> = a.entries.iter().collect();
        e.sort_by_key(|x| x.offset);
        // O(n²) on purpose: independent of the library's sweep.
        for (i, x) in e.iter().enumerate() {
            assert_eq!(x.offset % plan.alignment, 0);
            assert!(x.offset + x.bytes <= a.arena_bytes);
            let (xf, xl) = life[&x.blob];
            for y in &e[i + 1..] {
                if y.offset >= x.offset + x.bytes {
                    break;
                }
                let (yf, yl) = life[&y.blob];
                assert!(
                    xl < yf || yl < xf,
                    "`{}` and `{}` overlap in bytes while alive",
                    x.blob,
                    y.blob
                );
            }
        }
    }
}

/// By default no activation takes an external output's name and none is renamed, as in
/// `optimize_inference_net`.
#[test]
fn planner_keeps_external_outputs_by_default_on_every_golden_netdef() {
    let manifest = std::fs::read_to_string(golden("netdefs/manifest.json")).unwrap();
    for (file, _) in manifest_entries(&manifest) {
        let net = read_net(&format!("netdefs/{file}"));
        let plan = planner::plan(&net, None, &planner::PlanOptions::default()).unwrap();
        assert!(plan.violations.is_empty(), "{file}");
        let fin = final_names(&net, &plan.net);
        for out in &net.external_output {
            for (blob, name) in &fin {
                if name == out || blob == out {
                    assert_eq!(blob, name, "{file}: `{blob}` renamed to `{name}`");
                }
            }
        }
        assert_no_live_name_sharing(&net, &plan.net);
        let outs = net.external_output.len() as u64;
        assert!(
            plan.figures.names as u64 <= plan.figures.lb_count + outs,
            "{file}"
        );
    }
}

#[test]
fn planner_without_shapes_reaches_lb_count_on_every_golden_netdef() {
    let manifest = std::fs::read_to_string(golden("netdefs/manifest.json")).unwrap();
    for (file, obj) in manifest_entries(&manifest) {
        let net = read_net(&format!("netdefs/{file}"));
        let lb_count = int_field(&obj, "lb_count").unwrap();
        let c2 = int_field(&obj, "c2_count_static_in_and_out").unwrap();
        // External outputs may end a chain here: the count bound counts them as activations.
        let opts = planner::PlanOptions {
            share_external_outputs: true,
            ..Default::default()
        };
        let plan = planner::plan(&net, None, &opts).unwrap();
        assert!(plan.violations.is_empty(), "{file}: {:?}", plan.violations);
        let statics = net.external_input.clone();
        assert!(verify::verify(&net, &plan.net, &statics).is_empty());
        let names = assert_no_live_name_sharing(&net, &plan.net);
        assert_eq!(names, plan.figures.names, "{file}");
        assert_arena_disjoint(&net, &plan);
        // Compatible mode with external inputs and outputs static.
        let mut st = net.external_input.clone();
        st.extend(net.external_output.iter().cloned());
        let opt = fast::optimize_inference_net(&net, &st).unwrap();
        assert!(verify::verify(&net, &opt, &st).is_empty(), "{file}");
        // Caffe2's count leaves out the static external outputs.
        let written_outs = net
            .external_output
            .iter()
            .filter(|x| net.op.iter().any(|o| o.output.contains(x)))
            .count();
        let c2_names = assert_no_live_name_sharing(&net, &opt) - written_outs;
        let has_subnet = net.op.iter().any(|o| o.arg.iter().any(|a| a.n.is_some()));
        println!(
            "{file:45} ops {:4} names {:3} lb_count {:3} (manifest {lb_count:3}) c2 {c2_names:3} (manifest {c2:3}){}",
            plan.figures.ops,
            plan.figures.names,
            plan.figures.lb_count,
            if has_subnet {
                "  [If subnet reads extend a lifetime]"
            } else {
                ""
            }
        );
        assert_eq!(plan.figures.names as u64, plan.figures.lb_count, "{file}");
        if has_subnet {
            // The manifest ignores names read inside then/else nets (upstream bug §7.2): a
            // safe plan keeps such a blob alive up to the If, one name more at most.
            assert!(plan.figures.lb_count <= lb_count + 1);
            assert!(c2_names as u64 <= c2 + 1);
        } else {
            assert_eq!(plan.figures.lb_count, lb_count, "{file}");
            assert_eq!(c2_names as u64, c2, "{file}");
        }
    }
}

fn check_memonger_nets(name_target: f64) {
    let manifest = std::fs::read_to_string(golden("memonger/manifest.json")).unwrap();
    let entries = manifest_entries(&manifest);
    assert_eq!(entries.len(), 8);
    let mut misses = Vec::new();
    for (file, obj) in entries {
        let net = read_net(&format!("memonger/{file}"));
        let stem = file.trim_end_matches(".pb");
        let shape_bytes = std::fs::read(golden(&format!("memonger/{stem}.shapes.pb"))).unwrap();
        let shapes = shapes::parse_shapes(&shape_bytes).unwrap();
        let plan = planner::plan(&net, Some(&shapes), &planner::PlanOptions::default()).unwrap();
        let f = &plan.figures;
        assert!(plan.violations.is_empty(), "{file}: {:?}", plan.violations);
        // The reported name algorithm is one the planner has (one net's winner is an
        // `+improve` candidate).
        let base = plan
            .name_algorithm
            .strip_suffix("+improve")
            .unwrap_or(plan.name_algorithm);
        assert!(
            planner::NAME_CANDIDATES.contains(&base)
                || (base == plan.name_algorithm
                    && ["search", "caffe2_fast", "none"].contains(&base)),
            "{file}: {}",
            plan.name_algorithm
        );
        assert!(verify::verify(&net, &plan.net, &net.external_input).is_empty());
        assert_no_live_name_sharing(&net, &plan.net);
        assert_arena_disjoint(&net, &plan);
        let lb = int_field(&obj, "lb_bytes").unwrap();
        let c2_bytes = int_field(&obj, "c2_bytes").unwrap();
        println!(
            "{file:24} lb {:>11} names {:3}/{:3} name_lb {:.4} name_bytes {:.4} arena {:.4} c2_fast {:.4} (manifest c2 {:.4}) naive {:.3} [{} / {}]",
            f.lb_bytes,
            f.names,
            f.lb_count,
            f.name_lb_bytes as f64 / lb as f64,
            f.name_bytes as f64 / lb as f64,
            f.arena_bytes as f64 / lb as f64,
            f.c2_fast_bytes as f64 / lb as f64,
            c2_bytes as f64 / lb as f64,
            f.naive_bytes as f64 / lb as f64,
            plan.name_algorithm,
            plan.arena_algorithm
        );
        assert_eq!(f.lb_bytes, lb, "{file}");
        assert_eq!(f.lb_count, int_field(&obj, "lb_count").unwrap(), "{file}");
        assert_eq!(
            f.naive_bytes,
            int_field(&obj, "naive_bytes").unwrap(),
            "{file}"
        );
        assert_eq!(
            f.activations as u64,
            int_field(&obj, "activations").unwrap(),
            "{file}"
        );
        assert!(
            f.name_lb_bytes >= lb,
            "{file}: the name bound is below lb_bytes"
        );
        assert!(
            f.name_bytes >= f.name_lb_bytes,
            "{file}: name bytes below their own lower bound"
        );
        // A miss counts only when some renaming could reach the target: the layered
        // lower bound (no renaming costs less) must be at or under it.
        if f.name_bytes as f64 > name_target * lb as f64
            && f.name_lb_bytes as f64 <= name_target * lb as f64
        {
            misses.push(format!(
                "{file}: name bytes {:.4} × lb (bound {:.4})",
                f.name_bytes as f64 / lb as f64,
                f.name_lb_bytes as f64 / lb as f64
            ));
        }
        if f.name_bytes as f64 > 1.06 * f.name_lb_bytes as f64 {
            misses.push(format!(
                "{file}: name bytes {:.4} × the name lower bound",
                f.name_bytes as f64 / f.name_lb_bytes as f64
            ));
        }
        if f.arena_bytes as f64 > 1.03 * lb as f64 {
            misses.push(format!(
                "{file}: arena bytes {:.4} × lb",
                f.arena_bytes as f64 / lb as f64
            ));
        }
        assert!(f.name_bytes <= f.c2_fast_bytes, "{file}");
    }
    assert!(misses.is_empty(), "targets missed: {misses:?}");
}

/// Arena ≤ 1.03 × lb_bytes on every net, shared-name bytes never above Caffe2's fast pass
/// and within 6 % of the name lower bound, and the shared-name target (1.15 ×
/// lb_bytes) met on every net where any renaming can meet it. On densenet121_infer
/// (bound 1.202), googlenet_infer (1.203), mobilenet_v2_train (1.169) and vgg19_train
/// (1.282) the layered clique bound proves no renaming reaches 1.15 × lb_bytes.
#[test]
fn planner_with_shapes_meets_byte_targets_where_reachable_on_every_golden_memonger_net() {
    check_memonger_nets(1.15);
}

/// The optimum an exact CP-SAT model proved for mobilenet_v2_infer's renaming problem
/// (scripts/memonger_exact.py on the problem `cargo bench --bench memonger -- --dump` writes,
/// plus the kept external output): above its layered bound, which no plan reaches there.
const MOBILENET_V2_INFER_NAME_OPTIMUM: u64 = 321_254_400;

/// Shared-name plans at the optimum on every golden memonger net, within a node limit (no
/// clock): the search reaches the layered lower bound, which proves it, everywhere but on
/// mobilenet_v2_infer, whose plan equals the optimum an exact solver proved.
#[test]
fn planner_names_reach_the_optimum_on_every_golden_memonger_net() {
    let manifest = std::fs::read_to_string(golden("memonger/manifest.json")).unwrap();
    let opts = planner::PlanOptions {
        search_budget: std::time::Duration::from_secs(3600),
        search_node_limit: 400_000,
        ..Default::default()
    };
    for (file, _) in manifest_entries(&manifest) {
        let net = read_net(&format!("memonger/{file}"));
        let stem = file.trim_end_matches(".pb");
        let shape_bytes = std::fs::read(golden(&format!("memonger/{stem}.shapes.pb"))).unwrap();
        let shapes = shapes::parse_shapes(&shape_bytes).unwrap();
        let plan = planner::plan(&net, Some(&shapes), &opts).unwrap();
        let f = &plan.figures;
        assert!(plan.violations.is_empty(), "{file}");
        assert_no_live_name_sharing(&net, &plan.net);
        println!(
            "{file:24} names {:.4} × name_lb, arena {:.4} × lb, {} nodes",
            f.name_bytes as f64 / f.name_lb_bytes as f64,
            f.arena_bytes as f64 / f.arena_lb_bytes as f64,
            f.search_nodes
        );
        if stem == "mobilenet_v2_infer" {
            assert_eq!(f.name_bytes, MOBILENET_V2_INFER_NAME_OPTIMUM, "{file}");
            assert!(!f.names_optimal);
        } else {
            assert_eq!(f.name_bytes, f.name_lb_bytes, "{file}");
            assert!(f.names_optimal, "{file}");
        }
    }
}
