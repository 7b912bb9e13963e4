"""Labels from MediaPipe Holistic (optional: `pip install "dope-wholebody[mediapipe]"`): its 33 body,
21 + 21 hand and 468 face landmarks mapped onto DOPE's 13 body, 21 hand and 84 face joints, as a
record of the JSON schema `--json` writes, ready for `dope-train`.

The correspondence is data (below). Body: the 12 limb joints are MediaPipe's own; DOPE's head is
the middle of the ears. Hands: the same 21 joints in DOPE's order (wrist; each finger's base; the
rest of each finger). Face: DOPE's 84 points are the iBUG-68 layout with a 33-point jaw: the jaw is
33 points evenly spaced (by length) along MediaPipe's face outline from the right temple (127)
round the chin (152) to the left temple (356); the other 51 points are single landmarks.

3D: bodies from the world landmarks (metres, origin at the middle of the hips, which is MediaPipe's
origin), x and y flipped to DOPE's convention. Hands and faces: MediaPipe gives them only in image
coordinates with a relative depth; they are centred on their mean, put in metres with the body's
scale (world over pixel length of the torso), x and y flipped likewise. Limits: one person per
image (Holistic's); the hands' and faces' depth is relative, not measured.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from dope.errors import DopeError

# DOPE body joint -> MediaPipe pose landmark(s) (a pair: their middle).
BODY = ((28,), (27,), (26,), (25,), (24,), (23,), (16,), (15,), (14,), (13,), (12,), (11,), (7, 8))
# DOPE hand joint -> MediaPipe hand landmark.
HAND = (0, 1, 5, 9, 13, 17, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20)
# MediaPipe's face outline from the right temple round the chin to the left temple (subject's sides).
JAW_OUTLINE = (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288,
               361, 323, 454, 356)
JAW_POINTS = 33
# DOPE face joints 33..83 -> MediaPipe face landmark.
FACE_REST = (70, 63, 105, 66, 107,  # right eyebrow, outer to inner
             336, 296, 334, 293, 300,  # left eyebrow, inner to outer
             168, 197, 5, 4,  # nose bridge, top to tip
             98, 97, 2, 326, 327,  # nose base
             33, 160, 158, 133, 153, 144,  # right eye from its outer corner
             362, 385, 387, 263, 373, 380,  # left eye from its inner corner
             61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips from the right corner
             78, 81, 13, 311, 308, 402, 14, 178)  # inner lips from the right corner
TORSO = ((11, 12), (23, 24))  # shoulders, hips: the body's scale
WRISTS = {True: 16, False: 15}  # is_right -> pose landmark
FLIP = np.array([-1.0, -1.0, 1.0])  # DOPE's 3D: x and y opposite to the image's


def jaw(points: np.ndarray, count: int = JAW_POINTS) -> np.ndarray:
    """`count` points evenly spaced by length along a polyline (N, D) of 2D (its first two
    coordinates decide the spacing), its ends included."""
    seg = np.linalg.norm(np.diff(points[:, :2], axis=0), axis=1)
    at = np.concatenate([[0.0], np.cumsum(seg)])
    want = np.linspace(0.0, at[-1], count)
    return np.stack([np.interp(want, at, points[:, d]) for d in range(points.shape[1])], axis=1)


def body_pose(image_xy: np.ndarray, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(13, 2) pixels and (13, 3) metres of DOPE's body from MediaPipe's 33 pose landmarks in
    pixels (33, 2) and world coordinates (33, 3)."""
    pose2d = np.stack([image_xy[list(i)].mean(0) for i in BODY])
    pose3d = np.stack([world[list(i)].mean(0) for i in BODY]) * FLIP
    return pose2d, pose3d


def metres_per_pixel(image_xy: np.ndarray, world: np.ndarray) -> float:
    """The body's scale: the torso's length in the world over its length in the image."""
    mid = [(np.mean(image_xy[list(p)], 0), np.mean(world[list(p)], 0)) for p in TORSO]
    pixels = np.linalg.norm(mid[0][0] - mid[1][0])
    return float(np.linalg.norm(mid[0][1] - mid[1][1]) / max(pixels, 1e-6))


