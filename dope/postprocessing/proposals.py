"""From the network's anchor-pose scores and poses to detections (SPEC §4-5); assignment.py links them.

Two post-processings, over one part's arrays of one image:
    scores (N, A+1): column 0 background, column 1+a anchor pose a;  boxes (N, 4) x1 y1 x2 y2 pixels;
    pose2d (N, A, J, 2) pixels;  pose3d (N, A, J, 3).
`ppi` (pose proposals integration, the default) and `nms` both return that part's detections by
decreasing score. Everything here is array code: its cost grows with candidates x modes (about
candidates x people), with Python loops over people and modes per person, never over candidates.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from dope.network.ops import nms as box_nms
from dope.parts import PARTS
from dope.results import PartArrays
from dope.settings import PPI_SETTINGS, Rule, check_settings

# Pose-distance overlap functions of PPI: the joints compared, and their left/right swap.
POSE_SUBSETS: dict[str, tuple[Optional[list[int]], Optional[list[int]]]] = {
    "mje": (None, None),
    "torso": ([4, 5, 10, 11], None),
    "torsohead": ([4, 5, 10, 11, 12], None),
    "head": ([12], None),
    "shoulderhead": ([10, 11, 12], None),
    "torsoLR": ([4, 5, 10, 11], [5, 4, 11, 10]),
    "torsoheadLR": ([4, 5, 10, 11, 12], [5, 4, 11, 10, 12]),
    "shoulderheadLR": ([10, 11, 12], [11, 10, 12]),
}
BOX_OVERLAPS = ("bbox", "bbox_torsohead")  # the published code treats both as proposal-box IoU
LEG_JOINTS = slice(0, 4)
UPPER_BODY_LEG_WEIGHT = 0.1  # legs of upper-body anchor poses count this much in a body's mode
BODY_JOINTS = PARTS["body"].num_joints
HAND_JOINTS = PARTS["hand"].num_joints
FACE_JOINTS = PARTS["face"].num_joints
POSE_BOX_MARGIN = 0.1  # boxes around poses grow by this fraction of their size on every side
NMS_IOU = 0.1
NMS_SETTINGS = {"min_score": Rule("float", 0), "K": PPI_SETTINGS["K"]}


def _joint_major(poses: np.ndarray) -> np.ndarray:
    """poses (k, J, D) as a new (D, J, k) array (members contiguous), copied in row tiles."""
    k = len(poses)
    out = np.empty(poses.shape[::-1], poses.dtype)
    for a in range(0, k, TRANSPOSE_ROWS):
        out[:, :, a:a + TRANSPOSE_ROWS] = poses[a:a + TRANSPOSE_ROWS].transpose(2, 1, 0)
    return out


def _coordinate_major(poses: np.ndarray) -> np.ndarray:
    """poses (k, J, D) as a new (D, k, J) array: per coordinate, an (items, joints) matrix."""
    out = np.empty((poses.shape[2],) + poses.shape[:2], poses.dtype)
    np.copyto(out, poses.transpose(2, 0, 1))
    return out


def _check(scores: np.ndarray, boxes: np.ndarray, pose2d: np.ndarray, pose3d: np.ndarray) -> None:
    n, a1 = scores.shape
    if boxes.shape != (n, 4) or pose2d.shape[:2] != (n, a1 - 1) or pose2d.shape[3:] != (2,) \
            or pose3d.shape != pose2d.shape[:3] + (3,):
        raise ValueError(f"inconsistent shapes: scores {scores.shape}, boxes {boxes.shape}, "
                         f"pose2d {pose2d.shape}, pose3d {pose3d.shape}")


def box_iou_plus1(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """IoU (R, C) of boxes rows (R, 4) with boxes cols (C, 4), with the +1 pixel convention of the
    published PPI (area = (x2-x1+1)(y2-y1+1), intersection likewise). A single box (4,) gives (C,)."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    one = rows.ndim == 1
    iou = _iou_plus1(np.atleast_2d(rows)[:, None, :], cols[None, :, :])
    return iou[0] if one else iou


