//! Unit tests of the planner: `plan_arena` on random entry sets, and `plan` on small nets
//! built to tell its choices apart.

use super::*;

/// Pseudo-random entries: 12 lifetimes within 14 ops, 1-99 bytes.
fn random_entries(seed: u64) -> Vec<Entry> {
    random_entries_n(seed, 12)
}

/// Pseudo-random entries: `n` lifetimes of up to 5 ops starting in the first `n - 2`
/// ops, 1-99 bytes.
fn random_entries_n(seed: u64, n: usize) -> Vec<Entry> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    (0..n)
        .map(|_| {
            let first = next(n as u64 - 2) as u32;
            Entry {
                first,
                last: first + next(5) as u32,
                bytes: 1 + next(99),
            }
        })
        .collect()
}

/// Without search nodes, `plan_arena` runs the algorithm asked for, or under `Auto` the
/// three greedy ones (only the O(n log n) sweep above `quadratic_limit` entries), and
/// keeps the smallest arena, the first of equals.
#[test]
fn plan_arena_runs_the_algorithm_asked_for_or_keeps_the_smallest() {
    let greedy = Limits {
        deadline: None,
        max_nodes: 0,
    };
    let run = |e: &[Entry], algorithm: ArenaAlgorithm, quadratic_limit: usize| {
        let opts = PlanOptions {
            arena_algorithm: algorithm,
            quadratic_limit,
            ..Default::default()
        };
        let (name, m) = plan_arena(e, 14, &opts, &greedy);
        (name, m.placement)
    };
    let (mut sweep_lost, mut greedy_differ) = (false, false);
    for seed in 0..300 {
        let e = random_entries(seed);
        let by_size = arena::greedy_by_size(&e);
        let by_breadth = arena::greedy_by_breadth(&e, 14);
        let sweep = arena::sweep_best_fit(&e);
        greedy_differ |= by_size.arena_bytes != by_breadth.arena_bytes;
        assert_eq!(
            run(&e, ArenaAlgorithm::GreedyBySize, 4096),
            ("greedy_by_size", by_size.clone())
        );
        assert_eq!(
            run(&e, ArenaAlgorithm::GreedyByBreadth, 4096),
            ("greedy_by_breadth", by_breadth.clone())
        );
        assert_eq!(
            run(&e, ArenaAlgorithm::SweepBestFit, 4096),
            ("sweep_best_fit", sweep.clone())
        );
        // More entries than the quadratic limit: the sweep alone.
        assert_eq!(
            run(&e, ArenaAlgorithm::Auto, e.len() - 1),
            ("sweep_best_fit", sweep.clone())
        );
        let mut best = ("greedy_by_size", by_size);
        for cand in [("greedy_by_breadth", by_breadth), ("sweep_best_fit", sweep)] {
            if cand.1.arena_bytes < best.1.arena_bytes {
                best = cand;
            }
        }
        assert_eq!(run(&e, ArenaAlgorithm::Auto, e.len()), best, "seed {seed}");
        sweep_lost |= best.0 != "sweep_best_fit";
    }
    assert!(
        sweep_lost && greedy_differ,
        "the entries do not tell the algorithms apart"
    );
}

/// Whether `p` places `e` without two entries alive at one op sharing a byte.
fn disjoint(e: &[Entry], p: &Placement) -> bool {
    (0..e.len()).all(|i| {
        (i + 1..e.len()).all(|j| {
            let (a, b) = (&e[i], &e[j]);
            let live_together = a.first <= b.last && b.first <= a.last;
            let (oa, ob) = (p.offsets[i], p.offsets[j]);
            !live_together || oa + a.bytes <= ob || ob + b.bytes <= oa
        })
    }) && e
        .iter()
        .zip(&p.offsets)
        .all(|(x, &o)| o + x.bytes <= p.arena_bytes)
}

