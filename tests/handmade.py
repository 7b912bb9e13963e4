"""Hand-made, plausible whole-body detections for the 3D view's tests and the README picture.

People are built in an image-aligned 3D frame (metres; x right, y down, z away from the camera),
turned about the vertical axis, and projected by a scaled orthographic camera, so the 2D and 3D
poses agree exactly. As DOPE gives them, body 3D poses have x and y flipped; hand and face 3D
poses are centred on the part.

    python -m tests.handmade docs/visu3d_example.jpg     # the README picture (from the repository root)
    python -m tests.handmade docs/visu3d_camera_example.jpg builtin camera   # people at 3, 5 and 9 m
"""
from __future__ import annotations

import math
import sys

import numpy as np

from dope.results import Detection, Result

# Standing body, image-aligned metres, origin near the pelvis: joint order of parts.BODY_JOINTS.
STANDING = np.array([
    [-0.10, 0.92, 0.00], [0.10, 0.92, 0.00],    # ankles r, l (the person's right is on the image's left)
    [-0.10, 0.50, 0.00], [0.10, 0.50, 0.00],    # knees
    [-0.11, 0.05, 0.00], [0.11, 0.05, 0.00],    # hips
    [-0.24, 0.02, 0.02], [0.24, 0.02, 0.02],    # wrists
    [-0.23, -0.24, 0.02], [0.23, -0.24, 0.02],  # elbows
    [-0.18, -0.50, 0.00], [0.18, -0.50, 0.00],  # shoulders
    [0.00, -0.74, 0.00],                        # head
])
R_WRIST, L_WRIST, R_ELBOW, L_ELBOW, R_SHOULDER = 6, 7, 8, 9, 10


def rotate_y(points: np.ndarray, degrees: float) -> np.ndarray:
    """Turn points float[..., 3] about the vertical (image y) axis."""
    a = math.radians(degrees)
    r = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    return points @ r.T


def body_pose(wave: float = 0.0, stride: float = 0.0) -> np.ndarray:
    """float[13, 3]: the standing body, right forearm raised by `wave` (0..1), legs apart in z by `stride` (m)."""
    p = STANDING.copy()
    if wave:
        elbow = p[R_SHOULDER] + np.array([-0.22, 0.05 - 0.2 * wave, 0.02])
        p[R_ELBOW] = elbow
        p[R_WRIST] = elbow + np.array([-0.05 * (1 - wave), 0.26 - 0.5 * wave, -0.05])
    p[[0, 2], 2] -= stride / 2  # right leg forward
    p[[1, 3], 2] += stride / 2
    return p


def hand_pose(direction: np.ndarray, size: float = 0.09) -> np.ndarray:
    """float[21, 3]: an open hand whose fingers point along `direction` (a 3D vector), wrist at 0."""
    d = np.asarray(direction, np.float64)
    d /= np.linalg.norm(d)
    side = np.cross(d, [0.0, 0.0, 1.0])
    side = side / np.linalg.norm(side) if np.linalg.norm(side) > 1e-6 else np.array([1.0, 0.0, 0.0])
    p = np.zeros((21, 3))
    for f in range(5):  # finger f: 0 -> f+1 -> 3f+6 -> 3f+7 -> 3f+8
        spread = math.radians((-55, -18, 0, 15, 30)[f])
        ray = math.cos(spread) * d + math.sin(spread) * side
        base = (0.45 if f == 0 else 0.95) * size
        lengths = np.array([0.45, 0.30, 0.22]) * size * (0.8 if f in (0, 4) else 1.0)
        p[f + 1] = base * ray
        joint = p[f + 1]
        for k, j in enumerate((3 * f + 6, 3 * f + 7, 3 * f + 8)):
            curl = np.array([0.0, 0.0, -0.15 * (k + 1) * size])  # fingers bend slightly towards the camera
            joint = joint + lengths[k] * ray + curl * 0.3
            p[j] = joint
    return p


