"""Tracks: the same person keeps one id across frames, bodies, hands and faces alike.

`Tracker.update(result)` takes one frame's `Result` and returns it with a `track` field (int64 per
detection) on every part, keeping its state inside, as norfair's and ByteTrack's trackers do:

- Association: per part, Hungarian assignment (`scipy.optimize.linear_sum_assignment`) on a cost
  that blends the overlap of the joints' boxes (1 - IoU) with two likelihood terms: the mean joint
  distance between the track's prediction and the detection, in units of the track's size (its
  pose-box diagonal), and the log ratio of their spreads (RMS joint distance to the centre), which
  tells apart two people side by side at different depths; and the mean distance between the
  track's 3D pose and the detection's (metres: posture tells apart two people at one place); and
  the difference of a depth proxy, pixels per metre (the 2D spread over the 3D one, `log_scale`).
  Each is expected within a sigma that widens with the frames unseen; pairs beyond `gate` sigmas
  never match (see `association_cost`). In crowds candidate pairs come from a grid on the centres
  (an exact gate, `neighbours.py`) and each group of linked tracks and detections is assigned on
  its own (`assignment.py`): where every track's cheapest detection is a different one (a track
  and a detection that only have each other, people side by side who keep their places), those
  pairs are the answer without the Hungarian method, and scipy is imported only when a frame
  first has tracks that truly compete (0.4 s of CPU). The candidate
  pairs stay lists (never a dense matrix), and the tracks' state lives in arrays, a row per track
  (`_Rows`): a frame's work is a few array operations, whatever the crowd's size.
- A track unseen in the last frame is taken back only by a detection whose 3D pose and depth proxy
  fit it; a lost track (unseen 2 to `reid_age` frames) that no detection fits by place takes one
  left over that fits its depth proxy and 3D pose where it could have walked since, if unambiguous.
- A body reported mirrored (left and right exchanged for the legs, the arms or the hips and
  shoulders: a person seen from behind) still fits its track, at `swap_cost`; a pose with one joint
  far off (a detector's bad joint) fits it with that joint at its predicted place, at `glitch_cost`.
- Each track's gate follows its own errors one frame on (`own_sigma`): runners, dancers, a camera
  that pans with jolts and low frame rates move people more between frames than a walker; a new
  track's speed is unknown before its second match (`speed0`).
- A second detection of a person (within `duplicate` track sizes of a matched one, with the same 3D
  pose) carries their id and changes nothing, unless two confirmed tracks each fit one of the two
  better (two people side by side); tracks not seen in a frame move with the median unexplained shift of
  those seen (a panning camera); a track predicted outside the image survives `max_age_outside`.
- Tracks are predicted at constant velocity (their joints' centre moves by its filtered speed, and
  each joint by its own swing one frame on), so a person hidden for up to `max_age` frames
  (default 45: a second and a half at 30 frames per second) keeps their id when they reappear.
- High-score detections (`score >= high_score`) are matched first where they fit on all terms
  together (`joint_gate`), then every detection left to the tracks left (ByteTrack), a low-score
  one that a track seen in the last frame could explain never to a hidden track, and none that a
  new track fits within `joint_gate` to a track it does not (someone who came into view in front of
  a person as they went out of sight, at another depth: the hidden person's track waits; a high-score
  detection goes to a track left without one, rather than to one whose low-score detection fits
  it better, where the assignment of all of them says so: `yield_gate`); new tracks are
  tentative and must be matched in `n_init` frames in a row to be confirmed, so a one-frame false
  positive neither takes nor steals an id.
- Ids come from one counter and are never reused. A hand or face attached to a body carries the
  body's id; a hand or face found alone is tracked among the lone ones (a face on every 4th of its
  landmarks) and gets an id of its own from the same counter, so it never collides with a body's.
- Handedness: each hand's `is_right` is voted on over its track (attached hands per body and
  wrist); a hand whose `is_right` flips against a settled history is corrected.

Detections not (yet) in a confirmed track carry `track` -1 (`NO_TRACK`). `update` is causal; the
stage `track(frames)` and `Tracker.run(results)` hold `n_init - 1` frames back so that a
person's first frames, seen while their track was tentative, get the id it is confirmed with.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from dope.motion.assignment import assign_pairs
from dope.motion.neighbours import close_pairs, pairs_within
from dope.parts import PART_NAMES
from dope.results import NO_LINK, PartArrays, Result
from dope.stream import Frame

NO_TRACK = -1
_DENSE_PAIRS = 4096  # cost matrices larger than this find their candidate pairs on a grid (neighbours.py)
_SIDES = ("left_hand", "right_hand")
# Lone faces are tracked on every 4th of their 84 landmarks: the distances and sizes the tracker
# compares are means and extents, which 21 evenly spread landmarks give within a few per cent, at a
# quarter of the work (a crowd's lone faces were most of its tracking time).
_TRACKED_JOINTS = {"face": slice(None, None, 4)}
# Left/right confusions of a body (joints in dope.parts.BODY_JOINTS order): the pairs exchanged in
# each group that a detector may mirror on its own (legs; arms; hips and shoulders), and for each
# set of groups mirrored (a bitmask, bit g for group g) the permutation of the joints.
_SWAP_GROUPS = ((0, 1, 2, 3), (6, 7, 8, 9), (4, 5, 10, 11))
_MIRROR = np.array([1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12])
_SWAP_PERMS = np.array([[_MIRROR[j] if any(j in g and m >> i & 1 for i, g in enumerate(_SWAP_GROUPS)) else j
                         for j in range(13)] for m in range(8)])
# What a match that ended a gap changes of a track, kept to be restored if that match is undone
# (`_Track.save`, `_Track.restore`).
_SAVED = ("pose", "pose3d", "scale", "centre", "last", "size", "spread", "velocity", "swing", "step")
HUMAN_ACCEL = 4.0  # m/s^2: how fast a person may speed up while hidden (re-identification's reach; 30 fps)


@dataclass(frozen=True)
class TrackerParams:
    """Tracker settings (defaults chosen on bench.py --tracking's scenes, seeds 0-19; checked on others).

    n_init: frames in a row a new track must be matched to be confirmed.
    max_age: frames a confirmed track survives unmatched (predicted at constant velocity).
    high_score: detections scoring at least this are matched first (ByteTrack).
    iou_weight: weight of (1 - box IoU) in the cost, beside the pose and size terms.
    pose_sigma: expected mean joint distance, in track sizes, between a track's prediction and its
        detection one frame after the last hit; pose_growth: added per frame unseen.
    size_sigma: expected |log| ratio of a detection's spread (RMS joint distance to the centre) to
        its track's, one frame on; size_growth: added per frame unseen.
    gate: pairs farther than this many sigmas, in pose or in size, never match.
    velocity_gain: weight of the newest displacement in the filtered speed (0..1).
    age_cost: added to the cost per frame a track went unseen: of two tracks that explain a
        detection equally well (a hidden person and the one in front of them), the one just seen
        wins; age_cap: frames after which it stops growing (between two people hidden for long, the
        one hidden longer must not lose a detection that its prediction fits far better).
    flip_votes: handedness votes needed before a flip is corrected; vote_decay: vote memory per frame.
    duplicate: of two detections of one frame whose mean joint distance is below this many sizes
        (and whose 3D poses agree within twice duplicate3d), the lower-scoring one is a second
        detection of the other's person: it is left out of the matching and carries their id
        (`_twins`); a detection left unmatched within this many track sizes of a detection matched in
        the same frame is one too: it carries their id, starts no track and changes none; of two
        tracks matched to such a pair, the younger ends. duplicate3d: and whose 3D poses are within
        this mean joint distance (metres; 0: not checked): two people side by side at one place
        differ in posture.
    max_age_outside: frames a confirmed track predicted outside the image survives (a person who
        walked out of view, or whom the camera panned away from).
    camera_motion: move the tracks not seen in a frame by the median shift, beyond their
        prediction, of the tracks seen in it (a panning camera moves everybody).
    pose3d_sigma: expected mean joint distance, in metres, between a track's 3D pose (DOPE's,
        centred on the part; averaged over its last frames) and its detection's, one frame on;
        pose3d_growth: added per frame unseen (capped at 3 x pose3d_sigma). 0: the 3D pose is not
        used. Two people at one place and depth in the image differ in posture (which leg is
        forward, where the arms are, which way they face).
    scale_sigma: expected |difference| between a detection's log image scale (its 2D RMS spread,
        pixels, over its 3D one, metres: pixels per metre, a proxy of its depth that does not depend
        on the posture) and its track's, one frame on; scale_growth: added per frame unseen. 0: not
        used. Two people crossing at different depths differ in it even where their boxes overlap.
    joint_gate: a track unseen in the last frame is not taken back by a detection whose terms
        together (the 2D, size, 3D and depth ones: a sum of squared sigmas, about chi-squared
        with 4 degrees of freedom) exceed this squared; each alone may be within `gate` while
        together they say "another person" (inf: not checked). Such a pair is left out of the
        high scores' round, and in the round after it does not take a detection that a new
        (tentative) track fits within it.
    posture_rate: the 3D sigma of a track is at least this times its own rate of posture change
        (metres a frame, the detections' noise taken out), times its frames unseen plus one, up to
        two: a dancer's posture changes 10 cm a frame, a walker's 1-2 cm (0: the fixed sigma).
    swap_cost: a body detection may fit its track with its left and right joints exchanged, for
        the legs, the arms or the hips and shoulders, each on its own (a detector reports a person
        seen from behind mirrored, in whole or in part), at this cost (the log of the odds against
        such a confusion: 4, about 2 in 100). The track keeps its own left and right, and the
        detection is given back corrected (its joints, and its hands' links with its arms). inf:
        never. mirror_rebase: matches in a row mirrored in a group after which the track takes
        the detector's left and right for it (a track born during a confusion, or a person who
        turned round while hidden).
    yield_gate: where the first round would give a track a high-score detection and leave a
        low-score one that fits it better, the high-score detection goes instead to a track left
        without a pair that it fits within this many sigmas on all terms together (a sum of
        squares, as `joint_gate`), if the assignment of every detection says so: a person coming
        out from behind the one in front is detected with the better score (0: never; see
        `_PartTracks._yield_to_low`).
    reidentify: give a lost track (unseen 2 frames or more, beyond its gate) a detection left
        unmatched that fits its depth proxy and 3D pose, within its speed times the frames unseen
        of where it was last seen (see `_PartTracks._reidentify`). reid_age: frames a confirmed track
        unseen beyond max_age is kept for that alone (a person hidden, then missed, for over a second).
        reid_odds: of lost tracks that fit one detection, one whose log-likelihood (its fit, -z^2/2,
        less twice the log of the reach it had: the area it could be anywhere in) beats every other
        pair of its row and column by this much takes it (0: such a detection is left alone).
    glitch, glitch_cost: a detection may fit its track with one joint far off (a detector's bad
        joint in one frame: an ankle half a body away), at `glitch_cost` (the log of the odds against
        it): where one joint is farther than `glitch` track sizes (box diagonals) and 4 times the
        pair's median joint distance from the track's prediction, the pair's 2D and depth terms are
        measured with that joint at its predicted place, and the track takes it there, unless it was
        taken there in its last match too (two frames in a row: the person moved). 0: never.
    own_sigma, own_rate: a track's pose and size sigmas are at least `own_sigma` times the RMS of
        its own errors one frame on (its median joint's distance to its detection, in its sizes, and
        the log ratio of their spreads), averaged with weight `own_rate` a frame: a runner, a dancer or
        a low frame rate moves more between frames than `pose_sigma` allows, and a tight gate would
        let them go (0: the fixed sigmas). speed0: a new track's pose sigma before its second match
        (its speed unknown), in its sizes: a runner at 25 fps moves about 0.15 of theirs a frame.
    """
    n_init: int = 3
    max_age: int = 45
    high_score: float = 0.5
    iou_weight: float = 0.5
    pose_sigma: float = 0.04
    pose_growth: float = 0.005
    size_sigma: float = 0.05
    size_growth: float = 0.001
    gate: float = 3.5
    velocity_gain: float = 0.2
    age_cost: float = 0.3
    age_cap: float = 5.0
    flip_votes: float = 2.0
    vote_decay: float = 0.9
    duplicate: float = 0.05
    pose3d_sigma: float = 0.05
    pose3d_growth: float = 0.01
    scale_sigma: float = 0.06
    scale_growth: float = 0.002
    reidentify: bool = True
    duplicate3d: float = 0.06
    reid_age: int = 60
    max_age_outside: int = 150
    camera_motion: bool = True
    joint_gate: float = 4.0
    posture_rate: float = 1.5
    swap_cost: float = 4.0
    mirror_rebase: int = 10
    yield_gate: float = 3.0
    reid_odds: float = 4.0
    glitch: float = 0.2
    glitch_cost: float = 2.0
    own_sigma: float = 1.0
    own_rate: float = 0.3
    speed0: float = 0.15


def _dominant(ll: np.ndarray, margin: float) -> np.ndarray:
    """bool[T, D]: the pairs whose log-likelihood ll (float[T, D], -inf: no pair) beats every other
    pair of their row and of their column by at least `margin`."""
    out = np.isfinite(ll)
    for axis in (0, 1):
        if ll.shape[axis] > 1:
            top2 = -np.partition(-ll, 1, axis=axis)
            best, second = np.take(top2, [0], axis=axis), np.take(top2, [1], axis=axis)
            with np.errstate(invalid="ignore"):  # (-inf less -inf: no pair either way)
                out &= (ll == best) & (ll - second >= margin)
    return out


class _Rows:
    """The state of one part's tracks, a row (slot) each, in arrays that a frame reads and writes for
    all its tracks at once (in a crowd of 1,500 detections, a Python object per track and field cost
    more than the arithmetic). The rows of tracks that ended are reused.

    Per row: pose float64[J, 2], the last matched 2D pose; centre float64[2], its joints' mean;
    velocity float64[2], the centre's, pixels per frame (filtered); step float64[2], its moves
    between the last matches, pixels per frame, each averaged with the one before (a runner
    speeding up is already faster than the filtered speed says); swing float64[J, 2], each joint's own
    motion about the centre (limbs swinging), pixels per frame, carried one frame on (zeros:
    unknown); pose3d float64[J, 3], the 3D pose averaged over the last matches (has3d: known);
    scale, log pixels per metre (2D over 3D spread, filtered: a depth proxy; NaN: unknown); last,
    the frame of the last match; size, the pose-box diagonal (pixels, filtered); spread, the log of
    the RMS joint distance to the centre (filtered); hits, matches so far. How fast the 3D posture
    changes, metres per frame (RMS over the joints, the detections' noise taken out: from the mean
    squared first and second differences of the 3D poses of consecutive frames, d1sq and d2sq,
    rate3d^2 = d1sq - d2sq / 3; a dancer's posture moves 10 cm a frame): raw3d, the last
    detection's 3D pose (has_raw), step3d, its change from the one before when consecutive
    (has_step); repaired, the joint its last match took at its predicted place (`glitch`; -1: none);
    dev and sdev, the mean squares of its errors one frame on (`own_sigma`)."""

    _FIELDS = {"pose": (("J", 2), 0.0), "centre": ((2,), 0.0), "velocity": ((2,), 0.0), "step": ((2,), 0.0),
               "swing": (("J", 2), 0.0),
               "pose3d": (("J", 3), 0.0), "has3d": ((), False), "scale": ((), math.nan), "last": ((), 0),
               "size": ((), 0.0), "spread": ((), 0.0), "hits": ((), 1), "raw3d": (("J", 3), 0.0),
               "has_raw": ((), False), "step3d": (("J", 3), 0.0), "has_step": ((), False),
               "d1sq": ((), math.nan), "d2sq": ((), math.nan), "rate3d": ((), 0.0),
               "mirror_runs": ((len(_SWAP_GROUPS),), 0), "repaired": ((), -1), "dev": ((), 0.0),
               "sdev": ((), 0.0)}

    def __init__(self) -> None:
        self.used = np.zeros(0, bool)
        self.joints = 0

    def new(self, count: int, joints: int) -> np.ndarray:
        """int64[count]: free rows, set to a new track's state."""
        if joints != self.joints:
            if len(self.used):
                raise ValueError(f"poses of {joints} joints among tracks of {self.joints}")
            self.joints = joints
        free = np.flatnonzero(~self.used)
        if len(free) < count:
            self._grow(max(2 * len(self.used), len(self.used) + count, 16))
            free = np.flatnonzero(~self.used)
        slots = free[:count]
        self.used[slots] = True
        for name, (_, fill) in self._FIELDS.items():
            getattr(self, name)[slots] = fill
        return slots

    def _grow(self, n: int) -> None:
        old = len(self.used)
        for name, (shape, fill) in self._FIELDS.items():
            dims = tuple(self.joints if d == "J" else d for d in shape)
            a = np.full((n,) + dims, fill, np.float64 if isinstance(fill, float) else type(fill))
            if old:
                a[:old] = getattr(self, name)
            setattr(self, name, a)
        used = np.zeros(n, bool)
        used[:old] = self.used
        self.used = used

    def keep(self, slots: np.ndarray) -> None:
        """Free every row but `slots`."""
        self.used[:] = False
        self.used[slots] = True


def _row_array(name: str, doc: str) -> property:
    def get(t: "_Track") -> np.ndarray:
        return getattr(t.rows, name)[t.slot].copy()

    def put(t: "_Track", value: np.ndarray) -> None:
        getattr(t.rows, name)[t.slot] = value
    return property(get, put, doc=doc)


def _row_number(name: str, kind: type, doc: str) -> property:
    def get(t: "_Track") -> Any:
        return kind(getattr(t.rows, name)[t.slot])

    def put(t: "_Track", value: Any) -> None:
        getattr(t.rows, name)[t.slot] = value
    return property(get, put, doc=doc)


class _Track:
    """A track: its key and public id, and its row of its part's `_Rows`, which the properties read
    (copies) and write one track at a time; a frame's work reads and writes all rows at once."""
    __slots__ = ("key", "id", "before", "rows", "slot")

    def __init__(self, key: int, rows: _Rows, slot: int) -> None:
        self.key = key  # internal, for every track; `id` is the public one, given on confirmation
        self.id = NO_TRACK
        # The state before a match that ended a gap: restored if the track is not matched again in
        # the next frame, so that a one-frame false positive near a hidden person's path does not move it.
        self.before: Optional[dict[str, Any]] = None
        self.rows, self.slot = rows, slot

    pose = _row_array("pose", "float64[J, 2], the last matched 2D pose")
    centre = _row_array("centre", "float64[2], its joints' mean")
    velocity = _row_array("velocity", "float64[2], the centre's, pixels per frame")
    step = _row_array("step", "float64[2], the centre's last moves between matches (two by two), pixels per frame")
    swing = _row_array("swing", "float64[J, 2], each joint's own motion about the centre (zeros: unknown)")
    last = _row_number("last", int, "the frame of the last match")
    size = _row_number("size", float, "pose-box diagonal, pixels (filtered)")
    spread = _row_number("spread", float, "log of the RMS joint distance to the centre (filtered)")
    hits = _row_number("hits", int, "matches so far")
    rate3d = _row_number("rate3d", float, "how fast its 3D posture changes, metres per frame")

    @property
    def pose3d(self) -> Optional[np.ndarray]:
        """float64[J, 3], the 3D pose averaged over the last matches (None: unknown)."""
        return self.rows.pose3d[self.slot].copy() if self.rows.has3d[self.slot] else None

    @pose3d.setter
    def pose3d(self, value: Optional[np.ndarray]) -> None:
        self.rows.has3d[self.slot] = value is not None
        self.rows.pose3d[self.slot] = 0.0 if value is None else value

    @property
    def scale(self) -> Optional[float]:
        """log pixels per metre (2D over 3D spread; filtered): a depth proxy (None: unknown)."""
        v = float(self.rows.scale[self.slot])
        return None if math.isnan(v) else v

    @scale.setter
    def scale(self, value: Optional[float]) -> None:
        self.rows.scale[self.slot] = math.nan if value is None else value

    def predicted(self, frame: int) -> np.ndarray:
        return _predicted(self.rows, np.array([self.slot]), frame)[0]

    def save(self) -> None:
        """Keep the state that a match is about to change (`before`)."""
        self.before = {name: getattr(self, name) for name in _SAVED}

    def restore(self) -> None:
        """Back to the state `save` kept (its match is undone)."""
        for name, value in self.before.items():
            setattr(self, name, value)
        self.before = None


def _slots(tracks: list[_Track]) -> np.ndarray:
    """int64[T]: the tracks' rows."""
    return np.fromiter((t.slot for t in tracks), np.int64, len(tracks))


def _predicted(rows: _Rows, s: np.ndarray, frame: int) -> np.ndarray:
    """float[T, J, 2]: the poses at `frame` of the tracks in rows `s`: the centre at constant
    velocity, each joint's own swing carried one frame on."""
    pose = rows.pose[s]
    pose += (rows.velocity[s] * (frame - rows.last[s]).astype(np.float64)[:, None])[:, None]
    pose += rows.swing[s]
    return pose


def _outside(rows: _Rows, s: np.ndarray, frame: int, image: tuple[int, int]) -> np.ndarray:
    """bool[T]: whether the predicted centres of the tracks in rows `s` are outside the image (width, height)."""
    c = rows.centre[s] + rows.velocity[s] * (frame - rows.last[s]).astype(np.float64)[:, None]
    return ~((0 <= c[:, 0]) & (c[:, 0] <= image[0]) & (0 <= c[:, 1]) & (c[:, 1] <= image[1]))


# Reductions over the joints of float[..., J, 2 or 3] arrays, written so that numpy reduces along
# contiguous memory: its own sum(-2) and max(-2) over a short last axis run 5-20x slower, which in a
# crowd of 1,500 detections was a third of the tracker's time.

def _joint_sum(a: np.ndarray) -> np.ndarray:
    """float[..., C]: the sum over the joints (axis -2) of float[..., J, C] (NaN where any is)."""
    return np.swapaxes(a, -1, -2) @ np.ones(a.shape[-2], a.dtype)


def _joint_extent(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) over the joints (axis -2) of float[..., J, C], each float[..., C]."""
    t = np.ascontiguousarray(np.swapaxes(a, -1, -2))
    return t.min(-1), t.max(-1)


def _sq_norm(d: np.ndarray) -> np.ndarray:
    """float[...]: the squared norms of float[..., C] along its last axis."""
    out = d[..., 0] * d[..., 0]  # (component by component: twice as quick as einsum or (d * d).sum(-1))
    for c in range(1, d.shape[-1]):
        out += d[..., c] * d[..., c]
    return out


def _joint_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float[...]: the mean distance between the joints of a and b (float[..., J, C])."""
    return np.sqrt(_sq_norm(a - b)).mean(-1)


def _size(pose2d: np.ndarray) -> np.ndarray:
    """float[N]: diagonals of the joints' boxes, pixels (at least 1)."""
    lo, hi = _joint_extent(pose2d)
    return np.maximum(np.sqrt(_sq_norm(hi - lo)), 1.0)


def log_spread(pose2d: np.ndarray) -> np.ndarray:
    """float[N]: log of the RMS distance of the joints to their mean, pixels (at least 1): a size
    that depends less on the outermost joints than the box does."""
    j = pose2d.shape[-2]  # (sum / count: np.mean's own arithmetic, without its per-call cost)
    d = pose2d - _joint_sum(pose2d)[..., None, :] / j
    return 0.5 * np.log(np.maximum(_sq_norm(d).sum(-1) / j, 1.0))


def log_scale(pose2d: np.ndarray, pose3d: np.ndarray) -> np.ndarray:
    """float[N]: log of pixels per metre of each detection: the RMS distance of its 2D joints to their
    mean (pixels) over that of its 3D joints' x and y (metres). Under a (scaled) orthographic or
    distant perspective camera this is focal length over depth, whatever the posture: a depth
    proxy that needs no camera model (NaN where the 3D pose is degenerate)."""
    j = pose2d.shape[-2]
    a = pose2d - _joint_sum(pose2d)[..., None, :] / j
    b = pose3d[..., :2] - _joint_sum(pose3d[..., :2])[..., None, :] / j
    num, den = _sq_norm(a).sum(-1) / j, _sq_norm(b).sum(-1) / j
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((num > 1.0) & (den > 1e-6), 0.5 * np.log(num / np.maximum(den, 1e-12)), np.nan)


def _boxes(pose2d: np.ndarray) -> np.ndarray:
    """float[N, 4]: the joints' boxes (x1, y1, x2, y2)."""
    return np.concatenate(_joint_extent(pose2d), 1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float[N, M]: IoU of boxes a (N, 4) and b (M, 4), (x1, y1, x2, y2)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _sigmas_2d(params: TrackerParams, unseen: np.ndarray, own: Optional[tuple[np.ndarray, np.ndarray]] = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(sp, ss), float[T] each: each track's pose and size sigmas (`pose_sigma`, `size_sigma`, or
    `own` where larger: its own errors, see `own_sigma`), widened with the frames unseen."""
    sp, ss = np.full(len(unseen), params.pose_sigma), np.full(len(unseen), params.size_sigma)
    if own is not None:
        sp, ss = np.maximum(sp, own[0]), np.maximum(ss, own[1])
    return sp + params.pose_growth * unseen, ss + params.size_growth * unseen


def _base_cost_2d(params: TrackerParams, unseen: np.ndarray, own: Optional[tuple[np.ndarray, np.ndarray]] = None
                  ) -> np.ndarray:
    """float[T]: the 2D cost of a detection exactly where each track expects it (the log of its
    place and size sigmas, which widen with the frames unseen, plus its age cost): what a pair
    costs beyond this is the 2D evidence against it."""
    sp, ss = _sigmas_2d(params, unseen, own)
    return np.log(sp * ss) + params.age_cost * np.minimum(unseen, params.age_cap)


def association_cost(predicted: np.ndarray, sizes: np.ndarray, spreads: np.ndarray, unseen: np.ndarray,
                     poses: np.ndarray, params: TrackerParams,
                     pose_spreads: Optional[np.ndarray] = None, own: Optional[tuple[np.ndarray, np.ndarray]] = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, costs, swaps, glitches): the cost of giving detection cols[k] to track rows[k],
    for the pairs that may match (sorted by row then column; the others may not), the groups of the
    body's left and right joints that the pair fits mirrored (a bitmask over _SWAP_GROUPS; 0:
    none), and the joint the pair fits at its predicted place (`glitch`; -1: none). In a crowd a
    frame has a few candidates per track: a dense matrix of 1,500 x 1,500 would cost more to fill
    and scan than the pairs themselves.

    predicted: float[T, J, 2], the tracks' predicted poses; sizes: float[T], their pose-box
    diagonals (pixels); spreads: float[T], their log RMS spreads; unseen: float[T], frames since
    their last hit minus one; poses: float[D, J, 2], the detections (pose_spreads: their
    `log_spread`, when known); own: the tracks' pose and size sigmas from their own errors
    (`own_sigma`; float[T] each), where larger than the fixed ones.

    The cost is a negative log-likelihood: with d the mean joint distance in track sizes and s the
    log ratio of spreads, each expected within a sigma that widens with the frames unseen,
    cost = d^2 / (2 sp^2) + s^2 / (2 ss^2) + log(sp ss) + w (1 - IoU). The log term makes a track
    long unseen (wide sigmas) pay for being easy to match, so that where a hidden person and the one
    in front of them could both explain a detection, the one whose size and place fit best wins.
    Pairs beyond `gate` sigmas in pose or in size may not match. A body (13 joints) is also
    compared with its left and right joints exchanged in each of _SWAP_GROUPS where that is nearer
    (a detector mirrors people seen from behind), at `swap_cost` more; and any pose with one joint
    far off taken at its predicted place, where that is cheaper, at `glitch_cost` more (see
    `_glitches`).
    """
    sp, ss = _sigmas_2d(params, unseen, own)
    base = _base_cost_2d(params, unseen, own)
    j = poses.shape[1]
    spread = log_spread(poses) if pose_spreads is None else pose_spreads
    glitch = params.glitch > 0 and j > 4  # (one joint of a few is no outlier: the pose is mostly it)
    # Spatial gate first (exact): the mean joint distance is at least the distance between the
    # centres, so pairs whose centres are farther than the gate allows never match; the full cost
    # is computed for the pairs left only (at crowd sizes, a few per track), found on a grid. A
    # detection whose spread is beyond the size gate stays a candidate where its spread without its
    # farthest joint is within it (one joint far off: `_glitches` decides).
    reach = params.gate * sp * sizes  # pixels, per track
    t_centre, d_centre = _joint_sum(predicted) / j, _joint_sum(poses) / j
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    n_pairs = len(predicted) * len(poses)
    whole = False  # (few tracks and detections: the whole matrix at once)
    jd = None  # float[P, J]: each pair's joint distances (pixels), where glitches are looked for
    if n_pairs > _DENSE_PAIRS:
        rows, cols = pairs_within(t_centre, d_centre, reach)
        s_pair = np.abs(spread[cols] - spreads[rows]) / ss[rows]
        keep = s_pair <= params.gate
        if glitch and not keep.all():
            wild = np.flatnonzero(~keep)
            needed = np.zeros(len(poses), bool)
            needed[cols[wild]] = True  # (marked, not np.unique's sort: tens of thousands of pairs in a crowd)
            dets = np.flatnonzero(needed)
            trimmed = np.empty(len(poses))
            trimmed[dets] = _trimmed_spread(poses[dets])
            keep[wild] = np.abs(trimmed[cols[wild]] - spreads[rows[wild]]) / ss[rows[wild]] <= params.gate
        rows, cols, s_pair = rows[keep], cols[keep], s_pair[keep]
        if not len(rows):
            return none
    else:
        s = np.abs(spread[None] - spreads[:, None]) / ss[:, None]
        s_gate = s
        if glitch and (s > params.gate).any():
            s_gate = np.minimum(s, np.abs(_trimmed_spread(poses)[None] - spreads[:, None]) / ss[:, None])
        dc = t_centre[:, None] - d_centre[None]
        near = ((dc * dc).sum(-1) <= (reach * reach)[:, None]) & (s_gate <= params.gate)
        rows, cols = np.nonzero(near)
        if not len(rows):
            return none
        whole = 2 * len(rows) >= n_pairs
        if whole:
            diff = predicted[:, None] - poses[None]
            all_jd = np.sqrt(_sq_norm(diff))
            d = all_jd.sum(-1) / j / sizes[:, None] / sp[:, None]  # NaN joints: no match
            iou = iou_matrix(_boxes(predicted), _boxes(poses))
            full = 0.5 * (d ** 2 + s ** 2) + base[:, None] + params.iou_weight * (1 - iou)
            rows, cols = np.nonzero(s_gate <= params.gate)
            d, pair, s_pair = d[rows, cols], full[rows, cols], s[rows, cols]
            if glitch:
                jd = all_jd[rows, cols]
        else:
            s_pair = s[rows, cols]
    if not whole:
        jd = np.sqrt(_sq_norm(predicted[rows] - poses[cols]))
        d = jd.sum(-1) / j / sizes[rows] / sp[rows]
        t_box, d_box = _boxes(predicted), _boxes(poses)
        iou = _pair_iou(t_box[rows], d_box[cols], _area(t_box)[rows], _area(d_box)[cols])
        pair = 0.5 * (d ** 2 + s_pair ** 2) + base[rows] + params.iou_weight * (1 - iou)
    glitches = _glitches(predicted, poses, rows, cols, jd, d, pair, s_pair, sizes, spreads, sp, ss, base, params) \
        if glitch and jd is not None else np.full(len(rows), -1, np.int64)
    swaps = _mirror(predicted, poses, rows, cols, d, pair, sizes[rows] * sp[rows], params.swap_cost) \
        if _mirrors(j, params) else np.zeros(len(rows), np.int64)
    ok = (d <= params.gate) & (s_pair <= params.gate)
    return rows[ok], cols[ok], pair[ok], swaps[ok], glitches[ok]


def _area(boxes: np.ndarray) -> np.ndarray:
    """float[N]: the areas of boxes (float[N, 4], x1, y1, x2, y2; 0 where empty)."""
    return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), -1)


def _pair_iou(a: np.ndarray, b: np.ndarray, area_a: Optional[np.ndarray] = None,
              area_b: Optional[np.ndarray] = None) -> np.ndarray:
    """float[P]: IoU of the boxes a[k] and b[k] (float[P, 4] each, x1, y1, x2, y2); their areas
    where known (a crowd's pairs: each box's area once, not once per pair)."""
    lo, hi = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    union = (_area(a) if area_a is None else area_a) + (_area(b) if area_b is None else area_b) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _with_joint_at(poses: np.ndarray, predicted: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                   joints: np.ndarray) -> np.ndarray:
    """float[P, J, 2]: the detections cols[k] with joint joints[k] at track rows[k]'s predicted place."""
    out = poses[cols]
    out[np.arange(len(cols)), joints] = predicted[rows, joints]
    return out


def _pair_scales(poses: np.ndarray, poses3d: Optional[np.ndarray], scales: Optional[np.ndarray], rows: np.ndarray,
                 cols: np.ndarray, glitches: np.ndarray, predicted: np.ndarray) -> Optional[np.ndarray]:
    """float[P]: the depth proxy (`log_scale`) of each pair's detection, with the joint the pair
    fits far off (`glitches`) taken at its track's predicted place (None: no scales)."""
    if scales is None or poses3d is None:
        return None
    out = scales[cols]
    at = np.flatnonzero(glitches >= 0)
    if len(at):
        mended = _with_joint_at(poses, predicted, rows[at], cols[at], glitches[at])
        out[at] = log_scale(mended, poses3d[cols[at]].astype(np.float64))
    return out


def _trimmed_spread(pose2d: np.ndarray) -> np.ndarray:
    """float[N]: `log_spread` of each pose without its joint farthest from the joints' mean."""
    n, j = pose2d.shape[:2]
    far = _sq_norm(pose2d - (_joint_sum(pose2d) / j)[:, None]).argmax(1)
    keep = np.ones((n, j), bool)
    keep[np.arange(n), far] = False
    return log_spread(pose2d[keep].reshape(n, j - 1, pose2d.shape[2]))


def _glitches(predicted: np.ndarray, poses: np.ndarray, rows: np.ndarray, cols: np.ndarray, jd: np.ndarray,
              d: np.ndarray, cost: np.ndarray, s: np.ndarray, sizes: np.ndarray, spreads: np.ndarray,
              sp: np.ndarray, ss: np.ndarray, base: np.ndarray, params: TrackerParams) -> np.ndarray:
    """The pairs (tracks rows, detections cols; jd: their joint distances, pixels) that fit better
    with one joint, far off, taken at its predicted place, `glitch_cost` paid: a detector's bad joint
    (an ankle half a body away) moves the pose's mean, spread and box as much as a step to another
    person would. A joint is far off where it is farther than `glitch` track sizes and 4 times the
    pair's median joint distance (a pose that is another person's has every joint far off); only
    one may be. Their d (mean distance of the other joints, in track sizes over sp), cost and s
    (log ratio of spreads over ss, for the pose so mended) are updated in place. Returns each
    pair's joint so taken (int64; -1: none)."""
    out = np.full(len(rows), -1, np.int64)
    limit = params.glitch * sizes[rows]
    far = jd.max(1)
    at = np.flatnonzero(far > limit)
    if not len(at):
        return out
    j, sub = jd.shape[1], jd[at]
    # The d of a pair so mended: the mean distance of the joints other than the far one, which is
    # its farthest (only one may be far off).
    d_new = (sub.sum(1) - far[at]) / (j - 1) / sizes[rows[at]] / sp[rows[at]]
    if not _mirrors(j, params):
        # Only pairs that the gate can keep once mended: the pair as detected is farther still (a
        # pose's farthest joint is at least its mean). Bodies are compared mirrored after this, from
        # the d it leaves: they are all looked at.
        near = d_new <= params.gate
        at, sub, d_new = at[near], sub[near], d_new[near]
        if not len(at):
            return out
    gross = sub > np.maximum(limit[at], 4 * _median(sub))[:, None]
    one = gross.sum(1) == 1
    if not one.any():
        return out
    at, gross, d_new = at[one], gross[one], d_new[one]
    k = gross.argmax(1)
    r, c = rows[at], cols[at]
    mended = _with_joint_at(poses, predicted, r, c, k)
    s_new = np.abs(log_spread(mended) - spreads[r]) / ss[r]
    iou = _pair_iou(_boxes(predicted[r]), _boxes(mended))
    cost_new = 0.5 * (d_new ** 2 + s_new ** 2) + base[r] + params.iou_weight * (1 - iou) + params.glitch_cost
    better = ((cost_new < cost[at]) | (s[at] > params.gate)) & (s_new <= params.gate)
    at, k = at[better], k[better]
    d[at], cost[at], s[at], out[at] = d_new[better], cost_new[better], s_new[better], k
    return out


def _median(a: np.ndarray) -> np.ndarray:
    """float[N]: the median of each row of a (float[N, K], no NaN): np.median's numbers, from one
    partition (np.median takes 3-5x longer on rows of 13 or 21)."""
    h = a.shape[1] // 2
    if a.shape[1] % 2:
        return np.partition(a, h, axis=1)[:, h]
    p = np.partition(a, (h - 1, h), axis=1)
    return (p[:, h - 1] + p[:, h]) / 2


def _nan_median(a: np.ndarray) -> np.ndarray:
    """`_median` where a row may hold a NaN (its median is then NaN, as np.median's: np.median
    also imports numpy.ma, 13 ms, on its first call)."""
    m = _median(a)
    bad = np.isnan(a).any(1)
    return np.where(bad, np.nan, m) if bad.any() else m


def _mirrors(joints: int, params: TrackerParams) -> bool:
    """Whether poses of `joints` joints are compared mirrored too (bodies, unless swap_cost is inf)."""
    return joints == len(_MIRROR) and math.isfinite(params.swap_cost)


def _mirror(predicted: np.ndarray, poses: np.ndarray, rows: np.ndarray, cols: np.ndarray, d: np.ndarray,
            cost: np.ndarray, unit: np.ndarray, swap_cost: float) -> np.ndarray:
    """The pairs (rows, cols) that fit better with groups of the body's left and right joints
    exchanged (_SWAP_GROUPS, each where that is nearer), `swap_cost` paid: their d (mean joint
    distance over `unit`, pixels) and cost updated in place. Returns each pair's bitmask of the
    groups exchanged (0: as detected). Only pairs whose cost could fall are compared: those with
    d^2 / 2 above swap_cost."""
    swaps = np.zeros(len(rows), np.int64)
    at = np.flatnonzero(d * d > 2 * swap_cost)
    if not len(at):
        return swaps
    a, b = predicted[rows[at]], poses[cols[at]]
    plain, mirrored = np.sqrt(_sq_norm(a - b)), np.sqrt(_sq_norm(a - b[:, _MIRROR]))
    total = plain.sum(-1)
    mask = np.zeros(len(at), np.int64)
    for g, group in enumerate(_SWAP_GROUPS):
        gain = plain[:, group].sum(-1) - mirrored[:, group].sum(-1)
        better = gain > 0
        total -= np.where(better, gain, 0.0)
        mask |= better.astype(np.int64) << g
    d_new = total / a.shape[1] / unit[at]
    gain = 0.5 * (d[at] ** 2 - d_new ** 2) - swap_cost
    take = (mask > 0) & (gain > 0)
    at, mask, d_new, gain = at[take], mask[take], d_new[take], gain[take]
    d[at], swaps[at] = d_new, mask
    cost[at] -= gain
    return swaps


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost pairs (row, col) with a finite cost."""
    rows, cols = np.nonzero(np.isfinite(cost))
    return assign_pairs(rows, cols, cost[rows, cols])


class _PartTracks:
    """The tracks of one kind of detection (bodies, lone hands or lone faces)."""

    def __init__(self, params: TrackerParams, new_key: Any, new_id: Any) -> None:
        self.p, self.new_key, self.new_id = params, new_key, new_id
        self.confirmed: list[_Track] = []
        self.tentative: list[_Track] = []
        self.rows = _Rows()  # every track's state
        self._copies: dict[int, _Track] = {}  # this frame's second detections of a person: their track
        # this frame's detections given back with left and right corrected: {detection: groups (bitmask)}
        self.mirrored: dict[int, int] = {}

    def update(self, frame: int, poses: np.ndarray, scores: np.ndarray,
               image: Optional[tuple[int, int]] = None, poses3d: Optional[np.ndarray] = None) -> list[Optional[_Track]]:
        """Match this frame's detections (poses float[D, J, 2], scores float[D]); the track of each
        (None: a duplicate of a detection matched). image: (width, height), pixels."""
        p = self.p
        poses = poses.astype(np.float64)
        centres, sizes, spreads = _joint_sum(poses) / poses.shape[1], _size(poses), log_spread(poses)
        scales = None if poses3d is None else log_scale(poses, poses3d.astype(np.float64))
        owner: list[Optional[_Track]] = [None] * len(poses)
        mirrored: dict[int, int] = {}  # detection: the groups of its left and right its track fits exchanged
        mended: dict[int, tuple[int, int]] = {}  # detection: (its track's index, the joint it fits at its prediction)
        apart: set[tuple[int, int]] = set()  # pairs `_twins` took for one person and the tracks for two
        tracks = self.confirmed + self.tentative
        R, slots = self.rows, _slots(tracks)
        twins = self._twins(poses, scores, sizes, centres, poses3d, spreads) if p.duplicate > 0 and len(poses) > 1 else {}
        predicted = _predicted(R, slots, frame) if tracks else None
        if tracks and len(poses):  # one set of candidate pairs, then three rounds on parts of it
            age = frame - R.last[slots]
            unseen = (age - 1).astype(np.float64)
            own = self._own_sigmas(slots)
            rows, cols, costs, swaps, glitches = association_cost(predicted, R.size[slots], R.spread[slots], unseen,
                                                                  poses, p, spreads, own)
            poor = None  # pairs whose terms together are beyond `joint_gate`: left to the second round
            joint = None
            if poses3d is not None and p.pose3d_sigma > 0:
                joint = self._add_pose3d_cost(rows, cols, costs, slots, unseen, poses3d,
                                              _pair_scales(poses, poses3d, scales, rows, cols, glitches, predicted),
                                              swaps, glitches, own)
                if joint is not None:
                    poor = joint > p.joint_gate * p.joint_gate
            if twins:  # a second detection of a person does not compete for a track (see `_twins`)
                apart = self._release_twins(twins, rows, cols, costs, poor, len(self.confirmed))
                costs[np.isin(cols, list(twins))] = np.inf
            # Tracks kept beyond max_age (for re-identification alone) are not matched by position.
            old = age > p.max_age
            if image is not None and old.any():
                old[old] = ~_outside(R, slots[old], frame, image)
            if old.any():
                costs[old[rows]] = np.inf
            finite = np.isfinite(costs)
            if not finite.all():
                rows, cols, costs, swaps = rows[finite], cols[finite], costs[finite], swaps[finite]
                glitches = glitches[finite]
                poor = None if poor is None else poor[finite]
                joint = None if joint is None else joint[finite]
            at = np.flatnonzero(swaps)
            mirror_pairs = dict(zip(zip(rows[at].tolist(), cols[at].tolist()), swaps[at].tolist()))
            at = np.flatnonzero(glitches >= 0)
            glitch_pairs = dict(zip(zip(rows[at].tolist(), cols[at].tolist()), glitches[at].tolist()))
            high = scores >= p.high_score
            taken = np.zeros(len(tracks), bool)
            n = len(self.confirmed)
            # ByteTrack: high scores first (where they fit: a high score does not let a poor fit win
            # over a good one), then the detections left for the confirmed tracks left; then lost
            # tracks re-identified (a person who was confirmed comes before a new track); then the
            # tentative tracks for the detections no confirmed track took.
            # A low-scoring detection that a track seen in the last frame could explain is not given
            # to a hidden track (a bad detection of the one in front must not end a gap).
            hidden_rows = claimed = None
            low = np.flatnonzero(~high)
            if len(low) and n:
                seen_now = age[:n] == 1
                if seen_now.any() and not seen_now.all():
                    claimed = np.zeros(len(poses), bool)
                    by_seen = rows < n
                    by_seen[by_seen] = seen_now[rows[by_seen]]
                    claimed[cols[by_seen & ~high[cols]]] = True
                    hidden_rows = np.r_[~seen_now, np.zeros(len(tracks) - n, bool)]
            for k, (row_set, col_set) in enumerate(((np.arange(n), np.flatnonzero(high)), (None, None),
                                                    (np.arange(n, len(tracks)), None))):
                if k == 2 and p.reidentify and scales is not None and poses3d is not None:
                    self._reidentify(owner, tracks[:n], slots[:n], taken[:n], frame, poses, centres, poses3d, scales,
                                     twins)
                if col_set is not None and not len(col_set):
                    continue
                row_set = np.flatnonzero(~taken[:n]) if row_set is None else row_set
                if not len(row_set):
                    continue
                col_set = np.array([i for i in range(len(poses)) if owner[i] is None], np.int64) if col_set is None else col_set
                if not len(col_set):
                    continue
                row_in, col_in = np.zeros(len(tracks), bool), np.zeros(len(poses), bool)
                row_in[row_set], col_in[col_set] = True, True
                sel = row_in[rows] & col_in[cols]
                if k == 0 and poor is not None:
                    sel &= ~poor
                if k == 1 and claimed is not None:
                    sel &= ~(hidden_rows[rows] & claimed[cols])
                if k == 1 and poor is not None and n < len(tracks):
                    # A poor fit (beyond `joint_gate`) does not take a detection that a new track
                    # fits well: someone who came into view beside a person now hidden.
                    fits_new = np.zeros(len(poses), bool)
                    fits_new[cols[(rows >= n) & ~poor]] = True
                    sel &= ~(poor & fits_new[cols])
                pairs = assign_pairs(rows[sel], cols[sel], costs[sel])
                if k == 0 and joint is not None and len(pairs) and not high.all():
                    pairs = self._yield_to_low(pairs, rows, cols, costs, joint, poor, row_set, high)
                for r, c in pairs:
                    owner[c], taken[r] = tracks[r], True
                    if (r, c) in mirror_pairs:
                        mirrored[c] = mirror_pairs[(r, c)]
                    if (r, c) in glitch_pairs:
                        mended[c] = (r, glitch_pairs[(r, c)])
        if p.duplicate > 0:
            self._drop_duplicates(owner, poses, sizes, poses3d, apart)
        seen = {id(t) for t in owner if t is not None}
        hit = [i for i, t in enumerate(owner) if t is not None]
        if hit and p.camera_motion and tracks and len(seen) < len(tracks):
            self._follow_camera(tracks, slots, predicted, owner, centres, frame)
        self.mirrored = {}
        if hit:
            hit_poses, hit_3d = poses[hit], None if poses3d is None else poses3d[hit]
            if _mirrors(poses.shape[1], p) and (mirrored or R.mirror_runs.any()):
                self._orient(hit, owner, hit_poses, hit_3d, mirrored)
            hit_centres, hit_sizes, hit_spreads = centres[hit], sizes[hit], spreads[hit]
            hit_scales = None if scales is None else scales[hit]
            hit_tracks = [owner[i] for i in hit]
            repaired = np.full(len(hit), -1, np.int64)
            if mended:
                self._mend(hit, hit_tracks, mended, mirrored, predicted, hit_poses, hit_centres, hit_sizes,
                           hit_spreads, hit_3d, hit_scales, repaired)
            self._hit(hit_tracks, frame, hit_poses, hit_centres, hit_sizes, hit_spreads, hit_3d, hit_scales, repaired)
        for t in self.confirmed:
            if id(t) not in seen and t.before is not None:
                t.restore()
        # Unmatched tentative tracks end; confirmed ones wait up to max_age frames.
        survivors = [t for t in self.tentative if id(t) in seen]
        keep = max(p.max_age, p.reid_age) if p.reidentify else p.max_age
        if self.confirmed:
            cs = _slots(self.confirmed)
            age = frame - R.last[cs]
            stay = age <= keep
            if image is not None and not stay.all():
                out = ~stay & (age <= p.max_age_outside)
                if out.any():
                    stay[out] = _outside(R, cs[out], frame, image)
            if not stay.all():
                self.confirmed = [t for t, ok in zip(self.confirmed, stay.tolist()) if ok]
        for t in survivors:
            if t.hits >= p.n_init:
                t.id = self.new_id()
                self.confirmed.append(t)
        self.tentative = [t for t in survivors if t.id == NO_TRACK]
        copies = self._copies
        if hit and len(hit) < len(poses) and p.duplicate > 0:
            free = np.array([i for i in range(len(poses)) if owner[i] is None and i not in copies], np.int64)
            if len(free):
                # (near: the 4 nearest centres within the largest size's reach, nearest first; then
                # the mean joint distance)
                hit_at = np.array(hit, np.int64)
                fi, hj = pairs_within(centres[free], centres[hit_at], p.duplicate * float(sizes[hit_at].max()))
                if len(fi):
                    dist = _sq_norm(centres[free[fi]] - centres[hit_at[hj]])
                    order = np.lexsort((dist, fi))
                    fi, hj = fi[order], hj[order]
                    rank = np.arange(len(fi)) - np.searchsorted(fi, fi, "left")
                    cf, ci = free[fi[rank < 4]], hit_at[hj[rank < 4]]
                    ok = _joint_distance(poses[cf], poses[ci]) < p.duplicate * sizes[ci]
                    ok[ok] = self._same_3d(poses3d, cf[ok], ci[ok])
                    for f, i in zip(cf[ok].tolist(), ci[ok].tolist()):  # each one's nearest such
                        if f not in copies:
                            copies[f] = owner[i]
        new = [i for i in range(len(poses)) if owner[i] is None and i not in copies and i not in twins]
        if new:
            at = np.array(new, np.int64)
            new_slots = R.new(len(new), poses.shape[1])
            R.pose[new_slots], R.centre[new_slots], R.last[new_slots] = poses[at], centres[at], frame
            R.size[new_slots], R.spread[new_slots] = sizes[at], spreads[at]
            if poses3d is not None:
                R.pose3d[new_slots], R.has3d[new_slots] = poses3d[at], True
            if scales is not None:
                R.scale[new_slots] = np.where(np.isfinite(scales[at]), scales[at], np.nan)
            for i, slot in zip(new, new_slots.tolist()):
                t = _Track(self.new_key(), R, slot)
                owner[i] = t
                if p.n_init <= 1:
                    t.id = self.new_id()
                    self.confirmed.append(t)
                else:
                    self.tentative.append(t)
        R.keep(_slots(self.confirmed + self.tentative))
        for i, t in copies.items():  # a second detection of a person carries their track, changes nothing
            owner[i] = t
        for f, i in twins.items():
            if owner[f] is None:
                owner[f] = owner[i]
        self._copies = {}
        return owner

    def _yield_to_low(self, pairs: list[tuple[int, int]], rows: np.ndarray, cols: np.ndarray, costs: np.ndarray,
                      joint: np.ndarray, poor: Optional[np.ndarray], row_set: np.ndarray,
                      high: np.ndarray) -> list[tuple[int, int]]:
        """The first round's pairs (ByteTrack: the high-score detections to the confirmed tracks
        they fit best), amended: where a track's pair leaves a low-score detection that fits it
        better, and the assignment of all the detections to the confirmed tracks gives the
        high-score one to a track left without a pair, which it fits within `yield_gate` on all
        terms together (someone coming out from behind the person in front, detected with the
        better score), the high-score detection goes to that track; the first is left to the
        second round, where the low-score detection is its."""
        g = self.p.yield_gate
        if not g > 0:
            return pairs
        width = len(high)
        key = rows * width + cols
        order = np.argsort(key, kind="stable")
        at = lambda r, c: order[np.searchsorted(key[order], r * width + c)]  # (the candidate pairs' index)
        pr, pc = np.array(pairs, np.int64).T
        matched = costs[at(pr, pc)]
        low = ~high[cols]
        best_low = np.full(int(rows.max()) + 1, np.inf)
        np.minimum.at(best_low, rows[low], costs[low])
        if not (best_low[pr] < matched).any():
            return pairs  # (the common case: no track fits a low-score detection better)
        sel = np.isin(rows, row_set)
        if poor is not None:
            sel &= ~poor
        every = assign_pairs(rows[sel], cols[sel], costs[sel])
        track_of, det_of = {c: r for r, c in every}, dict(every)
        taken = {r for r, _ in pairs}
        out = []
        for r, c in pairs:
            c2, r2 = det_of.get(r), track_of.get(c)
            if c2 is not None and not high[c2] and r2 is not None and r2 not in taken \
                    and joint[at(r2, c)] <= g * g and costs[at(r, c2)] < costs[at(r, c)]:
                out.append((r2, c))
                taken.add(r2)
            else:
                out.append((r, c))
        return out

    def _twins(self, poses: np.ndarray, scores: np.ndarray, sizes: np.ndarray, centres: np.ndarray,
               poses3d: Optional[np.ndarray], spreads: np.ndarray) -> dict[int, int]:
        """{detection: the detection it is a second one of}: of two detections of this frame whose
        mean joint distance is below `duplicate` times the larger's size, whose spreads (sizes in
        the image) differ by less than `size_sigma` and whose 3D poses agree within twice
        `duplicate3d` (two people can hardly share a place, a size and a 2D posture, but a
        detector's two proposals for one person may differ in depth), the lower-scoring one. It is
        left out of the matching (it would give a track whose person was missed a neighbour's
        detection to keep the matching maximal) and carries the other's track."""
        p = self.p
        ok = np.isfinite(centres).all(1)
        if ok.sum() < 2:
            return {}
        idx = np.flatnonzero(ok)
        # (candidates: centres within `duplicate` times the larger size, as the mean joint distance
        # is at least the distance between them; all at once, the few that pass resolved one by one)
        a, b = close_pairs(centres[ok], p.duplicate * sizes[ok])
        if not len(a):
            return {}
        a, b = idx[a], idx[b]
        d = _joint_distance(poses[a], poses[b])
        same = (d < p.duplicate * np.maximum(sizes[a], sizes[b])) & (np.abs(spreads[a] - spreads[b]) < p.size_sigma)
        if poses3d is not None and p.duplicate3d > 0 and same.any():
            a3, b3 = poses3d[a[same]].astype(np.float64), poses3d[b[same]].astype(np.float64)
            same[same] = _joint_distance(a3, b3) < 2 * p.duplicate3d
        twins: dict[int, int] = {}
        for i, j in sorted(zip(a[same].tolist(), b[same].tolist()), key=lambda ij: (-max(scores[ij[0]], scores[ij[1]]), ij)):
            keep, drop = (i, j) if (scores[i], -i) >= (scores[j], -j) else (j, i)
            if drop not in twins and keep not in twins:
                twins[drop] = keep
        return twins

    def _orient(self, hit: list[int], owner: list[Optional[_Track]], hit_poses: np.ndarray,
                hit_3d: Optional[np.ndarray], mirrored: dict[int, int]) -> None:
        """Put the detections `hit` (their poses hit_poses and hit_3d, changed in place) in their
        tracks' left and right, where `mirrored` says they fit mirrored, and note them in
        `self.mirrored`; a track whose group has been mirrored `mirror_rebase` matches in a row
        takes the detector's left and right for it instead (its state is mirrored)."""
        R, p = self.rows, self.p
        s = _slots([owner[i] for i in hit])
        masks = np.array([mirrored.get(i, 0) for i in hit], np.int64)
        bits = (masks[:, None] >> np.arange(len(_SWAP_GROUPS))) & 1
        runs = np.where(bits > 0, R.mirror_runs[s] + 1, 0)
        rebase = runs >= p.mirror_rebase
        runs[rebase] = 0
        R.mirror_runs[s] = runs
        flip = rebase.astype(np.int64) @ (1 << np.arange(len(_SWAP_GROUPS)))
        for k in np.flatnonzero(flip).tolist():
            perm, slot = _SWAP_PERMS[flip[k]], s[k]
            for name in ("pose", "swing", "pose3d", "raw3d", "step3d"):
                getattr(R, name)[slot] = getattr(R, name)[slot][perm]
        masks &= ~flip
        for k in np.flatnonzero(masks).tolist():
            perm = _SWAP_PERMS[masks[k]]
            hit_poses[k] = hit_poses[k][perm]
            if hit_3d is not None:
                hit_3d[k] = hit_3d[k][perm]
            self.mirrored[hit[k]] = int(masks[k])

    @staticmethod
    def _release_twins(twins: dict[int, int], rows: np.ndarray, cols: np.ndarray, costs: np.ndarray,
                       poor: Optional[np.ndarray], confirmed: int) -> set[tuple[int, int]]:
        """Take out of `twins` (in place) each pair that the tracks tell apart: two people side by
        side, of one size and posture, are as close as a detector's two proposals for one. The
        pair is two people if two confirmed tracks each fit one of its detections better than
        the other detection (on all terms: 2D, size, 3D pose, depth): the track that fits the
        second detection best, and the track other than that one that fits the first best.
        Returns the pairs taken out, (i, j) with i < j."""
        apart = set()
        fits = lambda track, det: costs[(rows == track) & (cols == det)]
        usable = (rows < confirmed) if poor is None else (rows < confirmed) & ~poor
        for drop, keep in list(twins.items()):
            mine = np.flatnonzero(usable & (cols == drop))
            if not len(mine):
                continue
            track_d = rows[mine[np.argmin(costs[mine])]]
            theirs = np.flatnonzero(usable & (cols == keep) & (rows != track_d))
            if not len(theirs):
                continue
            track_k = rows[theirs[np.argmin(costs[theirs])]]
            cross_d, cross_k = fits(track_d, keep), fits(track_k, drop)
            if (len(cross_d) and cross_d[0] <= fits(track_d, drop)[0]) or \
                    (len(cross_k) and cross_k[0] <= fits(track_k, keep)[0]):
                continue
            del twins[drop]
            apart.add((min(drop, keep), max(drop, keep)))
        return apart

    def _add_pose3d_cost(self, all_rows: np.ndarray, all_cols: np.ndarray, costs: np.ndarray, slots: np.ndarray,
                         unseen: np.ndarray, poses3d: np.ndarray, pair_scales: Optional[np.ndarray] = None,
                         swaps: Optional[np.ndarray] = None, glitches: Optional[np.ndarray] = None,
                         own: Optional[tuple[np.ndarray, np.ndarray]] = None) -> Optional[np.ndarray]:
        """Add (in place) to the costs of the pairs (tracks all_rows, in rows `slots`, unseen for
        `unseen` frames less one, detections all_cols) the 3D
        term: 0.5 (d3 / s3)^2 + log s3, with d3 the mean joint distance (metres) between the track's
        3D pose and the detection's; and the depth-proxy term 0.5 (ds / sl)^2 + log sl, ds the
        difference of log scales (`log_scale`; pair_scales: each pair's detection's). swaps, glitches:
        the groups of each pair's detection compared mirrored and the joint taken at its predicted
        place, own: the tracks' own sigmas (`association_cost`). Returns each pair's terms together
        (squared sigmas; 0 for tracks without a 3D pose), or None where no track has one."""
        if not len(all_rows):
            return None
        p, R = self.p, self.rows
        on = R.has3d[slots][all_rows]
        if not on.any():
            return None
        rows, cols = all_rows[on], all_cols[on]
        cost = costs[on]
        s3 = np.minimum(p.pose3d_sigma + p.pose3d_growth * unseen, 3 * p.pose3d_sigma)
        if p.posture_rate > 0:
            # A person whose posture changes fast (a dancer) is expected to have moved on by up to
            # `posture_rate` times their own rate a frame, for up to 2 frames.
            rate = R.rate3d[slots]
            s3 = np.maximum(s3, p.posture_rate * rate * np.minimum(unseen + 1, 2.0))
        det3 = poses3d[cols]
        # The 2D terms' squared sigmas (and twice the IoU term), from the 2D cost (association_cost;
        # the odds against a mirrored detection are not evidence of distance)
        z2d = 2 * (cost - _base_cost_2d(p, unseen, own)[rows])
        mirrored = np.zeros(0, np.int64) if swaps is None else np.flatnonzero(swaps[on])
        if len(mirrored):  # (their 3D poses compared mirrored as their 2D ones were)
            det3[mirrored] = np.take_along_axis(det3[mirrored], _SWAP_PERMS[swaps[on][mirrored]][:, :, None], 1)
            z2d[mirrored] -= 2 * p.swap_cost
        if glitches is not None:
            z2d[glitches[on] >= 0] -= 2 * p.glitch_cost
        d3 = _joint_distance(R.pose3d[slots[rows]], det3) / s3[rows]
        z2 = d3 * d3
        if p.scale_sigma > 0 and pair_scales is not None:
            # The depth proxy: people crossing at different depths differ in pixels per metre.
            mine_s = R.scale[slots]
            ds = np.nan_to_num((mine_s[rows] - pair_scales[on]) / (p.scale_sigma + p.scale_growth * unseen[rows]))
            z2 = z2 + ds * ds
            cost += np.log(1 + p.scale_growth * unseen[rows] / p.scale_sigma)
        cost += 0.5 * z2 + np.log(s3[rows] / p.pose3d_sigma)
        # A track that went unseen is taken back only by a detection whose 3D pose and depth fit it:
        # near a hidden person, an outlier detection of the one in front must not end their gap.
        # Nor by one that all the terms together say is someone else (`joint_gate`).
        joint = z2 + z2d
        far = (unseen[rows] >= 1) & ((z2 > p.gate * p.gate) | (joint > p.joint_gate * p.joint_gate))
        cost[far] = np.inf
        costs[on] = cost
        out = np.zeros(len(all_rows))
        out[on] = joint
        return out

    def _reidentify(self, owner: list[Optional[_Track]], tracks: list[_Track], slots: np.ndarray, taken: np.ndarray, frame: int,
                    poses: np.ndarray, centres: np.ndarray, poses3d: np.ndarray, scales: np.ndarray,
                    twins: Optional[dict[int, int]] = None) -> None:
        """Give lost tracks (confirmed, unseen for 2 frames or more, not matched in this frame) the
        detections left that fit their depth proxy and 3D pose (`gate` sigmas together) and lie
        where the person could have walked since (within their speed times the frames unseen of
        where they were last seen, whatever the direction: a person who turned while hidden is
        where no constant-velocity prediction puts them; the speed is the faster of the filtered
        one and that of the last steps, for a runner who sped up just before being missed). A
        detection left that is a second detection of a person matched in this frame (see
        `duplicate`) is not one of them, nor one within half a size of a person seen in the last
        frame and unmatched now. A track that two detections fit, or a detection that two tracks
        fit, is left alone, unless one pair alone also fits within that reach less 0.6 of the
        speed times the frames unseen, about the constant-velocity prediction (a track walking
        away from the detection at speed cannot have come back), or one pair is `reid_odds` more
        likely than every other of its track and its detection (a track lost for a moment near
        the detection against one lost for long at speed, which could be anywhere by now)."""
        p = self.p
        # (a track matched once after a gap, in the last frame, and not now: as it was before that
        # match, which may have been someone else's detection)
        kept = ("pose3d", "scale", "centre", "last", "size", "velocity", "step")
        state = lambda t: tuple(getattr(t, n) for n in kept) if t.before is None else tuple(t.before[n] for n in kept)
        R = self.rows
        last, known = R.last[slots], R.has3d[slots] & np.isfinite(R.scale[slots])
        for k in [k for k, t in enumerate(tracks) if t.before is not None]:
            before = tracks[k].before
            last[k] = before["last"]
            known[k] = before["pose3d"] is not None and before["scale"] is not None
        lost = np.flatnonzero(~taken & (frame - last >= 2) & (frame - last <= p.reid_age) & known).tolist()
        free_mask = np.array([t is None for t in owner], bool) & np.isfinite(scales)
        if twins:
            free_mask[list(twins)] = False
        free = np.flatnonzero(free_mask)
        if not lost or not len(free):
            return
        # Nor a detection on a person seen in the last frame whose track found no detection now (a
        # bad detection of that person, shifted or scaled beyond their gate, is not a lost track's):
        # within half their size of where they are expected.
        missed = slots[~taken & (R.last[slots] == frame - 1)]
        if len(missed):
            expected = R.centre[missed] + R.velocity[missed]
            half = 0.5 * R.size[missed]
            on = (_sq_norm(centres[free][:, None] - expected[None]) < (half * half)[None]).any(1)
            free = free[~on]
            if not len(free):
                return
        hit = np.array([i for i, t in enumerate(owner) if t is not None], np.int64)
        if len(hit) and p.duplicate > 0:
            d = np.sqrt(((poses[free][:, None] - poses[hit][None]) ** 2).sum(-1)).mean(-1)
            limit = p.duplicate * R.size[_slots([owner[i] for i in hit.tolist()])]
            free = free[~(d < limit[None]).any(1)]
            if not len(free):
                return
        ts = [tracks[k] for k in lost]
        pose3d, scale, centre, last, size, velocity, step = (np.array(x, np.float64) for x in zip(*map(state, ts)))
        unseen = (frame - last - 1)[:, None]
        size = size[:, None]
        # (the faster of the filtered speed and the last step: a runner speeding up is ahead of the former)
        speed = np.maximum(np.sqrt(np.maximum((velocity ** 2).sum(-1), (step ** 2).sum(-1)))[:, None], 0.02 * size)
        dist = np.sqrt(((centre[:, None] - centres[free][None]) ** 2).sum(-1))
        # (and where they could have run to: from their speed, up to a sprint's start of HUMAN_ACCEL
        # metres per second squared, in pixels at their depth: exp(scale) pixels per metre)
        frames = unseen + 1
        # (a margin for a sidestep or a turn while hidden: up to 0.3 sizes, reached after 10 frames)
        reach = 0.3 * size * np.minimum(frames / 10.0, 1.0) + 1.2 * speed * frames \
            + 0.5 * HUMAN_ACCEL * np.exp(scale)[:, None] * (frames / 30.0) ** 2
        sl = p.scale_sigma + p.scale_growth * unseen
        ds = (scale[:, None] - scales[free][None]) / sl
        s3 = np.minimum(p.pose3d_sigma + p.pose3d_growth * unseen, 3 * p.pose3d_sigma)
        if p.pose3d_sigma > 0:
            d3 = np.sqrt(((pose3d[:, None] - poses3d[free][None]) ** 2).sum(-1)).mean(-1) / s3
        else:  # (the 3D pose is not used: depth proxy and reach alone)
            d3 = np.zeros(ds.shape)
        z2 = ds * ds + d3 * d3
        fit = (dist <= reach) & (z2 <= p.gate * p.gate)
        # Where they could be if they kept their speed, give or take what they could have changed
        # of it since (half of it, and a sprint's start): of two lost tracks that fit a
        # detection, one running away from it at speed cannot have come back.
        ahead = centre[:, None] + velocity[:, None] * frames[:, :, None]
        near = np.sqrt(((ahead - centres[free][None]) ** 2).sum(-1))
        tight = fit & (near <= reach - 0.6 * speed * frames)
        # Only where the fit is unambiguous (one lost track for the detection, one detection for the
        # track), or the one kept speed's is: in a group, a wrong id is worse than a new one.
        unique = lambda f: f & (f.sum(0, keepdims=True) == 1) & (f.sum(1, keepdims=True) == 1)
        ok = unique(fit) | unique(tight)
        if p.reid_odds > 0 and ((fit.sum(0) > 1).any() or (fit.sum(1) > 1).any()):
            # Of lost tracks that fit one detection, the one far more likely to have come back
            # (its fit and the area it could have reached together: a track lost for long could
            # be anywhere in a wide disc; one lost for a moment, only near where it was).
            ok |= _dominant(np.where(fit, -0.5 * z2 - 2.0 * np.log(reach), -np.inf), p.reid_odds)
        fit = ok
        cost = np.where(fit, 0.5 * z2 + dist / size, np.inf)
        for r, c in _assign(cost):
            t = ts[r]
            if t.before is not None:  # its last match is undone: this one follows the state before it
                t.restore()
            owner[free[c]] = t
            taken[lost[r]] = True

    def _same_3d(self, poses3d: Optional[np.ndarray], i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """bool[P]: whether detections i[k] and j[k] have one 3D pose (`duplicate3d`): two detections
        of one person do; two people walking side by side at one place in the image differ in posture."""
        if poses3d is None or self.p.duplicate3d <= 0:
            return np.ones(len(i), bool)
        return _joint_distance(poses3d[i], poses3d[j]) < self.p.duplicate3d

    def _drop_duplicates(self, owner: list[Optional[_Track]], poses: np.ndarray, sizes: np.ndarray,
                         poses3d: Optional[np.ndarray] = None, apart: frozenset | set = frozenset()) -> None:
        """Two tracks matched to two detections of one person (a duplicate detection that lived
        long enough to be confirmed): the one with fewer hits ends, its detection gets none. Not
        for the pairs `apart` (detections (i, j), i < j, that each fit their own track best:
        `_release_twins`)."""
        hit = np.array([i for i, t in enumerate(owner) if t is not None], np.int64)
        if len(hit) < 2:
            return
        c = _joint_sum(poses[hit]) / poses.shape[1]
        ok = np.isfinite(c).all(1)
        a, b = close_pairs(c[ok], self.p.duplicate * sizes[hit][ok])
        if not len(a):
            return
        i_all, j_all = hit[np.flatnonzero(ok)[a]], hit[np.flatnonzero(ok)[b]]
        close = _joint_distance(poses[i_all], poses[j_all]) < self.p.duplicate * np.minimum(sizes[i_all], sizes[j_all])
        close[close] = self._same_3d(poses3d, i_all[close], j_all[close])
        ends = set()
        for i, j in zip(i_all[close].tolist(), j_all[close].tolist()):
            ti, tj = owner[i], owner[j]
            if id(ti) in ends or id(tj) in ends or (min(i, j), max(i, j)) in apart:
                continue
            rank = lambda t: (t.id != NO_TRACK, t.hits)
            loser = j if rank(ti) >= rank(tj) else i
            ends.add(id(owner[loser]))
            self._copies[int(loser)] = owner[j if loser == i else i]
            owner[loser] = None
        if ends:
            self.confirmed = [t for t in self.confirmed if id(t) not in ends]
            self.tentative = [t for t in self.tentative if id(t) not in ends]

    def _follow_camera(self, tracks: list[_Track], slots: np.ndarray, predicted: np.ndarray,
                       owner: list[Optional[_Track]], centres: np.ndarray, frame: int) -> None:
        """Move the tracks not matched in this frame by the median shift of the confirmed tracks
        matched in it, beyond their prediction (what a panning camera adds to everybody's motion)."""
        row = {id(t): k for k, t in enumerate(tracks)}
        last = self.rows.last
        pairs = [(i, row[id(t)]) for i, t in enumerate(owner)
                 if t is not None and t.id != NO_TRACK and last[t.slot] == frame - 1]
        if len(pairs) < 2:
            return
        det, trk = np.array(pairs).T
        shifts = centres[det] - predicted[trk].sum(1) / predicted.shape[1]
        shift = _nan_median(shifts.T)
        # Only a shift the people seen share (a camera's): not the noise of their own motion.
        if np.sqrt((shift ** 2).sum()) <= _nan_median(np.sqrt(((shifts - shift) ** 2).sum(-1))[None])[0]:
            return
        matched = {id(t) for t in owner if t is not None}
        move = slots[[id(t) not in matched for t in tracks]]
        self.rows.pose[move] += shift
        self.rows.centre[move] += shift

    def _own_sigmas(self, slots: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """The pose and size sigmas of the tracks in rows `slots` from their own errors (`own_sigma`),
        and a new track's pose sigma before its second match (`speed0`); None: off."""
        p, R = self.p, self.rows
        if p.own_sigma <= 0 and p.speed0 <= 0:
            return None
        sp, ss = p.own_sigma * np.sqrt(R.dev[slots]), p.own_sigma * np.sqrt(R.sdev[slots])
        if p.speed0 > 0:
            sp = np.where(R.hits[slots] == 1, np.maximum(sp, p.speed0), sp)
        return sp, ss

    def _mend(self, hit: list[int], tracks: list[_Track], mended: dict[int, tuple[int, int]],
              mirrored: dict[int, int], predicted: np.ndarray, poses: np.ndarray, centres: np.ndarray,
              sizes: np.ndarray, spreads: np.ndarray, poses3d: Optional[np.ndarray], scales: Optional[np.ndarray],
              repaired: np.ndarray) -> None:
        """Take the joint that each matched detection in `mended` fits far off (`glitch`) at its
        track's predicted place (`predicted`, by track index) in the arrays of the matched detections
        (in `hit` order, increasing, with their `tracks`: poses, centres, sizes, spreads, scales,
        changed in place), and note it in `repaired`; not where the track's last match took the same
        joint so (two frames in a row: the person moved), nor for a detection matched mirrored."""
        R, j = self.rows, poses.shape[1]
        done = []
        for i, (r, joint) in mended.items():
            k = int(np.searchsorted(hit, i))
            if k == len(hit) or hit[k] != i:  # (left out since: a second detection of someone)
                continue
            if i in mirrored or R.repaired[tracks[k].slot] == joint:
                continue
            poses[k, joint] = predicted[r, joint]
            repaired[k] = joint
            done.append(k)
        if done:
            at = np.array(done, np.int64)
            centres[at], sizes[at], spreads[at] = _joint_sum(poses[at]) / j, _size(poses[at]), log_spread(poses[at])
            if scales is not None and poses3d is not None:
                scales[at] = log_scale(poses[at], poses3d[at].astype(np.float64))

    def _hit(self, tracks: list[_Track], frame: int, poses: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
             spreads: np.ndarray, poses3d: Optional[np.ndarray] = None, scales: Optional[np.ndarray] = None,
             repaired: Optional[np.ndarray] = None) -> None:
        """Update the tracks matched in this frame with their detections (arrays in the same order;
        repaired: the joint `_mend` took at each one's prediction, -1: none)."""
        R, p = self.rows, self.p
        s = _slots(tracks)
        gap = np.maximum(frame - R.last[s], 1)
        for t in tracks:
            t.before = None
        for k in np.flatnonzero(gap > 2).tolist():
            tracks[k].save()
        step = (centres - R.centre[s]) / gap[:, None]
        hits = R.hits[s]
        if p.own_sigma > 0:
            # Each track's own errors one frame on, once its speed is known (its third match on).
            on = np.flatnonzero((gap == 1) & (hits >= 2))
            if len(on):
                pred = _predicted(R, s[on], frame)
                # (the median joint's: a bad joint or two must not widen a track's gate for frames)
                err = _nan_median(np.sqrt(_sq_norm(pred - poses[on]))) / R.size[s[on]]
                serr = spreads[on] - R.spread[s[on]]
                rate = p.own_rate
                R.dev[s[on]] += rate * (np.nan_to_num(err * err) - R.dev[s[on]])
                R.sdev[s[on]] += rate * (serr * serr - R.sdev[s[on]])
        gain = np.where(hits == 1, 1.0, p.velocity_gain)[:, None]
        old_v = R.velocity[s]
        velocity = old_v + gain * (step - old_v)
        # A joint's swing: its motion beyond the centre's, known only from consecutive frames (limbs
        # swing back and forth: their motion is not carried over a gap).
        old_w = R.swing[s]
        observed = poses - R.pose[s] - step[:, None]
        # (a new track's first swing is mostly its two detections' noise: it starts at the usual gain)
        swing = old_w + p.velocity_gain * (observed - old_w)
        apart = gap > 1
        if apart.any():
            swing[apart] = 0.0
        if poses3d is not None:  # the 3D pose, averaged over the last matches (new tracks: the first)
            pose3d = poses3d.astype(np.float64)
            old = R.has3d[s]
            if old.any():
                pose3d[old] = 0.5 * (pose3d[old] + R.pose3d[s[old]])
            self._posture_rate(s, gap, poses3d)
            R.pose3d[s], R.has3d[s] = pose3d, True
        if scales is not None:
            mine = R.scale[s]
            R.scale[s] = np.where(np.isfinite(scales), np.where(np.isnan(mine), scales, 0.7 * mine + 0.3 * scales), mine)
        R.size[s], R.spread[s] = 0.8 * R.size[s] + 0.2 * sizes, 0.5 * (R.spread[s] + spreads)
        R.pose[s], R.centre[s], R.velocity[s], R.swing[s] = poses, centres, velocity, swing
        R.step[s] = np.where((hits == 1)[:, None], step, 0.5 * (R.step[s] + step))
        R.last[s], R.hits[s] = frame, hits + 1
        R.repaired[s] = -1 if repaired is None else repaired

    def _posture_rate(self, s: np.ndarray, gap: np.ndarray, poses3d: np.ndarray) -> None:
        """Update the rate of 3D posture change (`_Rows.rate3d`) of the tracks in rows s, matched to
        the detections poses3d after gap frames."""
        R = self.rows
        raw = poses3d.astype(np.float64)
        prev = (gap == 1) & R.has_raw[s]
        at = s[prev]
        if len(at):
            steps = raw[prev] - R.raw3d[at]
            d1 = _sq_norm(steps).mean(-1)
            d2 = np.full(len(at), np.nan)
            known = R.has_step[at]
            if known.any():
                d2[known] = _sq_norm(steps[known] - R.step3d[at[known]]).mean(-1)
            memory = 0.2  # (the statistics' weight of each new frame)
            o1, o2 = R.d1sq[at], R.d2sq[at]
            n1 = np.where(np.isnan(o1), d1, o1 + memory * (d1 - o1))
            n2 = np.where(np.isnan(d2), o2, np.where(np.isnan(o2), d2, o2 + memory * (d2 - o2)))
            with np.errstate(invalid="ignore"):
                rate = np.where(np.isnan(n2), R.rate3d[at], np.sqrt(np.maximum(n1 - n2 / 3.0, 0.0)))
        R.raw3d[s], R.has_raw[s], R.has_step[s] = raw, True, False
        if len(at):
            R.step3d[at], R.has_step[at] = steps, True
            R.d1sq[at], R.d2sq[at], R.rate3d[at] = n1, n2, rate


def _unmirrored(body: PartArrays, mirrored: dict[int, int]) -> PartArrays:
    """A copy of `body` with the detections `mirrored` ({index: groups, a bitmask over
    _SWAP_GROUPS}) put back in their tracks' left and right: their joints, 2D and 3D, and their
    hands' links where the arms were exchanged."""
    fields = {**body.fields}
    pose2d, pose3d, left, right = (fields[k].copy() for k in ("pose2d", "pose3d", "left_hand", "right_hand"))
    arms = 1 << _SWAP_GROUPS.index((6, 7, 8, 9))
    for i, m in mirrored.items():
        perm = _SWAP_PERMS[m]
        pose2d[i], pose3d[i] = pose2d[i][perm], pose3d[i][perm]
        if m & arms:
            left[i], right[i] = right[i], left[i]
    return PartArrays(body.part, **{**fields, "pose2d": pose2d, "pose3d": pose3d, "left_hand": left,
                                    "right_hand": right})


class Tracker:
    """Tracks over a sequence of results: `update(result)` -> the result with `track` on every part.

    params: a `TrackerParams`, or its fields as keywords (`Tracker(max_age=60)`).
    After each update, `keys` holds, per part, each detection's internal track key (tentative
    tracks included), and `public_id(key)` the id that key is (or later got) confirmed with.
    """

    def __init__(self, params: Optional[TrackerParams] = None, **kwargs: Any) -> None:
        self.params = params if params is not None else TrackerParams(**kwargs)
        self._next_id = 0
        self._next_key = 0
        self._ids: dict[int, int] = {}  # key -> public id, once confirmed
        self._frame = -1
        self._votes: dict[tuple, float] = {}
        self._parts = {p: _PartTracks(self.params, self._key, self._id) for p in PART_NAMES}
        self.keys: dict[str, np.ndarray] = {}

    def _key(self) -> int:
        self._next_key += 1
        return self._next_key - 1

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def public_id(self, key: int) -> int:
        return self._ids.get(int(key), NO_TRACK)

    def update(self, result: Result, frame: Optional[int] = None) -> Result:
        """frame: the frame number, when frames were left out (`--every`): gaps, speeds and max_age
        then count the source's frames. None (or a number not after the last): the next frame."""
        frame = self._frame + 1 if frame is None or frame <= self._frame else int(frame)
        self._frame = frame
        body = result.body
        image = (result.width, result.height)
        owners = self._parts["body"].update(frame, body.pose2d, body.scores, image, body.pose3d)
        self._note(owners)
        if self._parts["body"].mirrored:
            body = _unmirrored(body, self._parts["body"].mirrored)
        keys = {"body": np.array([NO_TRACK if t is None else t.key for t in owners], np.int64)}
        for part in ("hand", "face"):
            arr = result[part]
            k = np.full(len(arr), NO_TRACK, np.int64)
            links = _SIDES if part == "hand" else ("face",)
            attached = np.zeros(len(arr), bool)
            for link in links:
                has = body.fields[link] != NO_LINK
                if has.any():
                    d = body.fields[link][has]
                    k[d], attached[d] = keys["body"][has], True
            lone = np.flatnonzero(~attached)
            if len(lone):
                joints = _TRACKED_JOINTS.get(part, slice(None))
                lone_owners = self._parts[part].update(frame, arr.pose2d[lone, joints], arr.scores[lone], image,
                                                       arr.pose3d[lone, joints])
                self._note(lone_owners)
                k[lone] = [NO_TRACK if t is None else t.key for t in lone_owners]
            keys[part] = k
        self.keys = keys
        public = self._ids.get
        ids = {p: np.array([public(x, NO_TRACK) for x in keys[p].tolist()], np.int64) for p in PART_NAMES}
        hand = result.hand.with_fields(track=ids["hand"], is_right=self._handedness(result, keys))
        return result.replace(body=body.with_fields(track=ids["body"]), hand=hand,
                              face=result.face.with_fields(track=ids["face"]))

    def _note(self, owners: list[Optional[_Track]]) -> None:
        for t in owners:
            if t is not None and t.id != NO_TRACK:
                self._ids[t.key] = t.id

    def _handedness(self, result: Result, keys: dict[str, np.ndarray]) -> np.ndarray:
        """bool[H]: each hand's is_right, corrected where it flips against its track's votes."""
        is_right = result.hand.is_right.copy()
        side = {}
        body_keys = keys["body"].tolist()
        for link in _SIDES:
            for b, h in enumerate(result.body.fields[link].tolist()):
                if h != NO_LINK:
                    side[h] = (body_keys[b], link)
        p = self.params
        votes = self._votes
        hand_keys = keys["hand"].tolist()
        for i, right in enumerate(is_right.tolist()):
            vote_key = side.get(i, (hand_keys[i], "lone"))
            raw = 1.0 if right else -1.0
            v = votes.get(vote_key, 0.0)
            if abs(v) >= p.flip_votes and (v > 0) != right:  # the sign of v (not 0 here) against raw's
                is_right[i] = not right
            votes[vote_key] = p.vote_decay * v + raw
        # Votes of tracks that ended are dropped, so memory follows the tracks alive.
        if len(self._votes) > 4 * (1 + sum(len(t.confirmed) + len(t.tentative) for t in self._parts.values())):
            alive = {t.key for pt in self._parts.values() for t in pt.confirmed + pt.tentative}
            self._votes = {k: v for k, v in self._votes.items() if k[0] in alive}
        return is_right

    def run(self, results: Iterable[Result]) -> Iterator[Result]:
        """Track an iterable of results, `n_init - 1` frames behind so first frames get their id."""
        back = _Backfill(self)
        for r in results:
            for _, out in back.push(r):
                yield out
        for _, out in back.flush():
            yield out


class _Backfill:
    """Holds a tracker's last `n_init - 1` results and, on release, gives the detections that were
    tentative then the id their track has been confirmed with since."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.delay = max(tracker.params.n_init - 1, 0)
        self.held: deque[tuple[Any, Result, dict[str, np.ndarray]]] = deque()

    def push(self, result: Result, tag: Any = None, frame: Optional[int] = None) -> list[tuple[Any, Result]]:
        tracked = self.tracker.update(result, frame)
        self.held.append((tag, tracked, self.tracker.keys))
        out = []
        while len(self.held) > self.delay:
            out.append(self._release(self.held.popleft()))
        return out

    def flush(self) -> list[tuple[Any, Result]]:
        out = [self._release(h) for h in self.held]
        self.held.clear()
        return out

    def _release(self, held: tuple[Any, Result, dict[str, np.ndarray]]) -> tuple[Any, Result]:
        tag, result, keys = held
        new = {}
        for p in PART_NAMES:
            track = result[p].track
            missing = track == NO_TRACK
            if missing.any():
                fixed = track.copy()
                fixed[missing] = [self.tracker.public_id(k) if k != NO_TRACK else NO_TRACK for k in keys[p][missing]]
                new[p] = result[p].with_fields(track=fixed)
        return tag, (result.replace(**new) if new else result)


def track(frames: Iterable[Frame], **params: Any) -> Iterator[Frame]:
    """The tracking stage over a stream of frames: each frame's result with `track` fields.

    params: `TrackerParams` fields. Frames come out `n_init - 1` frames late (see the module docstring).
    The items' frame numbers, when known, are the tracker's clock (frames left out are frames unseen).
    """
    back = _Backfill(Tracker(**params))
    for f in frames:
        for tag, r in back.push(f.result, f, getattr(f.item, "frame", None)):
            yield tag._replace(result=r)
    for tag, r in back.flush():
        yield tag._replace(result=r)