/// With search nodes, a greedy arena above the lower bound is searched (exact search,
/// then window repair); one at the bound is not. The result never loses to the greedy
/// one, is named "search" only when it beats it, and says whether it reached the bound.
#[test]
fn plan_arena_searches_only_above_the_bound_and_never_loses_to_greedy() {
    let opts = PlanOptions::default();
    let (mut improved, mut at_bound) = (0, 0);
    for seed in 0..300 {
        let e = random_entries(seed);
        let lb = arena_search::lower_bound(&e);
        let (greedy_name, greedy) = plan_arena(
            &e,
            14,
            &opts,
            &Limits {
                deadline: None,
                max_nodes: 0,
            },
        );
        assert_eq!(greedy.nodes, 0);
        assert_eq!(greedy.lower_bound, lb);
        assert_eq!(greedy.proven, greedy.placement.arena_bytes <= lb);
        let (name, m) = plan_arena(
            &e,
            14,
            &opts,
            &Limits {
                deadline: None,
                max_nodes: 20_000,
            },
        );
        assert!(disjoint(&e, &m.placement), "seed {seed}");
        assert_eq!(m.lower_bound, lb);
        assert_eq!(m.proven, m.placement.arena_bytes <= lb);
        assert!(m.placement.arena_bytes >= lb);
        let g = greedy.placement.arena_bytes;
        if g <= lb {
            at_bound += 1;
            assert_eq!(
                (name, m.nodes),
                (greedy_name, 0),
                "seed {seed}: not searched"
            );
            assert_eq!(m.placement, greedy.placement);
        } else if m.placement.arena_bytes < g {
            improved += 1;
            assert_eq!(name, "search", "seed {seed}");
            assert!(m.nodes > 0);
        } else {
            assert_eq!(m.placement.arena_bytes, g);
            assert_eq!(name, greedy_name, "seed {seed}");
        }
    }
    assert!(
        improved > 0 && at_bound > 0,
        "improved {improved}, at the bound {at_bound}"
    );
}

/// Above `quadratic_limit` entries the greedy sweep is handed to window repair alone;
/// at or below it the exact search goes first and repair takes the nodes it left. Either
/// way the plan stays valid, never loses to greedy, is named "search" only when it beats
/// it, says whether it reached the bound, and spends no more nodes than it was given.
#[test]
fn plan_arena_repairs_windows_within_the_node_limit() {
    let (mut repaired, mut repaired_to_bound, mut limited) = (0, 0, 0);
    for seed in 0..200 {
        let e = random_entries_n(seed, 40);
        let lb = arena_search::lower_bound(&e);
        let sweep = arena::sweep_best_fit(&e);
        for (quadratic_limit, max_nodes) in [(e.len() - 1, 20_000), (e.len(), 60)] {
            let opts = PlanOptions {
                quadratic_limit,
                ..Default::default()
            };
            let limits = Limits {
                deadline: None,
                max_nodes,
            };
            let (greedy_name, greedy) = plan_arena(
                &e,
                40,
                &opts,
                &Limits {
                    deadline: None,
                    max_nodes: 0,
                },
            );
            let (name, m) = plan_arena(&e, 40, &opts, &limits);
            let at = format!("seed {seed}, limit {quadratic_limit}");
            assert!(disjoint(&e, &m.placement), "{at}");
            assert!(m.nodes <= max_nodes, "{at}: {} nodes", m.nodes);
            assert_eq!(m.lower_bound, lb, "{at}");
            assert_eq!(m.proven, m.placement.arena_bytes <= lb, "{at}");
            let g = greedy.placement.arena_bytes;
            assert!(m.placement.arena_bytes <= g, "{at}");
            if g > lb {
                assert!(m.nodes > 0, "{at}: not searched");
            }
            if m.placement.arena_bytes < g {
                assert_eq!(name, "search", "{at}");
            } else {
                assert_eq!(name, greedy_name, "{at}");
            }
            if quadratic_limit < e.len() {
                assert_eq!(greedy.placement, sweep, "{at}");
                if m.placement.arena_bytes < g {
                    repaired += 1;
                    repaired_to_bound += usize::from(m.proven);
                }
            } else {
                limited += usize::from(m.nodes == max_nodes);
            }
        }
    }
    assert!(
        repaired > 0 && repaired_to_bound > 0 && limited > 0,
        "repaired {repaired} ({repaired_to_bound} to the bound), stopped by the limit {limited}"
    );
}

