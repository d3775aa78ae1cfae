//! Ported from caffe2/python/memonger_test.py (Caffe2, final 2018 release) where no net has
//! to run, plus the project tests of spec/memonger.md: refusals, determinism, planner nets
//! with a known lower bound, bad input. Changes: the nets are rebuilt here with Caffe2's op
//! types and blob names; output equality (which needs the operators) is deferred and the
//! checks are the verifier plus name survival.

mod common;

use caffe2rs::ErrorKind;
use caffe2rs::memonger::{fast, planner, shapes, verify};
use caffe2rs::proto::{NetDef, TensorShape, TensorShapes};
use common::*;
use prost::Message;

/// fc1 -> fc2 -> fc3, Relu in place, Softmax, LabelCrossEntropy, AveragedLoss, and the
/// gradient ops, as Caffe2's `simple_memonger` / `fast_memonger` build them.
fn fc_training_net() -> NetDef {
    let mut ops = vec![
        op("FC", &["data", "fc1_w", "fc1_b"], &["fc1"]),
        op("FC", &["fc1", "fc2_w", "fc2_b"], &["fc2"]),
        op("FC", &["fc2", "fc3_w", "fc3_b"], &["fc3"]),
        op("Relu", &["fc3"], &["fc3"]),
        op("Softmax", &["fc3"], &["sm"]),
        op("LabelCrossEntropy", &["sm", "label"], &["xent"]),
        op("AveragedLoss", &["xent"], &["loss"]),
        op("ConstantFill", &["loss"], &["loss_grad"]),
        op(
            "AveragedLossGradient",
            &["xent", "loss_grad"],
            &["xent_grad"],
        ),
        op(
            "LabelCrossEntropyGradient",
            &["sm", "label", "xent_grad"],
            &["sm_grad"],
        ),
        op("SoftmaxGradient", &["sm", "sm_grad"], &["fc3_grad"]),
        op("ReluGradient", &["fc3", "fc3_grad"], &["fc3_grad"]),
    ];
    for (k, input) in [(3, "fc2"), (2, "fc1"), (1, "data")] {
        let outs_w = format!("fc{k}_w_grad");
        let outs_b = format!("fc{k}_b_grad");
        let g = format!("fc{k}_grad");
        let w = format!("fc{k}_w");
        let mut outs = vec![outs_w.as_str(), outs_b.as_str()];
        let dx = format!("{input}_grad");
        if k > 1 {
            outs.push(dx.as_str());
        }
        ops.push(op("FCGradient", &[input, w.as_str(), g.as_str()], &outs));
    }
    net(
        ops,
        &[
            "data", "label", "fc1_w", "fc1_b", "fc2_w", "fc2_b", "fc3_w", "fc3_b",
        ],
        &[],
    )
}

fn statics(net: &NetDef, extra: &[&str]) -> Vec<String> {
    let mut s = net.external_input.clone();
    s.extend(extra.iter().map(|x| x.to_string()));
    s
}

#[test]
fn fast_memonger_reduces_blob_count_and_keeps_static_outputs() {
    let net = fc_training_net();
    let st = statics(&net, &["loss", "fc1_w_grad"]);
    let opt = fast::optimize_inference_net(&net, &st).unwrap();
    assert!(count_blobs(&opt) < count_blobs(&net));
    assert!(verify::verify(&net, &opt, &st).is_empty());
    let outputs: Vec<&String> = opt.op.iter().flat_map(|o| o.output.iter()).collect();
    assert!(outputs.iter().any(|n| *n == "loss"));
    assert!(outputs.iter().any(|n| *n == "fc1_w_grad"));
}

#[test]
fn fast_memonger_names_are_deterministic() {
    let net = fc_training_net();
    let st = statics(&net, &["loss", "fc1_w_grad"]);
    let a = fast::optimize_inference_net(&net, &st).unwrap();
    let b = fast::optimize_inference_net(&net, &st).unwrap();
    assert_eq!(a.encode_to_vec(), b.encode_to_vec());
    // Pinned names on a chain x -> a -> b -> c -> d: a is freed first (__m0_shared), b's
    // writer frees a so b cannot take it, c takes a's name, b becomes __m1_shared.
    let chain = common::net(
        vec![
            op("Relu", &["x"], &["a"]),
            op("Relu", &["a"], &["b"]),
            op("Relu", &["b"], &["c"]),
            op("Relu", &["c"], &["d"]),
        ],
        &["x"],
        &["d"],
    );
    let opt = fast::optimize_inference_net(&chain, &[]).unwrap();
    let outs: Vec<&str> = opt.op.iter().map(|o| o.output[0].as_str()).collect();
    assert_eq!(outs, ["__m0_shared", "__m1_shared", "__m0_shared", "d"]);
}

