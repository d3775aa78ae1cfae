//! Ported from caffe2/python/memonger_test.py (Caffe2, final 2018 release): the §6
//! utilities of spec/memonger.md — interference graph, the two topological orders,
//! compute_assignments (greedy and exact), release_blobs_when_used — plus the project's
//! fuzz test (random DAGs through every mode). Changes: nets are rebuilt from NetDef protos;
//! output equality uses fresh (symbolic or real) workspaces.

mod common;

use std::collections::HashSet;

use caffe2rs::memonger::interference::{
    AssignmentAlgorithm, LiveRange, NamedRange, compute_assignments, compute_statistics,
    interference_graph, topological_sort_traversal, topological_sort_traversal_longest_path,
};
use caffe2rs::memonger::release::release_blobs_when_used;
use caffe2rs::proto::NetDef;
use common::*;

#[test]
fn interference_graph_inplace_has_an_edge_from_every_earlier_writer() {
    let n = net(
        vec![
            op("Copy", &["b1"], &["b1"]),
            op("Copy", &["b1"], &["b1"]),
            op("Copy", &["b1"], &["b1"]),
        ],
        &["b1"],
        &[],
    );
    assert_eq!(interference_graph(&n), vec![(0, 1), (0, 2), (1, 2)]);
}

#[test]
fn interference_graph_has_write_after_read_edges() {
    // op 1 reads a, op 2 overwrites a in place of nothing: 2 must stay after 1.
    let n = net(
        vec![
            op("Relu", &["x"], &["a"]),
            op("Relu", &["a"], &["b"]),
            op("ConstantFill", &[], &["a"]),
        ],
        &["x"],
        &[],
    );
    let e = interference_graph(&n);
    assert!(e.contains(&(1, 2)), "{e:?}");
    assert!(e.contains(&(0, 2)), "{e:?}");
}

fn longest_path_net(multi: bool) -> NetDef {
    let mut ops = vec![
        op("Copy", &["conv0_w_comp"], &["conv0_w"]),
        op("Conv", &["data", "conv0_w"], &["conv0"]),
        op("Copy", &["conv2_w"], &["conv2_w"]),
        op("Conv", &["conv0", "conv2_w"], &["conv2"]),
    ];
    if multi {
        ops.push(op("Copy", &["data1"], &["data2"]));
        ops.push(op("Copy", &["data2"], &["data3"]));
    }
    net(ops, &["conv0_w_comp", "data", "conv2_w", "data1"], &[])
}

fn orders(n: &NetDef) -> (Vec<usize>, Vec<usize>) {
    let e = interference_graph(n);
    (
        topological_sort_traversal(n.op.len(), &e).unwrap(),
        topological_sort_traversal_longest_path(n.op.len(), &e).unwrap(),
    )
}

#[test]
fn topological_sort_longest_path() {
    assert_eq!(
        orders(&longest_path_net(false)),
        (vec![2, 0, 1, 3], vec![0, 1, 2, 3])
    );
}

#[test]
fn topological_sort_longest_path_multi_target() {
    assert_eq!(
        orders(&longest_path_net(true)),
        (vec![4, 5, 2, 0, 1, 3], vec![0, 1, 2, 3, 4, 5])
    );
}

#[test]
fn topological_sort_longest_path_single_node() {
    let n = net(vec![op("Copy", &["a"], &["b"])], &["a"], &[]);
    assert_eq!(orders(&n), (vec![0], vec![0]));
}

#[test]
fn topological_sorts_reject_cycles() {
    assert!(topological_sort_traversal(2, &[(0, 1), (1, 0)]).is_err());
    assert!(topological_sort_traversal_longest_path(2, &[(0, 1), (1, 0)]).is_err());
    assert!(topological_sort_traversal(2, &[(0, 5)]).is_err());
}

fn ranges(list: &[(&str, i64, i64, u64)]) -> Vec<NamedRange> {
    list.iter()
        .map(|&(n, d, u, s)| (n.to_string(), LiveRange::new(Some(d), Some(u), Some(s))))
        .collect()
}

