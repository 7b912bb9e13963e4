"""Typed results: one image's detections as arrays per part, a detection's view, and the JSON schema.

Units and frames: `pose2d` is in pixels of the original image (x right, y down); `pose3d` is in
metres for bodies (origin at the body centre, x and y opposite to the image's) and in a
part-centred frame for hands and faces.

A `Result` holds one `PartArrays` per part (`result.body`, `result.hand`, `result.face`): arrays
with one row per detection, sorted by decreasing score, as detectron2's `Instances` or
torchvision's dicts of tensors do. Iterating over a part, or indexing it with an integer, gives
`Detection` objects (copies); boolean, slice and index-array indexing give a `PartArrays`. Later
stages (tracks, camera space) add arrays of their own beside the core ones with `with_fields`.
"""
from __future__ import annotations

import array
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from dope.jsonio import collector_paused
from dope.parts import PART_NAMES, PARTS

JSON_DECIMALS = 4  # 1e-4 px / 0.1 mm: well below the network's precision
NO_LINK = -1  # a body's left_hand / right_hand / face when nothing is attached
LINKS = {"left_hand": "hand", "right_hand": "hand", "face": "face"}  # body link field -> part it indexes
CORE_FIELDS = ("scores", "pose2d", "pose3d")
PART_FIELDS = {"body": tuple(LINKS), "hand": ("is_right",), "face": ()}


@dataclass
class Detection:
    """One body, hand or face.

    score: the post-processing's score (PPI: a sum of probabilities, so it may exceed 1).
    pose2d: float32[J, 2], pixels of the original image.  pose3d: float32[J, 3].
    is_right: hands only.  left_hand / right_hand / face: bodies only, indexes into the
    image's hand and face lists (None when nothing is attached).
    extra: fields added by later stages (for example "track"), written to the JSON as they are.
    """
    score: float
    pose2d: np.ndarray
    pose3d: np.ndarray
    is_right: Optional[bool] = None
    left_hand: Optional[int] = None
    right_hand: Optional[int] = None
    face: Optional[int] = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, part: str, decimals: int = JSON_DECIMALS) -> dict[str, Any]:
        d: dict[str, Any] = {
            "score": _json_value(float(self.score), decimals),
            "pose2d": _json_value(np.asarray(self.pose2d, dtype=np.float64), decimals),
            "pose3d": _json_value(np.asarray(self.pose3d, dtype=np.float64), decimals + 2),
        }
        if part == "hand":
            d["is_right"] = bool(self.is_right)
        if part == "body":
            d.update(left_hand=self.left_hand, right_hand=self.right_hand, face=self.face)
        for k, v in self.extra.items():
            if v is not None:  # a field this detection does not have (see `_column`)
                d[k] = _json_value(v, decimals + 2)
        return d


