"""A fifth generator of synthetic tracking scenes, written apart from the other four, so that the
tracker and the smoothers can be measured on scenes they were never tuned on.

World: a flat ground plane in metres (X right, Y up, Z ahead of the camera's rest direction) with
static occluders (pillars and a parked car, as boxes) and, for `enter_leave`, a back wall with doors
people come out of and go into.

Camera: a pinhole camera (square pixels, principal point at the image centre, horizontal field of
view 50-75 degrees) on a tripod 1.1-3.2 m above the ground, pitched down a little; 1280x720 or
1920x1080 at 25 or 30 fps. In `panning` it pans (yaw swings of 15-30 degrees), zooms by up to 10%
and its frames come at slightly irregular times, a few dropped (`Result.meta["time_s"]`).

People: 3D skeletons with their own proportions (heights 1.5-1.95 m; segment lengths from
anthropometric ratios of the height, each varied by a few per cent). Walking is driven by
joint-angle curves over the gait cycle (hip and knee flexion as in gait-lab averages, smoothed as
Fourier series), pelvic rotation with shoulder counter-rotation and arm swing opposite the legs.
The pelvis moves forward exactly as fast as the supporting foot moves back relative to it, so the
stance foot stays planted, and its height is set by the lower foot, so the vertical bob comes out
of the leg geometry. People follow waypoints, turn at a bounded rate, slow down in sharp turns,
stop and start (the gait's amplitude ramps), look around. Signers stand and move their wrists
along minimum-jerk strokes between targets of the signing space, with changing hand shapes and
palm directions. Hands are 21-joint skeletons (a curl per finger), faces 84 landmarks on the head.

Visibility: a person is seen when at least 60% of the body joints are inside the image and fewer
than 70% of those are covered, by a static box (the ray from the camera to the joint hits it) or
by a person at least 20 cm nearer (the joint falls in a capsule around one of that person's
bones). `Scene.hidden_runs` holds the lengths of every unseen interval with seen frames on both
sides (covered, out of the image or gone through a door). Occlusions last at most 30 frames: a
draw with a longer one is redrawn (from the next sub-seed).

Detector: 2D noise per joint proportional to the person's image height (0.4-0.65% per
coordinate: 2-4 px of mean joint error for a 350 px person), correlated over time, partly heavy-tailed, larger on
covered joints; a shared shift and scale per detection (the box jitters); occasional single bad
joints and left/right arm swaps; 3D noise of 0.8-1.6 cm per coordinate (AR(1) over time plus
white, and a 1-3% scale error), hands and faces less, each part re-centred on itself; misses;
hands and faces of seen people (hands not covered and in the image, less often when behind the
torso or behind another hand; faces when turned less than about 75 degrees from the camera);
one-frame false-positive hands and 1-3 frame false-positive bodies; hands and faces attached to
bodies by proximity, as DOPE does. Scores depend on size and coverage, except in `noisy_scores`.

Kinds (2-6 people each unless said):
- crossing_same_depth: people pacing back and forth across the image in lanes 28 cm apart in depth
  (the same image size), crossing each other again and again;
- crossing_depths: lanes at 4.5-13 m, some walkers going diagonally (changing depth), so that near
  people pass in front of far ones;
- occlusions: a camera 2.5-3.2 m high; 1-2 pillars that people walk behind (hidden 1-30 frames),
  often a parked car in the foreground hiding legs, and people hiding each other;
- enter_leave: people walking in and out through the image's sides (some turn back), coming out of
  and going into doors in a back wall (appearing and vanishing mid-image, some coming back);
- panning: people wandering in a plaza while the camera pans and zooms; they leave the view and
  come back; frame times irregular;
- signers: two people side by side facing the camera, standing, hands moving fast (about 1-3 m/s),
  crossing the body, touching the face, reaching into the partner's space, meeting the partner's hand;
- drops_duplicates: plaza walkers; 5-10% misses plus bursts of 2-6 missed frames, 4-10% of bodies
  detected twice (shifted, lower score), false bodies in 3-8% of frames;
- noisy_scores: plaza walkers; each detection's noise varies by up to 2.5 times and its score is
  drawn anew each frame (0.3-1), only weakly related to that noise.

Conventions: the 3D poses are in the camera's axes with x and y opposite the image's (DOPE's),
bodies centred on the hips' mean, hands and faces on their joints' mean; Truth holds the
noiseless poses of every person in every frame, in a fixed order (index = person id).

    make_fifth_scene(kind, seed, frames=240) -> Scene, for kind in FIFTH_KINDS
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from benchmarks.scenes import Scene, Truth
from dope.results import NO_LINK, PartArrays, Result

FIFTH_KINDS = ("crossing_same_depth", "crossing_depths", "occlusions", "enter_leave", "panning", "signers",
               "drops_duplicates", "noisy_scores")
MAX_HIDDEN = 30  # frames: the longest occlusion a scene keeps
MAX_TRIES = 24  # draws of a scene before one with a longer occlusion is kept anyway

R_ANKLE, L_ANKLE, R_KNEE, L_KNEE, R_HIP, L_HIP, R_WRIST, L_WRIST, R_ELBOW, L_ELBOW, R_SHOULDER, L_SHOULDER, HEAD = range(13)
HAND_SIDES = (-1.0, 1.0)  # hands are stored (left, right); +1 is the person's right
FLIP = np.array([-1.0, -1.0, 1.0])  # camera axes (x right, y down, z ahead) -> DOPE's 3D axes
TWO_PI = 2.0 * math.pi

Array = np.ndarray


# ------------------------------------------------------------------------------------------ gait


def _periodic_curve(keys: list[tuple[float, float]], harmonics: int = 5) -> Callable[[Array], Array]:
    """A smooth periodic function of the gait phase (period 1) through the key (phase, degrees) points:
    their periodic piecewise-linear curve, low-passed to `harmonics` Fourier terms; returns radians."""
    grid = np.linspace(0.0, 1.0, 512, endpoint=False)
    k = np.array(keys, dtype=float)
    coef = np.fft.rfft(np.interp(grid, k[:, 0], k[:, 1], period=1.0)) / len(grid)
    a0, a, b = coef[0].real, 2 * coef[1:harmonics + 1].real, -2 * coef[1:harmonics + 1].imag
    n = np.arange(1, harmonics + 1)

    def curve(phase: Array) -> Array:
        x = TWO_PI * np.asarray(phase, dtype=float)[..., None] * n
        return np.radians(a0 + (a * np.cos(x) + b * np.sin(x)).sum(-1))

    return curve


# Phase 0: this leg's heel strike; stance until toe-off near 0.6.
HIP_FLEXION = _periodic_curve([(0.0, 28), (0.1, 26), (0.3, 8), (0.5, -12), (0.6, -6), (0.75, 16), (0.87, 30),
                               (0.95, 30)])
KNEE_FLEXION = _periodic_curve([(0.0, 4), (0.13, 18), (0.3, 7), (0.42, 5), (0.6, 38), (0.72, 62), (0.85, 38),
                                (0.95, 6)])
HIP_MEAN = float(HIP_FLEXION(np.linspace(0, 1, 200, endpoint=False)).mean())
FOOT_SHARPNESS = 80.0  # 1/m: how sharply the lower foot takes the weight (soft maximum)


@dataclass
class Body:
    """One person's build (metres) and walking style."""
    height: float
    ankle: float
    shank: float
    thigh: float
    hip_width: float
    trunk: float
    shoulder_width: float
    neck: float  # shoulders' centre to the head joint (the head's centre)
    upper_arm: float
    forearm: float
    hand: float
    face_scale: float
    stride: float  # hip swing relative to the average
    period: float  # seconds per gait cycle
    arm_swing: float
    abduction: float  # arms away from the body, radians
    _table: Optional[tuple[Array, Array, float]] = field(default=None, repr=False)

    @classmethod
    def sample(cls, rng: np.random.Generator, height: Optional[float] = None) -> "Body":
        h = float(rng.uniform(1.5, 1.95) if height is None else height)
        j = lambda: float(rng.normal(1.0, 0.03))
        return cls(height=h, ankle=0.039 * h, shank=0.246 * h * j(), thigh=0.245 * h * j(), hip_width=0.105 * h * j(),
                   trunk=0.288 * h * j(), shoulder_width=0.205 * h * float(rng.normal(1.0, 0.05)), neck=0.117 * h * j(),
                   upper_arm=0.186 * h * j(), forearm=0.146 * h * j(), hand=0.108 * h * j(), face_scale=h / 1.75 * j(),
                   stride=float(rng.uniform(0.9, 1.15)), period=float(rng.uniform(0.95, 1.2) * math.sqrt(h / 1.75)),
                   arm_swing=float(rng.uniform(0.5, 0.9)), abduction=float(rng.uniform(0.08, 0.16)))

    def pelvis_yaw(self, phase: Array, amp: Array) -> Array:
        return amp * self.stride * math.radians(5.0) * np.cos(TWO_PI * phase)

    def leg(self, phase: Array, amp: Array, side: float) -> tuple[Array, Array, Array]:
        """(hip, knee, ankle) [..., 3] relative to the pelvis centre, in the person's axes
        (right, up, forward); side +1 right (phase = its own), -1 left (half a cycle later)."""
        p = phase + (0.0 if side > 0 else 0.5)
        hip_a = amp * self.stride * HIP_FLEXION(p) + (1 - amp) * math.radians(2.0)
        knee_a = amp * (0.85 + 0.15 * self.stride) * KNEE_FLEXION(p) + (1 - amp) * math.radians(4.0)
        yaw = self.pelvis_yaw(phase, amp)
        zero = np.zeros_like(hip_a)
        hip = np.stack([side * self.hip_width / 2 * np.cos(yaw), zero, side * self.hip_width / 2 * np.sin(yaw)], -1)
        knee = hip + self.thigh * np.stack([zero, -np.cos(hip_a), np.sin(hip_a)], -1)
        ankle = knee + self.shank * np.stack([zero, -np.cos(hip_a - knee_a), np.sin(hip_a - knee_a)], -1)
        return hip, knee, ankle

    def support(self, phase: Array, amp: Array) -> tuple[Array, Array, Array, Array]:
        """(pelvis height above the ground, weight on the right foot, right ankle, left ankle): the
        lower foot carries the body (a soft maximum of the legs' vertical reach)."""
        ar, al = self.leg(phase, amp, 1.0)[2], self.leg(phase, amp, -1.0)[2]
        er, el = -ar[..., 1], -al[..., 1]
        top = np.maximum(er, el)
        xr, xl = np.exp(FOOT_SHARPNESS * (er - top)), np.exp(FOOT_SHARPNESS * (el - top))
        return self.ankle + top + np.log(xr + xl) / FOOT_SHARPNESS, xr / (xr + xl), ar, al

    def progression(self, phase: Array) -> Array:
        """Metres walked (at full amplitude) from phase 0 to `phase`: the pelvis advances as the
        supporting ankle moves back relative to it."""
        if self._table is None:
            grid = np.linspace(0.0, 1.0, 257)
            _, w, ar, al = self.support(grid, np.ones_like(grid))
            v = -(w * np.gradient(ar[:, 2], grid) + (1 - w) * np.gradient(al[:, 2], grid))
            s = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * np.diff(grid))])
            self._table = (grid, s, float(s[-1]))
        grid, s, stride_length = self._table
        whole = np.floor(phase)
        return whole * stride_length + np.interp(phase - whole, grid, s)


