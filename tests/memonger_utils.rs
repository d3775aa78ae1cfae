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

// ---------------------------------------------------------------- ResNet-50, fast mode

/// resnet_test.test_resnet_forward_only_fast_simplenet, on the golden ResNet-50 inference
/// net: fast mode with static = {data, last output} ∪ external inputs.
#[test]
fn resnet_forward_only_fast_simplenet() {
    use caffe2rs::memonger::{fast, verify};
    let n = read_net("memonger/resnet50_infer.pb");
    let mut st = n.external_input.clone();
    st.extend(n.external_output.iter().cloned());
    let before = count_blobs(&n);
    let opt = fast::optimize_inference_net(&n, &st).unwrap();
    let (after, shared) = (count_blobs(&opt), count_shared_blobs(&opt));
    println!("resnet50_infer fast: {before} -> {after} names, {shared} shared");
    assert!(after < before);
    assert!(
        shared > 0 && shared < 7,
        "{shared} shared (Caffe2 reached 3)"
    );
    assert!(verify::verify(&n, &opt, &st).is_empty());
    let (a, b) = (symbolic_run(&n), symbolic_run(&opt));
    for o in &n.external_output {
        assert!(a.contains_key(o));
        assert_eq!(a.get(o), b.get(o), "output `{o}`");
    }
}

// ---------------------------------------------------------------- real runs

/// A Relu/Copy/ConstantFill net caffe2rs can run: fill → relu chain with a fork, in-place
/// relu, copies; `out1`, `out2` are the outputs.
fn runnable_net() -> NetDef {
    use caffe2rs::proto::Argument;
    let mut fill = op("ConstantFill", &[], &["x"]);
    fill.arg = vec![
        Argument {
            name: Some("shape".into()),
            ints: vec![2, 3],
            ..Default::default()
        },
        Argument {
            name: Some("value".into()),
            f: Some(-1.5),
            ..Default::default()
        },
    ];
    net(
        vec![
            op("Copy", &["data"], &["a"]),
            op("Relu", &["a"], &["b"]),
            op("Copy", &["b"], &["c"]),
            op("Relu", &["c"], &["c"]),
            fill,
            op("Relu", &["x"], &["y"]),
            op("Copy", &["c"], &["d"]),
            op("Copy", &["d"], &["out1"]),
            op("Copy", &["y"], &["e"]),
            op("Relu", &["e"], &["out2"]),
        ],
        &["data"],
        &["out1", "out2"],
    )
}

fn run_in_fresh_workspace(n: &NetDef, outputs: &[&str]) -> Vec<(Vec<i64>, Vec<f32>)> {
    use caffe2rs::tensor::{DataType, Tensor};
    use caffe2rs::workspace::Workspace;
    let ws = Workspace::new();
    let data = Tensor::from_slice(DataType::Float, &[2, 2], &[-1.0f32, 2.0, -3.0, 4.0]).unwrap();
    ws.create_blob("data").unwrap().set_tensor(data);
    ws.run_net_once(n).unwrap();
    outputs
        .iter()
        .map(|o| {
            let t = ws.get_blob(o).expect("output blob").tensor().unwrap();
            (t.dims().to_vec(), t.typed::<f32>().unwrap().to_vec())
        })
        .collect()
}