/// Every name candidate's improved form is reported under its own name plus `+improve`.
#[test]
fn each_name_candidate_has_its_own_improved_name() {
    for base in NAME_CANDIDATES {
        assert_eq!(improved_name(base), format!("{base}+improve"));
    }
}

/// A known shape of `bytes` bytes and Caffe2 dtype `dtype`.
fn known(bytes: u64, dtype: i32) -> super::super::shapes::ShapeInfo {
    super::super::shapes::ShapeInfo {
        bytes: Some(bytes),
        dtype,
        unknown_reason: None,
    }
}

/// A net whose activations have exactly `entries`' lifetimes and sizes: op `i` (an op type
/// without a schema) writes the blobs whose lifetime starts at `i` and reads those whose
/// lifetime ends there (each entry needs `last > first`); with their shapes (UINT8, so
/// bytes are elements).
fn net_of(entries: &[Entry], num_ops: u32) -> (NetDef, ShapeMap) {
    let name = |k: usize| format!("b{k}");
    let mut net = NetDef::default();
    for i in 0..num_ops {
        let ins: Vec<String> = (0..entries.len())
            .filter(|&k| entries[k].last == i)
            .map(name)
            .collect();
        let outs: Vec<String> = (0..entries.len())
            .filter(|&k| entries[k].first == i)
            .map(name)
            .collect();
        let ins: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
        let outs: Vec<&str> = outs.iter().map(|s| s.as_str()).collect();
        net.op.push(crate::memonger::test_op("Step", &ins, &outs));
    }
    let mut shapes = ShapeMap::default();
    for (k, e) in entries.iter().enumerate() {
        shapes.insert(name(k), known(e.bytes, 3));
    }
    (net, shapes)
}

/// Entries where every greedy arena is one byte above the peak of live bytes (32 at ops 4-5:
/// 10 + 9 + 13), which the search reaches.
const SEARCHED_ARENA: [(u32, u32, u64); 4] = [(2, 5, 10), (4, 5, 9), (0, 2, 14), (4, 5, 13)];
/// Entries where Caffe2's fast pass gives names of 38 bytes against left edge's 43.
const FAST_BEATS_LEFT_EDGE: [(u32, u32, u64); 8] = [
    (1, 2, 3),
    (1, 4, 13),
    (1, 3, 2),
    (7, 9, 2),
    (7, 9, 9),
    (3, 4, 13),
    (6, 9, 14),
    (6, 9, 7),
];
/// Entries where Caffe2's fast pass beats every other greedy name candidate (49 bytes).
const FAST_BEATS_ALL: [(u32, u32, u64); 8] = [
    (3, 6, 14),
    (2, 3, 11),
    (8, 9, 12),
    (0, 4, 2),
    (4, 8, 2),
    (2, 5, 9),
    (8, 9, 15),
    (3, 7, 9),
];

fn entries(list: &[(u32, u32, u64)]) -> Vec<Entry> {
    list.iter()
        .map(|&(first, last, bytes)| Entry { first, last, bytes })
        .collect()
}

/// Options for exact byte counts: alignment 1, and no search unless `budget` is set.
fn exact(budget: Duration) -> PlanOptions {
    PlanOptions {
        alignment: 1,
        search_budget: budget,
        ..Default::default()
    }
}