def face_pose(size: float = 0.16) -> np.ndarray:
    """float[84, 3]: a face in the 84-landmark layout (SPEC §1), nose towards the camera, centred."""
    s = size / 0.16
    p = np.zeros((84, 3))
    phi = np.linspace(math.pi, 0, 33)  # jaw: from the image-left ear down to the chin and up
    p[0:33] = np.stack([0.075 * np.cos(phi), 0.01 + 0.095 * np.sin(phi), 0.045 * (1 - np.sin(phi))], 1)
    for first, cx in ((33, -0.038), (38, 0.038)):  # eyebrows
        x = cx + np.linspace(-0.022, 0.022, 5)
        p[first:first + 5] = np.stack([x, -0.042 - 0.008 * np.cos((x - cx) / 0.022 * math.pi / 2), np.full(5, -0.01)], 1)
    p[43:47] = np.stack([np.zeros(4), np.linspace(-0.025, 0.02, 4), np.linspace(-0.01, -0.04, 4)], 1)  # nose bridge
    p[47:52] = np.stack([np.linspace(-0.018, 0.018, 5), np.full(5, 0.028), -0.025 + 0.01 * np.abs(np.linspace(-1, 1, 5))], 1)
    for first, cx in ((52, -0.035), (58, 0.035)):  # eyes: closed loops of 6
        a = np.linspace(math.pi, -math.pi, 6, endpoint=False)
        p[first:first + 6] = np.stack([cx + 0.014 * np.cos(a), -0.018 + 0.006 * np.sin(a), np.zeros(6)], 1)
    a = np.linspace(math.pi, -math.pi, 12, endpoint=False)  # outer lips
    p[64:76] = np.stack([0.026 * np.cos(a), 0.058 + 0.011 * np.sin(a), np.full(12, -0.015)], 1)
    a = np.linspace(math.pi, -math.pi, 8, endpoint=False)  # inner lips
    p[76:84] = np.stack([0.016 * np.cos(a), 0.058 + 0.004 * np.sin(a), np.full(8, -0.016)], 1)
    return (p - p.mean(0)) * s


def person(x: float, y: float, scale: float, yaw: float = 0.0, wave: float = 0.0, stride: float = 0.0,
           score: float = 0.9) -> tuple[Detection, list[Detection], Detection]:
    """(body, [left hand, right hand], face) of one person whose body centre is at pixel (x, y).

    scale: pixels per metre. The parts' 2D poses are the orthographic projection of their 3D
    poses; body pose3d is stored flipped (x, y negated), hands and faces centred.
    """
    body3d = rotate_y(body_pose(wave, stride), yaw)
    origin = np.array([x, y])
    body2d = origin + scale * body3d[:, :2]
    hands = []
    for wrist, elbow, is_right in ((L_WRIST, L_ELBOW, False), (R_WRIST, R_ELBOW, True)):
        h3d = body3d[wrist] + hand_pose(body3d[wrist] - body3d[elbow])
        hands.append(Detection(score=score * 0.9, pose2d=(origin + scale * h3d[:, :2]).astype(np.float32),
                               pose3d=(h3d - h3d.mean(0)).astype(np.float32), is_right=is_right))
    f3d = rotate_y(face_pose(), yaw) + body3d[12] + np.array([0.0, 0.02, -0.04])
    face = Detection(score=score * 0.8, pose2d=(origin + scale * f3d[:, :2]).astype(np.float32),
                     pose3d=(f3d - f3d.mean(0)).astype(np.float32))
    flipped = body3d * np.array([-1.0, -1.0, 1.0])
    body = Detection(score=score, pose2d=body2d.astype(np.float32), pose3d=flipped.astype(np.float32))
    return body, hands, face


def scene_result(height: int = 480, width: int = 640) -> Result:
    """Three people with hands and faces attached, a fourth hand on its own."""
    k = height / 480
    people = [person(0.24 * width, 0.52 * height, 230 * k, yaw=25, wave=1.0, score=0.95),
              person(0.52 * width, 0.56 * height, 205 * k, yaw=-10, stride=0.3, score=0.9),
              person(0.80 * width, 0.50 * height, 250 * k, yaw=-35, wave=0.4, score=0.85)]
    bodies, hands, faces = [], [], []
    for body, (left, right), face in people:
        body.left_hand, body.right_hand, body.face = len(hands), len(hands) + 1, len(faces)
        bodies.append(body)
        hands += [left, right]
        faces.append(face)
    lone = hand_pose(np.array([0.3, -1.0, 0.2]))
    lone2d = np.array([0.93 * width, 0.12 * height]) + 200 * k * lone[:, :2]
    hands.append(Detection(score=0.4, pose2d=lone2d.astype(np.float32),
                           pose3d=(lone - lone.mean(0)).astype(np.float32), is_right=True))
    return Result(height=height, width=width, body=bodies, hand=hands, face=faces)


# ------------------------------------------------------------------ people in camera space (perspective)


