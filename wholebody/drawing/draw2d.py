"""2D drawing of detections over an image (inference never draws; this takes an image and results)."""
from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from wholebody.parts import BODY_HEAD, PARTS, Part
from wholebody.results import PartArrays, Parts, Result

LINE_WIDTH = 2
MAX_PADDING = 100
JOINT_COLOR = (0, 0, 255)
TEXT_COLOR = (0, 0, 0)
TEXT_OFFSET = (-10, -10)


def endpoint(pose: np.ndarray, joints: Sequence[int]) -> np.ndarray:
    """A bone endpoint: the joint itself or the mean of several joints."""
    return pose[joints[0]] if len(joints) == 1 else pose[list(joints)].mean(0)


def padding(parts: Mapping[str, Parts], height: int, width: int,
            max_padding: int = MAX_PADDING) -> tuple[int, int, int, int]:
    """Black border (top, bottom, left, right) that makes every joint visible, at most max_padding.

    As published: top/left subtract 5 px from the extreme joint, bottom/right add 5.
    """
    pad = [0, 0, 0, 0]
    for name, dets in parts.items():
        dets = PartArrays.coerce(name, dets)
        if not len(dets):
            continue
        pts = dets.pose2d.reshape(-1, 2)
        (xmin, ymin), (xmax, ymax) = pts.min(0), pts.max(0)
        for k, v in enumerate((int(-ymin - 5), int(ymax + 5 - height), int(-xmin - 5), int(xmax + 5 - width))):
            pad[k] = max(pad[k], min(max_padding, max(0, v)))
    return tuple(pad)  # type: ignore[return-value]


def draw_pose(image: np.ndarray, pose2d: np.ndarray, part: Part, lw: int = LINE_WIDTH,
              offset: tuple[int, int] = (0, 0), skip_bones: Sequence = ()) -> None:
    """Draw one pose's bones and joints in place on a BGR image; offset (x, y) is added to joints."""
    pose = pose2d + np.asarray(offset, np.float32)
    for bone in part.bones:
        if bone in skip_bones:
            continue
        a, b = endpoint(pose, bone.a), endpoint(pose, bone.b)
        cv2.line(image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), bone.color, 2 * lw)
    radius = part.joint_radius_scale * lw
    for x, y in pose:
        cv2.circle(image, (int(x), int(y)), radius, JOINT_COLOR, -1)


def track_color(track: int) -> tuple[int, int, int]:
    """A BGR colour of its own for each track id, the same in every frame (hues a golden angle apart)."""
    hue = int((track * 0.618033988749895 % 1.0) * 180)
    return tuple(int(c) for c in cv2.cvtColor(np.uint8([[[hue, 220, 230]]]), cv2.COLOR_HSV2BGR)[0, 0])


def draw_labels(image: np.ndarray, result: Result, offset: tuple[int, int] = (0, 0)) -> None:
    """Each tracked person's id (`track` field) in place on a BGR image, in the track's colour: above
    the head of bodies, above lone hands and faces (attached ones carry their body's id)."""
    attached = {p: set() for p in ("hand", "face")}
    for link, part in (("left_hand", "hand"), ("right_hand", "hand"), ("face", "face")):
        attached[part].update(int(i) for i in result.body.fields[link] if i >= 0)
    for name in ("body", "hand", "face"):
        dets = result[name]
        if "track" not in dets.fields:
            continue
        for i, (pose, track) in enumerate(zip(dets.pose2d, dets.track)):
            if track is None or int(track) < 0 or i in attached.get(name, ()):
                continue
            anchor = pose[BODY_HEAD] if name == "body" else pose[np.argmin(pose[:, 1])]
            x, y = (anchor + np.asarray(offset) + (-12, -28)).astype(int)
            text = f"#{int(track)}"
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
            cv2.rectangle(image, (int(x) - 3, int(y) - th - 4), (int(x) + tw + 3, int(y) + 4), track_color(int(track)), -1)
            cv2.putText(image, text, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2)


def draw_result(image_bgr: np.ndarray, result: Result, lw: int = LINE_WIDTH, max_padding: int = MAX_PADDING,
                pad: bool = True, scores: bool = True, labels: bool = True) -> np.ndarray:
    """A copy of a BGR image with every body, hand and face drawn (SPEC §7).

    The copy is padded with black where joints fall outside the image (at most max_padding
    pixels per side) unless pad is False. Nothing detected: an unchanged copy. labels: each
    tracked person's id, in a colour stable per track (when the results carry `track`).
    """
    parts = result.parts()
    if not len(result):
        return image_bgr.copy()
    h, w = image_bgr.shape[:2]
    top, bottom, left, right = padding(parts, h, w, max_padding) if pad else (0, 0, 0, 0)
    out = cv2.copyMakeBorder(image_bgr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    for name, dets in parts.items():
        for pose in dets.pose2d:
            draw_pose(out, pose, PARTS[name], lw, offset=(left, top))
    if scores:
        for pose, score in zip(parts["body"].pose2d, parts["body"].scores):
            x, y = pose[BODY_HEAD] + np.asarray((left, top)) + TEXT_OFFSET
            cv2.putText(out, "%.2f" % score, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_COLOR)
    if labels:
        draw_labels(out, result, offset=(left, top))
    return out
