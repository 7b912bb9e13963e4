"""Pose proposals integration under its published name, for scripts written against the published layout:

    sys.path.append('lcrnet-v2-improved-ppi')
    from lcr_net_ppi_improved import LCRNet_PPI_improved
    detections = LCRNet_PPI_improved(scores, boxes, pose2d, pose3d, (height, width), **ppi_kwargs)

This module only adapts the call and the output: the algorithm is `dope.postprocessing.proposals.ppi`
(SPEC §5, with the defects of SPEC §9 fixed), the one implementation that dope.py runs too.
Written for this project from its specification (Apache-2.0); see README.md beside this file.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Optional, Sequence

# The one piece of path handling for this folder: the checkout (the folder above this one) holds the
# `dope` package. It is appended, never prepended, so nothing of the caller's is shadowed.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CHECKOUT not in sys.path:
    sys.path.append(_CHECKOUT)

from dope.parts import PARTS  # noqa: E402  (after the path set-up above)
from dope.postprocessing.proposals import ppi  # noqa: E402

__all__ = ["LCRNet_PPI_improved"]

log = logging.getLogger("lcr_net_ppi_improved")
HAND_JOINTS = PARTS["hand"].num_joints


def LCRNet_PPI_improved(scores: Any, boxes: Any, pose2d: Any, pose3d: Any, resolution: Optional[Sequence[int]],
                        K: Optional[int] = None, score_th: Optional[float] = None, th_pose3D: float = 0.3,
                        th_iou: float = 0.2, iou_func: str = "bbox", min_mode_score: float = 0.05,
                        th_persondetect: float = 0.002, verbose: bool = False) -> list[dict[str, Any]]:
    """One part's detections in one image, by decreasing score, as the published function returns them.

    scores (N, A+1) with column 0 the background; boxes (N, 4) x1 y1 x2 y2 pixels; pose2d (N, A, J, 2)
    pixels; pose3d (N, A, J, 3); resolution (H, W) (kept for the published signature). Arrays may be
    numpy arrays or torch tensors. Each detection is a dict: 'score' (float), 'pose2d' float32[J, 2],
    'pose3d' float32[J, 3], and for hands (J = 21) 'hand_isright' (bool).
    """
    arrays = [_numpy(a) for a in (scores, boxes, pose2d, pose3d)]
    dets = ppi(*arrays, resolution, K=K, score_th=score_th, th_pose3D=th_pose3D, th_iou=th_iou, iou_func=iou_func,
               min_mode_score=min_mode_score, th_persondetect=th_persondetect)
    hands = arrays[2].ndim == 4 and arrays[2].shape[2] == HAND_JOINTS
    out = []
    for d in dets:
        item: dict[str, Any] = {"score": float(d.score), "pose2d": d.pose2d, "pose3d": d.pose3d}
        if hands:
            item["hand_isright"] = bool(d.is_right)
        out.append(item)
    if verbose:
        log.info("PPI: %d candidates' proposals -> %d detections", len(arrays[0]), len(out))
    return out


def _numpy(a: Any) -> Any:
    """A numpy array for a numpy array, a torch tensor (any device) or a nested list."""
    import numpy as np
    if hasattr(a, "detach"):
        a = a.detach().float().cpu().numpy()
    return np.asarray(a)
