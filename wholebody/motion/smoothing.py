"""Smoothing tracked poses over time, per track and per part, never across two tracks.

Two modes, each a small object with its state inside, usable on any iterable of `Result`s that
carry a `track` field (see tracking.py), and a stage over frames (`smooth`):

- online (`OnlineSmoother`): causal. A One-Euro filter (Casiez et al., CHI 2012) per signal, with
  a constant-velocity prediction step: the estimate moves by its filtered speed before it is
  blended with the new sample, so a person walking at constant speed is followed without lag
  (the plain One-Euro filter lags by about 1 / (2 pi cutoff) seconds). The output for frame t
  only uses frames up to t.
- offline (`OfflineSmoother`): zero-phase, with a bounded look-ahead of `window` frames. Each
  sample is replaced by a local polynomial fit (degree `degree`, Gaussian weights of `sigma`
  frames) to the samples at most `window` frames before and after it; gaps of at most `max_gap`
  frames inside that span are first filled by linear interpolation, a longer gap ends the span.
  Memory holds `2 * window + 1` frames per track, and every result comes out `window` frames
  after it went in (not at the end of the clip).

A signal is one detection's `pose2d` (pixels) and `pose3d` (metres) over time. It is keyed by its
track and its place in the person: a body by its track; a hand attached to a body by that track and
the wrist it is attached to; a lone hand or face by its own track (tracking.py gives lone parts ids
of their own). Detections without a track (`track` -1, or no `track` field) pass through unchanged.
After smoothing, a body's wrist is set again to the wrist of the hand attached to it (SPEC §6).
Frames are taken as evenly spaced (offline); the online filter reads the time between frames from
the items' `time_s` when it is known, else from `rate`.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Iterator, Optional

import numpy as np

from wholebody.parts import BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST, PART_NAMES
from wholebody.results import NO_LINK, Result
from wholebody.stream import Frame

SMOOTH_MODES = ("off", "online", "offline")
DEFAULT_RATE = 30.0  # frames per second assumed when the frames carry no time
RESET_AFTER_S = 1.0  # online: a track unseen for longer starts its filter afresh
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
    that two detections of this frame share, which is then left alone)."""
    out: dict[str, list[Optional[Hashable]]] = {}
    side = {}
    if "track" in result.body.fields:
        for link in ("left_hand", "right_hand"):
            for h in result.body.fields[link]:
                if h != NO_LINK:
                    side[int(h)] = link
    for p in PART_NAMES:
        arr = result[p]
        tracks = arr.fields.get("track")
        keys: list[Optional[Hashable]] = []
        for i in range(len(arr)):
            t = _track_of(tracks, i)
            keys.append(None if t is None else (p, t, side.get(i, "") if p == "hand" else ""))
        seen: dict[Hashable, int] = {}
        for k in keys:
            if k is not None:
                seen[k] = seen.get(k, 0) + 1
        out[p] = [k if k is not None and seen[k] == 1 else None for k in keys]
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
    """A copy of `result` with new (pose2d, pose3d) for the parts given, body wrists set again onto
    the wrists of their attached hands."""
    new = {}
    for p, (p2, p3) in poses.items():
        arr = result[p]
        extra = {k: arr.fields[k] for k in arr.fields if k not in ("scores", "pose2d", "pose3d")}
        new[p] = type(arr)(p, arr.scores, p2, p3, **extra)
    hand2d = poses["hand"][0] if "hand" in poses else result.hand.pose2d
    if len(result.body) and len(hand2d):
        body = new.get("body", result.body)
        b2 = body.pose2d.copy()
        for link, joint in _WRIST_LINKS:
            h = body.fields[link]
            has = h != NO_LINK
            b2[has, joint] = hand2d[h[has], HAND_WRIST]
        extra = {k: body.fields[k] for k in body.fields if k not in ("scores", "pose2d", "pose3d")}
        new["body"] = type(body)("body", body.scores, b2, body.pose3d, **extra)
    return result.replace(**new)


def _pose_size(pose2d: np.ndarray) -> np.ndarray:
    """float[K]: the diagonal of each pose's joint box, in pixels (at least 1)."""
    span = pose2d.max(-2) - pose2d.min(-2)
    return np.maximum(np.linalg.norm(span, axis=-1), 1.0)


# -------------------------------------------------------------------------------- state tables


