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
        if e.bytes == 0 {
            // Holds no bytes: offset 0, outside the free lists (no zero-size blocks there).
            continue;
        }
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
                // Grow from the top. No free block ends at the top: `free_block` merges a
                // freed block with its neighbours and lowers the top when the result
                // reaches it, and a split leaves the remainder's end where it was.
                debug_assert!(
                    by_off
                        .range(..top)
                        .next_back()
                        .is_none_or(|(&o, &s)| o + s != top)
                );
                let start = top;
                top += e.bytes;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn e(first: u32, last: u32, bytes: u64) -> Entry {
        Entry { first, last, bytes }
    }

    fn entries(v: &[(u32, u32, u64)]) -> Vec<Entry> {
        v.iter().map(|&(f, l, b)| e(f, l, b)).collect()
    }

    /// An overlap check of its own (every pair, not `check`): entries alive at a common op
    /// have disjoint bytes, and the arena is the highest end.
    fn assert_valid(entries: &[Entry], p: &Placement) {
        for (i, a) in entries.iter().enumerate() {
            for (j, b) in entries.iter().enumerate().skip(i + 1) {
                let meet = a.first <= b.last && b.first <= a.last;
                if meet && a.bytes > 0 && b.bytes > 0 {
                    let (oa, ob) = (p.offsets[i], p.offsets[j]);
                    assert!(
                        oa + a.bytes <= ob || ob + b.bytes <= oa,
                        "entries {i} and {j} overlap: {p:?}"
                    );
                }
            }
        }
        let top = entries
            .iter()
            .zip(&p.offsets)
            .map(|(e, o)| o + e.bytes)
            .max()
            .unwrap_or(0);
        assert_eq!(p.arena_bytes, top);
    }

    fn assert_placed(entries: &[Entry], p: &Placement, offsets: &[u64], arena: u64) {
        assert_valid(entries, p);
        assert_eq!(p.offsets, offsets);
        assert_eq!(p.arena_bytes, arena);
    }

    #[test]
    fn best_gap_takes_the_smallest_gap_that_fits_at_its_lowest_offset_else_the_end() {
        // Unsorted input; gaps [10, 20) and [30, 45) with a 5-byte gap [40, 45) past (30, 40).
        assert_eq!(best_gap(&mut [(20, 30), (0, 10)], 5), 10);
        assert_eq!(best_gap(&mut [(0, 10), (30, 40), (45, 50)], 4), 40);
        // A smaller gap later that is too small does not win.
        assert_eq!(best_gap(&mut [(0, 10), (30, 40), (42, 50)], 5), 10);
        // Equal gaps: the lower one.
        assert_eq!(best_gap(&mut [(0, 10), (15, 20), (25, 30)], 5), 10);
        // No gap fits: the end of the highest range, past overlapping ranges.
        assert_eq!(best_gap(&mut [(0, 10), (12, 20), (5, 30)], 8), 30);
        assert_eq!(best_gap(&mut [], 8), 0);
        // Touching ranges leave no gap, not even for an empty entry.
        assert_eq!(best_gap(&mut [(0, 10), (10, 20)], 0), 20);
        // A gap below the first range counts.
        assert_eq!(best_gap(&mut [(8, 16)], 8), 0);
    }

    #[test]
    fn greedy_by_size_reuses_bytes_across_time_and_orders_ties_by_longer_lifetime() {
        let v = entries(&[(0, 1, 8), (1, 2, 8), (3, 3, 8)]);
        assert_placed(&v, &greedy_by_size(&v), &[0, 8, 0], 16);
        // Equal sizes: the longer-lived entry goes first, to the bottom.
        let v = entries(&[(4, 6, 8), (0, 5, 8)]);
        assert_placed(&v, &greedy_by_size(&v), &[8, 0], 16);
        // Larger first.
        let v = entries(&[(0, 0, 4), (0, 0, 16)]);
        assert_placed(&v, &greedy_by_size(&v), &[16, 0], 20);
    }

    #[test]
    fn greedy_by_breadth_places_the_busiest_op_first() {
        // Live bytes: op 0: 8, op 1: 24, op 2: 32, op 3: 1. Op 2's entries go first (B, then
        // C), then op 1's A above B, then D. Ops in index order would give A 0, B 8, C 24.
        let v = entries(&[(0, 1, 8), (1, 2, 16), (2, 2, 16), (3, 3, 1)]);
        assert_placed(&v, &greedy_by_breadth(&v, 3), &[16, 0, 16, 0], 32);
    }

    #[test]
    fn sweep_best_fit_merges_a_freed_block_with_the_free_block_below() {
        // A and B free at op 1 and merge into one 16-byte block for D; E then grows the top.
        let v = entries(&[(0, 0, 8), (0, 0, 8), (0, 5, 8), (1, 1, 16), (1, 1, 8)]);
        assert_placed(&v, &sweep_best_fit(&v), &[0, 8, 16, 0, 24], 32);
    }

    #[test]
    fn sweep_best_fit_merges_a_freed_block_with_the_free_block_above() {
        // P stays at the bottom; B (freed first) and then A below it merge at offset 32
        // into the 24-byte block D takes whole; E grows the top.
        let v = entries(&[
            (0, 2, 8),
            (0, 2, 16),
            (0, 9, 8),
            (0, 9, 32),
            (3, 3, 24),
            (3, 3, 8),
        ]);
        assert_placed(&v, &sweep_best_fit(&v), &[48, 32, 56, 0, 32, 64], 72);
    }

    #[test]
    fn sweep_best_fit_lowers_the_top_when_the_highest_block_is_freed() {
        // C at the top is freed at op 2, so D (larger than any free block) starts where C
        // did instead of above it.
        let v = entries(&[(0, 0, 8), (0, 3, 8), (1, 1, 16), (2, 2, 24)]);
        assert_placed(&v, &sweep_best_fit(&v), &[0, 8, 16, 16], 40);
    }

    #[test]
    fn sweep_best_fit_splits_a_block_and_merges_the_remainder_back() {
        // E takes 16 of A's 24 bytes; when E is freed the rest merges back, H takes the
        // whole 24; I and J find no free block and grow the top.
        let v = entries(&[
            (0, 0, 24),
            (0, 9, 8),
            (1, 1, 16),
            (2, 2, 24),
            (2, 2, 8),
            (2, 2, 1),
        ]);
        assert_placed(&v, &sweep_best_fit(&v), &[0, 24, 0, 0, 32, 40], 41);
        // Entries of no bytes sit at 0 and leave the free blocks as they were.
        let v = entries(&[(0, 0, 24), (0, 5, 8), (1, 1, 0), (1, 1, 24), (1, 1, 0)]);
        assert_placed(&v, &sweep_best_fit(&v), &[0, 24, 0, 0, 0], 32);
        // Two pieces of one block.
        let v = entries(&[(0, 0, 24), (0, 5, 8), (1, 1, 16), (1, 1, 8)]);
        assert_placed(&v, &sweep_best_fit(&v), &[0, 24, 0, 16], 32);
    }

    #[test]
    fn check_finds_overlaps_above_and_below_and_nothing_else() {
        let v = entries(&[(0, 1, 8), (1, 2, 8)]);
        assert_eq!(check(&v, &[0, 8]), None, "touching ranges");
        assert_eq!(check(&v, &[8, 0]), None, "touching ranges");
        assert_eq!(
            check(&v, &[0, 4]),
            Some((0, 1)),
            "overlap with the range below"
        );
        assert_eq!(
            check(&v, &[4, 0]),
            Some((1, 0)),
            "overlap with the range above"
        );
        assert_eq!(check(&v, &[0, 0]), Some((0, 1)));
        let apart = entries(&[(0, 0, 8), (1, 1, 8)]);
        assert_eq!(check(&apart, &[0, 0]), None, "alive at different ops");
        let empty = entries(&[(0, 1, 8), (1, 1, 0)]);
        assert_eq!(
            check(&empty, &[0, 4]),
            None,
            "an empty entry holds no bytes"
        );
        let three = entries(&[(0, 3, 8), (1, 3, 8), (2, 3, 8)]);
        assert_eq!(check(&three, &[0, 8, 12]), Some((1, 2)));
    }
}
