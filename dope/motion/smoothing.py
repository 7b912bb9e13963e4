"""Smoothing tracked poses over time, per track and per part, never across two tracks.

Two modes, each a small object with its state inside, usable on any iterable of `Result`s that
carry a `track` field (see tracking.py), and a stage over frames (`smooth`):

- online (`OnlineSmoother`): causal (the output for frame t only uses frames up to t). A
  constant-velocity Kalman filter (`KalmanParams`) on each pose's centre (the mean of its joints)
  and on each joint's offset from it, 2D and 3D. Its measurement noise r and motion q are measured
  on the signal itself, per track and joint, from the second differences d2 of the samples: for
  white noise and a smooth true motion, E[d2^2] = q + 6 r and E[d2_t d2_t-1] = q - 4 r, so
  r = (E[d2^2] - E[d2_t d2_t-1]) / 10 and q = E[d2^2] - 6 r (running means; 2D in units of the
  pose's box diagonal). The process noise, a fraction of q, is then steered per signal by the
  whiteness of the filter's innovations: their correlation from one frame to the next is positive
  where the filter lags (its errors persist) and negative where it follows the noise (they
  alternate), and the process noise grows or shrinks with it (within x10 either way). The speed
  carried into each prediction is damped half way to what each signal's own steps say of it (the
  regression of its steps on its predicted ones, within 0..1: a swinging limb's speed turns back
  within a few frames, a walker's centre carries on). Where a centre's jitter is shared by its
  person's other part (a body and its face: a shaking camera, a runner's bounce; `shared_motion`),
  its r is at most what its joints' offsets say it can be (the noise of their mean, plus an error
  they share of up to a joint's own: `centre_noise`); beyond it, what its differences show is
  motion the filter follows, not noise. The
  detection score scales r; innovations far beyond the expected are
  clipped (one frame at a time), and a pose that jumps beyond 30 sigmas starts afresh. The
  One-Euro filter (Casiez et al., CHI 2012) with a constant-velocity prediction step remains as
  `method="one_euro"` (`OneEuroParams`): on scenes with fast motion and little noise it made
  positions worse than the detections, which the Kalman filter, tuned on measured noise, does not.
- offline (`OfflineSmoother`): zero-phase, with a bounded look-ahead of `window` frames. Each
  sample is replaced by a local polynomial fit (degree `degree`, Gaussian weights of `sigma`
  frames) to the samples at most `window` frames before and after it; gaps of at most `max_gap`
  frames inside that span are first filled by linear interpolation, a longer gap ends the span.
  Each pose's centre (the mean of its joints) gets the fit, default or narrower, that predicts it
  best when its own sample is left out (`OfflineSmoother._fit_centres`): a signing hand's centre
  moves with the whole hand, faster than its shape changes, and the noise measured on third
  differences counts that motion as noise. Or its own sample, where its person's parts jitter
  together and its joints say the detector is precise (`OfflineSmoother._own_samples`, as online).
  Then, where a signal's motion outruns the default fit (its residual well above what the signal's
  own noise, measured on its fourth differences without their gross errors, explains), narrower
  fits of the whole pose compete with that one by Stein's unbiased risk estimate (`adaptive`, see
  `OfflineSmoother._adapt`). Where a person's parts move together, a joint's noise there is at
  most what its offsets from the centre show, plus a shared error as large
  (`OfflineSmoother._noise_bound`): a runner's bounce is motion, not noise.
  Before any of this, a joint's sample that stands out from the cubic through its two
  neighbours on each side far more than that joint's samples usually do, and more than its
  neighbours do (a detector's bad joint in one frame), is pulled back towards that cubic (`glitch`,
  `OfflineSmoother._glitches`): a fit would spread it into the frames about it.
  Memory holds `2 * window + 1` frames per track, and every result comes out `window` frames
  after it went in (not at the end of the clip).

A signal is one detection's `pose2d` (pixels) and `pose3d` (metres) over time. It is keyed by its
track and its place in the person: a body by its track; a hand attached to a body by that track and
the wrist it is attached to; a lone hand or face by its own track (tracking.py gives lone parts ids
of their own). Detections without a track (`track` -1, or no `track` field) pass through unchanged.
After smoothing, a body's wrist is set again to the wrist of the hand attached to it (SPEC §6).
Frames are taken as evenly spaced (offline); the online filter reads the times of frames from the
items' `time_s` when it is known, and counts in the stream's own frame interval.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Iterator, NamedTuple, Optional

import numpy as np

from dope.motion.agreement import AMOUNT as AGREE, agree_with_2d
from dope.motion.neighbours import ranges
from dope.parts import BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST, PART_NAMES, PARTS
from dope.results import NO_LINK, Result
from dope.stream import Frame

SMOOTH_MODES = ("off", "online", "offline")
DEFAULT_RATE = 30.0  # frames per second assumed when the frames carry no time
RESET_AFTER_S = 1.0  # online: a track unseen for longer starts its filter afresh
# The guard of both smoothers: a signal whose smoothed pose has missed its detections by more than
# GUARD times the part's size (RMS over its joints, 2D, against the pose-box diagonal) in more than
# GUARD_SHARE of its last frames (a running mean over GUARD_MEMORY frames) is given its detections
# back (2D), until the share falls again: motion that no smoothing over a few frames follows (a
# hand spinning faster than the frame rate shows, whose differences make its noise look as large
# as its motion), where smoothing makes positions worse. A quarter of the part's size is far
# beyond any detector's noise and any smoothing's lag on the scenes the smoothers are tuned on
# (a tenth already gives back the detections of fast signing hands there).
GUARD, GUARD_SHARE, GUARD_MEMORY = 0.25, 0.25, 8.0
_WRIST_LINKS = (("left_hand", BODY_L_WRIST), ("right_hand", BODY_R_WRIST))


# -------------------------------------------------------------------------------- One-Euro


@dataclass(frozen=True)
class OneEuroParams:
    """One-Euro filter settings (Casiez et al. 2012), tuned on bench.py --tracking's scenes.

    min_cutoff: Hz, the cutoff frequency at rest (lower: smoother, more lag on slow motion).
    beta: how fast the cutoff rises with speed, in Hz per (size / s): speed is measured in person
        sizes per second for 2D (the detection's pose-box diagonal) and in metres per second for 3D.
    d_cutoff: Hz, the cutoff of the filtered speed.
    predict: move the estimate by its speed before blending (constant-velocity prediction).
    """
    min_cutoff: float = 2.0
    beta: float = 0.5
    d_cutoff: float = 1.0
    predict: bool = True


def _alpha(cutoff: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Smoothing factor of a first-order low-pass of `cutoff` Hz over `dt` seconds."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro_step(x: np.ndarray, x_prev: np.ndarray, dx_prev: np.ndarray, dt: np.ndarray, scale: np.ndarray,
                  params: OneEuroParams) -> tuple[np.ndarray, np.ndarray]:
    """One step of the filter on a batch of signals: (estimate, speed), both shaped like `x`.

    x, x_prev (the last estimate), dx_prev (its speed, units/s): float[K, J, D]; dt: seconds since
    the last sample, broadcastable to [K, 1, 1]; scale: the size that speed is measured in, same.
    The cutoff is chosen per joint from the norm of its speed over the D coordinates.
    """
    dt = np.maximum(dt, 1e-6)
    if params.predict:
        predicted = x_prev + dx_prev * dt
        dx = (x - x_prev) / dt
    else:
        predicted, dx = x_prev, (x - x_prev) / dt
    dx_hat = dx_prev + _alpha(params.d_cutoff, dt) * (dx - dx_prev)
    speed = np.sqrt((dx_hat ** 2).sum(-1, keepdims=True)) / scale
    a = _alpha(params.min_cutoff + params.beta * speed, dt)
    return predicted + a * (x - predicted), dx_hat


class OneEuroFilter:
    """The online filter on one signal of any shape: `filter(x, t)` -> the estimate at time t (s)."""

    def __init__(self, params: OneEuroParams = OneEuroParams(), scale: float = 1.0) -> None:
        self.params, self.scale = params, float(scale)
        self.x: Optional[np.ndarray] = None
        self.dx: Optional[np.ndarray] = None
        self.t: Optional[float] = None

    def filter(self, x: Any, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
        else:
            shaped = x.reshape(1, -1, x.shape[-1] if x.ndim else 1)
            est, dx = one_euro_step(shaped, self.x.reshape(shaped.shape), self.dx.reshape(shaped.shape),
                                    np.asarray(t - self.t), np.asarray(self.scale), self.params)
            self.x, self.dx = est.reshape(x.shape), dx.reshape(x.shape)
        self.t = float(t)
        return self.x.copy()


# -------------------------------------------------------------------------------- offline kernel


def local_fit_weights(left: int, right: int, sigma: float, degree: int) -> np.ndarray:
    """float64[left + right + 1]: weights that give the value at offset 0 of a weighted least-squares
    polynomial fit (Gaussian weights of `sigma` samples) to samples at offsets -left..right.

    For left == right this is a symmetric (zero-phase) kernel; near a track's ends it is the
    one-sided fit, which still passes through a straight line exactly.
    """
    k = np.arange(-left, right + 1, dtype=np.float64)
    w = np.exp(-0.5 * (k / sigma) ** 2)
    deg = min(degree, left + right)
    x = np.vander(k, deg + 1, increasing=True)
    a = x.T @ (w[:, None] * x)
    return np.linalg.solve(a, x.T * w)[0]


# -------------------------------------------------------------------------------- signals


def signal_keys(result: Result) -> dict[str, list[Optional[Hashable]]]:
    """Per part, one key per detection naming its signal over time (None: not tracked, or a key
    that an earlier detection of this frame has: a second detection of a person is left alone;
    the lists are by decreasing score)."""
    out: dict[str, list[Optional[Hashable]]] = {}
    side = {}
    if "track" in result.body.fields:
        for link in ("left_hand", "right_hand"):
            for h in result.body.fields[link].tolist():
                if h != NO_LINK:
                    side[h] = link
    for p in PART_NAMES:
        arr = result[p]
        tracks = arr.fields.get("track")
        if tracks is None:
            out[p] = [None] * len(arr)
            continue
        if tracks.dtype.kind in "iu":
            ids = [t if t >= 0 else None for t in tracks.tolist()]
        else:
            ids = [_track_of(tracks, i) for i in range(len(arr))]
        if p == "hand":
            keys = [None if t is None else (p, t, side.get(i, "")) for i, t in enumerate(ids)]
        else:
            keys = [None if t is None else (p, t, "") for t in ids]
        named = [k for k in keys if k is not None]
        if len(set(named)) < len(named):  # a person detected twice: the first (best score) is theirs
            seen: set[Hashable] = set()
            unique = []
            for k in keys:
                unique.append(None if k in seen else k)
                if k is not None:
                    seen.add(k)
            keys = unique
        out[p] = keys
    return out


def _track_of(tracks: Optional[np.ndarray], i: int) -> Optional[int]:
    if tracks is None:
        return None
    v = tracks[i]
    try:
        t = int(v)
    except (TypeError, ValueError):
        return None
    return t if t >= 0 else None


def _with_poses(result: Result, poses: dict[str, tuple[np.ndarray, np.ndarray]]) -> Result:
    """A copy of `result` with new (pose2d, pose3d) for the parts given (arrays this function may
    change), body wrists set again onto the wrists of their attached hands."""
    poses = dict(poses)
    hand2d = poses["hand"][0] if "hand" in poses else result.hand.pose2d
    if len(result.body) and len(hand2d):
        body = result.body
        b2, b3 = poses.get("body", (body.pose2d.copy(), body.pose3d))
        for link, joint in _WRIST_LINKS:
            h = body.fields[link]
            has = h != NO_LINK
            b2[has, joint] = hand2d[h[has], HAND_WRIST]
        poses["body"] = (b2, b3)
    new = {}
    for p, (p2, p3) in poses.items():
        arr = result[p]
        fields = arr.fields
        extra = {k: v for k, v in fields.items() if k not in ("scores", "pose2d", "pose3d")}
        new[p] = type(arr)(p, arr.scores, p2, p3, **extra)
    return result.replace(**new)


def _pose_size(pose2d: np.ndarray) -> np.ndarray:
    """float[K]: the diagonal of each pose's joint box, in pixels (at least 1)."""
    span = pose2d.max(-2) - pose2d.min(-2)
    return np.maximum(np.linalg.norm(span, axis=-1), 1.0)


# -------------------------------------------------------------------------------- state tables


class _Layout(NamedTuple):
    """Where one frame's signals sit: per part (name, detection indexes or None for all of them,
    first and end row in the frame's samples, detections, joints); per signal its index in the
    `_Signals` (int64[S]), its joints (int64[S]) and its first row in the frame's samples (int64[S]);
    rows: int64[G], each sample row's row in the `_Signals` arrays; block: those rows as a slice
    where they are one increasing run (a crowd seen frame after frame: reading and writing them is
    then a copy of one block, not a gather), else `rows` itself (`_as_block`)."""
    parts: list[tuple[str, Optional[np.ndarray], int, int, int, int]]
    signals: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray
    rows: np.ndarray
    block: Any


class _Signals:
    """The state of every signal held, bodies, hands and faces together, addressed by signal key.

    Each signal owns a block of rows, one per joint, in row arrays shared by all parts: one frame's
    joints of every part and track are then filtered by one pass of array operations (at these
    sizes NumPy's cost is per call, not per number). row_shapes: name -> float64 shape with None
    at the rows' axis; signal_shapes: name -> (shape of one signal's entry, dtype, initial value).
    `frame(keys)` gives one frame's `_Layout` (new keys get a block; a freed block is reused by a
    signal of the same part); `free(signals)` releases signals.
    """

    def __init__(self, row_shapes: dict[str, tuple[Optional[int], ...]],
                 signal_shapes: dict[str, tuple[tuple[int, ...], Any, Any]], row_dtype: Any = np.float64) -> None:
        self.row_shapes, self.signal_shapes, self.row_dtype = row_shapes, signal_shapes, row_dtype
        self.rows = {n: np.zeros(tuple(0 if s is None else s for s in shape), row_dtype) for n, shape in row_shapes.items()}
        self.values = {n: np.full((0, *shape), fill, dtype) for n, (shape, dtype, fill) in signal_shapes.items()}
        self.start = np.zeros(0, np.int64)  # first row of each signal's block
        self.length = np.zeros(0, np.int64)  # its joints
        self.live = np.zeros(0, bool)
        self.index: dict[Hashable, int] = {}
        self.key_of: list[Optional[Hashable]] = []
        self.spare: dict[int, list[int]] = {}  # joints -> freed signals with a block of that size
        self.n_rows = 0
        self._last: Optional[tuple[tuple, Optional[_Layout]]] = None  # the last frame's keys, layout

    def _new(self, keys: list[Hashable], joints: int) -> list[int]:
        """Signals for new `keys` of `joints` joints each: freed blocks of that size first, then
        fresh ones, all at once (a crowd coming into view brings a thousand at a time)."""
        spare = self.spare.get(joints, [])
        out = [spare.pop() for _ in range(min(len(spare), len(keys)))]
        fresh = len(keys) - len(out)
        if fresh:
            s = len(self.key_of)
            self.key_of += [None] * fresh
            if s + fresh > len(self.start):  # grow the per-signal arrays (at least doubling: amortised)
                more = max(8, s, s + fresh - len(self.start))
                self.start = np.concatenate([self.start, np.zeros(more, np.int64)])
                self.length = np.concatenate([self.length, np.zeros(more, np.int64)])
                self.live = np.concatenate([self.live, np.zeros(more, bool)])
                for n, (shape, dtype, fill) in self.signal_shapes.items():
                    self.values[n] = np.concatenate([self.values[n], np.full((more, *shape), fill, dtype)])
            self.start[s:s + fresh] = self.n_rows + joints * np.arange(fresh)
            self.length[s:s + fresh] = joints
            self.n_rows += joints * fresh
            self._reserve(self.n_rows)
            out += range(s, s + fresh)
        for key, s in zip(keys, out):
            self.index[key], self.key_of[s] = s, key
        self.live[out] = True
        return out

    def _reserve(self, n_rows: int) -> None:
        """Row arrays with room for at least n_rows rows (at least doubling when they grow)."""
        for n, shape in self.row_shapes.items():
            axis = shape.index(None)
            have = self.rows[n].shape[axis]
            if n_rows > have:
                shape = list(self.rows[n].shape)
                shape[axis] = have + max(n_rows - have, have)
                # (zeros, then the old rows copied in: the new rows' memory is only touched when used)
                grown = np.zeros(shape, self.row_dtype)
                grown[(slice(None),) * axis + (slice(0, have),)] = self.rows[n]
                self.rows[n] = grown

    def frame(self, keys: dict[str, list[Optional[Hashable]]]) -> Optional[_Layout]:
        """The layout of one frame's signals (`signal_keys`), None when it has none."""
        flat = tuple(tuple(keys[p]) for p in PART_NAMES)
        if self._last is not None and self._last[0] == flat:  # the common case: the same people
            return self._last[1]
        parts, signals, g = [], [], 0
        # Room for this frame's new signals at once (growing one signal at a time copies the rows
        # over and over when a crowd comes into view).
        index = self.index
        new_rows = sum(PARTS[p].num_joints * sum(1 for k in keys[p] if k is not None and k not in index)
                       for p in PART_NAMES)
        if new_rows:
            self._reserve(self.n_rows + new_rows)
        for p in PART_NAMES:
            ks = keys[p]
            idx = [i for i, k in enumerate(ks) if k is not None]
            if not idx:
                continue
            j = PARTS[p].num_joints
            found = [index.get(ks[i]) for i in idx]
            if None in found:  # (new keys: signals for all of them at once, in their order)
                made = iter(self._new([ks[i] for i, s in zip(idx, found) if s is None], j))
                found = [next(made) if s is None else s for s in found]
            signals += found
            parts.append((p, None if len(idx) == len(ks) else np.asarray(idx), g, g + len(idx) * j, len(idx), j))
            g += len(idx) * j
        layout = None
        if signals:
            sig = np.asarray(signals, np.int64)
            lengths = self.length[sig]
            starts = np.cumsum(lengths) - lengths
            rows = np.repeat(self.start[sig] - starts, lengths) + np.arange(g)
            layout = _Layout(parts, sig, lengths, starts, rows, _as_block(rows))
        self._last = (flat, layout)
        return layout

    def free(self, signals: Iterable[int]) -> None:
        for s in signals:
            s = int(s)
            del self.index[self.key_of[s]]
            self.key_of[s], self.live[s] = None, False
            self.spare.setdefault(int(self.length[s]), []).append(s)
            for n, (_, _, fill) in self.signal_shapes.items():
                self.values[n][s] = fill
        self._last = None  # a layout may name a freed signal


def _samples(result: Result, layout: _Layout, dtype: Any = np.float64) -> np.ndarray:
    """float64[G, 5] (or `dtype`): the frame's signals' joints, 2D (x, y) then 3D (x, y, z), in
    layout order."""
    out = np.empty((len(layout.rows), 5), dtype)
    for p, idx, a, b, k, j in layout.parts:
        arr = result[p]
        at = out[a:b].reshape(k, j, 5)
        at[..., :2] = arr.pose2d if idx is None else arr.pose2d[idx]
        at[..., 2:] = arr.pose3d if idx is None else arr.pose3d[idx]
    return out


def _agree_share(agree: float) -> float:
    """A smoother's `agree` (the share of a 3D pose's disagreement with its 2D one taken out,
    `agreement.agree_with_2d`), checked."""
    if not 0 <= agree <= 1:
        raise ValueError("agree must be within 0..1")
    return float(agree)


def _part_poses(result: Result, layout: _Layout, est: np.ndarray, agree: float = 0.0
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per part of the layout, (pose2d, pose3d) float32 with the estimates `est` (float[G, 5]) in the
    signals' detections, their 3D poses brought `agree` of the way towards their 2D ones
    (`agreement.agree_with_2d`); the others as they are."""
    poses = {}
    for p, idx, a, b, k, j in layout.parts:
        seg = est[a:b].reshape(k, j, 5)
        s2, s3 = seg[..., :2].astype(np.float32), seg[..., 2:].astype(np.float32)
        if agree > 0:
            s3 = agree_with_2d(s2, s3, agree, image=(result.width, result.height))
        if idx is None:
            poses[p] = (s2, s3)
        else:
            p2, p3 = result[p].pose2d.copy(), result[p].pose3d.copy()
            p2[idx], p3[idx] = s2, s3
            poses[p] = (p2, p3)
    return poses


# -------------------------------------------------------------------------------- online


@dataclass(frozen=True)
class KalmanParams:
    """Settings of the online filter (`OnlineSmoother`, method "kalman"); chosen on bench.py
    --tracking's tuning scenes (benchmarks/scenes.py: TUNING_FAMILIES x TUNING_SEEDS).

    Each joint coordinate follows a constant-velocity Kalman filter whose two noise levels are
    measured on the signal itself, per track and joint, from its second differences d2 (see the
    module docstring): measurement noise r = (E[d2_t^2] - E[d2_t d2_t-1]) / 10 and motion
    q = E[d2^2] - 6 r. 2D figures are in units of the pose's box diagonal (so they hold for people
    near and far), 3D ones in metres.

    noise2d, noise3d: prior measurement noise (standard deviation); motion2d, motion3d: prior
    standard deviation of the true second difference per frame; prior_frames: the prior's weight,
    in frames; memory: frames over which the statistics are averaged once known (exponential);
    motion_gain: the filter's process noise starts at this times the measured motion (below 1:
    smoother; the statistics over-state the motion that the filter must follow), then follows the
    whiteness of its innovations (below); motion_gain3d: the same for 3D (None: motion_gain),
    higher: a walking body's 3D joints swing in depth, which the image hardly shows; min_ratio:
    the process noise is at least this times the measurement noise; manoeuvres: the process noise is
    multiplied by the normalised squared innovation, averaged with weight `nis_rate` per frame,
    when above 1 (at most `max_boost`): a limb that starts to swing is followed at once;
    outlier: innovations of the joints' offsets beyond this many standard deviations are clipped
    (heavy-tailed noise, bad joints); centre_outlier: the same for the poses' centres (large: a
    panning camera moves every centre at once, and clipping would hold them back); an innovation
    is clipped only if the last one was not (two in a row: the person moved); reset: a pose
    whose innovation is beyond this many standard deviations (an id that jumped to someone else)
    starts afresh from its detection;
    score_power: the measurement noise is scaled by (0.75 / score) ** score_power (within x0.25..x4;
    0.5, not 1: where scores say little of a detection's quality, trusting them cost accuracy);
    velocity0: the standard deviation of a new track's speed, per frame (2D: box diagonals; 3D: m);
    whiteness_step, whiteness_rate, whiteness_range: the process noise is also multiplied by
    exp(g), per signal and group of coordinates, where g follows the correlation of consecutive
    normalised innovations (each clipped at `outlier`), averaged with weight `whiteness_rate` per
    frame: g grows by `whiteness_step` times that correlation each frame, within
    +-log(whiteness_range). A filter with the right process noise has uncorrelated innovations; one
    that lags the motion makes errors that persist from frame to frame (positive correlation: more
    process noise), one that follows the noise makes errors that alternate (negative: less).
    whiteness_step 0 turns this off. guard: see GUARD (0: off).
    damping, damping_rate: the prediction carries the speed times 1 - damping (1 - a), where a
    (within 0..1) is the regression of each signal's steps (sample minus last estimate) on its
    predicted ones (speed times frames), per group of coordinates, averaged with weight
    `damping_rate` per frame from its 11th frame: below 1 where the motion turns back within a
    few frames (a swinging limb), about 1 where it carries on. damping 0: constant velocity.
    centre_noise: a pose centre's measurement noise (variance) is taken as at most r (1 / n +
    centre_noise), r the mean noise of its n joints' offsets (measured as above): the noise of a
    mean of n independent joints, plus an error shared by all of them (a shifted box) of up to
    this fraction of a joint's own. What the centre's second differences show beyond it is taken
    as motion, which the filter follows (a shaking camera, a runner's bounce: smoothing it away
    put the poses farther from the truth than the detections); inf: no bound. shared_motion: the
    bound holds only for a centre whose jitter its person's other part shares, by at least this
    much: the regression of the other part's centre's second differences (in pixels) on its own,
    averaged over about SHARED_MEMORY frames (a body's other part is its face, else a hand; a
    hand's or a face's is its body). A shaking camera and a runner's bounce move all of a
    person's parts at once; a detector's error on one detection is its own.
    """
    noise2d: float = 0.01
    noise3d: float = 0.02
    motion2d: float = 0.01
    motion3d: float = 0.01
    prior_frames: float = 10.0
    memory: float = 90.0
    motion_gain: float = 0.05
    motion_gain3d: Optional[float] = 0.25
    min_ratio: float = 0.01
    max_boost: float = 50.0
    nis_rate: float = 0.5
    outlier: float = 3.0
    centre_outlier: float = 10.0
    reset: float = 30.0
    score_power: float = 0.5
    velocity0: float = 0.03
    whiteness_step: float = 0.1
    whiteness_rate: float = 0.05
    whiteness_range: float = 10.0
    guard: float = GUARD
    damping: float = 0.5
    damping_rate: float = 0.05
    centre_noise: float = 1.0
    shared_motion: float = 0.5

    def __post_init__(self) -> None:
        for name in ("nis_rate", "whiteness_rate", "damping", "damping_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"KalmanParams.{name} is a weight between 0 and 1, not {getattr(self, name)}")
        if self.guard < 0:
            raise ValueError(f"KalmanParams.guard is a fraction of a part's size (0: off), not {self.guard}")
        if not 0.0 <= self.shared_motion <= 1.0:
            raise ValueError(f"KalmanParams.shared_motion is a share between 0 and 1, not {self.shared_motion}")
        if not self.centre_noise >= 0:
            raise ValueError(f"KalmanParams.centre_noise is a fraction >= 0 (inf: off), not {self.centre_noise}")
        if self.whiteness_step < 0 or self.whiteness_range < 1:
            raise ValueError("KalmanParams: whiteness_step must be >= 0 and whiteness_range >= 1 "
                             f"(got {self.whiteness_step} and {self.whiteness_range})")


# Per joint row (and per signal, for the centre): float[6, 5] of coordinates (estimate, speed, last
# sample, the sample before, last second difference, last normalised innovation; 2D x, y then 3D
# x, y, z) and float[12, 2] shared by each group of coordinates (2D, 3D): the covariance (p00,
# p01, p11), the noise statistics (E d2^2, E d2_t d2_t-1), the mean normalised squared
# innovation, the count of second differences seen, whether the last innovation was clipped, the
# mean correlation of consecutive normalised innovations and the log of the process noise's
# multiplier that follows it, and the damping's statistics (mean step times predicted step, mean
# predicted step squared).
_COORDS, _SHARED = 6, 12


def _as_block(index: np.ndarray) -> Any:
    """A slice for indexes that are one increasing run (then state arrays are used in place)."""
    if len(index) and index[-1] - index[0] == len(index) - 1 and (len(index) == 1 or (np.diff(index) == 1).all()):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _gather(state: np.ndarray, at: Any) -> np.ndarray:
    """state[:, at] (a view for a slice; np.take, three times quicker than indexing, otherwise)."""
    return state[:, at] if isinstance(at, slice) else np.take(state, at, axis=1)


def _scatter(state: np.ndarray, at: Any, values: np.ndarray) -> None:
    """state[:, at] = values (at: indexes, or a slice: one block copied); each row's last axis
    moved as one item where the arrays allow it (half the time of indexing float by float)."""
    if state.flags.c_contiguous and values.flags.c_contiguous and state.dtype == values.dtype:
        item = np.dtype((np.void, state.shape[-1] * state.itemsize))
        state.view(item)[..., 0][:, at] = values.view(item)[..., 0]
    else:
        state[:, at] = values


def _group_mean(a: np.ndarray) -> np.ndarray:
    """float[N, 2]: the mean of float[N, 5] over 2D's two coordinates and over 3D's three."""
    out = np.empty((len(a), 2), a.dtype)
    out[:, 0] = (a[:, 0] + a[:, 1]) * 0.5
    out[:, 1] = (a[:, 2] + a[:, 3] + a[:, 4]) * (1.0 / 3.0)
    return out


_SPREAD = np.array([0, 0, 1, 1, 1])  # each coordinate's group


def _spread(a: np.ndarray) -> np.ndarray:
    """float[N, 5]: float[N, 2] given to each group's coordinates (indexing: a third of np.repeat's time)."""
    return a[:, _SPREAD]


# Rows per pass of `_kalman_step`: its temporaries (float[N, 5] each) stay small enough for the
# allocator to reuse (at a crowd's 76,000 rows, whole arrays were given back to the system and
# page-faulted in again on every operation: a third of the filter's time).
KALMAN_ROWS = 8192


def _kalman_steps(coords: np.ndarray, shared: np.ndarray, at: Any, z: np.ndarray, unit: np.ndarray, k: np.ndarray,
                  run: np.ndarray, fresh: np.ndarray, score: np.ndarray, p: KalmanParams,
                  prior: tuple[np.ndarray, np.ndarray], outlier: float,
                  most_noise: Optional[np.ndarray] = None) -> np.ndarray:
    """`_kalman_step` on at most KALMAN_ROWS rows at a time (each row's filter is its own: the
    same numbers as one pass)."""
    n = len(z)
    if n <= KALMAN_ROWS:
        return _kalman_step(coords, shared, at, z, unit, k, run, fresh, score, p, prior, outlier, most_noise)
    out = np.empty(z.shape, np.float32)
    for i in range(0, n, KALMAN_ROWS):
        j = min(i + KALMAN_ROWS, n)
        part = slice(at.start + i, at.start + j) if isinstance(at, slice) else at[i:j]
        out[i:j] = _kalman_step(coords, shared, part, z[i:j], unit[i:j], k[i:j], run[i:j], fresh[i:j], score[i:j], p,
                                prior, outlier, None if most_noise is None else most_noise[i:j])
    return out


def _kalman_step(coords: np.ndarray, shared: np.ndarray, at: Any, z: np.ndarray, unit: np.ndarray, k: np.ndarray,
                 run: np.ndarray, fresh: np.ndarray, score: np.ndarray, p: KalmanParams,
                 prior: tuple[np.ndarray, np.ndarray], outlier: float,
                 most_noise: Optional[np.ndarray] = None) -> np.ndarray:
    """One step of the (damped) constant-velocity filter on the signals coords[:, at] (float[6, N, 5])
    and shared[:, at] (float[12, N, 2]) with samples z (float[N, 5]): unit: the statistics' units (float[N, 2]:
    2D, 3D); k: frames since the last sample, run: samples in a row, fresh: starts afresh, score:
    detection scores (float[N] each); prior: the statistics (E d2^2, E d2_t d2_t-1: float[2]) before
    any sample; most_noise: the most measurement noise (variance, in units; float[N, 2]) the
    statistics may give (None: no bound). Returns the estimates (float[N, 5])."""
    block = isinstance(at, slice)
    f32 = np.float32
    z, unit, k, score = z.astype(f32), unit.astype(f32), k.astype(f32), score.astype(f32)
    prior = (prior[0].astype(f32), prior[1].astype(f32))
    co, sh = _gather(coords, at), _gather(shared, at)  # views where `at` is a slice: written in place
    x, v, z1, z2, d2_last, nu_last = co
    p00, p01, p11, a, b, nis_mean, m, clipped, rho, log_gain, szv, svv = sh
    if fresh.any():
        a[fresh], b[fresh], m[fresh], nis_mean[fresh] = prior[0], prior[1], 0.0, 1.0
        rho[fresh], log_gain[fresh], szv[fresh], svv[fresh] = 0.0, 0.0, 0.0, 0.0
    # Noise statistics from the second differences of samples in a row (clipped: outliers).
    has2, has3 = (run >= 3)[:, None], (run >= 4)[:, None]
    all2, all3 = bool(has2.all()), bool(has3.all())  # (the common case: no np.where)
    u = _spread(unit)
    d2 = (z - 2 * z1 + z2) / u
    lim = 4 * np.sqrt(np.maximum(_spread(a), 1e-30))
    d2 = np.minimum(np.maximum(d2, -lim), lim)
    rate = np.maximum(1.0 / (m + p.prior_frames), 1.0 / p.memory)
    step_a, step_b = rate * (_group_mean(d2 * d2) - a), rate * (_group_mean(d2 * d2_last) - b)
    a += step_a if all2 else np.where(has2, step_a, 0.0)
    b += step_b if all3 else np.where(has3, step_b, 0.0)
    m += has2
    r = np.maximum((a - b) * 0.1, 1e-12)
    if most_noise is not None:
        r = np.minimum(r, most_noise)
    # Manoeuvres: while the innovations run larger than the filter expects (their normalised square,
    # averaged over a few frames, above 1), the motion allowed grows with them.
    gain = np.array([p.motion_gain, p.motion_gain if p.motion_gain3d is None else p.motion_gain3d], np.float32)
    q = 2 * gain * np.maximum(a - 6 * r, p.min_ratio * r) * np.minimum(np.maximum(nis_mean, 1.0), p.max_boost)
    if p.whiteness_step:
        q = q * np.exp(log_gain)
    u2 = unit * unit
    q, r = q * u2, r * u2
    if p.score_power:
        r = r * (np.clip(0.75 / np.maximum(score, 1e-3), 0.25, 4.0) ** p.score_power)[:, None]
    # Predict (constant velocity, piecewise-constant acceleration of variance q per frame).
    one_frame = bool((k == 1).all())  # (the common case: every signal seen in the last frame)
    kk = 1.0 if one_frame else k[:, None]
    k2 = kk * kk
    al: Any = 1.0  # the speed carried into the prediction (damping, below)
    if p.damping:
        # Damping: the regression of each step (sample minus last estimate) on the predicted one,
        # from the frames before this one, within 0..1 (1: constant velocity; less where the
        # speed turns back within a few frames, as a swinging limb's does), taken `damping` of
        # the way; the statistics move on with this frame's step.
        al = np.clip(szv / np.maximum(svv, f32(1e-12)), 0.0, 1.0)
        al = (1.0 - p.damping) + p.damping * al
        known = (m > 10) & (svv > 1e-12)
        if not known.all():
            al = np.where(known, al, f32(1.0))
        moved = v if one_frame else kk * v
        rate = f32(p.damping_rate) * has2 if not all2 else p.damping_rate  # (has2: 3 samples in a row)
        szv += rate * (_group_mean((z - x) * moved) - szv)
        svv += rate * (_group_mean(moved * moved) - svv)
    pp00 = p00 + 2 * kk * al * p01 + k2 * al * al * p11 + q * k2 * k2 * 0.25
    pp01 = al * (p01 + kk * al * p11) + q * k2 * kk * 0.5
    pp11 = al * al * p11 + q * k2
    al5 = _spread(al) if p.damping else 1.0
    # Update, the innovation clipped at `outlier` standard deviations (not after a gap: a person
    # who comes back where the prediction did not put them is followed).
    s = pp00 + r
    xp = x + kk * al5 * v
    innov = z - xp
    inv_s = 1.0 / s
    nis = _group_mean(innov * innov) * inv_s
    nis_mean += p.nis_rate * (nis - nis_mean)
    if p.whiteness_step:
        # Whiteness: the correlation of this normalised innovation with the last one (both in a run
        # of samples one frame apart) steers the process noise's multiplier.
        nu = innov * _spread(np.sqrt(inv_s))
        nu = np.minimum(np.maximum(nu, -p.outlier), p.outlier)
        rho += p.whiteness_rate * (_group_mean(nu * nu_last) - rho) * has3
        limit = math.log(p.whiteness_range)
        log_gain[...] = np.minimum(np.maximum(log_gain + p.whiteness_step * rho * has3, -limit), limit)
        co[5] = nu
    # Clipped only if the last one was not (two in a row: the person moved, not the noise) and
    # not after a gap (a person who comes back where the prediction did not put them is followed).
    lim = outlier * np.sqrt(s)
    if not one_frame:
        lim = lim * np.where(kk > 1.25, np.float32(np.inf), np.float32(1.0))
    lim = np.where(clipped > 0, np.float32(np.inf), lim)
    settled = run >= 6  # nor in the first frames of a run (after a gap the speed is not known yet)
    if not settled.all():
        lim = np.where(settled[:, None], lim, np.float32(np.inf))
    clipped[...] = nis > outlier * outlier
    lim = _spread(lim)
    innov = np.minimum(np.maximum(innov, -lim), lim)
    k0, k1 = pp00 * inv_s, pp01 * inv_s
    co[4] = d2 if all2 else np.where(has2, d2, d2_last)
    co[3] = z1
    co[2] = z
    co[0] = xp + _spread(k0) * innov
    co[1] = al5 * v + _spread(k1) * innov
    sh[0], sh[1], sh[2] = (1 - k0) * pp00, (1 - k0) * pp01, pp11 - k1 * pp01
    # A jump far beyond anything the filter expects (an id that moved to someone else): start afresh.
    reset = fresh[:, None] | (nis > p.reset * p.reset)
    if reset.any():
        rows, groups = np.nonzero(reset)
        for g, cols in enumerate((slice(0, 2), slice(2, 5))):
            at_g = rows[groups == g]
            if len(at_g):
                co[0, at_g, cols], co[1, at_g, cols] = z[at_g, cols], 0.0
                sh[0, at_g, g], sh[1, at_g, g], sh[2, at_g, g] = r[at_g, g], 0.0, (p.velocity0 * unit[at_g, g]) ** 2
                nis_mean[at_g, g], clipped[at_g, g] = 1.0, 0.0
    if not block:
        _scatter(coords, at, co)
        _scatter(shared, at, sh)
    return co[0]


class OnlineSmoother:
    """Causal smoothing of every tracked signal: `update(result, time_s=None)` -> the smoothed result.

    method: "kalman" (default; `KalmanParams`, see the module docstring) or "one_euro" (the
    One-Euro filter with `params2d` and `params3d`, `OneEuroParams`). time_s: seconds of this
    frame (None: one frame after the last). The Kalman filter counts time in frames of the stream,
    the median of the last 31 intervals between frames (`rate` frames a second before any): a 60
    fps video, a 24 fps film and every other frame of a video are filtered as a 30 fps one is, and
    a frame missing from the stream is a gap. A signal unseen for more than RESET_AFTER_S seconds
    is forgotten (it starts afresh).
    """

    def __init__(self, params: Optional[KalmanParams] = None, method: str = "kalman",
                 params2d: OneEuroParams = OneEuroParams(), params3d: OneEuroParams = OneEuroParams(),
                 rate: float = DEFAULT_RATE, agree: float = AGREE, **kalman: Any) -> None:
        if method not in ("kalman", "one_euro"):
            raise ValueError(f"unknown online filter {method!r}; use 'kalman' or 'one_euro'")
        self.method, self.agree = method, _agree_share(agree)
        self.params = params if params is not None else KalmanParams(**kalman)
        self.params2d, self.params3d, self.rate = params2d, params3d, float(rate)
        self._t: Optional[float] = None
        # The time between two frames of the stream (the Kalman filter counts in frames): the
        # median of the last intervals seen, so that a camera's jitter and a dropped frame do not
        # move it; 1 / rate before any.
        self._steps: deque[float] = deque(maxlen=31)
        self._frame_s = 1.0 / self.rate
        if method == "one_euro":
            # estimate and speed of each joint: 2D (x, y) then 3D (x, y, z), side by side
            self._signals = _Signals({"x": (None, 5), "d": (None, 5)}, {"t": ((), np.float64, -np.inf)})
            p2, p3 = params2d, params3d
            predict = np.array([p2.predict] * 2 + [p3.predict] * 3, np.float64)
            self._predict = None if predict.all() else predict  # None: every coordinate (x 1, skipped)
            # tau of the speed's low-pass (as _alpha computes it), per coordinate
            self._d_tau = 1.0 / (2 * math.pi * np.array([p2.d_cutoff] * 2 + [p3.d_cutoff] * 3))
        else:
            # Per joint row (each joint's offset from its pose's centre) and per signal (the
            # centre): the filter's state (_KALMAN_STATE), 2D then 3D side by side.
            # (float32: the poses are; half the memory traffic of float64, the same outputs within 1e-3 px)
            self._signals = _Signals({"k": (_COORDS, None, 5), "s": (_SHARED, None, 2)},
                                     {"t": ((), np.float64, -np.inf), "run": ((), np.int64, 0),
                                      "k": ((_COORDS, 5), np.float32, 0.0), "s": ((_SHARED, 2), np.float32, 0.0),
                                      "misfit": ((), np.float64, 0.0),
                                      "shared": ((2,), np.float64, 0.0)},
                                     row_dtype=np.float32)
            p = self.params
            r0 = np.array([p.noise2d, p.noise3d]) ** 2
            q0 = np.array([p.motion2d, p.motion3d]) ** 2
            # The statistics the priors give (E d2^2 = q + 6 r, E d2_t d2_t-1 = q - 4 r): offsets
            # have the joints' noise, centres a tenth of it.
            self._prior_offset = (6 * r0 + q0, q0 - 4 * r0)
            self._prior_centre = (0.6 * r0 + q0, q0 - 0.4 * r0)
            self._partners: tuple[Optional[_Layout], np.ndarray] = (None, np.zeros(0, np.int64))

    def _step(self, x: np.ndarray, x_prev: np.ndarray, dx_prev: np.ndarray, dt: np.ndarray,
              scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`one_euro_step` on 2D and 3D side by side (x: float[G, 5], one row per joint; dt and
        scale: float[G, 1], dt may be one number), each with its own settings, in one pass: the
        same numbers as two calls."""
        p2, p3 = self.params2d, self.params3d
        dt = np.maximum(dt, 1e-6)
        predicted = x_prev + (dx_prev if self._predict is None else self._predict * dx_prev) * dt
        dx = (x - x_prev) / dt
        dx_hat = dx_prev + 1.0 / (1.0 + self._d_tau / dt) * (dx - dx_prev)  # _alpha(d_cutoff, dt)
        sq = dx_hat * dx_hat
        cutoff = np.empty_like(x)
        cutoff[:, :2] = p2.min_cutoff + p2.beta * (np.sqrt(sq[:, :2].sum(-1, keepdims=True)) / scale)
        cutoff[:, 2:] = p3.min_cutoff + p3.beta * np.sqrt(sq[:, 2:].sum(-1, keepdims=True))
        a = _alpha(cutoff, dt)
        return predicted + a * (x - predicted), dx_hat

    def update(self, result: Result, time_s: Optional[float] = None) -> Result:
        t = (0.0 if self._t is None else self._t + self._frame_s) if time_s is None else float(time_s)
        if self._t is not None and t <= self._t:  # repeated or backward times: one frame on
            t = self._t + self._frame_s
        if self._t is not None:
            self._steps.append(t - self._t)
            steps, h = sorted(self._steps), len(self._steps) // 2  # (their median: np.median's number,
            self._frame_s = steps[h] if len(steps) % 2 else (steps[h - 1] + steps[h]) / 2  # without numpy.ma)
        self._t = t
        store = self._signals
        keys = signal_keys(result)
        layout = store.frame(keys)
        poses = {}
        if layout is not None:
            if self.method == "kalman" and self._partners[0] is not layout:
                self._partners = (layout, _partners(keys))
            x = _samples(result, layout)
            xy = x[:, :2]
            span = np.maximum.reduceat(xy, layout.starts) - np.minimum.reduceat(xy, layout.starts)
            scale = np.maximum(np.sqrt((span * span).sum(-1)), 1.0)  # each pose's box diagonal, pixels
            if self.method == "kalman":
                est = self._kalman(x, layout, scale, t, _scores(result, layout))
            else:
                est = self._one_euro(x, layout, scale, t)
            poses = _part_poses(result, layout, est, self.agree)
        # Signals unseen for long are forgotten: memory follows the people in view.
        old = np.flatnonzero(store.live & (t - store.values["t"] > RESET_AFTER_S))
        if len(old):
            store.free(old)
        return _with_poses(result, poses) if poses else result

    def _one_euro(self, x: np.ndarray, layout: _Layout, scale: np.ndarray, t: float) -> np.ndarray:
        store = self._signals
        sig, rows, n = layout.signals, layout.rows, layout.lengths
        xs, ds, ts = store.rows["x"], store.rows["d"], store.values["t"]
        dt = t - ts[sig]
        fresh = dt > RESET_AFTER_S  # new signals have t = -inf
        dt = np.where(fresh, 1.0, dt)
        # One time step for all (the common case: every signal seen in the last frame) is a number.
        step = dt[0] if (dt == dt[0]).all() else np.repeat(dt, n)[:, None]
        est, speed = self._step(x, xs[rows], ds[rows], step, np.repeat(scale, n)[:, None])
        if fresh.any():
            fresh_rows = np.repeat(fresh, n)[:, None]
            est, speed = np.where(fresh_rows, x, est), np.where(fresh_rows, 0.0, speed)
        xs[rows], ds[rows], ts[sig] = est, speed, t
        return est

    def _kalman(self, z: np.ndarray, layout: _Layout, scale: np.ndarray, t: float, score: np.ndarray) -> np.ndarray:
        """The filter's estimates for one frame's samples z (float[G, 5]); state updated in place.

        Each pose is filtered as its centre (the mean of its joints: where the person or the part
        is) and each joint's offset from it (the limbs' motion, the hand's and face's shape): the
        centre's noise is averaged over the joints, and offsets of joints that move together stay
        still, so that both are smoothed more, with less lag, than joints on their own."""
        store = self._signals
        sig, n, starts = layout.signals, layout.lengths, layout.starts
        V = store.values
        dt = t - V["t"][sig]
        fresh = dt > RESET_AFTER_S  # new signals have t = -inf
        k = np.where(fresh, 1.0, dt / self._frame_s)  # frames since the last sample
        whole = np.round(k)
        k = np.where(np.abs(k - whole) < 1e-6, whole, k)  # (time stamps' rounding: whole frames stay whole)
        run = np.where(fresh, 1, np.where(np.abs(k - 1.0) < 0.25, V["run"][sig] + 1, 1))  # samples in a row
        V["t"][sig], V["run"][sig] = t, run
        unit = np.ones((len(sig), 2))  # statistics in units: 2D in box diagonals of the pose, 3D in metres
        unit[:, 0] = scale
        centre = np.add.reduceat(z, starts) / n[:, None]
        offset = z - np.repeat(centre, n, 0)
        most = None
        if math.isfinite(self.params.centre_noise):
            # The centre's noise is at most that of a mean of n independent joints, whose noise is
            # that of their offsets (their statistics before this frame), plus a shared error of up
            # to `centre_noise` times a joint's.
            a, b = _gather(store.rows["s"][3:5], layout.block)
            joint = np.add.reduceat(np.maximum((a - b) * 0.1, 1e-12), starts) / n[:, None]
            moves = _moves_together(V["shared"][sig], self.params.shared_motion)
            most = np.where((fresh | ~moves)[:, None], np.inf, joint * (1.0 / n + self.params.centre_noise)[:, None])
        c = _kalman_steps(V["k"].transpose(1, 0, 2), V["s"].transpose(1, 0, 2), _as_block(sig), centre, unit, k, run, fresh, score,
                          self.params, self._prior_centre, self.params.centre_outlier, most)
        if most is not None:
            self._note_shared(sig, run, scale)
        rep = lambda a: np.repeat(a, n, 0)
        o = _kalman_steps(store.rows["k"], store.rows["s"], layout.block, offset, rep(unit), rep(k), rep(run),
                          rep(fresh), rep(score), self.params, self._prior_offset, self.params.outlier)
        est = o + rep(c)
        if self.params.guard:
            # (measured on the poses' centres, which is where fast parts miss: a tenth of the work)
            misfit = np.where(fresh, 0.0, V["misfit"][sig])
            miss = centre[:, :2] - c[:, :2]
            _guard_share(miss[:, 0] * miss[:, 0] + miss[:, 1] * miss[:, 1], scale, misfit, self.params.guard)
            _give_back(est, z, layout, misfit)
            V["misfit"][sig] = misfit
        return est

    def _note_shared(self, sig: np.ndarray, run: np.ndarray, scale: np.ndarray) -> None:
        """`_note_shared_motion` with each centre's last second difference (2D, pixels), where it
        has three samples in a row."""
        d2 = self._signals.values["k"][sig, 4, :2].astype(np.float64) * scale[:, None]  # (kept in box diagonals)
        _note_shared_motion(self._signals.values["shared"], sig, d2, run >= 3, self._partners[1])

    def run(self, results: Iterable[Result]) -> Iterator[Result]:
        """Smooth an iterable of results, one frame at `rate` apart."""
        for r in results:
            yield self.update(r)