def _json_value(v: Any, decimals: int) -> Any:
    """A JSON-ready value: arrays as rounded lists, numpy scalars as Python ones, NaN and infinities as
    null (JSON has no such numbers)."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            r = np.round(v.astype(np.float64), decimals)
            return r.tolist() if np.isfinite(r).all() else _finite(r.tolist())
        return v.tolist()
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def _finite(x: Any) -> Any:
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x if x is None or np.isfinite(x) else None


MISSING_VALUE = object()  # an added field's value that a detection does not have (None in an object array)


def _finite_list(values: list[Any]) -> list[Any]:
    """Python floats with the non-finite ones as None."""
    return values if all(map(math.isfinite, values)) else [v if math.isfinite(v) else None for v in values]


def _rounded_rows(a: np.ndarray, decimals: int) -> list[Any]:
    """`_json_value(row, decimals)` of each row of a float array, the whole array at once."""
    r = np.round(a.astype(np.float64), decimals)
    rows = r.tolist()
    finite = np.isfinite(r.reshape(len(r), -1)).all(axis=1)
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            rows[i] = _finite(rows[i])
    return rows


def extra_column(a: np.ndarray, decimals: int) -> Optional[list[Any]]:
    """The JSON values of an added field's rows as `Detection.to_dict` writes them (rows of floats
    rounded, single numbers as they are, non-finite ones as null); None for an object array (or
    one of another kind), which goes value by value."""
    if a.dtype.kind not in "biuf":
        return None
    if a.ndim == 1:  # a number per detection: written as its Python value, not rounded
        values = a.tolist()
        return _finite_list(values) if a.dtype.kind == "f" else values
    return _rounded_rows(a, decimals) if a.dtype.kind == "f" else a.tolist()


def extra_value(v: Any, decimals: int) -> Any:
    """One detection's value of an added field held in an object array (see `PartArrays._detection`);
    MISSING_VALUE for None."""
    v = v.copy() if isinstance(v, np.ndarray) else v.item() if hasattr(v, "item") else v
    return MISSING_VALUE if v is None else _json_value(v, decimals)


def _array(x: Any, dtype: Any, shape: tuple, what: str) -> np.ndarray:
    """An array that owns its memory (never a view of the caller's), of the given dtype and shape
    (None in `shape` matches any size)."""
    a = np.array(x, dtype=dtype, copy=True)
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        want = "x".join("N" if s is None else str(s) for s in shape)
        raise ValueError(f"{what}: expected shape ({want}), got {a.shape}")
    return a


class PartArrays:
    """One part's detections in one image, as arrays with one row each, by decreasing score.

    scores float32[N]; pose2d float32[N, J, 2] (pixels); pose3d float32[N, J, 3];
    hands: is_right bool[N]; bodies: left_hand, right_hand, face int64[N], indexes into the same
    image's hands and faces, -1 where nothing is attached. Other fields (added by later stages
    with `with_fields`) are arrays whose first axis is N, read as attributes (`part.track`).
    The arrays are the object's own: nothing here is a view of the network's outputs.
    """

    def __init__(self, part: str, scores: Any = None, pose2d: Any = None, pose3d: Any = None, **fields: Any) -> None:
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; use one of {', '.join(PART_NAMES)}")
        j = PARTS[part].num_joints
        n = 0 if scores is None else len(scores)
        data: dict[str, np.ndarray] = {
            "scores": _array(np.zeros(0) if scores is None else scores, np.float32, (None,), f"{part} scores"),
            "pose2d": _array(np.zeros((0, j, 2)) if pose2d is None else pose2d, np.float32, (n, j, 2),
                             f"{part} pose2d"),
            "pose3d": _array(np.zeros((0, j, 3)) if pose3d is None else pose3d, np.float32, (n, j, 3),
                             f"{part} pose3d"),
        }
        if part == "hand":
            is_right = fields.pop("is_right", None)
            data["is_right"] = _array(np.zeros(n, bool) if is_right is None else is_right, bool, (n,), "is_right")
        for link in PART_FIELDS["body"]:
            value = fields.pop(link, None)
            if part == "body":
                data[link] = _array(np.full(n, NO_LINK) if value is None else value, np.int64, (n,), link)
            elif value is not None:
                raise ValueError(f"{link} is a body field, not a {part} one")
        for name, value in fields.items():
            a = value.copy() if isinstance(value, np.ndarray) else _column(list(value))
            if a.ndim == 0 or len(a) != n:
                raise ValueError(f"{part} field {name!r} has {a.shape}; its first axis must be the {n} detections")
            data[name] = a
        self.part = part
        self._data = data

    # ---------------------------------------------------------------------------- construction

    @classmethod
    def from_detections(cls, part: str, dets: Iterable[Detection]) -> "PartArrays":
        """Arrays from `Detection` objects (their `extra` fields become arrays too)."""
        dets = list(dets)
        j = PARTS[part].num_joints
        kw: dict[str, Any] = {}
        if part == "hand":
            kw["is_right"] = [bool(d.is_right) for d in dets]
        if part == "body":
            for link in LINKS:
                kw[link] = [NO_LINK if getattr(d, link) is None else getattr(d, link) for d in dets]
        for name in dict.fromkeys(k for d in dets for k in d.extra):
            kw[name] = _column([d.extra.get(name) for d in dets])
        return cls(part, [d.score for d in dets],
                   np.reshape([np.asarray(d.pose2d, np.float32) for d in dets], (len(dets), j, 2)),
                   np.reshape([np.asarray(d.pose3d, np.float32) for d in dets], (len(dets), j, 3)), **kw)

    @classmethod
    def coerce(cls, part: str, x: Union["PartArrays", Iterable[Detection], None]) -> "PartArrays":
        """A PartArrays for a PartArrays (as it is), a sequence of Detections, or None (empty)."""
        if isinstance(x, PartArrays):
            if x.part != part:
                raise ValueError(f"expected {part} detections, got {x.part} ones")
            return x
        return cls.from_detections(part, () if x is None else x)

    def with_fields(self, **fields: Any) -> "PartArrays":
        """A copy with fields added or replaced (each an array with one row per detection)."""
        data = {k: v for k, v in self._data.items() if k not in CORE_FIELDS}
        data.update(fields)
        return PartArrays(self.part, self.scores, self.pose2d, self.pose3d, **data)

    # ---------------------------------------------------------------------------- access

    @property
    def scores(self) -> np.ndarray:
        return self._data["scores"]

    @property
    def pose2d(self) -> np.ndarray:
        return self._data["pose2d"]

    @property
    def pose3d(self) -> np.ndarray:
        return self._data["pose3d"]

    @property
    def fields(self) -> Mapping[str, np.ndarray]:
        """Every array by name: the core ones, the part's own ones, then the added ones."""
        return dict(self._data)

    @property
    def extra_fields(self) -> tuple[str, ...]:
        """Names of the fields added by later stages (beyond the core and the part's own)."""
        own = set(CORE_FIELDS) | set(PART_FIELDS[self.part])
        return tuple(k for k in self._data if k not in own)

    def __getattr__(self, name: str) -> np.ndarray:
        data = self.__dict__.get("_data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(f"{type(self).__name__} of {self.__dict__.get('part')} has no field {name!r}")

    def __len__(self) -> int:
        return len(self._data["scores"])

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[Detection]:
        for i in range(len(self)):
            yield self._detection(i)

    def __getitem__(self, index: Any) -> Union[Detection, "PartArrays"]:
        if isinstance(index, (int, np.integer)):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"{self.part} index {index} out of range for {n} detections")
            return self._detection(int(index) % n)
        index = np.asarray(index) if not isinstance(index, slice) else index
        if isinstance(index, np.ndarray) and index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"boolean index of shape {index.shape} for {len(self)} {self.part} detections")
        data = {k: v[index] for k, v in self._data.items()}
        return PartArrays(self.part, data.pop("scores"), data.pop("pose2d"), data.pop("pose3d"), **data)

    def _detection(self, i: int) -> Detection:
        d = self._data
        kw: dict[str, Any] = {}
        if self.part == "hand":
            kw["is_right"] = bool(d["is_right"][i])
        if self.part == "body":
            for link in LINKS:
                v = int(d[link][i])
                kw[link] = None if v == NO_LINK else v
        extra = {k: (v[i].copy() if isinstance(v[i], np.ndarray) else v[i].item() if hasattr(v[i], "item") else v[i])
                 for k, v in d.items() if k in self.extra_fields}
        return Detection(score=float(d["scores"][i]), pose2d=d["pose2d"][i].copy(), pose3d=d["pose3d"][i].copy(),
                         extra=extra, **kw)

    def __repr__(self) -> str:
        return f"PartArrays({self.part}, {len(self)} detections, fields: {', '.join(self._data)})"

    def to_dicts(self, decimals: int = JSON_DECIMALS) -> list[dict[str, Any]]:
        """The detections in the JSON schema (SPEC §10), fields added by later stages included: what
        `[det.to_dict(part, decimals) for det in self]` gives, one array at a time (a crowd's
        record is a hundred thousand numbers: rounded by numpy, turned into lists once)."""
        n = len(self)
        if n == 0:
            return []
        with collector_paused():  # hundreds of thousands of lists, all kept: see jsonio.collector_paused
            return self._to_dicts(decimals)

    def _to_dicts(self, decimals: int) -> list[dict[str, Any]]:
        data = self._data
        columns: dict[str, list[Any]] = {
            "score": _finite_list(data["scores"].astype(np.float64).tolist()),
            "pose2d": _rounded_rows(data["pose2d"], decimals),
            "pose3d": _rounded_rows(data["pose3d"], decimals + 2),
        }
        if self.part == "hand":
            columns["is_right"] = data["is_right"].astype(bool).tolist()
        if self.part == "body":
            for link in LINKS:
                columns[link] = [None if v == NO_LINK else v for v in data[link].tolist()]
        optional = []  # extra fields whose missing values (None) leave the key out
        for name in self.extra_fields:
            column = extra_column(data[name], decimals + 2)
            if column is None:  # an object array (values of several shapes, or missing): one by one
                column = [extra_value(v, decimals + 2) for v in data[name]]
                optional.append(name)
            columns[name] = column
        names = list(columns)
        dicts = [dict(zip(names, row)) for row in zip(*columns.values())]
        for name in optional:
            for d in dicts:
                if d[name] is MISSING_VALUE:
                    del d[name]
        return dicts


