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


COORD_LIMIT = 1e6  # pixels: joints beyond are drawn at this distance (OpenCV takes int32 coordinates)


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
        pts = pts[np.isfinite(pts).all(1)]  # non-finite joints (from non-finite weights) are not drawn
        if not len(pts):
            continue
        (xmin, ymin), (xmax, ymax) = pts.min(0), pts.max(0)
        for k, v in enumerate((int(-ymin - 5), int(ymax + 5 - height), int(-xmin - 5), int(xmax + 5 - width))):
            pad[k] = max(pad[k], min(max_padding, max(0, v)))
    return tuple(pad)  # type: ignore[return-value]


def draw_pose(image: np.ndarray, pose2d: np.ndarray, part: Part, lw: int = LINE_WIDTH,
              offset: tuple[int, int] = (0, 0), skip_bones: Sequence = ()) -> None:
    """Draw one pose's bones and joints in place on a BGR image; offset (x, y) is added to joints."""
    # within OpenCV's int32 coordinates, however far off a joint is
    pose = np.clip(pose2d + np.asarray(offset, np.float32), -COORD_LIMIT, COORD_LIMIT)
    for bone in part.bones:
        if bone in skip_bones:
            continue
        a, b = endpoint(pose, bone.a), endpoint(pose, bone.b)
        cv2.line(image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), bone.color, 2 * lw)
    radius = part.joint_radius_scale * lw
    for x, y in pose:
        cv2.circle(image, (int(x), int(y)), radius, JOINT_COLOR, -1)


def draw_result(image_bgr: np.ndarray, result: Result, lw: int = LINE_WIDTH, max_padding: int = MAX_PADDING,
                pad: bool = True, scores: bool = True) -> np.ndarray:
    """A copy of a BGR image with every body, hand and face drawn (SPEC §7).

    The copy is padded with black where joints fall outside the image (at most max_padding
    pixels per side) unless pad is False. Nothing detected: an unchanged copy.
    """
    parts = result.parts()
    if not len(result):
        return image_bgr.copy()
    h, w = image_bgr.shape[:2]
    top, bottom, left, right = padding(parts, h, w, max_padding) if pad else (0, 0, 0, 0)
    out = cv2.copyMakeBorder(image_bgr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    for name, dets in parts.items():
        for pose in dets.pose2d:
            if not np.isfinite(pose).all():  # from non-finite weights: the detector has warned
                continue
            draw_pose(out, pose, PARTS[name], lw, offset=(left, top))
    if scores:
        for pose, score in zip(parts["body"].pose2d, parts["body"].scores):
            x, y = np.clip(pose[BODY_HEAD] + np.asarray((left, top)) + TEXT_OFFSET, -COORD_LIMIT, COORD_LIMIT)
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            cv2.putText(out, "%.2f" % score, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_COLOR)
    return out
