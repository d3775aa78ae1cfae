//! Memory planner benchmark (plain std::time, one core), three parts:
//! 1. quality on the golden memonger nets and the generated nets of tests/memonger_nets with
//!    the default 1 s search budget: arena / arena lower bound, name bytes / name lower
//!    bound, proven flags, time;
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

use caffe2rs::memonger::{naming, planner, shapes};
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

fn quality(name: &str, net: &NetDef, shape_bytes: &[u8], opts: &planner::PlanOptions) {
    let start = Instant::now();
    let sh = shapes::parse_shapes(shape_bytes).expect("shapes");
    let plan = planner::plan(net, Some(&sh), opts).expect("plan");
    let secs = start.elapsed().as_secs_f64();
    assert!(plan.violations.is_empty());
    let f = &plan.figures;
    println!(
        "{:28} {:>7} {:>9.4}{:1} {:>9.4}{:1} {:>8.3} {:>9.1} {:>9}",
        name,
        f.plannable,
        f.arena_bytes as f64 / f.arena_lb_bytes as f64,
        if f.arena_optimal { "*" } else { "" },
        f.name_bytes as f64 / f.name_lb_bytes as f64,
        if f.names_optimal { "*" } else { "" },
        secs,
        f.search_ms,
        f.search_nodes
    );
}

