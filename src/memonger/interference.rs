//! Python's `optimize_interference` family (spec §6): the op interference graph, the two
//! pinned topological orders, live ranges over a linearised net, chain assignment (greedy
//! and exact), chain naming and statistics.
//!
//! Safety fixes over the Python version: the graph also has write-after-read and
//! write-after-write edges (a reorder cannot move an in-place writer before a reader);
//! names in the external lists, names read before their first write, names never written
//! and names referenced inside subnet arguments are static; a write after the last read
//! extends the range; chains never mix devices; the result passes the verifier or the net
//! is returned unrenamed with the violations as warnings.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::dag::apply_assignments;
use super::graph::{Device, FastMap, NetGraph};
use super::verify::verify;
use crate::error::{C2rsError, Result};
use crate::proto::{NetDef, OperatorDef};

/// How `optimize_interference` linearises the ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    /// [`topological_sort_traversal`].
    Topological = 0,
    /// [`topological_sort_traversal_longest_path`].
    LongestPath = 1,
    /// Keep the NetDef order.
    AsGiven = 2,
}

impl Ordering {
    pub fn from_i32(v: i32) -> Option<Ordering> {
        match v {
            0 => Some(Ordering::Topological),
            1 => Some(Ordering::LongestPath),
            2 => Some(Ordering::AsGiven),
            _ => None,
        }
    }
}

/// Python's `AssignmentAlgorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignmentAlgorithm {
    Greedy = 0,
    DynamicProgramming = 1,
}

impl AssignmentAlgorithm {
    pub fn from_i32(v: i32) -> Option<AssignmentAlgorithm> {
        match v {
            0 => Some(AssignmentAlgorithm::Greedy),
            1 => Some(AssignmentAlgorithm::DynamicProgramming),
            _ => None,
        }
    }
}

/// Python's `LiveRange`: first write, last use (read, or a later write), size; plus the
/// device of the first writer (chains never mix devices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveRange {
    pub defined: Option<i64>,
    pub used: Option<i64>,
    pub size: Option<u64>,
    pub device: Device,
}

impl LiveRange {
    pub fn new(defined: Option<i64>, used: Option<i64>, size: Option<u64>) -> LiveRange {
        LiveRange {
            defined,
            used,
            size,
            device: (0, 0),
        }
    }
}

/// A blob name with its range.
pub type NamedRange = (String, LiveRange);

/// Reads of op `op` for ordering purposes: inputs, control inputs, subnet names.
fn op_reads(g: &NetGraph, i: usize) -> impl Iterator<Item = u32> + '_ {
    super::liveness::reads_of(g, i)
}

/// Per blob, the ops reading and writing it, in op order (an op at most once per list).
fn accesses(g: &NetGraph) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let names = g.num_names();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); names];
    let mut writers: Vec<Vec<usize>> = vec![Vec::new(); names];
    for i in 0..g.ops.len() {
        for b in op_reads(g, i) {
            if readers[b as usize].last() != Some(&i) {
                readers[b as usize].push(i);
            }
        }
        for &b in &g.ops[i].outputs {
            if writers[b as usize].last() != Some(&i) {
                writers[b as usize].push(i);
            }
        }
    }
    (readers, writers)
}

