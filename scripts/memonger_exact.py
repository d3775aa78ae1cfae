#!/usr/bin/env python3
"""Offline exact check for the memory planner's shared-name problem (issue 17).

Not part of the library or its tests: a tool to learn how far the planner's name plans are
from the optimum. Needs Google OR-Tools (`pip install ortools`).

Input: the `.names` files that `cargo bench --bench memonger -- --dump DIR` writes, one per
net: a header `# name_bytes const_bytes name_lb_bytes` (the planner's figures; const_bytes:
activations outside the renaming problem, e.g. kept external outputs), then one line per
activation `first last size class` (closed op interval, bytes, sharing class).

Problem: activations of one class may share a name when their intervals are disjoint; a name
costs the size of its largest tenant; minimise the total. Model per class (CP-SAT):
x[i][j] = activation i uses name j; activations sorted by size (descending) and activation k
may only use names 0..k (names are numbered by their largest tenant: no optimum is lost);
at every interval start t, the activations alive at t use each name at most once (interval
graphs: these cliques cover every conflict); cap[j] >= size[i] * x[i][j]; minimise Σ cap.

Output per net: the planner's name bytes, the best plan found, the proven lower bound (both
include const_bytes), and the planner's ratio to each.

Usage: scripts/memonger_exact.py [--time SECONDS] [--workers N] FILE.names...
"""

import argparse
import sys


def read(path):
    with open(path) as f:
        header = f.readline().split()
        name_bytes, const_bytes, name_lb = (int(x) for x in header[1:4])
        items = []
        for line in f:
            a, b, s, c = (int(x) for x in line.split())
            items.append((a, b, s, c))
    return name_bytes, const_bytes, name_lb, items


def greedy_names(items):
    """Largest first, each into the smallest-capacity name with no live tenant: an upper
    bound on the names an optimum needs is not implied, it only sizes the model."""
    order = sorted(range(len(items)), key=lambda i: (-items[i][2], items[i][0], i))
    names = []  # (cap, [intervals])
    for i in order:
        a, b, s, _ = items[i]
        best = None
        for j, (cap, ivs) in enumerate(names):
            if all(b < x or y < a for x, y in ivs):
                if best is None or cap < names[best][0]:
                    best = j
        if best is None:
            names.append((s, [(a, b)]))
        else:
            names[best][1].append((a, b))
    return sum(c for c, _ in names), len(names)


def solve_class(items, seconds, workers, extra_names):
    from ortools.sat.python import cp_model

    order = sorted(range(len(items)), key=lambda i: (-items[i][2], items[i][0], i))
    it = [items[i] for i in order]
    n = len(it)
    greedy_cost, greedy_k = greedy_names(it)
    # Every optimum fits in n names; fewer (--extra-names) solves faster, but then the bound
    # holds only for plans with at most that many names.
    k_max = n if extra_names is None else min(n, greedy_k + extra_names)
    m = cp_model.CpModel()
    x = {}
    for i in range(n):
        for j in range(min(i + 1, k_max)):
            x[i, j] = m.NewBoolVar(f"x{i}_{j}")
        m.AddExactlyOne(x[i, j] for j in range(min(i + 1, k_max)))
    starts = sorted({a for a, _, _, _ in it})
    for t in starts:
        alive = [i for i in range(n) if it[i][0] <= t <= it[i][1]]
        if len(alive) < 2:
            continue
        for j in range(k_max):
            vs = [x[i, j] for i in alive if (i, j) in x]
            if len(vs) > 1:
                m.AddAtMostOne(vs)
    cap = []
    for j in range(k_max):
        top = it[j][2] if j < n else 0
        c = m.NewIntVar(0, top, f"cap{j}")
        for i in range(j, n):
            if (i, j) in x:
                m.Add(c >= it[i][2]).OnlyEnforceIf(x[i, j])
        cap.append(c)
    # Name j is used only if its opener (item j) is placed there or it hosts nothing;
    # ordering caps (descending) breaks the remaining symmetry.
    for j in range(k_max - 1):
        m.Add(cap[j] >= cap[j + 1])
    m.Minimize(sum(cap))
    s = cp_model.CpSolver()
    s.parameters.max_time_in_seconds = seconds
    s.parameters.num_workers = workers
    st = s.Solve(m)
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return int(s.ObjectiveValue()), int(s.BestObjectiveBound()), st == cp_model.OPTIMAL
    return greedy_cost, int(s.BestObjectiveBound()), False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--time", type=float, default=60.0, help="seconds per class")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--extra-names", type=int, default=None,
                    help="names allowed beyond the greedy plan's count (default: no limit; "
                         "with a limit the bound is not a proof)")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    print(f"{'net':28} {'planner':>12} {'best':>12} {'bound':>12} {'pl/best':>8} {'pl/bound':>8} opt")
    for path in a.files:
        name_bytes, const_bytes, name_lb, items = read(path)
        by_class = {}
        for i in items:
            by_class.setdefault(i[3], []).append(i)
        best, bound, opt = const_bytes, const_bytes, True
        for cls in sorted(by_class):
            b, lb, o = solve_class(by_class[cls], a.time, a.workers, a.extra_names)
            best += b
            bound += lb
            opt &= o
        bound = max(bound, name_lb)
        net = path.rsplit("/", 1)[-1].removesuffix(".names")
        print(f"{net:28} {name_bytes:12} {best:12} {bound:12} {name_bytes / best:8.4f} "
              f"{name_bytes / bound:8.4f} {'yes' if opt else 'no'}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
