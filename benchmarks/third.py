"""A third, independently designed synthetic scene generator for the people tracker and smoother.

`make_third_scene(kind, seed, frames)` returns a `Scene`: per frame, what a DOPE-like video detector
would output (`Result`s with bodies, hands and faces, linked) and the noise-free truth of every person.
It is deterministic in (kind, seed, frames) and uses numpy only.

Design
------
World and camera. A flat ground (world X right, Y up, Z away from the camera's rest direction) is
filmed by a pinhole camera of focal length f pixels at height 1.1-1.8 m, pitched slightly down. Its
pose is a per-frame rotation (yaw, pitch, roll) and position, and its focal length may change (zoom):
the handheld kind uses this for pans, sway, shake, jolts and zoom. Every 2D point is the perspective
projection of the 3D point; body 3D is the skeleton in camera-aligned axes centred on the pelvis with x
and y flipped (x left, y up, z away), hands and faces are camera-aligned (x right, y down, z away)
and centred on the part's own mean, exactly as the DOPE detector outputs them.

People. Each person is a kinematic skeleton scaled by their height (0.95-1.95 m) with child
proportions (bigger head, shorter legs) below about 1.5 m. Joint angles (hip and knee flexion, arm
swing/raise/abduction, elbow flexion, torso bend/twist, head yaw/pitch, finger curl, mouth opening)
come from a gait cycle driven by the actual ground speed, from posture states (sit, squat, bend) that
blend in over ~1 s, or from multi-frequency "dance" signals with spins. The pelvis height is set so
that the lower foot touches the ground (or, sitting, the seat), so postures change the 2D size. Roots
walk towards random goals with pauses, finite acceleration and a limited turning rate. Hands are
21-joint articulated hands attached at the wrists (orientation from the forearm, palm twist, curl);
the face is 84 landmarks on a curved face surface in front of the head joint, turned with the head.

Visibility. A person is out of view when under 35% of the body joints fall in the image; occluded
when the image boxes of closer people cover more than 70% of their box (they are then `visible=False`
and produce no detection, except rare low-score junk). Any occlusion longer than 25 frames turns into
a partial occlusion after 15-25 frames (the person is seen again, noisily). Partially covered joints get
larger noise or snap to the occluder's joint. `hidden_runs` lists the lengths of the runs of
`visible=False` that lie between visible frames or that contain an occlusion. A scene where someone
leaves the view for more than 25 frames and comes back is regenerated from a derived seed (up to ten
tries; should all fail, the least bad one is kept and such a long exit counts as having left the
scene, not in `hidden_runs`).

Detector model. Per detection: per-joint pixel noise of 0.5-2% of the person's pixel height, half
white and half temporally correlated (AR(1)), larger at wrists and ankles, at occluded and at
out-of-image joints (extrapolated, or clamped to the border, per person); outlier joints; left/right
swaps in bursts of frames (more frequent when the person faces away); rare whole-detection failures
(shrunk, shifted, or merged with a neighbour); misses that depend on size, truncation, occlusion and
camera motion blur, with bursts (a two-state Markov chain); duplicates of the same person; false
positives; scores that follow quality only loosely (with a per-person bias); 3D noise of 1-4 cm and a
slowly varying 3D scale error. Hands and faces are detected separately (faces only when turned
towards the camera), with their own noise, misses, handedness flips, and links to the bodies that are
usually right but sometimes missing or swapped along with a body's left/right swap.

Kinds
-----
kids_among_adults  children (0.95-1.4 m, fast, erratic, running) walking among adults (1.55-1.95 m)
                   at different depths: size is a poor cue to depth, frequent crossings and
                   occlusions of children behind adults, 25-30 fps.
posture_changes    people sitting down, standing up, squatting, bending over, walking between:
                   2D size and shape change by a factor of up to ~2 without motion of the feet, 15-30 fps.
handheld_camera    a walking camera operator: pans, sway, 6-10 Hz shake, jolts and a slow zoom move all
                   people at once; motion blur makes misses and noise come together, 30-60 fps.
border_truncation  people close to the camera, often cut by the image borders (legs out at the bottom,
                   half the body out at the sides), joints outside the image extrapolated or clamped,
                   detections lost when half outside, short exits and re-entries, 24-30 fps.
fast_dancers       dancers spinning and throwing their limbs, at 15, 24 or 60 fps: large displacements
                   between frames, frequent left/right swaps (facing away), outliers and duplicates.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from benchmarks.scenes import Scene, Truth
from dope.results import PartArrays, Result

THIRD_KINDS = ("kids_among_adults", "posture_changes", "handheld_camera", "border_truncation", "fast_dancers")

MAX_HIDDEN = 25
UP = np.array([0.0, 1.0, 0.0])
LR_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11))
LR_PERM = np.array([1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12])
LEG_JOINTS = np.array([0, 1, 2, 3])
ARM_JOINTS = np.array([6, 7, 8, 9])
EXTREMITIES = np.array([0, 1, 6, 7])
NB, NH, NF = 13, 21, 84


# ----------------------------------------------------------------------------------------- helpers

def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9)


def _smooth(rng: np.random.Generator, t: np.ndarray, freq: float, amp: float, n: int = 3) -> np.ndarray:
    """A smooth random signal: a few sinusoids around `freq` Hz with random phases, RMS about `amp`."""
    out = np.zeros_like(t)
    for _ in range(n):
        fr = freq * rng.uniform(0.6, 1.6)
        out += np.sin(2 * np.pi * fr * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.5, 1.0)
    return out * amp * np.sqrt(2.0 / n)


def _ramp(t: np.ndarray, t0: float, dur: float) -> np.ndarray:
    """0 before t0, 1 after t0 + dur, a smoothstep between."""
    x = np.clip((t - t0) / max(dur, 1e-6), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _wrap(a: np.ndarray | float) -> np.ndarray | float:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the runs of True in a 1-D boolean array (end exclusive)."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def _markov(rng: np.random.Generator, n: int, p_enter: np.ndarray | float, p_stay: float) -> np.ndarray:
    """A two-state chain: True ('bad') entered with probability p_enter (per step), kept with p_stay."""
    p_enter = np.broadcast_to(np.asarray(p_enter, float), (n,))
    u = rng.random(n)
    out = np.zeros(n, bool)
    state = False
    for i in range(n):
        state = bool(u[i] < (p_stay if state else p_enter[i]))
        out[i] = state
    return out


# ------------------------------------------------------------------------------------------ camera

@dataclass
class Camera:
    width: int
    height: int
    f: np.ndarray        # [T] focal length, pixels
    R: np.ndarray        # [T, 3, 3] rotation applied to the un-rotated camera axes
    C: np.ndarray        # [T, 3] position, world
    blur: np.ndarray     # [T] 0..1 motion-blur strength

    def to_cam(self, pw: np.ndarray) -> np.ndarray:
        """World points [T, N, 3] -> camera coordinates (x right, y down, z forward) [T, N, 3]."""
        d = pw - self.C[:, None, :]
        base = np.stack([d[..., 0], -d[..., 1], d[..., 2]], axis=-1)
        return np.einsum("tij,tnj->tni", self.R, base)

    def project(self, pc: np.ndarray) -> np.ndarray:
        z = np.maximum(pc[..., 2], 0.05)
        f = self.f[:, None]
        return np.stack([f * pc[..., 0] / z + self.width / 2, f * pc[..., 1] / z + self.height / 2], axis=-1)


def _rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """R = Rz(roll) Rx(pitch) Ry(yaw) in camera axes (pitch > 0 looks down, yaw > 0 looks right)."""
    T = len(yaw)
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    z, o = np.zeros(T), np.ones(T)
    Ry = np.stack([np.stack([cy, z, -sy], -1), np.stack([z, o, z], -1), np.stack([sy, z, cy], -1)], 1)
    Rx = np.stack([np.stack([o, z, z], -1), np.stack([z, cp, -sp], -1), np.stack([z, sp, cp], -1)], 1)
    Rz = np.stack([np.stack([cr, -sr, z], -1), np.stack([sr, cr, z], -1), np.stack([z, z, o], -1)], 1)
    return Rz @ Rx @ Ry


def _make_camera(kind: str, rng: np.random.Generator, t: np.ndarray) -> Camera:
    T = len(t)
    if kind == "border_truncation":
        width, height = [(640, 480), (1280, 720), (960, 720)][rng.integers(3)]
    else:
        width, height = [(1280, 720), (1920, 1080), (960, 540), (1280, 720)][rng.integers(4)]
    f0 = width * rng.uniform(0.7, 1.05)
    h = rng.uniform(1.1, 1.8)
    pitch0 = rng.uniform(0.03, 0.14)
    yaw = np.full(T, rng.uniform(-0.05, 0.05))
    pitch = np.full(T, pitch0)
    roll = np.full(T, rng.uniform(-0.02, 0.02))
    C = np.tile([0.0, h, 0.0], (T, 1))
    f = np.full(T, f0)
    blur = np.zeros(T)
    if kind == "handheld_camera":
        yaw = yaw + _smooth(rng, t, 0.08, rng.uniform(0.06, 0.16)) + _smooth(rng, t, 0.9, rng.uniform(0.006, 0.015))
        yaw += _smooth(rng, t, 7.0, rng.uniform(0.0015, 0.004), n=4)
        pitch = pitch + _smooth(rng, t, 0.7, rng.uniform(0.004, 0.012)) + _smooth(rng, t, 8.0, 0.002, n=4)
        roll = roll + _smooth(rng, t, 0.5, rng.uniform(0.01, 0.03)) + _smooth(rng, t, 6.0, 0.002, n=4)
        for _ in range(rng.integers(1, 4)):  # jolts: the operator bumps into something
            t0 = rng.uniform(0, t[-1])
            yaw += rng.normal(0, 0.04) * _ramp(t, t0, 0.12)
            pitch += rng.normal(0, 0.025) * _ramp(t, t0, 0.1)
        step = 2 * np.pi * rng.uniform(1.6, 2.0) * t  # walking bob of the operator
        C = C + np.stack([0.02 * np.sin(step / 2), 0.025 * np.abs(np.sin(step)), 0.25 * rng.uniform(-1, 1) * t], -1)
        f = f0 * (1 + rng.uniform(-0.25, 0.3) * _ramp(t, rng.uniform(0, 0.5) * t[-1], rng.uniform(1.5, 4)))
        dt = t[1] - t[0] if T > 1 else 1.0
        speed = np.hypot(np.gradient(yaw, dt), np.gradient(pitch, dt)) * f0  # pixels per second
        blur = np.clip((speed * dt - 4.0) / 25.0, 0, 1)  # pixels of smear per frame beyond 4
    return Camera(width, height, f, _rotation(yaw, pitch, roll), C, blur)


# ------------------------------------------------------------------------------------------ people

@dataclass
class Person:
    height: float
    child: float          # 0 adult .. 1 small child (proportions)
    body: np.ndarray      # [T, 13, 3] world
    hands: np.ndarray     # [T, 2 (left, right), 21, 3] world
    face: np.ndarray      # [T, 84, 3] world
    face_fwd: np.ndarray  # [T, 3] world direction the face looks at


def _walk(rng, t, start, goal_fn, speed, pause_p, pause_s, hold=None, accel=2.5, turn=3.0, face_cam=0.0):
    """Root positions [T, 2] (X, Z), heading [T] and ground speed [T] of a goal-seeking walker.

    hold: [T] 0..1, how much the person is kept in place (posture changes). Heading psi = 0 faces
    the camera; forward = (sin psi, 0, -cos psi).
    """
    T = len(t)
    dt = t[1] - t[0] if T > 1 else 1 / 30
    p = np.array(start, float)
    v = np.zeros(2)
    goal = goal_fn()
    wait = rng.uniform(0, pause_s[1]) if rng.random() < pause_p else 0.0
    psi = rng.uniform(-np.pi, np.pi) if face_cam == 0 else rng.normal(0, 0.5)
    rest_psi = rng.normal(0, 0.7)
    pos, head, spd = np.empty((T, 2)), np.empty(T), np.empty(T)
    jitter = rng.normal(0, 0.25, T)
    for i in range(T):
        desired = np.zeros(2)
        if wait > 0:
            wait -= dt
        else:
            d = goal - p
            dist = float(np.hypot(*d))
            if dist < 0.25:
                goal = goal_fn()
                rest_psi = rng.normal(0, 0.7)
                if rng.random() < pause_p:
                    wait = rng.uniform(*pause_s)
            else:
                desired = d / dist * speed * min(1.0, dist / 0.6)
        if hold is not None:
            desired = desired * (1 - hold[i])
        v += (desired - v) * min(1.0, accel * dt)
        p = p + v * dt
        sp = float(np.hypot(*v))
        target = np.arctan2(v[0], -v[1]) if sp > 0.25 else rest_psi
        psi += np.clip(_wrap(target - psi), -turn * dt, turn * dt) + jitter[i] * dt * 0.3
        pos[i], head[i], spd[i] = p, psi, sp
    return pos, head, spd


def _build_body(H, child, root, psi, ang):
    """World joints from the root ground point [T, 3], heading [T] and joint angles (dict of arrays)."""
    T = len(psi)
    F = np.stack([np.sin(psi), np.zeros(T), -np.cos(psi)], -1)
    L = np.cross(F, UP)  # the person's left
    U = np.broadcast_to(UP, (T, 3))
    thigh, shin = H * (0.245 - 0.02 * child), H * (0.245 - 0.02 * child)
    ankle_h = 0.04 * H
    hip_w, sh_w = H * 0.057, H * (0.105 - 0.01 * child)
    torso, neck = H * (0.30 - 0.01 * child), H * (0.10 + 0.04 * child)
    upper, fore = H * 0.17, H * 0.15
    hf, kn, ab = ang["hipflex"], ang["knee"], ang["hipab"]  # [T, 2] (right, left)
    drop = thigh * np.cos(hf) + shin * np.cos(hf - kn)
    pelvis = root + U * (np.max(drop, axis=1) + ankle_h)[:, None] + F * ang["pel_fwd"][:, None]
    J = np.zeros((T, NB, 3))
    for s, sign in ((0, -1.0), (1, 1.0)):  # right, left
        out = L * sign
        hip = pelvis + out * hip_w
        knee = hip + thigh * (np.sin(hf[:, s, None]) * F - np.cos(hf[:, s, None]) * U + np.sin(ab[:, s, None]) * out)
        a2 = (hf[:, s] - kn[:, s])[:, None]
        ankle = knee + shin * (np.sin(a2) * F - np.cos(a2) * U + 0.5 * np.sin(ab[:, s, None]) * out)
        J[:, 4 + s], J[:, 2 + s], J[:, s] = hip, knee, ankle
    tw = ang["twist"][:, None]
    Ft, Lt = np.cos(tw) * F - np.sin(tw) * L, np.cos(tw) * L + np.sin(tw) * F
    beta, lean = ang["bend"][:, None], ang["lean"][:, None]
    S = _unit(np.cos(beta) * U + np.sin(beta) * Ft + np.sin(lean) * Lt)
    neck_pt = pelvis + S * torso
    hb = beta + ang["head_pitch"][:, None] * 0.5
    J[:, 12] = neck_pt + neck * _unit(np.cos(hb) * U + np.sin(hb) * Ft + np.sin(lean) * Lt)
    fore_dirs = np.zeros((T, 2, 3))
    for s, sign in ((0, -1.0), (1, 1.0)):
        out = Lt * sign
        sh = neck_pt + out * sh_w - S * 0.02 * H
        a, b, e = ang["armflex"][:, s, None], ang["armab"][:, s, None], ang["elbow"][:, s, None]
        d = _unit(-np.cos(a) * np.cos(b) * U + np.sin(a) * np.cos(b) * Ft + np.sin(b) * out)
        r = _unit(Ft + 0.6 * U - 0.3 * out)
        p = r - np.sum(r * d, -1, keepdims=True) * d
        bad = np.linalg.norm(p, axis=-1, keepdims=True) < 1e-3
        p = _unit(np.where(bad, U - np.sum(U * d, -1, keepdims=True) * d + 1e-3 * Ft, p))
        fd = _unit(np.cos(e) * d + np.sin(e) * p)
        elbow = sh + d * upper
        J[:, 10 + s], J[:, 8 + s], J[:, 6 + s] = sh, elbow, elbow + fd * fore
        fore_dirs[:, s] = fd
    return J, F, L, Ft, fore_dirs


def _build_hand(H, wrist, axis0, out, side_sign, curl, twist, wflex):
    """21 world joints [T, 21, 3] of one hand. side_sign +1 for the right hand, -1 for the left."""
    hl = 0.108 * H
    n = -out - np.sum(-out * axis0, -1, keepdims=True) * axis0
    n = _unit(np.where(np.linalg.norm(n, axis=-1, keepdims=True) < 1e-3, np.cross(axis0, UP) + 1e-3, n))
    tw = twist[:, None]
    n = _unit(np.cos(tw) * n + np.sin(tw) * np.cross(axis0, n))
    axis = _unit(axis0 + wflex[:, None] * n)
    n = _unit(n - np.sum(n * axis, -1, keepdims=True) * axis)
    across = side_sign * np.cross(n, axis)
    c = curl[:, None]
    P = np.zeros((len(wrist), NH, 3))
    P[:, 0] = wrist
    # thumb: CMC (1), MCP (6), IP (7), tip (8)
    P[:, 1] = wrist + axis * 0.10 * hl + across * 0.12 * hl + n * 0.03 * hl
    d0 = _unit(axis * 0.55 + across * 0.8 + n * 0.3)
    cur, ang_sum = P[:, 1], np.zeros_like(c)
    for k, (seg, bend) in enumerate(((0.2, 0.35), (0.16, 0.6), (0.13, 0.6))):
        ang_sum = ang_sum + c * bend
        d = _unit(np.cos(ang_sum) * d0 + np.sin(ang_sum) * _unit(n - 0.5 * across))
        cur = cur + d * seg * hl
        P[:, 6 + k] = cur
    offsets = (0.09, 0.03, -0.03, -0.085)
    spreads = (0.12, 0.03, -0.05, -0.13)
    lengths = (0.50, 0.55, 0.51, 0.42)
    palm = (0.46, 0.45, 0.43, 0.40)
    for i in range(4):
        f = i + 1
        mcp = wrist + axis * palm[i] * hl + across * offsets[i] * hl * 2.2
        P[:, f + 1] = mcp
        d0 = _unit(axis + spreads[i] * across * (1 - 0.6 * c))
        cur, ang_sum = mcp, np.zeros_like(c)
        for k, (frac, bend) in enumerate(((0.45, 1.2), (0.30, 1.5), (0.25, 1.0))):
            ang_sum = ang_sum + c * bend
            cur = cur + (np.cos(ang_sum) * d0 + np.sin(ang_sum) * n) * frac * lengths[i] * hl
            P[:, 3 * f + 6 + k] = cur
    return P


def _face_template() -> tuple[np.ndarray, np.ndarray]:
    """84 landmarks (x right, y down, z forward out of the face) in face widths, and the mouth-opening delta."""
    pts, delta = [], []
    th = np.linspace(-0.55 * np.pi, 0.55 * np.pi, 33)  # jaw from one ear, under the chin, to the other
    for a in th:
        pts.append([0.5 * np.sin(a), 0.62 * np.cos(a) - 0.02, 0.32 * np.cos(a) - 0.12])
        delta.append([0, 0.12 * max(np.cos(a), 0) ** 2, 0])
    for cx in (-0.24, 0.24):  # brows
        for k in range(5):
            x = cx + (k - 2) * 0.065
            pts.append([x, -0.24 - 0.035 * (1 - ((k - 2) / 2) ** 2), 0.26])
            delta.append([0, 0, 0])
    for k in range(4):  # nose bridge
        pts.append([0, -0.14 + k * 0.085, 0.30 + k * 0.05])
        delta.append([0, 0, 0])
    for k in range(5):  # nose base
        pts.append([(k - 2) * 0.05, 0.16 - 0.015 * (2 - abs(k - 2)), 0.36 + 0.02 * (2 - abs(k - 2))])
        delta.append([0, 0, 0])
    for cx in (-0.21, 0.21):  # eyes: 6 each
        for k in range(6):
            a = np.pi + 2 * np.pi * k / 6
            pts.append([cx + 0.085 * np.cos(a), -0.11 + 0.032 * np.sin(a), 0.25])
            delta.append([0, 0, 0])
    for n_pts, rx, ry, dy in ((12, 0.2, 0.07, 0.06), (8, 0.12, 0.02, 0.07)):  # outer, inner lips
        for k in range(n_pts):
            a = np.pi + 2 * np.pi * k / n_pts
            s = np.sin(a)
            pts.append([rx * np.cos(a), 0.34 + ry * s, 0.31 - 0.05 * abs(np.cos(a))])
            delta.append([0, dy * s + 0.05, 0])
    return np.array(pts), np.array(delta)


FACE_TEMPLATE, FACE_OPEN = _face_template()


def _build_face(H, child, head, F, L, yaw, pitch, mouth):
    """World landmarks [T, 84, 3] and the face's forward direction [T, 3]."""
    T = len(yaw)
    cy, sy = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    fwd = cy * F - sy * L
    right = cy * (-L) - sy * F
    cp, sp = np.cos(pitch)[:, None], np.sin(pitch)[:, None]
    down = -cp * UP + sp * fwd
    fwd = _unit(cp * fwd + sp * UP)
    fw = 0.085 * H * (1 + 0.35 * child)
    pts = FACE_TEMPLATE[None] + mouth[:, None, None] * FACE_OPEN[None]  # [T, 84, 3]
    centre = head + fwd * 0.02 * H - UP * 0.01 * H
    world = (centre[:, None, :] + fw * (pts[..., 0:1] * right[:, None] + pts[..., 1:2] * down[:, None]
                                        + (pts[..., 2:3] - 0.1) * fwd[:, None]))
    assert world.shape == (T, NF, 3)
    return world, fwd