fn names(chains: &[Vec<NamedRange>]) -> Vec<Vec<&str>> {
    chains
        .iter()
        .map(|c| c.iter().map(|(n, _)| n.as_str()).collect())
        .collect()
}

#[test]
fn compute_assignments_greedy() {
    let r = ranges(&[
        ("b1", 1, 3, 10),
        ("b2", 3, 4, 1),
        ("b3", 5, 6, 1),
        ("b4", 5, 7, 10),
    ]);
    let a = compute_assignments(&r, &HashSet::new(), AssignmentAlgorithm::Greedy);
    assert_eq!(names(&a), vec![vec!["b1", "b4"], vec!["b2", "b3"]]);
    assert_eq!(compute_statistics(&a).optimized_nbytes, 11);
}

#[test]
fn compute_assignments_dp() {
    let r = ranges(&[
        ("b1", 1, 3, 10),
        ("b2", 3, 4, 1),
        ("b3", 5, 6, 1),
        ("b4", 5, 7, 10),
    ]);
    let a = compute_assignments(&r, &HashSet::new(), AssignmentAlgorithm::DynamicProgramming);
    assert_eq!(compute_statistics(&a).optimized_nbytes, 11);
    assert_eq!(compute_statistics(&a).baseline_nbytes, 22);
}

#[test]
fn compute_assignments_dp1_beats_greedy() {
    let r = ranges(&[("b1", 1, 2, 10), ("b2", 4, 6, 1), ("b3", 5, 6, 10)]);
    let g = compute_assignments(&r, &HashSet::new(), AssignmentAlgorithm::Greedy);
    assert_eq!(compute_statistics(&g).optimized_nbytes, 20);
    let d = compute_assignments(&r, &HashSet::new(), AssignmentAlgorithm::DynamicProgramming);
    assert_eq!(compute_statistics(&d).optimized_nbytes, 11);
    assert_eq!(names(&d), vec![vec!["b1", "b3"], vec!["b2"]]);
}

#[test]
fn compute_assignments_statics_are_singletons_and_reads_at_zero_are_fine() {
    // Every read at index 0 (Python crashed on `max` of an empty list there).
    let r = vec![
        ("a".to_string(), LiveRange::new(None, Some(0), None)),
        ("b".to_string(), LiveRange::new(Some(0), None, None)),
        ("c".to_string(), LiveRange::new(Some(1), None, None)),
    ];
    let st: HashSet<String> = ["a".to_string()].into();
    let a = compute_assignments(&r, &st, AssignmentAlgorithm::Greedy);
    // b and c are never read: alive to the end, so they cannot share; a stays alone.
    assert_eq!(names(&a), vec![vec!["b"], vec!["c"], vec!["a"]]);
}

#[test]
fn compute_assignments_dp_is_exact_on_small_random_sets() {
    // Brute force over all chainings of 7 ranges vs the exact search.
    let mut state = 99u64;
    let mut next = |m: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        (state >> 33) % m
    };
    for _ in 0..30 {
        let mut r = Vec::new();
        for k in 0..7 {
            let d = next(12) as i64;
            let u = d + next(4) as i64;
            r.push((
                format!("b{k}"),
                LiveRange::new(Some(d), Some(u), Some(1 + next(20))),
            ));
        }
        let dp = compute_assignments(&r, &HashSet::new(), AssignmentAlgorithm::DynamicProgramming);
        let cost = compute_statistics(&dp).optimized_nbytes;
        let mut sorted = r.clone();
        sorted.sort_by_key(|(_, x)| x.used);
        assert_eq!(cost, brute_force(&sorted), "{r:?}");
    }
}

