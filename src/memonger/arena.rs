//! Offset planning (spec §5.4): each entry (an original activation with its op interval and
//! aligned size) gets an offset in one arena so that entries alive at a common op never
//! overlap in bytes. Arena bytes = the highest end.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// One entry to place: closed op interval and aligned byte size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub first: u32,
    pub last: u32,
    pub bytes: u64,
}

/// Offsets per entry and the arena size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub offsets: Vec<u64>,
    pub arena_bytes: u64,
}

/// The lowest offset in the smallest gap between `placed` ranges (sorted by offset) that fits
/// `bytes`, else the end of the highest range.
fn best_gap(placed: &mut [(u64, u64)], bytes: u64) -> u64 {
    placed.sort_unstable();
    let mut best: Option<(u64, u64)> = None; // (gap size, offset)
    let mut cursor = 0u64;
    for &(off, end) in placed.iter() {
        if off > cursor {
            let gap = off - cursor;
            if gap >= bytes && best.is_none_or(|(g, _)| gap < g) {
                best = Some((gap, cursor));
            }
        }
        cursor = cursor.max(end);
    }
    best.map_or(cursor, |(_, o)| o)
}

fn place_in_order(entries: &[Entry], order: &[usize]) -> Placement {
    let mut offsets = vec![u64::MAX; entries.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut conflicts: Vec<(u64, u64)> = Vec::new();
    let mut arena = 0u64;
    for &i in order {
        let e = entries[i];
        conflicts.clear();
        for &j in &placed {
            let p = entries[j];
            if p.first <= e.last && e.first <= p.last {
                conflicts.push((offsets[j], offsets[j] + p.bytes));
            }
        }
        let off = best_gap(&mut conflicts, e.bytes);
        offsets[i] = off;
        arena = arena.max(off + e.bytes);
        placed.push(i);
    }
    Placement {
        offsets,
        arena_bytes: arena,
    }
}

/// TFLite-style greedy by size: entries by size descending (ties: longer interval, `first`,
/// index), each at the best gap among already placed entries it meets in time. O(n²).
pub fn greedy_by_size(entries: &[Entry]) -> Placement {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| {
        let e = entries[i];
        (Reverse(e.bytes), Reverse(e.last - e.first), e.first, i)
    });
    place_in_order(entries, &order)
}

/// Greedy by breadth: ops by live bytes descending; each op's unplaced entries largest
/// first, placed with the same gap rule. O(n² + Σ interval lengths).
pub fn greedy_by_breadth(entries: &[Entry], num_ops: usize) -> Placement {
    let horizon = num_ops + 1;
    let mut live: Vec<u64> = vec![0; horizon];
    let mut at: Vec<Vec<usize>> = vec![Vec::new(); horizon];
    for (i, e) in entries.iter().enumerate() {
        for t in e.first as usize..=(e.last as usize).min(num_ops) {
            live[t] += e.bytes;
            at[t].push(i);
        }
    }
    let mut ops: Vec<usize> = (0..horizon).collect();
    ops.sort_by_key(|&t| (Reverse(live[t]), t));
    let mut done = vec![false; entries.len()];
    let mut order = Vec::with_capacity(entries.len());
    for t in ops {
        let mut here: Vec<usize> = at[t].iter().copied().filter(|&i| !done[i]).collect();
        here.sort_by_key(|&i| (Reverse(entries[i].bytes), entries[i].first, i));
        for i in here {
            done[i] = true;
            order.push(i);
        }
    }
    place_in_order(entries, &order)
}

/// Sweep with best fit: walk the ops; free entries whose interval ended, then allocate the
/// entries starting here (largest first) from the smallest free block that fits, else
/// from the top of the arena. Free blocks coalesce. O(n log n): the planner's choice for
/// nets too large for the quadratic heuristics.
pub fn sweep_best_fit(entries: &[Entry]) -> Placement {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].first, Reverse(entries[i].bytes), i));
    let mut ends: BTreeSet<(u32, usize)> = BTreeSet::new();
    let mut by_size: BTreeSet<(u64, u64)> = BTreeSet::new(); // (size, offset)
    let mut by_off: BTreeMap<u64, u64> = BTreeMap::new(); // offset -> size
    let mut top = 0u64;
    let mut arena = 0u64;
    let mut offsets = vec![0u64; entries.len()];
    let free_block = |off: u64,
                      size: u64,
                      by_size: &mut BTreeSet<(u64, u64)>,
                      by_off: &mut BTreeMap<u64, u64>,
                      top: &mut u64| {
        let (mut off, mut size) = (off, size);
        if let Some((&po, &ps)) = by_off.range(..off).next_back() {
            if po + ps == off {
                by_off.remove(&po);
                by_size.remove(&(ps, po));
                off = po;
                size += ps;
            }
        }
        if let Some((&no, &ns)) = by_off.range(off + size..).next() {
            if no == off + size {
                by_off.remove(&no);
                by_size.remove(&(ns, no));
                size += ns;
            }
        }
        if off + size == *top {
            *top = off;
        } else {
            by_off.insert(off, size);
            by_size.insert((size, off));
        }
    };
    for &i in &order {
        let e = entries[i];
        while let Some(&(last, j)) = ends.first() {
            if last >= e.first {
                break;
            }
            ends.pop_first();
            free_block(
                offsets[j],
                entries[j].bytes,
                &mut by_size,
                &mut by_off,
                &mut top,
            );
        }
        let fit = by_size.range((e.bytes, 0)..).next().copied();
        let off = match fit {
            Some((size, off)) => {
                by_size.remove(&(size, off));
                by_off.remove(&off);
                if size > e.bytes {
                    by_off.insert(off + e.bytes, size - e.bytes);
                    by_size.insert((size - e.bytes, off + e.bytes));
                }
                off
            }
            None => {
                // Grow from the top, reusing a free block that touches it.
                let mut start = top;
                if let Some((&po, &ps)) = by_off.range(..top).next_back() {
                    if po + ps == top {
                        by_off.remove(&po);
                        by_size.remove(&(ps, po));
                        start = po;
                    }
                }
                top = start + e.bytes;
                start
            }
        };
        offsets[i] = off;
        arena = arena.max(off + e.bytes);
        ends.insert((e.last, i));
    }
    Placement {
        offsets,
        arena_bytes: arena,
    }
}

/// Checks a placement: entries meeting in time have disjoint byte ranges. Sweep over time
/// with the live entries ordered by offset: O(n log n). Returns a conflicting pair.
pub fn check(entries: &[Entry], offsets: &[u64]) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].first, i));
    let mut ends: BTreeSet<(u32, usize)> = BTreeSet::new();
    let mut live: BTreeMap<(u64, usize), u64> = BTreeMap::new(); // (offset, i) -> end
    for &i in &order {
        let e = entries[i];
        while let Some(&(last, j)) = ends.first() {
            if last >= e.first {
                break;
            }
            ends.pop_first();
            live.remove(&(offsets[j], j));
        }
        let (off, end) = (offsets[i], offsets[i] + e.bytes);
        if e.bytes > 0 {
            if let Some((&(_, j), &pend)) = live.range(..(off, usize::MAX)).next_back() {
                if pend > off {
                    return Some((j, i));
                }
            }
            if let Some((&(noff, j), _)) = live.range((off, usize::MAX)..).next() {
                if noff < end {
                    return Some((i, j));
                }
            }
            live.insert((off, i), end);
        }
        ends.insert((e.last, i));
    }
    None
}