class _Table:
    """Rows of per-signal state arrays for one part, addressed by signal key: `rows(keys)` gives each
    key its row (new keys get a free one, the arrays grow as needed); `free(keys)` releases rows."""

    def __init__(self, shapes: dict[str, tuple[tuple[int, ...], Any, Any]]) -> None:
        self.shapes = shapes  # name -> (shape of one row, dtype, initial value)
        self.arrays = {n: np.full((8, *shape), fill, dtype) for n, (shape, dtype, fill) in shapes.items()}
        self.index: dict[Hashable, int] = {}
        self.spare: list[int] = list(range(7, -1, -1))

    def rows(self, keys: list[Hashable]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, new): int[K] rows of the keys, bool[K] for the keys that had none."""
        out, new = np.empty(len(keys), np.int64), np.zeros(len(keys), bool)
        for n, k in enumerate(keys):
            r = self.index.get(k)
            if r is None:
                if not self.spare:
                    size = len(next(iter(self.arrays.values())))
                    for name, (shape, dtype, fill) in self.shapes.items():
                        self.arrays[name] = np.concatenate([self.arrays[name], np.full((size, *shape), fill, dtype)])
                    self.spare = list(range(2 * size - 1, size - 1, -1))
                r = self.index[k] = self.spare.pop()
                new[n] = True
            out[n] = r
        return out, new

    def free(self, keys: Iterable[Hashable]) -> None:
        for k in keys:
            r = self.index.pop(k)
            self.spare.append(r)
            for name, (_, _, fill) in self.shapes.items():
                self.arrays[name][r] = fill


def _part_rows(keys: list[Optional[Hashable]]) -> tuple[list[int], list[Hashable]]:
    """(detection indexes, keys) of the detections with a signal."""
    idx = [i for i, k in enumerate(keys) if k is not None]
    return idx, [keys[i] for i in idx]


# -------------------------------------------------------------------------------- online


class OnlineSmoother:
    """Causal smoothing of every tracked signal with the One-Euro filter (see OneEuroParams).

    `update(result, time_s=None)` -> the smoothed result; time_s: seconds of this frame (None:
    one frame at `rate` after the last). 2D and 3D have their own settings (`params2d`, `params3d`).
    A signal unseen for more than RESET_AFTER_S seconds is forgotten (it starts afresh).
    """

    def __init__(self, params2d: OneEuroParams = OneEuroParams(), params3d: OneEuroParams = OneEuroParams(),
                 rate: float = DEFAULT_RATE) -> None:
        self.params2d, self.params3d, self.rate = params2d, params3d, float(rate)
        self._tables: dict[str, _Table] = {}
        self._t: Optional[float] = None

    def _table(self, part: str, joints: int) -> _Table:
        if part not in self._tables:
            # estimate and speed of each joint: 2D (x, y) then 3D (x, y, z), side by side
            self._tables[part] = _Table({"t": ((), np.float64, -np.inf), "x": ((joints, 5), np.float64, 0.0),
                                         "d": ((joints, 5), np.float64, 0.0)})
        return self._tables[part]

    def _step(self, x: np.ndarray, x_prev: np.ndarray, dx_prev: np.ndarray, dt: np.ndarray,
              scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`one_euro_step` on 2D and 3D side by side (float[K, J, 5]), each with its own settings,
        in one pass: the same numbers as two calls, with half the array operations."""
        p2, p3 = self.params2d, self.params3d
        dt = np.maximum(dt, 1e-6)
        predict = np.array([p2.predict] * 2 + [p3.predict] * 3, np.float64)
        predicted = x_prev + predict * dx_prev * dt
        dx = (x - x_prev) / dt
        dx_hat = dx_prev + _alpha(np.array([p2.d_cutoff] * 2 + [p3.d_cutoff] * 3), dt) * (dx - dx_prev)
        sq = dx_hat * dx_hat
        speed2 = np.sqrt(sq[..., :2].sum(-1, keepdims=True)) / scale
        speed3 = np.sqrt(sq[..., 2:].sum(-1, keepdims=True))
        cutoff = np.concatenate([np.broadcast_to(p2.min_cutoff + p2.beta * speed2, speed2.shape[:-1] + (2,)),
                                 np.broadcast_to(p3.min_cutoff + p3.beta * speed3, speed3.shape[:-1] + (3,))], -1)
        a = _alpha(cutoff, dt)
        return predicted + a * (x - predicted), dx_hat

    def update(self, result: Result, time_s: Optional[float] = None) -> Result:
        t = (0.0 if self._t is None else self._t + 1.0 / self.rate) if time_s is None else float(time_s)
        if self._t is not None and t <= self._t:  # repeated or backward times: one frame on
            t = self._t + 1.0 / self.rate
        self._t = t
        keys = signal_keys(result)
        poses = {}
        for p in PART_NAMES:
            idx, ks = _part_rows(keys[p])
            if not idx:
                continue
            arr = result[p]
            table = self._table(p, arr.pose2d.shape[1])
            rows, _ = table.rows(ks)
            a = table.arrays
            out = np.concatenate([arr.pose2d, arr.pose3d], -1).astype(np.float64)
            x = out[idx]
            dt = t - a["t"][rows]
            fresh = (dt > RESET_AFTER_S)[:, None, None]  # new signals have t = -inf
            est, speed = self._step(x, a["x"][rows], a["d"][rows], np.where(fresh, 1.0, dt[:, None, None]),
                                    _pose_size(x[..., :2])[:, None, None])
            est = np.where(fresh, x, est)
            a["x"][rows], a["d"][rows], a["t"][rows] = est, np.where(fresh, 0.0, speed), t
            out[idx] = est
            poses[p] = (out[..., :2].astype(np.float32), out[..., 2:].astype(np.float32))
        # Signals unseen for long are forgotten: memory follows the people in view.
        for table in self._tables.values():
            old = [k for k, r in table.index.items() if t - table.arrays["t"][r] > RESET_AFTER_S]
            if old:
                table.free(old)
        return _with_poses(result, poses) if poses else result

    def run(self, results: Iterable[Result]) -> Iterator[Result]:
        """Smooth an iterable of results, one frame at `rate` apart."""
        for r in results:
            yield self.update(r)


