"""From the network's anchor-pose scores and poses to detections; assigning hands and faces to bodies.

Two post-processings, over one part's arrays of one image:
    scores (N, A+1): column 0 background, column 1+a anchor pose a;  boxes (N, 4) x1 y1 x2 y2 pixels;
    pose2d (N, A, J, 2) pixels;  pose3d (N, A, J, 3).
`ppi` (pose proposals integration, the default) and `nms` both return that part's detections by
decreasing score. Everything here is array code: its cost grows with candidates x people.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
import torchvision

from parts import BODY_HEAD, BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST
from results import Detection

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
BODY_JOINTS = 13
POSE_BOX_MARGIN = 0.1  # boxes around poses grow by this fraction of their size on every side
NMS_IOU = 0.1


def _check(scores: np.ndarray, boxes: np.ndarray, pose2d: np.ndarray, pose3d: np.ndarray) -> None:
    n, a1 = scores.shape
    if boxes.shape != (n, 4) or pose2d.shape[:2] != (n, a1 - 1) or pose2d.shape[3:] != (2,) \
            or pose3d.shape != pose2d.shape[:3] + (3,):
        raise ValueError(f"inconsistent shapes: scores {scores.shape}, boxes {boxes.shape}, "
                         f"pose2d {pose2d.shape}, pose3d {pose3d.shape}")


def box_iou_plus1(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with boxes (N, 4), with the +1 pixel convention of the published PPI."""
    iw = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + 1
    ih = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + 1
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    return inter / (area + areas - inter)


def _pose_distance(poses: np.ndarray, ref: np.ndarray, subset: Optional[list[int]]) -> np.ndarray:
    """Mean joint distance between poses (C, J, D) and ref (J, D) over a joint subset."""
    if subset is not None:
        poses, ref = poses[:, subset], ref[subset]
    return np.sqrt(((poses - ref) ** 2).sum(-1)).mean(-1)


def _groups_by_box(cand_n: np.ndarray, s: np.ndarray, boxes: np.ndarray, th_iou: float) -> list[np.ndarray]:
    """People as groups of candidate indexes, when overlap is proposal-box IoU.

    All candidates of one proposal share its box, and a box overlaps itself, so candidates join
    and leave groups a whole proposal at a time: the greedy loop runs over proposals.
    """
    props, first = np.unique(cand_n, return_index=True)
    best = np.maximum.reduceat(s, first)  # candidates of one proposal are contiguous
    order = np.argsort(-best, kind="stable")  # ties: lower proposal index = earlier candidate
    pboxes = boxes[props]
    remaining = np.ones(len(props), bool)
    group_of_prop = np.full(len(props), -1)
    n_groups = 0
    for p in order:
        if not remaining[p]:
            continue
        idx = np.flatnonzero(remaining)
        members = idx[box_iou_plus1(pboxes[p], pboxes[idx]) > th_iou]
        members = np.union1d(members, [p])
        remaining[members] = False
        group_of_prop[members] = n_groups
        n_groups += 1
    cand_group = group_of_prop[np.searchsorted(props, cand_n)]
    return _split(cand_group, n_groups)


def _split(labels: np.ndarray, n: int) -> list[np.ndarray]:
    """Indexes of each label 0..n-1, each in increasing order."""
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.cumsum(np.bincount(labels, minlength=n))[:-1])


def _groups_by_pose(s: np.ndarray, pose2d: np.ndarray, boxes: np.ndarray, th_iou: float,
                    subset: Optional[list[int]], swapped: Optional[list[int]]) -> list[np.ndarray]:
    """People as groups of candidate indexes, when overlap is a normalised 2D pose distance."""
    order = np.argsort(-s, kind="stable")
    remaining = np.ones(len(s), bool)
    groups = []
    for r in order:
        if not remaining[r]:
            continue
        idx = np.flatnonzero(remaining)
        box = boxes[r]
        norm = 2 * max(box[2] - box[0] + 1, box[3] - box[1] + 1)
        dist = _pose_distance(pose2d[idx], pose2d[r], subset)
        if swapped is not None:
            ref = pose2d[r][subset]
            dist = np.minimum(dist, np.sqrt(((pose2d[idx][:, swapped] - ref) ** 2).sum(-1)).mean(-1))
        members = np.union1d(idx[dist / norm < th_iou], [r])
        remaining[members] = False
        groups.append(members)
    return groups


