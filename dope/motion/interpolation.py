"""Filling the frames left out (`--every N`, `--fps F`) by interpolating each person's track.

The stage `fill_skipped(frames)` runs over a stream of tracked (and possibly smoothed) frames whose
frame numbers leave gaps, and yields, between two frames kept, one frame per number left out. In
such a frame every signal seen in both kept frames around it (a body by its track, an attached
hand by its body's track and wrist, a lone hand or face by its own track: smoothing.signal_keys)
is interpolated, 2D and 3D, and its score too; a person seen on one side only is not drawn there.

- method "linear" (the default): straight lines between the two kept frames. "cubic": a cubic
  Hermite curve with the tangents of the kept frames around them (Catmull-Rom on uneven times;
  where a signal is not seen one kept frame further on, its tangent is the straight line). On
  bench.py --tracking-every's scenes, linear is as good or slightly better (the tangents carry
  the noise of the kept frames).
- The frames made carry `"interpolated": true` (their `Result.meta`), their true frame number,
  and a time interpolated between the kept ones; links (hands and face of a body) are remapped to
  the detections kept. Other per-detection fields are taken from the earlier kept frame (floats
  seen on both sides are interpolated).
- With `images` (the video's (Item, pixels) for every frame, as `Video` gives them without
  --every), the frames made get their pixels, so that drawings show them; otherwise their image is
  None (the JSON is complete, the drawing repeats the last one).
- Look-ahead: one kept frame (for the tangent), so memory is bounded.

Detections without a track are not interpolated. Gaps longer than `max_gap` frames are not filled.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Hashable, Iterable, Iterator, Optional

import numpy as np

from dope.motion.smoothing import signal_keys
from dope.parts import PART_NAMES
from dope.results import CORE_FIELDS, NO_LINK, PartArrays, Result
from dope.stream import Frame

INTERPOLATED = "interpolated"  # the Result.meta key (a top-level JSON field) of the frames made here
METHODS = ("linear", "cubic")
_LINKS = (("left_hand", "hand"), ("right_hand", "hand"), ("face", "face"))


def _number(frame: Frame) -> Optional[int]:
    item = frame.item
    return item.frame if getattr(item, "frame", None) is not None else None


def _index(result: Result) -> dict[str, dict[Hashable, int]]:
    """Per part, {signal key: detection index} (keys shared in a frame are left out)."""
    return {p: {k: i for i, k in enumerate(ks) if k is not None} for p, ks in signal_keys(result).items()}


def hermite(a: np.ndarray, b: np.ndarray, ma: np.ndarray, mb: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Values at fractions s (float[F]) of the way from a to b (arrays [K, ...]) on the cubic Hermite
    curve whose tangents, per unit of s, are ma at a and mb at b: float[F, K, ...]."""
    s = s.reshape(-1, *([1] * a.ndim))
    s2, s3 = s * s, s * s * s
    return (2 * s3 - 3 * s2 + 1) * a + (s3 - 2 * s2 + s) * ma + (-2 * s3 + 3 * s2) * b + (s3 - s2) * mb