Parts = Union[PartArrays, Sequence[Detection], None]


def _column(values: list[Any]) -> np.ndarray:
    """One array for one field's per-detection values: numeric when they stack, else an object array
    (values of several shapes, or missing as None)."""
    if all(v is not None for v in values):
        try:
            return np.array(values)
        except ValueError:
            pass
    out = np.empty(len(values), object)
    for i, v in enumerate(values):
        out[i] = v
    return out


KNOWN_KEYS = ("score", "pose2d", "pose3d", "is_right", "left_hand", "right_hand", "face")  # a detection's JSON keys


def plain_part(part: str, records: Sequence[Any]) -> Optional[tuple[PartArrays, np.ndarray, np.ndarray]]:
    """One part's detections from their JSON form as `Result.from_dict` makes them, a whole part at
    once, with the numbers as read: (arrays, pose2d float64[N, J, 2], pose3d float64[N, J, 3]).

    Only for the plain form that `--json` writes (dicts with float scores and poses of the part's
    shape, links as whole numbers or null); None for anything else, which `from_dict` takes one
    detection at a time (with its own conversions and errors)."""
    j = PARTS[part].num_joints
    n = len(records)
    try:
        if set(map(type, records)) - {dict}:
            return None
        scores = [x["score"] for x in records]
        poses = [_plain_poses([x["pose2d"] for x in records], n, j, 2),
                 _plain_poses([x["pose3d"] for x in records], n, j, 3)]
    except (KeyError, TypeError):
        return None
    if poses[0] is None or poses[1] is None or set(map(type, scores)) - {float}:
        return None
    kw: dict[str, Any] = {}
    if part == "hand":
        kw["is_right"] = [bool(x.get("is_right")) for x in records]
    if part == "body":
        for link in LINKS:
            values = [x.get(link) for x in records]
            if set(map(type, values)) - {int, type(None)}:
                return None
            kw[link] = [NO_LINK if v is None else v for v in values]
    for name in dict.fromkeys(k for x in records for k in x if k not in KNOWN_KEYS):
        kw[name] = _column([x.get(name) for x in records])
    arrays = PartArrays(part, np.array(scores, np.float32), poses[0].astype(np.float32), poses[1].astype(np.float32),
                        **kw)
    return arrays, poses[0], poses[1]