def _best_mode(s: np.ndarray, pose3d: np.ndarray, th_pose3d: float, min_mode_score: float
               ) -> tuple[float, int, np.ndarray]:
    """The highest-scoring mode of one group: (score, its top member, member mask).

    Modes are found greedily from the highest-scoring unassigned member r; a mode gathers every
    member (assigned or not) whose mean 3D joint distance to r's pose is below th_pose3d.
    """
    order = np.argsort(-s, kind="stable")
    unassigned = np.ones(len(s), bool)
    best: Optional[tuple[float, int, np.ndarray]] = None
    for r in order:
        if not unassigned[r]:
            continue
        if s[r] < min_mode_score and best is not None:
            break
        members = _pose_distance(pose3d, pose3d[r], None) < th_pose3d
        members[r] = True
        score = s[members].sum()
        if best is None or score > best[0]:
            best = (score, r, members)
        unassigned &= ~members
    assert best is not None
    return best


def ppi(scores: np.ndarray, boxes: np.ndarray, pose2d: np.ndarray, pose3d: np.ndarray,
        resolution: Optional[Sequence[int]] = None, *, K: Optional[int] = None,
        score_th: Optional[float] = None, th_pose3D: float = 0.3, th_iou: float = 0.2,
        iou_func: str = "bbox", min_mode_score: float = 0.05, th_persondetect: float = 0.002,
        **unused: Any) -> list[Detection]:
    """Pose proposals integration: one detection per person, by decreasing score.

    scores (N, A+1), boxes (N, 4), pose2d (N, A, J, 2), pose3d (N, A, J, 3): one part of one
    image. resolution (H, W) is accepted for compatibility with the published signature; no
    overlap function uses it. K: anchor poses 0..K-1 are full-body (bodies) or right hands
    (hands); None means A+1 (all of them). score_th None means 0.1 / A.
    """
    scores, boxes = np.asarray(scores), np.asarray(boxes)
    pose2d, pose3d = np.asarray(pose2d), np.asarray(pose3d)
    _check(scores, boxes, pose2d, pose3d)
    num_poses = scores.shape[1] - 1
    num_joints = pose2d.shape[2]
    K = num_poses + 1 if K is None else K
    score_th = 0.1 / num_poses if score_th is None else score_th
    if iou_func not in BOX_OVERLAPS and iou_func not in POSE_SUBSETS:
        raise ValueError(f"unknown iou_func {iou_func!r}; use one of {', '.join(BOX_OVERLAPS + tuple(POSE_SUBSETS))}")
    if iou_func not in BOX_OVERLAPS + ("mje",) and num_joints != BODY_JOINTS:
        raise ValueError(f"iou_func {iou_func!r} is for bodies only; hands and faces use 'bbox' or 'mje'")

    cand_n, cand_a = np.nonzero(scores[:, 1:] >= score_th)  # row-major: the candidates' order
    if len(cand_n) == 0:
        return []
    s = scores[cand_n, 1 + cand_a]
    if iou_func in BOX_OVERLAPS:
        groups = _groups_by_box(cand_n, s, boxes, th_iou)
    else:
        subset, swapped = POSE_SUBSETS[iou_func]
        groups = _groups_by_pose(s, pose2d[cand_n, cand_a], boxes[cand_n], th_iou, subset, swapped)

    detections = []
    for g in groups:
        p3 = pose3d[cand_n[g], cand_a[g]]
        score, r, members = _best_mode(s[g], p3, th_pose3D, min_mode_score)
        if not score > th_persondetect:
            continue
        m = g[members]
        w = s[m]
        p2, p3 = pose2d[cand_n[m], cand_a[m]], p3[members]
        mean2d = (w[:, None, None] * p2).sum(0) / w.sum()
        mean3d = (w[:, None, None] * p3).sum(0) / w.sum()
        if num_joints == BODY_JOINTS:
            wl = np.where(cand_a[m] >= K, UPPER_BODY_LEG_WEIGHT, 1.0).astype(w.dtype) * w
            mean2d[LEG_JOINTS] = (wl[:, None, None] * p2[:, LEG_JOINTS]).sum(0) / wl.sum()
            mean3d[LEG_JOINTS] = (wl[:, None, None] * p3[:, LEG_JOINTS]).sum(0) / wl.sum()
        detections.append(Detection(score=float(score), pose2d=mean2d.astype(np.float32),
                                    pose3d=mean3d.astype(np.float32),
                                    is_right=bool(cand_a[g[r]] < K) if num_joints == 21 else None))
    detections.sort(key=lambda d: -d.score)  # stable
    return detections


def pose_boxes(pose2d: np.ndarray, margin: float = POSE_BOX_MARGIN) -> np.ndarray:
    """Tight boxes (..., 4) around poses (..., J, 2), grown by `margin` of their width/height per side."""
    lo, hi = pose2d.min(-2), pose2d.max(-2)
    grow = margin * (hi - lo)
    return np.concatenate([lo - grow, hi + grow], -1)