# ---------------------------------------------------------------------------------- motion plans


@dataclass
class Waypoint:
    x: float
    z: float
    pause: float = 0.0  # seconds standing there
    face: Optional[float] = None  # heading to turn to while standing
    vanish: float = 0.0  # seconds gone (through a door) on arrival; inf: for good


@dataclass
class Plan:
    start: tuple[float, float]
    heading: float
    waypoints: list[Waypoint]
    delay: float = 0.0  # seconds standing before the first waypoint
    absent: float = 0.0  # seconds gone at the start (behind a door)
    turn_rate: float = math.radians(200.0)


@dataclass
class Motion:
    """What drives a skeleton, per frame: ground position (X, Z) under the pelvis, heading (0: facing
    +Z, pi/2: facing +X), gait phase and amplitude (0: standing), and the upper body."""
    ground: Array  # [T, 2]
    heading: Array
    phase: Array
    amp: Array
    present: Array  # bool: not gone through a door
    head_yaw: Array
    head_pitch: Array
    torso_yaw: Array
    sway: Array  # [T, 2]: pelvis offset (right, forward)
    curls: Array  # [T, 2, 5]
    mouth: Array
    blink: Array
    wrists: Optional[Array] = None  # [T, 2, 3] wrist targets in the person's axes (from the ground point)
    palms: Optional[Array] = None  # [T, 2, 3] palm normals, person's axes


def _wobble(rng: np.random.Generator, times: Array, amp: float, lo: float = 0.05, hi: float = 0.5, n: int = 3
            ) -> Array:
    """A smooth random signal of RMS `amp` (a few sinusoids between lo and hi Hz)."""
    f, ph, a = rng.uniform(lo, hi, n), rng.uniform(0, TWO_PI, n), rng.normal(size=n)
    x = (a * np.sin(TWO_PI * f * times[:, None] + ph)).sum(1)
    return amp * x / math.sqrt(max(0.5 * float((a ** 2).sum()), 1e-9))


def _upper_body(rng: np.random.Generator, times: Array, talk: float = 0.1) -> dict[str, Array]:
    """Head movements, a relaxed hand shape, mouth and blinks: the parts of a Motion a walk leaves open."""
    t = len(times)
    blink = np.zeros(t)
    for s in rng.uniform(times[0], times[-1] + 1e-3, max(1, int((times[-1] - times[0]) / 3.5))):
        blink = np.maximum(blink, np.clip(1 - np.abs(times - s) / 0.12, 0, 1))
    curls = np.stack([np.stack([_wobble(rng, times, 0.1, 0.1, 0.4, 2) for _ in range(5)], -1) for _ in range(2)], 1)
    curls = np.clip(0.35 + curls, 0, 1)
    return dict(head_yaw=_wobble(rng, times, 0.18, 0.05, 0.3), head_pitch=0.06 + _wobble(rng, times, 0.05, 0.05, 0.3),
                torso_yaw=np.zeros(t), sway=np.zeros((t, 2)), curls=curls,
                mouth=np.clip(talk * (1 + _wobble(rng, times, 1.0, 1.0, 4.0)), 0, 1), blink=blink)


def _walk(body: Body, plan: Plan, times: Array, rng: np.random.Generator) -> Motion:
    """Simulate a plan frame by frame: turn toward the next waypoint at a bounded rate, advance by
    what the gait gives (the planted foot's backward motion), stand, vanish and come back."""
    n = len(times)
    ground, heading = np.zeros((n, 2)), np.zeros(n)
    phase, amp, present = np.zeros(n), np.zeros(n), np.ones(n, bool)
    x, z = plan.start
    h, a, ph = plan.heading, 0.0, float(rng.uniform())
    mode, timer, face = ("gone", plan.absent, None) if plan.absent > 0 else (
        ("stand", plan.delay, None) if plan.delay > 0 else ("walk", 0.0, None))
    if mode == "walk":
        a = 1.0
    i = 0
    for k in range(n):
        dt = float(times[k] - times[k - 1]) if k else 0.0
        want_amp, want_h = 0.0, face
        if mode in ("gone", "stand"):
            timer -= dt
            if timer <= 0:
                mode = "walk"
        if mode == "walk":
            if i >= len(plan.waypoints):
                mode = "done"
            else:
                w = plan.waypoints[i]
                dx, dz = w.x - x, w.z - z
                want_h = math.atan2(dx, dz)
                want_amp = 1.0
                if math.hypot(dx, dz) < 0.3:
                    i += 1
                    if w.vanish > 0:
                        mode, timer, face = "gone", w.vanish, None
                        x, z = w.x, w.z
                    elif w.pause > 0:
                        mode, timer, face = "stand", w.pause, w.face
                        want_amp = 0.0
        if want_h is not None:
            err = (want_h - h + math.pi) % TWO_PI - math.pi
            h += float(np.clip(err, -plan.turn_rate * dt, plan.turn_rate * dt))
            if abs(err) > math.radians(60) and want_amp > 0:
                want_amp = 0.5
        if mode == "gone":
            want_amp, a = 0.0, 0.0
        new_a = a + float(np.clip(want_amp - a, -dt / 0.5, dt / 0.4))
        new_ph = ph + dt / body.period
        ds = 0.5 * (a + new_a) * float(body.progression(np.array(new_ph)) - body.progression(np.array(ph)))
        x, z = x + ds * math.sin(h), z + ds * math.cos(h)
        a, ph = new_a, new_ph
        ground[k], heading[k], phase[k], amp[k], present[k] = (x, z), h, ph, a, mode != "gone"
    return Motion(ground, heading, phase, amp, present, **_upper_body(rng, times))


# ----------------------------------------------------------------------------------- skeletons

# Hand model, in hand lengths, in the hand's axes (d: wrist to fingers, s: toward the thumb, n: palm side).
FINGER_BASE = np.array([[0.12, 0.14, 0.04], [0.47, 0.17, 0.0], [0.50, 0.05, 0.0], [0.47, -0.06, 0.0],
                        [0.42, -0.16, 0.0]])
FINGER_DIR = np.array([[0.77, 0.55, 0.30], [1.0, 0.10, 0.0], [1.0, 0.0, 0.0], [1.0, -0.08, 0.0], [1.0, -0.18, 0.0]])
PHALANGES = np.array([[0.20, 0.16, 0.14], [0.25, 0.14, 0.10], [0.27, 0.16, 0.11], [0.25, 0.15, 0.10],
                      [0.20, 0.11, 0.09]])
CURL = np.radians([[30.0, 40.0, 40.0]] + [[70.0, 90.0, 60.0]] * 4)