def _angles(kind: str, rng: np.random.Generator, t: np.ndarray, speed: np.ndarray, H: float,
            posture: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Joint angle signals [T] / [T, 2] from gait, posture states and (for dancers) dance moves."""
    T = len(t)
    dt = t[1] - t[0] if T > 1 else 1 / 30
    s = np.clip(speed / 1.3, 0, 1.6)
    cadence = 0.9 * np.sqrt(np.maximum(speed, 0.05) / 1.3) * np.sqrt(1.75 / H)
    phi = np.cumsum(2 * np.pi * cadence * dt) + rng.uniform(0, 2 * np.pi)
    ph = np.stack([phi, phi + np.pi], -1)  # right, left
    sc = s[:, None]
    ang = {
        "hipflex": 0.42 * sc * np.sin(ph),
        "knee": 0.08 + 1.0 * sc * np.clip(np.sin(ph + 1.0), 0, None) ** 1.5,
        "hipab": np.full((T, 2), 0.03) + _smooth(rng, t, 0.3, 0.02)[:, None],
        "armflex": -0.35 * sc * np.sin(ph) + _smooth(rng, t, 0.25, 0.12)[:, None],
        "armab": 0.12 + np.abs(_smooth(rng, t, 0.2, 0.08))[:, None] * np.ones((1, 2)),
        "elbow": 0.25 + 0.25 * sc * np.clip(-np.sin(ph), 0, None) + np.abs(_smooth(rng, t, 0.3, 0.25))[:, None],
        "bend": 0.05 * s + _smooth(rng, t, 0.2, 0.03),
        "lean": _smooth(rng, t, 0.3, 0.03),
        "twist": 0.12 * s * np.sin(phi) + _smooth(rng, t, 0.2, 0.06),
        "pel_fwd": np.zeros(T),
        "head_yaw": _smooth(rng, t, 0.25, 0.35),
        "head_pitch": _smooth(rng, t, 0.3, 0.1),
        "curl": np.clip(0.35 + np.stack([_smooth(rng, t, 0.5, 0.25), _smooth(rng, t, 0.5, 0.25)], -1), 0, 1),
        "wtwist": np.stack([_smooth(rng, t, 0.4, 0.4), _smooth(rng, t, 0.4, 0.4)], -1),
        "wflex": np.stack([_smooth(rng, t, 0.5, 0.2), _smooth(rng, t, 0.5, 0.2)], -1),
        "mouth": np.clip(_smooth(rng, t, 1.5, 0.4) + 0.1, 0, 1),
    }
    # posture states: (hipflex, knee, bend, pel_fwd factor, armflex, elbow)
    targets = {"sit": (1.45, 1.5, 0.12, -0.0, 0.5, 1.2), "squat": (1.75, 2.15, 0.5, 0.0, 0.6, 0.6),
               "bend": (0.12, 0.12, 1.35, -0.06, 0.1, 0.15)}
    for name, (h_, k_, b_, pf_, af_, e_) in targets.items():
        w = posture.get(name)
        if w is None:
            continue
        w1 = w[:, None]
        ang["hipflex"] = ang["hipflex"] * (1 - w1) + h_ * w1
        ang["knee"] = ang["knee"] * (1 - w1) + k_ * w1
        ang["bend"] = ang["bend"] * (1 - w) + b_ * w
        ang["pel_fwd"] = ang["pel_fwd"] + pf_ * H * w
        ang["armflex"] = ang["armflex"] * (1 - w1) + af_ * w1
        ang["elbow"] = ang["elbow"] * (1 - w1) + e_ * w1
        ang["head_pitch"] = ang["head_pitch"] - 0.6 * w * (name == "bend")
    if kind == "fast_dancers":
        e = rng.uniform(0.7, 1.0)
        for s_ in range(2):
            ang["armflex"][:, s_] = 1.4 + _smooth(rng, t, 1.8, 1.0 * e, n=4)
            ang["armab"][:, s_] = np.abs(0.6 + _smooth(rng, t, 1.5, 0.7 * e, n=4))
            ang["elbow"][:, s_] = np.clip(0.8 + _smooth(rng, t, 2.5, 0.8, n=4), 0, 2.4)
            ang["hipflex"][:, s_] += np.clip(_smooth(rng, t, 1.6, 0.7 * e, n=3), -0.4, 1.4)
            ang["knee"][:, s_] += np.clip(_smooth(rng, t, 2.0, 0.7, n=3), 0, 1.6)
            ang["hipab"][:, s_] += np.abs(_smooth(rng, t, 1.2, 0.25))
            ang["curl"][:, s_] = np.clip(0.4 + _smooth(rng, t, 2.0, 0.5), 0, 1)
        ang["bend"] = ang["bend"] + _smooth(rng, t, 1.3, 0.25)
        ang["lean"] = ang["lean"] + _smooth(rng, t, 1.0, 0.2)
        ang["twist"] = ang["twist"] + _smooth(rng, t, 1.5, 0.35)
        ang["head_pitch"] = ang["head_pitch"] + _smooth(rng, t, 1.5, 0.25)
        ang["hipflex"] = np.minimum(ang["hipflex"], ang["knee"] + 1.2)
    return ang


def _posture_schedule(rng, t) -> dict[str, np.ndarray]:
    """Smooth weights of sit / squat / bend over time; at most one at a time, ~0.8-1.6 s transitions."""
    T = len(t)
    w = {k: np.zeros(T) for k in ("sit", "squat", "bend")}
    tt = rng.uniform(0.0, 1.5)
    while tt < t[-1]:
        name = ("sit", "squat", "bend", "sit")[rng.integers(4)]
        trans = rng.uniform(0.8, 1.6) if name != "bend" else rng.uniform(0.5, 1.0)
        stay = rng.uniform(0.8, 3.5)
        w[name] += _ramp(t, tt, trans) - _ramp(t, tt + trans + stay, trans)
        tt += 2 * trans + stay + rng.uniform(0.8, 3.0)
    return w


def _make_people(kind: str, rng: np.random.Generator, t: np.ndarray, cam: Camera) -> list[Person]:
    T = len(t)
    f0, W = float(cam.f[0]), cam.width
    half = W / 2 / f0  # tan of the half field of view
    if kind == "kids_among_adults":
        n_kids = int(rng.integers(2, 5))
        heights = list(rng.uniform(0.95, 1.4, n_kids)) + list(rng.uniform(1.55, 1.95, int(rng.integers(3, 5))))
        zr = (3.5, 11.0)
    elif kind == "posture_changes":
        heights = list(rng.uniform(1.5, 1.95, int(rng.integers(3, 6))))
        zr = (3.0, 8.0)
    elif kind == "handheld_camera":
        heights = list(rng.uniform(1.45, 1.95, int(rng.integers(3, 7))))
        zr = (3.5, 12.0)
    elif kind == "border_truncation":
        heights = list(rng.uniform(1.5, 1.95, int(rng.integers(3, 6))))
        zr = (2.2, 4.5)
    else:
        heights = list(rng.uniform(1.5, 1.9, int(rng.integers(2, 5))))
        zr = (3.5, 7.5)
    people = []
    for i, H in enumerate(heights):
        H = float(H)
        child = float(np.clip((1.5 - H) / 0.5, 0, 1))
        z0 = rng.uniform(*zr)

        def goal(zr=zr):
            z = rng.uniform(*zr)
            m = {"border_truncation": 1.0, "handheld_camera": 0.65}.get(kind, 0.85)
            return np.array([rng.uniform(-m, m) * half * z, z])

        posture: dict[str, np.ndarray] = {}
        hold = None
        if kind == "kids_among_adults":
            speed = rng.uniform(1.3, 2.6) if child > 0.2 else rng.uniform(0.9, 1.5)
            pos, psi, spd = _walk(rng, t, goal(), goal, speed, 0.3 if child else 0.4, (0.3, 2.0),
                                  accel=4.0 if child else 2.0, turn=6.0 if child else 3.0)
        elif kind == "posture_changes":
            posture = _posture_schedule(rng, t)
            hold = np.clip(posture["sit"] + posture["squat"] + posture["bend"] + 0.0, 0, 1)
            hold = np.clip(hold * 3, 0, 1)
            pos, psi, spd = _walk(rng, t, goal(), goal, rng.uniform(0.8, 1.3), 0.5, (0.5, 2.5), hold=hold,
                                  face_cam=1.0)
        elif kind == "border_truncation":
            side = rng.choice([-1.0, 1.0])

            def goal(side=side, z0=z0):  # noqa: F811 - alternate near one border and a bit inside
                z = float(np.clip(z0 + rng.normal(0, 0.4), 2.0, 5.0))
                if rng.random() < 0.55:
                    x = side * half * z + side * rng.uniform(-0.45, 0.15)  # around the border, partly out
                else:
                    x = side * half * z * rng.uniform(0.2, 0.7)
                return np.array([x, z])

            if i % 2 == 1:
                z0 = rng.uniform(1.6, 2.4)  # close: legs out at the bottom
            start = np.array([side * half * z0 * rng.uniform(0.3, 0.7), z0])
            pos, psi, spd = _walk(rng, t, start, goal, rng.uniform(0.6, 1.2), 0.35, (0.2, 1.0), face_cam=1.0)
        elif kind == "fast_dancers":
            centre = goal()

            def goal(c=centre):  # noqa: F811
                return c + rng.normal(0, 0.5, 2)

            pos, psi, spd = _walk(rng, t, centre, goal, rng.uniform(0.5, 1.2), 0.6, (0.2, 0.8), face_cam=1.0)
            spin = np.zeros(T)
            for _ in range(int(rng.integers(1, 4))):
                spin += rng.choice([-2, 2]) * np.pi * _ramp(t, rng.uniform(0, t[-1]), rng.uniform(0.4, 0.9))
            psi = psi + spin + _smooth(rng, t, 0.8, 0.6)
            spd = np.clip(spd, 0, 0.6)
        else:
            pos, psi, spd = _walk(rng, t, goal(), goal, rng.uniform(0.8, 1.5), 0.35, (0.5, 2.5))
        ang = _angles(kind, rng, t, spd, H, posture)
        root = np.stack([pos[:, 0], np.zeros(T), pos[:, 1]], -1)
        body, F, L, Ft, fore = _build_body(H, child, root, psi, ang)
        hands = np.zeros((T, 2, NH, 3))
        for s, sign in ((0, -1.0), (1, 1.0)):  # body side 0 = right (hands index 1), 1 = left (hands index 0)
            hands[:, 1 - s] = _build_hand(H, body[:, 6 + s], fore[:, s], np.cross(Ft, UP) * sign, -sign,
                                          ang["curl"][:, s], ang["wtwist"][:, s], ang["wflex"][:, s])
        face, ffwd = _build_face(H, child, body[:, 12], Ft, np.cross(Ft, UP), ang["head_yaw"],
                                 ang["head_pitch"] + 0.5 * ang["bend"] * 0, ang["mouth"])
        people.append(Person(H, child, body, hands, face, ffwd))
    return people


# -------------------------------------------------------------------------------------- visibility

def _visibility(p2: np.ndarray, depth: np.ndarray, scale_px: np.ndarray, W: int, H: int, rng):
    """In-view, visible, occlusion coverage [P, T] and occluded-joint masks [P, T, 13]."""
    P, T = p2.shape[:2]
    inside = (p2[..., 0] >= 0) & (p2[..., 0] < W) & (p2[..., 1] >= 0) & (p2[..., 1] < H)  # [P, T, 13]
    frac_in = inside.mean(-1)
    in_view = (frac_in >= 0.35) & (depth > 0.5)
    pad = 0.06 * scale_px
    x0 = np.clip(p2[..., 0].min(-1) - pad, 0, W)
    x1 = np.clip(p2[..., 0].max(-1) + pad, 0, W)
    y0 = np.clip(p2[..., 1].min(-1) - pad * 1.5, 0, H)
    y1 = np.clip(p2[..., 1].max(-1) + pad * 0.5, 0, H)
    area = np.maximum((x1 - x0) * (y1 - y0), 1.0)
    free = np.ones((P, T))
    occ_joint = np.zeros((P, T, NB), bool)
    occluder = np.full((P, T, NB), -1)
    for a in range(P):
        for b in range(P):
            if a == b:
                continue
            closer = in_view[b] & (depth[b] < depth[a] - 0.25)
            ix = np.clip(np.minimum(x1[a], x1[b]) - np.maximum(x0[a], x0[b]), 0, None)
            iy = np.clip(np.minimum(y1[a], y1[b]) - np.maximum(y0[a], y0[b]), 0, None)
            cov = np.where(closer, ix * iy / area[a], 0.0)
            free[a] *= 1 - np.clip(cov, 0, 1)
            u, v, pb = p2[a, ..., 0], p2[a, ..., 1], pad[b, :, None]
            jin = ((u >= x0[b, :, None] + pb) & (u <= x1[b, :, None] - pb)
                   & (v >= y0[b, :, None]) & (v <= y1[b, :, None]) & closer[:, None])
            occluder[a] = np.where(jin & ~occ_joint[a], b, occluder[a])
            occ_joint[a] |= jin
    coverage = 1 - free
    hidden = in_view & (coverage > 0.7)
    for a in range(P):  # occlusions longer than allowed become partial: the person is seen again
        for s, e in _runs(hidden[a]):
            limit = int(rng.integers(15, MAX_HIDDEN + 1))
            if e - s > MAX_HIDDEN:
                hidden[a, s + limit:e] = False
                coverage[a, s + limit:e] = np.minimum(coverage[a, s + limit:e], 0.6)
    for a in range(P):  # an occlusion that runs into an exit from the view: seen (partly) while occluded
        for s, e in _runs(~in_view[a] | hidden[a]):
            if e - s > MAX_HIDDEN and hidden[a, s:e].any():
                coverage[a, s:e] = np.where(hidden[a, s:e], np.minimum(coverage[a, s:e], 0.6), coverage[a, s:e])
                hidden[a, s:e] = False
    visible = in_view & ~hidden
    return in_view, visible, hidden, coverage, occ_joint, occluder, frac_in


def _hidden_runs(visible: np.ndarray, hidden: np.ndarray) -> tuple[list[int], int]:
    """Counted runs of not-visible frames, and the longest out-of-view gap between visible frames."""
    runs, worst = [], 0
    T = visible.shape[1]
    for a in range(len(visible)):
        for s, e in _runs(~visible[a]):
            internal = s > 0 and e < T
            if internal:
                worst = max(worst, e - s)
            if hidden[a, s:e].any() or (internal and e - s <= MAX_HIDDEN):
                runs.append(e - s)
    return runs, worst


# ---------------------------------------------------------------------------------------- detector

@dataclass
class KindNoise:
    miss_enter: float = 0.012
    miss_stay: float = 0.7
    swap_rate: float = 0.006
    outlier: float = 0.012
    dup: float = 0.015
    fp_rate: float = 0.05
    whole: float = 0.005


NOISE = {
    "kids_among_adults": KindNoise(dup=0.02),
    "posture_changes": KindNoise(outlier=0.02, swap_rate=0.008),
    "handheld_camera": KindNoise(miss_enter=0.01),
    "border_truncation": KindNoise(outlier=0.02, fp_rate=0.07),
    "fast_dancers": KindNoise(swap_rate=0.03, outlier=0.03, dup=0.03, whole=0.01, miss_stay=0.6),
}


def _ar1(rng, T: int, shape: tuple, rho: float) -> np.ndarray:
    """Unit-variance AR(1) noise [T, *shape]."""
    e = rng.normal(size=(T,) + shape)
    out = np.empty_like(e)
    out[0] = e[0]
    k = np.sqrt(1 - rho * rho)
    for i in range(1, T):
        out[i] = rho * out[i - 1] + k * e[i]
    return out


def _score(rng, base: float, bias: float) -> float:
    return float(np.clip(base + bias + rng.normal(0, 0.07), 0.03, 1.0))


def _body3d(cam_pts: np.ndarray) -> np.ndarray:
    """Camera-frame joints [..., 13, 3] -> DOPE body 3D: pelvis-centred, x and y flipped."""
    c = cam_pts - cam_pts[..., 4:6, :].mean(-2, keepdims=True)
    return c * np.array([-1.0, -1.0, 1.0])


def make_third_scene(kind: str, seed: int, frames: int = 240) -> Scene:
    """A synthetic scene of the given kind (one of THIRD_KINDS), deterministic in (kind, seed, frames)."""
    if kind not in THIRD_KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(THIRD_KINDS)}")
    best = None
    for attempt in range(10):
        rng = np.random.default_rng([zlib.crc32(kind.encode()), int(seed) & 0xFFFFFFFF, int(frames), attempt])
        out = _attempt(kind, rng, int(frames))
        if out[1] <= MAX_HIDDEN:
            return out[0]
        if best is None or out[1] < best[1]:
            best = out
    return best[0]


def _attempt(kind: str, rng: np.random.Generator, T: int) -> tuple[Scene, int]:
    nz = NOISE[kind]
    fps = float({"kids_among_adults": rng.choice([25.0, 30.0]),
                 "posture_changes": rng.choice([15.0, 20.0, 30.0]),
                 "handheld_camera": rng.choice([30.0, 50.0, 60.0]),
                 "border_truncation": rng.choice([24.0, 25.0, 30.0]),
                 "fast_dancers": rng.choice([15.0, 24.0, 60.0])}[kind])
    t = np.arange(T) / fps
    cam = _make_camera(kind, rng, t)
    people = _make_people(kind, rng, t, cam)
    P = len(people)
    Wd, Ht = cam.width, cam.height

    # all points of all people through the camera: [P, T, 139, 3]
    allw = np.stack([np.concatenate([p.body, p.hands.reshape(T, 2 * NH, 3), p.face], 1) for p in people])
    allc = np.stack([cam.to_cam(allw[i]) for i in range(P)])
    all2 = np.stack([cam.project(allc[i]) for i in range(P)])
    b2, b3c = all2[:, :, :NB], allc[:, :, :NB]
    h2 = all2[:, :, NB:NB + 2 * NH].reshape(P, T, 2, NH, 2)
    h3c = allc[:, :, NB:NB + 2 * NH].reshape(P, T, 2, NH, 3)
    f2, f3c = all2[:, :, NB + 2 * NH:], allc[:, :, NB + 2 * NH:]
    depth = b3c[:, :, 4:6, 2].mean(-1)
    heights = np.array([p.height for p in people])
    scale_px = heights[:, None] * cam.f[None, :] / np.maximum(depth, 0.3)  # the person's pixel height [P, T]
    body3d_true = _body3d(b3c)
    hand3d_true = h3c - h3c.mean(-2, keepdims=True)
    face3d_true = f3c - f3c.mean(-2, keepdims=True)

    in_view, visible, hidden, coverage, occ_joint, occluder, frac_in = _visibility(b2, depth, scale_px, Wd, Ht, rng)
    hidden_runs, worst = _hidden_runs(visible, hidden)

    truth = [[Truth(person=i, visible=bool(visible[i, k]), body2d=b2[i, k].copy(), body3d=body3d_true[i, k].copy(),
                    hands2d=h2[i, k].copy(), hands3d=hand3d_true[i, k].copy(), face2d=f2[i, k].copy(),
                    face3d=face3d_true[i, k].copy()) for i in range(P)] for k in range(T)]

    # ---- per-person detector traits and time series
    sig = rng.uniform(0.005, 0.02, P)           # pixel noise, fraction of pixel height
    sig3 = rng.uniform(0.01, 0.04, P)           # metres
    bias = rng.normal(0, 0.06, P)               # score bias
    clamp = rng.random(P) < 0.5                  # out-of-image joints clamped (else extrapolated)
    corr = [_ar1(rng, T, (NB, 2), 0.85) for _ in range(P)]
    s3scale = [1 + 0.05 * _smooth(rng, t, 0.2, 1.0) for _ in range(P)]
    to_cam = -_unit(allc[:, :, NB + 2 * NH:].mean(-2))            # [P, T, 3] from face to camera
    ffwd_c = np.stack([np.einsum("tij,tj->ti", cam.R, people[i].face_fwd * np.array([1, -1, 1])) for i in range(P)])
    facing = np.sum(ffwd_c * to_cam, -1)                                # [P, T] 1 = looks at the camera
    away = facing < -0.2  # the person turns their back to the camera: left/right swaps are likelier
    misses, swaps = [], []
    for i in range(P):
        enter = nz.miss_enter + 0.25 * cam.blur
        misses.append(_markov(rng, T, enter, nz.miss_stay))
        swaps.append(_markov(rng, T, nz.swap_rate * np.where(away[i], 4.0, 1.0), 0.65))
    swap_kind = rng.integers(0, 3, (P, T))  # 0 all, 1 legs, 2 arms (drawn per frame, used per run start)

    results: list[Result] = []
    for k in range(T):
        bodies: list[list] = []   # [score, p2, p3, left_hand_idx, right_hand_idx, face_idx]
        hands: list[list] = []    # [score, p2, p3, is_right]
        faces: list[list] = []    # [score, p2, p3]
        for i in range(P):
            sp = float(scale_px[i, k])
            if not visible[i, k]:
                if in_view[i, k] and rng.random() < 0.02:  # junk: a fragment of the hidden person
                    p2 = b2[i, k] + rng.normal(0, 0.12 * sp, (NB, 2))
                    p3 = body3d_true[i, k] + rng.normal(0, 0.1, (NB, 3))
                    bodies.append([_score(rng, 0.1, 0.0) * 0.8, p2, p3, -1, -1, -1])
                continue
            # detection probability
            p = 0.96 * np.clip((sp - 25) / 50, 0, 1) * np.clip((frac_in[i, k] - 0.3) / 0.45, 0, 1)
            p *= 1 - 0.85 * np.clip(coverage[i, k] - 0.15, 0, 1) / 0.55 * (coverage[i, k] > 0.15)
            p *= 1 - 0.6 * cam.blur[k]
            if misses[i][k]:
                p *= 0.1
            body_det = rng.random() < p
            sw = swaps[i][k]
            if sw:  # the kind of swap is fixed over a run: take it at the run's start
                s0 = k
                while s0 > 0 and swaps[i][s0 - 1]:
                    s0 -= 1
                perm = {0: LR_PERM, 1: np.array([1, 0, 3, 2] + list(range(4, 13))),
                        2: np.array(list(range(6)) + [7, 6, 9, 8] + list(range(10, 13)))}[int(swap_kind[i, s0])]
            else:
                perm = np.arange(NB)
            bidx = -1
            if body_det:
                mult = np.ones(NB)
                mult[EXTREMITIES] = 1.5
                mult[12] = 0.8
                mult = mult * (1 + 2.0 * occ_joint[i, k]) * (1 + 2.0 * cam.blur[k])
                u, v = b2[i, k, :, 0], b2[i, k, :, 1]
                outside = ~((u >= 0) & (u < Wd) & (v >= 0) & (v < Ht))
                mult = mult * np.where(outside & ~clamp[i], 2.5, 1.0)
                s_px = sig[i] * sp * mult[:, None]
                noise = s_px * (0.6 * rng.normal(size=(NB, 2)) + 0.8 * corr[i][k])
                p2 = b2[i, k] + noise
                p3 = body3d_true[i, k] * s3scale[i][k] + rng.normal(0, sig3[i], (NB, 3))
                # occluded joints sometimes snap to the occluder's joint
                snap = occ_joint[i, k] & (rng.random(NB) < 0.3) & (occluder[i, k] >= 0)
                for j in np.flatnonzero(snap):
                    p2[j] = b2[occluder[i, k, j], k, j] + rng.normal(0, sig[i] * sp, 2)
                rate = np.full(NB, nz.outlier)
                rate[EXTREMITIES] *= 2
                out_j = rng.random(NB) < rate
                n_out = int(out_j.sum())
                if n_out:
                    ang = rng.uniform(0, 2 * np.pi, n_out)
                    mag = rng.uniform(0.08, 0.35, n_out) * sp
                    p2[out_j] += np.stack([np.cos(ang), np.sin(ang)], -1) * mag[:, None]
                    p3[out_j] += rng.normal(0, 0.12, (n_out, 3))
                if clamp[i]:
                    p2[:, 0] = np.clip(p2[:, 0], 0, Wd - 1)
                    p2[:, 1] = np.clip(p2[:, 1], 0, Ht - 1)
                p2, p3 = p2[perm], p3[perm]
                err = float(np.median(np.linalg.norm(p2 - b2[i, k], axis=-1))) / max(sp, 1.0)
                score = _score(rng, 0.93 - 3.0 * err - 0.35 * (1 - frac_in[i, k]) - 0.4 * coverage[i, k]
                               - 0.2 * cam.blur[k], bias[i])
                u = rng.random()
                if u < nz.whole:  # whole-detection failure
                    mode = rng.integers(3)
                    c = p2.mean(0)
                    if mode == 0:
                        p2 = c + (p2 - c) * rng.uniform(0.45, 0.75)
                    elif mode == 1:
                        p2 = p2 + rng.normal(0, 0.3 * sp, 2)
                    elif P > 1:
                        dist = [np.inf if q == i else np.linalg.norm(b2[q, k].mean(0) - c) for q in range(P)]
                        j = int(np.argmin(dist))
                        take = rng.random(NB) < 0.5
                        p2 = np.where(take[:, None], b2[j, k] + rng.normal(0, sig[i] * sp, (NB, 2)), p2)
                bidx = len(bodies)
                bodies.append([score, p2, p3, -1, -1, -1])
                if rng.random() < nz.dup:  # duplicate detection of the same person
                    d2 = b2[i, k][perm] + rng.normal(0, 2 * sig[i] * sp, (NB, 2)) + rng.normal(0, 0.04 * sp, 2)
                    d3 = p3 + rng.normal(0, 0.03, (NB, 3))
                    bodies.append([score * rng.uniform(0.35, 0.95), d2, d3, -1, -1, -1])
            # hands: index 0 left, 1 right; body wrist joint 7 = left, 6 = right
            for h in range(2):
                wj = 7 - h
                size = 0.108 * heights[i] * cam.f[k] / max(h3c[i, k, h, :, 2].mean(), 0.3) * 1.3
                wr = h2[i, k, h, 0]
                inimg = 0 <= wr[0] < Wd and 0 <= wr[1] < Ht
                ph = 0.85 * np.clip((size - 10) / 20, 0, 1) * inimg * (0.3 if occ_joint[i, k, wj] else 1.0)
                ph *= 1 - 0.7 * cam.blur[k]
                if rng.random() >= ph:
                    continue
                hs = rng.uniform(0.02, 0.05) * size
                q2 = h2[i, k, h] + rng.normal(0, hs, (NH, 2)) + rng.normal(0, hs, 2)
                q3 = hand3d_true[i, k, h] + rng.normal(0, 0.006, (NH, 3))
                is_right = bool(h == 1) ^ bool(rng.random() < 0.03)
                hidx = len(hands)
                hands.append([_score(rng, 0.85 - 0.3 * occ_joint[i, k, wj], bias[i]), q2, q3, is_right])
                if bidx >= 0 and rng.random() < 0.92:
                    field = 3 + h if perm[6] == 6 else 4 - h  # left_hand / right_hand, swapped with the arms
                    bodies[bidx][field] = hidx
            # face
            fsize = 0.085 * heights[i] * cam.f[k] / max(f3c[i, k, :, 2].mean(), 0.3)
            pf = 0.92 * np.clip((facing[i, k] + 0.1) / 0.5, 0, 1) * np.clip((fsize - 8) / 15, 0, 1)
            pf *= (0.3 if occ_joint[i, k, 12] else 1.0) * (1 - 0.6 * cam.blur[k])
            if rng.random() < pf:
                fs = rng.uniform(0.015, 0.04) * fsize
                q2 = f2[i, k] + rng.normal(0, fs, (NF, 2)) + rng.normal(0, fs, 2)
                q3 = face3d_true[i, k] + rng.normal(0, 0.004, (NF, 3))
                fidx = len(faces)
                faces.append([_score(rng, 0.6 + 0.3 * facing[i, k], bias[i]), q2, q3])
                if bidx >= 0 and rng.random() < 0.93:
                    bodies[bidx][5] = fidx
        # false positives
        for _ in range(rng.poisson(nz.fp_rate)):
            src, fk = int(rng.integers(P)), int(rng.integers(T))
            sc = rng.uniform(0.3, 1.2)
            c = b2[src, fk].mean(0)
            p2 = (b2[src, fk] - c) * sc + np.array([rng.uniform(0, Wd), rng.uniform(0.2 * Ht, Ht)])
            p2 += rng.normal(0, 0.03 * scale_px[src, fk] * sc, (NB, 2))
            p3 = body3d_true[src, fk] + rng.normal(0, 0.05, (NB, 3))
            s = rng.uniform(0.03, 0.45) if rng.random() < 0.85 else rng.uniform(0.45, 0.85)
            bodies.append([s, p2, p3, -1, -1, -1])
        for _ in range(rng.poisson(0.08)):
            src, fk, hh = int(rng.integers(P)), int(rng.integers(T)), int(rng.integers(2))
            q2 = h2[src, fk, hh] - h2[src, fk, hh].mean(0) + np.array([rng.uniform(0, Wd), rng.uniform(0, Ht)])
            hands.append([rng.uniform(0.03, 0.4), q2, hand3d_true[src, fk, hh], bool(rng.random() < 0.5)])
        for _ in range(rng.poisson(0.04)):
            src, fk = int(rng.integers(P)), int(rng.integers(T))
            q2 = f2[src, fk] - f2[src, fk].mean(0) + np.array([rng.uniform(0, Wd), rng.uniform(0, Ht)])
            faces.append([rng.uniform(0.03, 0.4), q2, face3d_true[src, fk]])
        results.append(_result(Ht, Wd, bodies, hands, faces))
    return Scene(results=results, truth=truth, fps=fps, hidden_runs=hidden_runs), worst


def _result(height: int, width: int, bodies: list, hands: list, faces: list) -> Result:
    """A Result with every part sorted by decreasing score and the body links remapped."""
    ho = sorted(range(len(hands)), key=lambda j: -hands[j][0])
    fo = sorted(range(len(faces)), key=lambda j: -faces[j][0])
    hmap = {old: new for new, old in enumerate(ho)}
    fmap = {old: new for new, old in enumerate(fo)}
    bo = sorted(range(len(bodies)), key=lambda j: -bodies[j][0])

    def arr(rows, idx, j, d):
        return np.array([rows[r][idx] for r in j], np.float32).reshape(len(j), *d)

    body = PartArrays(
        "body", arr(bodies, 0, bo, ()), arr(bodies, 1, bo, (NB, 2)), arr(bodies, 2, bo, (NB, 3)),
        left_hand=np.array([hmap.get(bodies[j][3], -1) for j in bo], np.int64).reshape(len(bo)),
        right_hand=np.array([hmap.get(bodies[j][4], -1) for j in bo], np.int64).reshape(len(bo)),
        face=np.array([fmap.get(bodies[j][5], -1) for j in bo], np.int64).reshape(len(bo)))
    hand = PartArrays("hand", arr(hands, 0, ho, ()), arr(hands, 1, ho, (NH, 2)), arr(hands, 2, ho, (NH, 3)),
                      is_right=np.array([hands[j][3] for j in ho], bool).reshape(len(ho)))
    face = PartArrays("face", arr(faces, 0, fo, ()), arr(faces, 1, fo, (NF, 2)), arr(faces, 2, fo, (NF, 3)))
    return Result(height, width, body=body, hand=hand, face=face)
