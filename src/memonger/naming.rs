//! Size-aware name assignment for the planner (spec §5.3): every plannable activation joins
//! a chain (a final name); members of one chain have pairwise disjoint closed intervals and
//! one class (device, dtype). Cost of an assignment = Σ over chains of the largest member.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// One plannable activation as the algorithms see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub first: u32,
    pub last: u32,
    pub size: u64,
    /// Sharing class: equal classes may share (device and, unless allowed, dtype).
    pub class: u32,
    /// External output: may only be the last member of its chain.
    pub ext_out: bool,
    /// Keeps its own name (external output, blob a subnet references): a chain holds at
    /// most one pinned member and then takes its name.
    pub pinned: bool,
}

/// Chain index per item.
pub type Chains = Vec<u32>;

/// Σ over chains of the largest member, and the number of chains.
pub fn cost(items: &[Item], chains: &Chains) -> (u64, usize) {
    let n = chains.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut max = vec![0u64; n];
    for (it, &c) in items.iter().zip(chains) {
        max[c as usize] = max[c as usize].max(it.size);
    }
    (max.iter().sum(), n)
}

/// Left-edge colouring (items must be sorted by `first`): each item takes a free name of its
/// class whose current largest size is closest to its own (ties: the larger, then the
/// older name), else a new name. Reaches the count lower bound per class. O(n log n).
pub fn left_edge(items: &[Item]) -> Chains {
    let mut chains = vec![0u32; items.len()];
    let mut max: Vec<u64> = Vec::new();
    let mut class_of: Vec<u32> = Vec::new();
    let mut pinned: Vec<bool> = Vec::new();
    // Busy chains by the last op of their newest member.
    let mut busy: BinaryHeap<Reverse<(u32, u32)>> = BinaryHeap::new();
    // Free chains per class, keyed by (largest size, chain).
    let mut free: BTreeMap<u32, BTreeSet<(u64, u32)>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        while let Some(&Reverse((last, c))) = busy.peek() {
            if last >= it.first {
                break;
            }
            busy.pop();
            free.entry(class_of[c as usize])
                .or_default()
                .insert((max[c as usize], c));
        }
        let pick = free.get(&it.class).and_then(|set| {
            let ok = |k: &&(u64, u32)| !(it.pinned && pinned[k.1 as usize]);
            let ge = set.range((it.size, 0)..).find(ok).copied();
            let lt = set.range(..(it.size, 0)).rev().find(ok).copied();
            match (ge, lt) {
                (Some(g), Some(l)) => Some(if g.0 - it.size <= it.size - l.0 { g } else { l }),
                (g, l) => g.or(l),
            }
        });
        let c = match pick {
            Some(key) => {
                if let Some(set) = free.get_mut(&it.class) {
                    set.remove(&key);
                }
                key.1
            }
            None => {
                max.push(0);
                class_of.push(it.class);
                pinned.push(false);
                (max.len() - 1) as u32
            }
        };
        max[c as usize] = max[c as usize].max(it.size);
        pinned[c as usize] |= it.pinned;
        chains[i] = c;
        busy.push(Reverse((it.last, c)));
    }
    renumber(items, chains)
}

/// Greedy by size: items by size descending (ties: `first`, index) each join the
/// conflict-free chain of their class with the smallest largest size, else a new chain.
/// Chains are created in non-increasing size order, so the newest fitting chain is the
/// smallest; the scan costs O(chains) per item.
pub fn greedy_by_size(items: &[Item]) -> Chains {
    by_size_scored(items, |m, it| neighbours(m, it).map(|_| 0))
}

/// Renumbers chains in order of their first member's `first` (then item index), so equal
/// assignments compare equal and names are numbered by first write.
pub fn renumber(items: &[Item], chains: Chains) -> Chains {
    let n = chains.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut key: Vec<(u32, usize)> = vec![(u32::MAX, usize::MAX); n];
    for (i, (&c, it)) in chains.iter().zip(items).enumerate() {
        key[c as usize] = key[c as usize].min((it.first, i));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&c| key[c]);
    let mut new_id = vec![0u32; n];
    for (k, &c) in order.iter().enumerate() {
        new_id[c] = k as u32;
    }
    chains.iter().map(|&c| new_id[c as usize]).collect()
}

