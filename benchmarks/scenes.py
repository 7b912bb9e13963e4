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
from typing import Optional

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
    return _parts_of(walking_body(phase), centre, scale, yaw)


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



# -------------------------------------------------------------------------------- families
#
# Scene families for tuning and held-out evaluation (issue 33). Each family is a kind of scene
# (crossings, occlusions, signers, a crowd, ...) drawn from a seed; each seed also draws its own
# noise model (`NoiseModel`): Gaussian or heavy-tailed, white or temporally correlated, per-joint
# levels, whole-detection (box-level) shifts and scalings, score noise, missed, duplicated and
# spurious detections. Settings are tuned on TUNING_SEEDS of TUNING_FAMILIES; every figure is
# reported on HELD_OUT_SEEDS of every family, the held-out family (HELD_OUT_FAMILY) included.

FAMILIES = ("crossing_same_depth", "crossing_depths", "occlusions", "enter_leave", "signers", "crowd",
            "drops_duplicates", "noisy_scores", "panning")
HELD_OUT_FAMILY = "panning"
TUNING_FAMILIES = tuple(f for f in FAMILIES if f != HELD_OUT_FAMILY)
TUNING_SEEDS = (0, 1, 2)
HELD_OUT_SEEDS = (100, 101, 102)
PART_NOISE = {"body": 1.0, "hand": 0.6, "face": 0.4}  # 2D noise of hands and faces, relative to bodies'


@dataclass(frozen=True)
class NoiseModel:
    """How detections differ from the truth. Pixel figures are at 200 px per metre (a person about
    350 px tall) and scale with the person's size in the image.

    sigma2d: px, per joint coordinate; sigma3d: metres (hands and faces: half); tail_df: degrees of
    freedom of Student's t for the per-joint noise (0: Gaussian), scaled to the same standard
    deviation; rho: AR(1) correlation of the noise from one frame to the next (0: white);
    joint_spread: per-joint noise levels vary by exp(N(0, joint_spread)), fixed per scene;
    box_shift: px, a shift of the whole detection; box_scale: relative, a scaling of it about its
    centre; bad: the chance that a detection is bad (noise x3, score lower when `score_informative`);
    score_noise: standard deviation added to scores; miss: the chance that a detection is missing
    (in bursts of `miss_burst` frames on average); duplicate: the chance of a second detection of
    the same person, slightly off; false_positives: chance per frame of a one-frame spurious body.
    """
    sigma2d: float = 3.0
    sigma3d: float = 0.02
    tail_df: float = 0.0
    rho: float = 0.0
    joint_spread: float = 0.0
    box_shift: float = 0.0
    box_scale: float = 0.0
    bad: float = 0.0
    score_informative: bool = True
    score_noise: float = 0.05
    miss: float = 0.03
    miss_burst: float = 1.0
    duplicate: float = 0.0
    false_positives: float = 0.05


def draw_noise(rng: np.random.Generator, family: str) -> NoiseModel:
    """A noise model drawn for one scene: every kind of error at a random level."""
    kw = dict(sigma2d=rng.uniform(1.5, 6.0), sigma3d=rng.uniform(0.01, 0.04),
              tail_df=float(rng.choice([0.0, 0.0, 3.0, 5.0])), rho=float(rng.choice([0.0, 0.0, 0.2, 0.4])),
              joint_spread=rng.uniform(0.0, 0.5), box_shift=rng.uniform(0.0, 3.0), box_scale=rng.uniform(0.0, 0.02),
              bad=rng.uniform(0.0, 0.08), score_noise=rng.uniform(0.0, 0.1), miss=rng.uniform(0.0, 0.06),
              miss_burst=rng.uniform(1.0, 3.0), false_positives=rng.uniform(0.0, 0.1))
    if family == "drops_duplicates":
        kw.update(miss=rng.uniform(0.1, 0.2), miss_burst=rng.uniform(1.0, 4.0), duplicate=rng.uniform(0.05, 0.15),
                  false_positives=rng.uniform(0.1, 0.3))
    if family == "noisy_scores":
        kw.update(score_informative=False, score_noise=rng.uniform(0.15, 0.3), bad=rng.uniform(0.05, 0.15))
    return NoiseModel(**kw)


