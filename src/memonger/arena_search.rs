//! Exact arena search: branch and bound over canonical placements, after the published
//! algorithm of M. D. Moffitt, "MiniMalloc: A Lightweight Memory Allocator for
//! Hardware-Accelerated Machine Learning" (ASPLOS 2023), written for this planner.
//!
//! The decision problem "do these entries fit in `capacity` bytes?" is searched over
//! *canonical* placements: entries are placed in non-decreasing offset order, each at the
//! lowest offset left free by those placed before (its *viable* offset). Every optimal plan
//! can be pushed down into such a placement, so the search is complete. Pruning:
//! - monotonic floor: after an entry goes at offset `o`, nothing later goes below `o`;
//! - section inference: in every time section, the floor plus the bytes of the unplaced
//!   entries crossing it must fit under the capacity;
//! - dominance: an entry may go at `o` only if no other unplaced entry would fit entirely
//!   below `o` (such a plan has an equal one with that entry moved down, found elsewhere);
//! - symmetry: entries placed at one offset are placed in rank order.
//!
//! Entries may be *fixed* at an offset ([`fits_around`]: the obstacles of a window repair,
//! `arena_repair`). A fixed entry takes its turn in the offset order like the others: it is
//! placed when nothing else is placed below it, and a free entry may go only where it stays
//! below every unplaced fixed entry it meets in time. Pushing the free entries of any plan
//! down keeps the fixed ones where they are, so the search stays complete.
//!
//! [`minimize`] drives the decision search from the peak-live lower bound upwards and from
//! the greedy arena downwards, and never returns a placement worse than the one it gets.

use std::time::Instant;

use super::arena::{Entry, Placement, check};

/// When a search gives up: a wall-clock deadline (the caller's time budget) and a budget
/// of placements tried. The node budget makes results reproducible on any machine; the
/// deadline bounds the time on a slow one.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub deadline: Option<Instant>,
    pub max_nodes: u64,
}

impl Limits {
    /// Checked per node: the clock is read every 256 nodes.
    pub(crate) fn expired(&self, nodes: u64) -> bool {
        nodes >= self.max_nodes || (nodes % 256 == 0 && self.out_of_time())
    }
    pub(crate) fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Answer of one decision search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A placement whose peak is at most the capacity (offsets per entry).
    Fits(Vec<u64>),
    /// No placement fits: proven by exhausting the search.
    Infeasible,
    /// The limits ran out first.
    Unknown,
}

/// Most pairs of entries alive together that the search indexes; larger problems are left
/// to the heuristics.
const MAX_OVERLAP_PAIRS: usize = 20_000_000;

/// The static part of a problem: entries of non-zero size over compressed time sections.
struct Problem {
    /// Index into the caller's entries.
    orig: Vec<usize>,
    size: Vec<u64>,
    /// First and last section each entry covers.
    lo: Vec<u32>,
    hi: Vec<u32>,
    /// Entries alive together with each entry.
    adj: Vec<Vec<u32>>,
    sections: usize,
    /// Offset of each fixed entry (`None`: free).
    fixed: Vec<Option<u64>>,
    /// Fixed entries by (offset, rank): the order they are placed in.
    fixed_order: Vec<u32>,
    /// Per entry, the fixed entries alive with it by (offset, rank).
    fixed_adj: Vec<Vec<u32>>,
    /// Priority among candidates at one offset: largest area (bytes × sections) first.
    /// Entries placed at one offset go in this order (symmetry), so the first dive of the
    /// search is never cut by the symmetry rule.
    rank: Vec<u32>,
}