def part_pose(points: np.ndarray, index: Iterable[int], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(J, 2) pixels and (J, 3) part-centred metres of a hand or face from MediaPipe landmarks (N, 3)
    in pixels (x, y, and z as relative depth in x's pixels)."""
    chosen = points[list(index)]
    return chosen[:, :2].copy(), (chosen - chosen.mean(0)) * scale * FLIP


def face_pose(points: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """DOPE's 84 face points from MediaPipe's 468 face landmarks (468, 3) in pixels."""
    full = np.concatenate([jaw(points[list(JAW_OUTLINE)]), points[list(FACE_REST)]])
    return full[:, :2].copy(), (full - full.mean(0)) * scale * FLIP


def to_record(image: str, height: int, width: int, pose: Optional[np.ndarray], world: Optional[np.ndarray],
              hands: Iterable[np.ndarray] = (), face: Optional[np.ndarray] = None,
              model: str = "mediapipe-holistic") -> dict[str, Any]:
    """One image's record in DOPE's JSON schema from MediaPipe's landmarks in pixels: pose (33, 2+),
    world (33, 3) metres, hands (21, 3) each, face (468+, 3); None or empty for what was not found.
    A hand is right or left by which of the body's wrists its wrist is nearer (Holistic's own
    left/right refer to the image, not the person, depending on mirroring). Scores are 1.0."""
    record: dict[str, Any] = {"image": image, "height": int(height), "width": int(width), "model": model,
                              "body": [], "hand": [], "face": []}
    if pose is None or world is None:
        return record
    pose, world = np.asarray(pose, float), np.asarray(world, float)
    scale = metres_per_pixel(pose[:, :2], world)
    b2, b3 = body_pose(pose[:, :2], world)
    body: dict[str, Any] = {"score": 1.0, "pose2d": _round(b2), "pose3d": _round(b3, 6),
                            "left_hand": None, "right_hand": None, "face": None}
    for points in hands:
        points = np.asarray(points, float)
        h2, h3 = part_pose(points, HAND, scale)
        is_right = bool(np.linalg.norm(h2[0] - pose[WRISTS[True], :2]) < np.linalg.norm(h2[0] - pose[WRISTS[False], :2]))
        link = "right_hand" if is_right else "left_hand"
        if body[link] is None:
            body[link] = len(record["hand"])
        record["hand"].append({"score": 1.0, "pose2d": _round(h2), "pose3d": _round(h3, 6), "is_right": is_right})
    if face is not None:
        f2, f3 = face_pose(np.asarray(face, float), scale)
        body["face"] = 0
        record["face"].append({"score": 1.0, "pose2d": _round(f2), "pose3d": _round(f3, 6)})
    record["body"].append(body)
    return record


def _round(a: np.ndarray, decimals: int = 4) -> list:
    return np.round(a, decimals).tolist()


def _pixels(landmarks: Any, width: int, height: int) -> Optional[np.ndarray]:
    """MediaPipe's normalised landmarks as (N, 3) pixels (z in x's pixels, as MediaPipe scales it)."""
    if landmarks is None:
        return None
    return np.array([[p.x * width, p.y * height, p.z * width] for p in landmarks.landmark])


def label_images(paths: Iterable[str], model_complexity: int = 1) -> Iterator[dict[str, Any]]:
    """A record per image (DOPE's JSON schema, one person at most) from MediaPipe Holistic, run
    offline on the models its wheel ships. An image that cannot be read gives an error record."""
    try:
        import mediapipe as mp
    except ImportError:
        raise DopeError('MediaPipe is not installed: pip install "dope-wholebody[mediapipe]" '
                        "(or pip install mediapipe==0.10.14)") from None
    from dope.inputs.sources import ImageError, load_image
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=model_complexity,
                                        refine_face_landmarks=False) as holistic:
        for path in paths:
            try:
                pixels = load_image(path)
            except ImageError as e:
                yield {"image": os.fspath(path), "error": str(e)}
                continue
            h, w = pixels.shape[:2]
            out = holistic.process(np.ascontiguousarray(pixels))
            world = None
            if out.pose_world_landmarks is not None:
                world = np.array([[p.x, p.y, p.z] for p in out.pose_world_landmarks.landmark])
            pose = _pixels(out.pose_landmarks, w, h)
            hands = [p for p in (_pixels(out.left_hand_landmarks, w, h), _pixels(out.right_hand_landmarks, w, h))
                     if p is not None]
            yield to_record(os.fspath(path), h, w, pose, world, hands, _pixels(out.face_landmarks, w, h),
                            model=f"mediapipe-holistic-{mp.__version__}")
