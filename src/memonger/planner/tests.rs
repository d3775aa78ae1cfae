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