impl Problem {
    /// `fixed[i]`: the offset entry `i` must keep (none: every entry is free).
    fn build(entries: &[Entry], fixed: &[Option<u64>]) -> Option<Problem> {
        let orig: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].bytes > 0)
            .collect();
        // Section boundaries: every first op and every op after a last one.
        let mut points: Vec<u64> = orig
            .iter()
            .flat_map(|&i| [entries[i].first as u64, entries[i].last as u64 + 1])
            .collect();
        points.sort_unstable();
        points.dedup();
        let sec = |p: u64| points.partition_point(|&x| x < p) as u32;
        let lo: Vec<u32> = orig.iter().map(|&i| sec(entries[i].first as u64)).collect();
        let hi: Vec<u32> = orig
            .iter()
            .map(|&i| sec(entries[i].last as u64 + 1) - 1)
            .collect();
        let n = orig.len();
        let mut by_start: Vec<u32> = (0..n as u32).collect();
        by_start.sort_by_key(|&i| (lo[i as usize], i));
        let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut active: Vec<u32> = Vec::new();
        let mut pairs = 0usize;
        let is_fixed = |i: u32| fixed.get(orig[i as usize]).copied().flatten().is_some();
        for &i in &by_start {
            active.retain(|&j| hi[j as usize] >= lo[i as usize]);
            // Two fixed entries never need each other.
            let fi = is_fixed(i);
            for &j in &active {
                if fi && is_fixed(j) {
                    continue;
                }
                pairs += 1;
                adj[i as usize].push(j);
                adj[j as usize].push(i);
            }
            if pairs > MAX_OVERLAP_PAIRS {
                return None;
            }
            active.push(i);
        }
        let size: Vec<u64> = orig.iter().map(|&i| entries[i].bytes).collect();
        let mut by_area: Vec<usize> = (0..n).collect();
        by_area.sort_by_key(|&i| {
            let area = size[i] as u128 * (hi[i] - lo[i] + 1) as u128;
            (std::cmp::Reverse(area), i)
        });
        let mut rank = vec![0u32; n];
        for (r, &i) in by_area.iter().enumerate() {
            rank[i] = r as u32;
        }
        let fixed: Vec<Option<u64>> = orig
            .iter()
            .map(|&i| fixed.get(i).copied().flatten())
            .collect();
        let key = |&i: &u32| (fixed[i as usize], rank[i as usize]);
        let mut fixed_order: Vec<u32> = (0..n as u32)
            .filter(|&i| fixed[i as usize].is_some())
            .collect();
        fixed_order.sort_by_key(key);
        let fixed_adj: Vec<Vec<u32>> = adj
            .iter()
            .map(|a| {
                let mut f: Vec<u32> = a
                    .iter()
                    .copied()
                    .filter(|&j| fixed[j as usize].is_some())
                    .collect();
                f.sort_by_key(key);
                f
            })
            .collect();
        Some(Problem {
            size,
            rank,
            fixed,
            fixed_order,
            fixed_adj,
            orig,
            lo,
            hi,
            adj,
            sections: points.len().saturating_sub(1),
        })
    }
}

/// Undo log entries.
enum Undo {
    Floor(u32, u64),
    Viable(u32, u64),
}

/// One level of the search: the candidates for the next placement.
struct Frame {
    cands: Vec<u32>,
    next: usize,
    /// State when the frame was opened.
    trail: usize,
    floor_all: u64,
    last: Option<(u64, u32)>,
    fixed_next: usize,
    /// Candidate currently placed from this frame.
    chosen: Option<u32>,
}

struct Search<'a> {
    p: &'a Problem,
    capacity: u64,
    placed: Vec<bool>,
    offset: Vec<u64>,
    /// Top of the placed entries per section (lowest free offset there).
    floor: Vec<u64>,
    /// Lowest free offset over each entry's sections, ignoring `floor_all`.
    viable: Vec<u64>,
    /// Bytes of unplaced free entries per section.
    remaining: Vec<u64>,
    /// Bytes of unplaced fixed entries per section.
    remaining_fixed: Vec<u64>,
    /// Fixed entries placed: a prefix of `Problem::fixed_order`.
    fixed_next: usize,
    /// Monotonic floor: the offset of the last placement.
    floor_all: u64,
    /// (offset, rank) of the last placement: equal offsets go in rank order.
    last: Option<(u64, u32)>,
    placed_count: usize,
    trail: Vec<Undo>,
    /// Scratch: lowest offset an unplaced entry crossing each section can take.
    low: Vec<u64>,
}

