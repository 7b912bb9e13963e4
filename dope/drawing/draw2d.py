"""2D drawing of detections over an image (inference never draws; this takes an image and results).

The style follows SPEC §7 on an image of REFERENCE_SIZE (480x640 pixels, either way round): bones
2·lw wide with lw = 2, body joints of radius 2·lw, face joints lw, score text of size 0.5. On other
images the line width, joint radii, text and its offset scale with the image, by the square root
of its area over the reference's (as rtmlib and MediaPipe scale their skeletons), so that a 4x
larger photo gets 4x thicker bones, and smaller images get thinner ones (down to 1 px); the score
text is never smaller than SPEC's (it would not be readable). Two
deliberate changes from the published drawing: hand joints have radius lw (the bone's half
width, so the discs do not hide the fingers' colours), and a body's score is written above its
attached face's box rather than over the face.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

from dope.parts import BODY_HEAD, PARTS, Part
from dope.results import NO_LINK, PartArrays, Parts, Result

LINE_WIDTH = 2          # lw of SPEC §7 on an image of REFERENCE_SIZE
REFERENCE_SIZE = (480, 640)
TEXT_SCALE = 0.5
HAND_JOINT_RADIUS_SCALE = 1  # in units of lw: the bone's half width (SPEC: 2, which hides small fingers)
MAX_PADDING = 100
JOINT_COLOR = (0, 0, 255)
TEXT_COLOR = (0, 0, 0)
TEXT_OFFSET = (-10, -10)


COORD_LIMIT = 1e6  # pixels: joints beyond are drawn at this distance (OpenCV takes int32 coordinates)


def endpoint(pose: np.ndarray, joints: Sequence[int]) -> np.ndarray:
    """A bone endpoint: the joint itself or the mean of several joints; pose (..., J, 2) -> (..., 2)."""
    return pose[..., joints[0], :] if len(joints) == 1 else pose[..., list(joints), :].mean(-2)


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


def line_width(height: int, width: int) -> float:
    """lw for an image of this size: LINE_WIDTH on REFERENCE_SIZE, scaled by sqrt(area ratio)."""
    return LINE_WIDTH * math.sqrt(height * width / (REFERENCE_SIZE[0] * REFERENCE_SIZE[1]))


def draw_pose(image: np.ndarray, pose2d: np.ndarray, part: Part, lw: float = LINE_WIDTH,
              offset: tuple[int, int] = (0, 0), skip_bones: Sequence = ()) -> None:
    """Draw one pose's bones and joints in place on a BGR image; offset (x, y) is added to joints.

    Bones are round(2 lw) pixels wide (at least 1), joints discs of radius round(scale lw) (at
    least 1), scale being the part's `joint_radius_scale` (hands: HAND_JOINT_RADIUS_SCALE).
    """
    draw_poses(image, pose2d[None], part, lw, offset, skip_bones)


def draw_poses(image: np.ndarray, poses: np.ndarray, part: Part, lw: float = LINE_WIDTH,
               offset: tuple[int, int] = (0, 0), skip_bones: Sequence = ()) -> None:
    """`draw_pose` for each of poses (P, J, 2) in turn (the same pixels), with the bone endpoints
    and pixel coordinates of all of them computed at once: a network with random weights gives
    thousands of detections, and per-joint NumPy calls cost more than the drawing. Poses with a
    non-finite joint are not drawn (the detector has warned about them)."""
    poses = np.asarray(poses)
    poses = poses[np.isfinite(poses).all(axis=(1, 2))]
    if not len(poses):
        return
    # within OpenCV's int32 coordinates, however far off a joint is
    poses = np.clip(poses + np.asarray(offset, np.float32), -COORD_LIMIT, COORD_LIMIT)
    bones = [bone for bone in part.bones if bone not in skip_bones]
    # Flat lists of Python ints (one list each: nested lists would be thousands of objects for the
    # garbage collector to walk, with torch's millions of objects around, which costs more than drawing).
    if bones:
        starts = np.stack([endpoint(poses, bone.a) for bone in bones], 1).astype(np.int64).ravel().tolist()
        stops = np.stack([endpoint(poses, bone.b) for bone in bones], 1).astype(np.int64).ravel().tolist()
    joints = poses.astype(np.int64).ravel().tolist()  # truncated toward zero, as int() does
    colors = [bone.color for bone in bones]
    thickness = max(1, round(2 * lw))
    scale = HAND_JOINT_RADIUS_SCALE if part.name == "hand" else part.joint_radius_scale
    radius = max(1, round(scale * lw))
    nb, nj = 2 * len(bones), 2 * poses.shape[1]
    for p in range(len(poses)):
        for i, color in zip(range(p * nb, (p + 1) * nb, 2), colors):
            cv2.line(image, (starts[i], starts[i + 1]), (stops[i], stops[i + 1]), color, thickness)
        for i in range(p * nj, (p + 1) * nj, 2):
            cv2.circle(image, (joints[i], joints[i + 1]), radius, JOINT_COLOR, -1)


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


CHANNEL_ORDERS = ("rgb", "bgr")


def check_channels(channels: str) -> None:
    """ValueError unless `channels` names a channel order: "rgb" or "bgr"."""
    if channels not in CHANNEL_ORDERS:
        raise ValueError(f"channels must be 'rgb' or 'bgr', got {channels!r}")


def draw_result(image: np.ndarray, result: Result, lw: Optional[float] = None, max_padding: int = MAX_PADDING,
                pad: bool = True, scores: bool = True, *, channels: str = "rgb", labels: bool = True) -> np.ndarray:
    """A copy of an image with every body, hand and face drawn (SPEC §7, scaled to the image).

    image: uint8[H, W, 3] in the channel order `channels` ("rgb", the default, as DOPE takes and
        gives images; "bgr" for OpenCV's cv2.imread), and so is the drawing returned.
    lw: the line width (bones are 2 lw pixels wide); None scales it with the image (`line_width`).
    pad: pad the copy with black where joints fall outside the image (at most max_padding pixels
        per side, see `padding`); the drawing is then larger than the image, shifted by (left, top).
    scores: write each body's score near its head (above its face when one is attached).
    labels: each tracked person's id (`#3`), in a colour stable per track, when the results carry `track`.
    Nothing detected: an unchanged copy (no padding).
    """
    check_channels(channels)
    if channels == "rgb":  # drawn in OpenCV's order, where the style's colours are given
        return np.ascontiguousarray(draw_result(np.ascontiguousarray(image[:, :, ::-1]), result, lw, max_padding,
                                                pad, scores, channels="bgr", labels=labels)[:, :, ::-1])
    parts = result.parts()
    if not len(result):
        return image.copy()
    h, w = image.shape[:2]
    size = line_width(h, w) / LINE_WIDTH  # the style's scale: 1 on REFERENCE_SIZE
    lw = line_width(h, w) if lw is None else lw
    top, bottom, left, right = padding(parts, h, w, max_padding) if pad else (0, 0, 0, 0)
    out = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    for name, dets in parts.items():
        draw_poses(out, dets.pose2d, PARTS[name], lw, offset=(left, top))
    if scores:
        draw_scores(out, result, max(1.0, size), (left, top))  # text below SPEC's size is unreadable
    if labels:
        draw_labels(out, result, offset=(left, top))
    return out


def draw_scores(image: np.ndarray, result: Result, size: float = 1.0, offset: tuple[int, int] = (0, 0)) -> None:
    """Write each body's score in place: at its head + TEXT_OFFSET, or, when a face is attached,
    just above the face's box (so that it does not cover the face); size scales text and offset."""
    body, faces = result.body, result.face
    font_scale, thickness = TEXT_SCALE * size, max(1, round(size))
    for i, (pose, score) in enumerate(zip(body.pose2d, body.scores)):
        x, y = pose[BODY_HEAD] + np.asarray(TEXT_OFFSET) * size
        face = int(body.face[i])
        if face != NO_LINK:
            fx, fy = faces.pose2d[face].min(0)
            x, y = min(x, fx), fy + TEXT_OFFSET[1] * size / 2
        x, y = np.clip((x + offset[0], y + offset[1]), -COORD_LIMIT, COORD_LIMIT)
        if not (np.isfinite(x) and np.isfinite(y)):  # from non-finite weights: the detector has warned
            continue
        cv2.putText(image, "%.2f" % score, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, TEXT_COLOR,
                    thickness)