def _iou_plus1(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """IoU of boxes r (..., 4) and c (..., 4), broadcast against each other. The same operations
    in the same order whichever box comes first, so IoU(a, b) and IoU(b, a) are equal to the bit."""
    # in place, in the order of: inter = clip(min - max + 1, 0) per axis, multiplied;
    # iou = inter / (area_r + area_c - inter)
    iw = np.minimum(r[..., 2], c[..., 2])
    iw -= np.maximum(r[..., 0], c[..., 0])
    iw += 1
    ih = np.minimum(r[..., 3], c[..., 3])
    ih -= np.maximum(r[..., 1], c[..., 1])
    ih += 1
    inter = np.clip(iw, 0, None, out=iw)
    inter *= np.clip(ih, 0, None, out=ih)
    area_r = (r[..., 2] - r[..., 0] + 1) * (r[..., 3] - r[..., 1] + 1)
    area_c = (c[..., 2] - c[..., 0] + 1) * (c[..., 3] - c[..., 1] + 1)
    union = area_r + area_c
    union -= inter
    return np.divide(inter, union, out=inter)


def _mean_joint_distance(poses: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Mean over joints of the Euclidean joint distance: poses (..., J, D) against ref (broadcastable)
    -> (...).

    The same arithmetic as `np.sqrt(((poses - ref) ** 2).sum(-1)).mean(-1)` (so the same results to
    the bit), but summing the D coordinates as slices: numpy's sum over a trailing axis of length 2
    or 3 is several times slower.
    """
    diff = poses - ref
    np.multiply(diff, diff, out=diff)
    sq = diff[..., 0] + diff[..., 1]
    for k in range(2, diff.shape[-1]):
        sq += diff[..., k]
    return np.sqrt(sq, out=sq).mean(-1)


# Greedy grouping examines this many (head, item) pairs per array operation at most: large enough
# to amortise Python, small enough for the temporaries to stay in cache.
PAIRS_PER_BLOCK = 1 << 18
# Groups of at least this many candidates look for their modes one group at a time, several leaders
# per step (`_group_modes`); smaller ones all together, one leader per group per step.
LARGE_GROUP = 256
# (leader, member, joint) triples: per pass of _joint_distances (its two scratch slabs stay in the
# core's cache), and per block of leaders tried in _group_modes at most.
DISTANCE_TILE = 1 << 17
LEADER_BLOCK = 1 << 20
TRANSPOSE_ROWS = 256  # rows per tile of a transpose to the joint-major layout (cache-sized)
FEW_SEGMENTS = 32  # mode poses: weights as (modes, rows) matrices up to this many modes (_mode_means),
# unless the members are fewer than half the rows (then gathered, `_gathered_means`)


def _greedy_groups(order: np.ndarray, overlaps: Callable[[np.ndarray, np.ndarray], np.ndarray],
                   pair_cost: int = 1) -> tuple[np.ndarray, int]:
    """Greedy cover: the first item of `order` not yet grouped leads a new group, which takes every
    item not yet grouped that it overlaps; repeat until every item has a group.

    order (n,): item indexes in processing order.  overlaps(heads (b,), items (m,)) -> bool (b, m).
    Returns each item's group (n,) (groups numbered in creation order) and the number of groups.
    The next items in order are examined a block at a time (one overlap computation per block); the
    block grows while its heads all turn out to lead groups and shrinks when most are taken by an
    earlier head, so the work is close to (groups x items) with few Python iterations.
    """
    label = np.empty(len(order), np.intp)
    remaining = np.asarray(order)
    n_groups, block = 0, 1
    while len(remaining):
        b = max(1, min(block, len(remaining), PAIRS_PER_BLOCK // (pair_cost * len(remaining))))
        ov = overlaps(remaining[:b], remaining)
        ov[np.arange(b), np.arange(b)] = True  # a head always belongs to its own group
        taken = np.zeros(b, bool)
        leads = []
        for i in range(b):  # which heads lead: only the (b, b) block matters
            if not taken[i]:
                leads.append(i)
                taken |= ov[i, :b]
        hit = ov[leads]
        taken = hit.any(0)
        label[remaining[taken]] = n_groups + hit.argmax(0)[taken]  # the first leader that overlaps
        remaining = remaining[~taken]
        n_groups += len(leads)
        block = 2 * b if len(leads) == b else 2 * len(leads)
    return label, n_groups


def _groups_by_box(cand_n: np.ndarray, s: np.ndarray, boxes: np.ndarray, th_iou: float) -> tuple[np.ndarray, int]:
    """People when overlap is proposal-box IoU: each candidate's group (C,) and the number of groups.

    All candidates of one proposal share its box, and a box overlaps itself, so candidates join
    groups a whole proposal at a time: the greedy cover runs over proposals, each proposal ranked by
    its best candidate (ties: lower proposal index, i.e. earlier candidate).
    """
    starts, proposal = _segments(cand_n)  # candidates of one proposal are contiguous
    pboxes = boxes[cand_n[starts]]
    best = np.maximum.reduceat(s, starts)
    order = np.argsort(-best, kind="stable")
    pairs = _intersecting_pairs(pboxes)
    if pairs is None:  # most boxes meet: the blocked greedy cover over the (heads, boxes) IoU
        label, n = _greedy_groups(order, lambda heads, items: box_iou_plus1(pboxes[heads], pboxes[items]) > th_iou)
    else:
        label, n = _greedy_cover(order, pairs, _iou_plus1(pboxes[pairs[0]], pboxes[pairs[1]]) > th_iou)
    return label[proposal], n


# Box pairs whose x extents overlap, per box, above which the pairs are not listed: listing costs
# about the pairs, the blocked cover about groups x boxes, and many pairs per box means few groups
SPARSE_PAIRS = 32
BOX_SLACK = 2.0  # pixels (plus 1e-5 of the coordinates) added to x extents: IoU > 0 needs them to meet


def _intersecting_pairs(boxes: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Every pair (i, j), i != j, of boxes (P, 4) whose IoU can be above 0, as two index arrays
    (each pair once), or None when they would be more than SPARSE_PAIRS per box.

    A positive +1-convention intersection needs the x extents [x1, x2 + 1] to meet; boxes are swept
    by x1, and each is paired with the next ones whose x1 lies within its extent (plus BOX_SLACK,
    so that rounding never drops a pair; the exact IoU decides). Non-finite boxes pair with nothing
    they could overlap (their IoU is NaN or 0)."""
    n = len(boxes)
    x1 = boxes[:, 0].astype(np.float64)
    x2 = boxes[:, 2].astype(np.float64)
    order = np.argsort(x1, kind="stable")
    xs = x1[order]
    reach = x2[order] + 1 + BOX_SLACK + 1e-5 * (np.abs(x2[order]) + np.abs(xs))
    hi = np.searchsorted(xs, reach, side="right")  # NaN reach: to the end (the exact IoU rejects)
    counts = np.maximum(hi - np.arange(1, n + 1), 0)
    total = int(counts.sum())
    if total > SPARSE_PAIRS * n:
        return None
    first = np.repeat(np.arange(n), counts)
    second = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + first + 1
    return order[first], order[second]


def _greedy_cover(order: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], overlap: np.ndarray
                  ) -> tuple[np.ndarray, int]:
    """`_greedy_groups` for a symmetric overlap given as the pairs (i, j) that overlap (overlap
    (E,) selects them among `pairs`): each item's group (numbered in creation order) and the number
    of groups. One pass over the items in order, each head taking its overlapping items not yet
    grouped from an adjacency list."""
    n = len(order)
    i, j = pairs[0][overlap], pairs[1][overlap]
    src, dst = np.concatenate([i, j]), np.concatenate([j, i])
    by_src = np.argsort(src.astype(np.uint16) if n <= 1 << 16 else src, kind="stable")  # radix sort
    bounds = np.searchsorted(src[by_src], np.arange(n + 1)).tolist()
    neighbours = dst[by_src].tolist()
    label = [-1] * n
    groups = 0
    for head in order.tolist():
        if label[head] < 0:
            label[head] = groups
            for item in neighbours[bounds[head]:bounds[head + 1]]:
                if label[item] < 0:
                    label[item] = groups
            groups += 1
    return np.array(label, np.intp), groups


def _groups_by_pose(s: np.ndarray, pose2d: np.ndarray, boxes: np.ndarray, th_iou: float,
                    subset: Optional[list[int]], swapped: Optional[list[int]]) -> tuple[np.ndarray, int]:
    """People when overlap is a normalised 2D pose distance: each candidate's group and the number
    of groups. pose2d (C, J, 2) and boxes (C, 4) are the candidates'."""
    ref = pose2d if subset is None else pose2d[:, subset]
    alt = None if swapped is None else pose2d[:, swapped]
    norm = 2 * np.maximum(boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1)

    def overlaps(heads: np.ndarray, items: np.ndarray) -> np.ndarray:
        head = ref[heads][:, None]
        dist = _mean_joint_distance(ref[items][None], head)
        if alt is not None:  # the candidate's left/right-swapped joints against the head's
            dist = np.minimum(dist, _mean_joint_distance(alt[items][None], head))
        return dist / norm[heads][:, None] < th_iou

    return _greedy_groups(np.argsort(-s, kind="stable"), overlaps, pair_cost=ref.shape[1])


def _segments(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For labels where equal ones are contiguous: (start of each run, run index of each item)."""
    first = np.ones(len(labels), bool)
    first[1:] = labels[1:] != labels[:-1]
    return np.flatnonzero(first), np.cumsum(first) - 1


def _joint_distances(members: np.ndarray, leaders: np.ndarray) -> np.ndarray:
    """Mean Euclidean joint distance of every leader to every member: members (D, J, k) and leaders
    (D, J, b), coordinate- and joint-major -> (b, k).

    To the bit what `_mean_joint_distance` gives (the plain `np.sqrt(((p - q) ** 2).sum(-1)).mean(-1)`):
    the same float32 operations in the same order, the mean over joints included, whose order is
    numpy's pairwise summation over a contiguous axis (8 running sums, see `_pairwise_joint_sum`).
    Here every operation runs over a (leaders, J, k) slab with the members contiguous (inner loops
    k long), as few leaders at a time as keep the two scratch slabs in the core's cache: about ten
    vectorised passes per (leader, member, joint) triple and no per-row overhead.
    """
    d, j, k = members.shape
    b = leaders.shape[2]
    step = min(b, max(1, DISTANCE_TILE // (j * k)))
    sq, tmp = np.empty((step, j, k), members.dtype), np.empty((step, j, k), members.dtype)
    acc = np.empty((step, min(8, j), k), members.dtype)
    lead = leaders.transpose(0, 2, 1)[..., None]  # (D, b, J, 1): one value per leader and joint
    out = np.empty((b, k), members.dtype)
    for a in range(0, b, step):
        n = min(step, b - a)
        x, t = sq[:n], tmp[:n]
        np.subtract(members[0], lead[0, a:a + n], out=x)
        np.multiply(x, x, out=x)
        for c in range(1, d):
            np.subtract(members[c], lead[c, a:a + n], out=t)
            np.multiply(t, t, out=t)
            x += t
        np.sqrt(x, out=x)
        out[a:a + n] = _pairwise_joint_sum(x, acc[:n])
    out /= members.dtype.type(j)
    return out


def _paired_distances(rows: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """Mean Euclidean joint distance of every item to its partner: rows (D, n, J) poses, one
    (items, joints) matrix per coordinate (`_coordinate_major`), partner (n,) item indexes -> (n,).

    To the bit what `_mean_joint_distance(poses, poses[partner])` gives: the same float32
    operations in the same order, the mean over joints being numpy's own sum over each item's
    joints as they lie contiguous, as in the plain formula. A tile of items at a time, the
    partners' rows gathered whole (twice as fast as the columns of a joint-major layout) into two
    slabs that stay in the core's cache, so that no temporary grows with n.
    """
    d, n, j = rows.shape
    step = max(1, min(n, DISTANCE_TILE // (2 * j)))
    scratch = np.empty((2, step * j), rows.dtype)
    out = np.empty(n, rows.dtype)
    for a in range(0, n, step):
        w = min(step, n - a)
        x, t = scratch[0, :w * j].reshape(w, j), scratch[1, :w * j].reshape(w, j)
        idx = partner[a:a + w]
        for c in range(d):
            np.take(rows[c], idx, axis=0, out=t, mode="clip")  # valid indexes: no check copy
            np.subtract(rows[c, a:a + w], t, out=t)
            np.multiply(t, t, out=t)
            if c == 0:
                x, t = t, x
            else:
                x += t
        np.sqrt(x, out=x)
        np.sum(x, axis=1, out=out[a:a + w])
    out /= rows.dtype.type(j)
    return out


def _pairwise_joint_sum(x: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """x (b, J, k) summed over J in the order numpy's `sum` uses along a contiguous axis of up to 128
    items (pairwise_sum: fewer than 8 items one after the other; else 8 running sums over items
    i, i+8, ..., combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the remaining J % 8 items
    added one by one) -> (b, k). acc: scratch (b, min(8, J), k). tests/test_performance.py checks
    the order against numpy's own result."""
    j = x.shape[1]
    if j > 128:
        raise ValueError(f"{j} joints: the summation order is written for at most 128")
    if j < 8:
        total = x[:, 0].copy()
        for i in range(1, j):
            total += x[:, i]
        return total
    n8 = j - j % 8
    np.copyto(acc, x[:, :8])
    for i in range(8, n8, 8):
        acc += x[:, i:i + 8]
    acc[:, 0] += acc[:, 1]
    acc[:, 2] += acc[:, 3]
    acc[:, 4] += acc[:, 5]
    acc[:, 6] += acc[:, 7]
    acc[:, 0] += acc[:, 2]
    acc[:, 4] += acc[:, 6]
    total = acc[:, 0] + acc[:, 4]
    for i in range(n8, j):
        total += x[:, i]
    return total


def _best_modes(s: np.ndarray, pose3d: np.ndarray, group: np.ndarray, n_groups: int, th_pose3d: float,
                min_mode_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The highest-scoring mode of every group: (top candidate (G,), score (G,), member mask (C,)).

    s (C,) candidate scores, pose3d (C, J, 3), group (C,) in 0..G-1, sorted by group (and by
    candidate order within a group, which breaks score ties: first wins). In each group, modes are
    found greedily from the highest-scoring unassigned member r; a mode gathers every member
    (assigned or not) whose mean 3D joint distance to r's pose is below th_pose3d; the search stops
    at an r scoring below min_mode_score once a mode exists. Mode scores are summed in float64, in
    candidate order. Groups of at least LARGE_GROUP members are searched one at a time, several
    leaders per step (`_group_modes`); the others all together, one mode per group per step.
    """
    n = len(s)
    top = np.full(n_groups, -1)
    best = np.full(n_groups, -np.inf)
    member = np.zeros(n, bool)
    starts, _ = _segments(group)
    ends = np.append(starts[1:], n)
    large = np.flatnonzero(ends - starts >= LARGE_GROUP)
    for i in large.tolist():
        a, b = starts[i], ends[i]
        t, best[group[a]], member[a:b] = _group_modes(s[a:b], pose3d[a:b], th_pose3d, min_mode_score)
        top[group[a]] = a + t
    if len(large) == 0:
        return _modes_by_rounds(s, pose3d, group, n_groups, th_pose3d, min_mode_score)
    small = np.ones(n_groups, bool)
    small[group[starts[large]]] = False
    if small.any():
        idx = np.flatnonzero(small[group])
        ids, local = np.unique(group[idx], return_inverse=True)
        t, sc, mem = _modes_by_rounds(s[idx], pose3d[idx], local, len(ids), th_pose3d, min_mode_score)
        top[ids], best[ids], member[idx] = idx[t], sc, mem
    return top, best, member


# Certified shortcut of the mode search's distance test (`_ModeDistances`): a member is taken without
# computing its exact distance when an upper bound of that distance, with a margin far larger than
# float32 rounding can move the exact value, is below the threshold; the others get the exact formula.
FLOAT32_UNIT_ROUNDOFF = 2.0 ** -24
BOUND_MARGIN = 1e-4  # relative; the exact float32 result is within (J + 4) u < 1e-5 of the real distance
EXACT_FRACTION = 0.25  # more undecided (leader, member) pairs than this: the whole block exactly
NO_BOUND_FRACTION = 0.5  # ... and more than this: the group's next blocks skip the bound


class _ModeDistances:
    """Which members of one group lie within th_pose3d of given leaders, exactly as
    `_mean_joint_distance(...) < th_pose3d` decides (the same bits), mostly without computing it.

    The mean joint distance is at most the root mean square joint distance, sqrt(|p - q|^2 / J) over
    the pose as one vector, and |p - q|^2 = |p|^2 - 2 p.q + |q|^2 is a matrix product over the group's
    rows as they lie. Members whose bound, rounding errors included (`_upper_bound`), is below the
    threshold by BOUND_MARGIN are within; only the others (other people in the group, poses near the
    threshold) get the exact formula. Where poses scatter around the threshold, the bound decides
    little and the group falls back to the exact joint-major kernel for every member.
    """

    def __init__(self, pose3d: np.ndarray, th_pose3d: float):
        self.poses = pose3d  # (k, J, D), contiguous
        k, self.j, d = pose3d.shape
        self.rows = pose3d.reshape(k, self.j * d)
        self.th = float(th_pose3d)
        self.use_bound = self.th > 0 and self.j <= 128  # the margin covers rounding over up to 128 joints
        self.sq_norms: Optional[np.ndarray] = None
        self.joint_major: Optional[np.ndarray] = None  # (D, J, k), made when a block is computed exactly

    def within(self, tried: np.ndarray) -> np.ndarray:
        """(b, k) bool: member i is within th of leader tried[l]."""
        if not self.use_bound:
            return self._exact_block(tried)
        sure = self._upper_bound(tried) < self.th * (1 - BOUND_MARGIN)
        undecided = ~sure
        count = int(np.count_nonzero(undecided))
        if count == 0:
            return sure
        if count > EXACT_FRACTION * undecided.size:
            self.use_bound = count <= NO_BOUND_FRACTION * undecided.size
            return self._exact_block(tried)
        li, mi = np.nonzero(undecided)
        sure[li, mi] = _mean_joint_distance(self.poses[mi], self.poses[tried[li]]) < self.th
        return sure

    def _upper_bound(self, tried: np.ndarray) -> np.ndarray:
        """(b, k) float64: at least the real mean joint distance of every (leader, member) pair.

        |p|^2, p.q and |q|^2 in float32 are each within n u (n = J * D terms, any summation order)
        of their sum of absolute products; their errors together are under 2 n u (|p| + |q|)^2 in
        the squared distance, which is added, so the result bounds the real squared distance."""
        with np.errstate(over="ignore", invalid="ignore"):  # a pose with inf or NaN: no bound (NaN), exact
            if self.sq_norms is None:
                self.sq_norms = np.einsum("ij,ij->i", self.rows, self.rows).astype(np.float64)
            a = self.sq_norms
            c = a[tried][:, None]
            dots = (self.rows[tried] @ self.rows.T).astype(np.float64)
            err = np.sqrt(a) + np.sqrt(c)
            err *= err
            err *= 2 * (self.rows.shape[1] + 4) * FLOAT32_UNIT_ROUNDOFF
            sq = a + c
            sq -= 2 * dots
            sq += err
            np.maximum(sq, 0, out=sq)
            sq /= self.j
            return np.sqrt(sq, out=sq)

    def _exact_block(self, tried: np.ndarray) -> np.ndarray:
        if self.joint_major is None:
            self.joint_major = _joint_major(self.poses)  # members contiguous
        return _joint_distances(self.joint_major, self.joint_major[:, :, tried]) < self.th


def _group_modes(s: np.ndarray, pose3d: np.ndarray, th_pose3d: float,
                 min_mode_score: float) -> tuple[int, float, np.ndarray]:
    """`_best_modes` for one group: (top member, score, member mask (k,)).

    The next unassigned members by decreasing score are tried as leaders a block at a time: one
    distance test gives every tried member's neighbours in the whole group (`_ModeDistances`), then
    the block's own (b, b) part says which of them really lead (one that an earlier leader of the
    block takes does not). The block doubles while all its members lead and shrinks to twice the
    leaders found otherwise, so few distances are computed in vain, with few Python iterations.
    The first leader is the best member (no sort); the others are sorted only when a group has
    more than one mode to look for.
    """
    k, j, d = pose3d.shape
    distances = _ModeDistances(pose3d, th_pose3d)
    cap = max(1, LEADER_BLOCK // (j * k))  # leaders tried per block
    unassigned = np.ones(k, bool)
    best, top, member = -np.inf, -1, np.zeros(k, bool)
    tried = np.array([np.argmax(s)])  # the first leader leads whatever its score (ties: first)
    rest: Optional[np.ndarray] = None
    while True:
        b = len(tried)
        m = distances.within(tried)
        m[np.arange(b), tried] = True
        own = m[:, tried]
        taken = np.zeros(b, bool)
        leads = []
        for i in range(b):
            if not taken[i]:
                leads.append(i)
                taken |= own[i]
        rows = m[leads]
        r, c = np.nonzero(rows)  # by leader, then member order: the order the sums run in
        score = np.bincount(r, weights=s[c], minlength=len(leads))
        i = int(np.argmax(score))  # the first of equal scores: an earlier leader wins
        if score[i] > best:
            best, top, member = float(score[i]), int(tried[leads[i]]), rows[i]
        unassigned[c] = False
        if rest is None:  # a mode exists now: only unassigned members scoring at least min_mode_score
            left = np.flatnonzero(unassigned & (s >= min_mode_score))  # lead, by decreasing score
            rest = left[np.argsort(-s[left], kind="stable")]  # (ties: first)
        else:
            rest = rest[unassigned[rest]]
        if not len(rest):
            return top, best, member
        block = 2 * b if len(leads) == b else 2 * len(leads)
        tried = rest[:min(block, cap)]


def _modes_by_rounds(s: np.ndarray, pose3d: np.ndarray, group: np.ndarray, n_groups: int, th_pose3d: float,
                     min_mode_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_best_modes` for many small groups: all groups advance together, round k finding every
    group's k-th mode with array operations over the groups still searching, so the cost is
    (sum over groups of modes x members) with one Python iteration per round."""
    n = len(s)
    unassigned = np.ones(n, bool)
    member = np.zeros(n, bool)
    best = np.full(n_groups, -np.inf)
    top = np.full(n_groups, -1)
    has_mode = np.zeros(n_groups, bool)
    # The members of the groups still searching (compacted when groups stop): their indexes,
    # scores and poses; per searching group: its id, where it starts and its size.
    live, sl = np.arange(n), s
    X = _coordinate_major(pose3d)  # (D, live, J): each member's joints contiguous
    starts, seg = _segments(group)  # seg: each live candidate's searching group (0, 1, ...)
    sizes = np.diff(np.append(starts, n))
    g = group[starts]
    while True:
        left = np.where(unassigned[live], sl, -np.inf)
        top_score = np.maximum.reduceat(left, starts)  # each searching group's best unassigned score
        go = (top_score > -np.inf) & ~((top_score < min_mode_score) & has_mode[g])
        if not go.all():
            if not go.any():
                break
            keep = go[seg]
            kept = np.flatnonzero(keep)
            kept_x = np.take(X, kept, axis=1, out=np.empty((len(X), len(kept), X.shape[2]), X.dtype),
                             mode="clip")
            live, sl, X, left = live[kept], sl[kept], kept_x, left[kept]
            seg = (np.cumsum(go) - 1)[seg[keep]]
            top_score, g, sizes = top_score[go], g[go], sizes[go]
            starts = np.cumsum(sizes) - sizes
        hit = np.flatnonzero(left == top_score[seg])
        lead = np.ones(len(hit), bool)
        lead[1:] = seg[hit[1:]] != seg[hit[:-1]]
        r = hit[lead]  # the leaders (positions in the live arrays), one per group, in group order
        dist = _paired_distances(X, r[seg])
        m = dist < th_pose3d
        m[r] = True
        score = np.bincount(seg[m], weights=sl[m], minlength=len(g))
        better = score > best[g]
        gb = g[better]
        best[gb] = score[better]
        top[gb] = live[r[better]]
        upd = better[seg]
        member[live[upd]] = m[upd]
        has_mode[g] = True
        unassigned[live[m]] = False
    return top, best, member


def ppi(scores: np.ndarray, boxes: np.ndarray, pose2d: np.ndarray, pose3d: np.ndarray,
        resolution: Optional[Sequence[int]] = None, *, K: Optional[int] = None,
        score_th: Optional[float] = None, th_pose3D: float = 0.3, th_iou: float = 0.2,
        iou_func: str = "bbox", min_mode_score: float = 0.05, th_persondetect: float = 0.002,
        **unknown: Any) -> PartArrays:
    """Pose proposals integration: one detection per person, by decreasing score.

    scores (N, A+1), boxes (N, 4), pose2d (N, A, J, 2), pose3d (N, A, J, 3): one part of one
    image. resolution (H, W) is accepted for compatibility with the published signature; no
    overlap function uses it. K: anchor poses 0..K-1 are full-body (bodies) or right hands
    (hands); None means A+1 (all of them). score_th None means 0.1 / A.
    Cost: array work in (candidates x modes per person), Python iterations in the number of
    people (grouping) and of modes per person.
    Settings are checked by name, type and range (settings.PPI_SETTINGS): a misspelled one
    (th_IoU, th_pose3d) raises a SettingError (a ValueError) that names it and the known ones.
    """
    check_settings(dict(unknown, K=K, score_th=score_th, th_pose3D=th_pose3D, th_iou=th_iou, iou_func=iou_func,
                        min_mode_score=min_mode_score, th_persondetect=th_persondetect), PPI_SETTINGS, "ppi")
    scores, boxes = np.asarray(scores), np.asarray(boxes)
    pose2d, pose3d = np.asarray(pose2d), np.asarray(pose3d)
    _check(scores, boxes, pose2d, pose3d)
    num_poses = scores.shape[1] - 1
    num_joints = pose2d.shape[2]
    K = num_poses + 1 if K is None else K
    score_th = 0.1 / num_poses if score_th is None else score_th
    if iou_func not in BOX_OVERLAPS + ("mje",) and num_joints != BODY_JOINTS:
        raise ValueError(f"iou_func {iou_func!r} is for bodies only; hands and faces use 'bbox' or 'mje'")

    part = _part_of(num_joints)
    cand_n, cand_a = np.nonzero(scores[:, 1:] >= score_th)  # row-major: the candidates' order
    if len(cand_n) == 0:
        return PartArrays(part)
    s = scores[cand_n, 1 + cand_a]
    if iou_func in BOX_OVERLAPS:
        group, n_groups = _groups_by_box(cand_n, s, boxes, th_iou)
    else:
        subset, swapped = POSE_SUBSETS[iou_func]
        group, n_groups = _groups_by_pose(s, pose2d[cand_n, cand_a], boxes[cand_n], th_iou, subset, swapped)
    # From here on, candidates by group (candidate order within a group: the order sums run in).
    # labels that fit 16 bits get numpy's radix sort for a stable sort (10x quicker than on int64)
    order = np.argsort(group.astype(np.uint16) if n_groups <= 1 << 16 else group, kind="stable")
    group, s, cand_n, cand_a = group[order], s[order], cand_n[order], cand_a[order]
    flat = cand_n * num_poses + cand_a  # row of each candidate in the (N*A, J, D) pose arrays
    p3 = np.take(pose3d.reshape((-1,) + pose3d.shape[2:]), flat, axis=0,
                 out=np.empty((len(flat),) + pose3d.shape[2:], pose3d.dtype), mode="clip")
    top, score, member = _best_modes(s, p3, group, n_groups, th_pose3D, min_mode_score)

    kept = score > th_persondetect
    if not kept.any():
        return PartArrays(part)
    m = np.flatnonzero(member & kept[group])  # the kept modes' members, by group
    starts, run = _segments(group[m])  # run: each member's mode
    w = s[m]
    rows2d = pose2d.reshape(len(pose2d) * num_poses, -1)  # (N*A, J*2): candidate i is row flat[i]
    rows3d = p3.reshape(len(p3), -1)
    # legs of upper-body anchor poses weigh less in a body's mode
    wl = _leg_weights(cand_a[m], w, K) if num_joints == BODY_JOINTS else None
    means = _gathered_means if len(starts) > FEW_SEGMENTS or 2 * len(m) < len(rows2d) else _mode_means
    mean2d, mean3d = means(w, wl, m, starts, run, flat, rows2d, rows3d)
    mean2d, mean3d = mean2d.reshape(-1, num_joints, 2), mean3d.reshape(-1, num_joints, 3)
    score, top = score[kept], top[kept]
    return _detections(part, score, mean2d, mean3d, cand_a[top] < K)


def _detections(part: str, score: np.ndarray, mean2d: np.ndarray, mean3d: np.ndarray,
                is_right: np.ndarray) -> PartArrays:
    """The kept modes as detections by decreasing score (stable); is_right for hands only."""
    if not len(score):
        return PartArrays(part)
    order = np.argsort(-score, kind="stable")
    return PartArrays(part, score[order], mean2d[order], mean3d[order],
                      **({"is_right": is_right[order]} if part == "hand" else {}))


def _leg_weights(labels: np.ndarray, w: np.ndarray, K: int) -> np.ndarray:
    """Bodies' weights for the legs: w, with upper-body anchor poses' (label >= K) scaled down."""
    return np.where(labels >= K, UPPER_BODY_LEG_WEIGHT, 1.0).astype(w.dtype) * w


def _mode_means(w: np.ndarray, wl: Optional[np.ndarray], m: np.ndarray, starts: np.ndarray, run: np.ndarray,
                flat: np.ndarray, rows2d: np.ndarray, rows3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The w-weighted mean 2D and 3D pose of each of a few modes: (modes, J*2), (modes, J*3).

    m (M,): the modes' members (candidate indexes, by mode), a mode per run of m (runs start at
    `starts`; run (M,): each member's mode), w (M,) their weights; wl: bodies' leg weights, which
    the legs' columns take instead of w (None for other parts). Candidate i's 2D pose is row flat[i] of rows2d (N*A, J*2), its 3D
    pose row i of rows3d (C, J*3), the candidates sorted by mode. The weights are laid out as
    (weightings x modes, rows) matrices over the arrays as they lie, so that nobody's poses are
    copied (one matrix product for 2D, one per mode for 3D over its group's rows); a mode whose sum
    is not finite (a NaN or inf pose anywhere in those rows) is summed again over its members alone."""
    ws = np.stack([w] if wl is None else [w, wl])  # (V, M)
    v, g = len(ws), len(starts)
    ends = np.append(starts[1:], len(m))
    weights = np.zeros((v, g, len(rows2d)), w.dtype)
    weights[:, run, flat[m]] = ws
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows: summed again below
        sums2d = (weights.reshape(v * g, -1) @ rows2d).reshape(v, g, -1)
    sums3d = np.empty((v, g, rows3d.shape[1]), rows3d.dtype)
    lo, hi = m[starts], m[ends - 1] + 1  # each mode's group's rows lie within these
    for i, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
        weights3d = np.zeros((v, b - a), w.dtype)
        weights3d[:, m[starts[i]:ends[i]] - a] = ws[:, starts[i]:ends[i]]
        sums3d[:, i] = weights3d @ rows3d[a:b]
    bad = np.flatnonzero(~(np.isfinite(sums2d).all((0, 2)) & np.isfinite(sums3d).all((0, 2))))
    for i in bad.tolist():
        mine = m[starts[i]:ends[i]]
        sums2d[:, i] = ws[:, starts[i]:ends[i]] @ np.take(rows2d, flat[mine], axis=0)
        sums3d[:, i] = ws[:, starts[i]:ends[i]] @ rows3d[mine]
    wsum = np.add.reduceat(ws, starts, axis=1)[:, :, None]
    mean2d, mean3d = sums2d[0] / wsum[0], sums3d[0] / wsum[0]
    if wl is not None:  # legs first
        legs = LEG_JOINTS.stop
        mean2d[:, :2 * legs] = sums2d[1, :, :2 * legs] / wsum[1]
        mean3d[:, :3 * legs] = sums3d[1, :, :3 * legs] / wsum[1]
    return mean2d, mean3d


def _gathered_means(w: np.ndarray, wl: Optional[np.ndarray], m: np.ndarray, starts: np.ndarray, run: np.ndarray,
                    flat: np.ndarray, rows2d: np.ndarray, rows3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_mode_means` for many modes, or few members: the members' poses gathered, weighted and
    added to their mode's row in candidate order (torch's index_add_: one sequential sum per mode,
    the same whatever the threads; 2-4x quicker than numpy's reduceat over rows). wl: bodies' leg
    weights, which the legs' columns take instead of w; None for other parts."""
    n, mode = len(starts), torch.from_numpy(run)
    means = []
    for rows, idx, dims in ((rows2d, flat[m], 2), (rows3d, m, 3)):
        x = np.take(rows, idx, axis=0, out=np.empty((len(idx), rows.shape[1]), rows.dtype), mode="clip")
        xt, legs = torch.from_numpy(x), LEG_JOINTS.stop * dims  # legs: their columns come first
        if wl is not None:
            leg_sums = torch.zeros((n, legs), dtype=xt.dtype).index_add_(
                0, mode, torch.from_numpy(x[:, :legs] * wl.astype(x.dtype)[:, None]))
        x *= w.astype(x.dtype)[:, None]
        mean = torch.zeros((n, rows.shape[1]), dtype=xt.dtype).index_add_(0, mode, xt).numpy()
        mean /= np.add.reduceat(w, starts)[:, None]
        if wl is not None:
            mean[:, :legs] = leg_sums.numpy() / np.add.reduceat(wl, starts)[:, None]
        means.append(mean)
    return means[0], means[1]


def pose_boxes(pose2d: np.ndarray, margin: float = POSE_BOX_MARGIN) -> np.ndarray:
    """Tight boxes (..., 4) around poses (..., J, 2), grown by `margin` of their width/height per side."""
    lo, hi = pose2d.min(-2), pose2d.max(-2)
    grow = margin * (hi - lo)
    return np.concatenate([lo - grow, hi + grow], -1)


def nms(scores: np.ndarray, boxes: np.ndarray, pose2d: np.ndarray, pose3d: np.ndarray,
        min_score: float = 0.3, K: Optional[int] = None, **unknown: Any) -> PartArrays:
    """Non-maximum suppression over each proposal's best anchor pose, by decreasing score.

    A proposal counts when its best anchor-pose probability is at least min_score; overlap is
    the IoU (0.1) of boxes around those poses. `boxes` is unused (the poses make the boxes) but
    kept so that both post-processings take the same arrays. Hands: is_right = class < K.
    Settings are checked by name, type and range, as ppi's (SettingError).
    """
    check_settings(dict(unknown, min_score=min_score, K=K), NMS_SETTINGS, "nms")
    scores, pose2d, pose3d = np.asarray(scores), np.asarray(pose2d), np.asarray(pose3d)
    _check(scores, np.asarray(boxes), pose2d, pose3d)
    num_poses = scores.shape[1] - 1
    K = num_poses + 1 if K is None else K
    cls = scores[:, 1:].argmax(1)
    best = scores[np.arange(len(scores)), 1 + cls]
    keep = np.flatnonzero(best >= min_score)
    part = _part_of(pose2d.shape[2])
    if len(keep) == 0:
        return PartArrays(part)
    # By decreasing score, ties in proposal order: the suppression then never depends on which
    # lower-scored proposals were there (a threshold before or after it keeps the same detections).
    keep = keep[np.argsort(-best[keep], kind="stable")]
    p2 = pose2d[keep, cls[keep]]
    rank = torch.arange(len(keep), 0, -1, dtype=torch.float32)  # torchvision's order is then ours
    kept = keep[box_nms(torch.from_numpy(pose_boxes(p2)), rank, NMS_IOU).numpy()]
    # PartArrays copies what it is given: no detection keeps a view of the network's (N, A, J, D) outputs.
    return PartArrays(part, best[kept], pose2d[kept, cls[kept]], pose3d[kept, cls[kept]],
                      **({"is_right": cls[kept] < K} if part == "hand" else {}))


def _part_of(num_joints: int) -> str:
    """The part whose poses have this many joints."""
    for name, part in PARTS.items():
        if part.num_joints == num_joints:
            return name
    raise ValueError(f"no part has {num_joints} joints ({', '.join(f'{p}: {q.num_joints}' for p, q in PARTS.items())})")
