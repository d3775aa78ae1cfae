//! Window repair of a large arena plan: the exact search (`arena_search`) run on small time
//! windows around the entries that stick out above a target, with every entry around the
//! window kept where it is.
//!
//! On large nets (thousands of buffers, short lifetimes) a greedy plan is good almost
//! everywhere and loses 10–20 % to fragmentation at a few places only, and the exact search
//! cannot take the whole net. So, for a target capacity (from the peak-live lower bound up):
//! take the highest entry whose top is above it; move it alone into the lowest gap along
//! its lifetime if one is under the target; else free every entry inside a time window
//! around it plus the entries above the target that meet the window; keep the entries
//! around them fixed; place the free ones under the target with [`fits_around`]. A window
//! that does not fit within its node limit grows (twice the ops, up to `MAX_MARGIN` ops on
//! each side); a window with more than `MAX_WINDOW_ENTRIES` free entries frees only the
//! highest of them (a long-lived entry spans many). When even the widest fails, the target
//! rises (1/512 of the bound, doubling after each failure in a row up to 4/512) and the same entry is
//! tried again. Entries are taken highest first, and a repaired window stays under any
//! later (higher) target, so each repair lowers the arena and a search cut short by its
//! limits still returns the best arena reached.
//!
//! Node limits, not the clock, decide every step, so the result is the same on any machine
//! whenever the caller's deadline does not cut it short. Never returns a larger arena than
//! the one it gets.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::arena::{Entry, Placement, check};
use super::arena_search::{Decision, Limits, fits_around, lower_bound};

/// Most free entries in one window.
pub const MAX_WINDOW_ENTRIES: usize = 320;
/// Ops on each side of the first window around an entry, and of the widest.
const FIRST_MARGIN: u32 = 8;
const MAX_MARGIN: u32 = 512;
/// Largest raise of the target after failures in a row, in steps of 1/512 of the bound.
const MAX_RAISE_STEPS: u64 = 4;
/// Search nodes per window try, per free entry.
const NODES_PER_ENTRY: u64 = 40;

/// Outcome of [`repair`].
#[derive(Clone, Debug)]
pub struct Repaired {
    pub placement: Placement,
    /// Search nodes spent.
    pub nodes: u64,
    /// Windows re-placed.
    pub windows: usize,
}

/// Entries overlapping an op range, found through a max-tree over entries sorted by first
/// op: O(log n + answers) per query.
struct TimeIndex {
    /// Entry indices sorted by (first, index).
    by_first: Vec<usize>,
    firsts: Vec<u32>,
    /// Max `last` per node of an implicit segment tree over `by_first` (1-based heap).
    max_last: Vec<u32>,
    size: usize,
}

impl TimeIndex {
    fn new(entries: &[Entry]) -> Self {
        let mut by_first: Vec<usize> = (0..entries.len()).collect();
        by_first.sort_by_key(|&i| (entries[i].first, i));
        let firsts = by_first.iter().map(|&i| entries[i].first).collect();
        let size = by_first.len().next_power_of_two().max(1);
        let mut max_last = vec![0u32; 2 * size];
        for (k, &i) in by_first.iter().enumerate() {
            max_last[size + k] = entries[i].last;
        }
        for k in (1..size).rev() {
            max_last[k] = max_last[2 * k].max(max_last[2 * k + 1]);
        }
        TimeIndex {
            by_first,
            firsts,
            max_last,
            size,
        }
    }

    /// Every entry with `first <= hi` and `last >= lo`, in `by_first` order.
    fn overlapping(&self, lo: u32, hi: u32, out: &mut Vec<usize>) {
        out.clear();
        let end = self.firsts.partition_point(|&f| f <= hi);
        if end > 0 {
            self.collect(1, 0, self.size, end, lo, out);
        }
    }

    fn collect(&self, node: usize, l: usize, r: usize, end: usize, lo: u32, out: &mut Vec<usize>) {
        if l >= end || self.max_last[node] < lo {
            return;
        }
        if r - l == 1 {
            out.push(self.by_first[l]);
            return;
        }
        let m = (l + r) / 2;
        self.collect(2 * node, l, m, end, lo, out);
        self.collect(2 * node + 1, m, r, end, lo, out);
    }
}