/// The golden memonger nets (tests/data/golden/memonger) with their serialized shapes, by
/// name.
fn golden_nets() -> Vec<(String, NetDef, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/memonger");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("golden") {
        let p = e.expect("entry").path();
        let file = p.file_name().unwrap().to_string_lossy().to_string();
        if !file.ends_with(".pb") || file.ends_with(".shapes.pb") {
            continue;
        }
        let stem = file.trim_end_matches(".pb").to_string();
        let net = NetDef::decode(&std::fs::read(&p).expect("net")[..]).expect("net");
        let shapes = std::fs::read(dir.join(format!("{stem}.shapes.pb"))).expect("shapes");
        out.push((stem, net, shapes));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Writes the name problem and the arena problem of `net` (greedy plan, budget 0) as text for
/// offline exact solvers (scripts/memonger_exact.py): `DIR/NAME.names` holds one line per
/// activation in the renaming problem, `first last size class`, after a header
/// `# name_bytes const_bytes name_lb_bytes` (const: bytes of activations that keep their
/// names); `DIR/NAME.arena` one line per arena entry, `device first last bytes`.
fn dump(dir: &std::path::Path, name: &str, net: &NetDef, sh: &shapes::ShapeMap) {
    use std::collections::HashMap;
    use std::fmt::Write as _;
    let opts = planner::PlanOptions {
        search_budget: std::time::Duration::ZERO,
        ..Default::default()
    };
    let plan = planner::plan(net, Some(sh), &opts).expect("plan");
    let f = &plan.figures;
    let ext_out: std::collections::HashSet<&String> = net.external_output.iter().collect();
    let mut classes: HashMap<(i32, i32, i32), u32> = HashMap::new();
    let mut items: Vec<naming::Item> = Vec::new();
    let mut arena = String::new();
    for (d, a) in plan.arenas.iter().enumerate() {
        for e in &a.entries {
            writeln!(arena, "{d} {} {} {}", e.first, e.last, e.bytes).unwrap();
            if ext_out.contains(&e.blob) {
                continue;
            }
            let info = sh.get(&e.blob).expect("shape");
            let key = (a.device.0, a.device.1, info.dtype);
            let next = classes.len() as u32;
            items.push(naming::Item {
                first: e.first,
                last: e.last,
                size: info.bytes.expect("size"),
                class: *classes.entry(key).or_insert(next),
                ext_out: false,
                pinned: false,
            });
        }
    }
    let mut names = format!(
        "# {} {} {}\n",
        f.name_bytes,
        f.name_lb_bytes - naming::layered_lower_bound(&items),
        f.name_lb_bytes
    );
    for it in &items {
        writeln!(names, "{} {} {} {}", it.first, it.last, it.size, it.class).unwrap();
    }
    std::fs::write(dir.join(format!("{name}.names")), names).expect("write");
    std::fs::write(dir.join(format!("{name}.arena")), arena).expect("write");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(k) = args.iter().position(|a| a == "--dump") {
        let dir = std::path::PathBuf::from(args.get(k + 1).expect("--dump DIR"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (name, net, shapes) in golden_nets() {
            let sh = shapes::parse_shapes(&shapes).expect("shapes");
            dump(&dir, &name, &net, &sh);
        }
        let mut gens = memonger_nets::structured();
        for (ops, seed) in [(5_000, 1), (20_000, 2), (20_000, 3), (100_000, 4)] {
            let mut g = memonger_nets::random_dag(ops, seed);
            g.name = format!("{}_{seed}", g.name);
            gens.push(g);
        }
        for g in gens {
            let sh = shapes::parse_shapes(&g.shapes.encode_to_vec()).expect("shapes");
            dump(&dir, &g.name, &g.net, &sh);
        }
        return;
    }
    // `--budget-ms N`: search budget of the quality table (default: the planner's, 1 s);
    // `--only S`: only the nets whose name contains S (and no scaling table).
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|k| args.get(k + 1))
            .cloned()
    };
    let mut opts = planner::PlanOptions::default();
    if let Some(ms) = arg("--budget-ms") {
        opts.search_budget = std::time::Duration::from_millis(ms.parse().expect("--budget-ms N"));
    }
    let only = arg("--only");
    let wanted = |name: &str| only.as_deref().is_none_or(|s| name.contains(s));
    let scaling_only = args.iter().any(|a| a == "--scaling-only");
    println!(
        "golden and generated nets, search budget {} ms (* = proven optimal)",
        opts.search_budget.as_millis()
    );
    println!(
        "{:28} {:>7} {:>10} {:>10} {:>8} {:>9} {:>9}",
        "net", "buffers", "arena/lb", "names/lb", "seconds", "search_ms", "nodes"
    );
    for (name, net, shapes) in golden_nets() {
        if wanted(&name) && !scaling_only {
            quality(&name, &net, &shapes, &opts);
        }
    }
    let mut gens = Vec::new();
    if !scaling_only {
        gens = memonger_nets::structured();
        for (ops, seed) in [(5_000, 1), (20_000, 2), (20_000, 3), (100_000, 4)] {
            let mut g = memonger_nets::random_dag(ops, seed);
            g.name = format!("{}_{seed}", g.name);
            gens.push(g);
        }
    }
    for g in gens.iter().filter(|g| wanted(&g.name)) {
        quality(&g.name, &g.net, &g.shapes.encode_to_vec(), &opts);
    }
    if only.is_some() {
        return;
    }
    println!("\ngreedy-only planning (search budget 0)");
    let greedy = planner::PlanOptions {
        search_budget: std::time::Duration::ZERO,
        ..Default::default()
    };
    // `--sizes A,B,…`: other net sizes for this table.
    let sizes: Vec<usize> = arg("--sizes").map_or(vec![10_000, 100_000, 1_000_000], |v| {
        v.split(',')
            .map(|x| x.parse().expect("--sizes A,B"))
            .collect()
    });
    println!(
        "{:>9} {:>10} {:>12} {:>8} {:>9} {:>9}",
        "ops", "seconds", "t/(nlogn)", "ratio", "name/lb", "arena/lb"
    );
    let mut base = None;
    for &n in &sizes {
        let (net, shape_bytes) = random_net(n, 0x9e37_79b9_7f4a_7c15 ^ n as u64);
        // The fastest of three runs (two at 10^6): the first run of a size also pays for
        // growing the heap.
        let mut secs = f64::INFINITY;
        let mut plan = None;
        for _ in 0..if n >= 1_000_000 { 2 } else { 3 } {
            let start = Instant::now();
            let sh = shapes::parse_shapes(&shape_bytes).expect("shapes");
            let p = planner::plan(&net, Some(&sh), &greedy).expect("plan");
            secs = secs.min(start.elapsed().as_secs_f64());
            assert!(p.violations.is_empty());
            plan = Some(p);
        }
        let plan = plan.expect("planned");
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
