//! Memory planner benchmark (plain std::time, one core), three parts:
//! 1. quality on the generated nets of tests/memonger_nets with the default 1 s search
//!    budget: arena / arena lower bound, name bytes / name lower bound, proven flags, time;
//! 2. issue 17's random DAG nets (1-3 inputs from the last 40 ops, 4 B-16 KiB) of 5,000 to
//!    100,000 ops with the default budget: arena / lower bound and time;
//! 3. scaling of greedy-only planning (budget 0) on random DAG nets of 10^4, 10^5 and 10^6
//!    ops, as below.
//!
//! Scaling nets: Each op reads one to three earlier activations (mostly recent, sometimes far
//! back: long-lived skips), some ops are in place; every activation has a random shape.
//! Timed: shape decoding + `planner::plan` (liveness, lower bounds, naming, arena, verifier,
//! report). Printed: n, seconds, and time/(n log n) relative to the 10^4 case.

use std::time::Instant;

#[path = "../tests/memonger_nets/mod.rs"]
mod memonger_nets;

use caffe2rs::memonger::{planner, shapes};
use caffe2rs::proto::{NetDef, OperatorDef, TensorShape, TensorShapes};
use prost::Message;

/// xorshift64*: deterministic, no crate needed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn random_net(n: usize, seed: u64) -> (NetDef, Vec<u8>) {
    let mut rng = Rng(seed);
    let mut ops = Vec::with_capacity(n);
    let mut acts: Vec<String> = vec!["data".into()];
    let mut shapes = Vec::with_capacity(n);
    for i in 0..n {
        let k = 1 + rng.below(3) as usize;
        let mut inputs = Vec::with_capacity(k);
        for _ in 0..k {
            let back = if rng.below(20) == 0 {
                rng.below(acts.len() as u64)
            } else {
                rng.below(8)
            };
            let idx = acts.len() - 1 - (back as usize).min(acts.len() - 1);
            inputs.push(acts[idx].clone());
        }
        let in_place = rng.below(10) == 0 && acts.len() > 1;
        // Arity as Caffe2's schemas allow: Relu(x) -> x in place, Conv(x, w, b), Sum(x1..x3).
        let ty = if in_place {
            inputs.truncate(1);
            "Relu"
        } else if k == 1 {
            inputs.push(format!("w{}", i % 64));
            inputs.push(format!("b{}", i % 64));
            "Conv"
        } else {
            "Sum"
        };
        let out = if in_place {
            inputs[0].clone()
        } else {
            format!("a{i}")
        };
        if !in_place {
            shapes.push(TensorShape {
                dims: vec![32, 1 + rng.below(256) as i64, 14, 14],
                data_type: Some(1),
                name: Some(out.as_bytes().to_vec()),
                ..Default::default()
            });
            acts.push(out.clone());
        }
        ops.push(OperatorDef {
            r#type: Some(ty.into()),
            input: inputs,
            output: vec![out],
            ..Default::default()
        });
    }
    let mut external_input: Vec<String> = (0..64)
        .flat_map(|i| [format!("w{i}"), format!("b{i}")])
        .collect();
    external_input.push("data".into());
    let net = NetDef {
        name: Some(format!("random_{n}")),
        op: ops,
        external_input,
        external_output: vec![acts[acts.len() - 1].clone()],
        ..Default::default()
    };
    (net, TensorShapes { shapes }.encode_to_vec())
}

fn quality(g: &memonger_nets::GenNet) {
    let start = Instant::now();
    let sh = shapes::parse_shapes(&g.shapes.encode_to_vec()).expect("shapes");
    let plan = planner::plan(&g.net, Some(&sh), &planner::PlanOptions::default()).expect("plan");
    let secs = start.elapsed().as_secs_f64();
    assert!(plan.violations.is_empty());
    let f = &plan.figures;
    println!(
        "{:28} {:>7} {:>9.4}{:1} {:>9.4}{:1} {:>8.3} {:>9}",
        g.name,
        f.plannable,
        f.arena_bytes as f64 / f.arena_lb_bytes as f64,
        if f.arena_optimal { "*" } else { "" },
        f.name_bytes as f64 / f.name_lb_bytes as f64,
        if f.names_optimal { "*" } else { "" },
        secs,
        f.search_nodes
    );
}

fn main() {
    println!("generated nets, default budget (* = proven optimal)");
    println!(
        "{:28} {:>7} {:>10} {:>10} {:>8} {:>9}",
        "net", "buffers", "arena/lb", "names/lb", "seconds", "nodes"
    );
    for g in memonger_nets::structured() {
        quality(&g);
    }
    for (ops, seed) in [(5_000, 1), (20_000, 2), (20_000, 3), (100_000, 4)] {
        quality(&memonger_nets::random_dag(ops, seed));
    }
    println!("\ngreedy-only planning (search budget 0)");
    let greedy = planner::PlanOptions {
        search_budget: std::time::Duration::ZERO,
        ..Default::default()
    };
    let sizes = [10_000usize, 100_000, 1_000_000];
    println!(
        "{:>9} {:>10} {:>12} {:>8} {:>9} {:>9}",
        "ops", "seconds", "t/(nlogn)", "ratio", "name/lb", "arena/lb"
    );
    let mut base = None;
    for &n in &sizes {
        let (net, shape_bytes) = random_net(n, 0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let start = Instant::now();
        let sh = shapes::parse_shapes(&shape_bytes).expect("shapes");
        let plan = planner::plan(&net, Some(&sh), &greedy).expect("plan");
        let secs = start.elapsed().as_secs_f64();
        assert!(plan.violations.is_empty());
        let nlogn = n as f64 * (n as f64).log2();
        let per = secs / nlogn;
        let b = *base.get_or_insert(per);
        let f = &plan.figures;
        println!(
            "{n:>9} {secs:>10.3} {:>12.3e} {:>8.2} {:>9.3} {:>9.3}",
            per,
            per / b,
            f.name_bytes as f64 / f.lb_bytes as f64,
            f.arena_bytes as f64 / f.lb_bytes as f64
        );
    }
}