def signing_body(t: float, motion: np.ndarray) -> np.ndarray:
    """float[13, 3]: a standing body signing at time t (s): each wrist moves in front of the chest
    on a sum of sinusoids (`motion`: float[2 (left, right), 3 (x, y, z), 3 (amplitude m, Hz, phase)]),
    the elbow half way and bent outwards."""
    p = STANDING.copy()
    for k, (shoulder, elbow, wrist, side) in enumerate(((L_SHOULDER, L_ELBOW, L_WRIST, 1.0),
                                                        (R_SHOULDER, R_ELBOW, R_WRIST, -1.0))):
        rest = p[shoulder] + np.array([-side * 0.12, 0.28, -0.25])  # hands in front of the chest
        m = motion[k]
        w = rest + (m[:, :, 0] * np.sin(2 * math.pi * m[:, :, 1] * t + m[:, :, 2])).sum(-1)
        p[wrist] = w
        p[elbow] = 0.5 * (p[shoulder] + w) + np.array([side * 0.08, 0.1, 0.05])
    return p


def _parts_of(b: np.ndarray, centre: np.ndarray, scale: float, yaw: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """As `_person_parts`, for a body `b` (float[13, 3], image-aligned metres, not yet turned)."""
    b = _rot_y(b, yaw)
    body2d = centre + scale * b[:, :2]
    h2, h3 = [], []
    for wrist, elbow in ((L_WRIST, L_ELBOW), (R_WRIST, R_ELBOW)):
        h = b[wrist] + hand_pose(b[wrist] - b[elbow])
        h2.append(centre + scale * h[:, :2])
        h3.append(h - h.mean(0))
    f = _rot_y(face_pose(), yaw) + b[HEAD] + np.array([0.0, 0.02, -0.04])
    return (body2d, b * np.array([-1.0, -1.0, 1.0]), np.stack(h2), np.stack(h3), centre + scale * f[:, :2],
            f - f.mean(0))


@dataclass
class _Plan:
    """People's paths before noise: per frame and person, centre (px), scale (px per metre), yaw,
    gait phase (NaN: signing), visibility; the camera's pan (px)."""
    centre: np.ndarray  # float[T, P, 2]
    scale: np.ndarray  # float[T, P]
    yaw: np.ndarray  # float[T, P]
    phase: np.ndarray  # float[T, P]
    visible: np.ndarray  # bool[T, P]
    signing: Optional[np.ndarray] = None  # float[P, 2, 3, 3] (see signing_body)


def _walkers(rng: np.random.Generator, people: int, frames: int, fps: float, width: int, height: int,
             scales: np.ndarray, enter_leave: bool = False) -> _Plan:
    """People walking left and right at their depth (scale), turning at the image's sides; with
    `enter_leave`, each walks in from one side and out at the other, at a random time."""
    ground = height * 0.35 + (scales - 60) / 200 * height * 0.35
    cruise = rng.uniform(0.6, 1.5, people) * scales / fps  # px per frame
    heading = rng.choice([-1.0, 1.0], people)
    x = rng.uniform(0.1, 0.9, people) * width
    if enter_leave:
        x = np.where(heading > 0, -0.3 * scales, width + 0.3 * scales) - heading * cruise * rng.integers(0, frames, people)
    speed = heading * cruise
    cx = np.zeros((frames, people))
    for t in range(frames):
        cx[t] = x
        x = x + speed
        if not enter_leave:  # a turn at the image's sides takes about a second
            heading = np.where(x < 0.08 * width, 1.0, np.where(x > 0.92 * width, -1.0, heading))
            speed = speed + np.clip(heading * cruise - speed, -2 * cruise / fps, 2 * cruise / fps)
    # Small changes of pace and a gentle sway of the path up and down.
    wob = rng.uniform(0, 2 * math.pi, people)
    cy = ground[None] + 0.02 * scales[None] * np.sin(2 * math.pi * 0.2 * np.arange(frames)[:, None] / fps + wob)
    centre = np.stack([cx, cy], -1)
    phase = rng.uniform(0, 2 * math.pi, people) + 2 * math.pi * rng.uniform(0.8, 1.1, people) * np.arange(frames)[:, None] / fps
    yaw = np.radians(30.0) * np.sin(0.01 * np.arange(frames)[:, None] + rng.uniform(0, 6, people))
    visible = (cx > -0.15 * scales) & (cx < width + 0.15 * scales)  # in the image, at least in part
    return _Plan(centre, np.repeat(scales[None], frames, 0), yaw, phase, visible)


def _hide_behind(plan: _Plan, max_hidden: int) -> None:
    """A farther person is hidden while a nearer one covers them (runs capped at max_hidden)."""
    cx, s = plan.centre[..., 0], plan.scale[0]
    for i in range(len(s)):
        nearer = np.flatnonzero(s > s[i])
        if len(nearer):
            covered = (np.abs(cx[:, i, None] - cx[:, nearer]) < 0.12 * s[nearer]).any(1)
            _cap_runs(covered, max_hidden)
            plan.visible[:, i] &= ~covered


def _cap_runs(hidden: np.ndarray, longest: int) -> None:
    """Cut every run of True in `hidden` (bool[T], in place) to at most `longest` frames."""
    t, n = 0, len(hidden)
    while t < n:
        if hidden[t]:
            end = t
            while end < n and hidden[end]:
                end += 1
            hidden[t + longest:end] = False
            t = end
        t += 1


def _plan(family: str, rng: np.random.Generator, frames: int, fps: float, width: int, height: int,
          people: Optional[int] = None) -> _Plan:
    if family in ("crossing_depths", "drops_duplicates", "noisy_scores", "panning", "occlusions"):
        n = int(rng.integers(3, 6))
        plan = _walkers(rng, n, frames, fps, width, height, rng.uniform(150, 260, n))
        _hide_behind(plan, 20)
        if family == "occlusions":  # also hidden once or twice for 1 to 30 frames each
            for i in range(n):
                for _ in range(int(rng.integers(1, 3))):
                    length = int(rng.integers(1, 31))
                    start = int(rng.integers(5, frames - length))
                    plan.visible[start:start + length, i] = False
        return plan
    if family == "crossing_same_depth":
        n = int(rng.integers(2, 4))
        plan = _walkers(rng, n, frames, fps, width, height, np.full(n, rng.uniform(170, 230)) * rng.uniform(0.99, 1.01, n))
        # Two people at one depth cannot overlap: as they pass, the one a step farther (about 1%
        # smaller) is hidden while their centres are closer than a body's width (0.4 m).
        cx, s = plan.centre[..., 0], plan.scale[0]
        for i in range(n):
            for j in range(n):
                if s[j] > s[i]:
                    covered = np.abs(cx[:, i] - cx[:, j]) < 0.4 * s[j]
                    _cap_runs(covered, 20)
                    plan.visible[:, i] &= ~covered
        return plan
    if family == "enter_leave":
        n = int(rng.integers(4, 8))
        plan = _walkers(rng, n, frames, fps, width, height, rng.uniform(150, 260, n), enter_leave=True)
        _hide_behind(plan, 20)
        return plan
    if family == "crowd":
        n = people or int(rng.integers(50, 101))
        plan = _walkers(rng, n, frames, fps, width, height, rng.uniform(60, 140, n))
        _hide_behind(plan, 20)
        return plan
    if family == "signers":
        scale = rng.uniform(250, 350)
        centre = np.array([[0.5 * width - 0.35 * scale, 0.55 * height], [0.5 * width + 0.35 * scale, 0.55 * height]])
        sway = 0.01 * scale * np.sin(2 * math.pi * 0.3 * np.arange(frames)[:, None, None] / fps + rng.uniform(0, 6, (1, 2, 2)))
        motion = np.stack([rng.uniform(0.03, 0.15, (2, 2, 3, 3)), rng.uniform(0.3, 2.5, (2, 2, 3, 3)),
                           rng.uniform(0, 2 * math.pi, (2, 2, 3, 3))], -1)
        motion[:, :, 2, :, 0] *= 0.5  # less motion in depth
        # Inner hands reach towards each other (they cross and touch between the two signers).
        motion[0, 1, 0, 0] = (0.3, 0.25, 0.0)
        motion[1, 0, 0, 0] = (0.3, 0.25, math.pi)
        yaw = np.radians([20.0, -20.0])[None].repeat(frames, 0)
        return _Plan(centre[None] + sway, np.full((frames, 2), scale), yaw, np.full((frames, 2), np.nan),
                     np.ones((frames, 2), bool), motion)
    raise ValueError(f"unknown scene family {family!r}; use one of {', '.join(FAMILIES)}")


class _NoiseState:
    """Per person and part, the temporally correlated noise (AR(1)) and the per-joint levels."""

    def __init__(self, noise: NoiseModel, rng: np.random.Generator) -> None:
        self.noise, self.rng, self.state = noise, rng, {}
        self.levels = {}

    def _unit(self, shape: tuple) -> np.ndarray:
        df = self.noise.tail_df
        if df > 2:  # Student's t with unit variance
            return self.rng.standard_t(df, shape) / math.sqrt(df / (df - 2))
        return self.rng.standard_normal(shape)

    def draw(self, key: tuple, shape: tuple) -> np.ndarray:
        """Unit-level noise for `key` (person, part, side, dim), float[shape], one frame on."""
        rho = self.noise.rho
        e = self._unit(shape)
        prev = self.state.get(key)
        if prev is not None and rho > 0:
            e = rho * prev + math.sqrt(1 - rho * rho) * e
        self.state[key] = e
        level = self.levels.get(key[1:])
        if level is None:
            level = self.levels[key[1:]] = np.exp(self.rng.normal(0, self.noise.joint_spread, (shape[0], 1)))
        return e * level


def make_family_scene(family: str, seed: int, frames: Optional[int] = None, fps: float = 30.0,
                      width: int = 1280, height: int = 720, noise: Optional[NoiseModel] = None,
                      people: Optional[int] = None) -> Scene:
    """One scene of `family` (see FAMILIES) drawn from `seed`, with its own noise model (drawn from
    the seed unless given). frames: 300 (crowds: 90); people: a crowd's size (default: 50 to 100)."""
    rng = np.random.default_rng([FAMILIES.index(family) if family in FAMILIES else 99, seed])
    frames = frames or (90 if family == "crowd" else 300)
    noise = noise or draw_noise(rng, family)
    width = max(width, 4000, 40 * (people or 0)) if family == "crowd" else width  # room for a crowd
    plan = _plan(family, rng, frames, fps, width, height, people)
    people = plan.centre.shape[1]
    if family == "panning":  # the camera pans: everyone moves in the image with it
        pan = 0.25 * width * np.sin(2 * math.pi * np.arange(frames) / (frames * rng.uniform(0.5, 1.0)) + rng.uniform(0, 6))
        plan.centre = plan.centre - pan[:, None, None] * np.array([1.0, 0.0])
        plan.centre[..., 1] += 0.03 * height * np.sin(2 * math.pi * np.arange(frames)[:, None] / 97.0)
        cx = plan.centre[..., 0]
        plan.visible &= (cx > -0.15 * plan.scale) & (cx < width + 0.15 * plan.scale)
    ns = _NoiseState(noise, rng)
    missing = np.zeros(people)  # frames of a missed burst left, per person
    hidden_runs = []
    for i in range(people):
        v = plan.visible[:, i]
        edges = np.flatnonzero(np.diff(np.r_[1, v.astype(int), 1]))
        hidden_runs += [int(b - a) for a, b in zip(edges[::2], edges[1::2]) if a > 0 and b < frames]
    results, truth = [], []
    for t in range(frames):
        bodies, hands, faces, seen = [], [], [], []
        for i in range(people):
            s = float(plan.scale[t, i])
            if plan.signing is not None:
                b = signing_body(t / fps, plan.signing[i])
            else:
                b = walking_body(float(plan.phase[t, i]))
            b2, b3, h2, h3, f2, f3 = _parts_of(b, plan.centre[t, i], s, float(plan.yaw[t, i]))
            seen.append(Truth(i, bool(plan.visible[t, i]), b2, b3, h2, h3, f2, f3))
            if not plan.visible[t, i]:
                missing[i] = 0
                continue
            if missing[i] > 0 or rng.random() < noise.miss / noise.miss_burst:
                missing[i] = (missing[i] - 1) if missing[i] > 0 else rng.geometric(1 / noise.miss_burst) - 1
                continue
            copies = 2 if rng.random() < noise.duplicate else 1
            for copy in range(copies):
                bad = rng.random() < noise.bad
                body = _noisy_person(ns, noise, rng, (i, copy), s, bad, b2, b3, h2, h3, f2, f3)
                nb2, nb3, nh, nf = body
                if copy:  # a duplicate: the same person again, a few per cent of their size off
                    off = rng.normal(0, 0.03 * s, 2)
                    nb2 = nb2 + off
                    nh = [(h2_ + off, h3_) for h2_, h3_ in nh]
                    nf = (nf[0] + off, nf[1])
                score = (rng.uniform(0.2, 0.5) if bad else rng.uniform(0.55, 1.0)) if noise.score_informative \
                    else rng.uniform(0.1, 1.0)
                score = float(np.clip(score + rng.normal(0, noise.score_noise) - 0.2 * copy, 0.05, 1.0))
                links = {"left_hand": NO_LINK, "right_hand": NO_LINK, "face": NO_LINK}
                for side, link, is_right in ((0, "left_hand", False), (1, "right_hand", True)):
                    if rng.random() >= noise.miss:
                        hand2d = nh[side][0]
                        links[link] = len(hands)
                        nb2[L_WRIST if side == 0 else R_WRIST] = hand2d[0]  # as assign() does
                        hands.append((float(np.clip(score + rng.normal(0, 0.1), 0.05, 1.0)), hand2d, nh[side][1], is_right))
                if rng.random() >= noise.miss:
                    links["face"] = len(faces)
                    faces.append((float(np.clip(score + rng.normal(0, 0.1), 0.05, 1.0)), nf[0], nf[1]))
                bodies.append((score, nb2, nb3, links))
        if rng.random() < noise.false_positives:  # a spurious body somewhere, seen for this frame only
            s = rng.uniform(0.5, 1.2) * float(plan.scale[t].mean())
            b2, b3, h2, _, _, _ = _person_parts(np.array([rng.uniform(0.1, 0.9) * width, rng.uniform(0.3, 0.6) * height]),
                                                s, rng.uniform(-1, 1), rng.uniform(0, 6.3))
            bodies.append((rng.uniform(0.1, 0.7), b2, b3, {"left_hand": NO_LINK, "right_hand": NO_LINK, "face": NO_LINK}))
        order = sorted(range(len(bodies)), key=lambda k: -bodies[k][0])
        results.append(_result(height, width, [bodies[k] for k in order], hands, faces))
        truth.append(seen)
    return Scene(results, truth, fps, hidden_runs)


def _noisy_person(ns: _NoiseState, noise: NoiseModel, rng: np.random.Generator, key: tuple, scale: float, bad: bool,
                  b2, b3, h2, h3, f2, f3) -> tuple:
    """(body2d, body3d, [(hand2d, hand3d)] * 2, (face2d, face3d)) with the noise model's errors."""
    k = scale / 200.0 * (3.0 if bad else 1.0)
    k3 = 3.0 if bad else 1.0

    def part(name: str, side: int, p2: np.ndarray, p3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s2 = noise.sigma2d * PART_NOISE[name] * k
        n2 = p2 + s2 * ns.draw((*key, name, side, 2), p2.shape)
        n3 = p3 + noise.sigma3d * (1.0 if name == "body" else 0.5) * k3 * ns.draw((*key, name, side, 3), p3.shape)
        if noise.box_shift or noise.box_scale:  # the whole detection off: shifted and scaled about its centre
            c = n2.mean(0)
            n2 = c + (n2 - c) * (1 + rng.normal(0, noise.box_scale)) + rng.normal(0, noise.box_shift * k, 2)
        return n2, n3

    nb2, nb3 = part("body", 0, b2, b3)
    nh = [part("hand", side, h2[side], h3[side]) for side in (0, 1)]
    return nb2, nb3, nh, part("face", 0, f2, f3)