#[test]
fn fast_memonger_unique_outputs() {
    // Two FCs both writing `fc`, four Sums each with a repeated input, Concat, Relu.
    let mut ops = vec![
        op("FC", &["data0", "w0", "b0"], &["fc"]),
        op("FC", &["data1", "w1", "b1"], &["fc"]),
    ];
    for i in 0..4 {
        let o = format!("sum{i}");
        ops.push(op("Sum", &["fc", "fc"], &[o.as_str()]));
    }
    ops.push(op(
        "Concat",
        &["sum0", "sum1", "sum2", "sum3"],
        &["concat", "split_info"],
    ));
    ops.push(op("Relu", &["concat"], &["merged"]));
    let n = net(ops, &["data0", "data1", "w0", "b0", "w1", "b1"], &[]);
    let st = statics(&n, &["merged"]);
    let opt = fast::optimize_inference_net(&n, &st).unwrap();
    for (i, o) in opt.op.iter().enumerate() {
        let mut outs = o.output.clone();
        outs.sort();
        outs.dedup();
        assert_eq!(outs.len(), o.output.len(), "op #{i} has repeated outputs");
    }
    assert!(verify::verify(&n, &opt, &st).is_empty());
}

#[test]
fn fast_memonger_refusals_return_the_net_unchanged() {
    let mut dag = fc_training_net();
    dag.r#type = Some("dag".into());
    assert_eq!(
        fast::optimize_inference_net(&dag, &[]).unwrap_err(),
        fast::Refusal::NetType("dag".into())
    );
    let mut rnn = fc_training_net();
    rnn.op.push(op("RecurrentNetwork", &["fc1"], &["rnn_out"]));
    assert_eq!(
        fast::optimize_inference_net(&rnn, &[]).unwrap_err(),
        fast::Refusal::RecurrentNetwork
    );
    // RecurrentNetworkGradient is not refused.
    let mut rnng = fc_training_net();
    rnng.op
        .push(op("RecurrentNetworkGradient", &["fc1"], &["rnn_g"]));
    assert!(fast::optimize_inference_net(&rnng, &[]).is_ok());
    let net = fc_training_net();
    let st = statics(&net, &["loss"]);
    let once = fast::optimize_inference_net(&net, &st).unwrap();
    assert_eq!(
        fast::optimize_inference_net(&once, &st).unwrap_err(),
        fast::Refusal::AlreadyOptimized
    );
}

#[test]
fn fast_memonger_does_not_recycle_into_a_write_after_the_last_read() {
    // b is read at op 1 and written again at op 3: its range ends at its last access.
    let n = net(
        vec![
            op("Relu", &["x"], &["a"]),
            op("Relu", &["a"], &["b"]),
            op("Relu", &["b"], &["c"]),
            op("Relu", &["c"], &["b"]),
            op("Relu", &["b"], &["d"]),
        ],
        &["x"],
        &["d"],
    );
    let opt = fast::optimize_inference_net(&n, &[]).unwrap();
    assert!(
        verify::verify(&n, &opt, &[]).is_empty(),
        "{:?}",
        verify::verify(&n, &opt, &[])
    );
}

fn xyz_net(y: &str, z: &str) -> NetDef {
    net(
        vec![
            op("Relu", &["x"], &[y]),
            op("Relu", &["x"], &[z]),
            op("Sum", &[y, z], &["out"]),
        ],
        &["x"],
        &["out"],
    )
}

#[test]
fn verify_graph_equality() {
    let a = xyz_net("y", "z");
    let b = xyz_net("u", "v");
    assert!(verify::verify_graph_equality(&a, &b).is_empty());
}

