"""Synthetic scenes for the tracking and smoothing benchmark: people walking, crossing, hidden.

Poses are made here, not measured: a walking body (13 joints, legs and arms swinging at a gait
frequency), an open hand at each wrist along the forearm and a face at the head, built in an
image-aligned 3D frame (metres; x right, y down), turned about the vertical axis and projected by a
scaled orthographic camera, so that 2D and 3D agree. As DOPE gives them, body 3D poses have x and y
flipped and hand and face 3D poses are centred on the part.

`make_scene` returns the detections as `Result`s (what `--json` writes for a video, links set)
and the truth per frame; noise, missed detections, hidden people and false positives as asked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
import numpy as np

from dope.results import NO_LINK, PartArrays, Result

# Standing body, image-aligned metres, origin near the pelvis, in parts.BODY_JOINTS order.
STANDING = np.array([
    [-0.10, 0.92, 0.00], [0.10, 0.92, 0.00], [-0.10, 0.50, 0.00], [0.10, 0.50, 0.00],
    [-0.11, 0.05, 0.00], [0.11, 0.05, 0.00], [-0.24, 0.02, 0.02], [0.24, 0.02, 0.02],
    [-0.23, -0.24, 0.02], [0.23, -0.24, 0.02], [-0.18, -0.50, 0.00], [0.18, -0.50, 0.00],
    [0.00, -0.74, 0.00]])
R_ANKLE, L_ANKLE, R_KNEE, L_KNEE, R_HIP, L_HIP, R_WRIST, L_WRIST, R_ELBOW, L_ELBOW, R_SHOULDER, L_SHOULDER, HEAD = range(13)


def _rot_y(points: np.ndarray, radians: float) -> np.ndarray:
    c, s = math.cos(radians), math.sin(radians)
    return points @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T


def _swing(top: np.ndarray, point: np.ndarray, angle: float) -> np.ndarray:
    """`point` turned about `top` by `angle` in the y-z plane (forward is -z)."""
    d = point - top
    c, s = math.cos(angle), math.sin(angle)
    return top + np.array([d[0], c * d[1] - s * d[2], s * d[1] + c * d[2]])


def walking_body(phase: float, amplitude: float = 0.45) -> np.ndarray:
    """float[13, 3]: the body at gait `phase` (radians): legs swing +-amplitude, knees bend, arms swing."""
    p = STANDING.copy()
    for hip, knee, ankle, sign in ((R_HIP, R_KNEE, R_ANKLE, 1.0), (L_HIP, L_KNEE, L_ANKLE, -1.0)):
        a = sign * amplitude * math.sin(phase)
        p[knee] = _swing(p[hip], p[knee], a)
        p[ankle] = _swing(p[hip], p[ankle], a)
        bend = 0.25 * (1 + math.sin(phase * sign + 0.6))  # knees bend most as the leg swings forward
        p[ankle] = _swing(p[knee], p[ankle], -bend)
    for shoulder, elbow, wrist, sign in ((R_SHOULDER, R_ELBOW, R_WRIST, -1.0), (L_SHOULDER, L_ELBOW, L_WRIST, 1.0)):
        a = sign * 0.6 * amplitude * math.sin(phase)
        p[elbow] = _swing(p[shoulder], p[elbow], a)
        p[wrist] = _swing(p[shoulder], p[wrist], a)
    return p


def hand_pose(direction: np.ndarray, size: float = 0.09) -> np.ndarray:
    """float[21, 3]: an open hand whose fingers point along `direction`, wrist at 0 (joint order of
    parts.HAND_JOINTS: finger f is 0 -> f+1 -> 3f+6 -> 3f+7 -> 3f+8)."""
    d = np.asarray(direction, np.float64)
    d = d / max(np.linalg.norm(d), 1e-9)
    side = np.cross(d, [0.0, 0.0, 1.0])
    side = side / np.linalg.norm(side) if np.linalg.norm(side) > 1e-6 else np.array([1.0, 0.0, 0.0])
    p = np.zeros((21, 3))
    for f in range(5):
        spread = math.radians((-55, -18, 0, 15, 30)[f])
        ray = math.cos(spread) * d + math.sin(spread) * side
        p[f + 1] = (0.45 if f == 0 else 0.95) * size * ray
        for k, j in enumerate((3 * f + 6, 3 * f + 7, 3 * f + 8)):
            p[j] = p[f + 1] + (k + 1) * 0.3 * size * ray
    return p


def face_pose(size: float = 0.16) -> np.ndarray:
    """float[84, 3]: 84 landmarks on a face-sized oval (jaw, brows, nose, eyes, lips), centred."""
    s = size / 0.16
    a = np.linspace(0, 2 * math.pi, 84, endpoint=False)
    r = np.where(np.arange(84) < 33, 1.0, 0.3 + 0.5 * (np.arange(84) % 7) / 7)
    p = np.stack([0.075 * r * np.cos(a), 0.095 * r * np.sin(a), -0.04 * (1 - r)], 1)
    return (p - p.mean(0)) * s


@dataclass
class Truth:
    """One person in one frame: ids and poses without noise (pose3d in the detections' frames)."""
    person: int
    visible: bool
    body2d: np.ndarray
    body3d: np.ndarray
    hands2d: np.ndarray  # [2 (left, right), 21, 2]
    hands3d: np.ndarray
    face2d: np.ndarray
    face3d: np.ndarray


@dataclass
class Scene:
    results: list[Result]
    truth: list[list[Truth]]  # per frame, per person
    fps: float
    hidden_runs: list[int] = field(default_factory=list)  # lengths of the hidden intervals


def _person_parts(centre: np.ndarray, scale: float, yaw: float, phase: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(body2d, body3d (flipped), hands2d [2], hands3d [2], face2d, face3d) of one person."""
    b = _rot_y(walking_body(phase), yaw)
    body2d = centre + scale * b[:, :2]
    h2, h3 = [], []
    for wrist, elbow in ((L_WRIST, L_ELBOW), (R_WRIST, R_ELBOW)):
        h = b[wrist] + hand_pose(b[wrist] - b[elbow])
        h2.append(centre + scale * h[:, :2])
        h3.append(h - h.mean(0))
    f = _rot_y(face_pose(), yaw) + b[HEAD] + np.array([0.0, 0.02, -0.04])
    return (body2d, b * np.array([-1.0, -1.0, 1.0]), np.stack(h2), np.stack(h3), centre + scale * f[:, :2],
            f - f.mean(0))


def make_scene(num_people: int = 4, frames: int = 300, fps: float = 30.0, width: int = 1280, height: int = 720,
               noise2d: float = 3.0, noise3d: float = 0.02, miss: float = 0.05, false_positives: float = 0.1,
               max_hidden: int = 20, crossings: bool = True, seed: int = 0) -> Scene:
    """A clip of `num_people` walking back and forth across the image, so that they cross.

    noise2d: pixels (Gaussian, per coordinate); noise3d: metres; miss: chance that a detection is
    missing; false_positives: chance per frame of one spurious body (and of one spurious hand) seen
    for that frame only; max_hidden: longest hidden interval. A person farther away is hidden while
    a nearer one passes in front (at most max_hidden frames), and every person is also hidden once
    for a random 5..max_hidden frames.
    """
    rng = np.random.default_rng(seed)
    scales = rng.uniform(150, 260, num_people)  # pixels per metre: nearer people are bigger
    ground = height * 0.35 + (scales - 150) / 110 * height * 0.2
    speed = rng.uniform(0.6, 1.4, num_people) * scales / fps * rng.choice([-1, 1], num_people)  # px/frame
    x = rng.uniform(0.15, 0.85, num_people) * width
    phase = rng.uniform(0, 2 * math.pi, num_people)
    cadence = rng.uniform(0.8, 1.1, num_people)  # gait cycles per second
    track_x = np.zeros((frames, num_people))
    cruise, heading = np.abs(speed), np.sign(speed)
    for t in range(frames):  # back and forth; a turn at the image's sides takes about a second
        track_x[t] = x
        x = x + speed
        heading = np.where(x < 0.1 * width, 1.0, np.where(x > 0.9 * width, -1.0, heading))
        speed = speed + np.clip(heading * cruise - speed, -2 * cruise / fps, 2 * cruise / fps)
    hidden = np.zeros((frames, num_people), bool)
    if crossings:
        for i in range(num_people):
            for j in range(num_people):
                if scales[j] > scales[i]:  # j is nearer: it hides i when in front of it
                    hidden[:, i] |= np.abs(track_x[:, i] - track_x[:, j]) < 0.12 * scales[j]
    for i in range(num_people):
        start, length = int(rng.integers(10, frames - max_hidden - 1)), int(rng.integers(5, max_hidden + 1))
        hidden[start:start + length, i] = True
    runs = []
    for i in range(num_people):  # no hidden run longer than max_hidden, none closer than 10 frames
        t, last_end = 0, -100
        while t < frames:
            if not hidden[t, i]:
                t += 1
                continue
            end = t
            while end < frames and hidden[end, i]:
                end += 1
            if t - last_end < 10:
                hidden[t:end, i] = False
            else:
                hidden[t + max_hidden:end, i] = False
                runs.append(min(end - t, max_hidden))
                last_end = min(end, t + max_hidden)
            t = end
    hidden[0] = False  # everyone is seen in the first frame
    results, truth = [], []
    for t in range(frames):
        bodies, hands, faces, people = [], [], [], []
        for i in range(num_people):
            yaw = math.radians(30.0 * math.sin(0.01 * t + i))  # people turn slowly as they walk
            ph = phase[i] + 2 * math.pi * cadence[i] * t / fps
            b2, b3, h2, h3, f2, f3 = _person_parts(np.array([track_x[t, i], ground[i]]), scales[i], yaw, ph)
            people.append(Truth(i, not hidden[t, i], b2, b3, h2, h3, f2, f3))
            if hidden[t, i] or rng.random() < miss:
                continue
            noisy = lambda a, s: a + rng.normal(0, s, a.shape)
            links = {"left_hand": NO_LINK, "right_hand": NO_LINK, "face": NO_LINK}
            nb2 = noisy(b2, noise2d)
            for side, link, is_right in ((0, "left_hand", False), (1, "right_hand", True)):
                if rng.random() >= miss:
                    hand2d = noisy(h2[side], noise2d)
                    links[link] = len(hands)
                    nb2[L_WRIST if side == 0 else R_WRIST] = hand2d[0]  # as assign() does
                    hands.append((rng.uniform(0.5, 1.0), hand2d, noisy(h3[side], noise3d), is_right))
            if rng.random() >= miss:
                links["face"] = len(faces)
                faces.append((rng.uniform(0.5, 1.0), noisy(f2, noise2d), noisy(f3, noise3d)))
            score = rng.uniform(0.6, 1.0) if rng.random() > 0.15 else rng.uniform(0.2, 0.5)
            bodies.append((score, nb2, noisy(b3, noise3d), links))
        if rng.random() < false_positives:  # a spurious body somewhere, seen for this frame only
            s = rng.uniform(150, 260)
            b2, b3, h2, h3, _, _ = _person_parts(np.array([rng.uniform(0.1, 0.9) * width, rng.uniform(0.3, 0.6) * height]),
                                                 s, rng.uniform(-1, 1), rng.uniform(0, 6.3))
            bodies.append((rng.uniform(0.2, 0.9), b2, b3, {"left_hand": NO_LINK, "right_hand": NO_LINK, "face": NO_LINK}))
        if rng.random() < false_positives:
            hands.append((rng.uniform(0.2, 0.9), h2[0] + rng.uniform(-200, 200, 2), h3[0], bool(rng.random() < 0.5)))
        order = sorted(range(len(bodies)), key=lambda k: -bodies[k][0])
        bodies = [bodies[k] for k in order]
        results.append(_result(height, width, bodies, hands, faces))
        truth.append(people)
    return Scene(results, truth, fps, runs)


def _result(height: int, width: int, bodies: list, hands: list, faces: list) -> Result:
    body = PartArrays("body", [b[0] for b in bodies], np.reshape([b[1] for b in bodies], (-1, 13, 2)),
                      np.reshape([b[2] for b in bodies], (-1, 13, 3)),
                      **{k: [b[3][k] for b in bodies] for k in ("left_hand", "right_hand", "face")})
    hand = PartArrays("hand", [h[0] for h in hands], np.reshape([h[1] for h in hands], (-1, 21, 2)),
                      np.reshape([h[2] for h in hands], (-1, 21, 3)), is_right=[h[3] for h in hands])
    face = PartArrays("face", [f[0] for f in faces], np.reshape([f[1] for f in faces], (-1, 84, 2)),
                      np.reshape([f[2] for f in faces], (-1, 84, 3)))
    return Result(height, width, body=body, hand=hand, face=face)

