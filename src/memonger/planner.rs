//! Planner mode (spec §5): size-aware renaming plus an arena plan per device, checked by the
//! verifier, with a JSON report. Without shapes every activation counts as size 1 and the
//! planner minimises the number of names.
//!
//! After the greedy heuristics the planner searches within `PlanOptions::search_budget`
//! and `search_node_limit`: first the arenas (half of the nodes, three quarters of the
//! time at most: `arena_search` on sets up to `quadratic_limit` entries, `arena_repair`
//! above them or where the exact search stops short), then the names with what is left
//! (`naming_search`). It keeps a result only when it is cheaper and valid, so a plan is
//! never worse than the greedy one, and may improve with a larger budget. Searches split
//! their limits by nodes, never by the clock: a search that ends before the deadline gives
//! the same plan on every run and machine. The report says the lower bounds it proved
//! (`name_lb_bytes`, `arena_lb_bytes`) and whether the plan reaches them
//! (`names_optimal`, `arena_optimal`). External outputs keep their names unless
//! `share_external_outputs` is set.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::arena::{self, Entry, Placement};
use super::arena_repair;
use super::arena_search::{self, Limits};
use super::fast::{self, Refusal, rename_ops, sequential_refusal};
use super::graph::{BlobId, Device, NetGraph};
use super::liveness::{Liveness, peak_live};
use super::naming::{self, Chains, Item};
use super::naming_search;
use super::report::{ObjectWriter, json_ratio, json_str};
use super::shapes::ShapeMap;
use super::verify::{Violation, verify};
use crate::error::{C2rsError, Result};
use crate::proto::NetDef;

/// Name assignment algorithm (§5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameAlgorithm {
    Auto,
    LeftEdge,
    GreedyBySize,
}

/// Arena algorithm (§5.4); `SweepBestFit` is this project's O(n log n) addition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArenaAlgorithm {
    Auto,
    GreedyBySize,
    GreedyByBreadth,
    SweepBestFit,
}

/// Planner options (§5) with the spec's defaults.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub static_blobs: Vec<String>,
    pub namescope: String,
    /// Power of two; sizes are rounded up to it in the arena.
    pub alignment: u64,
    pub share_across_dtypes: bool,
    pub name_algorithm: NameAlgorithm,
    pub arena_algorithm: ArenaAlgorithm,
    /// The host runs a non-simple net in NetDef order.
    pub assume_sequential: bool,
    /// Op types whose inputs and outputs alias storage.
    pub aliasing_ops: Vec<String>,
    /// Largest plannable set the quadratic heuristics run on under `Auto`; above it only the
    /// O(n log n) algorithms run, keeping the planner O(n log n).
    pub quadratic_limit: usize,
    /// Time the planner may spend, counted from the start of planning, searching for better
    /// arenas and name plans after the greedy ones (zero: greedy only). The result is never
    /// worse than greedy and may improve with a larger budget; a search the clock stops may
    /// give different plans on different runs.
    pub search_budget: Duration,
    /// Most search nodes (placements or assignments tried) per plan: a machine-independent
    /// limit, so that a plan is reproducible whenever this one, not the clock, stops the
    /// search.
    pub search_node_limit: u64,
    /// Let activations share an external output's name (it joins a chain as its last
    /// member). Off by default: external outputs keep their names and their storage, as in
    /// `optimize_inference_net`, so a host can fetch them after the run.
    pub share_external_outputs: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            static_blobs: Vec::new(),
            namescope: String::new(),
            alignment: 64,
            share_across_dtypes: false,
            name_algorithm: NameAlgorithm::Auto,
            arena_algorithm: ArenaAlgorithm::Auto,
            assume_sequential: false,
            aliasing_ops: vec!["Alias".into()],
            quadratic_limit: 4096,
            search_budget: Duration::from_secs(1),
            search_node_limit: 20_000_000,
            share_external_outputs: false,
        }
    }
}

/// One arena slice: an original activation, its final name and op interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArenaEntry {
    pub blob: String,
    pub final_name: String,
    pub offset: u64,
    pub bytes: u64,
    pub first: u32,
    pub last: u32,
}

/// The arena of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceArena {
    pub device: Device,
    pub arena_bytes: u64,
    pub entries: Vec<ArenaEntry>,
}