/// Checks an assignment: per chain one class, disjoint intervals, an external output only
/// last. Returns the first problem as (item, item) indices.
pub fn check(items: &[Item], chains: &Chains) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (chains[i], items[i].first, i));
    for w in order.windows(2) {
        let (a, b) = (w[0], w[1]);
        if chains[a] != chains[b] {
            continue;
        }
        let (x, y) = (items[a], items[b]);
        if x.class != y.class || x.last >= y.first || x.ext_out {
            return Some((a, b));
        }
    }
    // At most one pinned member per chain.
    let n = chains.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut pin: Vec<Option<usize>> = vec![None; n];
    for (i, (&c, it)) in chains.iter().zip(items).enumerate() {
        if it.pinned {
            if let Some(j) = pin[c as usize] {
                return Some((j, i));
            }
            pin[c as usize] = Some(i);
        }
    }
    None
}

/// Greedy by size with a time fit: like [`greedy_by_size`], but among the conflict-free
/// chains of the class the item goes where it leaves the least idle time next to its
/// neighbours (ties: the smaller chain). O(n · chains · log n).
pub fn greedy_by_size_time_fit(items: &[Item], horizon: u32) -> Chains {
    by_size_scored(items, |m, it| fit_gap(m, it, horizon))
}

/// Items by size descending (ties: `first`, index) each join the chain of their class with
/// the lowest `score` (`None`: the item cannot join it), scanning the newest (smallest)
/// chains first and keeping the first of equal scores (a score of 0 cannot be beaten, so
/// the scan stops there); no chain fits: a new one.
fn by_size_scored(
    items: &[Item],
    score: impl Fn(&BTreeMap<u32, u32>, &Item) -> Option<u64>,
) -> Chains {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (Reverse(items[i].size), items[i].first, i));
    let mut members: Vec<BTreeMap<u32, u32>> = Vec::new();
    let mut class_of: Vec<u32> = Vec::new();
    let mut pinned: Vec<bool> = Vec::new();
    let mut chains = vec![0u32; items.len()];
    for &i in &order {
        let it = items[i];
        let mut chosen: Option<(u64, usize)> = None;
        for c in (0..members.len()).rev() {
            if class_of[c] != it.class || (it.pinned && pinned[c]) {
                continue;
            }
            let Some(s) = score(&members[c], &it) else {
                continue;
            };
            if chosen.is_none_or(|(best, _)| s < best) {
                chosen = Some((s, c));
            }
            if s == 0 {
                break;
            }
        }
        let c = match chosen {
            Some((_, c)) => c,
            None => {
                members.push(BTreeMap::new());
                class_of.push(it.class);
                pinned.push(false);
                members.len() - 1
            }
        };
        pinned[c] |= it.pinned;
        members[c].insert(it.first, it.last);
        chains[i] = c as u32;
    }
    renumber(items, chains)
}

/// Idle time around `it` if it joined a chain with `m` (first -> last) members; `None` on a
/// conflict (or an external output that would not be last).
fn fit_gap(m: &BTreeMap<u32, u32>, it: &Item, horizon: u32) -> Option<u64> {
    let (pred_last, succ_first) = neighbours(m, it)?;
    let before = pred_last.map_or(it.first as u64, |l| (it.first - l) as u64);
    let after = succ_first.map_or(horizon.saturating_sub(it.last) as u64, |f| {
        (f - it.last) as u64
    });
    Some(before + after)
}

/// The `last` of the member just before `it` and the `first` of the one just after it, if
/// `it` can join a chain with `m` (first -> last) members: `None` on an overlap, or for an
/// external output that would not be the chain's last member.
pub(crate) fn neighbours(m: &BTreeMap<u32, u32>, it: &Item) -> Option<(Option<u32>, Option<u32>)> {
    let pred = m.range(..=it.first).next_back().map(|(_, &last)| last);
    let succ = m.range(it.first..).next().map(|(&first, _)| first);
    if pred.is_some_and(|last| last >= it.first) || succ.is_some_and(|f| f <= it.last) {
        return None;
    }
    if it.ext_out && succ.is_some() {
        return None;
    }
    Some((pred, succ))
}