impl<'a> Search<'a> {
    fn new(p: &'a Problem, capacity: u64) -> Self {
        let n = p.size.len();
        let mut remaining = vec![0u64; p.sections];
        let mut remaining_fixed = vec![0u64; p.sections];
        for i in 0..n {
            let r = if p.fixed[i].is_some() {
                &mut remaining_fixed
            } else {
                &mut remaining
            };
            for s in p.lo[i]..=p.hi[i] {
                r[s as usize] += p.size[i];
            }
        }
        Search {
            p,
            capacity,
            placed: vec![false; n],
            offset: vec![0; n],
            floor: vec![0; p.sections],
            viable: vec![0; n],
            remaining,
            remaining_fixed,
            fixed_next: 0,
            floor_all: 0,
            last: None,
            placed_count: 0,
            trail: Vec::new(),
            low: vec![0; p.sections],
        }
    }

    fn eff(&self, i: usize) -> u64 {
        self.viable[i].max(self.floor_all)
    }

    /// Offset of the next fixed entry to place (every unplaced one is at or above it).
    fn next_fixed(&self) -> Option<(u64, u32)> {
        let &b = self.p.fixed_order.get(self.fixed_next)?;
        Some((self.p.fixed[b as usize]?, b))
    }

    /// A free entry may go at `o` when it stays below every unplaced fixed entry it meets
    /// in time, and not above the next fixed entry (offsets are placed in order).
    fn clear_of_fixed(&self, i: usize, o: u64, next_fixed: Option<(u64, u32)>) -> bool {
        if next_fixed.is_some_and(|(f, _)| o > f) {
            return false;
        }
        let top = o + self.p.size[i];
        // Placed fixed entries are a prefix of each list (same order).
        self.p.fixed_adj[i]
            .iter()
            .find(|&&b| !self.placed[b as usize])
            .is_none_or(|&b| self.p.fixed[b as usize].is_some_and(|f| top <= f))
    }

    /// Unplaced entries that may go next, best first: no other unplaced entry fits wholly
    /// below their offset (dominance), and equal offsets keep index order (symmetry).
    fn candidates(&self) -> Vec<u32> {
        let n = self.p.size.len();
        let next_fixed = self.next_fixed();
        let (mut m1, mut m1_idx, mut m2) = (u64::MAX, usize::MAX, u64::MAX);
        for i in 0..n {
            if self.placed[i] || self.p.fixed[i].is_some() {
                continue;
            }
            let top = self.eff(i) + self.p.size[i];
            if top < m1 {
                m2 = m1;
                m1 = top;
                m1_idx = i;
            } else if top < m2 {
                m2 = top;
            }
        }
        let mut cands: Vec<u32> = (0..n)
            .filter(|&i| {
                if self.placed[i] || self.p.fixed[i].is_some() {
                    return false;
                }
                let o = self.eff(i);
                let window = if i == m1_idx { m2 } else { m1 };
                // Resting on a placed entry or at 0, not floating on the monotonic floor
                // (a floating entry could move down into its free band).
                let rests = self.viable[i] >= self.floor_all;
                rests
                    && o < window
                    && self.last.is_none_or(|l| (o, self.p.rank[i]) > l)
                    && self.clear_of_fixed(i, o, next_fixed)
            })
            .map(|i| i as u32)
            .collect();
        // The next fixed entry, unless a free one fits wholly below it (that one is
        // placed first in some other branch) or the rank order forbids it.
        if let Some((f, b)) = next_fixed {
            if f < m1 && self.last.is_none_or(|l| (f, self.p.rank[b as usize]) > l) {
                cands.push(b);
            }
        }
        // Lowest offset first, then rank (largest area).
        cands.sort_by_key(|&i| (self.offset_of(i as usize), self.p.rank[i as usize]));
        cands
    }

    /// Where entry `i` goes if placed next: its fixed offset, else its lowest free one.
    fn offset_of(&self, i: usize) -> u64 {
        self.p.fixed[i].unwrap_or_else(|| self.eff(i))
    }

