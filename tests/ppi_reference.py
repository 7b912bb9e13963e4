"""A plain PPI written line by line from shared/SPEC.md §5, to check the array version against.

One leader at a time, one mode at a time, sums and means in float64: slow (Python loops over
people and modes), but each step reads like the specification. Not used by the project.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

SUBSETS = {
    "mje": (None, None),
    "torso": ([4, 5, 10, 11], None),
    "torsohead": ([4, 5, 10, 11, 12], None),
    "head": ([12], None),
    "shoulderhead": ([10, 11, 12], None),
    "torsoLR": ([4, 5, 10, 11], [5, 4, 11, 10]),
    "torsoheadLR": ([4, 5, 10, 11, 12], [5, 4, 11, 10, 12]),
    "shoulderheadLR": ([10, 11, 12], [11, 10, 12]),
}


def iou_plus1(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = iw * ih
    return inter / ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)


def mean_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Mean joint distance between poses p (..., J, D) and q (J, D)."""
    return np.sqrt(((p - q) ** 2).sum(-1)).mean(-1)


def ppi_reference(scores, boxes, pose2d, pose3d, K: Optional[int] = None, score_th: Optional[float] = None,
                  th_pose3D: float = 0.3, th_iou: float = 0.2, iou_func: str = "bbox",
                  min_mode_score: float = 0.05, th_persondetect: float = 0.002) -> list[dict]:
    """Detections as dicts (score, pose2d, pose3d, is_right for hands), by decreasing score."""
    num_poses = scores.shape[1] - 1
    num_joints = pose2d.shape[2]
    K = num_poses + 1 if K is None else K
    score_th = 0.1 / num_poses if score_th is None else score_th
    # 1. candidates, row-major
    cn, ca = np.nonzero(scores[:, 1:] >= score_th)
    s = scores[cn, 1 + ca]
    p2, p3, box = pose2d[cn, ca], pose3d[cn, ca], boxes[cn]

    def first_best(idx: list[int]) -> int:
        """Highest score among candidate indexes idx; ties: the earliest candidate."""
        return max(idx, key=lambda i: (s[i], -i))

    def overlaps(r: int, c: int) -> bool:
        if iou_func in ("bbox", "bbox_torsohead"):
            return iou_plus1(box[r], box[c]) > th_iou
        subset, swapped = SUBSETS[iou_func]
        sub = slice(None) if subset is None else subset
        d = mean_distance(p2[c][sub], p2[r][sub])
        if swapped is not None:
            d = min(d, mean_distance(p2[c][swapped], p2[r][sub]))
        norm = 2 * max(box[r][2] - box[r][0] + 1, box[r][3] - box[r][1] + 1)
        return d / norm < th_iou

    detections = []
    remaining = list(range(len(s)))
    while remaining:  # 2. people
        r = first_best(remaining)
        group = [c for c in remaining if c == r or overlaps(r, c)]
        remaining = [c for c in remaining if c not in set(group)]
        unassigned, best = list(group), None
        while unassigned:  # 3. modes
            m = first_best(unassigned)
            if s[m] < min_mode_score and best is not None:
                break
            members = [c for c in group if c == m or mean_distance(p3[c], p3[m]) < th_pose3D]
            score = float(np.sum(s[members], dtype=np.float64))
            if best is None or score > best[0]:
                best = (score, m, members)
            unassigned = [c for c in unassigned if c not in set(members)]
        score, m, members = best
        if not score > th_persondetect:  # 4.
            continue
        w = s[members].astype(np.float64)
        mean2d = (w[:, None, None] * p2[members]).sum(0) / w.sum()
        mean3d = (w[:, None, None] * p3[members]).sum(0) / w.sum()
        if num_joints == 13:
            wl = w * np.where(ca[members] >= K, 0.1, 1.0)
            mean2d[:4] = (wl[:, None, None] * p2[members][:, :4]).sum(0) / wl.sum()
            mean3d[:4] = (wl[:, None, None] * p3[members][:, :4]).sum(0) / wl.sum()
        det = {"score": score, "pose2d": mean2d, "pose3d": mean3d}
        if num_joints == 21:
            det["is_right"] = bool(ca[m] < K)
        detections.append(det)
    return sorted(detections, key=lambda d: -d["score"])  # 5. stable
