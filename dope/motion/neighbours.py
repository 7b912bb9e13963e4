"""Pairs of points within a distance of each other, with numpy alone: on a grid, or by a sweep.

The tracker needs, every frame, the tracks and detections whose centres are near enough to be
worth a full cost, and the detections of one frame that nearly coincide. A k-d tree
(`scipy.spatial.cKDTree`) answers both. But importing `scipy.spatial` costs about 0.35 s of CPU,
more than the tracking of a short replay of a crowd (8 frames of 1,500 detections), while the
grid below costs about as much per frame: 3 ms for the pairs of 1,500 tracks and 1,500
detections within varied radii (the tree: 3 ms). The near pairs of one frame's detections (radii
of a few pixels) come from a sweep along x, a little quicker than the grid there: tracking a
crowd of 200 people takes 4.7 ms a frame with these, 5.0 with the tree. (The assignment itself
stays on `scipy.optimize.linear_sum_assignment`, imported when a frame first has tracks that
compete for detections: assignment.py.)
"""
from __future__ import annotations

from typing import Union

import numpy as np

_MAX_CELLS = 1 << 40  # beyond this many grid cells, all pairs are measured (far-flung points)
_MAX_REACH = 8  # discs wider than this many cells are measured against every point


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """int64[sum(counts)]: starts[0] .. starts[0] + counts[0] - 1, then the next run, and so on."""
    counts = np.asarray(counts, np.int64)
    starts = np.asarray(starts, np.int64)
    return np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))


def pairs_within(a: np.ndarray, b: np.ndarray, radius: Union[float, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(i, j): every pair of a point a[i] (float[N, 2]) and a point b[j] (float[M, 2]) at most
    radius[i] apart (radius: one number, or float[N]), sorted by i then j. Points with a NaN or an
    infinite coordinate, and negative or NaN radii, are in no pair."""
    a, b = np.asarray(a, np.float64).reshape(-1, 2), np.asarray(b, np.float64).reshape(-1, 2)
    r = np.broadcast_to(np.asarray(radius, np.float64), (len(a),))
    ia = np.flatnonzero(np.isfinite(a).all(1) & (r >= 0))
    ib = np.flatnonzero(np.isfinite(b).all(1))
    empty = np.zeros(0, np.int64)
    if not len(ia) or not len(ib):
        return empty, empty
    # The grid's cells are half the mean radius wide: a point's disc lies within k cells of its
    # own, k = ceil(radius / cell), in each direction; b's points sorted row by row, the cells of
    # one row that a disc spans are one run, found by two binary searches. Discs wider than
    # _MAX_REACH cells (few) are measured against every point.
    cell = float(r[ia].mean()) / 2
    if not cell > 0:
        cell = max(float(r[ia].max()), 1.0)
    k = np.ceil(r[ia] / cell)
    wide, narrow, k = ia[k > _MAX_REACH], ia[k <= _MAX_REACH], k[k <= _MAX_REACH].astype(np.int64)
    out_i, out_j = [], []
    if len(narrow):
        ca, cb = np.floor(a[narrow] / cell), np.floor(b[ib] / cell)
        lo = np.minimum(ca.min(0), cb.min(0)) - _MAX_REACH - 1
        span = np.maximum(ca.max(0), cb.max(0)) - lo + _MAX_REACH + 2
        if span[0] * span[1] > _MAX_CELLS:  # far-flung points: measured against every point below
            wide, narrow = ia, narrow[:0]
        else:
            width = int(span[0])
            ax, ay = (ca - lo).astype(np.int64).T
            bx, by = (cb - lo).astype(np.int64).T
            order = np.argsort(by * width + bx, kind="stable")
            keys = (by * width + bx)[order]
            # each point's rows of cells, -k .. k about its own, all at once
            at = np.repeat(np.arange(len(narrow)), 2 * k + 1)
            row = (ay[at] + ranges(-k, 2 * k + 1)) * width + ax[at]
            first = np.searchsorted(keys, row - k[at], "left")
            count = np.searchsorted(keys, row + k[at], "right") - first
            out_i.append(np.repeat(narrow[at], count))
            out_j.append(ib[order[ranges(first, count)]])
    for i in wide.tolist():
        out_i.append(np.full(len(ib), i, np.int64))
        out_j.append(ib)
    i, j = np.concatenate(out_i) if out_i else empty, np.concatenate(out_j) if out_j else empty
    dx, dy = a[:, 0][i] - b[:, 0][j], a[:, 1][i] - b[:, 1][j]
    keep = dx * dx + dy * dy <= np.square(r)[i]
    key = i[keep] * len(b) + j[keep]
    key.sort()
    return key // len(b), key % len(b)


def close_pairs(points: np.ndarray, radius: Union[float, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j: every pair of points (float[N, 2]) at most max(radius[i], radius[j])
    apart (radius: one number, or float[N]; a NaN or negative one gives way to the other point's),
    sorted by i then j. For the small radii it serves (near-coinciding detections), a sweep along x:
    each point against the points after it within the largest radius."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    r = np.broadcast_to(np.asarray(radius, np.float64), (len(points),))
    r = np.where(r >= 0, r, np.nan)
    empty = np.zeros(0, np.int64)
    valid = np.flatnonzero(np.isfinite(points).all(1))
    if len(valid) < 2 or not np.isfinite(r[valid]).any():
        return empty, empty
    reach = float(np.nanmax(r[valid]))
    order = valid[np.argsort(points[valid, 0], kind="stable")]
    xs = points[order, 0]
    after = np.searchsorted(xs, xs + reach, "right") - np.arange(len(order)) - 1
    a = np.repeat(np.arange(len(order)), after)
    b = ranges(np.arange(1, len(order) + 1), after)
    i, j = order[a], order[b]
    d = points[i] - points[j]
    limit = np.fmax(r[i], r[j])
    keep = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] <= limit * limit
    i, j = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
    key = i * len(points) + j
    key.sort()
    return key // len(points), key % len(points)