#[test]
fn the_arena_search_takes_a_greedy_arena_to_the_bound_within_the_node_limit() {
    let (net, shapes) = net_of(&entries(&SEARCHED_ARENA), 6);
    let greedy = plan(&net, Some(&shapes), &exact(Duration::ZERO)).unwrap();
    let f = &greedy.figures;
    assert_eq!(
        (f.arena_bytes, f.arena_lb_bytes, f.arena_optimal),
        (33, 32, false)
    );
    assert_eq!(f.search_nodes, 0);
    assert_ne!(greedy.arena_algorithm, "search");
    let searched = plan(&net, Some(&shapes), &exact(Duration::from_secs(60))).unwrap();
    let f = &searched.figures;
    assert_eq!(
        (f.arena_bytes, f.arena_lb_bytes, f.arena_optimal),
        (32, 32, true)
    );
    assert_eq!(searched.arena_algorithm, "search");
    let needed = f.search_nodes;
    assert!(needed > 0);
    // However few nodes it is given, the whole search (arenas, then names) stays within them.
    for limit in 1..=4 * needed {
        let opts = PlanOptions {
            search_node_limit: limit,
            ..exact(Duration::from_secs(60))
        };
        let p = plan(&net, Some(&shapes), &opts).unwrap();
        assert!(
            p.figures.search_nodes <= limit,
            "limit {limit}: {} nodes",
            p.figures.search_nodes
        );
        assert!(p.figures.arena_bytes == 32 || p.figures.arena_bytes == 33);
        assert_eq!(p.figures.arena_optimal, p.figures.arena_bytes == 32);
    }
}

/// The name algorithm that gave the plan, and its name bytes, without search.
fn names_by(list: &[(u32, u32, u64)], opts: PlanOptions) -> (&'static str, u64, u64) {
    let e = entries(list);
    let ops = e.iter().map(|x| x.last).max().unwrap_or(0) + 1;
    let (net, shapes) = net_of(&e, ops);
    let p = plan(&net, Some(&shapes), &opts).unwrap();
    (
        p.name_algorithm,
        p.figures.name_bytes,
        p.figures.c2_fast_bytes,
    )
}

#[test]
fn a_named_name_algorithm_runs_alone_and_auto_adds_caffe2_fast_pass() {
    let with = |name_algorithm, quadratic_limit| PlanOptions {
        name_algorithm,
        quadratic_limit,
        ..exact(Duration::ZERO)
    };
    assert_eq!(
        names_by(&FAST_BEATS_LEFT_EDGE, with(NameAlgorithm::LeftEdge, 4096)),
        ("left_edge", 43, 38)
    );
    let (name, ..) = names_by(
        &FAST_BEATS_LEFT_EDGE,
        with(NameAlgorithm::GreedyBySize, 4096),
    );
    assert_eq!(name, "greedy_by_size");
    let (name, ..) = names_by(&FAST_BEATS_ALL, with(NameAlgorithm::GreedyBySize, 0));
    assert_eq!(name, "greedy_by_size");
    // Above the quadratic limit, Auto runs left edge and Caffe2's pass only.
    assert_eq!(
        names_by(&FAST_BEATS_LEFT_EDGE, with(NameAlgorithm::Auto, 0)),
        ("caffe2_fast", 38, 38)
    );
    // At or below it, every candidate: here Caffe2's pass still wins.
    assert_eq!(
        names_by(&FAST_BEATS_ALL, with(NameAlgorithm::Auto, 4096)),
        ("caffe2_fast", 49, 49)
    );
}

#[test]
fn caffe2_fast_pass_is_a_candidate_only_when_every_activation_is_planned() {
    let e = entries(&FAST_BEATS_ALL);
    let (mut net, shapes) = net_of(&e, 10);
    // One more activation without a shape: not planned (unknown size).
    net.op[0].output.push("unsized".into());
    net.op[9].input.push("unsized".into());
    let p = plan(&net, Some(&shapes), &exact(Duration::ZERO)).unwrap();
    assert_eq!(p.figures.plannable, 8);
    assert_ne!(p.name_algorithm, "caffe2_fast");
}