def _unit(v: Array) -> Array:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _hand(wrist: Array, d: Array, n: Array, side: float, length: float, curls: Array) -> Array:
    """[T, 21, 3] joints (wrist, then each finger's base, and its three further joints)."""
    d = _unit(d)
    n = _unit(n - (n * d).sum(-1, keepdims=True) * d)
    s = side * np.cross(n, d)
    out = np.empty(wrist.shape[:-1] + (21, 3))
    out[..., 0, :] = wrist
    for f in range(5):
        b, r = FINGER_BASE[f], FINGER_DIR[f]
        p = wrist + length * (b[0] * d + b[1] * s + b[2] * n)
        d0 = _unit(r[0] * d + r[1] * s + r[2] * n)
        n0 = _unit(n - (n * d0).sum(-1, keepdims=True) * d0)
        out[..., f + 1, :] = p
        angle = np.zeros(wrist.shape[:-1])
        for k in range(3):
            angle = angle + curls[..., f] * CURL[f, k]
            p = p + length * PHALANGES[f, k] * (np.cos(angle)[..., None] * d0 + np.sin(angle)[..., None] * n0)
            out[..., 3 * f + 6 + k, :] = p
    return out


def _face_template(mouth: Array, blink: Array) -> Array:
    """[T, 84, 3] landmarks (jaw 33, brows 5 + 5, nose bridge 4, nose base 5, eyes 6 + 6, lips 12 + 8)
    around the head's centre, in the head's axes (right, up, forward), for a 1.75 m adult."""
    t = len(mouth)
    pts = []
    a = np.linspace(0, math.pi, 33)
    pts.append(np.stack([0.072 * np.cos(a), -0.005 - 0.095 * np.sin(a), 0.02 + 0.07 * np.sin(a)], -1))
    for sgn in (1.0, -1.0):
        r = np.linspace(0.062, 0.014, 5) if sgn > 0 else -np.linspace(0.014, 0.062, 5)
        arc = np.sin(np.linspace(0, math.pi, 5))
        pts.append(np.stack([r, 0.045 + 0.008 * arc, 0.085 + 0.012 * (1 - np.abs(r) / 0.07)], -1))
    pts.append(np.stack([np.zeros(4), np.linspace(0.03, -0.015, 4), np.linspace(0.095, 0.118, 4)], -1))
    r = np.linspace(0.018, -0.018, 5)
    pts.append(np.stack([r, -0.03 + 0.006 * np.abs(r) / 0.018, 0.103 - 0.01 * np.abs(r) / 0.018], -1))
    fixed = np.concatenate(pts)  # 33 + 10 + 4 + 5 = 52
    out = np.empty((t, 84, 3))
    out[:, :52] = fixed
    e = np.linspace(0, TWO_PI, 6, endpoint=False)
    for k, c in enumerate((0.032, -0.032)):
        open_ = 0.006 * (1 - 0.9 * blink)[:, None]
        sl = slice(52 + 6 * k, 58 + 6 * k)
        out[:, sl, 0] = c + np.sign(c) * 0.015 * np.cos(e)
        out[:, sl, 1] = 0.02 + open_ * np.sin(e)
        out[:, sl, 2] = 0.086 - 0.004 * np.cos(e) ** 2
    for sl, m, rx, ry in ((slice(64, 76), 12, 0.026, 0.009), (slice(76, 84), 8, 0.017, 0.003)):
        e = np.linspace(0, TWO_PI, m, endpoint=False)
        out[:, sl, 0] = rx * np.cos(e)
        out[:, sl, 1] = -0.058 + (ry + 0.012 * mouth[:, None]) * np.sin(e)  # mouth: 0 closed, 1 wide open
        out[:, sl, 2] = 0.098 - 0.012 * np.cos(e) ** 2
    return out


def _yaw_pitch(v: Array, yaw: Array, pitch: Array) -> Array:
    """Turn vectors [T, ..., 3] (right, up, forward) by yaw about up (positive: the right side comes
    forward) then pitch about right (positive: looking down)."""
    extra = (None,) * (v.ndim - 2)
    cy, sy = np.cos(yaw)[(...,) + extra], np.sin(yaw)[(...,) + extra]
    cp, sp = np.cos(pitch)[(...,) + extra], np.sin(pitch)[(...,) + extra]
    r, u, f = v[..., 0], v[..., 1], v[..., 2]
    u, f = u * cp - f * sp, u * sp + f * cp
    r, f = r * cy - f * sy, r * sy + f * cy
    return np.stack([r, u, f], -1)


def _arm_ik(shoulder: Array, target: Array, upper: float, fore: float, pole: Array) -> tuple[Array, Array]:
    """(elbow, wrist) reaching for `target` (moved within reach), the elbow toward `pole`."""
    v = target - shoulder
    dist = np.linalg.norm(v, axis=-1, keepdims=True)
    axis = v / np.maximum(dist, 1e-9)
    d = np.clip(dist, abs(upper - fore) + 0.02, upper + fore - 0.005)
    along = (upper ** 2 - fore ** 2 + d ** 2) / (2 * d)
    up = np.sqrt(np.maximum(upper ** 2 - along ** 2, 0.0))
    perp = _unit(pole - (pole * axis).sum(-1, keepdims=True) * axis)
    return shoulder + along * axis + up * perp, shoulder + d * axis


@dataclass
class Pose:
    """World positions: body [T, 13, 3], hands [T, 2 (left, right), 21, 3], face [T, 84, 3] and the
    face's forward direction [T, 3]."""
    body: Array
    hands: Array
    face: Array
    face_forward: Array


def _to_world(local: Array, m: Motion, direction: bool = False) -> Array:
    """Person axes (right, up, forward; origin on the ground under the pelvis) to world coordinates."""
    extra = (None,) * (local.ndim - 2)
    c, s = np.cos(m.heading)[(...,) + extra], np.sin(m.heading)[(...,) + extra]
    r, u, f = local[..., 0], local[..., 1], local[..., 2]
    x, z = r * c + f * s, -r * s + f * c
    if not direction:
        x, z = x + m.ground[(...,) + extra + (0,)], z + m.ground[(...,) + extra + (1,)]
    return np.stack([x, u, z], -1)


def _pose(b: Body, m: Motion) -> Pose:
    t = len(m.phase)
    ph, amp = m.phase, m.amp
    lift, _, _, _ = b.support(ph, amp)
    # The pelvis sways over the supporting foot (the feet do not follow it sideways).
    sway = np.stack([m.sway[:, 0] + amp * 0.022 * np.sin(TWO_PI * ph), np.zeros(t), m.sway[:, 1]], -1)
    feet = np.stack([np.zeros(t), lift, np.zeros(t)], -1)
    pelvis = feet + sway
    joints = np.zeros((t, 13, 3))
    for side, (ia, ik, ih) in ((1.0, (R_ANKLE, R_KNEE, R_HIP)), (-1.0, (L_ANKLE, L_KNEE, L_HIP))):
        hip, knee, ankle = b.leg(ph, amp, side)
        joints[:, ih], joints[:, ik], joints[:, ia] = pelvis + hip, feet + 0.5 * sway + knee, feet + ankle
    lean = 0.03 + 0.05 * amp
    twist = -0.6 * b.pelvis_yaw(ph, amp) + m.torso_yaw
    zero = np.zeros(t)
    centre = pelvis + b.trunk * np.stack([zero, np.cos(lean), np.sin(lean)], -1)
    joints[:, HEAD] = centre + b.neck * np.stack([zero, np.cos(0.5 * lean), np.sin(0.5 * lean) + 0.1], -1)
    hands = np.zeros((t, 2, 21, 3))
    for k, side in enumerate(HAND_SIDES):
        js, je, jw = (R_SHOULDER, R_ELBOW, R_WRIST) if side > 0 else (L_SHOULDER, L_ELBOW, L_WRIST)
        shoulder = centre + side * b.shoulder_width / 2 * np.stack([np.cos(twist), zero, np.sin(twist)], -1)
        if m.wrists is None:  # walking: swing opposite the same side's leg
            swing = -amp * b.arm_swing * b.stride * (HIP_FLEXION(ph + (0.0 if side > 0 else 0.5)) - HIP_MEAN)
            ab = b.abduction
            upper = np.stack([side * math.sin(ab) + zero, -math.cos(ab) * np.cos(swing), math.cos(ab) * np.sin(swing)], -1)
            elbow = shoulder + b.upper_arm * upper
            bend = swing + 0.25 + 0.2 * amp + 0.5 * np.maximum(swing, 0.0)
            fore = _unit(np.stack([side * 0.5 * math.sin(ab) + zero, -np.cos(bend), np.sin(bend)], -1))
            wrist = elbow + b.forearm * fore
            palm = np.stack([-side + zero, zero, 0.15 + zero], -1)
        else:
            pole = np.array([0.35 * side, -1.0, -0.3])
            elbow, wrist = _arm_ik(shoulder, m.wrists[:, k], b.upper_arm, b.forearm, pole)
            fore = _unit(wrist - elbow)
            palm = _unit(m.palms[:, k])
            along = np.abs((palm * fore).sum(-1, keepdims=True)) > 0.97  # no palm side: take one across
            across = np.cross(fore, [0.0, 1.0, 0.0])
            across = np.where(np.linalg.norm(across, axis=-1, keepdims=True) < 0.3, np.cross(fore, [1.0, 0.0, 0.0]), across)
            palm = np.where(along, across, palm)
        joints[:, js], joints[:, je], joints[:, jw] = shoulder, elbow, wrist
        direction = _unit(fore + 0.15 * _unit(palm - (palm * fore).sum(-1, keepdims=True) * fore))
        hands[:, k] = _hand(wrist, direction, palm, side, b.hand, m.curls[:, k])
    yaw, pitch = twist + m.head_yaw, m.head_pitch
    face = joints[:, HEAD, None] + b.face_scale * _yaw_pitch(_face_template(m.mouth, m.blink), yaw, pitch)
    forward = _yaw_pitch(np.tile([0.0, 0.0, 1.0], (t, 1)), yaw, pitch)
    return Pose(_to_world(joints, m), _to_world(hands, m), _to_world(face, m), _to_world(forward, m, direction=True))


