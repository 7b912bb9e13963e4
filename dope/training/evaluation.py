"""How close a network's detections come to labels: per part, detections matched one to one to the
labelled instances of each image (Hungarian assignment on the mean 2D joint distance), then the
2D error (mean joint distance in pixels of the image) and the 3D MPJPE (mean joint distance in the
part's frame: metres for bodies) of each matched pair."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from dope.parts import PART_NAMES
from dope.training.labels import LabelledImage


@dataclass
class PartErrors:
    """One part's matched pairs over a set of images: error2d (px) and mpjpe3d, one value per pair;
    labelled: how many labelled instances there were (matched ones are len(error2d))."""
    error2d: list[float] = field(default_factory=list)
    mpjpe3d: list[float] = field(default_factory=list)
    labelled: int = 0

    def summary(self) -> dict[str, Any]:
        e2, e3 = np.asarray(self.error2d), np.asarray(self.mpjpe3d)
        return {"matched": len(e2), "labelled": self.labelled,
                "median_2d_px": float(np.median(e2)) if len(e2) else None,
                "mean_2d_px": float(e2.mean()) if len(e2) else None,
                "mpjpe_3d": float(e3.mean()) if len(e3) else None}


def match(pred2d: np.ndarray, label2d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction indexes, label indexes, mean 2D joint distances) of the one-to-one matching of
    (P, J, 2) predictions to (L, J, 2) labels that minimises the summed mean joint distance."""
    if not len(pred2d) or not len(label2d):
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    cost = np.linalg.norm(pred2d[:, None] - label2d[None], axis=-1).mean(-1)  # (P, L)
    rows, cols = linear_sum_assignment(cost)
    return rows, cols, cost[rows, cols]


def compare(pairs: Iterable[tuple[LabelledImage, Any]]) -> dict[str, PartErrors]:
    """Per part, the errors of detections (a `Result`, or a record dict of the JSON schema) against labels."""
    out = {p: PartErrors() for p in PART_NAMES}
    for label, detected in pairs:
        for part in PART_NAMES:
            pose2d, pose3d = _poses(detected, part)
            lab = label.parts[part]
            rows, cols, dist = match(pose2d, lab.pose2d)
            errs = out[part]
            errs.labelled += len(lab)
            errs.error2d.extend(dist.tolist())
            errs.mpjpe3d.extend(np.linalg.norm(pose3d[rows] - lab.pose3d[cols], axis=-1).mean(-1).tolist())
    return out


def _poses(detected: Any, part: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(detected, Mapping):
        dets = detected.get(part) or []
        return (np.asarray([d["pose2d"] for d in dets], np.float64).reshape(len(dets), -1, 2),
                np.asarray([d["pose3d"] for d in dets], np.float64).reshape(len(dets), -1, 3))
    arr = detected[part]
    return np.asarray(arr.pose2d, np.float64), np.asarray(arr.pose3d, np.float64)


def summary(errors: Mapping[str, PartErrors]) -> dict[str, dict[str, Any]]:
    return {p: e.summary() for p, e in errors.items()}


def describe(errors: Mapping[str, PartErrors]) -> str:
    """One line: per part, matched/labelled, median 2D error and 3D MPJPE."""
    bits = []
    for part, e in summary(errors).items():
        if e["labelled"]:
            med = "-" if e["median_2d_px"] is None else f"{e['median_2d_px']:.1f} px"
            mp = "-" if e["mpjpe_3d"] is None else f"{e['mpjpe_3d']:.3f}"
            bits.append(f"{part} {e['matched']}/{e['labelled']} median 2D {med}, MPJPE {mp}")
    return "; ".join(bits) or "no labelled part"