#[test]
fn among_equal_name_candidates_the_first_is_reported() {
    // Without shapes every size is 1: left edge (the first candidate) is optimal.
    let (net, _) = net_of(&entries(&FAST_BEATS_ALL), 10);
    let p = plan(&net, None, &exact(Duration::ZERO)).unwrap();
    assert_eq!(p.name_algorithm, "left_edge");
    assert_eq!(p.figures.names as u64, p.figures.lb_count);
}

fn on_device(mut op: crate::proto::OperatorDef, device_type: i32) -> crate::proto::OperatorDef {
    op.device_option = Some(crate::proto::DeviceOption {
        device_type: Some(device_type),
        ..Default::default()
    });
    op
}

/// The `excluded` lists of a plan's report, by reason.
fn excluded(p: &MemoryPlan) -> BTreeMap<String, Vec<String>> {
    let report: serde_json::Value = serde_json::from_str(p.report_json()).unwrap();
    serde_json::from_value(report["excluded"].clone()).unwrap()
}

#[test]
fn an_activation_excluded_for_several_reasons_is_listed_under_the_first() {
    use crate::memonger::test_op as op;
    let net = NetDef {
        external_input: vec!["x".into()],
        op: vec![
            // `early` is read before its first write.
            op("Step", &["x", "early"], &["cc", "ca"]),
            op("Step", &["x"], &["early"]),
            // `ac` goes through an aliasing op, then is written on a second device.
            op("Alias", &["early"], &["ac"]),
            on_device(op("Step", &["x"], &["ac"]), 1),
            // `ca` (written on CPU by op 0) is written on a second device, then aliased.
            on_device(op("Step", &["cc"], &["ca"]), 1),
            op("Alias", &["ca"], &["aliased"]),
            // `conflict` only meets a second device; `unsized` has no shape.
            op("Step", &["x"], &["conflict", "unsized"]),
            on_device(op("Step", &["conflict"], &["conflict"]), 1),
            op("Sum", &["ac", "aliased", "conflict", "unsized"], &["y"]),
        ],
        external_output: vec!["y".into()],
        ..Default::default()
    };
    let mut shapes = ShapeMap::default();
    for b in ["cc", "ca", "early", "ac", "aliased", "conflict", "y"] {
        shapes.insert(b.into(), known(64, 1));
    }
    let p = plan(&net, Some(&shapes), &exact(Duration::ZERO)).unwrap();
    let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let got = excluded(&p);
    assert_eq!(got["read_before_write"], list(&["early"]));
    assert_eq!(got["aliasing_op"], list(&["ca", "ac", "aliased"]));
    assert_eq!(got["device_conflict"], list(&["conflict"]));
    assert_eq!(got["unknown_size"], list(&["unsized"]));
    assert_eq!(p.figures.plannable, 2); // cc and y
}

#[test]
fn the_name_bound_adds_the_activations_that_keep_their_names() {
    let e = entries(&FAST_BEATS_ALL);
    let (net, shapes) = net_of(&e, 10);
    let base = plan(&net, Some(&shapes), &exact(Duration::ZERO)).unwrap();
    // An aliased pair (excluded, 16 + 16 bytes) and an external output (kept, 100 bytes),
    // alive beside everything.
    let (mut more, mut shapes) = (net.clone(), shapes);
    more.op[0].output.push("kept".into());
    more.op[0].output.push("held".into());
    more.op[9].input.push("held".into());
    more.op
        .push(crate::memonger::test_op("Alias", &["held"], &["alias"]));
    more.external_output.push("kept".into());
    more.external_output.push("alias".into());
    for (b, bytes) in [("kept", 100), ("held", 16), ("alias", 16)] {
        shapes.insert(b.into(), known(bytes, 3));
    }
    let p = plan(&more, Some(&shapes), &exact(Duration::ZERO)).unwrap();
    assert_eq!(excluded(&p)["aliasing_op"].len(), 2);
    assert_eq!(p.figures.name_lb_bytes, base.figures.name_lb_bytes + 132);
}