#[test]
fn optimized_nets_compute_the_same_outputs_in_fresh_workspaces() {
    use caffe2rs::memonger::interference::{Ordering, optimize_interference};
    use caffe2rs::memonger::planner::{PlanOptions, plan};
    use caffe2rs::memonger::{fast, python};
    let n = runnable_net();
    let outs = ["out1", "out2"];
    let want = run_in_fresh_workspace(&n, &outs);
    assert_eq!(want[0].1, vec![0.0, 2.0, 0.0, 4.0]);
    assert_eq!(want[1].1, vec![0.0; 6]);
    let mut rewritten = vec![
        ("fast", fast::optimize_inference_net(&n, &[]).unwrap()),
        ("plan", plan(&n, None, &PlanOptions::default()).unwrap().net),
        (
            "dag",
            python::optimize_inference_for_dag(&n, &["data".into()], "")
                .unwrap()
                .net,
        ),
    ];
    for ordering in [Ordering::Topological, Ordering::LongestPath] {
        for algo in [
            AssignmentAlgorithm::Greedy,
            AssignmentAlgorithm::DynamicProgramming,
        ] {
            let o = optimize_interference(&n, &[], ordering, None, algo).unwrap();
            assert!(o.warnings.is_empty(), "{:?}", o.warnings);
            rewritten.push(("interference", o.net));
        }
    }
    // caffe2rs has no `Free` operator yet: the released net is checked symbolically.
    let released = release_blobs_when_used(&n, &HashSet::new(), None).unwrap();
    assert!(released.op.len() > n.op.len());
    let (x, y) = (symbolic_run(&n), symbolic_run(&released));
    assert_eq!(
        (x.get("out1"), x.get("out2")),
        (y.get("out1"), y.get("out2"))
    );
    for (mode, r) in &rewritten {
        assert!(count_blobs(r) <= count_blobs(&n), "{mode}");
        assert_eq!(run_in_fresh_workspace(r, &outs), want, "{mode}");
    }
    assert!(count_blobs(&rewritten[0].1) < count_blobs(&n));
}

// ---------------------------------------------------------------- fuzz

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, m: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % m.max(1)
    }
}

/// A random DAG net of `n_ops` ops over external inputs, with multi-consumer blobs, in-place
/// ops (output = one of its inputs), rewrites of earlier blobs, and two external outputs.
fn random_net(rng: &mut Lcg, n_ops: usize) -> NetDef {
    let mut avail: Vec<String> = vec!["in0".into(), "in1".into()];
    let mut ops = Vec::new();
    for i in 0..n_ops {
        let n_in = 1 + rng.next(3) as usize;
        let mut ins: Vec<String> = Vec::new();
        for _ in 0..n_in {
            // Mostly recent blobs: long chains with occasional long-lived ones.
            let k = if rng.next(4) == 0 {
                rng.next(avail.len() as u64) as usize
            } else {
                avail.len() - 1 - rng.next(avail.len().min(4) as u64) as usize
            };
            ins.push(avail[k].clone());
        }
        let n_out = 1 + rng.next(2) as usize;
        let mut outs = Vec::new();
        for k in 0..n_out {
            let r = rng.next(10);
            let name = if r == 0 && !ins[0].starts_with("in") {
                ins[0].clone() // in place
            } else {
                format!("t{i}_{k}")
            };
            if !outs.contains(&name) {
                outs.push(name);
            }
        }
        for o in &outs {
            if !avail.contains(o) {
                avail.push(o.clone());
            }
        }
        let ty = ["Sum", "Mul", "Concat", "FC"][rng.next(4) as usize];
        let ins_ref: Vec<&str> = ins.iter().map(String::as_str).collect();
        let outs_ref: Vec<&str> = outs.iter().map(String::as_str).collect();
        ops.push(op(ty, &ins_ref, &outs_ref));
    }
    let last = ops.last().map(|o| o.output[0].clone()).unwrap_or_default();
    let mid = ops[ops.len() / 2].output[0].clone();
    let mut outs = vec![last];
    if !outs.contains(&mid) && !mid.starts_with("in") {
        outs.push(mid);
    }
    let outs_ref: Vec<&str> = outs.iter().map(String::as_str).collect();
    net(ops, &["in0", "in1"], &outs_ref)
}

/// The outputs and every external output must carry the same symbolic value.
fn assert_same_symbolic(a: &NetDef, b: &NetDef, what: &str) {
    let (x, y) = (symbolic_run(a), symbolic_run(b));
    for o in &a.external_output {
        assert_eq!(x.get(o), y.get(o), "{what}: output `{o}` differs");
    }
}

