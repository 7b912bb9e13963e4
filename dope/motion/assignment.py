"""Minimum-cost assignment of tracks to detections, from the pairs that may match.

The tracker gives each frame's candidate pairs (a track, a detection and the pair's cost); the
pairs it keeps are a minimum-cost assignment of them, found by `scipy.optimize.linear_sum_assignment`
(the Hungarian method's modern form). Importing `scipy.optimize` costs about 0.35 s of CPU, as
much as tracking a short replay of a crowd (8 frames of 1,500 detections: 45 ms a frame), and in
most frames nothing competes. So the pairs are split into groups linked by a shared track or
detection (connected components, in numpy), and a group is solved without scipy where its answer
is certain:

- one track and one detection: that pair;
- every track's cheapest detection a different one (or every detection's cheapest track a
  different one): those pairs. Each track then has its least cost, so no assignment of all its
  tracks costs less, and none matches more of them (the same answer as scipy's, but for exact ties).

Only the other groups, where tracks truly compete, go to `linear_sum_assignment`, each on its own
small matrix. A crowd whose people move little between frames has none: scipy is never imported.
Where one has some (a crowd of detections that are new every frame, as a network with random
weights gives), the command line loads scipy's compiled module of that function alone
(`startup.quick_assignment`, set by `use_loader`); the library imports `scipy.optimize` as usual.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

Solver = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
_solver: Optional[Solver] = None  # scipy's linear_sum_assignment, once loaded
_loader: Optional[Callable[[], Optional[Solver]]] = None  # the command line's own way to load it


def use_loader(loader: Optional[Callable[[], Optional[Solver]]]) -> None:
    """How this process loads `linear_sum_assignment` when a frame first needs it: `loader()`, or the
    plain `from scipy.optimize import ...` where it gives None (None: always the plain import). The
    command line alone sets it (`startup.quick_assignment`)."""
    global _loader, _solver
    _loader, _solver = loader, None


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy.optimize.linear_sum_assignment(cost), loaded on first use (see `use_loader`)."""
    global _solver
    if _solver is None:
        solver = _loader() if _loader is not None else None
        if solver is None:
            from scipy.optimize import linear_sum_assignment as solver
        _solver = solver
    return _solver(cost)


def components(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """int64[P]: a label for each pair (rows[k], cols[k]) (int arrays of P >= 1 indexes), the same for
    pairs linked through shared rows or columns, and the least row index of the group (hook and
    compress: each round joins every two groups a pair links, so a few rounds even in a crowd)."""
    n_rows = int(rows.max()) + 1
    u, v = rows.astype(np.int64), n_rows + cols.astype(np.int64)
    root = np.arange(n_rows + int(cols.max()) + 1)
    while True:
        a, b = root[u], root[v]
        differ = a != b
        if not differ.any():
            return a
        a, b = a[differ], b[differ]
        np.minimum.at(root, np.maximum(a, b), np.minimum(a, b))  # each root hooked under a smaller one
        while True:  # every node points to its root
            up = root[root]
            if np.array_equal(up, root):
                break
            root = up


def _cheapest(key: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """int64[K]: for each value of `key`, the index of its pair of least cost (the first such where
    costs tie)."""
    order = np.lexsort((costs, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order[1:]] != key[order[:-1]]
    return order[first]


def _certain(group: np.ndarray, key: np.ndarray, other: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """bool[P]: the pairs that are each `key`'s cheapest, in groups where no two keys share their
    cheapest `other` (then those pairs are the group's minimum-cost assignment)."""
    best = _cheapest(key, costs)  # (a key's pairs are all in its group)
    # a group is certain where no (group, other) appears twice among the cheapest pairs
    g, o = group[best], other[best]
    order = np.lexsort((o, g))
    clash = (g[order][1:] == g[order][:-1]) & (o[order][1:] == o[order][:-1])
    bad = g[order][1:][clash]
    out = np.zeros(len(costs), bool)
    out[best[~np.isin(g, bad)]] = True
    return out


def _distinct(a: np.ndarray) -> np.ndarray:
    """np.unique(a), sorted distinct values, without np.unique's import of numpy.ma (13 ms, the
    tracking of a frame of a crowd's replay)."""
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def assign_pairs(rows: np.ndarray, cols: np.ndarray, costs: np.ndarray) -> list[tuple[int, int]]:
    """A minimum-cost assignment of the candidate pairs (rows[k], cols[k]) at costs[k] (finite):
    the pairs (row, col) kept, each row and each column in one pair at most, as many pairs as can
    be, and of those the least total cost."""
    if not len(rows):
        return []
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    costs = np.asarray(costs, np.float64)
    lone = (np.bincount(rows)[rows] == 1) & (np.bincount(cols)[cols] == 1)
    if lone.all():  # (most frames: every track has its detection and no other)
        return list(zip(rows.tolist(), cols.tolist()))
    group = components(rows, cols)
    by_row = _certain(group, rows, cols, costs)
    by_col = _certain(group, cols, rows, costs)
    settled = np.zeros(int(group.max()) + 1, bool)
    settled[group[by_row]] = True
    keep = by_row | (by_col & ~settled[group])  # (a group certain both ways: its tracks' choices)
    settled[group[by_col]] = True
    out = list(zip(rows[keep].tolist(), cols[keep].tolist()))
    rest = np.flatnonzero(~settled[group])
    if not len(rest):
        return out
    order = rest[np.argsort(group[rest], kind="stable")]
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for pairs in np.split(order, bounds):
        gr, gc = rows[pairs], cols[pairs]
        ur, uc = _distinct(gr), _distinct(gc)
        sub = np.full((len(ur), len(uc)), np.inf)
        sub[np.searchsorted(ur, gr), np.searchsorted(uc, gc)] = costs[pairs]
        ok = np.isfinite(sub)
        # (a pair that may not match costs more than any assignment of those that may)
        r, c = linear_sum_assignment(np.where(ok, sub, np.abs(sub[ok]).sum() * 10 + 1e6))
        out += [(int(ur[a]), int(uc[b])) for a, b in zip(r, c) if ok[a, b]]
    return out