#[test]
fn blobs_of_two_dtypes_share_a_name_only_when_allowed() {
    use crate::memonger::test_op as op;
    let net = NetDef {
        external_input: vec!["x".into()],
        op: vec![
            op("Relu", &["x"], &["a"]),
            op("Relu", &["a"], &["b"]),
            op("Relu", &["b"], &["c"]),
            op("Relu", &["c"], &["y"]),
        ],
        external_output: vec!["y".into()],
        ..Default::default()
    };
    // `a` and `c` never live together, but hold different dtypes.
    let mut shapes = ShapeMap::default();
    for (b, dtype) in [("a", 1), ("b", 1), ("c", 10), ("y", 1)] {
        shapes.insert(b.into(), known(64, dtype));
    }
    let p = plan(&net, Some(&shapes), &exact(Duration::ZERO)).unwrap();
    assert_eq!(p.figures.names, 4);
    let opts = PlanOptions {
        share_across_dtypes: true,
        ..exact(Duration::ZERO)
    };
    let p = plan(&net, Some(&shapes), &opts).unwrap();
    assert_eq!(p.figures.names, 3);
    assert_eq!(p.net.op[0].output, p.net.op[2].output);
}

/// A net of `cpu` (ops `0..cpu_ops`, on the CPU) followed by `gpu` (blobs renamed, on a CUDA
/// device), with their shapes.
fn on_two_devices(cpu: &[Entry], cpu_ops: u32, gpu: &[Entry], gpu_ops: u32) -> (NetDef, ShapeMap) {
    let (mut net, mut shapes) = net_of(cpu, cpu_ops);
    let (second, second_shapes) = net_of(gpu, gpu_ops);
    let rename = |s: &String| format!("gpu_{s}");
    for op in second.op {
        let mut op = on_device(op, 1);
        op.input = op.input.iter().map(rename).collect();
        op.output = op.output.iter().map(rename).collect();
        net.op.push(op);
    }
    shapes.extend(second_shapes.iter().map(|(k, v)| (rename(k), v.clone())));
    (net, shapes)
}

/// 30-49 entries over 20 ops whose arena the search takes to its bound only with dozens of
/// nodes (65 for the exact search), more than the device-share test below leaves it.
fn hard_entries() -> Vec<Entry> {
    let mut next = crate::memonger::test_rng(6 * 7919 + 1);
    let n = 30 + next(20) as usize;
    (0..n)
        .map(|_| {
            let first = next(19) as u32;
            let last = (first + 1 + next(8) as u32).min(19);
            Entry {
                first,
                last,
                bytes: 1 + next(1000),
            }
        })
        .collect()
}

/// Half the node limit goes to the arenas, shared evenly by the devices in turn, each
/// passing on what it leaves, and no limit is ever exceeded. With twice the nodes
/// `SEARCHED_ARENA` needs alone, it still reaches its bound on the second device after a
/// first device that uses every node it gets.
#[test]
fn the_arena_search_shares_its_nodes_between_devices() {
    let limited = |limit| PlanOptions {
        search_node_limit: limit,
        ..exact(Duration::from_secs(60))
    };
    let easy = entries(&SEARCHED_ARENA);
    let (one, one_shapes) = net_of(&easy, 6);
    let enough = (1..10_000)
        .find(|&l| {
            let p = plan(&one, Some(&one_shapes), &limited(l)).unwrap();
            p.figures.arena_optimal
        })
        .unwrap();
    let (two, two_shapes) = on_two_devices(&easy, 6, &easy, 6);
    let p = plan(&two, Some(&two_shapes), &limited(2 * enough)).unwrap();
    assert_eq!(
        (p.figures.arena_bytes, p.figures.arena_optimal),
        (64, true),
        "{enough} nodes for one device"
    );
    let (mixed, mixed_shapes) = on_two_devices(&hard_entries(), 20, &easy, 6);
    let p = plan(&mixed, Some(&mixed_shapes), &limited(2 * enough)).unwrap();
    assert_eq!(p.arenas.len(), 2);
    assert_eq!(p.arenas[1].arena_bytes, 32, "{enough} nodes for one device");
    assert!(
        !p.figures.arena_optimal,
        "the first device reached its bound"
    );
    for limit in 1..=4 * enough {
        for (net, shapes) in [(&two, &two_shapes), (&mixed, &mixed_shapes)] {
            let p = plan(net, Some(shapes), &limited(limit)).unwrap();
            assert!(
                p.figures.search_nodes <= limit,
                "limit {limit}: {} nodes",
                p.figures.search_nodes
            );
        }
    }
}

