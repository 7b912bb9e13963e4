"""The tracker's assignment (dope/motion/assignment.py): groups solved without scipy where their
answer is certain, the others by scipy's linear_sum_assignment, always a minimum-cost assignment."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from conftest import ROOT
from dope.motion.assignment import assign_pairs, components


def _optimum(cost: np.ndarray) -> tuple[int, float]:
    """(pairs, total cost) of the best assignment of the finite entries: as many pairs as can be, then the least cost."""
    ok = np.isfinite(cost)
    r, c = linear_sum_assignment(np.where(ok, cost, np.abs(cost[ok]).sum() * 10 + 1e6))
    kept = ok[r, c]
    return int(kept.sum()), float(cost[r[kept], c[kept]].sum())


@pytest.mark.parametrize("seed", range(4))
def test_assign_pairs_is_a_minimum_cost_assignment(seed):
    rng = np.random.default_rng(seed)
    certain = 0
    for _ in range(400):
        n, m = rng.integers(1, 12, 2)
        cost = rng.normal(0, 3, (n, m))
        cost[rng.random((n, m)) < rng.uniform(0.3, 0.95)] = np.inf
        rows, cols = np.nonzero(np.isfinite(cost))
        pairs = assign_pairs(rows, cols, cost[rows, cols])
        got_r, got_c = [r for r, _ in pairs], [c for _, c in pairs]
        assert len(set(got_r)) == len(pairs) == len(set(got_c))  # each track and detection once at most
        assert all(np.isfinite(cost[r, c]) for r, c in pairs)
        count, total = _optimum(cost) if len(rows) else (0, 0.0)
        assert len(pairs) == count
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(total, abs=1e-9)
        certain += len(pairs) == len(set(np.argmin(np.where(np.isfinite(cost), cost, np.inf), 1)[np.isfinite(cost).any(1)]))
    assert certain > 50  # (both kinds of group were met)


def test_components_are_the_graph_s_connected_components():
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(1, 400))
        rows, cols = rng.integers(0, 300, n), rng.integers(0, 300, n)
        label = components(rows, cols)
        nr, nc = rows.max() + 1, cols.max() + 1
        graph = coo_matrix((np.ones(n), (rows, nr + cols)), shape=(nr + nc, nr + nc))
        _, expected = connected_components(graph, directed=False)
        # the same partition of the pairs, labelled by the group's least row
        same = label[:, None] == label[None, :]
        np.testing.assert_array_equal(same, expected[rows][:, None] == expected[rows][None, :])
        for g in np.unique(label):
            assert g == rows[label == g].min()


def test_groups_whose_answer_is_certain_need_no_scipy():
    # A chain of 2,000 tracks, each near its own detection and its neighbour's: one group, no two
    # tracks with the same cheapest detection: solved without importing scipy (0.4 s).
    code = """if True:
        import sys
        import numpy as np
        from dope.motion.assignment import assign_pairs
        n = 2000
        rows = np.repeat(np.arange(n), 2)[:-1]
        cols = np.minimum(np.arange(2 * n - 1) // 2 + np.arange(2 * n - 1) % 2, n - 1)
        costs = np.where(rows == cols, 0.5, 1.0)
        pairs = assign_pairs(rows, cols, costs)
        print("pairs right", sorted(pairs) == [(i, i) for i in range(n)])
        print("scipy", any(m.startswith("scipy") for m in sys.modules))
        # one track wanted by two detections as their cheapest, and both tracks' cheapest the same: scipy decides
        print(sorted(assign_pairs(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([0.0, 1.0, 0.5]))))
        print("scipy", "scipy.optimize" in sys.modules)
    """
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True).stdout
    assert "pairs right True\nscipy False\n[(0, 1), (1, 0)]\nscipy True" in out, out
