"""From a clip of per-frame results to people: per person, camera-space joints over the clip's frames.

A person is a track (the `track` field of bodies, hands and faces, when the tracking stage ran),
else a detection index (body k of every frame is person k; a detection outside a confirmed track,
track -1, is `untracked_person<k>`). Hands and faces attached to a body
belong to its person; a hand or face found alone is a person of its own (`hand3`, `face0`).
Frames where a person, or one of its parts, is not seen hold NaN.

Arrays (T frames of the clip, J joints of the part):
    joints float64[T, J, 3]  metres, OpenCV camera frame (x right, y down, z forward)
    pose2d float64[T, J, 2]  pixels     scores float64[T]
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np

from dope.parts import BODY_JOINTS, FACE_JOINTS, HAND
from dope.results import NO_LINK, Result
from dope.stream import Frame

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # image lists have no frame rate
CAMERA_FIELD = "pose3d_camera"
TRACK_FIELD = "track"
# A person's parts: key -> (DOPE part, joint names). Marker names are <person>_<prefix><joint>.
PERSON_PARTS = {"body": ("body", BODY_JOINTS), "left_hand": ("hand", HAND.joints),
                "right_hand": ("hand", HAND.joints), "face": ("face", FACE_JOINTS)}
MARKER_PREFIX = {"body": "", "left_hand": "lhand_", "right_hand": "rhand_", "face": "face_"}


class ExportError(ValueError):
    """A clip that cannot be exported (no camera-space poses, nothing to write); the message says why."""


@dataclass
class PersonPart:
    """One part of one person over the clip (NaN where not seen)."""
    joints: np.ndarray
    pose2d: np.ndarray
    scores: np.ndarray

    @property
    def seen(self) -> np.ndarray:
        """bool[T]: frames where this part is seen."""
        return np.isfinite(self.scores)


@dataclass
class Person:
    """One person of the clip: a name (`person0`, `hand2`...) and its parts by key (see PERSON_PARTS)."""
    name: str
    parts: dict[str, PersonPart]

    @property
    def seen(self) -> np.ndarray:
        """bool[T]: frames where any part of the person is seen."""
        return np.any([p.seen for p in self.parts.values()], axis=0)

    def markers(self) -> tuple[list[str], np.ndarray]:
        """(names `<person>_<joint>`, joints float64[T, M, 3]) of every part, body first."""
        names, points = [], []
        for key, part in self.parts.items():
            names += [f"{self.name}_{MARKER_PREFIX[key]}{j}" for j in PERSON_PARTS[key][1]]
            points.append(part.joints)
        return names, np.concatenate(points, 1)


@dataclass
class Clip:
    """A clip's people and timing.

    frames int64[T]: frame numbers (video frames) or positions (images); time_s float64[T] seconds
    from the first frame; fps: frames per second; camera: the first frame's `"camera"`
    (focal_px, cx, cy, source), with width and height in pixels.
    """
    frames: np.ndarray
    time_s: np.ndarray
    fps: float
    people: list[Person]
    camera: dict[str, Any] = field(default_factory=dict)
    width: int = 0
    height: int = 0

    def __len__(self) -> int:
        return len(self.frames)


def _person_name(part: Any, i: int, head: str) -> str:
    """`<head><track>`; without tracks `<head><i>` (detection i of every frame); a detection outside
    a confirmed track (track -1) is `untracked_<head><i>`, never mixed with a track of that number."""
    if TRACK_FIELD not in part.fields:
        return f"{head}{i}"
    value = part.fields[TRACK_FIELD][i]
    if value is not None and np.isfinite(float(value)) and int(value) >= 0:
        return f"{head}{int(value)}"
    return f"untracked_{head}{i}"


class ClipBuilder:
    """Gathers frames one at a time (`add`), then makes the `Clip` (`build`).

    fps: the source's frame rate when known; otherwise the frames' times decide (median step),
    else DEFAULT_FPS. shared_parts: a hand or face that the post-processing attached to several
    bodies (or wrists) goes on each, as the JSON says (a .pose file); by default on the first only."""

    def __init__(self, fps: Optional[float] = None, shared_parts: bool = False) -> None:
        self.fps = fps
        self.shared_parts = shared_parts
        self.frame_numbers: list[int] = []
        self.times: list[Optional[float]] = []
        # person name -> part key -> list of (frame position, joints, pose2d, score)
        self.seen: dict[str, dict[str, list[tuple[int, np.ndarray, np.ndarray, float]]]] = {}
        self.camera: dict[str, Any] = {}
        self.size = (0, 0)

    def add(self, frame: Frame) -> None:
        result: Result = frame.result
        t = len(self.frame_numbers)
        item = frame.item
        self.frame_numbers.append(item.frame if item.frame is not None else item.index)
        self.times.append(item.time_s)
        if not self.camera and "camera" in result.meta:
            self.camera = dict(result.meta["camera"])
            self.size = (result.width, result.height)
        for name in ("body", "hand", "face"):
            dets = result[name]
            if len(dets) and CAMERA_FIELD not in dets.fields:
                raise ExportError("exports need camera-space poses: run the placement stage "
                                  "(dope.motion.camera.place) first")
        body, hands, faces = result.body, result.hand, result.face
        taken_hands, taken_faces = set(), set()
        for i in range(len(body)):
            person = _person_name(body, i, "person")
            self._put(person, "body", t, body.fields[CAMERA_FIELD][i], body.pose2d[i], body.scores[i])
            for link, pkey in (("left_hand", "left_hand"), ("right_hand", "right_hand")):
                h = int(body.fields[link][i])
                if h != NO_LINK and (self.shared_parts or h not in taken_hands):
                    taken_hands.add(h)
                    self._put(person, pkey, t, hands.fields[CAMERA_FIELD][h], hands.pose2d[h], hands.scores[h])
            k = int(body.face[i])
            if k != NO_LINK and (self.shared_parts or k not in taken_faces):
                taken_faces.add(k)
                self._put(person, "face", t, faces.fields[CAMERA_FIELD][k], faces.pose2d[k], faces.scores[k])
        for h in range(len(hands)):
            if h not in taken_hands:
                pkey = "right_hand" if hands.is_right[h] else "left_hand"
                self._put(_person_name(hands, h, "hand"), pkey, t, hands.fields[CAMERA_FIELD][h],
                          hands.pose2d[h], hands.scores[h])
        for k in range(len(faces)):
            if k not in taken_faces:
                self._put(_person_name(faces, k, "face"), "face", t, faces.fields[CAMERA_FIELD][k],
                          faces.pose2d[k], faces.scores[k])

    def _put(self, person: str, key: str, t: int, joints: Any, pose2d: Any, score: Any) -> None:
        entries = self.seen.setdefault(person, {}).setdefault(key, [])
        if entries and entries[-1][0] == t:
            return  # the same track twice in one frame: keep the first (higher score)
        entries.append((t, np.asarray(joints, np.float64), np.asarray(pose2d, np.float64), float(score)))

    def frame_rate(self) -> float:
        if self.fps:
            return float(self.fps)
        times = np.array([np.nan if x is None else x for x in self.times], np.float64)
        steps = np.diff(times)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        # 1 / a median of float time steps: 24.99999999999998 for 25 fps; microhertz are noise
        return round(float(1.0 / np.median(steps)), 6) if len(steps) else DEFAULT_FPS

    def build(self) -> Clip:
        n = len(self.frame_numbers)
        fps = self.frame_rate()
        times = np.array([np.nan if x is None else x for x in self.times], np.float64)
        if n and np.isfinite(times).all():
            time_s = times - times[0]
        else:
            time_s = np.arange(n) / fps
        people = []
        order = ("body", "left_hand", "right_hand", "face")
        for name in sorted(self.seen, key=_natural):
            parts = {}
            for key in order:
                if key not in self.seen[name]:
                    continue
                j = len(PERSON_PARTS[key][1])
                joints, pose2d, scores = np.full((n, j, 3), np.nan), np.full((n, j, 2), np.nan), np.full(n, np.nan)
                for t, p3, p2, s in self.seen[name][key]:
                    joints[t], pose2d[t], scores[t] = p3, p2, s
                parts[key] = PersonPart(joints, pose2d, scores)
            people.append(Person(name, parts))
        return Clip(np.array(self.frame_numbers, np.int64), time_s, fps, people, self.camera, *self.size)


def hold_nearest(a: np.ndarray) -> np.ndarray:
    """float[T, ...] with NaN frames replaced by the nearest frame without NaN (the earlier one on ties);
    unchanged when no frame or every frame is seen."""
    seen = np.isfinite(a.reshape(len(a), -1)).all(-1)
    if seen.all() or not seen.any():
        return a
    idx = np.flatnonzero(seen)
    t = np.arange(len(a))
    pos = np.searchsorted(idx, t)
    before = idx[np.clip(pos - 1, 0, len(idx) - 1)]
    after = idx[np.clip(pos, 0, len(idx) - 1)]
    before = np.where(before > t, after, before)
    nearest = np.where(np.abs(t - before) <= np.abs(after - t), before, after)
    return a[nearest]


def _natural(name: str) -> tuple:
    """person2 before person10; people before lone hands and faces."""
    head = name.rstrip("0123456789")
    rank = {"person": 0, "hand": 1, "face": 2}.get(head, 3)
    return rank, head, int(name[len(head):] or -1)


def clip_people(frames: Iterable[Frame], fps: Optional[float] = None) -> Clip:
    """The people of a clip of frames that went through the placement stage."""
    builder = ClipBuilder(fps)
    for frame in frames:
        builder.add(frame)
    return builder.build()