# ------------------------------------------------------------------------------------- camera


@dataclass
class Camera:
    """A pinhole camera per frame: centre [T, 3] (world), yaw (0: looking along +Z), pitch (positive:
    down), focal length in pixels."""
    width: int
    height: int
    centre: Array
    yaw: Array
    pitch: Array
    focal: Array
    rotation: Array = field(init=False, repr=False)  # [T, 3, 3]: rows x right, y down, z ahead

    def __post_init__(self) -> None:
        cy, sy, cp, sp = np.cos(self.yaw), np.sin(self.yaw), np.cos(self.pitch), np.sin(self.pitch)
        ahead = np.stack([sy * cp, -sp, cy * cp], -1)
        right = np.stack([cy, np.zeros_like(cy), -sy], -1)
        self.rotation = np.stack([right, np.cross(right, ahead), ahead], 1)

    def to_camera(self, p: Array) -> Array:
        """World points [T, ..., 3] to camera axes."""
        flat = p.reshape(len(p), -1, 3) - self.centre[:, None]
        return np.einsum("tij,tnj->tni", self.rotation, flat).reshape(p.shape)

    def project(self, pc: Array) -> Array:
        extra = (None,) * (pc.ndim - 2)
        f = self.focal[(...,) + extra]
        z = np.maximum(pc[..., 2], 0.05)
        return np.stack([f * pc[..., 0] / z + self.width / 2, f * pc[..., 1] / z + self.height / 2], -1)


def _half_width(focal: float, width: int, z: float) -> float:
    """Half the width (metres) the image spans at depth z."""
    return 0.5 * width / focal * z


@dataclass
class Box:
    """A static occluder on the ground: centre (x, z), extent along its own axes, turned by yaw."""
    x: float
    z: float
    width: float
    depth: float
    height: float
    yaw: float = 0.0

    def hides(self, origin: Array, points: Array) -> Array:
        """[T, N] whether the segment from the camera centre [T, 3] to each point [T, N, 3] meets the box."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)

        def local(p: Array) -> Array:
            dx, dz = p[..., 0] - self.x, p[..., 2] - self.z
            return np.stack([dx * c - dz * s, p[..., 1], dx * s + dz * c], -1)

        o, p = local(origin)[:, None], local(points)
        d = p - o
        d = np.where(np.abs(d) < 1e-9, 1e-9, d)
        lo = np.array([-self.width / 2, 0.0, -self.depth / 2])
        hi = np.array([self.width / 2, self.height, self.depth / 2])
        t1, t2 = (lo - o) / d, (hi - o) / d
        near, far = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
        return (near <= far) & (far > 0) & (near < 1)


# Capsules around bones that hide what is behind: (endpoint, endpoint, radius in metres); an endpoint
# is a tuple of joints whose mean it is.
SILHOUETTE = (((R_ANKLE,), (R_KNEE,), 0.07), ((L_ANKLE,), (L_KNEE,), 0.07), ((R_KNEE,), (R_HIP,), 0.09),
              ((L_KNEE,), (L_HIP,), 0.09), ((R_HIP,), (L_HIP,), 0.10), ((R_HIP, L_HIP), (R_SHOULDER, L_SHOULDER), 0.16),
              ((R_SHOULDER,), (L_SHOULDER,), 0.08), ((R_SHOULDER,), (R_ELBOW,), 0.06), ((L_SHOULDER,), (L_ELBOW,), 0.06),
              ((R_ELBOW,), (R_WRIST,), 0.05), ((L_ELBOW,), (L_WRIST,), 0.05), ((R_SHOULDER, L_SHOULDER), (HEAD,), 0.11))


def _segment_distance(q: Array, a: Array, b: Array) -> Array:
    """[T, N, S] distances of points q [T, N, 2] to segments a-b [T, S, 2]."""
    ab = (b - a)[:, None]
    aq = q[:, :, None] - a[:, None]
    u = np.clip((aq * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    return np.linalg.norm(aq - u[..., None] * ab, axis=-1)


# ------------------------------------------------------------------------------------ detector


@dataclass
class Detector:
    """The detector's error model (drawn per scene)."""
    k2d: float  # 2D noise per coordinate, as a fraction of the body's image height
    box: float  # shared shift per detection, same unit
    scale: float  # shared scale error of the 2D pose
    rho2d: float  # AR(1) correlation of the per-joint 2D noise from frame to frame
    tail: float  # share of heavy-tailed joint errors
    bad_joint: float  # chance a body has one joint far off
    swap: float  # chance its arms are swapped
    s3d: float  # metres per coordinate
    rho3d: float
    scale3d: float
    k2d_hand: float  # fraction of the hand's image length
    s3d_hand: float
    k2d_face: float  # fraction of the face's image height
    s3d_face: float
    miss: float
    burst: float  # chance per frame that a burst of 2-6 missed frames starts
    hand_rate: float
    face_rate: float
    fp_body: float  # chance per frame that a false body appears (for 1-3 frames)
    fp_hand: float
    duplicate: float  # chance a detected body is detected twice
    noisy_scores: bool = False

    @classmethod
    def sample(cls, rng: np.random.Generator, **override: float) -> "Detector":
        d = cls(k2d=rng.uniform(0.004, 0.0065), box=rng.uniform(0.25, 0.5), scale=rng.uniform(0.004, 0.012),
                rho2d=rng.uniform(0.0, 0.5), tail=rng.uniform(0.02, 0.08), bad_joint=rng.uniform(0.01, 0.04),
                swap=rng.uniform(0.0, 0.01), s3d=rng.uniform(0.008, 0.016), rho3d=rng.uniform(0.5, 0.9),
                scale3d=rng.uniform(0.01, 0.03), k2d_hand=rng.uniform(0.025, 0.045), s3d_hand=rng.uniform(0.004, 0.008),
                k2d_face=rng.uniform(0.015, 0.03), s3d_face=rng.uniform(0.003, 0.005), miss=rng.uniform(0.01, 0.04),
                burst=0.0, hand_rate=rng.uniform(0.85, 0.95), face_rate=rng.uniform(0.85, 0.97),
                fp_body=rng.uniform(0.005, 0.02), fp_hand=rng.uniform(0.005, 0.02), duplicate=0.0)
        for k, v in override.items():
            setattr(d, k, v)
        return d


def _ar_noise(rng: np.random.Generator, shape: tuple[int, ...], rho: float, tail: float = 0.0) -> Array:
    """Unit-variance noise [T, ...], AR(1) over the first axis; a share `tail` of the innovations
    heavy-tailed (Student t, 3 degrees of freedom)."""
    w = rng.standard_normal(shape)
    if tail > 0:
        m = rng.random(shape) < tail
        w[m] = rng.standard_t(3, int(m.sum())) * 1.6
    out = np.empty(shape)
    out[0] = w[0]
    c = math.sqrt(1 - rho ** 2)
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + c * w[t]
    return out


@dataclass
class World:
    times: Array
    fps: float
    camera: Camera
    people: list[tuple[Body, Motion]]
    boxes: list[Box]
    detector: Detector
    stamped: bool = False  # write each frame's time (irregular frame times)


@dataclass
class Seen:
    """One person as the camera sees them, per frame (noiseless)."""
    body2d: Array
    body3d: Array
    hands2d: Array
    hands3d: Array
    face2d: Array
    face3d: Array
    visible: Array  # [T]
    occluded: Array  # [T]: in the image but covered
    covered: Array  # [T, 13]
    inside: Array  # [T, 13]
    pixels: Array  # [T]: image height of the person
    hand_pixels: Array  # [T, 2]
    face_pixels: Array  # [T]
    facing: Array  # [T]: cosine between the face's direction and the way to the camera
    depth: Array  # [T]: pelvis depth (camera z)
    hand_depth: Array  # [T, 2]
    behind_torso: Array  # [T, 2]