def camera_person(position: np.ndarray, focal: float, cx: float, cy: float, yaw: float = 0.0, wave: float = 0.0,
                  stride: float = 0.0, score: float = 0.9, head_turn: float = 0.0) -> tuple[dict[str, np.ndarray], Detection, list[Detection],
                                                                     Detection]:
    """One whole-body person standing at `position` (metres, OpenCV camera frame: x right, y down,
    z forward; the body's pelvis there), projected by a pinhole camera (focal, cx, cy pixels); its
    face turned by `head_turn` degrees more than its body.

    Returns (true camera-space joints {"body", "left_hand", "right_hand", "face"}, body, [left
    hand, right hand], face) with exact 2D poses and DOPE-style relative 3D poses (bodies flipped
    and centred on their mean, hands and faces centred)."""
    position = np.asarray(position, np.float64)
    body = rotate_y(body_pose(wave, stride), yaw) + position
    truth = {"body": body}

    def project(p):
        return np.stack([focal * p[:, 0] / p[:, 2] + cx, focal * p[:, 1] / p[:, 2] + cy], 1).astype(np.float32)

    hands = []
    for key, wrist, elbow, is_right in (("left_hand", L_WRIST, L_ELBOW, False), ("right_hand", R_WRIST, R_ELBOW, True)):
        h3d = body[wrist] + hand_pose(body[wrist] - body[elbow])
        truth[key] = h3d
        hands.append(Detection(score=score * 0.9, pose2d=project(h3d), pose3d=(h3d - h3d.mean(0)).astype(np.float32),
                               is_right=is_right))
    f3d = rotate_y(face_pose(), yaw + head_turn) + body[12] + np.array([0.0, 0.02, -0.04])
    truth["face"] = f3d
    face = Detection(score=score * 0.8, pose2d=project(f3d), pose3d=(f3d - f3d.mean(0)).astype(np.float32))
    flipped = (body - body.mean(0)) * np.array([-1.0, -1.0, 1.0])
    return truth, Detection(score=score, pose2d=project(body), pose3d=flipped.astype(np.float32)), hands, face


def camera_scene(positions, focal: float = 1000.0, height: int = 720, width: int = 1280, yaws=None,
                 lone_hand: bool = False, head_turn: float = 0.0) -> tuple[Result, list[dict[str, np.ndarray]]]:
    """People standing at `positions` (metres, camera frame), seen by a pinhole camera of `focal`
    pixels centred on the image: (Result with hands and faces attached, true joints per person)."""
    bodies, hands, faces, truths = [], [], [], []
    for k, pos in enumerate(positions):
        yaw = 0.0 if yaws is None else yaws[k]
        truth, body, (left, right), face = camera_person(pos, focal, width / 2, height / 2, yaw=yaw,
                                                        wave=(k % 3) / 2, stride=0.1 * (k % 2),
                                                        score=0.95 - 0.05 * k, head_turn=head_turn)
        body.left_hand, body.right_hand, body.face = len(hands), len(hands) + 1, len(faces)
        # DOPE puts the attached hand's wrist into the body's 2D pose
        body.pose2d[L_WRIST], body.pose2d[R_WRIST] = left.pose2d[0], right.pose2d[0]
        bodies.append(body)
        hands += [left, right]
        faces.append(face)
        truths.append(truth)
    if lone_hand:
        h3d = hand_pose(np.array([0.3, -1.0, 0.2])) + np.array([0.4, -0.3, 1.5])
        truths.append({"lone_hand": h3d})
        uv = np.stack([focal * h3d[:, 0] / h3d[:, 2] + width / 2, focal * h3d[:, 1] / h3d[:, 2] + height / 2], 1)
        hands.append(Detection(score=0.4, pose2d=uv.astype(np.float32), pose3d=(h3d - h3d.mean(0)).astype(np.float32),
                               is_right=True))
    return Result(height=height, width=width, body=bodies, hand=hands, face=faces), truths


def background(height: int = 480, width: int = 640) -> np.ndarray:
    """uint8[H, W, 3] RGB: a plain room, a light wall over a darker floor."""
    y = np.linspace(0, 1, height)[:, None, None]
    wall = np.array([214, 222, 230]) - 40 * y
    floor = np.array([150, 132, 112]) + 50 * (y - 0.7)
    img = np.where(y < 0.7, wall, floor) * np.ones((1, width, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def main(argv: list[str]) -> int:
    import logging
    from dope.view3d.render import write_visu3d
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = argv[0] if argv else "docs/visu3d_example.jpg"
    renderer = argv[1] if len(argv) > 1 else "builtin"
    h, w = 720, 1280
    result = scene_result(h, w)
    if len(argv) > 2 and argv[2] == "camera":  # people at their real depths (camera-space placement)
        from dope.motion.camera import intrinsics, place_result
        result, _ = camera_scene([(-1.2, 0.3, 3.0), (1.6, 0.5, 9.0), (0.4, 0.35, 5.0)], focal=1000.0, height=h,
                                 width=w, yaws=[25, -20, 5])
        result = place_result(result, intrinsics(w, h, focal=1000.0))
    used = write_visu3d(background(h, w), result, out, renderer=renderer)
    logging.info("wrote %s (%s renderer)", out, used)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