/// Minimum Σ max over every chaining of `sorted` (each range appended to any compatible
/// chain or a new one).
fn brute_force(sorted: &[NamedRange]) -> u64 {
    fn go(i: usize, s: &[NamedRange], chains: &mut Vec<(i64, u64)>) -> u64 {
        if i == s.len() {
            return chains.iter().map(|c| c.1).sum();
        }
        let r = &s[i].1;
        let (d, u, z) = (r.defined.unwrap(), r.used.unwrap(), r.size.unwrap());
        chains.push((u, z));
        let mut best = go(i + 1, s, chains);
        chains.pop();
        for k in 0..chains.len() {
            if d > chains[k].0 {
                let prev = chains[k];
                chains[k] = (u, prev.1.max(z));
                best = best.min(go(i + 1, s, chains));
                chains[k] = prev;
            }
        }
        best
    }
    go(0, sorted, &mut Vec::new())
}

/// data -> x (FC), x -> y, x -> z, Relu(y -> u), Alias(u -> u_alias), Sum(z, u -> out).
fn release_net() -> NetDef {
    net(
        vec![
            op("FC", &["data", "x_w", "x_b"], &["x"]),
            op("FC", &["x", "y_w", "y_b"], &["y"]),
            op("FC", &["x", "z_w", "z_b"], &["z"]),
            op("Relu", &["y"], &["u"]),
            op("Alias", &["u"], &["u_alias"]),
            op("Sum", &["z", "u"], &["out"]),
        ],
        &["data", "x_w", "x_b", "y_w", "y_b", "z_w", "z_b"],
        &["out"],
    )
}

#[test]
fn release_blobs_when_used_frees_exactly_x_y_z_once_without_use_after_free() {
    let n = release_net();
    // Upstream passed set("data") = {"d", "a", "t"}: no real blob is protected.
    let dont: HashSet<String> = ["d", "a", "t"].iter().map(|s| s.to_string()).collect();
    let r = release_blobs_when_used(&n, &dont, None).unwrap();
    let mut freed: Vec<&str> = Vec::new();
    for (i, o) in r.op.iter().enumerate() {
        if o.r#type.as_deref() == Some("Free") {
            assert_eq!(o.input, o.output);
            let b = o.input[0].as_str();
            assert!(!freed.contains(&b), "`{b}` freed twice");
            // No use after free.
            assert!(
                r.op[i + 1..]
                    .iter()
                    .all(|later| !later.input.iter().any(|x| x == b)),
                "`{b}` used after its Free"
            );
            freed.push(b);
        }
    }
    freed.sort_unstable();
    assert_eq!(freed, vec!["x", "y", "z"]);
    // Outputs unchanged by the Frees.
    assert_eq!(symbolic_run(&n).get("out"), symbolic_run(&r).get("out"));
    // dont_free and a selector both keep blobs.
    let dont: HashSet<String> = ["x".to_string()].into();
    let r = release_blobs_when_used(&n, &dont, None).unwrap();
    assert_eq!(r.op.len(), n.op.len() + 2);
    let only_sum = |o: &caffe2rs::proto::OperatorDef| o.r#type.as_deref() == Some("Sum");
    let r = release_blobs_when_used(&n, &HashSet::new(), Some(&only_sum)).unwrap();
    assert_eq!(r.op.len(), n.op.len() + 1);
    assert_eq!(r.op.last().unwrap().input, vec!["z".to_string()]);
}