/// Figures of the report (§5.5).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub ops: usize,
    pub activations: usize,
    pub plannable: usize,
    pub naive_bytes: u64,
    pub lb_bytes: u64,
    pub lb_count: u64,
    pub lb_count_plannable: u64,
    /// Lower bound on name bytes for any renaming (layered clique bound over the plannable
    /// set, plus the sizes of activations that keep their names).
    pub name_lb_bytes: u64,
    pub lb_bytes_last_read: u64,
    pub c2_fast_names: usize,
    pub c2_fast_bytes: u64,
    pub names: usize,
    pub name_bytes: u64,
    pub arena_bytes: u64,
    /// Lower bound on `arena_bytes` (Σ over devices of the peak of aligned live bytes,
    /// raised where the search refuted it).
    pub arena_lb_bytes: u64,
    /// `arena_bytes == arena_lb_bytes` on every device: no placement is smaller.
    pub arena_optimal: bool,
    /// `name_bytes` equals `name_lb_bytes`: no renaming is cheaper.
    pub names_optimal: bool,
    /// Nodes the searches tried and the time they took.
    pub search_nodes: u64,
    pub search_ms: f64,
}

/// A finished plan.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    pub net: NetDef,
    pub alignment: u64,
    pub arenas: Vec<DeviceArena>,
    pub figures: Figures,
    pub refused: Option<String>,
    pub violations: Vec<Violation>,
    pub name_algorithm: &'static str,
    pub arena_algorithm: &'static str,
    report: String,
    offsets: super::graph::FastMap<String, (u64, u64)>,
}

impl MemoryPlan {
    /// The JSON report.
    pub fn report_json(&self) -> &str {
        &self.report
    }
    /// Offset and aligned size of an original activation in its device's arena.
    pub fn offset(&self, blob: &str) -> Option<(u64, u64)> {
        self.offsets.get(blob).copied()
    }
    /// Σ over devices of the arena size.
    pub fn total_arena_bytes(&self) -> u64 {
        self.arenas.iter().map(|a| a.arena_bytes).sum()
    }
    /// The arena plan as JSON (§5.5).
    pub fn arena_json(&self) -> String {
        let devices: Vec<String> = self
            .arenas
            .iter()
            .map(|a| {
                let entries: Vec<String> = a
                    .entries
                    .iter()
                    .map(|e| {
                        ObjectWriter::default()
                            .str("blob", &e.blob)
                            .str("final_name", &e.final_name)
                            .num("offset", e.offset)
                            .num("bytes", e.bytes)
                            .num("first", e.first)
                            .num("last", e.last)
                            .finish()
                    })
                    .collect();
                ObjectWriter::default()
                    .num("device_type", a.device.0)
                    .num("device_id", a.device.1)
                    .num("arena_bytes", a.arena_bytes)
                    .raw("entries", format!("[{}]", entries.join(",")))
                    .finish()
            })
            .collect();
        ObjectWriter::default()
            .num("alignment", self.alignment)
            .raw("devices", format!("[{}]", devices.join(",")))
            .finish()
    }
}

const REASONS: [&str; 5] = [
    "read_before_write",
    "subnet",
    "aliasing_op",
    "device_conflict",
    "unknown_size",
];

/// Name cost of a final-name assignment: (names hosting ≥ 1 activation, Σ of max sizes).
fn score<'a>(acts: &[BlobId], final_of: impl Fn(BlobId) -> &'a str, size: &[u64]) -> (usize, u64) {
    let mut max: super::graph::FastMap<&str, u64> = Default::default();
    for &b in acts {
        let e = max.entry(final_of(b)).or_insert(0);
        *e = (*e).max(size[b as usize]);
    }
    (max.len(), max.values().sum())
}

/// The name candidates the planner may report as `name_algorithm` (each also as
/// `<name>+improve`, after `naming::improve`), besides "search", "caffe2_fast" and "none".
pub const NAME_CANDIDATES: [&str; 12] = [
    "left_edge",
    "greedy_by_size",
    "greedy_by_size_time_fit",
    "arena_offsets",
    "arena_offsets_breadth",
    "bucketed_1.25",
    "bucketed_1.5",
    "bucketed_2",
    "bucketed_4",
    "bucketed_8",
    "bucketed_16",
    "bucketed_inf",
];