def _observe(world: World) -> list[Seen]:
    cam, t = world.camera, len(world.times)
    poses = [_pose(b, m) for b, m in world.people]
    out: list[Seen] = []
    for (b, m), pose in zip(world.people, poses):
        bc, hc, fc = cam.to_camera(pose.body), cam.to_camera(pose.hands), cam.to_camera(pose.face)
        b2, h2, f2 = cam.project(bc), cam.project(hc), cam.project(fc)
        pelvis = bc[:, (R_HIP, L_HIP)].mean(1)
        depth = np.maximum(pelvis[:, 2], 0.05)
        b3 = (bc - pelvis[:, None]) * FLIP
        h3 = (hc - hc.mean(2, keepdims=True)) * FLIP
        f3 = (fc - fc.mean(1, keepdims=True)) * FLIP
        inside = (b2[..., 0] >= 0) & (b2[..., 0] < cam.width) & (b2[..., 1] >= 0) & (b2[..., 1] < cam.height) & (
            bc[..., 2] > 0.3)
        covered = np.zeros((t, 13), bool)
        for box in world.boxes:
            covered |= box.hides(cam.centre, pose.body)
        to_cam = _unit(cam.centre - pose.body[:, HEAD])
        facing = (pose.face_forward * to_cam).sum(-1)
        hand_depth = hc.mean(2)[..., 2]
        torso_a, torso_b = b2[:, (R_HIP, L_HIP)].mean(1), b2[:, (R_SHOULDER, L_SHOULDER)].mean(1)
        hand_centre = h2.mean(2)
        near_torso = _segment_distance(hand_centre, torso_a[:, None], torso_b[:, None])[..., 0] < (
            0.13 * cam.focal / depth)[:, None]
        behind = near_torso & (hand_depth > depth[:, None] + 0.04)
        out.append(Seen(b2, b3, h2, h3, f2, f3, np.zeros(t, bool), np.zeros(t, bool), covered, inside,
                        cam.focal * b.height / depth, cam.focal[:, None] * b.hand / np.maximum(hand_depth, 0.05),
                        cam.focal * 0.2 * b.face_scale / np.maximum(fc.mean(1)[:, 2], 0.05), facing, depth,
                        hand_depth, behind))
    # People in front hide those behind them.
    for i, far in enumerate(out):
        for j, near in enumerate(out):
            if i == j:
                continue
            ahead = world.people[j][1].present & (near.depth < far.depth - 0.2) & (near.depth > 0.3)
            if not ahead.any():
                continue
            ends = [np.stack([near.body2d[:, list(s[k])].mean(1) for s in SILHOUETTE], 1) for k in (0, 1)]
            radius = np.array([s[2] for s in SILHOUETTE])[None, None] * (cam.focal / near.depth)[:, None, None]
            hit = (_segment_distance(far.body2d, ends[0], ends[1]) < radius).any(-1)
            far.covered |= hit & ahead[:, None]
    for (b, m), s in zip(world.people, out):
        n_in = s.inside.sum(1)
        in_image = n_in >= 0.6 * 13
        hidden = (s.covered & s.inside).sum(1) >= 0.7 * np.maximum(n_in, 1)
        s.visible = m.present & in_image & ~hidden
        s.occluded = m.present & in_image & hidden
    return out


def _runs(mask: Array) -> list[tuple[int, int]]:
    """(start, length) of the runs of True."""
    m = np.concatenate([[False], mask, [False]]).astype(int)
    d = np.diff(m)
    return [(int(a), int(b - a)) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]


def _hidden_runs(seen: list[Seen]) -> list[int]:
    """Lengths of the unseen intervals with seen frames on both sides."""
    out = []
    for s in seen:
        n = len(s.visible)
        out += [length for start, length in _runs(~s.visible) if start > 0 and start + length < n]
    return out


def _too_long(seen: list[Seen]) -> bool:
    return any(length > MAX_HIDDEN for s in seen for _, length in _runs(s.occluded))


# ------------------------------------------------------------------------------------ detections


def _link(points: Array, sides: Optional[Array], targets: Array, target_sides: Optional[Array], limit: Array
          ) -> Array:
    """Greedy nearest pairs: for each target row (a body's wrist or head), the index of the point
    (a hand's wrist, a face's centre) within `limit` of it, each point used once, NO_LINK if none."""
    out = np.full(len(targets), NO_LINK, np.int64)
    if not len(points) or not len(targets):
        return out
    d = np.linalg.norm(targets[:, None] - points[None], axis=-1)
    ok = d <= limit[:, None]
    if sides is not None:
        ok &= target_sides[:, None] == sides[None]
    used = set()
    for flat in np.argsort(np.where(ok, d, np.inf), axis=None):
        r, c = divmod(int(flat), len(points))
        if not ok[r, c]:
            break
        if out[r] == NO_LINK and c not in used:
            out[r] = c
            used.add(c)
    return out


def _score(rng: np.random.Generator, quality: float, noisy: bool) -> tuple[float, float]:
    """(score, noise multiplier) of one detection: normally the score follows the quality (0-1) and
    the noise is as drawn; with noisy scores the noise varies by up to 2.5 times from detection to
    detection and the score is mostly chance, only a little related to that noise."""
    if not noisy:
        return float(np.clip(0.4 + 0.55 * quality + rng.normal(0, 0.04), 0.3, 0.995)), 1.0
    q = float(rng.random())
    return 0.3 + 0.69 * (0.25 * q + 0.75 * float(rng.random())), 0.7 + 1.1 * (1 - q)


@dataclass
class Noise:
    """One person's detector noise over the clip, in units of the detector's sigmas (unit variance,
    correlated in time)."""
    body2d: Array
    body3d: Array
    hands2d: Array
    hands3d: Array
    face2d: Array
    face3d: Array
    score: Array  # slow score drift
    missed: Array  # [T] bool

    @classmethod
    def draw(cls, rng: np.random.Generator, det: Detector, t: int) -> "Noise":
        mixed = lambda shape: _ar_noise(rng, shape, det.rho3d) * 0.8 + 0.6 * rng.standard_normal(shape)
        missed = rng.random(t) < det.miss
        for start in np.flatnonzero(rng.random(t) < det.burst):
            missed[start:start + int(rng.integers(2, 7))] = True
        return cls(_ar_noise(rng, (t, 13, 2), det.rho2d, det.tail), mixed((t, 13, 3)),
                   _ar_noise(rng, (t, 2, 21, 2), det.rho2d, det.tail), mixed((t, 2, 21, 3)),
                   _ar_noise(rng, (t, 84, 2), det.rho2d), _ar_noise(rng, (t, 84, 3), det.rho3d),
                   _ar_noise(rng, (t,), 0.8), missed)


def _rotation2d(rng: np.random.Generator) -> Array:
    a = rng.uniform(0, TWO_PI)
    return np.array([math.cos(a), math.sin(a)])


def _bodies(rng: np.random.Generator, det: Detector, s: Seen, noise: Noise, t: int, height: int
            ) -> list[tuple[float, Array, Array]]:
    """A seen person's body detections in frame t: none (missed), one, or two (a duplicate)."""
    px = s.pixels[t]
    n_in = s.inside[t].sum()
    cov = (s.covered[t] & s.inside[t]).sum() / max(n_in, 1)
    if noise.missed[t] or rng.random() < 0.25 * cov:
        return []
    quality = min(1.0, px / (0.5 * height)) * (1 - 0.6 * cov) * (0.6 + 0.4 * n_in / 13)
    score, mult = _score(rng, quality, det.noisy_scores)
    if not det.noisy_scores:
        score = float(np.clip(score + 0.04 * noise.score[t], 0.3, 0.995))
    copies = [(score, mult, noise.body2d[t], noise.body3d[t], 0.0)]
    if rng.random() < det.duplicate:  # a second, shifted, lower-scored copy with noise of its own
        copies.append((score * rng.uniform(0.5, 0.85), 1.3 * mult, rng.standard_normal((13, 2)),
                       rng.standard_normal((13, 3)), rng.uniform(0.03, 0.08)))
    out = []
    true2d, centre = s.body2d[t], s.body2d[t].mean(0)
    for score, mult, r2, r3, shift in copies:
        sigma = det.k2d * px * mult * (1 + 2 * s.covered[t] + 1.5 * ~s.inside[t])  # covered or outside: guessed
        p2 = (true2d + sigma[:, None] * r2 + det.box * det.k2d * px * mult * rng.standard_normal(2)
              + det.scale * rng.standard_normal() * (true2d - centre))
        p3 = s.body3d[t] * (1 + det.scale3d * rng.standard_normal()) + det.s3d * mult * r3
        if shift:
            p2 = (p2 - centre) * rng.uniform(0.95, 1.05) + centre + shift * px * _rotation2d(rng)
        if rng.random() < det.bad_joint:
            j, off, way = int(rng.integers(13)), rng.uniform(0.05, 0.12), _rotation2d(rng)
            p2[j] += off * px * way
            p3[j] += off * 1.7 * np.array([way[0], way[1], rng.uniform(-0.5, 0.5)])
        if rng.random() < det.swap:
            for a, b in ((R_WRIST, L_WRIST), (R_ELBOW, L_ELBOW)):
                p2[[a, b]], p3[[a, b]] = p2[[b, a]], p3[[b, a]]
        out.append((float(score), p2, p3 - p3[[R_HIP, L_HIP]].mean(0)))
    return out


