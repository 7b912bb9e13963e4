"""A fourth synthetic scene generator: articulated people in a 3D world, seen by a pinhole camera,
and a whole-body detector that errs the way detectors err. `make_fourth_scene(kind, seed, frames)`.

World. Metres, ground plane z = 0, z up. Static things are vertical rectangles ("panels": a
pillar, an advertising panel, the wall around a doorway) and optionally a dark building interior
(a half-plane of the ground behind the wall where nobody can be seen).

Camera. A pinhole camera per frame: position, yaw, pitch (down positive), roll, focal length in
pixels, principal point at the image centre. Per kind it is fixed (a mast, a window), panning to
follow a ball, or handheld (smoothed random shake in three angles, a slow zoom).

People. Each person has their own proportions (stature 1.5-2.0 m, children 1.0-1.45 m with
shorter legs and bigger heads). Their ground track comes from a steering model: a goal point and a
cruise speed per frame, with limited acceleration and turning rate (sharp turns slow a person
down, so cuts look like cuts); followers keep a fixed offset beside a leader. The skeleton is
forward kinematics driven by a gait phase whose cadence and stride follow speed (legs swing and
bend, the pelvis sits on the lower ankle, the torso leans and twists, arms swing against the legs,
runners bend their elbows) or, for signers, two-link inverse kinematics towards wrist goals.
Hands (21 joints) continue the forearm with a palm orientation, finger curls and spread; faces
(84 landmarks in the iBUG layout, a mouth that opens) sit on the head and turn with its yaw and pitch.

Kinds. street_crossing: 4-10 pedestrians crossing a plaza seen from a first floor, pairs side by
side, speed changes and stops, sometimes a mannequin. doorway: people leave and enter through the
image borders and through doors in a wall (appearing and vanishing mid-image), behind a pillar or
panel, sometimes a poster. team_sport: 6-12 players (25 or 50 fps), cuts, stops, close marking, a
camera panning after the ball. signers: 2-3 people facing a close camera, hands fast, crossing and
touching. crowd: 50-200 people 40-150 px tall on a concourse or in a march. phone_video: a portrait
handheld phone, 1-4 people near it, often cut by the border. low_frame_rate: 8-15 fps walkers and
runners (sometimes a variable frame rate, the frame times in `Result.meta["time_s"]`).

Visibility. A joint is hidden when it falls outside the image, behind a panel (ray test), in the
dark interior, or inside the box of a person at least 25 cm closer to the camera. A person is
`visible` while enough of their 13 body joints are seen (with hysteresis: hidden under 33 %,
seen again above 47 %). Hidden people are never detected (a junk body may land on one by chance).

Detector. A visible person's body is output when its score stays above a threshold and they are
not in a missed run. The score is a logistic function of a per-person quality, the pixel height,
the occluded and out-of-image fractions, motion blur, and time-correlated jitter. 2D noise is
heteroscedastic and heavy-tailed (per-joint lognormal scale mixture) and grows with occlusion,
low score and small size; motion blur displaces joints along their image velocity; a body-wide
offset drifts in time; joints outside the image are extrapolated and pulled towards the border.
3D noise: a per-person size bias, depth stretch and joint offsets that persist, plus white noise.
Also: single-frame outlier joints, left/right swaps of a whole body for a few frames (likelier in
profile), duplicates (a weaker, shifted copy), one-frame junk bodies and hands, a persistent static
false positive in some scenes. Hands and faces are detected on their own (their chances follow
their pixel size, blur, facing; signers' faces always), with a random affine warp plus per-point
noise, a per-person 3D scale bias, and sometimes the wrong handedness (likelier with crossed
hands). Hands and faces are linked to bodies by DOPE's rule (SPEC section 6) on the noisy poses,
so a hand near both wrists may be linked twice and an accepted hand's wrist replaces the body's;
some links are dropped. Every part is sorted by score.

Frames, as DOPE's: 2D in pixels; body 3D in metres, centred on the middle of the hips, x and y
flipped from the camera's; hand and face 3D camera-aligned, centred on their own mean. The truth
uses the same frames, without noise.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from scipy.special import expit

from benchmarks.scenes import Scene, Truth
from dope.results import NO_LINK, PartArrays, Result

FOURTH_KINDS = ("street_crossing", "doorway", "team_sport", "signers", "crowd", "phone_video", "low_frame_rate")

SWAP_LR = np.array([1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12])  # body joints with left and right exchanged
BODY_NOISE = np.array([1.5, 1.5, 1.2, 1.2, 1.4, 1.4, 1.7, 1.7, 1.2, 1.2, 0.9, 0.9, 0.8])  # relative, per joint
HAND_NOISE = np.array([1.0] * 6 + [1.1, 1.3, 1.5] * 5)
FACE_NOISE = np.array([1.4] * 33 + [1.0] * 51)
FLIP = np.array([-1.0, -1.0, 1.0])  # camera frame -> DOPE's body 3D frame (x left, y up)
# Hand: per finger (thumb..little) the base joint (along, across the palm, as fractions of the hand
# length), the spread angle, the three phalanx lengths, and the flexion of its three joints at full curl.
FINGERS = np.array([[0.12, 0.13, 0.00, 0.20, 0.16, 0.13, 0.4, 0.6, 0.7],
                    [0.46, 0.09, 0.12, 0.22, 0.14, 0.11, 1.3, 1.6, 1.0],
                    [0.47, 0.02, 0.02, 0.25, 0.16, 0.12, 1.3, 1.6, 1.0],
                    [0.44, -0.05, -0.08, 0.23, 0.15, 0.12, 1.3, 1.6, 1.0],
                    [0.39, -0.11, -0.18, 0.18, 0.11, 0.10, 1.3, 1.5, 1.0]])
HANDSHAPES = np.array([[0, 0, 0, 0, 0], [0.9, 1, 1, 1, 1], [0.7, 0, 1, 1, 1], [0.8, 0, 0, 1, 1],  # flat, fist, point, V
                       [0.3, .45, .45, .45, .45], [0, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0.5, .7, .7, .7, .7],  # C, A, Y, O
                       [0, 0, 1, 1, 1], [0.6, .2, .2, .2, .2]])  # L, bent


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _v(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a[..., None] * b: a scalar field times a vector field."""
    return np.asarray(a)[..., None] * b


def _face_template() -> tuple[np.ndarray, np.ndarray]:
    """(float[84, 3] landmarks of a closed-mouth adult face, float[84, 3] their change for an open
    mouth), head frame: x forward, y to the person's left, z up, origin at the head centre."""
    pts: list[tuple[float, float]] = []  # (y, z); depth x is added from an ellipsoidal face surface
    for th in np.linspace(-1.75, 1.75, 33):  # jaw: right temple, chin, left temple
        pts.append((0.072 * math.sin(th), 0.01 - 0.115 * math.cos(th / 1.4)))
    for sgn in (-1, 1):  # eyebrows: right outer->inner, left inner->outer
        ys = np.linspace(-0.066, -0.014, 5) if sgn < 0 else np.linspace(0.014, 0.066, 5)
        pts += [(y, 0.045 + 0.008 * math.cos((abs(y) - 0.04) * 50)) for y in ys]
    pts += [(0.0, z) for z in np.linspace(0.028, -0.016, 4)]  # nose bridge
    pts += [(y, -0.028 - 0.004 * (1 - abs(y) / 0.018)) for y in np.linspace(-0.018, 0.018, 5)]  # nose base
    for cy, start in ((-0.032, math.pi), (0.032, 0.0)):  # eyes: loops of 6 starting at a corner
        for a in start + np.linspace(0, 2 * math.pi, 6, endpoint=False) * (1 if start else -1):
            pts.append((cy + 0.014 * math.cos(a), 0.018 + 0.005 * math.sin(a)))
    for n, w, h in ((12, 0.026, 0.011), (8, 0.017, 0.003)):  # outer and inner lips, from the right corner
        for a in math.pi + np.linspace(0, 2 * math.pi, n, endpoint=False) * -1:
            pts.append((w * math.cos(a), -0.062 + h * math.sin(a)))
    yz = np.array(pts)
    x = 0.09 * np.sqrt(np.clip(1 - (yz[:, 0] / 0.082) ** 2 - (yz[:, 1] / 0.16) ** 2, 0.02, 1))
    x[43:52] += 0.022 * np.array([0.4, 0.7, 0.9, 1.0, 0.5, 0.7, 0.8, 0.7, 0.5])  # the nose sticks out
    base = np.column_stack([x, yz])
    open_ = np.zeros_like(base)
    open_[71:76, 2] = -0.014  # lower outer lip (the corners are 64 and 70)
    open_[81:84, 2] = -0.013  # lower inner lip (corners 76 and 80)
    open_[[76, 80], 2] = -0.005
    open_[12:21, 2] = -0.012 * np.cos(np.linspace(-1.2, 1.2, 9))  # the chin drops
    return base, open_


FACE_BASE, FACE_OPEN = _face_template()