SHARED_MEMORY = 20.0  # frames over which a centre's motion shared with its person's other part is averaged


def _note_shared_motion(shared: np.ndarray, sig: np.ndarray, d: np.ndarray, ready: np.ndarray,
                        partner: np.ndarray) -> None:
    """Update (in place) shared[sig] (float[S, 2]: running means of the other part's difference
    times this centre's, and of this centre's squared) with each centre's latest difference d
    (float[S, 2], pixels) where it and its person's other part (`_partners`) are both `ready`."""
    both = ready & (partner >= 0)
    both[both] &= ready[partner[both]]
    if not both.any():
        return
    i = np.flatnonzero(both)
    own, other = d[i], d[partner[i]]
    now = np.stack([(own * other).sum(-1), (own * own).sum(-1)], -1)
    kept = shared[sig[i]]
    shared[sig[i]] = kept + (now - kept) / SHARED_MEMORY


def _moves_together(shared: np.ndarray, share: float) -> np.ndarray:
    """bool[S]: where the regression of the other part's difference on a centre's own (`shared`,
    float[S, 2], `_note_shared_motion`) is at least `share`."""
    return shared[:, 0] >= share * np.maximum(shared[:, 1], 1e-30)


def _partners(keys: dict[str, list[Optional[Hashable]]]) -> np.ndarray:
    """int64[S]: for each signal of a frame (`signal_keys`, in `_Signals.frame`'s order), the
    position of its person's other part (a body's face, else a hand; a hand's or a face's body),
    -1 where there is none (a lone hand or face shares no id with a body)."""
    flat = [k for p in PART_NAMES for k in keys[p] if k is not None]
    at = {k: i for i, k in enumerate(flat)}
    out = np.full(len(flat), -1, np.int64)
    for i, (part, track, _) in enumerate(flat):
        if part == "body":
            for other in (("face", track, ""), ("hand", track, "left_hand"), ("hand", track, "right_hand")):
                if other in at:
                    out[i] = at[other]
                    break
        else:
            out[i] = at.get(("body", track, ""), -1)
    return out