def interpolate_between(before: Optional[tuple[int, Result]], a: tuple[int, Result], b: tuple[int, Result],
                        after: Optional[tuple[int, Result]], numbers: Iterable[int],
                        method: str = "linear") -> list[Result]:
    """The results at frame `numbers` (strictly between a's and b's), from the kept (number, result)
    pairs a and b and, for the tangents, the kept ones just before and after (None: none)."""
    if method not in METHODS:
        raise ValueError(f"unknown interpolation {method!r}; use one of {', '.join(METHODS)}")
    (na, ra), (nb, rb) = a, b
    numbers = list(numbers)
    s = (np.asarray(numbers, np.float64) - na) / (nb - na)
    ia, ib = _index(ra), _index(rb)
    iz = _index(before[1]) if before is not None and method == "cubic" else None
    ic = _index(after[1]) if after is not None and method == "cubic" else None
    parts: dict[str, list[dict[str, Any]]] = {}
    kept: dict[str, list[Hashable]] = {}
    for p in PART_NAMES:
        keys = [k for k in ia[p] if k in ib[p]]  # in a's order
        kept[p] = keys
        if not keys:
            parts[p] = [{} for _ in numbers]
            continue
        xa, xb = ra[p], rb[p]
        sa, sb = [ia[p][k] for k in keys], [ib[p][k] for k in keys]
        out: dict[str, np.ndarray] = {}
        for name in ("pose2d", "pose3d"):
            va, vb = xa.fields[name][sa].astype(np.float64), xb.fields[name][sb].astype(np.float64)
            ma, mb = vb - va, vb - va  # tangents per unit of s: the secant by default
            if iz is not None:
                zf, zn = before[1][p].fields[name], before[0]
                for j, k in enumerate(keys):
                    if k in iz[p]:
                        ma[j] = (vb[j] - zf[iz[p][k]]) * (nb - na) / (nb - zn)
            if ic is not None:
                cf, cn = after[1][p].fields[name], after[0]
                for j, k in enumerate(keys):
                    if k in ic[p]:
                        mb[j] = (cf[ic[p][k]] - va[j]) * (nb - na) / (cn - na)
            out[name] = hermite(va, vb, ma, mb, s).astype(np.float32)
        lin = lambda u, v: (u[None] + s.reshape(-1, *([1] * u.ndim)) * (v - u)[None])
        out["scores"] = lin(xa.scores[sa].astype(np.float64), xb.scores[sb].astype(np.float64)).astype(np.float32)
        extra: dict[str, np.ndarray] = {}
        for name, va in xa.fields.items():
            if name in CORE_FIELDS:
                continue
            va = va[sa]
            vb = xb.fields.get(name)
            if vb is not None and va.dtype.kind == "f" and vb.dtype == va.dtype and vb[sb].shape == va.shape:
                extra[name] = lin(va, vb[sb]).astype(va.dtype)
            else:
                extra[name] = np.broadcast_to(va, (len(numbers), *va.shape))
        parts[p] = [{**{n: v[f] for n, v in out.items()}, **{n: v[f] for n, v in extra.items()}}
                    for f in range(len(numbers))]
    # Links: a body's hand or face, when that detection is kept too, at its new index.
    where = {p: {k: n for n, k in enumerate(kept[p])} for p in PART_NAMES}
    body_rows = [ia["body"][k] for k in kept["body"]]
    links = {}
    for link, part in _LINKS:
        old = ra.body.fields[link][body_rows] if body_rows else np.zeros(0, np.int64)
        keys_a = signal_keys(ra)[part]
        links[link] = np.array([where[part].get(keys_a[h], NO_LINK) if h != NO_LINK and keys_a[h] is not None
                                else NO_LINK for h in old], np.int64)
    results = []
    meta = {k: v for k, v in ra.meta.items() if not k.startswith("_")}
    meta[INTERPOLATED] = True
    for f in range(len(numbers)):
        new = {}
        for p in PART_NAMES:
            d = dict(parts[p][f])
            if not d:
                new[p] = ra[p][np.zeros(0, np.int64)]  # none, with the fields the frame's detections have
                continue
            if p == "body":
                d.update(links)
            new[p] = PartArrays(p, d.pop("scores"), d.pop("pose2d"), d.pop("pose3d"), **d)
        results.append(Result(ra.height, ra.width, image=ra.image, meta=meta, **new))
    return results


def fill_skipped(frames: Iterable[Frame], method: str = "linear", images: Optional[Iterable[tuple[Any, Any]]] = None,
                 max_gap: Optional[int] = None) -> Iterator[Frame]:
    """The stage: the frames as they come, and between two with a gap in their frame numbers, one
    interpolated frame per number left out (see the module docstring).

    images: every frame's (Item, RGB pixels) of the video, in order (e.g. a `Video` without
    `every`): the frames made get their pixels and the frames kept keep theirs. max_gap: the
    longest run of frames filled (None: any). Frames without a frame number pass through.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interpolation {method!r}; use one of {', '.join(METHODS)}")
    pixels = _Pixels(images)
    held: deque[Frame] = deque()  # the last kept frames: (before), a, b, then the one after b
    for frame in frames:
        if _number(frame) is None:
            yield frame
            continue
        held.append(frame)
        if len(held) == 1:
            yield frame
        elif len(held) >= 3:  # the frame after b is known: fill between a and b, then give b
            yield from _fill(held[-4] if len(held) >= 4 else None, held[-3], held[-2], frame, method, pixels,
                             max_gap)
            yield held[-2]
            if len(held) == 4:
                held.popleft()
    if len(held) >= 2:
        yield from _fill(held[-3] if len(held) >= 3 else None, held[-2], held[-1], None, method, pixels, max_gap)
        yield held[-1]


def _fill(before: Optional[Frame], a: Frame, b: Frame, after: Optional[Frame], method: str, pixels: "_Pixels",
          max_gap: Optional[int]) -> Iterator[Frame]:
    """The frames made between the kept frames a and b."""
    na, nb = _number(a), _number(b)
    if nb - na <= 1 or (max_gap is not None and nb - na - 1 > max_gap):
        return
    pair = lambda f: None if f is None else (_number(f), f.result)
    made = interpolate_between(pair(before), pair(a), pair(b), pair(after), range(na + 1, nb), method)
    ta, tb = a.item.time_s, b.item.time_s
    for n, r in zip(range(na + 1, nb), made):
        t = None if ta is None or tb is None else ta + (tb - ta) * (n - na) / (nb - na)
        item = dataclasses.replace(a.item, index=a.item.index + (n - na), frame=n, time_s=t)
        yield Frame(item, pixels.at(n), r)


class _Pixels:
    """Pixels by frame number from an optional (Item, pixels) stream read forward once."""

    def __init__(self, images: Optional[Iterable[tuple[Any, Any]]]) -> None:
        self._it = None if images is None else iter(images)
        self._current: Optional[tuple[Any, Any]] = None

    def at(self, number: int) -> Optional[np.ndarray]:
        if self._it is None:
            return None
        while self._current is None or self._current[0].frame < number:
            self._current = next(self._it, None)
            if self._current is None:
                self._it = None
                return None
        if self._current[0].frame == number and isinstance(self._current[1], np.ndarray):
            return self._current[1]
        return None