#[test]
fn verify_graph_equality_harder() {
    let mut a = xyz_net("y", "z");
    a.op.push(op("Relu", &["out"], &["y2"]));
    a.op.push(op("Sum", &["y2", "y"], &["out2"]));
    let mut b = xyz_net("u", "v");
    b.op.push(op("Relu", &["out"], &["v2"]));
    b.op.push(op("Sum", &["v2", "u"], &["out2"]));
    assert!(verify::verify_graph_equality(&a, &b).is_empty());
}

#[test]
fn verify_graph_inequality() {
    let a = xyz_net("y", "z");
    // The second net writes y twice: Sum now reads the second producer for both inputs.
    let b = xyz_net("y", "y");
    assert!(!verify::verify_graph_equality(&a, &b).is_empty());
}

#[test]
fn verify_graph_inequality_harder() {
    let mut a = xyz_net("y", "z");
    a.op.insert(2, op("Relu", &["y"], &["w"]));
    let mut b = xyz_net("y", "z");
    b.op.insert(2, op("Relu", &["y"], &["y"]));
    // Sum reads y: produced by op 0 before, by op 2 after.
    assert!(!verify::verify_graph_equality(&a, &b).is_empty());
}

fn shapes_of(list: &[(&str, &[i64])]) -> Vec<u8> {
    TensorShapes {
        shapes: list
            .iter()
            .map(|(n, d)| TensorShape {
                dims: d.to_vec(),
                data_type: Some(1),
                name: Some(n.as_bytes().to_vec()),
                ..Default::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

#[test]
fn planner_chain_of_equal_sizes_uses_two_names_and_two_slots() {
    let n = net(
        (0..6)
            .map(|i| {
                let a = if i == 0 {
                    "x".to_string()
                } else {
                    format!("t{}", i - 1)
                };
                let b = format!("t{i}");
                op("Relu", &[a.as_str()], &[b.as_str()])
            })
            .collect(),
        &["x"],
        &["t5"],
    );
    let names: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    let list: Vec<(&str, &[i64])> = names.iter().map(|s| (s.as_str(), &[4i64, 8][..])).collect();
    let sh = shapes::parse_shapes(&shapes_of(&list)).unwrap();
    // The spec's two names need the external output to end a chain.
    let share = planner::PlanOptions {
        share_external_outputs: true,
        ..Default::default()
    };
    let plan = planner::plan(&n, Some(&sh), &share).unwrap();
    assert_eq!(plan.figures.names, 2);
    assert_eq!(plan.figures.lb_bytes, 256);
    assert_eq!(plan.figures.arena_bytes, 256);
    assert_eq!(plan.figures.name_bytes, 256);
    // The external output keeps its name; the other chain is __m0_shared.
    assert_eq!(plan.net.op[5].output, vec!["t5"]);
    assert_eq!(plan.net.op[0].output, vec!["__m0_shared"]);
    // By default `t5` is kept to itself: one name more, the arena unchanged.
    let plan = planner::plan(&n, Some(&sh), &planner::PlanOptions::default()).unwrap();
    assert_eq!(plan.figures.names, 3);
    assert_eq!(plan.figures.arena_bytes, 256);
    let writers = plan.net.op.iter().filter(|o| o.output == ["t5"]).count();
    assert_eq!(writers, 1);
}

#[test]
fn planner_dp1_sizes_reach_the_lower_bound_with_alignment_one() {
    // compute_assignments_dp1: b1 (1,2,10), b2 (4,6,1), b3 (5,6,10) as (defined, used, size).
    let n = net(
        vec![
            op("ConstantFill", &[], &["pad0"]),
            op("ConstantFill", &[], &["b1"]),
            op("Relu", &["b1"], &["pad1"]),
            op("ConstantFill", &[], &["pad2"]),
            op("ConstantFill", &[], &["b2"]),
            op("ConstantFill", &[], &["b3"]),
            op("Sum", &["b2", "b3"], &["out"]),
        ],
        &[],
        &[],
    );
    let sh = TensorShapes {
        shapes: [
            ("b1", 10),
            ("b2", 1),
            ("b3", 10),
            ("pad0", 0),
            ("pad1", 0),
            ("pad2", 0),
            ("out", 0),
        ]
        .iter()
        .map(|(n, d)| TensorShape {
            dims: vec![*d],
            data_type: Some(6), // UINT8: bytes = elements
            name: Some(n.as_bytes().to_vec()),
            ..Default::default()
        })
        .collect(),
    }
    .encode_to_vec();
    let sh = shapes::parse_shapes(&sh).unwrap();
    let opts = planner::PlanOptions {
        alignment: 1,
        ..Default::default()
    };
    let plan = planner::plan(&n, Some(&sh), &opts).unwrap();
    assert_eq!(plan.figures.lb_bytes, 11);
    assert_eq!(plan.figures.arena_bytes, 11);
    assert_eq!(plan.figures.name_bytes, 11);
}

#[test]
fn planner_is_deterministic() {
    let n = fc_training_net();
    let a = planner::plan(&n, None, &planner::PlanOptions::default()).unwrap();
    let b = planner::plan(&n, None, &planner::PlanOptions::default()).unwrap();
    assert_eq!(a.net.encode_to_vec(), b.net.encode_to_vec());
    assert_eq!(a.arena_json(), b.arena_json());
    assert!(a.violations.is_empty());
}

/// `arena_json` states the plan: alignment, then per device its arena size and every entry
/// (blob, final name, offset, bytes, first and last op) as the plan holds them.
#[test]
fn arena_json_lists_every_device_and_entry_of_the_plan() {
    let n = fc_training_net();
    let plan = planner::plan(&n, None, &planner::PlanOptions::default()).unwrap();
    assert!(!plan.arenas.is_empty() && plan.arenas.iter().any(|a| !a.entries.is_empty()));
    let json: serde_json::Value = serde_json::from_str(&plan.arena_json()).unwrap();
    assert_eq!(json["alignment"], plan.alignment);
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), plan.arenas.len());
    for (d, a) in devices.iter().zip(&plan.arenas) {
        assert_eq!(d["device_type"], a.device.0);
        assert_eq!(d["device_id"], a.device.1);
        assert_eq!(d["arena_bytes"], a.arena_bytes);
        let entries = d["entries"].as_array().unwrap();
        assert_eq!(entries.len(), a.entries.len());
        for (j, e) in entries.iter().zip(&a.entries) {
            assert_eq!(j["blob"], e.blob.as_str());
            assert_eq!(j["final_name"], e.final_name.as_str());
            assert_eq!(j["offset"], e.offset);
            assert_eq!(j["bytes"], e.bytes);
            assert_eq!(j["first"], e.first);
            assert_eq!(j["last"], e.last);
            assert_eq!(plan.offset(&e.blob), Some((e.offset, e.bytes)));
        }
    }
}

#[test]
fn planner_refuses_dag_nets_and_returns_them_unchanged() {
    let mut n = fc_training_net();
    n.r#type = Some("dag".into());
    let plan = planner::plan(&n, None, &planner::PlanOptions::default()).unwrap();
    assert_eq!(plan.net, n);
    assert_eq!(
        plan.refused.as_deref(),
        Some("Cannot optimize memory for nets of type: dag")
    );
    let opts = planner::PlanOptions {
        assume_sequential: true,
        ..Default::default()
    };
    let plan = planner::plan(&n, None, &opts).unwrap();
    assert!(plan.refused.is_none());
    assert_ne!(plan.net, n);
}

#[test]
fn bad_input_garbage_bytes_is_a_parse_error() {
    let err = shapes::parse_shapes(&[0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Parse);
}

#[test]
fn bad_input_conflicting_shapes_is_an_error_naming_the_blob() {
    let sh = shapes_of(&[("a", &[1, 2]), ("a", &[2, 2])]);
    let err = shapes::parse_shapes(&sh).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("conflicting shapes for blob a"));
    // Identical duplicates are fine.
    assert!(shapes::parse_shapes(&shapes_of(&[("a", &[1, 2]), ("a", &[1, 2])])).is_ok());
}

#[test]
fn bad_input_shapes_for_unknown_blobs_and_negative_dims_are_reported() {
    let n = net(
        vec![
            op("Relu", &["x"], &["a"]),
            op("Relu", &["a"], &["b"]),
            op("Relu", &["b"], &["c"]),
        ],
        &["x"],
        &["c"],
    );
    let sh = shapes_of(&[("a", &[-1, 4]), ("b", &[4]), ("c", &[4]), ("ghost", &[3])]);
    let sh = shapes::parse_shapes(&sh).unwrap();
    let plan = planner::plan(&n, Some(&sh), &planner::PlanOptions::default()).unwrap();
    let r = plan.report_json();
    assert!(
        r.contains("shape for blob `ghost` names no blob of the net"),
        "{r}"
    );
    assert!(r.contains("blob `a` has negative dim -1"), "{r}");
    assert!(r.contains("\"unknown_size\":[\"a\"]"), "{r}");
    assert!(plan.offset("a").is_none());
    assert!(plan.offset("b").is_some());
}

#[test]
fn bad_input_reading_a_blob_nothing_writes_is_an_error() {
    let n = net(
        vec![
            op("Relu", &["x"], &["a"]),
            op("Sum", &["a", "nowhere"], &["b"]),
        ],
        &["x"],
        &[],
    );
    let err = planner::plan(&n, None, &planner::PlanOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("`nowhere`"));
    assert!(err.message().contains("op #1 (Sum)"));
    // Keeping it as a static blob makes the net plannable.
    let opts = planner::PlanOptions {
        static_blobs: vec!["nowhere".into()],
        ..Default::default()
    };
    assert!(planner::plan(&n, None, &opts).is_ok());
}

#[test]
fn verifier_names_blobs_and_op_when_live_blobs_share_a_name() {
    let n = net(
        vec![
            op("Relu", &["x"], &["a"]),
            op("Relu", &["x"], &["b"]),
            op("Sum", &["a", "b"], &["c"]),
        ],
        &["x"],
        &["c"],
    );
    let mut bad = n.clone();
    bad.op[1].output[0] = "a".into();
    bad.op[2].input[1] = "a".into();
    let v = verify::verify(&n, &bad, &[]);
    assert!(!v.is_empty());
    assert!(v.iter().any(|x| x.0.contains("`a`")), "{v:?}");
    // A static blob renamed is rejected.
    let mut bad2 = n.clone();
    bad2.op[0].input[0] = "y".into();
    assert!(!verify::verify(&n, &bad2, &[]).is_empty());
}

// ---------------------------------------------------------------- simple_memonger

/// Sizes "dims 1..10" per blob, deterministic: 4 bytes × a pseudo-random dim in 1..=10.
fn sizes_for(net: &NetDef) -> std::collections::HashMap<String, u64> {
    let mut m = std::collections::HashMap::new();
    let mut state = 0x2545_f491_u64;
    for op in &net.op {
        for b in op.input.iter().chain(&op.output) {
            m.entry(b.clone()).or_insert_with(|| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                4 * (1 + (state >> 33) % 10)
            });
        }
    }
    m
}

// simple_memonger: optimize_interference with both algorithms, without and with sizes;
// loss and fc1_w_grad keep their names and values; bytes go down (no sizes) or not up.
#[test]
fn simple_memonger_shares_blobs_with_both_algorithms() {
    use caffe2rs::memonger::interference::{AssignmentAlgorithm, Ordering, optimize_interference};
    let net = fc_training_net();
    let st = statics(&net, &["label", "loss", "fc1_w_grad"]);
    let sizes = sizes_for(&net);
    for algo in [
        AssignmentAlgorithm::Greedy,
        AssignmentAlgorithm::DynamicProgramming,
    ] {
        for with_sizes in [false, true] {
            let o = optimize_interference(
                &net,
                &st,
                Ordering::Topological,
                with_sizes.then_some(&sizes),
                algo,
            )
            .unwrap();
            assert!(o.warnings.is_empty(), "{:?}", o.warnings);
            let (a, b) = (symbolic_run(&net), symbolic_run(&o.net));
            for name in ["loss", "fc1_w_grad"] {
                assert_eq!(
                    a.get(name),
                    b.get(name),
                    "{algo:?} sizes={with_sizes}: {name}"
                );
            }
            if with_sizes {
                assert!(o.stats.optimized_nbytes <= o.stats.baseline_nbytes);
            } else {
                assert!(
                    o.stats.optimized_nbytes < o.stats.baseline_nbytes,
                    "{algo:?}: {:?}",
                    o.stats
                );
            }
            assert!(count_blobs(&o.net) < count_blobs(&net), "{algo:?}");
        }
    }
}