def _guard_share(miss: np.ndarray, size: np.ndarray, misfit: np.ndarray, limit: float,
                 confirm: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
    """The guard's share of frames missed (see GUARD): update `misfit` (float[S], in place) from
    this frame's squared misses of the signals' smoothed poses (float[S], pixels^2: mean over the
    joints measured) and their sizes (float[S], pixels). confirm: given the indexes of the signals
    missed, whether each counts (bool)."""
    far = miss > (limit * limit) * size * size
    if confirm is not None and far.any():
        at = np.flatnonzero(far)
        far[at] = confirm(at)
    misfit += (far - misfit) / GUARD_MEMORY


def _give_back(est: np.ndarray, sample: np.ndarray, layout: _Layout, misfit: np.ndarray) -> None:
    """The guard: the samples (2D) in place of the estimates of the signals whose share of frames
    missed is above GUARD_SHARE."""
    give = np.flatnonzero(misfit > GUARD_SHARE)
    if len(give):
        at = ranges(layout.starts[give], layout.lengths[give])
        est[at, :2] = sample[at, :2]


def _scores(result: Result, layout: _Layout) -> np.ndarray:
    """float[S]: the detection score of each signal of the layout."""
    return np.concatenate([result[pn].scores if idx is None else result[pn].scores[idx]
                           for pn, idx, _, _, _, _ in layout.parts]).astype(np.float64)


# -------------------------------------------------------------------------------- offline


class OfflineSmoother:
    """Zero-phase smoothing with a bounded look-ahead (see the module docstring).

    `push(result)` -> the results now final (the one pushed `window` frames ago, once enough
    frames came); `flush()` -> the rest, at the end. `run(results)` does both over an iterable.
    window: frames looked at on each side (the delay); sigma: the Gaussian weights' width in
    frames; degree: of the local polynomial; max_gap: the longest run of missing frames that is
    filled (a longer one splits the signal); adaptive: narrow the fit where a signal's motion
    outruns it (`_adapt`, `_fit_centres`), and give the detections back where no fit follows
    them (`_guard`, GUARD); glitch: a joint's sample that stands out from its neighbours by more
    than this many times its usual distance from them is pulled back to that distance before the
    fits use it (`_glitches`; 0: off). Memory: 2 * window + 1 frames per signal (each held twice,
    so that every window is one slice of the ring).
    """

    def __init__(self, window: int = 10, sigma: float = 4.0, degree: int = 2, max_gap: int = 10,
                 adaptive: bool = True, glitch: float = 2.5, agree: float = AGREE) -> None:
        if window < 0 or sigma <= 0 or degree < 0 or max_gap < 0 or glitch < 0:
            raise ValueError("window, degree, max_gap and glitch must be >= 0 and sigma > 0")
        self.agree = _agree_share(agree)
        self.window, self.sigma, self.degree, self.max_gap = int(window), float(sigma), int(degree), int(max_gap)
        self.adaptive, self.glitch = bool(adaptive), float(glitch)
        self._noise_layout: Optional[tuple] = None  # (layout, its _noise_rows)
        self._candidates: Optional[tuple] = None  # (frame, its layout, rows): `_glitches`
        self._size = n = 2 * self.window + 1
        self._pending: deque[tuple[int, Any, Result, Optional[_Layout]]] = deque()
        # Per signal: the positions of the last `size` frames (-1: none) and its last position; per
        # joint row, the samples (2D then 3D) of those frames, in a ring of `size` slots (slot =
        # position % size), written twice (slots s and s + size): any window is then one slice.
        self._signals = _Signals({"s": (2 * n, None, 5), "glitch": (4, None, 2)},
                                 {"pos": ((n,), np.int64, -1), "seen": ((), np.int64, np.iinfo(np.int64).min),
                                  "noise": ((4, 2), np.float64, 0.0),
                                  "shape_noise": ((4,), np.float64, 0.0),
                                  "noise_median": ((5,), np.float64, 0.0),
                                  "clipped_noise": ((2,), np.float64, 0.0),
                                  "shared": ((2,), np.float64, 0.0),
                                  "bias": ((2,), np.float64, 1.0),
                                  "risk": ((1 + len(self.NARROWER), 2), np.float64, np.nan),
                                  "centre": ((2 * n, 5), np.float32, 0.0),
                                  "loo": ((1 + len(self.CENTRE_NARROWER), 2), np.float64, np.nan),
                                  "misfit": ((), np.float64, 0.0),
                                  "glitch_n": ((), np.int64, 0)},
                                 row_dtype=np.float32)  # the samples are float32 (Result poses)
        self._weights: dict[tuple[int, int], np.ndarray] = {}
        self._n = 0
        self._partners: tuple[Optional[_Layout], np.ndarray] = (None, np.zeros(0, np.int64))

    @property
    def _rings(self) -> dict[Hashable, int]:
        """The signals held (key -> index)."""
        return dict(self._signals.index)

    def push(self, result: Result, tag: Any = None, frame: Optional[int] = None) -> list[tuple[Any, Result]]:
        """Add the next frame's result (with an optional `tag` returned beside it, e.g. its Frame);
        returns [(tag, smoothed result)] for the frames now complete, oldest first.

        frame: its frame number, when frames were left out (`--every`): window, sigma and max_gap
        then count the source's frames, and the frames left out are gaps. None (or a number not
        after the last one): the frame after the last.
        """
        pos = self._n if frame is None or frame < self._n else int(frame)
        self._n = pos + 1
        store = self._signals
        keys = signal_keys(result)
        layout = store.frame(keys)
        if layout is not None:
            if self.adaptive and self._partners[0] is not layout:
                self._partners = (layout, _partners(keys))
            slot = pos % self._size
            x = _samples(result, layout, np.float32)[None]
            ring = store.rows["s"]
            for at in (slot, slot + self._size):
                _scatter(ring[at:at + 1], layout.block, x)
            store.values["pos"][layout.signals, slot] = pos
            store.values["seen"][layout.signals] = pos
            if self.adaptive:
                # (each pose's centre, the mean of its joints, in a ring of its own: `_fit_centres`)
                centres = np.add.reduceat(x[0].astype(np.float64), layout.starts) / layout.lengths[:, None]
                store.values["centre"][layout.signals, slot] = centres
                store.values["centre"][layout.signals, slot + self._size] = centres
                self._note_noise(layout, pos)
        self._pending.append((pos, tag, result, layout))
        if self.glitch:
            self._glitches(pos)
        out = []
        while self._pending and self._pending[0][0] <= pos - self.window:
            out.append(self._emit(self._pending.popleft(), last=pos))
        return out

    def flush(self) -> list[tuple[Any, Result]]:
        """The results still held, smoothed with what came (call once at the end)."""
        last = self._n - 1
        out = [self._emit(e, last=last) for e in self._pending]
        self._pending.clear()
        return out

    def run(self, results: Iterable[Result]) -> Iterator[Result]:
        for r in results:
            for _, s in self.push(r):
                yield s
        for _, s in self.flush():
            yield s

    def _emit(self, entry: tuple[int, Any, Result, Optional[_Layout]], last: int) -> tuple[Any, Result]:
        m, tag, result, layout = entry
        w, store = self.window, self._signals
        poses = {}
        if layout is not None:
            sig, n, samples = layout.signals, layout.lengths, store.rows["s"]
            # Each signal's fit at m is a weighted sum of its samples in the window (frames m - w ..
            # m + w): one weight per frame, the same for every signal whose frames present are the
            # same. Where they are one unbroken run through m (the common case: the symmetric
            # kernel, or a one-sided one at a track's ends) the weights are `local_fit_weights`;
            # with gaps, `_gaps_weights`. Then one pass over the ring's window does every signal.
            stamps = store.values["pos"][sig]
            inside = (stamps >= max(m - w, 0)) & (stamps <= min(last, m + w))
            weights = self._window_weights(m, stamps, inside)
            centre = weights[:, w]
            default_weights = weights
            first = (m - w) % self._size
            window = samples[first:first + 2 * w + 1, :store.n_rows]  # a view: float[2w + 1, R, 5]
            rows = layout.rows
            # (only the frames that some weight uses: near a clip's ends, and in a short clip, the
            # others are slots never written, which cost memory traffic and page faults to read)
            used = np.flatnonzero(weights.any(0))
            full_window = window
            if len(used) and (used[0] > 0 or used[-1] < 2 * w):
                window, weights = window[used[0]:used[-1] + 1], weights[:, used[0]:used[-1] + 1]
            if 2 * len(rows) < store.n_rows:  # few of the ring's rows in this frame: these rows only
                est = _weighted(np.repeat(weights, n, 0), window[:, rows])
            else:
                # Most signals share their weights (every frame of the window: the symmetric kernel;
                # or the same frames at a clip's ends): one product for all the ring's rows, then the
                # others on their own rows.
                common = _most_common_row(weights)
                other = np.flatnonzero((weights != common).any(1))
                if len(other) < len(sig) // 2:
                    est = _slot_sum(common, window)[layout.block]
                    if len(other):
                        at = ranges(layout.starts[other], n[other])
                        est[at] = _weighted(np.repeat(weights[other], n[other], 0), window[:, rows[at]])
                else:  # all rows, each with its own weights, in place, then those of this frame
                    every = np.zeros((store.n_rows, weights.shape[1]), np.float32)
                    every[rows] = np.repeat(weights, n, 0)
                    est = np.einsum("rs,src->rc", every, window, optimize=True)[layout.block]
            if self.adaptive:
                # The centres' fits first: a narrower fit of the joints must do better than the
                # default one with its centre's fit, which follows a pose moving fast as a whole.
                default = est[self._noise_rows(layout)[0]] if m % self.BIAS_EVERY == 0 else None
                w0, bound = self._fit_centres(est, layout, m, stamps, inside, default_weights)
                self._adapt(est, w0, default, full_window, layout, m, stamps, inside, centre, bound)
                if self.GUARD:
                    self._guard(est, full_window[w, layout.block], layout, m, stamps, inside)
            poses = _part_poses(result, layout, est, self.agree)
        # Forget the signals that no frame still pending can use.
        gone = np.flatnonzero(store.live & (store.values["seen"] < m + 1 - w))
        if len(gone):
            store.free(gone)
        return tag, (_with_poses(result, poses) if poses else result)

    def _window_weights(self, m: int, stamps: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """float32[S, 2 window + 1]: each signal's weights of frames m - window .. m + window in its
        fit at m."""
        w = self.window
        count = inside.sum(1)
        lo = np.where(inside, stamps, m + w + 1).min(1)
        hi = np.where(inside, stamps, m - w - 1).max(1)
        run = (count == hi - lo + 1) & (lo <= m) & (hi >= m)
        weights = np.zeros((len(stamps), 2 * w + 1), np.float32)
        for left, right in set(zip((m - lo[run]).tolist(), (hi[run] - m).tolist())):
            sel = run & (lo == m - left) & (hi == m + right)
            weights[sel, w - left:w + right + 1] = self._kernel(left, right)
        gaps = np.flatnonzero(~run)
        if len(gaps):
            weights[gaps] = self._gaps_weights(self._present(m, stamps[gaps], inside[gaps]))
        return weights

    def _present(self, m: int, stamps: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """bool[S, 2 window + 1]: which of the frames m - window .. m + window each signal has
        (`stamps` and `inside` of the ring's slots, as `_emit` reads them)."""
        present = np.zeros((len(stamps), 2 * self.window + 1), bool)
        k_idx, s_idx = np.nonzero(inside)
        present[k_idx, stamps[k_idx, s_idx] - (m - self.window)] = True
        return present

    def _gaps_weights(self, present: np.ndarray) -> np.ndarray:
        """float[K, 2 window + 1]: for each row of `present` (bool[K, 2 window + 1]: the frames
        m - window .. m + window there, m among them), the weight of each frame in the fit at m: the
        span around m whose gaps are at most max_gap frames long, gaps filled linearly, then the
        local fit; all rows at once."""
        w, k = self.window, len(present)
        size = 2 * w + 1
        rows = np.arange(k)
        # The span: from m outwards, present frames while the step to the next is at most max_gap + 1.
        lo, hi = np.full(k, w), np.full(k, w)
        for side, edge in ((-1, lo), (1, hi)):
            open_ = np.ones(k, bool)
            for g in (range(w - 1, -1, -1) if side < 0 else range(w + 1, size)):
                take = open_ & present[:, g]
                reach = np.abs(g - edge) <= self.max_gap + 1
                open_ &= ~(present[:, g] & ~reach)
                edge[take & reach] = g
        # Each frame of the span: its nearest present frames at or before and at or after it.
        before, after = np.zeros((k, size), np.int64), np.zeros((k, size), np.int64)
        last = np.full(k, w)
        for g in range(size):
            last = np.where(present[:, g], g, last)
            before[:, g] = last
        nxt = np.full(k, w)
        for g in range(size - 1, -1, -1):
            nxt = np.where(present[:, g], g, nxt)
            after[:, g] = nxt
        kern = np.zeros((k, size))  # each row's kernel over its span's frames
        for left, right in set(zip((w - lo).tolist(), (hi - w).tolist())):
            kern[(w - lo == left) & (hi - w == right), w - left:w + right + 1] = self._kernel(left, right)
        out = np.zeros((k, size))
        for g in range(size):  # a filled frame's weight goes to the two present frames it came from
            b, a = before[:, g], after[:, g]
            f = np.where(a > b, (g - b) / np.maximum(a - b, 1), 0.0)
            out[rows, b] += kern[:, g] * (1 - f)
            out[rows, a] += kern[:, g] * f
        return out

    def _kernel(self, left: int, right: int) -> np.ndarray:
        weights = self._weights.get((left, right))
        if weights is None:
            weights = self._weights[(left, right)] = local_fit_weights(left, right, self.sigma, self.degree)
        return weights

    def _adapt(self, est: np.ndarray, est_w0: np.ndarray, default: Optional[np.ndarray], window: np.ndarray,
               layout: _Layout, m: int, stamps: np.ndarray, inside: np.ndarray, w0: np.ndarray,
               bound: Optional[np.ndarray] = None) -> None:
        """Where a signal's noise is small against its motion (a precise, fast hand), replace (in
        place) its fit in `est` (the default fit, its centre's fit added: `_fit_centres`, whose
        weight on a joint's own sample is `est_w0`, float[S, 2]) by a narrower one (`NARROWER`)
        whose estimated error is lower, per group of coordinates (2D, 3D): Stein's unbiased
        estimate of a linear fit's squared error, |sample - fit|^2 + 2 r w0 (w0: the fit's weight
        on the sample), summed over the signal's joints and averaged over the last frames, with r
        the noise variance measured on the signal's third differences (see `_note_noise`; in 2D at
        most `bound`, float[S], where given: `_noise_bound`). Tried
        only where the default fit (`default`, without its centre's fit, on the rows `_noise_rows`
        picks) runs farther from the samples than noise without its gross errors would put it
        (`BIAS`; w0: the default fit's weight on the sample, float[S]), which is checked every
        `BIAS_EVERY` frames (the cost stays small in crowds; `default` is None on the others)."""
        store = self._signals
        sig, n, rows, w = layout.signals, layout.lengths, layout.rows, self.window
        starts = layout.starts
        group = lambda a: np.stack([a[:, :2].sum(-1), a[:, 2:].sum(-1)], -1)

        def noise_of(which: Any, clipped: bool = False) -> tuple[np.ndarray, np.ndarray]:
            """(known: bool[K], r: float[K, 2]) of signals sig[which]; clipped: their noise without
            its gross errors (see `_note_noise`)."""
            noise = store.values["noise"][sig[which]]  # float[K, 4, 2]: A, B, count A, count B
            known = (noise[:, 2, 0] >= 5) & (noise[:, 3, 0] >= 5)
            if clipped:
                r = store.values["clipped_noise"][sig[which]] / (70.0 * np.maximum(noise[:, 2], 1))
            else:
                r = _third_noise(noise)
            if bound is not None:
                r[:, 0] = np.minimum(r[:, 0], bound[which])
            return known, np.maximum(r, 1e-12)

        if default is not None:
            # How much farther the default fit runs from the samples than noise alone would put it
            # (on the joints that tell the noise), averaged over the last frames: well above 1 where
            # it cannot follow the motion. The noise here leaves out the detector's gross errors
            # (a swapped limb, a joint far off), which are rare but can make its plain mean
            # square many times what most frames have, and then hide the lag of a fit that
            # cannot follow a fast dancer at 15 fps. Stein's estimate below, which weighs each
            # fit's error, takes the plain variance: the one a linear fit's error has.
            known, r = noise_of(slice(None), clipped=True)
            pick, used, sub = self._noise_rows(layout)
            residual = np.add.reduceat(group((window[w, rows[pick]] - default) ** 2), sub, 0).astype(np.float64)
            ratio = residual / np.maximum(r * used[:, None] * np.array([2.0, 3.0]) * (1 - w0.astype(np.float64))[:, None],
                                          1e-30)
            bias = store.values["bias"][sig]
            step = bias + (ratio - bias) * (self.BIAS_EVERY / self.BIAS_MEMORY)
            store.values["bias"][sig] = np.where(known[:, None], step, bias)
        try_narrower = store.values["bias"][sig] > self.BIAS
        idx = np.flatnonzero(try_narrower.any(1))
        if not len(idx):
            return
        known, r = noise_of(idx)
        idx, r = idx[known], r[known]
        if not len(idx):
            return
        # Each fit's estimated error is measured on the few joints that tell the noise (`_noise_rows`);
        # the fit chosen is then computed on all of the signal's joints (in a crowd, most signals
        # keep the default fit and cost nothing more).
        ok = try_narrower[idx]
        pick, used, sub = self._noise_rows(layout)
        at = pick[ranges(sub[idx], used[idx])]
        local = np.repeat(np.arange(len(idx)), used[idx])
        sub_starts = np.r_[0, np.cumsum(used[idx])[:-1]]
        coords = used[idx][:, None] * np.array([2.0, 3.0])
        y = window[:, rows[at]]  # float32[2w + 1, rows, 5]
        sample = y[w].astype(np.float64)
        best = np.add.reduceat(group((sample - est[at]) ** 2), sub_starts, 0) \
            + 2 * r * coords * est_w0[idx]
        risks, kernels = [best], []
        present = self._present(m, stamps[idx], inside[idx])
        for factor in self.NARROWER:
            if factor:
                weights = _present_fit_weights(present, self.sigma * factor, self.degree).astype(np.float32)
            else:  # the sample itself
                weights = np.zeros(present.shape, np.float32)
                weights[:, w] = 1.0
            kernels.append(weights)
            fit = sample if not factor else _weighted(weights[local], y).astype(np.float64)
            risks.append(np.add.reduceat(group((sample - fit) ** 2), sub_starts, 0)
                         + 2 * r * coords * weights[:, w].astype(np.float64)[:, None])
        # Each fit's estimated error, averaged over the last frames (a choice that holds from frame to
        # frame: switching fits at every frame would add jitter of its own).
        risk = np.stack(risks, 1)  # float[S', fits, 2]
        kept = store.values["risk"][sig[idx]]
        kept = np.where(np.isnan(kept), risk, kept + (risk - kept) / self.RISK_MEMORY)
        kept = np.where(ok[:, None], kept, np.nan)  # forgotten where the default fit is kept
        store.values["risk"][sig[idx]] = kept
        narrow = np.nan_to_num(kept[:, 1:], nan=np.inf)
        choice = 1 + narrow.argmin(1)  # float[S', 2]
        better = ok & (np.take_along_axis(narrow, choice[:, None] - 1, 1)[:, 0] < self.MARGIN * kept[:, 0])
        for k, weights in enumerate(kernels, 1):
            use = better & (choice == k)  # bool[S', 2]: where this fit replaces the default one
            chosen = np.flatnonzero(use.any(1))
            if not len(chosen):
                continue
            full = ranges(starts[idx[chosen]], n[idx[chosen]])
            each = np.repeat(np.arange(len(chosen)), n[idx[chosen]])
            if self.NARROWER[k - 1]:
                fit = _weighted(weights[chosen][each], window[:, rows[full]])
            else:  # the samples themselves
                fit = window[w, rows[full]]
            g = use[chosen][each]
            est[full[g[:, 0]], :2] = fit[g[:, 0], :2]
            est[full[g[:, 1]], 2:] = fit[g[:, 1], 2:]

    def _fit_centres(self, est: np.ndarray, layout: _Layout, m: int, stamps: np.ndarray, inside: np.ndarray,
                     weights: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Give each pose's centre (the mean of its joints), per group of coordinates (2D, 3D), the
        fit that predicts it best when its own sample is left out: the default fit (`weights`) or a
        narrower one (`CENTRE_NARROWER`), each scored by its leave-one-out residuals, (c - fit) /
        (1 - w0) for a linear fit of weight w0 on the sample, squared and averaged over the last
        frames (`CENTRE_MEMORY`). A narrower fit is taken where its score is below `CENTRE_MARGIN`
        times the default's. The score needs no noise estimate: noise adds the same to every fit's. The
        joints' offsets from the centre keep the default fit (in place, in `est`; `_adapt`, which
        comes after, may then give the whole pose a narrower fit). Returns the fit's weight on each
        joint's own sample, per group (float[S, 2]): the default one's, plus the centre's fit's
        gain over it (its weight on the centre's sample, less the default's) times the weight of
        a joint's sample in the centre (1 / n for noise of its own, 1 for noise its joints share);
        and the most 2D noise a joint may be taken to have (`_noise_bound`; None: BOUND_NOISE off).

        A signing hand's centre moves with the whole hand, faster than its shape changes: on held-out
        signers its default fit was 1.15-3x farther from the truth than the detections."""
        store = self._signals
        sig, n, starts, w = layout.signals, layout.lengths, layout.starts, self.window
        first = (m - w) % self._size
        c = store.values["centre"][sig, first:first + 2 * w + 1].astype(np.float64)  # float[S, 2w + 1, 5]
        present = self._present(m, stamps, inside)
        kernels = [weights.astype(np.float64)] + [_present_fit_weights(present, self.sigma * factor, self.degree)
                                                  for factor in self.CENTRE_NARROWER]
        fits = np.stack([np.einsum("sk,skc->sc", k, c) for k in kernels], 1)  # float[S, fits, 5]
        w0 = np.stack([k[:, w] for k in kernels], 1)  # float[S, fits]
        loo = (c[:, None, w] - fits) / np.maximum(1.0 - w0, 1e-3)[..., None]
        loo = loo * loo
        score = np.stack([loo[..., :2].sum(-1), loo[..., 2:].sum(-1)], -1)  # float[S, fits, 2]
        kept = store.values["loo"][sig]
        kept = np.where(np.isnan(kept), score, kept + (score - kept) / self.CENTRE_MEMORY)
        store.values["loo"][sig] = kept
        best = kept[:, 1:].argmin(1) + 1  # int[S, 2]
        better = np.take_along_axis(kept, best[:, None], 1)[:, 0] < self.CENTRE_MARGIN * kept[:, 0]
        told, own_noise = self._offsets_noise(sig, n)
        own = self._own_samples(layout, kept, best, better, w0, told, own_noise)  # (in 2D)
        gain = np.take_along_axis(w0, best, 1) - w0[:, :1]  # float[S, 2]
        if own is not None:
            better[:, 0] |= own
            gain[own, 0] = 1.0 - w0[own, 0]
        # A joint's sample weighs in its centre by 1 / n where the joints' noise is their own, by 1
        # where they share it (a pose detected shifted as a whole): the share is what the joints'
        # noise has beyond their offsets' from the centre (`_note_noise`), in 2D.
        joint = _third_noise(store.values["noise"][sig])[:, 0]
        bound = self._noise_bound(told, own_noise) if self.BOUND_NOISE else None
        if bound is not None:
            joint = np.minimum(joint, bound)
        shared = np.clip(1.0 - own_noise / np.maximum(joint, 1e-12), 0.0, 1.0)
        est_w0 = w0[:, :1] + np.where(better, gain, 0.0) * (shared + (1.0 - shared) / n)[:, None]
        chosen = np.flatnonzero(better.any(1))
        if not len(chosen):
            return est_w0, bound
        fit = fits[chosen]
        target = np.concatenate([np.take_along_axis(fit[..., :2], best[chosen, 0, None, None], 1)[:, 0],
                                 np.take_along_axis(fit[..., 2:], best[chosen, 1, None, None], 1)[:, 0]], 1)
        if own is not None:
            mine = own[chosen]
            target[mine, :2] = c[chosen[mine], w, :2]
        rows = ranges(starts[chosen], n[chosen])
        now = np.add.reduceat(est[rows].astype(np.float64), np.r_[0, np.cumsum(n[chosen])[:-1]], 0) / n[chosen][:, None]
        shift = (target - now) * np.repeat(better[chosen], [2, 3], axis=1)
        est[rows] += np.repeat(shift, n[chosen], 0).astype(est.dtype)
        return est_w0, bound

    GUARD = GUARD  # (see the module's GUARD; 0: off)

    def _guard(self, est: np.ndarray, sample: np.ndarray, layout: _Layout, m: int, stamps: np.ndarray,
               inside: np.ndarray) -> None:
        """The guard (see the module's GUARD) on this frame's estimates `est` and samples, measured
        on a few joints of each signal (`_noise_rows`). A frame counts as missed only where the
        pose's centre is also farther than GUARD sizes from the median of its centres in the 5
        frames about it: near a single bad detection, the fits of the frames around it are pulled
        away from their samples, but the median is not, and motion that the frames show (smooth,
        or a turn) keeps a sample near that median."""
        store, w = self._signals, self.window
        sig = layout.signals
        pick, used, sub = self._noise_rows(layout)  # (at most NOISE_JOINTS joints a signal: as good a measure)
        xy = sample[pick, :2]
        span = np.maximum.reduceat(xy, sub) - np.minimum.reduceat(xy, sub)
        size = np.maximum(np.sqrt(span[:, 0] * span[:, 0] + span[:, 1] * span[:, 1]), 1.0)

        def jumps(at: np.ndarray) -> np.ndarray:  # (for the few signals whose fit missed them)
            first = (m - w) % self._size
            near = store.values["centre"][sig[at], first + w - 2:first + w + 3, :2].astype(np.float64)  # [K, 5, 2]
            near[~self._present(m, stamps[at], inside[at])[:, w - 2:w + 3]] = np.nan
            with np.errstate(all="ignore"):
                off = near[:, 2] - np.nanmedian(near, 1)
            return (off * off).sum(-1) > self.GUARD * self.GUARD * size[at] * size[at]

        miss = xy - est[pick, :2]  # (float32, as the poses: a tenth of a size needs no more)
        miss = np.add.reduceat(miss[:, 0] * miss[:, 0] + miss[:, 1] * miss[:, 1], sub) / used
        misfit = store.values["misfit"][sig]
        _guard_share(miss, size, misfit, self.GUARD, jumps if w >= 2 else None)
        _give_back(est, sample, layout, misfit)
        store.values["misfit"][sig] = misfit

    def _own_samples(self, layout: _Layout, kept: np.ndarray, best: np.ndarray, better: np.ndarray,
                     w0: np.ndarray, told: np.ndarray, own_noise: np.ndarray) -> Optional[np.ndarray]:
        """bool[S]: the centres (2D) that take their own sample rather than any fit, or None.

        Where a person's parts jitter together (a shaking camera, a runner's bounce: the
        regression of the other part's centre's third differences on this one's, averaged over
        SHARED_MEMORY frames, at least SHARED_MOTION), a centre's noise is at most what its joints'
        offsets say (r (1 / n + CENTRE_NOISE), as online: `KalmanParams.centre_noise`). The
        sample is taken where that is below CENTRE_MARGIN times the chosen fit's estimated error,
        w0^2 r + (1 - w0)^2 (its leave-one-out score - r), w0 its weight on the sample. told,
        own_noise: `_offsets_noise`."""
        if not told.any():
            return None
        n = layout.lengths
        r = 2.0 * own_noise * (1.0 / n + self.CENTRE_NOISE)  # (x and y)
        fit = np.where(better[:, 0], best[:, 0], 0)
        score = np.take_along_axis(kept[:, :, 0], fit[:, None], 1)[:, 0]
        weight = np.take_along_axis(w0, fit[:, None], 1)[:, 0]
        risk = weight * weight * r + (1 - weight) ** 2 * np.maximum(score - r, 0.0)
        own = told & (r < self.CENTRE_MARGIN * risk)
        return own if own.any() else None

    def _own_noise(self, sig: np.ndarray, n: np.ndarray) -> np.ndarray:
        """float[S]: the noise variance (per 2D coordinate) of signals sig's joints that is each
        joint's own, from their offsets from the centre (`_note_noise`), which have (1 - 1/n) of it."""
        return np.maximum(_third_noise(self._signals.values["shape_noise"][sig]), 0.0) * n / np.maximum(n - 1, 1)

    def _offsets_noise(self, sig: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(told: bool[S], own_noise: float[S]): where a person's parts move together
        (`_moves_together`) and the joints' offsets from their centre tell their own noise, and
        that noise (`_own_noise`)."""
        store = self._signals
        moves = _moves_together(store.values["shared"][sig], self.SHARED_MOTION)
        return moves & (store.values["shape_noise"][sig, 2] >= 5), self._own_noise(sig, n)

    def _noise_bound(self, told: np.ndarray, own_noise: np.ndarray) -> np.ndarray:
        """float[S]: the most 2D noise variance (per coordinate) a joint may be taken to have:
        where `told` (`_offsets_noise`), its own noise plus an error all the joints share of up to
        CENTRE_NOISE times it; inf elsewhere. What the joints' third differences show beyond it is
        the parts' motion (a runner's bounce), not the detector's noise."""
        return np.where(told, own_noise * (1.0 + self.CENTRE_NOISE), np.inf)

    BOUND_NOISE = True  # a joint's 2D noise taken as at most `_noise_bound` (False: as its differences show)
    SHARED_MOTION = KalmanParams.shared_motion  # (the online filter's defaults)
    CENTRE_NOISE = KalmanParams.centre_noise
    CENTRE_NARROWER = (0.45, 0.3)  # the narrower fits a centre may take, as fractions of sigma (1.8, 1.2 frames)
    CENTRE_MARGIN = 0.6  # a narrower fit is taken where its score is below this times the default's
    CENTRE_MEMORY = 8.0  # frames over which the centres' fits are scored

    NARROWER = (0.45, 0.3, 0.0)  # the narrower fits tried, as fractions of sigma (1.8, 1.2 frames; 0: the sample itself)
    MARGIN = 0.8  # a narrower fit is taken where its estimated error is below this times the wider one's
    BIAS = 3.0  # narrower fits are tried where the default one runs this many times farther than noise explains
    BIAS_MEMORY = 20.0  # frames over which that is averaged (from 1: what noise alone gives)
    RISK_MEMORY = 8.0  # frames over which each fit's estimated error is averaged
    NOISE_MEMORY = 60.0  # frames over which a signal's noise statistics are averaged
    CLIP = 3.0  # the bias check's noise: fourth differences clipped at this many times their spread
    MEDIAN_RATE = 0.1  # how fast the running median of their size moves (relative step per frame)
    BIAS_EVERY = 2  # frames between two bias checks
    NOISE_JOINTS = 12  # joints of a signal its noise is measured on

    def _noise_rows(self, layout: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, joints, starts): a few joints of each signal of the layout (at most NOISE_JOINTS,
        evenly spread), which tell its noise and its fit's bias: their rows in the frame's samples,
        their number per signal and the first of each signal among them (kept for the last layout)."""
        if self._noise_layout is not None and self._noise_layout[0] is layout:
            return self._noise_layout[1]
        n = layout.lengths
        step = np.maximum(n // self.NOISE_JOINTS, 1)
        offset = np.arange(len(layout.rows)) - np.repeat(layout.starts, n)
        pick = np.flatnonzero(offset % np.repeat(step, n) == 0)
        used = -(-n // step)
        out = (pick, used, np.r_[0, np.cumsum(used)[:-1]])
        self._noise_layout = (layout, out)
        return out

    GLITCH_MEMORY = 30.0  # frames over which a joint's usual distance from its neighbours' cubic is averaged
    GLITCH_AFTER = 5  # distances a signal has before any of its samples is judged

    def _layout_at(self, pos: int) -> Optional[_Layout]:
        """The layout of the pending frame at position pos (None: no such frame, or no signals)."""
        for at, _, _, layout in reversed(self._pending):
            if at <= pos:
                return layout if at == pos else None
        return None

    def _glitches(self, pos: int) -> None:
        """Single-frame glitches of a joint (a detector's bad joint in one frame), pulled back
        in the ring before the fits use them.

        A sample's distance from the cubic through the samples two and one frames before and after
        it, e = y - (4 (y-1 + y+1) - (y-2 + y+2)) / 6 (the fourth difference over 6; squared, per
        joint and group of coordinates: 2D, 3D), is measured two frames after it (`_distances`),
        with each joint's usual value of it (a running mean of e^2, each capped at glitch^2 times
        the mean, over GLITCH_MEMORY frames). Three frames after it (`_judge`), a sample whose e^2
        is above glitch^2 times the usual and is the largest of the three frames about it (a bad
        sample makes its neighbours' e two thirds of its own: they are not taken for glitches) is
        moved towards the cubic until its distance is glitch times the usual one: a bad joint
        then weighs in the fits as noise does, and a sample that is only noise far out keeps most
        of its value (replacing it by the cubic, which its neighbours' noise makes, cost accuracy
        on Gaussian noise). Fits of the frames `window` - 2 to `window` frames before it were made
        before it was judged (with a small weight on it). The noise statistics (`_note_noise`) are
        taken on the samples as they came: the fits' choice between narrow and wide is left as it
        was (taken after this, the narrower fits it chose cost acceleration error)."""
        found = self._distances(pos - 2)
        if self._candidates is not None and self._candidates[0] == pos - 3:  # (not across frames left out)
            self._judge(*self._candidates)
        self._candidates = found

    def _has(self, layout: _Layout, t: int, reach: tuple[int, ...]) -> np.ndarray:
        """bool[S]: which signals of the layout have samples at t + k for every k in reach."""
        stamps, size = self._signals.values["pos"][layout.signals], self._size
        ok = np.full(len(layout.signals), min(reach) + t >= 0)  # (no frame before the first: -1 marks none)
        for k in reach:
            ok &= stamps[:, (t + k) % size] == t + k
        return ok

    def _distances(self, t: int) -> Optional[tuple[int, _Layout, np.ndarray]]:
        """Frame t's distances from the cubic and the joints' usual ones (see `_glitches`); returns
        (t, layout, rows of the layout whose distance is beyond glitch times the usual), or None."""
        layout = self._layout_at(t)
        if layout is None:
            return None
        ok = self._has(layout, t, (-2, -1, 1, 2))
        if not ok.any():
            return None
        store, size, n = self._signals, self._size, layout.lengths
        g = store.rows["glitch"]  # [0]: each joint's usual e^2; [1 + t % 3]: its e^2 at frame t
        first = (t - 2) % size  # (the ring is written twice: frames t - 2 .. t + 2 are one slice)
        # (y - the cubic is the fourth difference over 6: one pass of `_slot_sum`)
        e = _slot_sum(_FOURTH, _gather(store.rows["s"][first:first + 5], layout.block))
        e *= e
        e2 = np.empty((len(e), 2), np.float32)  # (column by column: `np.add.reduceat` is 10 times slower)
        np.add(e[:, 0], e[:, 1], out=e2[:, 0])
        np.add(e[:, 2], e[:, 3], out=e2[:, 1])
        e2[:, 1] += e[:, 4]
        usual = _gather(g[None, 0], layout.block)[0]
        cap = usual * np.float32(self.glitch * self.glitch)
        seen = store.values["glitch_n"][layout.signals]
        early = seen < self.GLITCH_AFTER
        # This distance's weight in the usual one (a plain mean of the first ones, then a running
        # mean), and what is added to its cap (infinity: not capped, among the first ones): the
        # same for every joint in the common case, else per signal.
        beyond = _either(e2 > cap)
        if ok.all() and not early.any():
            rate = np.float32(1.0 / self.GLITCH_MEMORY)
        else:
            beyond &= np.repeat(ok & ~early, n)
            per = np.empty((len(seen), 2), np.float32)
            per[:, 0] = np.where(early, 1.0 / (seen + 1), 1.0 / self.GLITCH_MEMORY)
            per[:, 1] = np.where(early, np.inf, 0.0)
            per[~ok] = (0.0, np.inf)
            per = np.repeat(per, n, 0)
            rate = per[:, :1]
            cap += per[:, 1:]
            e2[np.repeat(~ok, n)] = 0.0
        np.minimum(e2, cap, out=cap)
        cap -= usual
        cap *= rate
        cap += usual
        beyond = np.flatnonzero(beyond)
        _scatter(g[None, 1 + t % 3], layout.block, e2)
        _scatter(g[None, 0], layout.block, cap)
        store.values["glitch_n"][layout.signals] = seen + ok
        return (t, layout, beyond) if len(beyond) else None

    def _judge(self, t: int, layout: _Layout, at: np.ndarray) -> None:
        """Pull back the glitches among rows `at` of frame t's layout (candidates: `_distances`)
        towards the cubic through their neighbours, in the ring and in the centres' ring."""
        store, size, ring = self._signals, self._size, self._signals.rows["s"]
        g = store.rows["glitch"]
        fix, n = layout.rows[at], layout.lengths
        owner = np.searchsorted(layout.starts, at, side="right") - 1
        e2 = g[1 + t % 3, fix]
        bad = e2 > np.float32(self.glitch * self.glitch) * g[0, fix]
        for k in (-1, 1):  # (a neighbour's distance counts where it was measured: its own four neighbours there)
            measured = self._has(layout, t, (3 * k,))[owner]
            bad &= ~measured[:, None] | (e2 >= g[1 + (t + k) % 3, fix])
        keep = np.flatnonzero(bad.any(1))
        if not len(keep):
            return
        fix, owner, bad, slot = fix[keep], owner[keep], bad[keep], t % size
        old = ring[slot, fix]
        new = old.copy()
        first = (t - 2) % size
        near = np.take(ring[first:first + 5], fix, 1)
        cubic = near[2] - _slot_sum(_FOURTH, near)  # (as `_distances` measured it)
        # (moved to `glitch` times the usual distance from the cubic, not onto it: a sample that
        # is only noise far out keeps most of its own value, which the neighbours' do not share)
        keep_share = np.sqrt(np.float32(self.glitch * self.glitch) * g[0, fix] / np.maximum(e2[keep], np.float32(1e-30)))
        moved = cubic + (old - cubic) * _spread(np.minimum(keep_share, np.float32(1.0)))
        new[bad[:, 0], :2] = moved[bad[:, 0], :2]
        new[bad[:, 1], 2:] = moved[bad[:, 1], 2:]
        ring[slot, fix] = ring[slot + size, fix] = new
        if self.adaptive:  # the poses' centres (`_fit_centres`) move with their joints
            changed, inverse = np.unique(owner, return_inverse=True)
            shift = np.zeros((len(changed), 5))
            np.add.at(shift, inverse, (new - old).astype(np.float64))
            shift = (shift / n[changed, None]).astype(np.float32)
            centres, signals = store.values["centre"], layout.signals[changed]
            for s in (slot, slot + size):
                centres[signals, s] += shift

    def _note_noise(self, layout: _Layout, pos: int) -> None:
        """Update each signal's noise statistics with its third differences ending at pos and at
        pos - 1 (where its samples at pos - 4 .. pos are all there): for white noise of variance
        r, E d3^2 = 20 r and E d3_t d3_t-1 = -15 r, so r = (E d3^2 - E d3_t d3_t-1) / 35; a smooth
        motion adds about as much to both."""
        full = self._has(layout, pos, (-1, -2, -3, -4))
        if not full.any():
            return
        store, size, sig = self._signals, self._size, layout.signals
        ring = store.rows["s"]
        pick, used, starts = self._noise_rows(layout)
        at = layout.rows[pick]
        z = np.stack([np.take(ring[(pos - k) % size], at, axis=0) for k in range(5)])  # float32[5, rows, 5]: at pos - k
        d3 = (z[0] - z[3]) + 3 * (z[2] - z[1])
        before = (z[1] - z[4]) + 3 * (z[3] - z[2])
        group = lambda a: (lambda t: np.stack([t[:, :2].sum(-1), t[:, 2:].sum(-1)], -1))(
            np.add.reduceat(a, starts, 0).astype(np.float64))
        noise = store.values["noise"][sig]
        keep = 1.0 - 1.0 / self.NOISE_MEMORY
        values = used[:, None] * np.array([2.0, 3.0])  # coordinates used per signal and group
        f = full[:, None]
        for k, add in ((0, group(d3 * d3)), (1, group(d3 * before)), (2, values), (3, values)):
            noise[:, k] = np.where(f, keep * noise[:, k] + add, noise[:, k])
        store.values["noise"][sig] = noise
        # Without gross errors: the fourth differences (d3 minus the one before it: variance 70 r
        # for white noise), each clipped at CLIP times the spread that their median size gives
        # (kept per signal and coordinate by a running median: it moves up or down by MEDIAN_RATE
        # as more or fewer than half of the frame's sizes are above it).
        median = store.values["noise_median"][sig]  # float[S, 5]: the median |d4| of each coordinate
        d4 = d3 - before
        d4 *= d4
        have = bool((median > 0).all())  # (else new signals: no median yet, nothing clipped)
        at = median * median if have else np.where(median > 0, median * median, np.inf)
        at = np.repeat(at.astype(np.float32), used, axis=0)  # float32[rows, 5]
        above = np.add.reduceat((d4 > at).view(np.uint8), starts, 0)  # (sizes above the median)
        at *= np.float32((self.CLIP / _MAD) ** 2)  # (clipped at the median before this frame's step)
        np.minimum(d4, at, out=d4)
        median = median * np.exp(self.MEDIAN_RATE * (above / used[:, None] - 0.5))
        if not have:  # (a first value: Gaussian noise's, from the plain statistics, which now count this frame)
            median = np.where(median > 0, median, _MAD * np.sqrt(70.0 * np.maximum(_spread(_third_noise(noise)), 0.0)))
        clipped = keep * store.values["clipped_noise"][sig] + group(d4)
        if full.all():
            store.values["noise_median"][sig], store.values["clipped_noise"][sig] = median, clipped
        else:
            store.values["noise_median"][sig[full]] = median[full]
            store.values["clipped_noise"][sig[full]] = clipped[full]
        # The same on the joints' offsets from their centre (2D), where the pose's motion as a
        # whole cancels, and each centre's third difference (pixels) times its person's other
        # part's (`_fit_centres`).
        centre = np.stack([store.values["centre"][sig, (pos - k) % size, :2] for k in range(5)]).astype(np.float64)
        shape = z[..., :2].astype(np.float64) - np.repeat(centre, used, axis=1)
        d3s = (shape[0] - shape[3]) + 3 * (shape[2] - shape[1])
        before_s = (shape[1] - shape[4]) + 3 * (shape[3] - shape[2])
        plain = lambda a: np.add.reduceat(a.sum(-1), starts, 0)
        shape_noise = store.values["shape_noise"][sig]
        for k, add in ((0, plain(d3s * d3s)), (1, plain(d3s * before_s)), (2, 2.0 * used), (3, 2.0 * used)):
            shape_noise[:, k] = np.where(full, keep * shape_noise[:, k] + add, shape_noise[:, k])
        store.values["shape_noise"][sig] = shape_noise
        c3 = (centre[0] - centre[3]) + 3 * (centre[2] - centre[1])
        _note_shared_motion(store.values["shared"], sig, c3, full, self._partners[1])


_MAD = 0.6745  # Gaussian noise's median size over its standard deviation
_FOURTH = np.array([1, -4, 6, -4, 1], np.float32) / 6  # y - the cubic through y-2, y-1, y+1, y+2


def _third_noise(stats: np.ndarray) -> np.ndarray:
    """The noise variance per coordinate from running sums of third differences (float[S, 4, ...]:
    sum d3^2, sum d3_t d3_t-1 and their counts; see `OfflineSmoother._note_noise`)."""
    return (stats[:, 0] / np.maximum(stats[:, 2], 1) - stats[:, 1] / np.maximum(stats[:, 3], 1)) / 35.0


def _either(a: np.ndarray) -> np.ndarray:
    """bool[N]: a[:, 0] | a[:, 1] of a bool[N, 2] (its rows read as 16-bit numbers: `any(1)` is 5 times slower)."""
    return np.ascontiguousarray(a).view(np.uint16)[:, 0] != 0


def _most_common_row(a: np.ndarray) -> np.ndarray:
    """The row of a (float[S, K], S >= 1) that occurs most often (the first of them, on a tie)."""
    # (rows that differ have keys that differ, barring a coincidence, which would only pick a row
    # less common: the caller compares rows exactly)
    key = a.astype(np.float64) @ np.linspace(1.0, 2.0, a.shape[1])
    _, first, count = np.unique(key, return_index=True, return_counts=True)
    return a[first[count.argmax()]]


def _slot_sum(weights: np.ndarray, window: np.ndarray) -> np.ndarray:
    """float32[R, C]: the sum over the slots k of weights[k] * window[k] (window float32[K, R, C]),
    slot after slot as before, in one call of NumPy's own einsum loop (a third quicker than a
    product and a sum per slot; not a BLAS product, whose threads spin on every core after each
    call: twice the CPU time of the whole smoother on 2 cores)."""
    return np.einsum("k,krc->rc", np.asarray(weights, window.dtype), window)


def _weighted(weights: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """float[R, C]: each row's weighted sum of its samples over the window, weights float[R, S] and
    samples float[S, R, C] (a batched product: about twice as quick as einsum here)."""
    return (samples.transpose(1, 2, 0) @ weights[:, :, None])[..., 0]


def _present_fit_weights(present: np.ndarray, sigma: float, degree: int) -> np.ndarray:
    """float64[K, 2w + 1]: for each row of `present` (bool[K, 2w + 1], frame w is there), the
    weights giving the value at w of a weighted least-squares polynomial fit (degree `degree`,
    Gaussian weights of `sigma` frames) to the frames present; solved once for each pattern of frames
    present (most rows have them all), all at once (a tiny ridge keeps a fit with too few frames
    near the sample itself)."""
    packed = np.ascontiguousarray(np.packbits(present, axis=1))
    code = packed.view(np.dtype((np.void, packed.shape[1])))[:, 0]
    _, where, inverse = np.unique(code, return_index=True, return_inverse=True)
    present = present[where]
    w = present.shape[1] // 2
    k = np.arange(-w, w + 1, dtype=np.float64)
    x = np.vander(k, degree + 1, increasing=True)  # float[2w + 1, d + 1]
    g = present * np.exp(-0.5 * (k / sigma) ** 2)  # float[K, 2w + 1]
    a = np.einsum("ks,si,sj->kij", g, x, x) + 1e-9 * np.eye(degree + 1)
    e0 = np.zeros((len(present), degree + 1, 1))
    e0[:, 0] = 1.0
    coef = np.linalg.solve(a, e0)[..., 0]  # float[K, d + 1]: A^-1 e0 (A is symmetric)
    return (g * (coef @ x.T))[inverse.reshape(-1)]


# -------------------------------------------------------------------------------- stages


def smooth(frames: Iterable[Frame], mode: str = "offline", **params: Any) -> Iterator[Frame]:
    """The smoothing stage over a stream of frames (after `tracking.track`).

    mode: "off" (frames as they are), "online" (`OnlineSmoother(**params)`, using each item's
    time_s when known) or "offline" (`OfflineSmoother(**params)`, on the items' frame numbers when
    known, so that frames left out are gaps: frames come out `window` frames late, images included).
    """
    if mode not in SMOOTH_MODES:
        raise ValueError(f"unknown smoothing mode {mode!r}; use one of {', '.join(SMOOTH_MODES)}")
    if mode == "off":
        yield from frames
        return
    if mode == "online":
        online = OnlineSmoother(**params)
        for f in frames:
            yield f._replace(result=online.update(f.result, getattr(f.item, "time_s", None)))
        return
    offline = OfflineSmoother(**params)
    for f in frames:
        for tag, r in offline.push(f.result, f, getattr(f.item, "frame", None)):
            yield tag._replace(result=r)
    for tag, r in offline.flush():
        yield tag._replace(result=r)