def _detect(world: World, seen: list[Seen], rng: np.random.Generator) -> list[Result]:
    cam, det, t_n = world.camera, world.detector, len(world.times)
    noises = [Noise.draw(rng, det, t_n) for _ in seen]
    false_bodies: list[tuple[int, int, Array, Array, float]] = []  # (first frame, frames, 2D, 3D, score)
    for start in np.flatnonzero(rng.random(t_n) < det.fp_body):
        src, k = seen[int(rng.integers(len(seen)))], int(rng.integers(t_n))
        scale = float(rng.uniform(0.6, 1.2))
        centre = np.array([rng.uniform(0.1, 0.9) * cam.width, rng.uniform(0.3, 0.7) * cam.height])
        false_bodies.append((int(start), int(rng.integers(1, 4)), (src.body2d[k] - src.body2d[k].mean(0)) * scale + centre,
                             src.body3d[k] * scale, float(rng.uniform(0.3, 0.45))))
    in_image = lambda q: 0 <= q[0] < cam.width and 0 <= q[1] < cam.height
    results = []
    for t in range(t_n):
        bodies: list[tuple[float, Array, Array]] = []
        hands: list[tuple[float, Array, Array, bool]] = []
        faces: list[tuple[float, Array, Array]] = []
        hand_cands: list[tuple[int, int, float]] = []  # (person, hand, chance)
        face_cands: list[tuple[int, float]] = []
        for p, s in enumerate(seen):
            if not s.visible[t]:
                continue
            bodies += _bodies(rng, det, s, noises[p], t, cam.height)
            for k, side in enumerate(HAND_SIDES):
                if s.covered[t, R_WRIST if side > 0 else L_WRIST] or not in_image(s.hands2d[t, k, 0]):
                    continue
                rate = det.hand_rate * (0.3 if s.behind_torso[t, k] else 1.0) * min(1.0, s.hand_pixels[t, k] / 12)
                hand_cands.append((p, k, rate))
            if not s.covered[t, HEAD] and in_image(s.face2d[t].mean(0)) and s.facing[t] > 0.26:
                face_cands.append((p, det.face_rate * min(1.0, (s.facing[t] - 0.26) / 0.3)))
        # Hands behind other hands, and faces behind hands, are missed half the time.
        centres = {(p, k): seen[p].hands2d[t, k].mean(0) for p, k, _ in hand_cands}
        for p, k, rate in hand_cands:
            s = seen[p]
            for q, k2, _ in hand_cands:
                if ((q, k2) != (p, k) and seen[q].hand_depth[t, k2] < s.hand_depth[t, k] - 0.03
                        and np.linalg.norm(centres[(q, k2)] - centres[(p, k)]) < 0.35 * s.hand_pixels[t, k]):
                    rate *= 0.5
            if rng.random() >= rate:
                continue
            size = s.hand_pixels[t, k]
            score, mult = _score(rng, min(1.0, size / 45), det.noisy_scores)
            p2 = s.hands2d[t, k] + det.k2d_hand * size * mult * (noises[p].hands2d[t, k] + 0.4 * rng.standard_normal(2))
            p3 = s.hands3d[t, k] + det.s3d_hand * mult * noises[p].hands3d[t, k]
            hands.append((score, p2, p3 - p3.mean(0), HAND_SIDES[k] > 0))
        for p, rate in face_cands:
            s = seen[p]
            for q, k2, _ in hand_cands:
                if (seen[q].hand_depth[t, k2] < s.depth[t]
                        and np.linalg.norm(centres[(q, k2)] - s.face2d[t].mean(0)) < 0.5 * s.face_pixels[t]):
                    rate *= 0.5
            if rng.random() >= rate:
                continue
            size = s.face_pixels[t]
            score, mult = _score(rng, float(np.clip(s.facing[t], 0, 1)), det.noisy_scores)
            p2 = s.face2d[t] + det.k2d_face * size * mult * (noises[p].face2d[t] + 0.4 * rng.standard_normal(2))
            p3 = s.face3d[t] + det.s3d_face * mult * noises[p].face3d[t]
            faces.append((score, p2, p3 - p3.mean(0)))
        for start, length, p2, p3, score in false_bodies:
            if start <= t < start + length:
                jitter = 0.01 * np.ptp(p2[:, 1]) * rng.standard_normal((13, 2))
                bodies.append((score * float(rng.uniform(0.9, 1.1)), p2 + jitter, p3))
        if rng.random() < det.fp_hand:  # a hand-like blob somewhere
            src, k, side = seen[int(rng.integers(len(seen)))], int(rng.integers(t_n)), int(rng.integers(2))
            centre = np.array([rng.uniform(0.05, 0.95) * cam.width, rng.uniform(0.2, 0.9) * cam.height])
            hands.append((float(rng.uniform(0.3, 0.42)), src.hands2d[k, side] - src.hands2d[k, side].mean(0) + centre,
                          src.hands3d[k, side], bool(side)))
        results.append(_result(cam.width, cam.height, bodies, hands, faces,
                               {"time_s": float(world.times[t])} if world.stamped else None))
    return results


def _result(width: int, height: int, bodies: list, hands: list, faces: list, meta: Optional[dict]) -> Result:
    """A frame's Result: each part by decreasing score, hands and faces attached to the nearest body."""
    bodies = sorted(bodies, key=lambda d: -d[0])
    hands = sorted(hands, key=lambda d: -d[0])
    faces = sorted(faces, key=lambda d: -d[0])
    b2 = np.array([d[1] for d in bodies]).reshape(-1, 13, 2)
    size = np.linalg.norm(b2.max(1) - b2.min(1), axis=-1) if len(bodies) else np.zeros(0)
    h2 = np.array([d[1] for d in hands]).reshape(-1, 21, 2)
    right = np.array([d[3] for d in hands], bool)
    links = {}
    for name, joint, is_right in (("left_hand", L_WRIST, False), ("right_hand", R_WRIST, True)):
        links[name] = _link(h2[:, 0], right, b2[:, joint], np.full(len(bodies), is_right), 0.1 * size)
    f2 = np.array([d[1] for d in faces]).reshape(-1, 84, 2)
    links["face"] = _link(f2.mean(1), None, b2[:, HEAD], None, 0.15 * size)
    part = lambda dets, j: (np.array([d[0] for d in dets], np.float32),
                            np.array([d[1] for d in dets], np.float32).reshape(-1, j, 2),
                            np.array([d[2] for d in dets], np.float32).reshape(-1, j, 3))
    return Result(height, width,
                  body=PartArrays("body", *part(bodies, 13), **links),
                  hand=PartArrays("hand", *part(hands, 21), is_right=right),
                  face=PartArrays("face", *part(faces, 84)), meta=meta)


# ------------------------------------------------------------------------------------- scenes


def _setup(rng: np.random.Generator, frames: int, fov: tuple[float, float] = (50.0, 68.0)
           ) -> tuple[Array, float, int, int, float]:
    """(times, fps, width, height, focal) of a static camera."""
    fps = float(rng.choice([25.0, 30.0]))
    width, height = ((1280, 720), (1920, 1080))[int(rng.integers(2))]
    focal = 0.5 * width / math.tan(math.radians(rng.uniform(*fov)) / 2)
    return np.arange(frames) / fps, fps, width, height, focal


def _tripod(times: Array, width: int, height: int, focal: float, cam_height: float, pitch_deg: float) -> Camera:
    n = len(times)
    return Camera(width, height, np.tile([0.0, cam_height, 0.0], (n, 1)), np.zeros(n),
                  np.full(n, math.radians(pitch_deg)), np.full(n, focal))


def _pacer(rng: np.random.Generator, x0: float, z: float, lo: float, hi: float, direction: float, legs: int,
           wander: float = 0.15, pause: float = 0.2) -> Plan:
    """Back and forth between x = lo and x = hi along depth z (a little wander), starting at x0."""
    points = []
    for k in range(legs):
        end = hi if (direction > 0) == (k % 2 == 0) else lo
        end = end - math.copysign(rng.uniform(0.0, 0.25) * (hi - lo), end - 0.5 * (lo + hi))
        stop = rng.uniform(0.4, 1.5) if rng.random() < pause else 0.0
        points.append(Waypoint(end, z + rng.uniform(-wander, wander), pause=stop))
    return Plan((x0, z), math.pi / 2 * direction, points)


def _lateral_people(rng: np.random.Generator, depths: list[float], focal: float, width: int, times: Array,
                    wander: float = 0.15) -> list[tuple[Body, Motion]]:
    """One person per depth, pacing across most of the image's width (alternate ones starting the
    other way)."""
    people = []
    for k, z in enumerate(depths):
        body = Body.sample(rng)
        half = 0.8 * _half_width(focal, width, z)
        direction = 1.0 if k % 2 == 0 else -1.0
        plan = _pacer(rng, rng.uniform(-half, half), z, -half, half, direction, legs=6, wander=wander)
        people.append((body, _walk(body, plan, times, rng)))
    return people