/// Local search on an assignment: repeatedly moves single items to the other chain of their
/// class that lowers Σ max the most (without conflicts), until no move helps or `max_passes`
/// passes ran. Never makes the cost worse. O(passes · n · chains · log n).
pub fn improve(items: &[Item], chains: &Chains, max_passes: usize) -> Chains {
    let n_chains = chains.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut members: Vec<BTreeMap<u32, (u32, usize)>> = vec![BTreeMap::new(); n_chains];
    let mut sizes: Vec<BTreeMap<u64, u32>> = vec![BTreeMap::new(); n_chains];
    let mut class_of = vec![0u32; n_chains];
    let mut pins = vec![0u32; n_chains];
    let mut chain = chains.clone();
    for (i, (&c, it)) in chains.iter().zip(items).enumerate() {
        pins[c as usize] += it.pinned as u32;
        members[c as usize].insert(it.first, (it.last, i));
        *sizes[c as usize].entry(it.size).or_default() += 1;
        class_of[c as usize] = it.class;
    }
    let max_of = |s: &BTreeMap<u64, u32>| s.keys().next_back().copied().unwrap_or(0);
    let fits = |m: &BTreeMap<u32, (u32, usize)>, it: &Item| {
        let pred = m.range(..=it.first).next_back();
        let succ = m.range(it.first..).next();
        !(pred.is_some_and(|(_, &(last, _))| last >= it.first)
            || succ.is_some_and(|(&f, _)| f <= it.last)
            || (it.ext_out && succ.is_some())
            || m.values()
                .next_back()
                .is_some_and(|&(_, j)| items[j].ext_out && items[j].first < it.first))
    };
    for _ in 0..max_passes {
        let mut improved = false;
        for i in 0..items.len() {
            let it = items[i];
            let c = chain[i] as usize;
            // Gain from leaving c.
            let old_c = max_of(&sizes[c]);
            let new_c = {
                let s = &sizes[c];
                if s.get(&it.size) == Some(&1) && old_c == it.size {
                    s.keys().rev().nth(1).copied().unwrap_or(0)
                } else {
                    old_c
                }
            };
            let gain = old_c - new_c;
            if gain == 0 {
                continue;
            }
            let mut best: Option<(u64, usize)> = None;
            for d in 0..n_chains {
                if d == c || class_of[d] != it.class || members[d].is_empty() {
                    continue;
                }
                let old_d = max_of(&sizes[d]);
                let extra = it.size.saturating_sub(old_d);
                if extra >= gain
                    || best.is_some_and(|(e, _)| extra >= e)
                    || (it.pinned && pins[d] > 0)
                {
                    continue;
                }
                if fits(&members[d], &it) {
                    best = Some((extra, d));
                }
            }
            if let Some((_, d)) = best {
                members[c].remove(&it.first);
                let s = sizes[c].entry(it.size).or_default();
                *s -= 1;
                if *s == 0 {
                    sizes[c].remove(&it.size);
                }
                members[d].insert(it.first, (it.last, i));
                *sizes[d].entry(it.size).or_default() += 1;
                pins[c] -= it.pinned as u32;
                pins[d] += it.pinned as u32;
                chain[i] = d as u32;
                improved = true;
            }
        }
        // Chain ejection: move every member of one chain into others (largest first, each
        // where it costs least); keep the result only when Σ max drops.
        let mut order: Vec<usize> = (0..n_chains).filter(|&c| !members[c].is_empty()).collect();
        order.sort_by_key(|&c| (max_of(&sizes[c]), c));
        for c in order {
            if members[c].is_empty() {
                continue;
            }
            let mut leaving: Vec<usize> = members[c].values().map(|&(_, i)| i).collect();
            leaving.sort_by_key(|&i| (Reverse(items[i].size), items[i].first, i));
            let before: u64 = max_of(&sizes[c]);
            let mut moved: Vec<(usize, usize, u64)> = Vec::new(); // (item, to, old max of to)
            let mut extra_total = 0u64;
            let mut ok = true;
            for &i in &leaving {
                let it = items[i];
                let mut best: Option<(u64, usize)> = None;
                for d in 0..n_chains {
                    if d == c || class_of[d] != it.class || members[d].is_empty() {
                        continue;
                    }
                    let extra = it.size.saturating_sub(max_of(&sizes[d]));
                    if best.is_some_and(|(e, _)| extra >= e) || (it.pinned && pins[d] > 0) {
                        continue;
                    }
                    if fits(&members[d], &it) {
                        best = Some((extra, d));
                    }
                }
                let Some((extra, d)) = best else {
                    ok = false;
                    break;
                };
                extra_total += extra;
                if extra_total >= before {
                    ok = false;
                }
                moved.push((i, d, max_of(&sizes[d])));
                pins[d] += it.pinned as u32;
                members[d].insert(it.first, (it.last, i));
                *sizes[d].entry(it.size).or_default() += 1;
                if !ok {
                    break;
                }
            }
            if ok {
                for &(i, d, _) in &moved {
                    members[c].remove(&items[i].first);
                    pins[c] -= items[i].pinned as u32;
                    chain[i] = d as u32;
                }
                sizes[c].clear();
                improved = true;
            } else {
                for &(i, d, _) in moved.iter().rev() {
                    let it = items[i];
                    pins[d] -= it.pinned as u32;
                    members[d].remove(&it.first);
                    let s = sizes[d].entry(it.size).or_default();
                    *s -= 1;
                    if *s == 0 {
                        sizes[d].remove(&it.size);
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
    // Drop emptied chains.
    let mut remap = vec![u32::MAX; n_chains];
    let mut next = 0;
    for &c in &chain {
        if remap[c as usize] == u32::MAX {
            remap[c as usize] = next;
            next += 1;
        }
    }
    renumber(items, chain.iter().map(|&c| remap[c as usize]).collect())
}

/// Chains read off an offset plan: items whose byte ranges share a point overlap in bytes,
/// so they are pairwise disjoint in time and may share a name. A minimum set of points
/// piercing every byte range (greedy by right end) becomes the names; each item (largest
/// first) joins the point inside its range whose name is already largest, so sizes stay
/// together. Runs per class; an external output only joins a name as its last member.
/// O(n log n) after the placement.
pub fn from_offsets(items: &[Item], offsets: &[u64], bytes: &[u64]) -> Chains {
    let mut chains = vec![u32::MAX; items.len()];
    let mut next = 0u32;
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        by_class.entry(it.class).or_default().push(i);
    }
    for idx in by_class.values() {
        // Piercing points: sort by right end, take the end - 1 of every range not yet hit.
        let mut by_end: Vec<usize> = idx.iter().copied().filter(|&i| bytes[i] > 0).collect();
        by_end.sort_by_key(|&i| (offsets[i] + bytes[i], offsets[i], i));
        let mut points: Vec<u64> = Vec::new();
        for &i in &by_end {
            if points.last().is_none_or(|&p| p < offsets[i]) {
                points.push(offsets[i] + bytes[i] - 1);
            }
        }
        let mut point_chain: Vec<u32> = Vec::new();
        let mut point_max: Vec<u64> = vec![0; points.len()];
        for _ in &points {
            point_chain.push(next);
            next += 1;
        }
        let mut members: BTreeMap<u32, BTreeMap<u32, u32>> = BTreeMap::new();
        let mut pinned_chains: BTreeSet<u32> = BTreeSet::new();
        let mut order: Vec<usize> = idx.clone();
        order.sort_by_key(|&i| (Reverse(items[i].size), items[i].first, i));
        for &i in &order {
            let it = items[i];
            let (lo, hi) = (offsets[i], offsets[i] + bytes[i].max(1) - 1);
            let start = points.partition_point(|&p| p < lo);
            let mut best: Option<usize> = None;
            for (p, &pt) in points.iter().enumerate().skip(start) {
                if pt > hi {
                    break;
                }
                let m = members.get(&point_chain[p]);
                if m.is_some_and(|m| fit_gap(m, &it, u32::MAX).is_none())
                    || (it.pinned && pinned_chains.contains(&point_chain[p]))
                {
                    continue;
                }
                if best.is_none_or(|b| point_max[p] > point_max[b]) {
                    best = Some(p);
                }
            }
            let c = match best {
                Some(p) => {
                    point_max[p] = point_max[p].max(it.size);
                    point_chain[p]
                }
                None => {
                    next += 1;
                    next - 1
                }
            };
            members.entry(c).or_default().insert(it.first, it.last);
            if it.pinned {
                pinned_chains.insert(c);
            }
            chains[i] = c;
        }
    }
    let mut remap: BTreeMap<u32, u32> = BTreeMap::new();
    let chains: Chains = chains
        .iter()
        .map(|&c| {
            let k = remap.len() as u32;
            *remap.entry(c).or_insert(k)
        })
        .collect();
    renumber(items, chains)
}

/// Greedy over size buckets: items by bucket (sizes within a factor `ratio` share one,
/// largest first), then by `first`, so items of similar size are packed in time order like
/// interval scheduling. Each item joins the conflict-free chain of its class that costs the
/// least extra (Σ max growth), ties broken by the least idle time around it; a new chain
/// only when none fits. O(n · chains · log n).
pub fn greedy_bucketed(items: &[Item], ratio: f64, horizon: u32) -> Chains {
    let bucket = |s: u64| -> i64 {
        if s == 0 || ratio <= 1.0 {
            s as i64
        } else {
            ((s as f64).ln() / ratio.ln()).floor() as i64
        }
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (Reverse(bucket(items[i].size)), items[i].first, i));
    let mut members: Vec<BTreeMap<u32, u32>> = Vec::new();
    let mut max: Vec<u64> = Vec::new();
    let mut class_of: Vec<u32> = Vec::new();
    let mut pinned: Vec<bool> = Vec::new();
    let mut chains = vec![0u32; items.len()];
    for &i in &order {
        let it = items[i];
        let mut chosen: Option<(u64, u64, usize)> = None;
        for c in 0..members.len() {
            if class_of[c] != it.class || (it.pinned && pinned[c]) {
                continue;
            }
            let Some(gap) = fit_gap(&members[c], &it, horizon) else {
                continue;
            };
            let extra = it.size.saturating_sub(max[c]);
            if chosen.is_none_or(|(e, g, _)| (extra, gap) < (e, g)) {
                chosen = Some((extra, gap, c));
            }
        }
        let c = match chosen {
            Some((_, _, c)) => c,
            None => {
                members.push(BTreeMap::new());
                max.push(0);
                class_of.push(it.class);
                pinned.push(false);
                members.len() - 1
            }
        };
        pinned[c] |= it.pinned;
        members[c].insert(it.first, it.last);
        max[c] = max[c].max(it.size);
        chains[i] = c as u32;
    }
    renumber(items, chains)
}

/// A lower bound on Σ max for any valid assignment (the "layered clique" bound): for every
/// size threshold s, the items of one class with size ≥ s that are alive at one op need
/// distinct names, each of largest size ≥ s; so at least ω(s) names cost ≥ s, and
/// Σ max = ∫₀^∞ #{names with max ≥ s} ds ≥ ∫₀^∞ ω(s) ds. It is never below the peak
/// live bytes (the op attaining it is one clique at every threshold). Items are added
/// largest first into a range-add/max segment tree over ops: O(n log N).
pub fn layered_lower_bound(items: &[Item]) -> u64 {
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        by_class.entry(it.class).or_default().push(i);
    }
    let horizon = items
        .iter()
        .map(|it| it.last as usize + 1)
        .max()
        .unwrap_or(0);
    let mut total = 0u64;
    for idx in by_class.values() {
        let mut tree = MaxAddTree::new(horizon);
        let mut order = idx.clone();
        order.sort_by_key(|&i| Reverse(items[i].size));
        let mut k = 0;
        while k < order.len() {
            let s = items[order[k]].size;
            while k < order.len() && items[order[k]].size == s {
                let it = items[order[k]];
                tree.add(it.first as usize, it.last as usize, 1);
                k += 1;
            }
            let next = order.get(k).map_or(0, |&i| items[i].size);
            total += tree.max() as u64 * (s - next);
        }
    }
    total
}

/// Segment tree over `0..n` with range add and global max.
pub(crate) struct MaxAddTree {
    n: usize,
    max: Vec<i64>,
    add: Vec<i64>,
}

impl MaxAddTree {
    pub(crate) fn new(n: usize) -> Self {
        let n = n.max(1);
        MaxAddTree {
            n,
            max: vec![0; 4 * n],
            add: vec![0; 4 * n],
        }
    }
    pub(crate) fn add(&mut self, lo: usize, hi: usize, v: i64) {
        self.rec(1, 0, self.n - 1, lo, hi.min(self.n - 1), v);
    }
    fn rec(&mut self, node: usize, l: usize, r: usize, lo: usize, hi: usize, v: i64) {
        if hi < l || r < lo {
            return;
        }
        if lo <= l && r <= hi {
            self.max[node] += v;
            self.add[node] += v;
            return;
        }
        let m = (l + r) / 2;
        self.rec(2 * node, l, m, lo, hi, v);
        self.rec(2 * node + 1, m + 1, r, lo, hi, v);
        self.max[node] = self.add[node] + self.max[2 * node].max(self.max[2 * node + 1]);
    }
    pub(crate) fn max(&self) -> i64 {
        self.max[1]
    }
}