#[test]
fn fuzz_random_dags_through_every_mode() {
    use caffe2rs::memonger::interference::{Ordering, optimize_interference};
    use caffe2rs::memonger::planner::{PlanOptions, plan};
    use caffe2rs::memonger::{fast, python, verify};
    let mut rng = Lcg(0x5eed_1234);
    let mut dag_saved = 0;
    for case in 0..60 {
        let n_ops = 1 + rng.next(200) as usize;
        let n = random_net(&mut rng, n_ops);
        let st: Vec<String> = Vec::new();
        let what = |m: &str| format!("case {case} ({n_ops} ops), {m}");
        // Fast mode.
        let f = fast::optimize_inference_net(&n, &st).unwrap();
        assert!(verify::verify(&n, &f, &st).is_empty(), "{}", what("fast"));
        assert_same_symbolic(&n, &f, &what("fast"));
        // Planner.
        let p = plan(&n, None, &PlanOptions::default()).unwrap();
        assert!(
            verify::verify(&n, &p.net, &st).is_empty(),
            "{}",
            what("plan")
        );
        assert_same_symbolic(&n, &p.net, &what("plan"));
        // DAG mode: every net passes its self-check and stays safe (issue 6).
        let d = match python::optimize_inference_for_dag(&n, &["in0".into(), "in1".into()], "") {
            Ok(d) => d,
            Err(e) => panic!("{}: {}", what("dag"), e.message()),
        };
        assert!(
            verify::verify(&n, &d.net, &st).is_empty(),
            "{}",
            what("dag")
        );
        assert_same_symbolic(&n, &d.net, &what("dag"));
        if distinct_names(&d.net) < distinct_names(&n) {
            dag_saved += 1;
        }
        // Interference (both orders; exact search only on small nets).
        for ordering in [Ordering::Topological, Ordering::LongestPath] {
            let algo = if n_ops <= 30 {
                AssignmentAlgorithm::DynamicProgramming
            } else {
                AssignmentAlgorithm::Greedy
            };
            let o = optimize_interference(&n, &st, ordering, None, algo).unwrap();
            assert!(
                o.warnings.is_empty(),
                "{}: {:?}",
                what("interference"),
                o.warnings
            );
            assert!(
                o.stats.optimized_nbytes <= o.stats.baseline_nbytes,
                "{}",
                what("interference")
            );
            assert_same_symbolic(&n, &o.net, &what("interference"));
        }
        // Release.
        let r = release_blobs_when_used(&n, &HashSet::new(), None).unwrap();
        assert_same_symbolic(&n, &r, &what("release"));
    }
    println!("DAG mode: names saved on {dag_saved} of 60 nets");
    assert!(
        dag_saved >= 54,
        "DAG mode saved names on only {dag_saved} of 60 nets"
    );
}

fn distinct_names(n: &NetDef) -> usize {
    n.op.iter()
        .flat_map(|o| o.input.iter().chain(&o.output))
        .collect::<HashSet<_>>()
        .len()
}

/// Found by the fuzz test (caffe2rs issue 6): op 6 rewrites `t1_1` in place, and the DAG
/// pass used to descend from op 6 into every reader of the name — also op 3, which reads the
/// version op 1 wrote and runs before op 6. Op 3 then looked ordered after op 6, freed
/// `t1_1`, and op 5 (a descendant of op 3, parallel to op 6) took the name while op 6 still
/// read it. A write now reaches only the later readers of its outputs.
#[test]
fn dag_recycling_keeps_a_name_until_an_in_place_last_reader_ran() {
    use caffe2rs::memonger::python;
    let n = net(
        vec![
            op("FC", &["in1", "in0"], &["t0_0"]),
            op("Sum", &["in1", "t0_0"], &["t1_0", "t1_1"]),
            op("Concat", &["t1_0"], &["t2_0"]),
            op("FC", &["t0_0", "t1_1", "t1_1"], &["t3_0", "t3_1"]),
            op("Sum", &["in1", "t3_0", "t3_0"], &["t4_0"]),
            op("Concat", &["t3_0", "t3_0"], &["t5_0", "t5_1"]),
            op("Concat", &["t1_1"], &["t1_1"]),
            op("FC", &["t5_1", "t3_1"], &["t7_0", "t7_1"]),
        ],
        &["in0", "in1"],
        &["t7_0", "t4_0"],
    );
    let r = python::optimize_inference_for_dag(&n, &["in0".into(), "in1".into()], "");
    let r = match r {
        Ok(r) => r,
        Err(e) => panic!("{}", e.message()),
    };
    let st: Vec<String> = Vec::new();
    assert!(caffe2rs::memonger::verify::verify(&n, &r.net, &st).is_empty());
    assert_same_symbolic(&n, &r.net, "in-place last reader");
    // `t1_1` is still read by op 6 when op 5 runs: op 5's outputs must not take its name.
    let t1_1 = &r.net.op[6].input[0];
    assert!(!r.net.op[5].output.contains(t1_1), "{:?}", r.net.op[5]);
    // t0_0 (freed by op 3, an ancestor of op 5) is still recycled into op 5.
    assert!(r.shared > 0, "{:?}", r.mapping);
}