def _lanes(rng: np.random.Generator, n: int, lo: float, hi: float, gap: float) -> list[float]:
    """n walking depths in [lo, hi] (hi pushed back if need be), at least `gap` apart, in random order."""
    room = max(hi - lo - (n - 1) * gap, 0.0)
    depths = lo + np.sort(rng.uniform(0, room, n)) + gap * np.arange(n)
    return [float(z) for z in rng.permutation(depths)]


def _crossing_same_depth(rng: np.random.Generator, frames: int) -> World:
    times, fps, w, h, f = _setup(rng, frames)
    n = int(rng.integers(2, 7))
    z0 = rng.uniform(5.0, 7.5)
    lanes = (np.arange(n) - (n - 1) / 2) * 0.28
    depths = list(z0 + rng.permutation(lanes))
    people = _lateral_people(rng, depths, f, w, times, wander=0.04)
    return World(times, fps, _tripod(times, w, h, f, rng.uniform(1.3, 1.7), rng.uniform(2, 6)), people, [],
                 Detector.sample(rng))


def _crossing_depths(rng: np.random.Generator, frames: int) -> World:
    times, fps, w, h, f = _setup(rng, frames)
    n = int(rng.integers(2, 7))
    people = []
    for k, z in enumerate(_lanes(rng, n, 4.5, 13.0, 0.8)):
        body = Body.sample(rng)
        half = 0.8 * _half_width(f, w, z)
        direction = 1.0 if k % 2 == 0 else -1.0
        if rng.random() < 0.35:  # a diagonal walker: changes depth while crossing
            z2 = float(np.clip(z + rng.choice([-1, 1]) * rng.uniform(1.5, 3.0), 4.5, 13.5))
            half2 = 0.8 * _half_width(f, w, z2)
            points = [Waypoint(direction * half2, z2), Waypoint(-direction * half, z), Waypoint(direction * half2, z2),
                      Waypoint(-direction * half, z)]
            plan = Plan((rng.uniform(-half, half), z), math.pi / 2 * direction, points)
        else:
            plan = _pacer(rng, rng.uniform(-half, half), z, -half, half, direction, legs=6)
        people.append((body, _walk(body, plan, times, rng)))
    return World(times, fps, _tripod(times, w, h, f, rng.uniform(1.3, 1.7), rng.uniform(2, 6)), people, [],
                 Detector.sample(rng))


def _occlusions(rng: np.random.Generator, frames: int) -> World:
    times, fps, w, h, f = _setup(rng, frames, (50.0, 65.0))
    cam_h, pitch = rng.uniform(2.5, 3.2), rng.uniform(11.0, 16.0)
    boxes = []
    zp = rng.uniform(4.5, 6.0)
    half_p = _half_width(f, w, zp)
    for x in rng.uniform(-0.5, 0.5, int(rng.integers(1, 3))) * half_p:
        size = rng.uniform(0.3, 0.6)
        boxes.append(Box(float(x), zp, size, size, 4.0))
    z_min = 1.3 * zp
    if rng.random() < 0.7:  # a parked car in the foreground hides legs
        zc = rng.uniform(3.3, 4.2)
        boxes.append(Box(float(rng.choice([-1, 1]) * rng.uniform(0.3, 0.7) * _half_width(f, w, zc)), zc, 4.4, 1.8, 1.5))
        z_min = max(z_min, (zc + 0.9) * (cam_h - 0.95) / (cam_h - 1.5) + 0.3)
    n = int(rng.integers(3, 7))
    z_max = max(z_min + 1.0, min(2.0 * zp, 12.0))
    depths = _lanes(rng, n, z_min, z_max, 0.5)
    people = _lateral_people(rng, depths, f, w, times)
    return World(times, fps, _tripod(times, w, h, f, cam_h, pitch), people, boxes, Detector.sample(rng))


def _enter_leave(rng: np.random.Generator, frames: int) -> World:
    times, fps, w, h, f = _setup(rng, frames)
    duration = float(times[-1])
    wall = rng.uniform(10.0, 13.0)
    doors = list(rng.uniform(-0.6, 0.6, int(rng.integers(1, 3))) * _half_width(f, w, wall))
    roles = ["door_in", "crosser", "door_out", "peeker", "crosser", "door_out"]
    n = int(rng.integers(3, 7))
    people = []
    for k in range(n):
        role = roles[k]
        body = Body.sample(rng)
        z = rng.uniform(4.5, 9.0)
        half = _half_width(f, w, z)
        side = float(rng.choice([-1, 1]))
        door = float(doors[int(rng.integers(len(doors)))])
        if role == "crosser":
            plan = Plan((side * (half + rng.uniform(0.8, 2.0)), z), -side * math.pi / 2,
                        [Waypoint(-side * (half + 2.5), z + rng.uniform(-1, 1))], delay=rng.uniform(0, 0.5 * duration))
        elif role == "peeker":
            plan = Plan((side * (half + rng.uniform(0.8, 2.0)), z), -side * math.pi / 2,
                        [Waypoint(side * (half - rng.uniform(1.5, 3.5)), z, pause=rng.uniform(0, 1.5), face=math.pi),
                         Waypoint(side * (half + 2.5), z + rng.uniform(-1, 1))], delay=rng.uniform(0, 0.3 * duration))
        elif role == "door_out":
            z2 = rng.uniform(4.5, 8.0)
            plan = Plan((door, wall - 0.4), math.pi,
                        [Waypoint(rng.uniform(-0.7, 0.7) * _half_width(f, w, z2), z2),
                         Waypoint(side * (_half_width(f, w, z2) + 2.5), z2)], absent=rng.uniform(0.1, 0.6) * duration)
        else:  # door_in: starts in view, goes through a door, maybe comes back out
            back = rng.uniform(0.6, 3.0) if rng.random() < 0.6 else math.inf
            plan = Plan((rng.uniform(-0.6, 0.6) * half, z), 0.0,
                        [Waypoint(door, wall - 0.4, vanish=back), Waypoint(side * 0.5 * half, z),
                         Waypoint(-side * (half + 2.5), z)])
        people.append((body, _walk(body, plan, times, rng)))
    return World(times, fps, _tripod(times, w, h, f, rng.uniform(1.4, 1.7), rng.uniform(2, 6)), people, [],
                 Detector.sample(rng))


def _plaza_plan(rng: np.random.Generator, x_range: tuple[float, float], z_range: tuple[float, float],
                stops: float = 0.3) -> Plan:
    """Random waypoints in a rectangle of the ground, sometimes stopping (facing the camera or anywhere)."""
    pick = lambda: (float(rng.uniform(*x_range)), float(rng.uniform(*z_range)))
    start = pick()
    points = []
    for _ in range(8):
        x, z = pick()
        pause = rng.uniform(0.5, 2.0) if rng.random() < stops else 0.0
        face = math.pi if rng.random() < 0.5 else float(rng.uniform(0, TWO_PI))
        points.append(Waypoint(x, z, pause=pause, face=face))
    return Plan(start, float(rng.uniform(0, TWO_PI)), points, delay=rng.uniform(0, 1.0) if rng.random() < 0.3 else 0.0)


def _panning(rng: np.random.Generator, frames: int) -> World:
    _, fps, w, h, f0 = _setup(rng, frames)
    # Irregular frame times: a little jitter, a few frames dropped.
    dt = (1 + rng.normal(0, 0.03, frames)) / fps
    dt[rng.random(frames) < 0.02] += 1 / fps
    dt[0] = 0.0
    times = np.cumsum(dt)
    amp, period = math.radians(rng.uniform(15, 30)), rng.uniform(6.0, 10.0)
    yaw = amp * np.sin(TWO_PI * times / period + rng.uniform(0, TWO_PI)) + _wobble(rng, times, math.radians(0.3), 0.5, 2.0)
    zoom = rng.uniform(0.0, 0.1)
    focal = f0 * (1 + zoom * np.sin(TWO_PI * times / rng.uniform(4.0, 10.0) + rng.uniform(0, TWO_PI)))
    n = len(times)
    cam = Camera(w, h, np.tile([0.0, rng.uniform(1.4, 1.7), 0.0], (n, 1)), yaw, np.full(n, math.radians(rng.uniform(2, 5))),
                 focal)
    people = []
    for _ in range(int(rng.integers(3, 7))):
        body = Body.sample(rng)
        people.append((body, _walk(body, _plaza_plan(rng, (-8.0, 8.0), (5.0, 11.0), 0.2), times, rng)))
    return World(times, fps, cam, people, [], Detector.sample(rng), stamped=True)


def _min_jerk(u: Array) -> Array:
    u = np.clip(u, 0, 1)
    return u ** 3 * (10 - 15 * u + 6 * u ** 2)


PALMS = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
HANDSHAPES = np.array([[0.1, 0.05, 0.05, 0.05, 0.05], [0.9, 1.0, 1.0, 1.0, 1.0], [0.8, 0.0, 1.0, 1.0, 1.0],
                       [0.8, 0.0, 0.0, 1.0, 1.0], [0.3, 0.6, 0.6, 0.6, 0.6], [0.0, 1.0, 1.0, 1.0, 0.0],
                       [0.6, 0.0, 0.0, 0.0, 0.0]])


