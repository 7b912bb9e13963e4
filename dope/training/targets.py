"""Training targets of the part heads: labelled poses to part boxes, anchor-pose classes and the
regression values that the network's decoding (SPEC §3 step 8, `DopeRoIHeads.decode`) turns back
into the same poses.

Conventions, in one place:
- a labelled part's box is the tight box of its 2D joints grown by BOX_MARGIN of its width and
  height on every side (the box NMS uses, SPEC §4); the RPN learns these boxes, and proposals are
  matched to them by IoU;
- its class is its nearest anchor pose by mean 3D joint distance (PPI's own measure for "the same
  pose", SPEC §5.3); a hand only among the anchor poses of its side (label < K is a right hand);
- the regression is the exact inverse of the decoding, in the boxes' pixels:
  d2 = w2d · ((pose2d − (x1, y1)) / (x2 − x1, y2 − y1) − anchor2d), d3 = w3d · (pose3d − anchor3d).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

BOX_MARGIN = 0.1  # of the tight box's width and height, on every side
MIN_BOX_SIZE = 1.0  # pixels: a part whose joints all coincide still gets a box


def part_boxes(pose2d: Tensor) -> Tensor:
    """(N, 4) boxes x1 y1 x2 y2 of (N, J, 2) poses: the tight box grown by BOX_MARGIN per side."""
    lo, hi = pose2d.amin(dim=1), pose2d.amax(dim=1)
    size = (hi - lo).clamp(min=MIN_BOX_SIZE)
    return torch.cat([lo - BOX_MARGIN * size, hi + BOX_MARGIN * size], dim=1)


def encode(pose2d: Tensor, pose3d: Tensor, boxes: Tensor, anchors: Tensor, w2d: float, w3d: float
           ) -> tuple[Tensor, Tensor]:
    """Regression targets of poses in boxes, for given anchor poses: the inverse of the decoding.

    pose2d (R, J, 2) in the boxes' pixels, pose3d (R, J, 3), boxes (R, 4), anchors (R, J, 5) (each
    row's own anchor pose: `anchor_poses[class]`). Returns d2 (R, J, 2) and d3 (R, J, 3), the values
    the pose layer gives for that class (its (J, 2) then (J, 3) blocks of 5J values).
    """
    corner = boxes[:, None, :2]
    size = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    d2 = w2d * ((pose2d - corner) / size - anchors[..., :2])
    d3 = w3d * (pose3d - anchors[..., 2:])
    return d2, d3


def as_regression(d2: Tensor, d3: Tensor) -> Tensor:
    """(R, J, 2) and (R, J, 3) as the (R, 5J) row of one anchor pose in the pose layer's output."""
    return torch.cat([d2.flatten(1), d3.flatten(1)], dim=1)


def nearest_anchor(pose3d: Tensor, anchors: Tensor, allowed: Optional[Tensor] = None) -> Tensor:
    """(N,) index of each (N, J, 3) pose's nearest anchor pose (A, J, 5) by mean 3D joint distance,
    among those `allowed` (N, A) bool where given."""
    dist = (pose3d[:, None] - anchors[None, :, :, 2:]).norm(dim=-1).mean(dim=-1)  # (N, A)
    if allowed is not None:
        dist = dist.masked_fill(~allowed, float("inf"))
    return dist.argmin(dim=1)


def side_mask(is_right: Tensor, num_anchors: int, k: Optional[int]) -> Tensor:
    """(N, A) which anchor poses a hand may take: those below K for right hands, the others for
    left ones (PPI's is_right = label < K); all of them when K is None or leaves one side empty."""
    a = torch.arange(num_anchors, device=is_right.device)
    if k is None or not 0 < k < num_anchors:
        return torch.ones(len(is_right), num_anchors, dtype=torch.bool, device=is_right.device)
    return (a[None] < k) == is_right[:, None]


def kmeans_anchor_poses(pose2d: np.ndarray, pose3d: np.ndarray, num: int, seed: int = 0) -> np.ndarray:
    """(num, J, 5) anchor poses from labelled poses (N, J, 2) pixels and (N, J, 3): k-means on the 3D
    poses; each anchor's 2D pose is its members' mean 2D pose in their own part boxes (box units).
    Fewer poses than anchors: every pose is an anchor, the rest repeat them."""
    from scipy.cluster.vq import kmeans2
    n, j = pose3d.shape[:2]
    if n == 0:
        raise ValueError("no labelled pose to make anchor poses from")
    boxes = part_boxes(torch.as_tensor(pose2d, dtype=torch.float64)).numpy()
    rel2d = (pose2d - boxes[:, None, :2]) / (boxes[:, None, 2:] - boxes[:, None, :2])
    flat = pose3d.reshape(n, -1)
    if n <= num:
        assign = np.arange(n)
        centres = flat
    else:
        centres, assign = kmeans2(flat, num, minit="++", seed=seed, iter=50)
    out = np.zeros((num, j, 5))
    for c in range(num):
        members = assign == c if n > num else assign == c % n
        if not members.any():  # an empty cluster: the pose farthest from its centre starts one
            members = np.zeros(n, bool)
            members[np.argmax(((flat - centres[assign]) ** 2).sum(1))] = True
        out[c, :, :2] = rel2d[members].mean(0)
        out[c, :, 2:] = pose3d[members].mean(0)
    return out
