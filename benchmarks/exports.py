"""How long exports take: a synthetic clip of whole-body people, placed and written in every format.

`python bench.py --exports [--frames 1000] [--people 5]` runs `bench_exports` and prints its table.
The people are stick figures with hands and a face (joint layout of parts.py), walking across the
view and turning; their detections are exact perspective projections, so the placement converges
at once (noisy detections take about as long: the robust loop stops when weights settle).
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any

import numpy as np

from dope.exports.people import ClipBuilder
from dope.exports.writer import EXTENSIONS, write_clip
from dope.inputs.sources import Item
from dope.motion.camera import intrinsics, place_result
from dope.parts import BODY_L_WRIST, BODY_R_WRIST, BODY_HEAD
from dope.results import Detection, Result
from dope.stream import Frame

# A standing body in camera axes (metres, y down), pelvis at the origin: parts.BODY_JOINTS order.
BODY = np.array([[-0.10, 0.92, 0.0], [0.10, 0.92, 0.0], [-0.10, 0.50, 0.0], [0.10, 0.50, 0.0],
                 [-0.11, 0.05, 0.0], [0.11, 0.05, 0.0], [-0.24, 0.02, 0.02], [0.24, 0.02, 0.02],
                 [-0.23, -0.24, 0.02], [0.23, -0.24, 0.02], [-0.18, -0.50, 0.0], [0.18, -0.50, 0.0],
                 [0.0, -0.74, 0.0]])


def _turn(points: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    r = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    return points @ r.T


def _project(points: np.ndarray, focal: float, width: int, height: int) -> np.ndarray:
    return focal * points[:, :2] / points[:, 2:] + (width / 2, height / 2)


def synthetic_frames(frames: int, people: int, width: int = 1280, height: int = 720, focal: float = 1000.0,
                     seed: int = 0) -> list[Frame]:
    """`frames` video frames (25 fps) of `people` whole-body people with both hands and a face attached."""
    rng = np.random.default_rng(seed)
    hand = rng.normal(0, 0.04, (21, 3))
    hand[0] = 0
    face = rng.normal(0, 0.05, (84, 3))
    start = np.c_[rng.uniform(-2, 2, people), rng.uniform(0, 0.5, people), rng.uniform(3, 10, people)]
    out = []
    for t in range(frames):
        bodies, hands, faces = [], [], []
        for k in range(people):
            where = start[k] + (0.01 * t * (1 if k % 2 else -1), 0.0, 0.0)
            body = _turn(BODY, 2 * t + 40 * k) + where

            detections = []
            for wrist, is_right in ((BODY_L_WRIST, False), (BODY_R_WRIST, True)):
                h = body[wrist] + _turn(hand, 3 * t)
                detections.append(Detection(0.8, _project(h, focal, width, height), h - h.mean(0), is_right=is_right))
            f = body[BODY_HEAD] + _turn(face, 2 * t)
            faces.append(Detection(0.7, _project(f, focal, width, height), f - f.mean(0)))
            flipped = (body - body.mean(0)) * (-1, -1, 1)
            bodies.append(Detection(0.9, _project(body, focal, width, height), flipped, left_hand=len(hands), right_hand=len(hands) + 1,
                                    face=len(faces) - 1))
            hands += detections
        out.append(Frame(Item(t, "synthetic.mp4", t, t / 25), None,
                         Result(height, width, body=bodies, hand=hands, face=faces)))
    return out


def bench_exports(frames: int = 1000, people: int = 5) -> dict[str, Any]:
    """Seconds for each step of exporting a synthetic clip, and each file's size in bytes.

    Returns {"frames", "people", "placement_s", "gather_s", ".npz": (seconds, bytes), ...}."""
    clip_frames = synthetic_frames(frames, people)
    cam = intrinsics(clip_frames[0].result.width, clip_frames[0].result.height, focal=1000.0)
    t0 = time.perf_counter()
    placed = [Frame(f.item, None, place_result(f.result, cam)) for f in clip_frames]
    t1 = time.perf_counter()
    builder = ClipBuilder()
    for f in placed:
        builder.add(f)
    clip = builder.build()
    t2 = time.perf_counter()
    report: dict[str, Any] = {"frames": frames, "people": people, "placement_s": t1 - t0, "gather_s": t2 - t1}
    with tempfile.TemporaryDirectory() as folder:
        for ext in EXTENSIONS:
            path = os.path.join(folder, "clip" + ext)
            start = time.perf_counter()
            written = write_clip(clip, path, say=lambda *a: None)
            report[ext] = (time.perf_counter() - start, sum(os.path.getsize(p) for p in written))
    return report


def format_report(r: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    lines = [f"Export of a {r['frames']}-frame clip of {r['people']} whole-body people (bodies, hands, faces)", "",
             "| step | seconds | output |", "|---|---|---|",
             f"| placement in camera space (per frame: {1000 * r['placement_s'] / r['frames']:.1f} ms) "
             f"| {r['placement_s']:.2f} | |",
             f"| gathering the clip into people | {r['gather_s']:.2f} | |"]
    for ext in EXTENSIONS:
        seconds, size = r[ext]
        lines.append(f"| write {ext} | {seconds:.2f} | {size / 1e6:.1f} MB |")
    return "\n".join(lines)