def _signing(rng: np.random.Generator, times: Array, body: Body, side: float, partner: Optional[Array],
             touches: list[tuple[float, float]]) -> tuple[Array, Array, Array]:
    """(wrist [T, 3], palm normal [T, 3], curls [T, 5]) of one hand in the signer's axes: fast
    minimum-jerk strokes between targets (signing space, across the body, at the face, toward the
    partner), holds with small repeated movements, and meetings with the partner's hand.
    partner: the point between the two signers at chest height (this signer's axes) for the hand
    on the partner's side, else None."""
    h = body.height
    end = float(times[-1])

    def target() -> Array:
        c = rng.random()
        if partner is not None and c < 0.2:  # into the partner's signing space
            return partner + np.array([rng.uniform(-0.1, 0.25) * np.sign(partner[0]), rng.uniform(-0.1, 0.1),
                                       rng.uniform(-0.05, 0.1)])
        if c < 0.35:  # across the body
            return np.array([-side * rng.uniform(0.05, 0.25), h * rng.uniform(0.6, 0.78), rng.uniform(0.22, 0.4)])
        if c < 0.5:  # at the face
            return np.array([side * rng.uniform(-0.03, 0.08), h * rng.uniform(0.86, 0.92), rng.uniform(0.13, 0.2)])
        if c < 0.54:  # resting
            return np.array([side * 0.22, h * 0.5, 0.08])
        return np.array([side * rng.uniform(0.0, 0.3), h * rng.uniform(0.58, 0.8), rng.uniform(0.2, 0.42)])

    keys = [(0.0, target(), PALMS[int(rng.integers(len(PALMS)))], HANDSHAPES[int(rng.integers(len(HANDSHAPES)))])]
    t = 0.0
    pending = sorted(touches) if partner is not None else []
    while t < end + 1.0:
        move = rng.uniform(0.12, 0.35)
        if pending and pending[0][0] <= t + move + 0.3:
            start, hold = pending.pop(0)
            arrive = max(start, t + 0.15)
            keys.append((arrive, partner.copy(), PALMS[1], HANDSHAPES[0]))
            keys.append((arrive + hold, partner.copy(), PALMS[1], HANDSHAPES[0]))
            t = arrive + hold
            continue
        goal = target()  # at most about 1.6 m/s on average (peaks near 3 m/s)
        t += max(move, float(np.linalg.norm(goal - keys[-1][1])) / rng.uniform(1.0, 1.6))
        keys.append((t, goal, PALMS[int(rng.integers(len(PALMS)))], HANDSHAPES[int(rng.integers(len(HANDSHAPES)))]))
        if rng.random() < 0.5:
            t += rng.uniform(0.05, 0.3)
            keys.append((t, keys[-1][1], keys[-1][2], keys[-1][3]))
    kt = np.array([k[0] for k in keys])
    i = np.clip(np.searchsorted(kt, times, side="right") - 1, 0, len(keys) - 2)
    u = _min_jerk((times - kt[i]) / np.maximum(kt[i + 1] - kt[i], 1e-6))[:, None]
    pick = lambda j, idx: np.array([keys[k][j] for k in idx])
    wrist = (1 - u) * pick(1, i) + u * pick(1, i + 1)
    palm = _unit((1 - u) * pick(2, i) + u * pick(2, i + 1) + np.array([0.0, 0.0, 0.05]))
    curls = np.clip((1 - u) * pick(3, i) + u * pick(3, i + 1), 0, 1)
    # Small repeated movements (a sign's internal motion) now and then.
    shake = np.clip(_wobble(rng, times, 1.0, 0.2, 0.5), 0, None)[:, None]
    wrist = wrist + 0.025 * shake * np.sin(TWO_PI * rng.uniform(3, 5) * times)[:, None] * _unit(rng.normal(size=3))
    return wrist, palm, curls


def _signers(rng: np.random.Generator, frames: int) -> World:
    times, fps, w, h, f = _setup(rng, frames, (62.0, 75.0))
    z0 = max(rng.uniform(3.0, 3.8), 1.95 * f / (0.85 * h))
    gap = rng.uniform(0.40, 0.52)
    turn = rng.uniform(0.0, 0.25)
    n = len(times)
    end = float(times[-1])
    touches = []
    t = rng.uniform(0.5, 2.0)
    while t < end - 0.5:
        touches.append((t, float(rng.uniform(0.1, 0.4))))
        t += rng.uniform(1.5, 3.5)
    people = []
    for k, (x, heading) in enumerate(((-gap, math.pi - turn), (gap, math.pi + turn))):
        body = Body.sample(rng, rng.uniform(1.55, 1.9))
        ground = np.tile([x, z0 + rng.uniform(-0.1, 0.1)], (n, 1))
        m = Motion(ground, np.full(n, heading), np.zeros(n), np.zeros(n), np.ones(n, bool), **_upper_body(rng, times, 0.4))
        m.sway = np.stack([_wobble(rng, times, 0.012, 0.1, 0.4), _wobble(rng, times, 0.008, 0.1, 0.4)], -1)
        m.torso_yaw = _wobble(rng, times, 0.07, 0.1, 0.5)
        m.head_yaw = _wobble(rng, times, 0.2, 0.1, 0.6)
        people.append((body, m))
    # Where their hands meet: between them, 35 cm toward the camera, at chest height (world), then in
    # each signer's axes.
    meet_x = 0.5 * (people[0][1].ground[0, 0] + people[1][1].ground[0, 0])
    meet_z = 0.5 * (people[0][1].ground[0, 1] + people[1][1].ground[0, 1]) - 0.35
    chest = 0.72 * 0.5 * (people[0][0].height + people[1][0].height)
    for k, (body, m) in enumerate(people):
        c, s = math.cos(m.heading[0]), math.sin(m.heading[0])
        dx, dz = meet_x - m.ground[0, 0], meet_z - m.ground[0, 1]
        meet = np.array([dx * c - dz * s, chest, dx * s + dz * c])
        inner = 1.0 if meet[0] > 0 else -1.0  # the partner is on this signer's right or left
        wrists, palms, curls = [], [], []
        for side in HAND_SIDES:
            wr, pa, cu = _signing(rng, times, body, side, meet if side == inner else None, touches)
            wrists.append(wr)
            palms.append(pa)
            curls.append(cu)
        m.wrists, m.palms, m.curls = np.stack(wrists, 1), np.stack(palms, 1), np.stack(curls, 1)
    cam = _tripod(times, w, h, f, rng.uniform(1.1, 1.4), rng.uniform(0, 4))
    return World(times, fps, cam, people, [], Detector.sample(rng))


def _plaza(rng: np.random.Generator, frames: int, **detector: float) -> World:
    times, fps, w, h, f = _setup(rng, frames)
    people = []
    for _ in range(int(rng.integers(2, 6))):
        body = Body.sample(rng)
        z_range = (4.5, 11.0)
        x_half = 0.8 * _half_width(f, w, 4.5)
        people.append((body, _walk(body, _plaza_plan(rng, (-x_half, x_half), z_range), times, rng)))
    cam = _tripod(times, w, h, f, rng.uniform(1.4, 2.2), rng.uniform(3, 8))
    return World(times, fps, cam, people, [], Detector.sample(rng, **detector))


def _drops_duplicates(rng: np.random.Generator, frames: int) -> World:
    return _plaza(rng, frames, miss=rng.uniform(0.05, 0.1), burst=rng.uniform(0.01, 0.025),
                  duplicate=rng.uniform(0.04, 0.1), fp_body=rng.uniform(0.03, 0.08))


def _noisy_scores(rng: np.random.Generator, frames: int) -> World:
    return _plaza(rng, frames, noisy_scores=True)


BUILDERS: dict[str, Callable[[np.random.Generator, int], World]] = {
    "crossing_same_depth": _crossing_same_depth, "crossing_depths": _crossing_depths, "occlusions": _occlusions,
    "enter_leave": _enter_leave, "panning": _panning, "signers": _signers, "drops_duplicates": _drops_duplicates,
    "noisy_scores": _noisy_scores}


def make_fifth_scene(kind: str, seed: int, frames: int = 240) -> Scene:
    """A scene of the given kind (one of FIFTH_KINDS), the same for the same seed."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(FIFTH_KINDS)}")
    kind_id = FIFTH_KINDS.index(kind)
    for attempt in range(MAX_TRIES):
        rng = np.random.default_rng(np.random.SeedSequence([5, kind_id, int(seed) % 2 ** 32, attempt]))
        world = BUILDERS[kind](rng, frames)
        seen = _observe(world)
        if not _too_long(seen) and any(s.visible.any() for s in seen):
            break
    results = _detect(world, seen, rng)
    truth = [[Truth(k, bool(s.visible[t]), s.body2d[t], s.body3d[t], s.hands2d[t], s.hands3d[t], s.face2d[t],
                    s.face3d[t]) for k, s in enumerate(seen)] for t in range(frames)]
    return Scene(results, truth, world.fps, _hidden_runs(seen))