class _Body:
    """Proportions of N people (each float[N], metres): stature 1.5-2 m, some children of 1.0-1.45 m
    with shorter legs and bigger heads, every segment varied by a few percent."""

    def __init__(self, rng: np.random.Generator, n: int, child: float = 0.1, lo: float = 1.5, hi: float = 1.98):
        h = np.clip(rng.normal(1.72, 0.09, n), lo, hi)
        kids = rng.random(n) < child
        h[kids] = rng.uniform(1.0, 1.45, kids.sum())
        c = np.clip((1.5 - h) / 0.5, 0, 1)  # childness
        j = lambda: rng.uniform(0.96, 1.04, n)  # noqa: E731
        leg = (0.53 - 0.05 * c - 0.04) * h  # hip to ankle
        self.stature, self.ankle = h, 0.04 * h
        self.thigh, self.shin, self.hip_w = 0.5 * leg * j(), 0.5 * leg * j(), 0.055 * h * j()
        self.torso, self.neck = (0.29 + 0.01 * c) * h * j(), (0.115 + 0.03 * c) * h  # to the shoulders, the head
        self.shoulder_w, self.upper, self.fore = 0.115 * h * (1 - 0.1 * c) * j(), 0.186 * h * j(), 0.146 * h * j()
        self.hand, self.face = 0.108 * h * (1 + 0.15 * c), (h / 1.75) ** 0.4 * j()  # hand length, face scale
        self.lean = rng.normal(0.02, 0.03, n)  # forward, radians


@dataclass
class _Motion:
    """What N people do over T frames (world metres, radians)."""
    pos: np.ndarray         # [T, N, 2] ground point under the pelvis
    yaw: np.ndarray         # [T, N] direction the body faces
    speed: np.ndarray       # [T, N] m/s
    head_yaw: np.ndarray    # [T, N] relative to the body
    head_pitch: np.ndarray  # [T, N] down positive
    curl: np.ndarray        # [T, N, 2 (left, right), 5] finger curls, 0 open .. 1 closed
    spread: np.ndarray      # [T, N, 2]
    pronation: np.ndarray   # [T, N, 2] palm roll about the forearm
    lift: np.ndarray        # [T, N, 2] wrist extension (fingers towards up)
    mouth: np.ndarray       # [T, N] 0 closed .. 1 open
    reach: Optional[np.ndarray] = None  # [T, N, 2, 3] wrist goals (forward, left, up from the pelvis): IK arms