/// The interference graph as Python defines it (edge i → j, i < j, when an output of i is an
/// input of j, for every earlier writer) plus the write-after-read and write-after-write
/// edges of the fix. Sorted, without duplicates. Can be quadratic in the writers of one name.
pub fn interference_graph(net: &NetDef) -> Vec<(usize, usize)> {
    let g = NetGraph::build(net);
    let (readers, writers) = accesses(&g);
    let mut edges = Vec::new();
    for (r, w) in readers.iter().zip(&writers) {
        for &wi in w {
            edges.extend(r.iter().filter(|&&ri| ri > wi).map(|&ri| (wi, ri)));
            edges.extend(r.iter().filter(|&&ri| ri < wi).map(|&ri| (ri, wi)));
            edges.extend(w.iter().filter(|&&wj| wj > wi).map(|&wj| (wi, wj)));
        }
    }
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// Edges with the same reachability as [`interference_graph`], O(N + E): from the latest
/// writer to each reader and to the next writer, and from each reader to the next writer.
fn dependency_edges(g: &NetGraph) -> Vec<(usize, usize)> {
    let mut last_writer: Vec<Option<usize>> = vec![None; g.num_names()];
    let mut readers_since: Vec<Vec<usize>> = vec![Vec::new(); g.num_names()];
    let mut edges = Vec::new();
    for i in 0..g.ops.len() {
        for b in op_reads(g, i) {
            if let Some(w) = last_writer[b as usize] {
                if w != i {
                    edges.push((w, i));
                }
            }
            readers_since[b as usize].push(i);
        }
        for &b in &g.ops[i].outputs {
            let b = b as usize;
            if let Some(w) = last_writer[b] {
                if w != i {
                    edges.push((w, i));
                }
            }
            for r in readers_since[b].drain(..) {
                if r != i {
                    edges.push((r, i));
                }
            }
            last_writer[b] = Some(i);
        }
    }
    edges.sort_unstable();
    edges.dedup();
    edges
}

fn adjacency(n: usize, edges: &[(usize, usize)]) -> Result<(Vec<Vec<usize>>, Vec<usize>)> {
    let mut succ = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for &(a, b) in edges {
        if a >= n || b >= n {
            return Err(C2rsError::invalid_argument(format!(
                "edge ({a}, {b}) names a node outside 0..{n}"
            )));
        }
        succ[a].push(b);
    }
    for s in succ.iter_mut() {
        s.sort_unstable();
        s.dedup();
        for &b in s.iter() {
            indeg[b] += 1;
        }
    }
    Ok((succ, indeg))
}

fn cycle_error() -> C2rsError {
    C2rsError::invalid_argument("the graph has a cycle: no topological order exists")
}

/// Kahn's algorithm with a LIFO stack seeded with the zero-in-degree nodes in index order,
/// children visited in increasing index (networkx 2.x's order, which the ported tests pin).
pub fn topological_sort_traversal(n: usize, edges: &[(usize, usize)]) -> Result<Vec<usize>> {
    let (succ, mut indeg) = adjacency(n, edges)?;
    let mut stack: Vec<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(v) = stack.pop() {
        out.push(v);
        for &c in &succ[v] {
            indeg[c] -= 1;
            if indeg[c] == 0 {
                stack.push(c);
            }
        }
    }
    if out.len() != n {
        return Err(cycle_error());
    }
    Ok(out)
}

/// Longest chains first, each followed depth-first: sources in order of the longest path
/// leaving them (longest first, then index); from each source, a depth-first walk emits
/// every node whose predecessors are all emitted, preferring the child with the longer
/// path (then the smaller index). Iterative; O(N + E log E).
pub fn topological_sort_traversal_longest_path(
    n: usize,
    edges: &[(usize, usize)],
) -> Result<Vec<usize>> {
    let order = topological_sort_traversal(n, edges)?;
    let (mut succ, mut indeg) = adjacency(n, edges)?;
    let mut height = vec![0usize; n];
    for &v in order.iter().rev() {
        height[v] = succ[v].iter().map(|&c| height[c] + 1).max().unwrap_or(0);
    }
    let key = |v: &usize| (std::cmp::Reverse(height[*v]), *v);
    for s in succ.iter_mut() {
        s.sort_by_key(key);
    }
    let mut sources: Vec<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
    sources.sort_by_key(key);
    let mut out = Vec::with_capacity(n);
    let mut stack = Vec::new();
    for s in sources {
        stack.push(s);
        while let Some(v) = stack.pop() {
            out.push(v);
            for &c in succ[v].iter().rev() {
                indeg[c] -= 1;
                if indeg[c] == 0 {
                    stack.push(c);
                }
            }
        }
    }
    Ok(out)
}

/// Python's `compute_ranges` over linearised ops: per name (in order of first appearance),
/// `defined` = first write, `used` = last read, extended to a later write (fix);
/// `size` from `blob_sizes` (a name missing there is an error when sizes are given).
/// Control inputs and names inside subnet arguments count as reads.
pub fn compute_ranges(
    ops: &[OperatorDef],
    blob_sizes: Option<&HashMap<String, u64>>,
) -> Result<Vec<NamedRange>> {
    let net = NetDef {
        op: ops.to_vec(),
        ..Default::default()
    };
    let g = NetGraph::build(&net);
    let names = g.num_names();
    let mut defined: Vec<Option<i64>> = vec![None; names];
    let mut used: Vec<Option<i64>> = vec![None; names];
    let mut last_write: Vec<Option<i64>> = vec![None; names];
    let mut device: Vec<Device> = vec![(0, 0); names];
    for (i, op) in g.ops.iter().enumerate() {
        let i = i as i64;
        for b in op_reads(&g, i as usize) {
            used[b as usize] = Some(i);
        }
        for &b in &op.outputs {
            let b = b as usize;
            if defined[b].is_none() {
                defined[b] = Some(i);
                device[b] = op.device;
            }
            last_write[b] = Some(i);
        }
    }
    let mut out = Vec::with_capacity(names);
    for b in 0..names {
        let mut u = used[b];
        if let (Some(w), Some(d)) = (last_write[b], defined[b]) {
            if u.is_some() || w > d {
                u = Some(u.map_or(w, |x| x.max(w)));
            }
        }
        let name = g.name(b as u32);
        let size = match blob_sizes {
            None => None,
            Some(m) => Some(*m.get(name).ok_or_else(|| {
                C2rsError::invalid_argument(format!("blob_sizes has no size for blob `{name}`"))
            })?),
        };
        out.push((
            name.to_string(),
            LiveRange {
                defined: defined[b],
                used: u,
                size,
                device: device[b],
            },
        ));
    }
    Ok(out)
}

/// A chain of blobs sharing one name (the last member's).
pub type Chain = Vec<NamedRange>;

fn size_of(r: &LiveRange) -> u64 {
    r.size.unwrap_or(1)
}

fn chain_max(c: &[NamedRange]) -> u64 {
    c.iter().map(|(_, r)| size_of(r)).max().unwrap_or(0)
}

/// `candidate` may follow the chain whose last member is `last` (not static, same device,
/// defined strictly after the last use).
fn compatible(candidate: &LiveRange, last: &LiveRange, last_static: bool) -> bool {
    !last_static
        && candidate.device == last.device
        && candidate.defined.unwrap_or(-1) > last.used.unwrap_or(i64::MAX)
}

/// Python's `compute_assignments`: ranges sorted by (`used` is None, `used`); None
/// `defined` → −1, None `used` → max used + 1, None size → 1; the shareable ranges are
/// chained by `algo`; statics become singleton chains at the end.
pub fn compute_assignments(
    ranges: &[NamedRange],
    static_blobs: &HashSet<String>,
    algo: AssignmentAlgorithm,
) -> Vec<Chain> {
    let mut sorted: Vec<NamedRange> = ranges.to_vec();
    sorted.sort_by_key(|(_, r)| (r.used.is_none(), r.used));
    let max_used = sorted.iter().filter_map(|(_, r)| r.used).max().unwrap_or(0);
    for (_, r) in sorted.iter_mut() {
        r.defined = Some(r.defined.unwrap_or(-1));
        r.used = Some(r.used.unwrap_or(max_used + 1));
        r.size = Some(r.size.unwrap_or(1));
    }
    let (stat, share): (Vec<NamedRange>, Vec<NamedRange>) = sorted
        .into_iter()
        .partition(|(n, _)| static_blobs.contains(n));
    let mut chains = match algo {
        AssignmentAlgorithm::Greedy => assign_greedy(&share),
        AssignmentAlgorithm::DynamicProgramming => assign_exact(&share),
    };
    chains.extend(stat.into_iter().map(|x| vec![x]));
    chains
}

/// Greedy: each range joins the compatible chain whose max size is closest to its size
/// (first on ties), else opens a chain. O(ranges × chains).
pub fn assign_greedy(sorted: &[NamedRange]) -> Vec<Chain> {
    let mut chains: Vec<Chain> = Vec::new();
    let mut maxes: Vec<u64> = Vec::new();
    for (name, r) in sorted {
        let size = size_of(r);
        let mut best: Option<(u64, usize)> = None;
        for (k, c) in chains.iter().enumerate() {
            let Some((_, last)) = c.last() else { continue };
            if compatible(r, last, false) {
                let d = maxes[k].abs_diff(size);
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, k));
                }
            }
        }
        match best {
            Some((_, k)) => {
                chains[k].push((name.clone(), *r));
                maxes[k] = maxes[k].max(size);
            }
            None => {
                chains.push(vec![(name.clone(), *r)]);
                maxes.push(size);
            }
        }
    }
    chains
}