/// The lowest offset at which entry `v` meets none of the entries `around` (those alive
/// with it, `v` among them) and stays at or under `cap`, if any.
fn lowest_gap(entries: &[Entry], off: &[u64], around: &[usize], v: usize, cap: u64) -> Option<u64> {
    let mut busy: Vec<(u64, u64)> = around
        .iter()
        .filter(|&&i| i != v && entries[i].bytes > 0)
        .map(|&i| (off[i], off[i] + entries[i].bytes))
        .collect();
    busy.sort_unstable();
    let size = entries[v].bytes;
    let mut cursor = 0u64;
    for (lo, hi) in busy {
        if lo >= cursor + size {
            break;
        }
        cursor = cursor.max(hi);
    }
    (cursor + size <= cap).then_some(cursor)
}

/// Lowers the arena of `start` (a valid placement of `entries`) by window repairs, within
/// `limits`. Never returns a larger arena than `start`.
pub fn repair(entries: &[Entry], start: Placement, limits: &Limits) -> Repaired {
    let lb = lower_bound(entries);
    let mut nodes = 0u64;
    let mut windows = 0usize;
    if start.arena_bytes <= lb || entries.is_empty() {
        return Repaired {
            placement: start,
            nodes,
            windows,
        };
    }
    let index = TimeIndex::new(entries);
    let horizon = entries.iter().map(|e| e.last).max().unwrap_or(0);
    let mut off = start.offsets.clone();
    let top = |off: &[u64], i: usize| off[i] + entries[i].bytes;
    // Entries above the bound, highest first (ties: earliest): each repair lowers the
    // arena to max(target, the next one's top), so a search cut short still helps.
    let mut high: BinaryHeap<(u64, Reverse<usize>)> = (0..entries.len())
        .filter(|&i| top(&off, i) > lb)
        .map(|i| (top(&off, i), Reverse(i)))
        .collect();
    // Raise the target by 1/512 of the bound at a time.
    let step = (lb / 512).max(1);
    let mut raise = step;
    let mut target = lb;
    let mut around: Vec<usize> = Vec::new();
    let mut span: Vec<usize> = Vec::new();
    let mut free_mark = vec![false; entries.len()];
    'next: while let Some(&(t, Reverse(v))) = high.peek() {
        if t <= target {
            break;
        }
        if top(&off, v) != t {
            // Moved by an earlier window (under the target then).
            high.pop();
            continue;
        }
        if nodes >= limits.max_nodes || limits.out_of_time() {
            break;
        }
        // Alone: the lowest gap under the target along its lifetime.
        index.overlapping(entries[v].first, entries[v].last, &mut around);
        if let Some(o) = lowest_gap(entries, &off, &around, v, target) {
            off[v] = o;
            continue;
        }
        // Windows of growing width around `v`.
        let mut margin = FIRST_MARGIN;
        loop {
            let lo = entries[v].first.saturating_sub(margin);
            let hi = entries[v].last.saturating_add(margin).min(horizon);
            index.overlapping(lo, hi, &mut around);
            let mut free: Vec<usize> = around
                .iter()
                .copied()
                .filter(|&i| {
                    (entries[i].first >= lo && entries[i].last <= hi) || top(&off, i) > target
                })
                .collect();
            if free.len() > MAX_WINDOW_ENTRIES {
                // Too many: the highest ones (every entry above the target among them)
                // are freed, the layer under them stays.
                free.sort_by_key(|&i| (Reverse(top(&off, i)), i));
                free.truncate(MAX_WINDOW_ENTRIES);
                if top(&off, free[free.len() - 1]) > target {
                    break;
                }
            }
            // Fixed: every other entry alive during the free entries' span.
            let span_lo = free.iter().map(|&i| entries[i].first).min().unwrap_or(lo);
            let span_hi = free.iter().map(|&i| entries[i].last).max().unwrap_or(hi);
            index.overlapping(span_lo, span_hi, &mut span);
            for &i in &free {
                free_mark[i] = true;
            }
            let sub: Vec<Entry> = span.iter().map(|&i| entries[i]).collect();
            let fixed: Vec<Option<u64>> = span
                .iter()
                .map(|&i| (!free_mark[i]).then_some(off[i]))
                .collect();
            for &i in &free {
                free_mark[i] = false;
            }
            let try_limits = Limits {
                deadline: limits.deadline,
                max_nodes: (nodes + NODES_PER_ENTRY * free.len() as u64 + 1000)
                    .min(limits.max_nodes),
            };
            if let Decision::Fits(o) = fits_around(&sub, &fixed, target, &try_limits, &mut nodes) {
                for (s, &i) in span.iter().enumerate() {
                    off[i] = o[s];
                }
                windows += 1;
                raise = step;
                continue 'next;
            }
            if nodes >= limits.max_nodes || limits.out_of_time() {
                break 'next;
            }
            if (lo == 0 && hi == horizon) || margin >= MAX_MARGIN {
                break;
            }
            margin = margin.saturating_mul(2);
        }
        // No window fits under this target: raise it (by twice as much after each failure
        // in a row) and try the same entry again.
        target += raise;
        raise = raise.saturating_mul(2).min(MAX_RAISE_STEPS * step);
    }
    let arena = (0..entries.len()).map(|i| top(&off, i)).max().unwrap_or(0);
    let placement = if arena < start.arena_bytes && check(entries, &off).is_none() {
        Placement {
            offsets: off,
            arena_bytes: arena,
        }
    } else {
        start
    };
    Repaired {
        placement,
        nodes,
        windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memonger::arena::sweep_best_fit;

    /// Entries like issue 17's random DAG nets: one per op, alive up to 40 ops, 64 B to
    /// 16 KiB in 64-byte steps, and one in 50 alive up to 120 ops.
    fn random_entries(n: usize, seed: u64) -> Vec<Entry> {
        let mut next = crate::memonger::test_rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        (0..n as u32)
            .map(|t| {
                let life = if next(50) == 0 { next(120) } else { next(40) } as u32;
                Entry {
                    first: t,
                    last: t + life,
                    bytes: 64 * (1 + next(256)),
                }
            })
            .collect()
    }

    fn limits(max_nodes: u64) -> Limits {
        Limits {
            deadline: None,
            max_nodes,
        }
    }

    #[test]
    fn repair_brings_a_fragmented_sweep_near_the_bound_and_stays_valid() {
        let e = random_entries(1500, 19);
        let start = sweep_best_fit(&e);
        let lb = lower_bound(&e);
        assert!(
            start.arena_bytes as f64 > 1.05 * lb as f64,
            "no fragmentation to fix"
        );
        let r = repair(&e, start.clone(), &limits(200_000));
        assert!(check(&e, &r.placement.offsets).is_none());
        let top = e
            .iter()
            .zip(&r.placement.offsets)
            .map(|(x, &o)| o + x.bytes)
            .max();
        assert_eq!(top, Some(r.placement.arena_bytes));
        assert!(r.windows > 0);
        assert!(
            r.placement.arena_bytes as f64 <= 1.02 * lb as f64,
            "{} vs {lb}",
            r.placement.arena_bytes
        );
        // Node limits decide: the same input gives the same plan.
        let again = repair(&e, start, &limits(200_000));
        assert_eq!(again.placement, r.placement);
        assert_eq!(again.nodes, r.nodes);
    }

    #[test]
    fn repair_never_returns_a_larger_arena_and_respects_its_node_limit() {
        for seed in [1, 2, 3] {
            let e = random_entries(400, seed);
            let start = sweep_best_fit(&e);
            for max_nodes in [0, 1, 500, 10_000] {
                let r = repair(&e, start.clone(), &limits(max_nodes));
                assert!(r.placement.arena_bytes <= start.arena_bytes);
                assert!(r.placement.arena_bytes >= lower_bound(&e));
                assert!(check(&e, &r.placement.offsets).is_none());
                assert!(r.nodes <= max_nodes, "{} > {max_nodes}", r.nodes);
            }
        }
    }

    #[test]
    fn time_index_finds_exactly_the_overlapping_entries() {
        let e = random_entries(500, 5);
        let index = TimeIndex::new(&e);
        let mut out = Vec::new();
        for (lo, hi) in [(0, 0), (10, 20), (100, 100), (450, 900), (2000, 3000)] {
            index.overlapping(lo, hi, &mut out);
            let mut got = out.clone();
            got.sort_unstable();
            let want: Vec<usize> = (0..e.len())
                .filter(|&i| e[i].first <= hi && e[i].last >= lo)
                .collect();
            assert_eq!(got, want, "{lo}..{hi}");
        }
    }
}