@dataclass
class _Camera:
    width: int
    height: int
    pos: np.ndarray    # [T, 3]
    yaw: np.ndarray    # [T]
    pitch: np.ndarray  # [T]
    roll: np.ndarray   # [T]
    focal: np.ndarray  # [T] pixels

    def rotation(self) -> np.ndarray:
        """float[T, 3, 3]: rows are the camera's right, down and forward axes in the world."""
        cy, sy, cp, sp = np.cos(self.yaw), np.sin(self.yaw), np.cos(self.pitch), np.sin(self.pitch)
        fw = np.stack([cp * cy, cp * sy, -sp], -1)
        rt = np.stack([sy, -cy, 0 * cy], -1)
        dn = np.cross(fw, rt)
        cr, sr = np.cos(self.roll)[:, None], np.sin(self.roll)[:, None]
        return np.stack([cr * rt + sr * dn, cr * dn - sr * rt, fw], 1)

    def to_camera(self, p: np.ndarray) -> np.ndarray:
        q = p.reshape(len(self.pos), -1, 3) - self.pos[:, None]
        return np.einsum("tij,tkj->tki", self.rotation(), q).reshape(p.shape)

    def project(self, pc: np.ndarray) -> np.ndarray:
        z = np.maximum(pc[..., 2], 0.05)
        f = self.focal.reshape((-1,) + (1,) * (pc.ndim - 2))
        return np.stack([f * pc[..., 0] / z + self.width / 2, f * pc[..., 1] / z + self.height / 2], -1)

    def ground(self, t: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """float[K, 2]: the ground points seen at pixels (u, v) of frame t (below the horizon)."""
        ray = np.stack([(u - self.width / 2) / self.focal[t], (v - self.height / 2) / self.focal[t], 1 + 0 * u], -1)
        d = ray @ self.rotation()[t]
        s = -self.pos[t, 2] / np.minimum(d[:, 2], -1e-3)
        return self.pos[t, :2] + s[:, None] * d[:, :2]


def _camera(T: int, size: tuple[int, int], hfov_deg: float, pos, yaw, pitch, roll=0.0, zoom=1.0) -> _Camera:
    f = size[0] / 2 / math.tan(math.radians(hfov_deg) / 2)
    full = lambda x, k=1: np.broadcast_to(np.asarray(x, float), (T, k) if k > 1 else (T,)).copy()  # noqa: E731
    return _Camera(size[0], size[1], full(pos, 3), full(yaw), full(pitch), full(roll), full(zoom) * f)


class _Detector:
    """How the detector errs in one scene: parameters drawn per scene, some set by the kind."""

    def __init__(self, rng: np.random.Generator, **kind: object) -> None:
        u = rng.uniform
        self.noise2d = u(0.005, 0.011)  # body 2D noise, fraction of the person's pixel height (before factors)
        self.noise3d = u(0.012, 0.025)  # body 3D white noise, metres
        self.bias3d = u(0.01, 0.025)  # per-person constant offset of each 3D joint, metres
        self.scale3d, self.depth3d = u(0.04, 0.1), u(0.08, 0.2)  # spreads of per-person size and depth biases
        self.quality = (1.6, 3.2)  # range of the per-person score logit
        self.min_score = u(0.08, 0.2)  # weaker bodies are not output
        self.miss = (u(0.002, 0.006), u(2, 6))  # missed runs: rate per frame, mean length
        self.swap = (u(0.001, 0.004), u(1.5, 4))  # left/right swaps: rate per frame (facing the camera), length
        self.outlier, self.duplicate = u(0.005, 0.025), u(0.004, 0.015)  # chances per detection
        self.junk = u(0.01, 0.05)  # chance per frame of a one-frame false body
        self.hand_noise, self.face_noise = u(0.02, 0.04), u(0.01, 0.025)  # fractions of the part's size
        self.hand_miss, self.handedness = u(0.03, 0.1), u(0.01, 0.03)  # chances per hand
        self.unlink = u(0.02, 0.06)  # chance that a hand or face is left unlinked to its body
        self.exposure = u(0.2, 0.5)  # shutter time over frame time: motion blur
        self.pull = u(0.15, 0.4)  # how far joints outside the image are pulled towards it
        self.faces_always = False
        self.__dict__.update(kind)


@dataclass
class _Setup:
    fps: float
    dt: np.ndarray  # [T] seconds since the previous frame
    camera: _Camera
    body: _Body
    motion: _Motion
    detector: _Detector
    panels: list = field(default_factory=list)  # (x0, y0, x1, y1, z0, z1) vertical rectangles
    dark: Optional[tuple[float, float, float]] = None  # ground points with a*x + b*y > c cannot be seen
    figure: Optional[tuple[float, float, float, float]] = None  # static false positive: x, y, yaw, height
    time_s: Optional[np.ndarray] = None


# ------------------------------------------------------------------------------------ motion

def _keys(rng: np.random.Generator, T: int, step: tuple[float, float], draw: Callable[[int], np.ndarray]) -> np.ndarray:
    """float[T, ...]: values drawn at random key frames (every step[0]..step[1] frames), eased between."""
    times = [0.0]
    while times[-1] < T:
        times.append(times[-1] + rng.uniform(*step))
    k = np.array(times)
    vals = np.asarray(draw(len(k)), float)
    t = np.arange(T)
    i = np.searchsorted(k, t, "right") - 1
    w = (t - k[i]) / (k[i + 1] - k[i])
    w = (w * w * (3 - 2 * w)).reshape((-1,) + (1,) * (vals.ndim - 1))
    return vals[i] + w * (vals[i + 1] - vals[i])


def _ar(rng: np.random.Generator, shape: tuple, tau: float) -> np.ndarray:
    """float[shape]: unit-variance AR(1) noise along the first axis, time constant tau frames."""
    a = math.exp(-1.0 / max(tau, 1e-3))
    e = rng.standard_normal(shape)
    e[1:] *= math.sqrt(1 - a * a)
    for t in range(1, shape[0]):
        e[t] += a * e[t - 1]
    return e


def _runs(rng: np.random.Generator, rate: np.ndarray, mean_len: float) -> np.ndarray:
    """bool[rate.shape]: runs (along axis 0) that start with probability `rate` per frame."""
    start = rng.random(rate.shape) < rate
    length = rng.geometric(1 / max(mean_len, 1.0), rate.shape)
    out = np.zeros(rate.shape, bool)
    left = np.zeros(rate.shape[1:], int)
    for t in range(rate.shape[0]):
        left = np.where(start[t] & (left == 0), length[t], left)
        out[t] = left > 0
        left = np.maximum(left - 1, 0)
    return out


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


Control = Callable[[int, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _steer(p0: np.ndarray, h0: np.ndarray, dt: np.ndarray, control: Control, accel: float, turn: float,
           tau: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground tracks (pos [T, N, 2], heading, speed) of people steering towards control's goals at
    its cruise speeds (arriving gently), with limited acceleration and turning rate."""
    T, n = len(dt), len(p0)
    pos, hd, sp = np.zeros((T, n, 2)), np.zeros((T, n)), np.zeros((T, n))
    pos[0], hd[0] = p0, h0
    for t in range(T):
        prev = max(t - 1, 0)
        goal, cruise = control(t, pos[prev], hd[prev], sp[prev])
        d = goal - pos[prev]
        dist = np.linalg.norm(d, axis=-1)
        want = np.where(dist > 0.25, np.arctan2(d[:, 1], d[:, 0]), hd[prev])
        err = _wrap(want - hd[prev])
        v_des = np.minimum(cruise, dist / tau) * np.clip(np.cos(err), 0.1, 1)
        if t == 0:
            hd[0] = want
            sp[0] = np.minimum(cruise, dist / tau)
            continue
        hd[t] = hd[prev] + np.clip(err, -turn * dt[t], turn * dt[t])
        sp[t] = sp[prev] + np.clip(v_des - sp[prev], -1.5 * accel * dt[t], accel * dt[t])
        pos[t] = pos[prev] + _v(sp[t] * dt[t], np.stack([np.cos(hd[t]), np.sin(hd[t])], -1))
    return pos, hd, sp


def _turn_to(hd: np.ndarray, sp: np.ndarray, pos: np.ndarray, target: np.ndarray, slow: float, rate: float
             ) -> np.ndarray:
    """float[T, N]: where people face: their heading, or the target [T, 2] when slower than `slow`
    m/s, turning at most `rate` radians per frame."""
    yaw = hd.copy()
    for t in range(1, len(hd)):
        to = target[t] - pos[t]
        want = np.where(sp[t] > slow, hd[t], np.arctan2(to[:, 1], to[:, 0]))
        yaw[t] = yaw[t - 1] + np.clip(_wrap(want - yaw[t - 1]), -rate, rate)
    return yaw


class _Routes:
    """Control: each person walks through their waypoints in turn at cruise[t, n] m/s (0: stand),
    staying at the last; a follower keeps `offset` metres to the left (negative: right) of a leader."""

    def __init__(self, routes: list[list], cruise: np.ndarray, leaders: Optional[dict[int, tuple[int, float]]] = None,
                 tau: float = 0.8) -> None:
        k = max(len(r) for r in routes)
        self.points = np.array([list(r) + [r[-1]] * (k - len(r)) for r in routes], float)
        self.last = np.array([len(r) - 1 for r in routes])
        self.index = np.zeros(len(routes), int)
        self.cruise, self.leaders, self.tau = cruise, leaders or {}, tau

    def __call__(self, t: int, pos: np.ndarray, hd: np.ndarray, sp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = np.arange(len(pos))
        reached = np.linalg.norm(self.points[n, self.index] - pos, axis=-1) < 0.8
        self.index = np.where(reached & (self.index < self.last), self.index + 1, self.index)
        goal, cruise = self.points[n, self.index].copy(), self.cruise[t].copy()
        for f, (lead, off) in self.leaders.items():
            c, s = math.cos(hd[lead]), math.sin(hd[lead])
            goal[f] = pos[lead] + off * np.array([-s, c]) + sp[lead] * self.tau * np.array([c, s])
            cruise[f] = 9.0
        return goal, cruise


def _cruise(rng: np.random.Generator, T: int, n: int, lo: float, hi: float, fps: float, stop: float = 0.0,
            stop_s: tuple[float, float] = (1, 4)) -> np.ndarray:
    """float[T, n]: cruise speeds that change every few seconds; some people stop once for a while."""
    base = rng.uniform(lo, hi, n)
    out = base * _keys(rng, T, (2 * fps, 5 * fps), lambda k: rng.uniform(0.75, 1.25, (k, n)))
    for i in np.flatnonzero(rng.random(n) < stop):
        t0 = rng.integers(0, max(T - 1, 1))
        out[t0:t0 + int(rng.uniform(*stop_s) * fps), i] = 0.0
    return out


def _motion(rng: np.random.Generator, pos: np.ndarray, yaw: np.ndarray, speed: np.ndarray, fps: float,
            **kw) -> _Motion:
    """A _Motion with relaxed defaults for what is not given: glances around, loosely curled fingers."""
    T, n = yaw.shape
    head = _keys(rng, T, (1 * fps, 4 * fps), lambda k: rng.normal(0, 1, (k, n, 2)) * [0.4, 0.1])
    d = dict(head_yaw=head[..., 0], head_pitch=0.08 + head[..., 1],
             curl=_keys(rng, T, (fps, 3 * fps), lambda k: rng.uniform(0.2, 0.6, (k, n, 2, 5))),
             spread=np.zeros((T, n, 2)), pronation=rng.normal(0, 0.2, (1, n, 2)).repeat(T, 0),
             lift=np.zeros((T, n, 2)), mouth=np.zeros((T, n)))
    d.update(kw)
    return _Motion(pos, yaw, speed, **d)


# ------------------------------------------------------------------------------------ poses

def _pose(m: _Motion, b: _Body, dt: np.ndarray, phase0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World joints: body [T, N, 13, 3], hands [T, N, 2, 21, 3], face [T, N, 84, 3].

    Gait: the phase advances at a cadence that grows with speed (and is slower for long legs); the
    hip swing gives a stride of speed / cadence; knees bend most while the leg swings forward; the
    pelvis rests on the lower ankle; runners lean, bend their knees and elbows more. Arms swing
    against the legs, or reach for `m.reach` by two-link inverse kinematics (elbows down and out)."""
    T, n = m.yaw.shape
    P = lambda x: x[None, :]  # noqa: E731 (per-person constant over time)
    leg = b.thigh + b.shin + b.ankle
    v = m.speed
    cad = np.where(v < 2.2, 0.55 + 0.35 * v, 1.32 + 0.06 * (v - 2.2)) * np.sqrt(0.85 / P(leg))  # strides per second
    phase = P(phase0) + np.cumsum(2 * np.pi * cad * dt[:, None], 0)
    amp = np.arcsin(np.clip(v / (4 * cad * P(leg)), 0, 0.8))  # hip swing
    run = np.clip((v - 1.9) / 1.2, 0, 1)
    c, s = np.cos(m.yaw), np.sin(m.yaw)
    z = np.zeros_like(c)
    f, l, u = np.stack([c, s, z], -1), np.stack([-s, c, z], -1), np.stack([z, z, z + 1], -1)
    J = np.zeros((T, n, 13, 3))
    for side, o, hip, knee, ankle in ((-1, 0.0, 4, 2, 0), (1, np.pi, 5, 3, 1)):
        alpha = amp * np.sin(phase + o)
        kappa = 0.06 + 0.12 * run + (1.2 * amp + 0.9 * run) * np.clip(np.cos(phase + o), 0, None) ** 1.5
        J[:, :, hip] = _v(side * P(b.hip_w), l)
        J[:, :, knee] = J[:, :, hip] + _v(P(b.thigh) * np.sin(alpha), f) - _v(P(b.thigh) * np.cos(alpha), u)
        J[:, :, ankle] = (J[:, :, knee] + _v(P(b.shin) * np.sin(alpha - kappa), f)
                          - _v(P(b.shin) * np.cos(alpha - kappa), u))
    lift = P(b.ankle) - np.minimum(J[:, :, 0, 2], J[:, :, 1, 2])  # the lower foot on the ground
    sway = 0.05 * amp * P(b.stature) * np.sin(phase)
    pelvis = np.concatenate([m.pos, lift[..., None]], -1) + _v(sway, l)
    J[:, :, :6] += pelvis[:, :, None]
    lean = P(b.lean) + 0.04 + 0.15 * run + 0.1 * amp
    up = _v(np.sin(lean), f) + _v(np.cos(lean), u)
    neck = pelvis + _v(P(b.torso), up)
    twist = 0.3 * amp * np.sin(phase)
    l2 = _v(np.cos(twist), l) - _v(np.sin(twist), f)
    hp = 0.5 * lean + 0.3 * m.head_pitch
    J[:, :, 12] = neck + _v(P(b.neck) * np.sin(hp), f) + _v(P(b.neck) * np.cos(hp), u)
    hands = np.zeros((T, n, 2, 21, 3))
    for k, (side, o, sh, el, wr) in enumerate(((1, np.pi, 11, 9, 7), (-1, 0.0, 10, 8, 6))):  # left, right
        J[:, :, sh] = neck + _v(side * P(b.shoulder_w), l2)
        beta = -(0.75 + 0.5 * run) * amp * np.sin(phase + o)
        eps = 0.25 + 0.3 * amp + 1.2 * run
        ua = _unit(_v(np.sin(beta), f) - _v(np.cos(beta), u) + 0.12 * side * l)
        elbow = J[:, :, sh] + _v(P(b.upper), ua)
        fa = _unit(_v(np.sin(beta + eps), f) - _v(np.cos(beta + eps), u) + 0.05 * side * l)
        wrist = elbow + _v(P(b.fore), fa)
        if m.reach is not None:  # two-link inverse kinematics towards the wrist goal
            g = m.reach[:, :, k]
            goal = pelvis + _v(g[..., 0], f) + _v(g[..., 1], l) + _v(g[..., 2], u)
            a, bb = P(b.upper), P(b.fore)
            w = goal - J[:, :, sh]
            dist = np.clip(np.linalg.norm(w, axis=-1), np.abs(a - bb) + 1e-3, a + bb - 1e-3)
            w = _unit(w)
            x = (a * a - bb * bb + dist * dist) / (2 * dist)
            pole = -u + 0.6 * side * l - 0.25 * f
            pole = _unit(pole - _v((pole * w).sum(-1), w))
            elbow = J[:, :, sh] + _v(x, w) + _v(np.sqrt(np.maximum(a * a - x * x, 0)), pole)
            wrist = J[:, :, sh] + _v(dist, w)
        J[:, :, el], J[:, :, wr] = elbow, wrist
        d = _unit(_unit(wrist - elbow) + _v(m.lift[:, :, k], u))
        n0 = -side * l
        n0 = _unit(n0 - _v((n0 * d).sum(-1), d))
        rho = m.pronation[:, :, k]
        palm = _v(np.cos(rho), n0) + _v(np.sin(rho), np.cross(d, n0))
        hands[:, :, k] = _hand(wrist, d, palm, side, P(b.hand), m.curl[:, :, k], m.spread[:, :, k])
    yaw_h, pitch_h = m.yaw + m.head_yaw, m.head_pitch
    F = np.stack([np.cos(pitch_h) * np.cos(yaw_h), np.cos(pitch_h) * np.sin(yaw_h), -np.sin(pitch_h)], -1)
    L = np.stack([-np.sin(yaw_h), np.cos(yaw_h), 0 * yaw_h], -1)
    local = (FACE_BASE + m.mouth[..., None, None] * FACE_OPEN) * P(b.face)[..., None, None]
    face = J[:, :, 12, None] + np.einsum("tnkc,tncd->tnkd", local, np.stack([F, L, np.cross(F, L)], -2))
    return J, hands, face


def _hand(wrist: np.ndarray, d: np.ndarray, palm: np.ndarray, side: int, size: np.ndarray, curl: np.ndarray,
          spread: np.ndarray) -> np.ndarray:
    """float[..., 21, 3]: fingers along d, curling towards the palm normal, thumb on the right side."""
    across = side * np.cross(palm, d)  # towards the thumb
    out = np.zeros(wrist.shape[:-1] + (21, 3))
    out[..., 0, :] = wrist
    for fi in range(5):
        along, acr, sp, *rest = FINGERS[fi]
        base = wrist + _v(size, along * d + acr * across)
        if fi == 0:
            dir0 = _unit(0.55 * d + 0.75 * across + 0.3 * palm)
            bend = _unit(palm - _v((palm * dir0).sum(-1), dir0))
        else:
            ang = sp * (1 + 1.5 * spread)
            dir0, bend = _v(np.cos(ang), d) + _v(np.sin(ang), across), palm
        out[..., fi + 1, :] = p = base
        theta = 0.0
        for k in range(3):
            theta = theta + rest[3 + k] * curl[..., fi]
            p = p + _v(size * rest[k], _v(np.cos(theta), dir0) + _v(np.sin(theta), bend))
            out[..., 3 * fi + 6 + k, :] = p
    return out


# ------------------------------------------------------------------------------------ kinds

def _size(rng: np.random.Generator, options: list[tuple[int, int]]) -> tuple[int, int]:
    return options[rng.integers(len(options))]


def _street(rng: np.random.Generator, T: int) -> _Setup:
    fps = float(rng.choice([25.0, 30.0]))
    h, hfov = rng.uniform(4, 9), rng.uniform(50, 70)
    cam = _camera(T, _size(rng, [(1920, 1080), (1280, 720)]), hfov, (0, 0, h), np.pi / 2,
                  math.atan(h / rng.uniform(14, 22)))
    n = int(rng.integers(4, 11))
    W, H = cam.width, cam.height
    anchors = cam.ground(0, rng.uniform(0.1, 0.9, n) * W, rng.uniform(0.5, 0.95, n) * H)
    heading = rng.uniform(-np.pi, np.pi, n)
    dirs = np.stack([np.cos(heading), np.sin(heading)], -1)
    start = anchors - dirs * rng.uniform(2, 12, (n, 1))
    side = np.stack([-dirs[:, 1], dirs[:, 0]], -1) * rng.normal(0, 2, (n, 1))
    routes = [[a + s, a + 30 * dd] for a, s, dd in zip(anchors, side, dirs)]
    cruise = _cruise(rng, T, n, 0.9, 1.6, fps, stop=0.35)
    leaders = {}
    for p in range(int(rng.integers(1, 3)) if n >= 5 else 1):  # pairs walking side by side
        lead, fol = 2 * p, 2 * p + 1
        off = 0.5 * rng.choice([-1.0, 1.0])
        leaders[fol] = (lead, off)
        start[fol] = start[lead] + off * np.array([-dirs[lead, 1], dirs[lead, 0]])
    dt = np.full(T, 1 / fps)
    pos, hd, sp = _steer(start, heading, dt, _Routes(routes, cruise, leaders), accel=1.2, turn=2.5)
    fig = None
    if rng.random() < 0.5:  # a mannequin in a shop window
        g = cam.ground(0, np.array([rng.choice([0.12, 0.88]) * W]), np.array([rng.uniform(0.45, 0.7) * H]))[0]
        fig = (g[0], g[1], -np.pi / 2 + rng.normal(0, 0.3), rng.uniform(1.6, 1.9))
    return _Setup(fps, dt, cam, _Body(rng, n, 0.12), _motion(rng, pos, hd, sp, fps), _Detector(rng), figure=fig)


def _doorway(rng: np.random.Generator, T: int) -> _Setup:
    fps = float(rng.choice([25.0, 30.0]))
    h, hfov, wall = rng.uniform(2.4, 3.5), rng.uniform(55, 70), rng.uniform(9, 13)
    cam = _camera(T, _size(rng, [(1920, 1080), (1280, 720)]), hfov, (0, 0, h), np.pi / 2, math.atan((h - 1.0) / wall))
    half = lambda y: y * math.tan(math.radians(hfov) / 2)  # noqa: E731 (half-width of the view at depth y)
    doors = np.sort(rng.uniform(-0.55, 0.55, int(rng.integers(1, 3))) * half(wall))
    if len(doors) == 2 and doors[1] - doors[0] < 2.5:
        doors = doors[:1]
    dw, dh = rng.uniform(1.0, 1.5), rng.uniform(2.1, 2.4)
    panels, x = [], -60.0
    for d in doors:
        panels += [(x, wall, d - dw / 2, wall, 0, 5), (d - dw / 2, wall, d + dw / 2, wall, dh, 5)]
        x = d + dw / 2
    panels.append((x, wall, 60.0, wall, 0, 5))
    y_o = rng.uniform(0.4, 0.65) * wall
    x_o = rng.uniform(-0.4, 0.4) * half(y_o)
    w_o, z_o = (rng.uniform(0.4, 0.9), (0, 4)) if rng.random() < 0.5 else (rng.uniform(0.9, 1.4), (0.1, 2.2))
    panels.append((x_o - w_o / 2, y_o, x_o + w_o / 2, y_o, *z_o))  # a pillar or an advertising panel
    n = int(rng.integers(4, 9))
    routes, start, delay = [], np.zeros((n, 2)), rng.uniform(0, 0.6, n) * T
    for i in range(n):
        role, d = rng.integers(3), doors[rng.integers(len(doors))]
        y = rng.uniform(4, wall - 1.5)
        edge = np.array([rng.choice([-1, 1]) * (half(y) + 2.5), y])
        if role == 0:  # out of the door, out of the view
            start[i], routes_i = (d, wall + 2.5), [(d, wall + 0.8), (d, wall - 1.5), edge]
        elif role == 1:  # in from a border, in through the door
            start[i], routes_i = edge, [(d, wall - 1.5), (d, wall + 0.6), (d, wall + 4)]
        else:  # across the view, behind the occluder
            yp = y_o + rng.uniform(0.8, 3.0)
            s = rng.choice([-1, 1])
            start[i], routes_i = (s * (half(yp) + 2), yp), [(x_o + rng.normal(0, 0.5), yp), (-s * (half(yp) + 3), yp)]
        routes.append(routes_i)
    cruise = _cruise(rng, T, n, 1.0, 1.6, fps, stop=0.15, stop_s=(0.5, 2))
    cruise[np.arange(T)[:, None] < delay[None]] = 0.0  # waiting for their turn
    dt = np.full(T, 1 / fps)
    pos, hd, sp = _steer(start, np.zeros(n), dt, _Routes(routes, cruise), accel=1.2, turn=3.0)
    fig = (float(rng.uniform(-0.6, 0.6) * half(wall)), wall - 0.05, -np.pi / 2, rng.uniform(1.0, 1.8)) \
        if rng.random() < 0.6 else None  # a poster on the wall
    return _Setup(fps, dt, cam, _Body(rng, n, 0.12), _motion(rng, pos, hd, sp, fps), _Detector(rng),
                  panels=panels, dark=(0.0, 1.0, wall + 0.3), figure=fig)


class _Game:
    """Control of players: cuts of 90-180 degrees, sudden stops, a ball passed around, markers that
    close in to 0.25 m of an opponent for up to a second."""

    def __init__(self, rng: np.random.Generator, n: int, T: int, fps: float, court: tuple[float, float]) -> None:
        self.rng, self.n, self.fps, self.court = rng, n, fps, np.array(court)
        self.team = np.arange(n) % 2
        self.goal = rng.uniform([1, 1], self.court - 1, (n, 2))
        self.cruise = rng.uniform(3, 6.5, n)
        self.next_cut = rng.uniform(0, 2, n) * fps
        self.stop_until = np.zeros(n)
        self.holder, self.flight = int(rng.integers(n)), None
        self.next_pass = rng.uniform(0.8, 2.5) * fps
        self.ball = np.zeros((T, 2))
        self.contacts = []  # [player, marker (the nearest opponent, chosen when it starts), start, end, side]
        for _ in range(int(rng.integers(1, 4))):
            t0 = rng.uniform(0.15, 0.85) * T
            self.contacts.append([int(rng.integers(n)), -1, t0 - 2.5 * fps, t0 + rng.uniform(0.4, 1.0) * fps,
                                  0.25 * rng.choice([-1, 1])])

    def __call__(self, t: int, pos: np.ndarray, hd: np.ndarray, sp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng, fps = self.rng, self.fps
        if self.flight is None:
            self.ball[t] = pos[self.holder]
            if t >= self.next_pass:
                mates = np.flatnonzero(np.arange(self.n) != self.holder)
                self.flight = (pos[self.holder].copy(), int(rng.choice(mates)), 0.0)
        if self.flight is not None:
            a, to, k = self.flight
            k += 12.0 / fps / max(np.linalg.norm(pos[to] - a), 1.0)
            self.ball[t] = a + min(k, 1) * (pos[to] - a)
            self.flight = (a, to, k)
            if k >= 1:
                self.holder, self.flight, self.next_pass = to, None, t + rng.uniform(0.8, 2.5) * fps
        for i in np.flatnonzero(t >= self.next_cut):
            turn = hd[i] + rng.choice([-1, 1]) * rng.uniform(np.pi / 2, np.pi)
            self.goal[i] = np.clip(pos[i] + rng.uniform(3, 8) * np.array([np.cos(turn), np.sin(turn)]), 0.5,
                                   self.court - 0.5)
            self.cruise[i] = rng.uniform(3, 7)
            self.next_cut[i] = t + rng.uniform(0.8, 2.5) * fps
            if rng.random() < 0.3:
                self.stop_until[i] = t + rng.uniform(0.3, 1.0) * fps
        goal, cruise = self.goal.copy(), np.where(t < self.stop_until, 0.0, self.cruise)
        if self.flight is None:  # the holder dribbles towards the other end
            goal[self.holder] = (self.court[0] - 1 if self.team[self.holder] == 0 else 1, self.goal[self.holder, 1])
        for contact in self.contacts:
            i, j, t0, t1, off = contact
            if t0 <= t < t1:
                if j < 0:
                    rival = np.flatnonzero(self.team != self.team[i])
                    contact[1] = j = int(rival[np.linalg.norm(pos[rival] - pos[i], axis=-1).argmin()])
                c, s = math.cos(hd[i]), math.sin(hd[i])
                goal[j] = pos[i] + off * np.array([-s, c]) + sp[i] * 0.8 * np.array([c, s])
                cruise[j], cruise[i] = 9.0, min(cruise[i], 2.5)
                self.next_cut[i] = max(self.next_cut[i], t1)
        return goal, cruise


def _team_sport(rng: np.random.Generator, T: int) -> _Setup:
    fps = float(rng.choice([25.0, 50.0]))
    court = (28.0, 15.0) if rng.random() < 0.5 else (40.0, 20.0)
    n = int(rng.integers(6, 13))
    game = _Game(rng, n, T, fps, court)
    dt = np.full(T, 1 / fps)
    pos, hd, sp = _steer(game.goal.copy(), rng.uniform(-np.pi, np.pi, n), dt, game, accel=7.0, turn=9.0, tau=0.5)
    yaw = _turn_to(hd, sp, pos, game.ball, 1.2, 8 / fps)  # slow players watch the ball
    cam_pos = np.array([court[0] / 2, -rng.uniform(5, 12), rng.uniform(4, 9)])
    look = game.ball.copy()
    for t in range(1, T):  # the operator follows the ball with some lag
        look[t] = look[t - 1] + (game.ball[t] - look[t - 1]) * (1 / fps) / (0.5 + 1 / fps)
    rel = look - cam_pos[:2]
    cam = _camera(T, _size(rng, [(1920, 1080), (1280, 720)]), rng.uniform(40, 60), cam_pos,
                  np.arctan2(rel[:, 1], rel[:, 0]), np.arctan2(cam_pos[2] - 0.8, np.linalg.norm(rel, axis=-1)))
    det = _Detector(rng, swap=(rng.uniform(0.003, 0.008), 3.0), exposure=rng.uniform(0.3, 0.6))
    return _Setup(fps, dt, cam, _Body(rng, n, 0.0, 1.65, 2.0), _motion(rng, pos, yaw, sp, fps), det)


def _signers(rng: np.random.Generator, T: int) -> _Setup:
    fps = float(rng.choice([25.0, 30.0, 50.0]))
    n = 3 if rng.random() < 0.25 else 2
    gap, dist, h = rng.uniform(0.75, 1.0), rng.uniform(2.2, 3.0), rng.uniform(1.15, 1.45)
    hfov = math.degrees(2 * math.atan(((n - 1) / 2 * gap + 0.65) / dist))
    cam = _camera(T, _size(rng, [(1920, 1080), (1280, 720)]), hfov, (0, 0, h), np.pi / 2, math.atan((h - 1.2) / dist))
    body = _Body(rng, n, 0.0)
    base = np.stack([(np.arange(n) - (n - 1) / 2) * gap, np.full(n, dist)], -1)
    pos = base + 0.02 * np.stack([_ar(rng, (T, n), fps), _ar(rng, (T, n), fps)], -1)
    yaw = -np.pi / 2 + rng.normal(0, 0.1, n) + 0.08 * _ar(rng, (T, n), 2 * fps)
    reach, curl, spread, pron, lift = (np.zeros((T, n, 2) + s) for s in ((3,), (5,), (), (), ()))
    for i in range(n):
        sc = body.stature[i] / 1.75

        def goals(k: int) -> np.ndarray:
            g = np.stack([rng.uniform(0.18, 0.42, (k, 2)), rng.uniform(-0.05, 0.32, (k, 2)) * [1, -1],
                          rng.uniform(0.22, 0.72, (k, 2))], -1)  # [k, (left, right), (fwd, left, up)]
            cross = rng.random(k) < 0.15
            g[cross, :, 1] = -g[cross, :, 1] + [-0.08, 0.08]  # each hand past the other
            touch = rng.random(k) < 0.15
            g[touch, 1] = g[touch, 0] - [0, 0.04, 0]  # the hands meet
            rest = rng.random(k) < 0.08
            g[rest] = [[0.12, 0.2, 0.02], [0.12, -0.2, 0.02]]
            return g * sc
        reach[:, i] = _keys(rng, T, (0.18 * fps, 0.45 * fps), goals)
        shapes = lambda k: HANDSHAPES[rng.integers(len(HANDSHAPES), size=(k, 2))]  # noqa: E731
        curl[:, i] = _keys(rng, T, (0.15 * fps, 0.4 * fps), lambda k: shapes(k) + rng.normal(0, 0.06, (k, 2, 5)))
        spread[:, i] = _keys(rng, T, (0.2 * fps, 0.5 * fps), lambda k: rng.uniform(0, 1, (k, 2)))
        pron[:, i] = _keys(rng, T, (0.2 * fps, 0.5 * fps), lambda k: rng.uniform(-1.8, 1.2, (k, 2)))
        lift[:, i] = _keys(rng, T, (0.2 * fps, 0.5 * fps), lambda k: rng.uniform(0, 1.2, (k, 2)))
    mouth = np.clip(_keys(rng, T, (0.1 * fps, 0.3 * fps), lambda k: rng.uniform(-0.5, 1, (k, n))), 0, 1)
    head = _keys(rng, T, (0.4 * fps, 1.5 * fps), lambda k: rng.normal(0, 1, (k, n, 2)) * [0.2, 0.1])
    m = _motion(rng, pos, yaw, np.zeros((T, n)), fps, reach=reach, curl=np.clip(curl, 0, 1), spread=spread,
                pronation=pron, lift=lift, mouth=mouth, head_yaw=head[..., 0], head_pitch=head[..., 1])
    det = _Detector(rng, faces_always=True, hand_miss=rng.uniform(0.03, 0.08), handedness=rng.uniform(0.02, 0.05),
                    exposure=rng.uniform(0.3, 0.6))
    return _Setup(fps, np.full(T, 1 / fps), cam, body, m, det)


def _crowd(rng: np.random.Generator, T: int) -> _Setup:
    fps = float(rng.choice([25.0, 30.0]))
    march = rng.random() < 0.4
    hfov = rng.uniform(60, 75)
    f = 960 / math.tan(math.radians(hfov) / 2)
    near, far = f * 1.75 / 150, f * 1.7 / 42  # where people are 150 and 42 px tall
    h = rng.uniform(7, 12) if march else rng.uniform(6, 12)
    cam = _camera(T, (1920, 1080), hfov, (0, 0, h), np.pi / 2, (math.atan(h / near) + math.atan(h / far)) / 2)
    n = int(rng.integers(50, 201))
    dt = np.full(T, 1 / fps)
    if march:  # a street full of marchers walking towards or away from the camera
        width = rng.uniform(8, 14)
        sign = rng.choice([-1.0, 1.0])
        cols, gap, speed = max(int(width / rng.uniform(1.1, 1.6)), 1), rng.uniform(1.4, 2.2), rng.uniform(0.8, 1.1)
        length, travel = math.ceil(n / cols) * gap, speed * T / fps  # so that they stay small
        y0 = near + (travel if sign < 0 else 0)
        y = y0 + rng.uniform(0, max(far - y0 - length - (0 if sign < 0 else travel), 0)) + np.arange(n) // cols * gap
        x = (np.arange(n) % cols + 0.5) / cols * width - width / 2
        pos0 = np.stack([x, y], -1) + rng.normal(0, 0.3, (n, 2))
        routes = [[p + [rng.normal(0, 1), sign * 100]] for p in pos0]
        cruise = speed * _keys(rng, T, (fps, 3 * fps), lambda k: rng.uniform(0.9, 1.1, (k, n)))
        heading = np.full(n, sign * np.pi / 2)
    else:  # a station concourse: people crossing between random points, some waiting
        r = np.sqrt(rng.uniform(near ** 2, far ** 2, (n, 4)))  # uniform over the floor's area
        x = rng.uniform(-1.1, 1.1, (n, 4)) * r * math.tan(math.radians(hfov) / 2)
        pts = np.stack([x, r], -1)
        pos0 = pts[:, 0]
        routes = [list(p[1:]) for p in pts]
        cruise = _cruise(rng, T, n, 0.9, 1.6, fps, stop=0.2) * (rng.random(n) > 0.25)
        heading = rng.uniform(-np.pi, np.pi, n)
    pos, hd, sp = _steer(pos0, heading, dt, _Routes(routes, cruise), accel=1.0, turn=2.5)
    fig = (float(rng.uniform(-0.3, 0.3) * far), far * 0.6, -np.pi / 2, 1.8) if rng.random() < 0.5 else None
    det = _Detector(rng, junk=rng.uniform(0.03, 0.08), min_score=rng.uniform(0.08, 0.15))
    return _Setup(fps, dt, cam, _Body(rng, n, 0.1), _motion(rng, pos, hd, sp, fps), det, figure=fig)


def _phone(rng: np.random.Generator, T: int) -> _Setup:
    fps = float(rng.choice([30.0, 30.0, 60.0, 24.0]))
    size = _size(rng, [(1080, 1920), (720, 1280)])
    hfov = rng.uniform(45, 62)
    n = int(rng.integers(1, 5))
    tanh = math.tan(math.radians(hfov) / 2)
    y = rng.uniform(1.4, 4.5, (n, 3))
    pts = np.stack([rng.uniform(-0.7, 0.7, (n, 3)) * y * tanh, y], -1)
    leave = rng.random(n) < 0.35  # some walk out of the frame
    pts[leave, 2, 0] = rng.choice([-1, 1], leave.sum()) * (pts[leave, 2, 1] * tanh + 1.0)
    cruise = _cruise(rng, T, n, 0.4, 1.2, fps, stop=0.5)
    dt = np.full(T, 1 / fps)
    pos, hd, sp = _steer(pts[:, 0], rng.uniform(-np.pi, np.pi, n), dt, _Routes(list(pts[:, 1:]), cruise),
                         accel=1.0, turn=2.0)
    centre = pos.mean(1)
    aim = np.arctan2(centre[:, 1], centre[:, 0])
    for t in range(1, T):  # the operator keeps the people roughly in the middle
        aim[t] = aim[t - 1] + _wrap(math.atan2(centre[t, 1], centre[t, 0]) - aim[t - 1]) * (1 / fps) / 1.5
    shake = lambda amp: math.radians(amp) * (_ar(rng, (T,), 0.05 * fps) + 0.7 * _ar(rng, (T,), 0.6 * fps))  # noqa
    zoom = 1 + rng.uniform(-0.15, 0.5) * _keys(rng, T, (T / 2, T), lambda k: rng.uniform(0, 1, k))
    h = rng.uniform(1.35, 1.6)
    cam_pos = np.array([0, 0, h]) + 0.015 * np.stack([_ar(rng, (T,), fps) for _ in range(3)], -1)
    cam = _camera(T, size, hfov, cam_pos, aim + shake(0.8), math.radians(rng.uniform(-3, 8)) + shake(0.6),
                  shake(1.2), zoom)
    yaw = _turn_to(hd, sp, pos, cam_pos[:, :2], 0.3, 3 / fps)  # standing, they face the phone
    det = _Detector(rng, exposure=rng.uniform(0.3, 0.7))
    return _Setup(fps, dt, cam, _Body(rng, n, 0.15), _motion(rng, pos, yaw, sp, fps), det)


def _low_fps(rng: np.random.Generator, T: int) -> _Setup:
    fps = float(rng.choice([8.0, 10.0, 12.0, 12.5, 15.0]))
    dt, time_s = np.full(T, 1 / fps), None
    if rng.random() < 0.4:  # a variable frame rate, with dropped frames
        dt = dt * rng.uniform(0.8, 1.2, T) * np.where(rng.random(T) < 0.04, 2.0, 1.0)
        time_s = np.cumsum(dt) - dt[0]
    h, hfov = rng.uniform(1.6, 3.5), rng.uniform(55, 75)
    cam = _camera(T, _size(rng, [(1280, 720), (960, 540), (1920, 1080)]), hfov, (0, 0, h), np.pi / 2,
                  math.atan((h - 1.0) / rng.uniform(9, 14)))
    n = int(rng.integers(3, 9))
    tanh = math.tan(math.radians(hfov) / 2)
    runner = rng.random(n) < 0.45
    y = rng.uniform(5, 20, (n, 2))
    s = rng.choice([-1.0, 1.0], n)
    start = np.stack([s * (y[:, 0] * tanh * rng.uniform(0.3, 1.3, n)), y[:, 0]], -1)
    routes = [[(-si * (yi[1] * tanh + 2), yi[1]), (si * (yi[0] * tanh + 2), rng.uniform(5, 20))]
              for si, yi in zip(s, y)]
    cruise = np.where(runner, _cruise(rng, T, n, 2.8, 5.5, fps), _cruise(rng, T, n, 1.0, 1.7, fps, stop=0.2))
    pos, hd, sp = _steer(start, np.zeros(n), dt, _Routes(routes, cruise), accel=4.0, turn=4.0)
    det = _Detector(rng, exposure=rng.uniform(0.3, 0.6))
    return _Setup(fps, dt, cam, _Body(rng, n, 0.1), _motion(rng, pos, hd, sp, fps), det, time_s=time_s)


BUILDERS: dict[str, Callable[[np.random.Generator, int], _Setup]] = dict(zip(
    FOURTH_KINDS, (_street, _doorway, _team_sport, _signers, _crowd, _phone, _low_fps)))


# ------------------------------------------------------------------------------------ seeing

def _behind_panels(cam: _Camera, p: np.ndarray, panels: list) -> np.ndarray:
    """bool[p.shape[:-1]]: points whose ray to the camera crosses a panel."""
    q = p.reshape(len(p), -1, 3)
    c = cam.pos[:, None]
    d = q - c
    out = np.zeros(q.shape[:2], bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for x0, y0, x1, y1, z0, z1 in panels:
            e = np.array([x1 - x0, y1 - y0])
            nx, ny = -e[1], e[0]
            s = ((x0 - c[..., 0]) * nx + (y0 - c[..., 1]) * ny) / (d[..., 0] * nx + d[..., 1] * ny)
            hit = c + s[..., None] * d
            w = ((hit[..., 0] - x0) * e[0] + (hit[..., 1] - y0) * e[1]) / (e @ e)
            out |= (s > 0) & (s < 1) & (w >= 0) & (w <= 1) & (hit[..., 2] >= z0) & (hit[..., 2] <= z1)
    return out.reshape(p.shape[:-1])


def _box(uv: np.ndarray) -> np.ndarray:
    """float[..., 4]: the tight box of points [..., K, 2] grown by 10 % per side, as the detector's rules use."""
    lo, hi = uv.min(-2), uv.max(-2)
    return np.concatenate([lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)], -1)


def _extent(uv: np.ndarray) -> np.ndarray:
    """float[...]: the longest side of `_box(uv)`: a hand's or face's size in pixels."""
    return 1.2 * np.ptp(uv, axis=-2).max(-1)


def _blurred(rng: np.random.Generator, sigma: np.ndarray, vel: np.ndarray, exposure: float) -> np.ndarray:
    """Heavy-tailed 2D noise of scale sigma [..., K] (K points), plus motion blur: a displacement
    along each point's image velocity vel [..., K, 2], mostly shared by the K points."""
    sigma = sigma * rng.lognormal(0, 0.35, sigma.shape)
    noise = _v(sigma, rng.standard_normal(sigma.shape + (2,)))
    along = 0.8 * rng.standard_normal(sigma.shape[:-1] + (1,)) + 0.4 * rng.standard_normal(sigma.shape)
    return noise + _v(0.3 * exposure * along, vel)


def _part_noise(rng: np.random.Generator, p: np.ndarray, scale: np.ndarray, weights: np.ndarray, vel: np.ndarray,
                exposure: float, white: float) -> np.ndarray:
    """A hand's or face's detected 2D points p [..., K, 2]: a random affine warp about their centre
    (shift and distortion of the whole part, of the size `scale` [...]) plus smaller independent
    heavy-tailed noise per point, and motion blur."""
    rel = scale / np.maximum(np.ptp(p, axis=-2).max(-1), 1.0)
    warp = np.eye(2) + 0.6 * rel[..., None, None] * rng.standard_normal(rel.shape + (2, 2))
    c = p.mean(-2, keepdims=True)
    shift = _v(0.6 * scale, rng.standard_normal(scale.shape + (2,)))[..., None, :]
    warped = c + np.einsum("...ij,...kj->...ki", warp, p - c) + shift
    return warped + _blurred(rng, white * scale[..., None] * weights, vel, exposure)


def _link(b2: np.ndarray, h2: np.ndarray, f2: np.ndarray, rng: np.random.Generator, unlink: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body -> (left hand, right hand, face) indexes by the detector's rule (SPEC section 6)."""
    nb = len(b2)
    links = [np.full(nb, NO_LINK, np.int64) for _ in range(3)]
    if nb and len(h2):
        size = _extent(h2)
        for k, joint in enumerate((7, 6)):
            dist = np.linalg.norm(b2[:, joint, None] - h2[None, :, 0], axis=-1)
            j = dist.argmin(1)
            ok = (dist.argmin(0)[j] == np.arange(nb)) & (dist[np.arange(nb), j] <= size[j])
            links[k] = np.where(ok, j, NO_LINK)
    if nb and len(f2):
        box = _box(f2)
        head = b2[:, 12]
        inside = ((head[:, None, 0] >= box[None, :, 0]) & (head[:, None, 0] <= box[None, :, 2])
                  & (head[:, None, 1] >= box[None, :, 1]) & (head[:, None, 1] <= box[None, :, 3]))
        ok = (inside.sum(1) == 1) & (inside.sum(0)[inside.argmax(1)] == 1)
        links[2] = np.where(ok, inside.argmax(1), NO_LINK)
    for k in range(3):
        links[k][rng.random(nb) < unlink] = NO_LINK
    return links[0], links[1], links[2]


@dataclass
class _Seen:
    """The truth as the camera sees it, over [T, N, ...]: poses in the detector's frames, the body
    in camera coordinates (metres), which joints are in the image or hidden, and who is visible."""
    body2d: np.ndarray
    body3d: np.ndarray
    hands2d: np.ndarray
    hands3d: np.ndarray
    face2d: np.ndarray
    face3d: np.ndarray
    world: np.ndarray
    body_c: np.ndarray
    inside: np.ndarray
    hidden: np.ndarray
    visible: np.ndarray
    hpx: np.ndarray  # the person's height in pixels at their distance


def _see(s: _Setup, rng: np.random.Generator) -> _Seen:
    cam, T, n = s.camera, len(s.dt), s.body.stature.size
    world, hands_w, face_w = _pose(s.motion, s.body, s.dt, rng.uniform(0, 2 * np.pi, n))
    body_c, hands_c, face_c = cam.to_camera(world), cam.to_camera(hands_w), cam.to_camera(face_w)
    body2d = cam.project(body_c)
    pelvis = body_c[:, :, 4:6].mean(2)
    depth = pelvis[..., 2]
    hpx = cam.focal[:, None] * s.body.stature[None] / np.maximum(depth, 0.3)
    inside = (body_c[..., 2] > 0.3) & (body2d >= 0).all(-1) & (body2d < [cam.width, cam.height]).all(-1)
    hidden = _behind_panels(cam, world, s.panels)
    if s.dark is not None:
        a, b, c = s.dark
        hidden |= a * world[..., 0] + b * world[..., 1] > c
    boxes = np.concatenate([body2d.min(2), body2d.max(2)], -1) + _v(hpx, np.array([-0.05, -0.08, 0.05, 0.02]))
    boxes[depth <= 0.3] = np.nan
    for t in range(T):  # inside the box of someone at least 25 cm closer
        bx, u, v = boxes[t], body2d[t, ..., 0, None], body2d[t, ..., 1, None]
        inb = (u >= bx[:, 0]) & (u <= bx[:, 2]) & (v >= bx[:, 1]) & (v <= bx[:, 3])  # [N, 13, N]
        hidden[t] |= (inb & (depth[t][None, :] < depth[t][:, None] - 0.25)[:, None]).any(-1)
    frac = (inside & ~hidden).mean(-1)
    visible = np.zeros((T, n), bool)
    state = frac[0] >= 0.4
    for t in range(T):  # hysteresis: no flicker at the threshold
        state = np.where(state, frac[t] >= 0.33, frac[t] >= 0.47)
        visible[t] = state
    centred = lambda p: p - p.mean(-2, keepdims=True)  # noqa: E731 (hands and faces: camera-aligned, centred)
    return _Seen(body2d, (body_c - pelvis[:, :, None]) * FLIP, cam.project(hands_c), centred(hands_c),
                 cam.project(face_c), centred(face_c), world, body_c, inside, hidden, visible, hpx)


@dataclass
class _Dets:
    """One part's detections from all frames, flat: frame index, score, 2D and 3D poses, is_right."""
    frame: np.ndarray
    score: np.ndarray
    p2: np.ndarray
    p3: np.ndarray
    right: Optional[np.ndarray] = None

    @staticmethod
    def join(parts: list["_Dets"]) -> "_Dets":
        """All of `parts`, sorted by frame, then by decreasing score."""
        cat = {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("frame", "score", "p2", "p3")}
        if parts[0].right is not None:
            cat["right"] = np.concatenate([p.right for p in parts])
        order = np.lexsort((-cat["score"], cat["frame"]))
        return _Dets(**{k: v[order] for k, v in cat.items()})

    def at(self, T: int) -> np.ndarray:
        """int[T + 1]: frame t's detections are rows at(T)[t]:at(T)[t + 1]."""
        return np.searchsorted(self.frame, np.arange(T + 1))


def _body_dets(s: _Setup, v: _Seen, rng: np.random.Generator) -> _Dets:
    """Detected bodies of the people, with their duplicates."""
    det, (T, n), W, H = s.detector, v.visible.shape, s.camera.width, s.camera.height
    occ = (v.hidden & v.inside).sum(-1) / np.maximum(v.inside.sum(-1), 1)
    vel = np.diff(v.body2d, axis=0, prepend=v.body2d[:1])
    blur = det.exposure * np.linalg.norm(vel, axis=-1).mean(-1) / v.hpx
    q = (rng.uniform(*det.quality, n)[None] + np.clip(0.8 * np.log(v.hpx / 150), -1.5, 0.5) - 3.5 * occ
         - 2.5 * (1 - v.inside.mean(-1)) - 6 * blur + 0.35 * _ar(rng, (T, n), 5))
    score = np.clip(expit(q), 0.01, 0.999)
    found = v.visible & ~_runs(rng, np.full((T, n), det.miss[0]), det.miss[1]) & (score >= det.min_score)
    to_cam = s.camera.pos[:, None, :2] - s.motion.pos
    facing = ((np.cos(s.motion.yaw) * to_cam[..., 0] + np.sin(s.motion.yaw) * to_cam[..., 1])
              / np.maximum(np.linalg.norm(to_cam, axis=-1), 1e-6))
    swapped = _runs(rng, det.swap[0] * (1 + 3 * (1 - np.abs(facing))), det.swap[1])  # likelier in profile
    drift = _v(0.35 * det.noise2d * v.hpx, np.stack([_ar(rng, (T, n), 6), _ar(rng, (T, n), 6)], -1))
    drift3 = 0.6 * det.noise3d * _ar(rng, (T, n, 13, 3), 2)
    size3 = (1 + rng.normal(0, det.scale3d, n)) * (1.7 / s.body.stature) ** 0.3  # children look bigger
    stretch = 1 + rng.normal(0, det.depth3d, n)
    bias3 = rng.normal(0, det.bias3d, (n, 13, 3))
    t, i = np.nonzero(found)
    hpx, inside, sc = v.hpx[t, i, None], v.inside[t, i], score[t, i]
    sigma = (det.noise2d * hpx * BODY_NOISE * (1 + 1.5 * v.hidden[t, i]) * (1 + (1 - sc))[:, None]
             * (1 + 15 / hpx) * np.where(inside, 1.0, 2.5))  # worse when hidden, unsure, small or outside
    truth2 = v.body2d[t, i]
    p2 = truth2 + _blurred(rng, sigma, vel[t, i], det.exposure) + drift[t, i, None]
    p2 += det.pull * (np.clip(truth2, 0, [W - 1, H - 1]) - truth2)  # cut by the border: extrapolated, pulled in
    p3 = v.body3d[t, i] * np.stack([np.ones_like(stretch), np.ones_like(stretch), stretch], -1)[i, None]
    p3 = p3 * size3[i, None, None] + bias3[i] + drift3[t, i]
    p3 += det.noise3d * (1 + occ[t, i] + (1 - sc))[:, None, None] * rng.standard_normal(p3.shape)
    wild = np.flatnonzero(rng.random(len(t)) < det.outlier)  # one joint far off
    j = rng.choice(13, len(wild), p=BODY_NOISE / BODY_NOISE.sum())
    ang = rng.uniform(0, 2 * np.pi, len(wild))
    p2[wild, j] += _v(rng.uniform(0.1, 0.3, len(wild)) * hpx[wild, 0], np.stack([np.cos(ang), np.sin(ang)], -1))
    p3[wild, j] += rng.normal(0, 0.15, (len(wild), 3))
    sw = swapped[t, i]
    p2[sw], p3[sw] = p2[sw][:, SWAP_LR], p3[sw][:, SWAP_LR]
    d = np.flatnonzero(rng.random(len(t)) < det.duplicate + 0.05 * occ[t, i])  # a weaker, shifted second body
    centre = p2[d].mean(1, keepdims=True)
    dup2 = (p2[d] - centre) * rng.uniform(0.92, 1.08, (len(d), 1, 1)) + centre
    dup2 += _v(hpx[d], rng.normal(0, 0.05, (len(d), 1, 2)))
    dup3 = p3[d] + rng.normal(0, 0.03, p3[d].shape)
    return _Dets.join([_Dets(t, sc, p2, p3), _Dets(t[d], sc[d] * rng.uniform(0.25, 0.6, len(d)), dup2, dup3)])


def _false_bodies(s: _Setup, v: _Seen, rng: np.random.Generator) -> _Dets:
    """One-frame junk bodies (crumpled figures anywhere) and the static false positive, if any."""
    det, cam, T, n = s.detector, s.camera, len(s.dt), v.visible.shape[1]
    t = np.flatnonzero(rng.random(T) < det.junk)
    shape = v.body3d[t, rng.integers(n, size=len(t))] if n else np.zeros((len(t), 13, 3))
    size = rng.uniform(60, 0.6 * cam.height, (len(t), 1, 1))
    crumpled = -shape[..., :2] + rng.normal(0, 0.12, shape[..., :2].shape)  # un-flipped, metres
    p2 = rng.uniform([0, 0], [cam.width, cam.height], (len(t), 1, 2)) + size / 1.7 * crumpled
    parts = [_Dets(t, rng.uniform(0.05, 0.3, len(t)), p2, shape + rng.normal(0, 0.1, shape.shape))]
    if s.figure is not None:  # posed like anyone else, but never in the truth
        x, y, yaw, stature = s.figure
        fb = _Body(rng, 1)
        fb.stature[:] = stature
        still = np.zeros((T, 1))
        fw = cam.to_camera(_pose(_motion(rng, np.tile([[[x, y]]], (T, 1, 1)), still + yaw, still, s.fps), fb, s.dt,
                                 np.zeros(1))[0])[:, 0]
        f2 = cam.project(fw)
        depth = fw[:, 4:6, 2].mean(-1)
        ok = (((f2 >= 0) & (f2 < [cam.width, cam.height])).all(-1).mean(-1) >= 0.6) & (depth > 0.5)
        t = np.flatnonzero(ok & ~_runs(rng, np.full((T,), 0.03), 4))
        px = cam.focal[t, None, None] * stature / depth[t, None, None]
        f3 = (fw - fw[:, 4:6].mean(1, keepdims=True)) * FLIP
        parts.append(_Dets(t, np.clip(rng.uniform(0.3, 0.65) + 0.05 * _ar(rng, (len(t),), 5), 0.05, 0.99),
                           f2[t] + 0.006 * px * rng.standard_normal((len(t), 13, 2)),
                           f3[t] + rng.normal(0, 0.015, (len(t), 13, 3))))
    return _Dets.join(parts)


def _hand_dets(s: _Setup, v: _Seen, rng: np.random.Generator) -> _Dets:
    """Detected hands: seen when big and sharp enough, not behind the torso; handedness sometimes wrong."""
    det, (T, n), W, H = s.detector, v.visible.shape, s.camera.width, s.camera.height
    size = _extent(v.hands2d)  # [T, N, 2]
    vel = np.diff(v.hands2d, axis=0, prepend=v.hands2d[:1])
    blur = det.exposure * np.linalg.norm(vel[..., 0, :], axis=-1) / np.maximum(size, 1)
    in_image = ((v.hands2d >= 0) & (v.hands2d < [W, H])).all(-1).mean(-1) >= 0.5
    tu, tv = v.body2d[:, :, [4, 5, 10, 11], 0], v.body2d[:, :, [4, 5, 10, 11], 1]
    wr = v.body2d[:, :, [7, 6]]
    behind = ((v.body_c[:, :, [7, 6], 2] > v.body_c[:, :, [4, 5, 10, 11], 2].mean(-1)[..., None] + 0.06)
              & (wr[..., 0] > tu.min(-1)[..., None]) & (wr[..., 0] < tu.max(-1)[..., None])
              & (wr[..., 1] > tv.min(-1)[..., None]) & (wr[..., 1] < tv.max(-1)[..., None]))
    ok = v.visible[..., None] & in_image & ~v.hidden[:, :, [7, 6]] & ~behind & (v.body_c[:, :, [7, 6], 2] > 0.3)
    p = np.clip((size - 12) / 30, 0, 1) * (1 - det.hand_miss) * (1 - np.clip(2 * blur, 0, 0.6))
    score = np.clip(expit(1.2 + 0.8 * np.log(np.maximum(size, 1) / 50) - 2.5 * blur
                             + 0.4 * rng.standard_normal((T, n, 2))), 0.01, 0.999)
    t, i, k = np.nonzero(ok & (rng.random((T, n, 2)) < p) & (score >= 0.1))
    p2 = _part_noise(rng, v.hands2d[t, i, k], det.hand_noise * size[t, i, k] * (1 + 2 * blur[t, i, k]), HAND_NOISE,
                     vel[t, i, k], det.exposure, 0.5)
    p3 = v.hands3d[t, i, k] * rng.uniform(0.85, 1.15, n)[i, None, None] + rng.normal(0, 0.006, (len(t), 21, 3))
    p3 -= p3.mean(1, keepdims=True)
    lateral = np.stack([-np.sin(s.motion.yaw), np.cos(s.motion.yaw)], -1)
    crossed = ((v.world[:, :, 6, :2] - v.world[:, :, 7, :2]) * lateral).sum(-1) > 0  # right wrist left of the left
    wrong = rng.random(len(t)) < det.handedness + 0.15 * crossed[t, i]
    hands = _Dets(t, score[t, i, k], p2, p3, (k == 1) ^ wrong)
    jt = np.flatnonzero(rng.random(T) < det.junk / 2)  # a hand-like blob anywhere
    if n == 0 or not len(t):
        return hands
    src = rng.integers(len(t), size=len(jt))
    blob = (p2[src] - p2[src].mean(1, keepdims=True)) * rng.uniform(0.5, 2, (len(jt), 1, 1))
    blob += rng.uniform([0, 0], [W, H], (len(jt), 1, 2))
    return _Dets.join([hands, _Dets(jt, rng.uniform(0.05, 0.3, len(jt)), blob, p3[src], rng.random(len(jt)) < 0.5)])


def _face_dets(s: _Setup, v: _Seen, rng: np.random.Generator) -> _Dets:
    """Detected faces: seen when big enough and turned towards the camera (signers: always)."""
    det, (T, n) = s.detector, v.visible.shape
    size = _extent(v.face2d)
    m = s.motion
    yaw, pitch = m.yaw + m.head_yaw, m.head_pitch
    fwd = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), -np.sin(pitch)], -1)
    facing = (fwd * _unit(s.camera.pos[:, None] - v.world[:, :, 12])).sum(-1)
    ok = v.visible & v.inside[..., 12] & ~v.hidden[..., 12]
    p = 1.0 if det.faces_always else np.clip((size - 15) / 25, 0, 1) * np.clip((facing + 0.1) / 0.35, 0, 1) * 0.97
    score = np.clip(expit(1.5 + 0.6 * np.log(np.maximum(size, 1) / 80) + 1.5 * (facing - 0.5)
                             + 0.3 * rng.standard_normal((T, n))), 0.05, 0.999)
    t, i = np.nonzero(ok & (rng.random((T, n)) < p) & ((score >= 0.1) | det.faces_always))
    vel = np.diff(v.face2d, axis=0, prepend=v.face2d[:1])[t, i]
    p2 = _part_noise(rng, v.face2d[t, i], det.face_noise * size[t, i], FACE_NOISE, vel, det.exposure, 0.3)
    p3 = v.face3d[t, i] * rng.uniform(0.88, 1.12, n)[i, None, None] + rng.normal(0, 0.003, (len(t), 84, 3))
    return _Dets(t, score[t, i], p2, p3 - p3.mean(1, keepdims=True))


def _render(s: _Setup, rng: np.random.Generator) -> Scene:
    T, W, H = len(s.dt), s.camera.width, s.camera.height
    v = _see(s, rng)
    bodies = _Dets.join([_body_dets(s, v, rng), _false_bodies(s, v, rng)])
    hands, faces = _Dets.join([_hand_dets(s, v, rng)]), _Dets.join([_face_dets(s, v, rng)])
    bs, hs, fs = bodies.at(T), hands.at(T), faces.at(T)
    results: list[Result] = []
    for t in range(T):
        b, h, f = slice(bs[t], bs[t + 1]), slice(hs[t], hs[t + 1]), slice(fs[t], fs[t + 1])
        b2 = bodies.p2[b].copy()
        left, right, face = _link(b2, hands.p2[h], faces.p2[f], rng, s.detector.unlink)
        for links, joint in ((left, 7), (right, 6)):  # an attached hand's wrist replaces the body's
            b2[links >= 0, joint] = hands.p2[h][links[links >= 0], 0]
        results.append(Result(H, W, body=PartArrays("body", bodies.score[b], b2, bodies.p3[b], left_hand=left,
                                                    right_hand=right, face=face),
                              hand=PartArrays("hand", hands.score[h], hands.p2[h], hands.p3[h],
                                              is_right=hands.right[h]),
                              face=PartArrays("face", faces.score[f], faces.p2[f], faces.p3[f]),
                              meta={} if s.time_s is None else {"time_s": float(s.time_s[t])}))
    n = v.visible.shape[1]
    truth = [[Truth(i, bool(v.visible[t, i]), v.body2d[t, i], v.body3d[t, i], v.hands2d[t, i], v.hands3d[t, i],
                    v.face2d[t, i], v.face3d[t, i]) for i in range(n)] for t in range(T)]
    runs = [int(g) for i in range(n) for g in np.diff(np.flatnonzero(v.visible[:, i])) - 1 if g > 0]
    return Scene(results, truth, s.fps, runs)


def make_fourth_scene(kind: str, seed: int, frames: int = 240) -> Scene:
    """A synthetic clip of `frames` frames of the given kind (one of FOURTH_KINDS), the same for the
    same arguments: what the detector outputs per frame and the truth per person."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown scene kind {kind!r}; use one of {', '.join(FOURTH_KINDS)}")
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    rng = np.random.default_rng([zlib.crc32(kind.encode()), int(seed) % 2 ** 63])
    return _render(BUILDERS[kind](rng, int(frames)), rng)