/// Same depth as issue 6, with a pure overwrite: op 3 writes `x` again without reading it,
/// on a branch parallel to op 2. All readers of `x` ran once op 1 did, but `x` must stay
/// taken until its later writer ran too, or op 2's output would share its name and op 4
/// would read op 3's value.
#[test]
fn dag_recycling_keeps_a_name_until_its_later_writers_ran() {
    use caffe2rs::memonger::{python, verify};
    let n = net(
        vec![
            op("Relu", &["in0"], &["x"]),
            op("Relu", &["x"], &["y"]),
            op("Relu", &["y"], &["z"]),
            op("Relu", &["in1"], &["x"]),
            op("Relu", &["z"], &["out"]),
        ],
        &["in0", "in1"],
        &["out"],
    );
    let r = match python::optimize_inference_for_dag(&n, &["in0".into(), "in1".into()], "") {
        Ok(r) => r,
        Err(e) => panic!("{}", e.message()),
    };
    let st: Vec<String> = Vec::new();
    assert!(verify::verify(&n, &r.net, &st).is_empty());
    assert_same_symbolic(&n, &r.net, "later writer");
    assert_ne!(r.net.op[2].output[0], r.net.op[3].output[0]);
}

/// DAG mode on random nets where some ops overwrite an earlier activation without reading
/// it (write-after-write on a parallel branch): every net passes the self-check, verifies
/// and computes the same outputs.
#[test]
fn fuzz_dag_mode_with_pure_overwrites() {
    use caffe2rs::memonger::{python, verify};
    let mut rng = Lcg(0x0bad_5eed);
    let mut overwrites = 0;
    let mut saved = 0;
    for case in 0..60 {
        let n_ops = 2 + rng.next(120) as usize;
        let mut n = random_net(&mut rng, n_ops);
        let external: HashSet<String> = n
            .external_input
            .iter()
            .chain(&n.external_output)
            .cloned()
            .collect();
        let mut written: Vec<String> = Vec::new();
        for op in n.op.iter_mut() {
            let k = rng.next(written.len() as u64) as usize;
            if rng.next(6) == 0 && k < written.len() {
                let name = written[k].clone();
                if op.output.len() == 1
                    && !external.contains(&name)
                    && !op.input.contains(&name)
                    && !op.output.contains(&name)
                {
                    op.output.push(name);
                    overwrites += 1;
                }
            }
            for o in &op.output {
                if !written.contains(o) {
                    written.push(o.clone());
                }
            }
        }
        let what = format!("case {case} ({n_ops} ops)");
        let d = match python::optimize_inference_for_dag(&n, &["in0".into(), "in1".into()], "") {
            Ok(d) => d,
            Err(e) => panic!("{what}: {}", e.message()),
        };
        let st: Vec<String> = Vec::new();
        let v = verify::verify(&n, &d.net, &st);
        assert_same_symbolic(&n, &d.net, &what);
        assert!(v.is_empty(), "{what}: {v:?}");
        if distinct_names(&d.net) < distinct_names(&n) {
            saved += 1;
        }
    }
    println!("pure overwrites: {overwrites}; names saved on {saved} of 60 nets");
    assert!(overwrites > 60, "{overwrites} overwrites");
    assert!(saved >= 50, "names saved on only {saved} of 60 nets");
}