/// Entries whose arena every greedy algorithm packs at the bound (28 bytes) but whose
/// greedy names cost 31 bytes; the name search finds 29, the bound.
const NAMES_SEARCHED: [(u32, u32, u64); 10] = [
    (9, 11, 11),
    (4, 6, 3),
    (0, 1, 1),
    (1, 5, 4),
    (10, 11, 3),
    (6, 9, 1),
    (8, 9, 16),
    (1, 5, 1),
    (1, 3, 16),
    (6, 7, 11),
];

/// The name search runs with the nodes the arenas left, its nodes count in the figures, and
/// "search" is reported only when it lowers the cost of the greedy names. The search time
/// reported is part of the time the plan took.
#[test]
fn the_name_search_is_reported_only_when_it_lowers_the_cost() {
    let (net, shapes) = net_of(&entries(&NAMES_SEARCHED), 12);
    let greedy = plan(&net, Some(&shapes), &exact(Duration::ZERO)).unwrap();
    let clock = Instant::now();
    let searched = plan(&net, Some(&shapes), &exact(Duration::from_secs(60))).unwrap();
    let elapsed_ms = clock.elapsed().as_secs_f64() * 1e3;
    let (g, s) = (&greedy.figures, &searched.figures);
    assert!(
        s.search_ms <= elapsed_ms,
        "{} ms of {elapsed_ms}",
        s.search_ms
    );
    assert_eq!((g.arena_bytes, g.arena_lb_bytes), (28, 28));
    assert_eq!((g.name_bytes, g.names_optimal), (31, false));
    assert_eq!(
        (s.name_bytes, s.name_lb_bytes, s.names_optimal),
        (29, 29, true)
    );
    assert_eq!(searched.name_algorithm, "search");
    assert_ne!(searched.arena_algorithm, "search");
    assert!(s.search_nodes > 0);
    // Without shapes left edge is optimal: searched or not, it keeps its name.
    let plain = plan(&net, None, &exact(Duration::from_secs(60))).unwrap();
    assert_eq!(plain.name_algorithm, "left_edge");
    assert!(plain.figures.names_optimal);
}

/// A refused rewrite keeps every activation in its own slice (the naive arena); the figures
/// still state the bound and whether the naive arena reaches it.
#[test]
fn a_refused_plan_reports_the_naive_arena_against_its_bound() {
    let (mut net, shapes) = net_of(&entries(&SEARCHED_ARENA), 6);
    net.r#type = Some("dag".into());
    let p = plan(&net, Some(&shapes), &exact(Duration::from_secs(60))).unwrap();
    assert!(p.refused.is_some());
    assert_eq!(p.arena_algorithm, "naive");
    let f = &p.figures;
    assert_eq!(
        (f.arena_bytes, f.arena_lb_bytes, f.arena_optimal),
        (46, 32, false)
    );
    assert_eq!(f.search_nodes, 0);
    // All alive at op 4: the naive arena is the bound.
    let (mut net, shapes) = net_of(&entries(&[(0, 4, 5), (2, 4, 7), (4, 5, 9)]), 6);
    net.r#type = Some("dag".into());
    let p = plan(&net, Some(&shapes), &exact(Duration::from_secs(60))).unwrap();
    let f = &p.figures;
    assert_eq!(
        (f.arena_bytes, f.arena_lb_bytes, f.arena_optimal),
        (21, 21, true)
    );
}