fn improved_name(name: &str) -> &'static str {
    match name {
        "left_edge" => "left_edge+improve",
        "greedy_by_size" => "greedy_by_size+improve",
        "arena_offsets" => "arena_offsets+improve",
        "arena_offsets_breadth" => "arena_offsets_breadth+improve",
        "bucketed_1.25" => "bucketed_1.25+improve",
        "bucketed_1.5" => "bucketed_1.5+improve",
        "bucketed_2" => "bucketed_2+improve",
        "bucketed_4" => "bucketed_4+improve",
        "bucketed_8" => "bucketed_8+improve",
        "bucketed_16" => "bucketed_16+improve",
        "bucketed_inf" => "bucketed_inf+improve",
        _ => "greedy_by_size_time_fit+improve",
    }
}

/// Why the rewrite of `net` is refused before names are chosen (a net type without a
/// sequential order, unless the host runs it in order, and the other refusals).
fn refusal(net: &NetDef, opts: &PlanOptions) -> Option<Refusal> {
    if opts.assume_sequential {
        match sequential_refusal(net) {
            Some(Refusal::NetType(_)) | None => None,
            Some(r) => Some(r),
        }
    } else {
        sequential_refusal(net)
    }
}

/// Arena plan of one device: the greedy heuristics `opts` allows (the best wins), then,
/// within `limits` (no nodes: greedy only), up to `quadratic_limit` entries the exact
/// search (`arena_search::minimize`), then window repair (`arena_repair`) while the arena is
/// above its bound. Returns the
/// algorithm that gave the plan and the plan with its lower bound.
pub fn plan_arena(
    entries: &[Entry],
    num_ops: usize,
    opts: &PlanOptions,
    limits: &Limits,
) -> (&'static str, arena_search::Minimized) {
    let mut cands: Vec<(&'static str, Placement)> = Vec::new();
    let auto = opts.arena_algorithm == ArenaAlgorithm::Auto;
    let small = entries.len() <= opts.quadratic_limit;
    if opts.arena_algorithm == ArenaAlgorithm::GreedyBySize || (auto && small) {
        cands.push(("greedy_by_size", arena::greedy_by_size(entries)));
    }
    if opts.arena_algorithm == ArenaAlgorithm::GreedyByBreadth || (auto && small) {
        cands.push((
            "greedy_by_breadth",
            arena::greedy_by_breadth(entries, num_ops),
        ));
    }
    if opts.arena_algorithm == ArenaAlgorithm::SweepBestFit || auto {
        cands.push(("sweep_best_fit", arena::sweep_best_fit(entries)));
    }
    let mut best: Option<(&'static str, Placement)> = None;
    for (name, p) in cands {
        if best
            .as_ref()
            .is_none_or(|(_, b)| p.arena_bytes < b.arena_bytes)
        {
            best = Some((name, p));
        }
    }
    let (mut name, p) = best.unwrap_or((
        "none",
        Placement {
            offsets: Vec::new(),
            arena_bytes: 0,
        },
    ));
    let greedy_bytes = p.arena_bytes;
    let lb = arena_search::lower_bound(entries);
    if limits.max_nodes == 0 || p.arena_bytes <= lb {
        return (
            name,
            arena_search::Minimized {
                proven: p.arena_bytes <= lb,
                placement: p,
                lower_bound: lb,
                nodes: 0,
            },
        );
    }
    // Up to `quadratic_limit` entries the exact search first, with three quarters of the
    // nodes (it proves most arenas optimal); window repair for the rest, and alone on
    // larger sets, where the exact search is too slow per node.
    let mut m = if small {
        arena_search::minimize(
            entries,
            p,
            &Limits {
                deadline: limits.deadline,
                max_nodes: limits.max_nodes / 4 * 3,
            },
        )
    } else {
        arena_search::Minimized {
            proven: false,
            placement: p,
            lower_bound: lb,
            nodes: 0,
        }
    };
    if !m.proven {
        let r = arena_repair::repair(
            entries,
            m.placement,
            &Limits {
                deadline: limits.deadline,
                max_nodes: limits.max_nodes.saturating_sub(m.nodes),
            },
        );
        m.nodes += r.nodes;
        m.placement = r.placement;
        m.proven = m.placement.arena_bytes <= m.lower_bound;
    }
    if m.placement.arena_bytes < greedy_bytes {
        name = "search";
    }
    (name, m)
}

/// Plans `net`. `shapes` is `None` for "no shapes" (every size 1).
pub fn plan(net: &NetDef, shapes: Option<&ShapeMap>, opts: &PlanOptions) -> Result<MemoryPlan> {
    let start = Instant::now();
    if !opts.alignment.is_power_of_two() {
        return Err(C2rsError::invalid_argument(format!(
            "alignment {} is not a power of two",
            opts.alignment
        )));
    }
    super::schema_check::check_schemas(net)?;
    let g = NetGraph::build(net);
    let names = g.num_names();
    let mut is_static = vec![false; names];
    for &b in &g.external_input {
        is_static[b as usize] = true;
    }
    for s in &opts.static_blobs {
        if let Some(id) = g.id(s) {
            is_static[id as usize] = true;
        }
    }
    let live = Liveness::compute(&g, &is_static);
    if let Some(&(b, i)) = live.unwritten_reads.first() {
        return Err(C2rsError::invalid_argument(format!(
            "blob `{}` is read by op #{i} ({}) but no op writes it and it is neither an external input nor a static blob",
            g.name(b),
            g.ops[i].op_type
        )));
    }
    let mut warnings: Vec<String> = Vec::new();
    // Sizes and dtypes.
    let mut size = vec![0u64; names];
    let mut known = vec![false; names];
    let mut dtype = vec![-1i32; names];
    for &b in &live.activations {
        match shapes {
            None => {
                size[b as usize] = 1;
                known[b as usize] = true;
            }
            Some(map) => {
                if let Some(info) = map.get(g.name(b)) {
                    dtype[b as usize] = if opts.share_across_dtypes {
                        -1
                    } else {
                        info.dtype
                    };
                    if let Some(bytes) = info.bytes {
                        size[b as usize] = bytes;
                        known[b as usize] = true;
                    } else if let Some(why) = &info.unknown_reason {
                        warnings.push(format!("{why}: size unknown, not planned"));
                    }
                } else {
                    warnings.push(format!(
                        "no shape for blob `{}`: size unknown, not planned",
                        g.name(b)
                    ));
                }
            }
        }
    }
    if let Some(map) = shapes {
        let mut stray: Vec<&str> = map
            .keys()
            .filter(|k| g.id(k).is_none())
            .map(|k| k.as_str())
            .collect();
        stray.sort_unstable();
        for k in stray {
            warnings.push(format!(
                "shape for blob `{k}` names no blob of the net: ignored"
            ));
        }
    }
    // Exclusions (§5.2), first reason wins.
    let mut reason: Vec<Option<usize>> = vec![None; names];
    for &b in &live.read_before_write {
        reason[b as usize] = Some(0);
    }
    let mark = |b: BlobId, r: usize, reason: &mut Vec<Option<usize>>| {
        if live.interval[b as usize].is_some() && reason[b as usize].is_none_or(|x| x > r) {
            reason[b as usize] = Some(r);
        }
    };
    let mut device: Vec<Option<Device>> = vec![None; names];
    let mut pinned_subnet = vec![false; names];
    for op in &g.ops {
        if op.has_subnet {
            // Subnets are never rewritten: these blobs keep their names (pinned) but may
            // host other activations, whose lifetimes avoid the subnet's reads.
            for &b in op.subnet_names.iter().chain(&op.inputs).chain(&op.outputs) {
                if live.interval[b as usize].is_some() {
                    pinned_subnet[b as usize] = true;
                }
            }
        }
        if opts.aliasing_ops.contains(&op.op_type) {
            for &b in op.inputs.iter().chain(&op.outputs) {
                mark(b, 2, &mut reason);
            }
        }
        for &b in &op.outputs {
            match device[b as usize] {
                None => device[b as usize] = Some(op.device),
                Some(d) if d != op.device => mark(b, 3, &mut reason),
                Some(_) => {}
            }
        }
    }
    for &b in &live.activations {
        if !known[b as usize] {
            mark(b, 4, &mut reason);
        }
    }
    let plannable: Vec<BlobId> = live
        .activations
        .iter()
        .copied()
        .filter(|&b| reason[b as usize].is_none())
        .collect();
    // Lower bounds over every activation (unknown sizes count 0).
    let n = g.ops.len();
    let iv = |b: BlobId| {
        live.interval[b as usize].unwrap_or(super::liveness::Interval {
            first: 0,
            last: 0,
            last_read: 0,
        })
    };
    let (lb_bytes, per_op) = peak_live(
        n,
        live.activations
            .iter()
            .map(|&b| (iv(b).first, iv(b).last, size[b as usize])),
    );
    let (lb_count, _) = peak_live(
        n,
        live.activations
            .iter()
            .map(|&b| (iv(b).first, iv(b).last, 1)),
    );
    let (lb_bytes_last_read, _) = peak_live(
        n,
        live.activations
            .iter()
            .map(|&b| (iv(b).first, iv(b).last_read, size[b as usize])),
    );
    // Items and classes.
    let mut classes: BTreeMap<(Device, i32), u32> = BTreeMap::new();
    let is_ext_out = {
        let mut v = vec![false; names];
        for &b in &g.external_output {
            v[b as usize] = true;
        }
        v
    };
    let items: Vec<Item> = plannable
        .iter()
        .map(|&b| {
            let d = device[b as usize].unwrap_or((0, 0));
            let next = classes.len() as u32;
            let class = *classes.entry((d, dtype[b as usize])).or_insert(next);
            Item {
                first: iv(b).first,
                last: iv(b).last,
                size: size[b as usize],
                class,
                ext_out: is_ext_out[b as usize],
                pinned: is_ext_out[b as usize] || pinned_subnet[b as usize],
            }
        })
        .collect();
    let (lb_count_plannable, _) = peak_live(n, items.iter().map(|it| (it.first, it.last, 1)));
    // Kept external outputs stay out of the name problem: each keeps its own name.
    let keep_outputs = !opts.share_external_outputs;
    let sub: Vec<usize> = (0..items.len())
        .filter(|&i| !(keep_outputs && items[i].ext_out))
        .collect();
    let all_items = items;
    let items: Vec<Item> = sub.iter().map(|&i| all_items[i]).collect();
    let kept_out_bytes: u64 = (0..all_items.len())
        .filter(|&i| keep_outputs && all_items[i].ext_out)
        .map(|i| all_items[i].size)
        .sum();
    let name_lb_bytes = naming::layered_lower_bound(&items)
        + kept_out_bytes
        + live
            .activations
            .iter()
            .filter(|&&b| reason[b as usize].is_some())
            .map(|&b| size[b as usize])
            .sum::<u64>();
    // Caffe2's fast pass, scored (its fixes applied, same static set).
    let fast_result = fast::fast_assignment(&g, &is_static);
    let own = |b: BlobId| g.name(b);
    let (c2_fast_names, c2_fast_bytes) = match &fast_result {
        Ok(a) => score(
            &live.activations,
            |b| a.final_name[b as usize].as_deref().unwrap_or(own(b)),
            &size,
        ),
        Err(_) => score(&live.activations, own, &size),
    };
    // Name candidates.
    let quadratic_ok = items.len() <= opts.quadratic_limit;
    let mut candidates: Vec<(&'static str, Chains)> = Vec::new();
    if matches!(
        opts.name_algorithm,
        NameAlgorithm::Auto | NameAlgorithm::LeftEdge
    ) {
        candidates.push(("left_edge", naming::left_edge(&items)));
    }
    if opts.name_algorithm == NameAlgorithm::GreedyBySize
        || (opts.name_algorithm == NameAlgorithm::Auto && quadratic_ok)
    {
        candidates.push(("greedy_by_size", naming::greedy_by_size(&items)));
    }
    if opts.name_algorithm == NameAlgorithm::Auto && quadratic_ok {
        candidates.push((
            "greedy_by_size_time_fit",
            naming::greedy_by_size_time_fit(&items, n as u32),
        ));
        let entries: Vec<Entry> = items
            .iter()
            .map(|it| Entry {
                first: it.first,
                last: it.last,
                bytes: it.size,
            })
            .collect();
        let bytes: Vec<u64> = items.iter().map(|it| it.size).collect();
        let p = arena::greedy_by_size(&entries);
        candidates.push((
            "arena_offsets",
            naming::from_offsets(&items, &p.offsets, &bytes),
        ));
        let p = arena::greedy_by_breadth(&entries, n);
        candidates.push((
            "arena_offsets_breadth",
            naming::from_offsets(&items, &p.offsets, &bytes),
        ));
        for (name, ratio) in [
            ("bucketed_1.25", 1.25),
            ("bucketed_1.5", 1.5),
            ("bucketed_2", 2.0),
            ("bucketed_4", 4.0),
            ("bucketed_8", 8.0),
            ("bucketed_16", 16.0),
            ("bucketed_inf", 1e300),
        ] {
            candidates.push((name, naming::greedy_bucketed(&items, ratio, n as u32)));
        }
        let improved: Vec<(&'static str, Chains)> = candidates
            .iter()
            .map(|(name, c)| (improved_name(name), naming::improve(&items, c, 50)))
            .collect();
        candidates.extend(improved);
    }
    if opts.name_algorithm == NameAlgorithm::Auto && plannable.len() == live.activations.len() {
        if let Ok(a) = &fast_result {
            let mut group: HashMap<&str, u32> = HashMap::new();
            let chains: Chains = sub
                .iter()
                .map(|&i| plannable[i])
                .map(|b| {
                    let key = a.final_name[b as usize].as_deref().unwrap_or(own(b));
                    let next = group.len() as u32;
                    *group.entry(key).or_insert(next)
                })
                .collect();
            let chains = naming::renumber(&items, chains);
            if naming::check(&items, &chains).is_none() {
                candidates.push(("caffe2_fast", chains));
            }
        }
    }
    let mut best: Option<(u64, usize, &'static str, Chains)> = None;
    for (name, chains) in candidates {
        let (bytes, count) = naming::cost(&items, &chains);
        if best
            .as_ref()
            .is_none_or(|(bb, bc, _, _)| (bytes, count) < (*bb, *bc))
        {
            best = Some((bytes, count, name, chains));
        }
    }
    let (mut name_algorithm, mut sub_chains) =
        best.map_or(("none", Vec::new()), |(_, _, n, c)| (n, c));
    let search_start = Instant::now();
    // The budget counts from the start of planning, so a plan takes about that long. The
    // searches stop on node limits (half for the arenas, then what is left for the names),
    // so they give the same plan on any machine unless the deadline comes first.
    let search_deadline = start + opts.search_budget;
    let mut search_nodes = 0u64;
    // Arenas per device (they depend on the lifetimes only, not on the names): greedy, then
    // search. The arenas go first: their search usually ends well before its limits, and
    // the name search takes whatever is left.
    let align = |x: u64| x.div_ceil(opts.alignment).saturating_mul(opts.alignment);
    let mut per_device: BTreeMap<Device, Vec<usize>> = BTreeMap::new();
    for (i, &b) in plannable.iter().enumerate() {
        per_device
            .entry(device[b as usize].unwrap_or((0, 0)))
            .or_default()
            .push(i);
    }
    let device_entries: Vec<Vec<Entry>> = per_device
        .values()
        .map(|idx| {
            idx.iter()
                .map(|&i| Entry {
                    first: all_items[i].first,
                    last: all_items[i].last,
                    bytes: align(all_items[i].size),
                })
                .collect()
        })
        .collect();
    let mut arena_plans: Vec<(&'static str, arena_search::Minimized)> = Vec::new();
    let devices = device_entries.len().max(1) as u64;
    let arena_nodes = if refusal(net, opts).is_some() {
        0 // the plan will be refused (naive arenas): no search
    } else {
        opts.search_node_limit / 2
    };
    // A quarter of the time is kept for the names; an eighth where an arena is too large for
    // the exact search: window repair needs the time there, and the name search rarely
    // improves a large net's greedy names (random 20,000-op DAGs: none in a second).
    let large = device_entries
        .iter()
        .any(|e| e.len() > opts.quadratic_limit);
    let left = search_deadline.saturating_duration_since(search_start);
    let arena_deadline = search_start + if large { left * 7 / 8 } else { left * 3 / 4 };
    for (d, entries) in device_entries.iter().enumerate() {
        let share = arena_nodes.saturating_sub(search_nodes) / (devices - d as u64);
        let limits = Limits {
            deadline: Some(arena_deadline),
            max_nodes: if opts.search_budget.is_zero() {
                0
            } else {
                share
            },
        };
        let r = plan_arena(entries, n, opts, &limits);
        search_nodes += r.1.nodes;
        arena_plans.push(r);
    }
    // Names: search below the heuristics with the nodes left.
    if !opts.search_budget.is_zero() && !items.is_empty() {
        let before = naming::cost(&items, &sub_chains);
        let r = naming_search::improve(
            &items,
            &sub_chains,
            &Limits {
                deadline: Some(search_deadline),
                max_nodes: opts.search_node_limit.saturating_sub(search_nodes),
            },
        );
        search_nodes += r.nodes;
        if naming::check(&items, &r.chains).is_none() && naming::cost(&items, &r.chains) < before {
            sub_chains = r.chains;
            name_algorithm = "search";
        }
    }
    // Back to every plannable item: kept external outputs alone in their own chains.
    let chains = if sub.len() == all_items.len() {
        sub_chains
    } else {
        let mut next = sub_chains.iter().map(|&c| c + 1).max().unwrap_or(0);
        let mut full = vec![u32::MAX; all_items.len()];
        for (k, &i) in sub.iter().enumerate() {
            full[i] = sub_chains[k];
        }
        for c in full.iter_mut().filter(|c| **c == u32::MAX) {
            *c = next;
            next += 1;
        }
        // Singletons keep their names, so appending their ids leaves the numbering of
        // shared names (by first write, from the candidates) as it was.
        full
    };
    let items = all_items;
    if let Some(bad) = naming::check(&items, &chains) {
        return Err(C2rsError::internal(format!(
            "name assignment {name_algorithm} put `{}` and `{}` together",
            g.name(plannable[bad.0]),
            g.name(plannable[bad.1])
        )));
    }
    // Final names.
    let mut refused = refusal(net, opts);
    let n_chains = chains.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_chains];
    for (i, &c) in chains.iter().enumerate() {
        members[c as usize].push(i);
    }
    let mut final_name: Vec<Option<String>> = vec![None; names];
    let mut k = 0usize;
    for m in &members {
        if m.len() < 2 {
            continue;
        }
        let target = match m.iter().find(|&&i| items[i].pinned) {
            Some(&i) => g.name(plannable[i]).to_string(),
            None => {
                let s = format!("{}__m{k}_shared", opts.namescope);
                k += 1;
                if g.id(&s).is_some() {
                    refused = refused.or(Some(Refusal::AlreadyOptimized));
                }
                s
            }
        };
        for &i in m {
            let b = plannable[i];
            if g.name(b) != target {
                final_name[b as usize] = Some(target.clone());
            }
        }
    }
    if refused.is_some() {
        final_name.iter_mut().for_each(|f| *f = None);
    }
    let mut renamed = rename_ops(net, &g, &final_name);
    // Arenas per device, planned above; naive when the rewrite is refused.
    let mut arena_algorithm = "none";
    let mut arenas = Vec::new();
    let mut arena_lb_bytes = 0u64;
    let mut arena_optimal = true;
    for (((dev, idx), entries), (name, m)) in
        per_device.iter().zip(&device_entries).zip(arena_plans)
    {
        let placement = if refused.is_some() {
            arena_algorithm = "naive";
            let mut off = 0;
            let offsets = entries
                .iter()
                .map(|e| {
                    let o = off;
                    off += e.bytes;
                    o
                })
                .collect();
            let lb = arena_search::lower_bound(entries);
            arena_lb_bytes += lb;
            arena_optimal &= off <= lb;
            Placement {
                offsets,
                arena_bytes: off,
            }
        } else {
            arena_algorithm = name;
            arena_lb_bytes += m.lower_bound;
            arena_optimal &= m.proven;
            m.placement
        };
        if let Some((a, b)) = arena::check(entries, &placement.offsets) {
            return Err(C2rsError::internal(format!(
                "arena plan overlaps `{}` and `{}`",
                g.name(plannable[idx[a]]),
                g.name(plannable[idx[b]])
            )));
        }
        let arena_entries = idx
            .iter()
            .zip(entries)
            .zip(&placement.offsets)
            .map(|((&i, e), &offset)| {
                let b = plannable[i];
                ArenaEntry {
                    blob: g.name(b).to_string(),
                    final_name: final_name[b as usize]
                        .clone()
                        .unwrap_or_else(|| g.name(b).to_string()),
                    offset,
                    bytes: e.bytes,
                    first: e.first,
                    last: e.last,
                }
            })
            .collect();
        arenas.push(DeviceArena {
            device: *dev,
            arena_bytes: placement.arena_bytes,
            entries: arena_entries,
        });
    }
    // Self-check; an unsafe rewrite is never returned.
    let mut statics = opts.static_blobs.clone();
    statics.extend(net.external_input.iter().cloned());
    let violations = verify(net, &renamed, &statics);
    if !violations.is_empty() {
        renamed = net.clone();
        final_name.iter_mut().for_each(|f| *f = None);
    }
    let (names_used, name_bytes) = score(
        &live.activations,
        |b| final_name[b as usize].as_deref().unwrap_or(own(b)),
        &size,
    );
    let figures = Figures {
        ops: n,
        activations: live.activations.len(),
        plannable: plannable.len(),
        naive_bytes: live.activations.iter().map(|&b| size[b as usize]).sum(),
        lb_bytes,
        lb_count,
        lb_count_plannable,
        name_lb_bytes,
        lb_bytes_last_read,
        c2_fast_names,
        c2_fast_bytes,
        names: names_used,
        name_bytes,
        arena_bytes: arenas.iter().map(|a| a.arena_bytes).sum(),
        arena_lb_bytes,
        arena_optimal,
        names_optimal: name_bytes <= name_lb_bytes,
        search_nodes,
        search_ms: search_start.elapsed().as_secs_f64() * 1e3,
    };
    let mut offsets = super::graph::FastMap::default();
    for a in &arenas {
        for e in &a.entries {
            offsets.insert(e.blob.clone(), (e.offset, e.bytes));
        }
    }
    let mut excluded = ObjectWriter::default();
    for (r, label) in REASONS.iter().enumerate() {
        let list: Vec<&str> = live
            .activations
            .iter()
            .filter(|&&b| reason[b as usize] == Some(r))
            .map(|&b| g.name(b))
            .collect();
        excluded.strs(label, list);
    }
    let pinned_list: Vec<&str> = live
        .activations
        .iter()
        .filter(|&&b| pinned_subnet[b as usize])
        .map(|&b| g.name(b))
        .collect();
    let refused_text = refused.as_ref().map(|r| r.message());
    let per_op_json = format!(
        "[{}]",
        per_op
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let f = &figures;
    let report = ObjectWriter::default()
        .num("ops", f.ops)
        .num("activations", f.activations)
        .num("plannable", f.plannable)
        .raw("excluded", excluded.finish())
        .strs("pinned_subnet", pinned_list)
        .num("naive_bytes", f.naive_bytes)
        .num("lb_bytes", f.lb_bytes)
        .num("lb_count", f.lb_count)
        .num("lb_count_plannable", f.lb_count_plannable)
        .num("name_lb_bytes", f.name_lb_bytes)
        .num("lb_bytes_last_read", f.lb_bytes_last_read)
        .num("c2_fast_names", f.c2_fast_names)
        .num("c2_fast_bytes", f.c2_fast_bytes)
        .num("names", f.names)
        .num("name_bytes", f.name_bytes)
        .num("arena_bytes", f.arena_bytes)
        .num("arena_lb_bytes", f.arena_lb_bytes)
        .num("arena_optimal", f.arena_optimal)
        .num("names_optimal", f.names_optimal)
        .num("search_nodes", f.search_nodes)
        .num("search_ms", format!("{:.3}", f.search_ms))
        .raw(
            "name_bytes_over_lb_bytes",
            json_ratio(f.name_bytes, f.lb_bytes),
        )
        .raw(
            "arena_bytes_over_lb_bytes",
            json_ratio(f.arena_bytes, f.lb_bytes),
        )
        .raw(
            "names_over_lb_count",
            json_ratio(f.names as u64, f.lb_count),
        )
        .str("name_algorithm", name_algorithm)
        .str("arena_algorithm", arena_algorithm)
        .raw(
            "refused",
            refused_text.as_deref().map_or("null".into(), json_str),
        )
        .strs("warnings", warnings.iter().map(|s| s.as_str()))
        .strs(
            "verifier_violations",
            violations.iter().map(|v| v.0.as_str()),
        )
        .raw("per_op_live_bytes", per_op_json)
        .num(
            "time_ms",
            format!("{:.3}", start.elapsed().as_secs_f64() * 1e3),
        )
        .finish();
    Ok(MemoryPlan {
        net: renamed,
        alignment: opts.alignment,
        arenas,
        figures,
        refused: refused_text,
        violations,
        name_algorithm,
        arena_algorithm,
        report,
        offsets,
    })
}

#[cfg(test)]
mod tests;
