"""People of a clip as a NumPy archive (`np.load(path)`, no pickle needed).

Arrays (T frames, P people; NaN where a person or part is not seen):

    fps            float64[]         frames per second
    frame          int64[T]          frame numbers (video) or positions (image lists)
    time_s         float64[T]        seconds from the first frame
    focal_px, principal_point (2,), image_size (2,: width, height)   the camera (pixels)
    people         str[P]            person names: person<track or index>, hand<k>, face<k>
    body_joints, hand_joints, face_joints   str[13], str[21], str[84]   joint names
    <person>/seen              bool[T]           frames where any part of the person is seen
    <person>/<part>            float32[T, J, 3]  metres, OpenCV camera frame (x right, y down, z forward)
    <person>/<part>_2d         float32[T, J, 2]  pixels
    <person>/<part>_score      float32[T]
    with <part> among body, left_hand, right_hand, face (the ones the person has).
"""
from __future__ import annotations

import io

import numpy as np

from dope.exports.people import Clip
from dope.files import atomic_write
from dope.parts import BODY_JOINTS, FACE_JOINTS, HAND


def clip_arrays(clip: Clip) -> dict[str, np.ndarray]:
    """The archive's arrays by name (see the module's docstring)."""
    cam = clip.camera
    out: dict[str, np.ndarray] = {
        "fps": np.float64(clip.fps), "frame": clip.frames, "time_s": clip.time_s,
        "focal_px": np.float64(cam.get("focal_px", np.nan)),
        "principal_point": np.array([cam.get("cx", np.nan), cam.get("cy", np.nan)], np.float64),
        "image_size": np.array([clip.width, clip.height], np.int64),
        "people": np.array([p.name for p in clip.people], dtype=str),
        "body_joints": np.array(BODY_JOINTS), "hand_joints": np.array(HAND.joints), "face_joints": np.array(FACE_JOINTS),
    }
    for person in clip.people:
        out[f"{person.name}/seen"] = person.seen
        for key, part in person.parts.items():
            # float32: a micrometre at 10 m, half the size and time of float64
            out[f"{person.name}/{key}"] = part.joints.astype(np.float32)
            out[f"{person.name}/{key}_2d"] = part.pose2d.astype(np.float32)
            out[f"{person.name}/{key}_score"] = part.scores.astype(np.float32)
    return out


def write_npz(clip: Clip, path: str) -> None:
    """Write the clip's arrays (compressed) under a staging name, then rename."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **clip_arrays(clip))
    atomic_write(path, buffer.getvalue())