/// Search nodes the exact assignment may expand before it keeps the best found.
const EXACT_NODE_BUDGET: u64 = 2_000_000;

struct Search<'a> {
    ranges: &'a [NamedRange],
    /// Per open chain: (last used, max size, device).
    chains: Vec<(i64, u64, Device)>,
    choice: Vec<usize>,
    best_cost: u64,
    best_choice: Vec<usize>,
    lower_bound: u64,
    nodes: u64,
}

/// How one search step changed the chains.
enum Applied {
    Opened,
    Extended(usize, (i64, u64, Device)),
}

/// One level of the search: the options for one range (chain index, or `usize::MAX` for a
/// new chain) sorted by cost increase, and the option currently applied.
struct Frame {
    options: Vec<(u64, usize)>,
    next: usize,
    applied: Option<Applied>,
    cost_before: u64,
}

impl Search<'_> {
    fn frame(&mut self, depth: usize) -> Frame {
        self.nodes += 1;
        let r = &self.ranges[depth].1;
        let size = size_of(r);
        let mut seen: HashSet<(i64, u64, Device)> = HashSet::new();
        let mut options = Vec::new();
        for (k, &(used, max, dev)) in self.chains.iter().enumerate() {
            let last = LiveRange {
                defined: None,
                used: Some(used),
                size: None,
                device: dev,
            };
            // Chains in the same state lead to the same subtrees: try one of them.
            if compatible(r, &last, false) && seen.insert((used, max, dev)) {
                options.push((size.saturating_sub(max), k));
            }
        }
        options.push((size, usize::MAX));
        options.sort_unstable();
        Frame {
            options,
            next: 0,
            applied: None,
            cost_before: 0,
        }
    }

    /// Depth-first branch and bound with an explicit stack (one frame per range).
    fn run(&mut self) {
        let n = self.ranges.len();
        let mut cost = 0u64;
        let first = self.frame(0);
        let mut stack = vec![first];
        while let Some(depth) = stack.len().checked_sub(1) {
            let f = &mut stack[depth];
            match f.applied.take() {
                Some(Applied::Opened) => {
                    self.chains.pop();
                }
                Some(Applied::Extended(k, prev)) => self.chains[k] = prev,
                None => {}
            }
            if f.next > 0 {
                cost = f.cost_before;
                self.choice.pop();
            }
            let stop = self.nodes > EXACT_NODE_BUDGET || self.best_cost <= self.lower_bound;
            if stop || f.next >= f.options.len() {
                stack.pop();
                continue;
            }
            let (inc, k) = f.options[f.next];
            f.next += 1;
            if cost + inc >= self.best_cost {
                // Options are sorted by increase: the rest cannot do better.
                f.next = f.options.len();
                f.applied = None;
                // Re-enter this frame with nothing applied; `choice` was popped above
                // only when an option had been applied, so push a placeholder to keep
                // the invariant "next > 0 ⇒ one choice pushed".
                self.choice.push(usize::MAX);
                f.cost_before = cost;
                continue;
            }
            let r = &self.ranges[depth].1;
            let (used, size) = (r.used.unwrap_or(i64::MAX), size_of(r));
            let chosen = if k == usize::MAX {
                self.chains.push((used, size, r.device));
                f.applied = Some(Applied::Opened);
                self.chains.len() - 1
            } else {
                let prev = self.chains[k];
                self.chains[k] = (used, prev.1.max(size), prev.2);
                f.applied = Some(Applied::Extended(k, prev));
                k
            };
            f.cost_before = cost;
            cost += inc;
            self.choice.push(chosen);
            if depth + 1 == n {
                if cost < self.best_cost {
                    self.best_cost = cost;
                    self.best_choice = self.choice.clone();
                }
            } else {
                let next = self.frame(depth + 1);
                stack.push(next);
            }
        }
    }
}