    fn place(&mut self, c: u32) {
        let ci = c as usize;
        let o = self.offset_of(ci);
        let top = o + self.p.size[ci];
        self.offset[ci] = o;
        self.placed[ci] = true;
        self.placed_count += 1;
        let is_fixed = self.p.fixed[ci].is_some();
        self.fixed_next += is_fixed as usize;
        for s in self.p.lo[ci]..=self.p.hi[ci] {
            self.trail.push(Undo::Floor(s, self.floor[s as usize]));
            self.floor[s as usize] = top;
            if is_fixed {
                self.remaining_fixed[s as usize] -= self.p.size[ci];
            } else {
                self.remaining[s as usize] -= self.p.size[ci];
            }
        }
        for &d in &self.p.adj[ci] {
            let di = d as usize;
            if !self.placed[di] && self.viable[di] < top {
                self.trail.push(Undo::Viable(d, self.viable[di]));
                self.viable[di] = top;
            }
        }
        self.floor_all = o;
        self.last = Some((o, self.p.rank[ci]));
    }

    fn unplace(&mut self, c: u32, mark: usize, floor_all: u64, last: Option<(u64, u32)>) {
        let ci = c as usize;
        while self.trail.len() > mark {
            match self.trail.pop() {
                Some(Undo::Floor(s, v)) => self.floor[s as usize] = v,
                Some(Undo::Viable(d, v)) => self.viable[d as usize] = v,
                None => break,
            }
        }
        let is_fixed = self.p.fixed[ci].is_some();
        self.fixed_next -= is_fixed as usize;
        for s in self.p.lo[ci]..=self.p.hi[ci] {
            if is_fixed {
                self.remaining_fixed[s as usize] += self.p.size[ci];
            } else {
                self.remaining[s as usize] += self.p.size[ci];
            }
        }
        self.placed[ci] = false;
        self.placed_count -= 1;
        self.floor_all = floor_all;
        self.last = last;
    }

    /// Section inference: in every section, the unplaced entries crossing it stack from
    /// the lowest offset any of them can take (at least the section's floor), and must fit.
    /// Unplaced fixed entries lie above the floor (placements go in offset order), so their
    /// bytes count in full; the lowest-offset refinement is left out where there are any.
    fn sections_fit(&mut self) -> bool {
        let low = &mut self.low;
        low.iter_mut().for_each(|x| *x = u64::MAX);
        for i in 0..self.p.size.len() {
            if self.placed[i] || self.p.fixed[i].is_some() {
                continue;
            }
            let o = self.viable[i].max(self.floor_all);
            for s in self.p.lo[i]..=self.p.hi[i] {
                let x = &mut low[s as usize];
                *x = (*x).min(o);
            }
        }
        (0..self.p.sections).all(|s| {
            let (r, rf) = (self.remaining[s], self.remaining_fixed[s]);
            let base = self.floor[s].max(self.floor_all);
            let base = if r > 0 && rf == 0 {
                base.max(low[s])
            } else {
                base
            };
            base + r + rf <= self.capacity
        })
    }

    fn run(&mut self, limits: &Limits, nodes: &mut u64) -> Decision {
        let n = self.p.size.len();
        if n == 0 {
            return Decision::Fits(Vec::new());
        }
        if !self.sections_fit() {
            return Decision::Infeasible;
        }
        let mut stack = vec![Frame {
            cands: self.candidates(),
            next: 0,
            trail: 0,
            floor_all: 0,
            last: None,
            fixed_next: 0,
            chosen: None,
        }];
        while let Some(f) = stack.last_mut() {
            if let Some(c) = f.chosen.take() {
                let (mark, fa, last) = (f.trail, f.floor_all, f.last);
                self.unplace(c, mark, fa, last);
                debug_assert_eq!(self.fixed_next, f.fixed_next);
            }
            let Some(f) = stack.last_mut() else { break };
            if f.next == f.cands.len() {
                stack.pop();
                continue;
            }
            let c = f.cands[f.next];
            f.next += 1;
            f.chosen = Some(c);
            self.place(c);
            *nodes += 1;
            if limits.expired(*nodes) {
                return Decision::Unknown;
            }
            if !self.sections_fit() {
                continue;
            }
            if self.placed_count == n {
                return Decision::Fits(self.offset.clone());
            }
            let cands = self.candidates();
            stack.push(Frame {
                cands,
                next: 0,
                trail: self.trail.len(),
                floor_all: self.floor_all,
                last: self.last,
                fixed_next: self.fixed_next,
                chosen: None,
            });
        }
        Decision::Infeasible
    }
}

