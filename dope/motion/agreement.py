"""A pose's 3D x and y brought towards what its own 2D pose says of them.

DOPE gives each detection a 2D pose (pixels) and a 3D pose (metres, centred on the part), seen
by one camera: up to the camera's scale and the axes' directions, the 3D x and y of a joint are
its 2D x and y, plus a perspective term that grows with the joint's depth (a joint nearer the
camera lies further from the image centre). Per detection and axis, a least-squares fit

    x3[j] = a u[j] + b z[j] + c (z[j] u[j] - mean(z u)) + e[j]

(u: the joint's 2D x less the pose's mean, z: its 3D depth less theirs, x3 centred) explains the
3D coordinate by the 2D one (a: the person's depth over the focal length, with the axes'
directions), the depth (b: how far off the image centre the person is) and their product (c: one
over the focal length): for a pinhole camera and exact poses, e is zero. What the fit leaves, e[j],
is the detector's 3D error that its 2D pose does not share, plus its 2D error, plus what the
camera model misses (lens distortion). The smoothers take a share of it (`amount`) out of
their 3D poses; z is left as it is, as nothing in the image measures it.

The share is small and fixed: the residual mixes the three sources, and which dominates differs
from one detector and scene to the next (a detector's 3D noise correlated in time or a constant
per-person 3D bias, which no smoothing removes, against 2D errors of people cut by the image's
border). Where the fit explains little of a pose's 3D spread (`min_fit`: a 3D frame that is not
the image's, a pose whose 2D joints are mostly guessed), the pose is left alone. Measured
against the truth on the four generators of `bench.py --tracking` (design notes, round 16).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

AMOUNT = 0.3  # the share of the residual taken out
MIN_FIT = 0.8  # the share of a pose's 3D spread (per axis) the fit must explain
MIN_JOINTS = 6  # the fewest joints a fit is made on (it has 4 unknowns)
BORDER = 1.0  # pixels: joints nearer the image's border than this are not used


def agree_with_2d(pose2d: np.ndarray, pose3d: np.ndarray, amount: float = AMOUNT,
                  min_fit: float = MIN_FIT, image: Optional[tuple[int, int]] = None) -> np.ndarray:
    """pose3d (float[N, J, 3]) with `amount` of each pose's 3D x and y residual from the fit on its
    2D pose (float[N, J, 2]) and its depth taken out, per axis where the fit explains at least
    `min_fit` of the pose's 3D spread along it (see the module docstring). image: (width,
    height), pixels: joints at or beyond the image's border (the detector guessed where they
    are, or put them on the border) are left out of the fit and keep their 3D coordinates, and a
    pose with fewer than half its joints (and 6) in the image is left alone. A new array of
    pose3d's dtype; poses with a non-finite joint, or fewer than 6 joints, are copied as they are."""
    out = np.array(pose3d, copy=True)
    n, j = pose3d.shape[:2]
    if amount <= 0 or n == 0 or j < MIN_JOINTS:
        return out
    valid = np.isfinite(pose2d).all((1, 2)) & np.isfinite(pose3d).all((1, 2))
    inside = None
    if image is not None and image[0] > 0 and image[1] > 0:
        x, y = pose2d[..., 0], pose2d[..., 1]
        inside = (x > BORDER) & (x < image[0] - BORDER) & (y > BORDER) & (y < image[1] - BORDER)
        count = inside.sum(1)
        valid &= (count >= MIN_JOINTS) & (2 * count >= j)
        if valid.all() and inside.all():
            inside = None
    if not valid.any():
        return out
    rows = np.flatnonzero(valid)
    # (coordinate-major, contiguous, float32: the sums are over at most a face's 84 joints)
    p2 = np.ascontiguousarray(np.moveaxis(np.asarray(pose2d)[rows], -1, 0), np.float32)  # float[2, N, J]
    p3 = np.ascontiguousarray(np.moveaxis(np.asarray(pose3d)[rows], -1, 0), np.float32)  # float[3, N, J]
    if inside is None:
        centred = lambda a: a - a.mean(-1, keepdims=True)
    else:  # the joints in the image alone: the others count as 0 in every sum
        weight = inside[rows].astype(np.float32)
        total = count[rows, None].astype(np.float32)
        centred = lambda a: (a - (a * weight).sum(-1, keepdims=True) / total) * weight
    p2, p3 = centred(p2), centred(p3)
    z = p3[2]
    szz = _dot(z, z)
    for k in (0, 1):
        u, y = p2[k], p3[k]
        w = centred(z * u)
        # The normal equations (3 x 3, symmetric) solved by their adjugate, all poses at once (a
        # tiny ridge, relative to each regressor's spread; a regressor that is 0 throughout, as
        # the depth of a flat pose, gets 1 on the diagonal and a coefficient of 0: the pose is
        # fitted on the others).
        g00, g11, g22 = (np.where(g > 0, g * (1 + 1e-9), 1.0) for g in (_dot(u, u), szz, _dot(w, w)))
        g01, g02, g12 = _dot(u, z), _dot(u, w), _dot(z, w)
        b0, b1, b2 = _dot(u, y), _dot(z, y), _dot(w, y)
        c00, c01, c02 = g11 * g22 - g12 * g12, g02 * g12 - g01 * g22, g01 * g12 - g02 * g11
        c11, c12, c22 = g00 * g22 - g02 * g02, g01 * g02 - g00 * g12, g00 * g11 - g01 * g01
        det = g00 * c00 + g01 * c01 + g02 * c02
        det = np.where(det > 0, det, np.inf)  # (not solvable: no change)
        a0 = (c00 * b0 + c01 * b1 + c02 * b2) / det
        a1 = (c01 * b0 + c11 * b1 + c12 * b2) / det
        a2 = (c02 * b0 + c12 * b1 + c22 * b2) / det
        a0, a1, a2 = (a.astype(np.float32)[:, None] for a in (a0, a1, a2))
        residual = y - a0 * u - a1 * z - a2 * w  # (0 at the joints left out)
        spread = _dot(y, y)
        fit = 1.0 - _dot(residual, residual) / np.maximum(spread, 1e-300)
        use = (spread > 0) & (fit >= min_fit)
        if use.any():
            out[rows[use], :, k] -= (amount * residual[use]).astype(out.dtype)
    return out


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64[N]: the sum over the joints of a * b (float[N, J] each)."""
    return np.einsum("nj,nj->n", a, b).astype(np.float64)