/// Max over ops of Σ sizes of ranges alive there: no chaining can cost less.
fn live_lower_bound(ranges: &[NamedRange]) -> u64 {
    let mut events: Vec<(i64, i64)> = Vec::with_capacity(2 * ranges.len());
    for (_, r) in ranges {
        let s = size_of(r) as i64;
        events.push((r.defined.unwrap_or(-1), s));
        events.push((r.used.unwrap_or(i64::MAX - 1) + 1, -s));
    }
    // Ends before starts at one time: a range ending at t-1 and one starting at t do not
    // overlap.
    events.sort_by_key(|&(t, d)| (t, d));
    let (mut cur, mut best) = (0i64, 0i64);
    for (_, d) in events {
        cur += d;
        best = best.max(cur);
    }
    best.max(0) as u64
}

/// Exact chaining minimising Σ over chains of the max size: branch and bound seeded with the
/// greedy cost, stopping early at the live-bytes lower bound. Exact within
/// `EXACT_NODE_BUDGET` search nodes; beyond that the best chaining found is kept (never
/// worse than greedy).
pub fn assign_exact(sorted: &[NamedRange]) -> Vec<Chain> {
    let greedy = assign_greedy(sorted);
    let greedy_cost: u64 = greedy.iter().map(|c| chain_max(c)).sum();
    let mut s = Search {
        ranges: sorted,
        chains: Vec::new(),
        choice: Vec::new(),
        best_cost: greedy_cost,
        best_choice: Vec::new(),
        lower_bound: live_lower_bound(sorted),
        nodes: 0,
    };
    if sorted.is_empty() || greedy_cost <= s.lower_bound {
        return greedy;
    }
    s.run();
    if s.best_choice.len() != sorted.len() {
        return greedy;
    }
    let n_chains = s.best_choice.iter().max().map_or(0, |&m| m + 1);
    let mut chains: Vec<Chain> = vec![Vec::new(); n_chains];
    for (i, &c) in s.best_choice.iter().enumerate() {
        chains[c].push(sorted[i].clone());
    }
    chains
}

