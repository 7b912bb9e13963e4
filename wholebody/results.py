"""Typed results: one detection, one image's detections, and the JSON schema they are written in.

Units and frames: `pose2d` is in pixels of the original image (x right, y down); `pose3d` is in
metres for bodies (origin at the body centre, x and y opposite to the image's) and in a
part-centred frame for hands and faces.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from wholebody.parts import PART_NAMES

JSON_DECIMALS = 4  # 1e-4 px / 0.1 mm: well below the network's precision


@dataclass
class Detection:
    """One body, hand or face.

    score: the post-processing's score (PPI: a sum of probabilities, so it may exceed 1).
    pose2d: float32[J, 2], pixels of the original image.  pose3d: float32[J, 3].
    is_right: hands only.  left_hand / right_hand / face: bodies only, indexes into the
    image's hand and face lists (None when nothing is attached).
    """
    score: float
    pose2d: np.ndarray
    pose3d: np.ndarray
    is_right: Optional[bool] = None
    left_hand: Optional[int] = None
    right_hand: Optional[int] = None
    face: Optional[int] = None

    def to_dict(self, part: str, decimals: int = JSON_DECIMALS) -> dict[str, Any]:
        d: dict[str, Any] = {
            "score": float(self.score),
            "pose2d": np.round(np.asarray(self.pose2d, dtype=np.float64), decimals).tolist(),
            "pose3d": np.round(np.asarray(self.pose3d, dtype=np.float64), decimals + 2).tolist(),
        }
        if part == "hand":
            d["is_right"] = bool(self.is_right)
        if part == "body":
            d.update(left_hand=self.left_hand, right_hand=self.right_hand, face=self.face)
        return d


@dataclass
class Result:
    """Everything found in one image; each part's list is sorted by decreasing score."""
    height: int
    width: int
    body: list[Detection] = field(default_factory=list)
    hand: list[Detection] = field(default_factory=list)
    face: list[Detection] = field(default_factory=list)
    image: Optional[str] = None

    def __getitem__(self, part: str) -> list[Detection]:
        if part not in PART_NAMES:
            raise KeyError(part)
        return getattr(self, part)

    def parts(self) -> dict[str, list[Detection]]:
        return {p: self[p] for p in PART_NAMES}

    def __len__(self) -> int:
        return sum(len(self[p]) for p in PART_NAMES)

    def to_dict(self, decimals: int = JSON_DECIMALS) -> dict[str, Any]:
        d: dict[str, Any] = {"image": self.image, "height": self.height, "width": self.width}
        for p in PART_NAMES:
            d[p] = [det.to_dict(p, decimals) for det in self[p]]
        return d

    def to_json(self, **extra: Any) -> str:
        """The result as one JSON object (SPEC §10); `extra` keys are added at the top level."""
        return json.dumps({**self.to_dict(), **extra})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        def det(part: str, x: dict[str, Any]) -> Detection:
            names = {f.name for f in dataclasses.fields(Detection)}
            kw = {k: v for k, v in x.items() if k in names and k not in ("pose2d", "pose3d")}
            return Detection(pose2d=np.asarray(x["pose2d"], np.float32).reshape(-1, 2),
                             pose3d=np.asarray(x["pose3d"], np.float32).reshape(-1, 3), **kw)
        return cls(height=d["height"], width=d["width"], image=d.get("image"),
                   **{p: [det(p, x) for x in d.get(p, [])] for p in PART_NAMES})