# -------------------------------------------------------------------------------- offline


class OfflineSmoother:
    """Zero-phase smoothing with a bounded look-ahead (see the module docstring).

    `push(result)` -> the results now final (the one pushed `window` frames ago, once enough
    frames came); `flush()` -> the rest, at the end. `run(results)` does both over an iterable.
    window: frames looked at on each side (the delay); sigma: the Gaussian weights' width in
    frames; degree: of the local polynomial; max_gap: the longest run of missing frames that is
    filled (a longer one splits the signal). Memory: 2 * window + 1 frames per signal.
    """

    def __init__(self, window: int = 10, sigma: float = 3.0, degree: int = 2, max_gap: int = 10) -> None:
        if window < 0 or sigma <= 0 or degree < 0 or max_gap < 0:
            raise ValueError("window, degree and max_gap must be >= 0 and sigma > 0")
        self.window, self.sigma, self.degree, self.max_gap = int(window), float(sigma), int(degree), int(max_gap)
        self._size = 2 * self.window + 1
        self._pending: deque[tuple[int, Any, Result, dict[str, list[Optional[Hashable]]]]] = deque()
        # Per part, per signal: the positions of the last `size` frames (-1: none) and their samples,
        # in a ring of `size` slots (slot = position % size).
        self._tables: dict[str, _Table] = {}
        self._run_start: dict[Hashable, int] = {}  # first position of the signal's unbroken run
        self._last_seen: dict[Hashable, int] = {}
        self._weights: dict[tuple[int, int], np.ndarray] = {}
        self._n = 0

    @property
    def _rings(self) -> dict[Hashable, int]:
        """The signals held (key -> row), over every part."""
        return {k: r for t in self._tables.values() for k, r in t.index.items()}

    def _table(self, part: str, joints: int) -> _Table:
        if part not in self._tables:
            n = self._size
            # samples: 2D (x, y) then 3D (x, y, z) of each joint, side by side
            self._tables[part] = _Table({"pos": ((n,), np.int64, -1), "s": ((n, joints, 5), np.float64, 0.0)})
        return self._tables[part]

    def push(self, result: Result, tag: Any = None, frame: Optional[int] = None) -> list[tuple[Any, Result]]:
        """Add the next frame's result (with an optional `tag` returned beside it, e.g. its Frame);
        returns [(tag, smoothed result)] for the frames now complete, oldest first.

        frame: its frame number, when frames were left out (`--every`): window, sigma and max_gap
        then count the source's frames, and the frames left out are gaps. None (or a number not
        after the last one): the frame after the last.
        """
        pos = self._n if frame is None or frame < self._n else int(frame)
        keys = signal_keys(result)
        self._n = pos + 1
        slot = pos % self._size
        for p in PART_NAMES:
            idx, ks = _part_rows(keys[p])
            if not idx:
                continue
            arr = result[p]
            table = self._table(p, arr.pose2d.shape[1])
            rows, _ = table.rows(ks)
            a = table.arrays
            a["pos"][rows, slot] = pos
            a["s"][rows, slot, :, :2] = arr.pose2d[idx]
            a["s"][rows, slot, :, 2:] = arr.pose3d[idx]
            for k in ks:
                if self._last_seen.get(k) != pos - 1:
                    self._run_start[k] = pos
                self._last_seen[k] = pos
        self._pending.append((pos, tag, result, keys))
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

    def _emit(self, entry: tuple[int, Any, Result, dict[str, list[Optional[Hashable]]]],
              last: int) -> tuple[Any, Result]:
        m, tag, result, keys = entry
        w = self.window
        slots = np.arange(m - w, m + w + 1) % self._size  # the window's slots, in time order
        poses = {}
        for p in PART_NAMES:
            idx, ks = _part_rows(keys[p])
            if not idx:
                continue
            arr, table = result[p], self._tables[p]
            a = table.arrays
            rows, _ = table.rows(ks)
            out = np.concatenate([arr.pose2d, arr.pose3d], -1).astype(np.float64)
            # Where the signal's samples in the window are one unbroken run through m (the common
            # case: the symmetric kernel, or a one-sided one at a track's ends), one kernel per
            # run's extent serves every such signal; gaps go through _smooth_partial.
            stamps = a["pos"][rows]
            inside = (stamps >= max(m - w, 0)) & (stamps <= min(last, m + w))
            count = inside.sum(1)
            lo = np.where(inside, stamps, m + w + 1).min(1)
            hi = np.where(inside, stamps, m - w - 1).max(1)
            run = (count == hi - lo + 1) & (lo <= m) & (hi >= m)
            di = np.asarray(idx)
            for left, right in set(zip((m - lo[run]).tolist(), (hi[run] - m).tolist())):
                sel = run & (lo == m - left) & (hi == m + right)
                slots = np.arange(m - left, m + right + 1) % self._size
                out[di[sel]] = np.einsum("s,ksjc->kjc", self._kernel(left, right), a["s"][rows[sel]][:, slots])
            for i, r in zip(di[~run], rows[~run]):
                out[i] = self._smooth_partial(a["pos"][r], a["s"][r], m, min(last, m + w))
            poses[p] = (out[..., :2].astype(np.float32), out[..., 2:].astype(np.float32))
        # Forget the signals that no frame still pending can use.
        oldest = m + 1 - w
        gone = [k for k, s in self._last_seen.items() if s < oldest]
        for k in gone:
            del self._last_seen[k], self._run_start[k]
            self._tables[k[0]].free([k])
        return tag, (_with_poses(result, poses) if poses else result)

    def _kernel(self, left: int, right: int) -> np.ndarray:
        weights = self._weights.get((left, right))
        if weights is None:
            weights = self._weights[(left, right)] = local_fit_weights(left, right, self.sigma, self.degree)
        return weights

    def _smooth_partial(self, stamps: np.ndarray, samples: np.ndarray, m: int, last: int) -> np.ndarray:
        """The fit at position m when the window has gaps: float[J, 5]."""
        w = self.window
        ok = (stamps >= max(m - w, 0)) & (stamps <= last)
        pos = stamps[ok]
        order = np.argsort(pos)
        pos, v = pos[order], samples[ok][order]
        # The span around m whose gaps are at most max_gap frames long.
        centre = int(np.searchsorted(pos, m))
        breaks = np.flatnonzero(np.diff(pos) > self.max_gap + 1)
        lo = 0 if not len(breaks[breaks < centre]) else breaks[breaks < centre][-1] + 1
        hi = len(pos) - 1 if not len(breaks[breaks >= centre]) else breaks[breaks >= centre][0]
        pos, v = pos[lo:hi + 1], v[lo:hi + 1]
        grid = np.arange(pos[0], pos[-1] + 1)
        return np.tensordot(self._kernel(m - int(pos[0]), int(pos[-1]) - m), _fill(pos, v, grid), 1)


def _fill(pos: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Samples at every position of `grid`, linearly interpolated between the known `pos` (sorted)."""
    if len(pos) == len(grid):
        return values
    right = np.clip(np.searchsorted(pos, grid), 1, len(pos) - 1)
    left = right - 1
    span = (pos[right] - pos[left]).astype(np.float64)
    f = ((grid - pos[left]) / span).reshape(-1, *([1] * (values.ndim - 1)))
    return values[left] * (1 - f) + values[right] * f


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