/// Do `entries` fit in `capacity` bytes? Zero-size entries go at offset 0. `nodes` counts
/// placements tried, across calls.
pub fn fits(entries: &[Entry], capacity: u64, limits: &Limits, nodes: &mut u64) -> Decision {
    fits_around(entries, &[], capacity, limits, nodes)
}

/// Like [`fits`], with entry `i` kept at offset `fixed[i]` where that is `Some` (a missing
/// or short `fixed` leaves the rest free). Fixed entries must not overlap each other; the
/// parts of them at or above `capacity` are ignored (nothing else goes there), so a fixed
/// entry reaching above the capacity does not make the problem infeasible. On `Fits`, fixed
/// entries keep their offsets.
pub fn fits_around(
    entries: &[Entry],
    fixed: &[Option<u64>],
    capacity: u64,
    limits: &Limits,
    nodes: &mut u64,
) -> Decision {
    let fixed_at = |i: usize| fixed.get(i).copied().flatten();
    if (0..entries.len()).any(|i| fixed_at(i).is_none() && entries[i].bytes > capacity) {
        return Decision::Infeasible;
    }
    // Fixed entries clipped to the capacity; those wholly above it do not constrain.
    let clipped: Vec<Entry> = (0..entries.len())
        .map(|i| match fixed_at(i) {
            Some(o) => Entry {
                bytes: entries[i].bytes.min(capacity.saturating_sub(o)),
                ..entries[i]
            },
            None => entries[i],
        })
        .collect();
    let Some(p) = Problem::build(&clipped, fixed) else {
        return Decision::Unknown;
    };
    let mut s = Search::new(&p, capacity);
    match s.run(limits, nodes) {
        Decision::Fits(off) => {
            let mut offsets: Vec<u64> = (0..entries.len())
                .map(|i| fixed_at(i).unwrap_or(0))
                .collect();
            for (k, &i) in p.orig.iter().enumerate() {
                offsets[i] = off[k];
            }
            Decision::Fits(offsets)
        }
        d => d,
    }
}

/// Peak of Σ bytes over entries alive at one op: no placement is lower. One pass over a
/// ±bytes array indexed by op: O(n + ops).
pub fn lower_bound(entries: &[Entry]) -> u64 {
    let horizon = entries
        .iter()
        .map(|e| e.last as usize + 2)
        .max()
        .unwrap_or(0);
    let mut delta = vec![0i128; horizon];
    for e in entries {
        delta[e.first as usize] += e.bytes as i128;
        delta[e.last as usize + 1] -= e.bytes as i128;
    }
    let (mut live, mut peak) = (0i128, 0i128);
    for d in delta {
        live += d;
        peak = peak.max(live);
    }
    peak as u64
}

