"""The tracker's neighbour search (dope/motion/neighbours.py) against brute force, and what the
tracker imports."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from dope.motion.neighbours import close_pairs, pairs_within, ranges


def brute_pairs(a, b, r):
    r = np.broadcast_to(np.asarray(r, np.float64), (len(a),))
    if not len(a) or not len(b):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    with np.errstate(invalid="ignore"):
        d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return np.nonzero(d2 <= (r * r)[:, None])


@pytest.mark.parametrize("seed", range(6))
def test_pairs_within_finds_every_pair_and_only_those(seed):
    rng = np.random.default_rng(seed)
    for trial in range(60):
        n, m = rng.integers(0, 50), rng.integers(0, 50)
        a, b = rng.uniform(0, 600, (n, 2)), rng.uniform(0, 600, (m, 2))
        if n and m and trial % 3 == 0:
            a[rng.integers(0, n)], b[rng.integers(0, m)] = np.nan, (np.inf, 5.0)
        if n and m and trial % 7 == 0:
            b[0] = a[0]  # one point on another
        if n and trial % 13 == 0:
            a[0] = (1e15, -1e15)  # far-flung: every pair measured
        radius = [40.0, rng.uniform(0, 90, n), np.where(rng.random(n) < 0.2, 400.0, rng.uniform(0, 30, n)),
                  0.0][trial % 4]
        i, j = pairs_within(a, b, radius)
        ei, ej = brute_pairs(a, b, radius)
        assert np.array_equal(i, ei) and np.array_equal(j, ej)
        if n:
            r = np.broadcast_to(np.asarray(radius, np.float64), (n,))
            ci, cj = close_pairs(a, r)
            with np.errstate(invalid="ignore"):
                d2 = ((a[:, None] - a[None]) ** 2).sum(-1)
                reach = np.maximum(r[:, None], r[None])
                ei, ej = np.nonzero(np.triu(d2 <= reach * reach, 1))
            assert np.array_equal(ci, ei) and np.array_equal(cj, ej)


def test_ranges():
    np.testing.assert_array_equal(ranges(np.array([5, 0, 9]), np.array([2, 3, 1])), [5, 6, 0, 1, 2, 9])
    np.testing.assert_array_equal(ranges(np.array([-2, 4]), np.array([5, 0])), [-2, -1, 0, 1, 2])
    assert ranges(np.zeros(0, np.int64), np.zeros(0, np.int64)).size == 0


def test_tracking_imports_scipy_only_when_tracks_compete():
    """scipy.optimize costs 0.4 s to import and scipy.spatial 0.35 s: the tracker imports neither to
    track people far apart, nor where people cross but each track's cheapest detection is its own
    (motion/assignment.py), and the Hungarian method (scipy's, imported plainly by the library)
    only once two tracks want the same detection most and no other answer is certain."""
    code = """if True:
        import sys
        import numpy as np
        from dope.motion.tracking import Tracker
        from test_tracking import people_frame
        rng = np.random.default_rng(0)
        tracker = Tracker()
        for t in range(10):
            tracker.update(people_frame([(300 + 5 * t, 400, 220), (900 - 5 * t, 400, 220)], noise=1.0, rng=rng))
        print("apart", "scipy.optimize" in sys.modules, "scipy.spatial" in sys.modules)
        for t in range(10, 200):  # they cross
            tracker.update(people_frame([(300 + 5 * t, 400, 220), (900 - 5 * t, 400, 220)], noise=1.0, rng=rng))
        print("crossing", "scipy.optimize" in sys.modules)
        tracker = Tracker()
        for t in range(10):  # side by side, 40 px apart
            tracker.update(people_frame([(300, 400, 220), (340, 400, 220)]))
        print("side by side", "scipy.optimize" in sys.modules)
        # both step 25 px right: the left one's detection is the nearest for both tracks, and
        # the right one's track the nearest for both detections
        tracker.update(people_frame([(325, 400, 220), (365, 400, 220)]))
        print("competing", "scipy.optimize" in sys.modules)
    """
    out = subprocess.run([sys.executable, "-c", code], cwd=os.path.join(ROOT, "tests"), capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True).stdout
    assert "apart False False\ncrossing False\nside by side False\ncompeting True" in out, out