def nms(scores: np.ndarray, boxes: np.ndarray, pose2d: np.ndarray, pose3d: np.ndarray,
        min_score: float = 0.3, K: Optional[int] = None) -> list[Detection]:
    """Non-maximum suppression over each proposal's best anchor pose, by decreasing score.

    A proposal counts when its best anchor-pose probability is at least min_score; overlap is
    the IoU (0.1) of boxes around those poses. `boxes` is unused (the poses make the boxes) but
    kept so that both post-processings take the same arrays. Hands: is_right = class < K.
    """
    scores, pose2d, pose3d = np.asarray(scores), np.asarray(pose2d), np.asarray(pose3d)
    _check(scores, np.asarray(boxes), pose2d, pose3d)
    num_poses = scores.shape[1] - 1
    K = num_poses + 1 if K is None else K
    cls = scores[:, 1:].argmax(1)
    best = scores[np.arange(len(scores)), 1 + cls]
    keep = np.flatnonzero(best >= min_score)
    if len(keep) == 0:
        return []
    p2 = pose2d[keep, cls[keep]]
    kept = torchvision.ops.nms(torch.from_numpy(pose_boxes(p2)), torch.from_numpy(best[keep]), NMS_IOU).numpy()
    hands = pose2d.shape[2] == 21
    return [Detection(score=float(best[keep[i]]), pose2d=p2[i], pose3d=pose3d[keep[i], cls[keep[i]]],
                      is_right=bool(cls[keep[i]] < K) if hands else None) for i in kept]


def _mutual_nearest(dist: np.ndarray, limit: np.ndarray) -> dict[int, int]:
    """Row i -> column j when j is i's nearest column, i is j's nearest row and dist <= limit[j]."""
    if dist.size == 0:
        return {}
    nearest_col = dist.argmin(1)
    nearest_row = dist.argmin(0)
    return {i: int(j) for i, j in enumerate(nearest_col)
            if nearest_row[j] == i and dist[i, j] <= limit[j]}


def assign_hands(body_pose2d: np.ndarray, hand_pose2d: np.ndarray) -> tuple[dict[int, int], dict[int, int]]:
    """Hands to body wrists: ({body: hand} for left wrists, {body: hand} for right wrists).

    body_pose2d (B, 13, 2), hand_pose2d (H, 21, 2). A hand joins a wrist when each is the other's
    nearest (hand joint 0 against that wrist of every body) and they are at most one hand size
    apart (the longest side of the hand's pose box). Handedness is not used, as published.
    """
    sizes = (lambda b: np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))(pose_boxes(hand_pose2d))
    wrists = hand_pose2d[:, HAND_WRIST]

    def links(joint: int) -> dict[int, int]:
        d = np.linalg.norm(body_pose2d[:, joint, None, :] - wrists[None], axis=-1)
        return _mutual_nearest(d, sizes)

    return links(BODY_L_WRIST), links(BODY_R_WRIST)


def assign_faces(body_pose2d: np.ndarray, face_pose2d: np.ndarray) -> dict[int, int]:
    """Faces to bodies: {body: face} when the head lies in exactly that face's box (bounds
    inclusive) and that box holds no other body's head."""
    if len(body_pose2d) == 0 or len(face_pose2d) == 0:
        return {}
    head = body_pose2d[:, BODY_HEAD]
    fb = pose_boxes(face_pose2d)
    inside = ((head[:, None, 0] >= fb[None, :, 0]) & (head[:, None, 0] <= fb[None, :, 2])
              & (head[:, None, 1] >= fb[None, :, 1]) & (head[:, None, 1] <= fb[None, :, 3]))
    return {i: int(inside[i].argmax()) for i in range(len(head))
            if inside[i].sum() == 1 and inside[:, inside[i].argmax()].sum() == 1}


def assign(bodies: list[Detection], hands: list[Detection], faces: list[Detection]) -> list[Detection]:
    """Bodies with their hand and face links set, and attached hands' wrists as body wrists.

    Returns new Detection objects (the inputs are left as they are).
    """
    if not bodies:
        return []
    body2d = np.stack([b.pose2d for b in bodies])
    hand2d = np.stack([h.pose2d for h in hands]) if hands else np.zeros((0, 21, 2), np.float32)
    face2d = np.stack([f.pose2d for f in faces]) if faces else np.zeros((0, 84, 2), np.float32)
    left, right = assign_hands(body2d, hand2d)
    face = assign_faces(body2d, face2d)
    out = []
    for i, b in enumerate(bodies):
        pose = b.pose2d.copy()
        if i in left:
            pose[BODY_L_WRIST] = hand2d[left[i], HAND_WRIST]
        if i in right:
            pose[BODY_R_WRIST] = hand2d[right[i], HAND_WRIST]
        out.append(Detection(score=b.score, pose2d=pose, pose3d=b.pose3d, is_right=b.is_right,
                             left_hand=left.get(i), right_hand=right.get(i), face=face.get(i)))
    return out