/// Outcome of [`minimize`].
#[derive(Clone, Debug)]
pub struct Minimized {
    pub placement: Placement,
    /// The best lower bound proven (peak live, or higher when the search refuted it).
    pub lower_bound: u64,
    /// `placement` is optimal: its arena equals `lower_bound`.
    pub proven: bool,
    pub nodes: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Searches for a smaller arena than `start` (a valid placement of `entries`): first at the
/// peak-live lower bound (a quarter of the nodes: most nets reach it), then by bisection
/// between the best bound proven and the best arena found, until the limits run out or
/// optimality is proven. Arena sizes are sums of entry sizes, so capacities are multiples
/// of their greatest common divisor. Never returns a larger arena than `start`.
pub fn minimize(entries: &[Entry], start: Placement, limits: &Limits) -> Minimized {
    let step = entries.iter().fold(0, |g, e| gcd(g, e.bytes)).max(1);
    let mut lb = lower_bound(entries);
    let mut best = start;
    let mut nodes = 0u64;
    let take = |off: Vec<u64>| {
        let arena = entries
            .iter()
            .zip(&off)
            .map(|(e, &o)| o + e.bytes)
            .max()
            .unwrap_or(0);
        Placement {
            offsets: off,
            arena_bytes: arena,
        }
    };
    // Lowest capacity not yet tried; capacities below it are refuted (`lb`) or were given
    // up on.
    let mut lo = lb;
    let mut first = true;
    while lo < best.arena_bytes && nodes < limits.max_nodes && !limits.out_of_time() {
        let mid = if first {
            lo
        } else {
            let half = (best.arena_bytes - lo) / step / 2;
            lo + half * step
        };
        // A quarter of the nodes left per try (nodes, not time: a search that ends within
        // the deadline gives the same plan on any machine).
        let share = Limits {
            deadline: limits.deadline,
            max_nodes: nodes + limits.max_nodes.saturating_sub(nodes) / 4 + 1,
        };
        let refuted_below = lb == lo;
        match fits(entries, mid, &share, &mut nodes) {
            Decision::Fits(off) => {
                let p = take(off);
                if p.arena_bytes < best.arena_bytes && check(entries, &p.offsets).is_none() {
                    best = p;
                } else {
                    break;
                }
            }
            Decision::Infeasible => {
                lo = mid + step;
                if refuted_below {
                    lb = lo;
                }
            }
            Decision::Unknown => lo = mid + step,
        }
        first = false;
    }
    Minimized {
        lower_bound: lb.min(best.arena_bytes),
        proven: best.arena_bytes <= lb,
        placement: best,
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memonger::arena::greedy_by_size;

    fn e(first: u32, last: u32, bytes: u64) -> Entry {
        Entry { first, last, bytes }
    }

    const NO_LIMIT: Limits = Limits {
        deadline: None,
        max_nodes: u64::MAX,
    };

    /// The optimum by brute force: the lowest-fit placement of every permutation (the
    /// offset order of an optimal plan pushed down is one of them).
    fn brute_force(entries: &[Entry]) -> u64 {
        fn lowest_fit(entries: &[Entry], order: &[usize]) -> u64 {
            let mut placed: Vec<(usize, u64)> = Vec::new();
            let mut peak = 0;
            for &i in order {
                let x = entries[i];
                let mut cands: Vec<u64> = vec![0];
                cands.extend(placed.iter().map(|&(j, o)| o + entries[j].bytes));
                cands.sort_unstable();
                let off = cands
                    .into_iter()
                    .find(|&o| {
                        placed.iter().all(|&(j, po)| {
                            let y = entries[j];
                            y.last < x.first
                                || x.last < y.first
                                || po + y.bytes <= o
                                || o + x.bytes <= po
                        })
                    })
                    .unwrap_or(0);
                placed.push((i, off));
                peak = peak.max(off + x.bytes);
            }
            peak
        }
        fn permute(k: usize, order: &mut Vec<usize>, entries: &[Entry], best: &mut u64) {
            if k == order.len() {
                *best = (*best).min(lowest_fit(entries, order));
                return;
            }
            for i in k..order.len() {
                order.swap(k, i);
                permute(k + 1, order, entries, best);
                order.swap(k, i);
            }
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        let mut best = u64::MAX;
        permute(0, &mut order, entries, &mut best);
        best
    }

    fn optimum(entries: &[Entry]) -> Minimized {
        let m = minimize(entries, greedy_by_size(entries), &NO_LIMIT);
        assert!(check(entries, &m.placement.offsets).is_none());
        m
    }

    #[test]
    fn search_matches_brute_force_on_random_small_instances() {
        let mut next = crate::memonger::test_rng(0x2545_f491_4f6c_dd1du64);
        let mut beats_greedy = 0;
        for _ in 0..400 {
            let n = 3 + next(5) as usize;
            let entries: Vec<Entry> = (0..n)
                .map(|_| {
                    let first = next(8) as u32;
                    e(first, first + next(4) as u32, 1 + next(9))
                })
                .collect();
            let want = brute_force(&entries);
            let m = optimum(&entries);
            assert!(m.proven, "{entries:?}");
            assert_eq!(m.placement.arena_bytes, want, "{entries:?}");
            assert_eq!(m.lower_bound, want, "{entries:?}");
            beats_greedy += (want < greedy_by_size(&entries).arena_bytes) as usize;
        }
        // Some instances must need the search, or it is not tested.
        assert!(beats_greedy > 5, "{beats_greedy}");
    }

    #[test]
    fn search_reaches_the_bound_where_greedy_by_size_does_not() {
        // Two large buffers tight at 0 and 4; a long-lived one (alive 1..9) is pushed on top
        // by greedy because an earlier buffer sits above them.
        let entries = vec![
            e(0, 1, 4),
            e(2, 3, 4),
            e(1, 9, 2),
            e(4, 6, 4),
            e(5, 8, 4),
            e(0, 2, 2),
            e(7, 9, 4),
        ];
        let g = greedy_by_size(&entries);
        let m = optimum(&entries);
        assert!(m.proven);
        assert!(m.placement.arena_bytes <= g.arena_bytes);
        assert_eq!(m.placement.arena_bytes, brute_force(&entries));
    }

    #[test]
    fn infeasible_capacity_is_refuted_and_a_fit_is_valid() {
        let entries = vec![e(0, 1, 3), e(1, 2, 3), e(0, 2, 2)];
        let mut nodes = 0;
        assert_eq!(
            fits(&entries, 7, &NO_LIMIT, &mut nodes),
            Decision::Infeasible
        );
        match fits(&entries, 8, &NO_LIMIT, &mut nodes) {
            Decision::Fits(off) => assert!(check(&entries, &off).is_none()),
            d => panic!("{d:?}"),
        }
        // An entry larger than the capacity, and zero-size entries.
        assert_eq!(
            fits(&entries, 2, &NO_LIMIT, &mut nodes),
            Decision::Infeasible
        );
        let zeros = vec![e(0, 3, 0), e(0, 3, 5)];
        assert_eq!(
            fits(&zeros, 5, &NO_LIMIT, &mut nodes),
            Decision::Fits(vec![0, 0])
        );
    }

    /// Lowest offset for `x` at or above which it meets none of `placed` (entry, offset).
    fn lowest_fit_among(entries: &[Entry], placed: &[(usize, u64)], x: Entry) -> u64 {
        let mut cands: Vec<u64> = vec![0];
        cands.extend(placed.iter().map(|&(j, o)| o + entries[j].bytes));
        cands.sort_unstable();
        cands
            .into_iter()
            .find(|&o| {
                placed.iter().all(|&(j, po)| {
                    let y = entries[j];
                    y.last < x.first || x.last < y.first || po + y.bytes <= o || o + x.bytes <= po
                })
            })
            .unwrap_or(0)
    }

    /// Lowest capacity for the free entries around the fixed ones: the lowest-fit placement
    /// of every order of the free entries (an optimum's offset order is one of them, and
    /// fixed entries do not move).
    fn brute_force_around(entries: &[Entry], fixed: &[Option<u64>]) -> u64 {
        let free: Vec<usize> = (0..entries.len()).filter(|&i| fixed[i].is_none()).collect();
        let base: Vec<(usize, u64)> = (0..entries.len())
            .filter_map(|i| fixed[i].map(|o| (i, o)))
            .collect();
        fn permute(k: usize, order: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
            if k == order.len() {
                f(order);
                return;
            }
            for i in k..order.len() {
                order.swap(k, i);
                permute(k + 1, order, f);
                order.swap(k, i);
            }
        }
        let mut best = u64::MAX;
        let mut order = free.clone();
        permute(0, &mut order, &mut |order: &[usize]| {
            let mut placed = base.clone();
            let mut peak = 0;
            for &i in order {
                let o = lowest_fit_among(entries, &placed, entries[i]);
                placed.push((i, o));
                peak = peak.max(o + entries[i].bytes);
            }
            best = best.min(peak);
        });
        best
    }

    #[test]
    fn search_around_fixed_entries_matches_brute_force() {
        let mut next = crate::memonger::test_rng(0x9e37_79b9_7f4a_7c15u64);
        let mut tight = 0;
        for _ in 0..300 {
            let n = 4 + next(5) as usize;
            let entries: Vec<Entry> = (0..n)
                .map(|_| {
                    let first = next(6) as u32;
                    e(first, first + next(4) as u32, 1 + next(7))
                })
                .collect();
            // Fixed entries at valid offsets, some of them lifted by a gap.
            let mut fixed: Vec<Option<u64>> = vec![None; n];
            let mut placed: Vec<(usize, u64)> = Vec::new();
            for i in 0..n {
                if next(3) == 0 {
                    let o = lowest_fit_among(&entries, &placed, entries[i]) + next(3);
                    let o = if placed.iter().all(|&(j, po)| {
                        let y = entries[j];
                        y.last < entries[i].first
                            || entries[i].last < y.first
                            || po + y.bytes <= o
                            || o + entries[i].bytes <= po
                    }) {
                        o
                    } else {
                        lowest_fit_among(&entries, &placed, entries[i])
                    };
                    placed.push((i, o));
                    fixed[i] = Some(o);
                }
            }
            if fixed.iter().all(|f| f.is_none()) {
                continue;
            }
            let want = brute_force_around(&entries, &fixed);
            let mut nodes = 0;
            match fits_around(&entries, &fixed, want, &NO_LIMIT, &mut nodes) {
                Decision::Fits(off) => {
                    assert!(check(&entries, &off).is_none(), "{entries:?} {fixed:?}");
                    for i in 0..n {
                        match fixed[i] {
                            Some(o) => assert_eq!(off[i], o),
                            None => assert!(off[i] + entries[i].bytes <= want),
                        }
                    }
                }
                d => panic!("{entries:?} {fixed:?} at {want}: {d:?}"),
            }
            if want > 0 {
                let d = fits_around(&entries, &fixed, want - 1, &NO_LIMIT, &mut nodes);
                assert_eq!(d, Decision::Infeasible, "{entries:?} {fixed:?} {want}");
                tight += 1;
            }
        }
        assert!(tight > 100, "{tight}");
    }

    #[test]
    fn fixed_entries_above_the_capacity_do_not_constrain() {
        // Entry 1 sits at 10..14, above a capacity of 8: entry 0 still fits at 0..5, and
        // entry 2 (alive with 1) fits under it.
        let entries = vec![e(0, 1, 5), e(0, 3, 4), e(2, 3, 8)];
        let fixed = vec![None, Some(10), None];
        let mut nodes = 0;
        match fits_around(&entries, &fixed, 8, &NO_LIMIT, &mut nodes) {
            Decision::Fits(off) => {
                assert_eq!(off[1], 10);
                assert!(check(&entries, &off).is_none());
                assert!(off[0] + 5 <= 8 && off[2] + 8 <= 8);
            }
            d => panic!("{d:?}"),
        }
        // A fixed entry in the way: 2 (8 bytes) cannot go under one at offset 4.
        let fixed = vec![None, Some(4), None];
        assert_eq!(
            fits_around(&entries, &fixed, 8, &NO_LIMIT, &mut nodes),
            Decision::Infeasible
        );
    }

    #[test]
    fn node_budget_stops_the_search_and_keeps_the_start() {
        let entries: Vec<Entry> = (0..40)
            .map(|i| e(i % 7, i % 7 + 1 + i % 3, 1 + (i as u64 * 7) % 5))
            .collect();
        let g = greedy_by_size(&entries);
        let limits = Limits {
            deadline: None,
            max_nodes: 1,
        };
        let m = minimize(&entries, g.clone(), &limits);
        assert!(m.placement.arena_bytes <= g.arena_bytes);
        assert!(m.nodes <= 2);
        assert!(check(&entries, &m.placement.offsets).is_none());
    }
}