/// Every member of a multi-member chain maps to the chain's last member (sorted by name).
pub fn get_blob_mapping(chains: &[Chain]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for c in chains {
        if let Some((last, _)) = c.last() {
            for (name, _) in &c[..c.len() - 1] {
                m.insert(name.clone(), last.clone());
            }
        }
    }
    m
}

/// Python's `compute_statistics`: bytes before (Σ sizes) and after (Σ chain max).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    pub baseline_nbytes: u64,
    pub optimized_nbytes: u64,
}

pub fn compute_statistics(chains: &[Chain]) -> Statistics {
    Statistics {
        baseline_nbytes: chains.iter().flatten().map(|(_, r)| size_of(r)).sum(),
        optimized_nbytes: chains.iter().map(|c| chain_max(c)).sum(),
    }
}

/// What `optimize_interference` returns.
#[derive(Clone, Debug)]
pub struct Optimization {
    /// The reordered, renamed net (or the reordered net unrenamed, with `warnings`).
    pub net: NetDef,
    /// Original op index of each op of `net`.
    pub order: Vec<usize>,
    pub blob_mapping: BTreeMap<String, String>,
    pub assignments: Vec<Vec<String>>,
    pub stats: Statistics,
    /// Verifier violations that made the rewrite be dropped (empty on success).
    pub warnings: Vec<String>,
}

/// Python's `optimize_interference`: reorder the ops by `ordering`, compute ranges, chain
/// them with `algo`, rename chains to their last member. `blob_sizes`, when given, must
/// size every name of the net.
pub fn optimize_interference(
    net: &NetDef,
    static_blobs: &[String],
    ordering: Ordering,
    blob_sizes: Option<&HashMap<String, u64>>,
    algo: AssignmentAlgorithm,
) -> Result<Optimization> {
    super::schema_check::check_schemas(net)?;
    let g = NetGraph::build(net);
    let edges = dependency_edges(&g);
    let order = match ordering {
        Ordering::Topological => topological_sort_traversal(g.ops.len(), &edges)?,
        Ordering::LongestPath => topological_sort_traversal_longest_path(g.ops.len(), &edges)?,
        Ordering::AsGiven => (0..g.ops.len()).collect(),
    };
    let mut reordered = net.clone();
    reordered.op = order.iter().map(|&i| net.op[i].clone()).collect();
    let ranges = compute_ranges(&reordered.op, blob_sizes)?;
    // Statics: the caller's, the external lists, subnet names, names never written or read
    // before their first write.
    let mut statics: HashSet<String> = static_blobs.iter().cloned().collect();
    statics.extend(net.external_input.iter().cloned());
    statics.extend(net.external_output.iter().cloned());
    let rg = NetGraph::build(&reordered);
    let mut first_read: Vec<Option<usize>> = vec![None; rg.num_names()];
    for (i, op) in rg.ops.iter().enumerate() {
        for &b in &op.subnet_names {
            statics.insert(rg.name(b).to_string());
        }
        for b in op_reads(&rg, i) {
            first_read[b as usize].get_or_insert(i);
        }
    }
    for (name, r) in &ranges {
        let read_first = rg
            .id(name)
            .and_then(|id| first_read[id as usize])
            .is_some_and(|fr| r.defined.is_none_or(|d| (fr as i64) < d));
        if r.defined.is_none() || read_first {
            statics.insert(name.clone());
        }
    }
    let chains = compute_assignments(&ranges, &statics, algo);
    let stats = compute_statistics(&chains);
    let blob_mapping = get_blob_mapping(&chains);
    let map: FastMap<&str, &str> = blob_mapping
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let renamed = apply_assignments(&reordered, &map)?;
    let statics_list: Vec<String> = statics.into_iter().collect();
    let violations = verify(&reordered, &renamed, &statics_list);
    let assignments = chains
        .iter()
        .map(|c| c.iter().map(|(n, _)| n.clone()).collect())
        .collect();
    if violations.is_empty() {
        Ok(Optimization {
            net: renamed,
            order,
            blob_mapping,
            assignments,
            stats,
            warnings: Vec::new(),
        })
    } else {
        Ok(Optimization {
            net: reordered,
            order,
            blob_mapping: BTreeMap::new(),
            assignments,
            stats,
            warnings: violations.into_iter().map(|v| v.0).collect(),
        })
    }
}