def _plain_poses(rows: list[Any], n: int, j: int, dims: int) -> Optional[np.ndarray]:
    """float64[n, j, dims] of n lists of j lists of `dims` floats; None for any other form."""
    joints = list(itertools.chain.from_iterable(rows))
    if len(joints) != n * j or set(map(len, rows)) - {j} or set(map(len, joints)) - {dims}:
        return None
    values = list(itertools.chain.from_iterable(joints))  # one flat list: each pass below runs in C
    try:  # takes floats and whole numbers (bools too), refuses None, strings, lists...
        a = np.frombuffer(array.array("d", values), np.float64)
    except TypeError:
        return None
    whole = np.flatnonzero(a == np.trunc(a)).tolist()  # where an int or a bool may hide (few floats are whole)
    if set(type(values[i]) for i in whole) - {float}:
        return None
    return a.reshape(n, j, dims)


class Result:
    """Everything found in one image: `body`, `hand`, `face` as `PartArrays`, sorted by decreasing score.

    height, width: the image's size in pixels; image: its name (None for arrays and video frames).
    Each part may be given as a `PartArrays` or a list of `Detection`s. meta: top-level fields
    beyond the schema (kept from a saved file, or added by a stage), written to the JSON as they are;
    keys starting with "_" are the pipeline's own and not written.
    """

    def __init__(self, height: int, width: int, body: Parts = None, hand: Parts = None, face: Parts = None,
                 image: Optional[str] = None, meta: Optional[Mapping[str, Any]] = None) -> None:
        self.height, self.width, self.image = int(height), int(width), image
        self.meta: dict[str, Any] = dict(meta or {})
        self.body = PartArrays.coerce("body", body)
        self.hand = PartArrays.coerce("hand", hand)
        self.face = PartArrays.coerce("face", face)

    def __getitem__(self, part: str) -> PartArrays:
        if part not in PART_NAMES:
            raise KeyError(part)
        return getattr(self, part)

    def parts(self) -> dict[str, PartArrays]:
        return {p: self[p] for p in PART_NAMES}

    def __len__(self) -> int:
        return sum(len(self[p]) for p in PART_NAMES)

    def __repr__(self) -> str:
        return (f"Result({self.width}x{self.height}, {len(self.body)} bodies, {len(self.hand)} hands, "
                f"{len(self.face)} faces{', ' + repr(self.image) if self.image else ''})")

    def replace(self, **parts: Parts) -> "Result":
        """A new Result with some parts replaced (the others shared: they are never changed in place)."""
        kw = {**self.parts(), **parts}
        return Result(self.height, self.width, image=self.image, meta=self.meta, **kw)

    def select(self, keep: Mapping[str, Any]) -> "Result":
        """A Result with only the detections that `keep[part]` (a boolean mask or indexes, per part)
        selects; parts not named are kept whole. Body links follow their hands and faces to their
        new indexes, and become -1 when the hand or face is dropped."""
        new, remap = {}, {}
        for p in PART_NAMES:
            arr = self[p]
            if p in keep:
                idx = np.asarray(keep[p])
                idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64).reshape(-1)
            else:
                idx = np.arange(len(arr))
            table = np.full(len(arr) + 1, NO_LINK, np.int64)  # old index -> new; the last slot maps -1
            table[idx] = np.arange(len(idx))
            remap[p], new[p] = table, arr[idx]
        body = new["body"]
        links = {link: remap[part][body.fields[link]] for link, part in LINKS.items()}
        new["body"] = body.with_fields(**links)
        return self.replace(**new)

    def filter(self, min_score: Optional[float] = None, parts: Optional[Iterable[str]] = None) -> "Result":
        """Only the detections scoring at least `min_score` and, when `parts` is given, only those
        parts (the others left empty). Body links keep pointing at the same hands and faces."""
        wanted = set(PART_NAMES if parts is None else parts)
        unknown = wanted - set(PART_NAMES)
        if unknown:
            raise ValueError(f"unknown part(s) {', '.join(sorted(unknown))}; use {', '.join(PART_NAMES)}")
        keep = {}
        for p in PART_NAMES:
            s = self[p].scores
            keep[p] = (s >= min_score if min_score is not None else np.ones(len(s), bool)) & (p in wanted)
        return self.select(keep)

    def to_dict(self, decimals: int = JSON_DECIMALS, *, parts: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """The result in the JSON schema (SPEC §10); `parts`: what to put in place of each part's
        `to_dicts` (a writer's own encoding of them), by default those lists."""
        d: dict[str, Any] = {"image": self.image, "height": self.height, "width": self.width}
        for p in PART_NAMES:
            d[p] = self[p].to_dicts(decimals) if parts is None else parts[p]
        d.update({k: _json_value(v, decimals) for k, v in self.meta.items() if k not in d and not k.startswith("_")})
        return d

    def to_json(self, **extra: Any) -> str:
        """The result as one JSON object (SPEC §10); `extra` keys are added at the top level."""
        return json.dumps({**self.to_dict(), **extra}, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Result":
        """A Result from its JSON form (`to_dict`); per-detection fields beyond the schema are kept
        as added fields (for example `track`)."""
        known = set(KNOWN_KEYS)

        def det(part: str, x: Mapping[str, Any]) -> Detection:
            j = PARTS[part].num_joints
            kw = {k: x.get(k) for k in ("is_right", "left_hand", "right_hand", "face") if k in x}
            return Detection(score=float(x["score"]), pose2d=np.asarray(x["pose2d"], np.float32).reshape(j, 2),
                             pose3d=np.asarray(x["pose3d"], np.float32).reshape(j, 3),
                             extra={k: v for k, v in x.items() if k not in known}, **kw)

        def part_arrays(p: str) -> Union[PartArrays, list[Detection]]:
            plain = plain_part(p, d.get(p) or [])
            return plain[0] if plain is not None else [det(p, x) for x in d.get(p) or []]
        return cls(height=d["height"], width=d["width"], image=d.get("image"),
                   **{p: part_arrays(p) for p in PART_NAMES})