#[test]
fn estimate_memory_usage_counts_allocations_and_frees() {
    use caffe2rs::memonger::graph::FastMap;
    use caffe2rs::memonger::release::estimate_memory_usage;
    use caffe2rs::memonger::shapes::ShapeInfo;
    let n = release_net();
    let freed = release_blobs_when_used(&n, &HashSet::new(), None).unwrap();
    let mut shapes: FastMap<String, ShapeInfo> = FastMap::default();
    for (b, s) in [("x", 100u64), ("y", 10), ("z", 20), ("u", 30), ("out", 40)] {
        shapes.insert(
            b.into(),
            ShapeInfo {
                bytes: Some(s),
                dtype: 1,
                unknown_reason: None,
            },
        );
    }
    let plain = estimate_memory_usage(std::slice::from_ref(&n), &shapes, (0, 0));
    assert_eq!(plain.total_bytes, 200);
    assert_eq!(plain.high_water_bytes, 200);
    assert!(
        plain.unknown.is_empty(),
        "Alias outputs are not allocations"
    );
    assert_eq!(plain.by_op_type.get("FC"), Some(&130));
    let with_free = estimate_memory_usage(std::slice::from_ref(&freed), &shapes, (0, 0));
    assert_eq!(with_free.total_bytes, 200);
    // x freed after z: x+y+z = 130 peak, then u and out replace x and y.
    assert_eq!(with_free.high_water_bytes, 130);
    let gpu = estimate_memory_usage(std::slice::from_ref(&n), &shapes, (1, 0));
    assert_eq!(gpu.total_bytes, 0);
}

// ---------------------------------------------------------------- schema check (spec §1)

/// A chain whose second op is a registered `Relu` with two inputs: fails its schema.
fn bad_schema_net() -> NetDef {
    net(
        vec![
            op("Relu", &["data"], &["a"]),
            op("Relu", &["a", "data"], &["b"]),
            op("Relu", &["b"], &["out"]),
        ],
        &["data"],
        &["out"],
    )
}

fn assert_schema_error(e: caffe2rs::C2rsError) {
    assert_eq!(e.kind(), caffe2rs::ErrorKind::Enforce, "{}", e.message());
    assert!(
        e.message()
            .starts_with("Operator def did not pass schema checking: "),
        "{}",
        e.message()
    );
    assert!(e.message().contains("Input size 2"), "{}", e.message());
}

#[test]
fn schema_check_runs_before_every_entry_point() {
    use caffe2rs::memonger::dag::{DagOptions, compute_blob_recycling_for_dag};
    use caffe2rs::memonger::fast::{Refusal, optimize_inference_net};
    use caffe2rs::memonger::interference::{Ordering, optimize_interference};
    use caffe2rs::memonger::planner::{PlanOptions, plan};
    use caffe2rs::memonger::python::{
        ShareGradOptions, optimize_inference_for_dag, share_grad_blobs,
    };
    let n = bad_schema_net();
    match optimize_inference_net(&n, &[]) {
        Err(Refusal::SchemaCheck(m)) => {
            assert!(
                m.starts_with("Operator def did not pass schema checking"),
                "{m}"
            )
        }
        other => panic!("expected a schema failure, got {other:?}"),
    }
    let dag = DagOptions {
        heads: vec!["data".into()],
        op_indices: vec![0, 1, 2],
        shareable: ["a".to_string(), "b".to_string()].into(),
        ..Default::default()
    };
    assert_schema_error(compute_blob_recycling_for_dag(&n, &dag).unwrap_err());
    assert_schema_error(
        share_grad_blobs(
            &n,
            &ShareGradOptions {
                losses: vec!["out".into()],
                ..Default::default()
            },
        )
        .unwrap_err(),
    );
    assert_schema_error(optimize_inference_for_dag(&n, &["data".into()], "").unwrap_err());
    assert_schema_error(plan(&n, None, &PlanOptions::default()).unwrap_err());
    assert_schema_error(
        optimize_interference(
            &n,
            &[],
            Ordering::Topological,
            None,
            AssignmentAlgorithm::Greedy,
        )
        .unwrap_err(),
    );
    assert_schema_error(release_blobs_when_used(&n, &HashSet::new(), None).unwrap_err());
    // Types without a schema are skipped; a valid Relu passes.
    let mut ok = bad_schema_net();
    ok.op[1].input.pop();
    ok.op[1].r#type = Some("NotRegisteredAnywhere".into());
    ok.op[1].input.push("data".into());
    assert!(plan(&ok, None, &PlanOptions::default()).is_ok());
    assert!(optimize_inference_net(&ok, &[]).is_ok());
}
