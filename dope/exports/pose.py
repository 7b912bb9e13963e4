"""People of a clip as a `.pose` file (the `pose-format` package, used by sign-language corpora).

Components, in this order (DOPE's joint names, dope/parts.py):

    BODY (13 points)  LEFT_HAND (21)  RIGHT_HAND (21)  FACE (84)                   2D, pixels
    BODY_3D  LEFT_HAND_3D  RIGHT_HAND_3D  FACE_3D   (with camera_3d only)          metres

`body.data` is float32[frames, people, 139 (or 278), dims]: dims is 2 (point format `XYC`), or 3
with camera_3d (`XYZC`: the 2D components' Z is then the joint's depth from the camera in metres,
as pose-format's visualizer expects larger Z further away; the _3D components hold the joints in
the OpenCV camera frame, x right, y down, z forward). `body.confidence` float32[frames, people,
points] holds the part's score for each of its points; a person, or one of their hands or their
face, not seen in a frame is masked with confidence 0.

People are those of exports/people.py (tracks; a hand or face attached to a body is on that
person's components; one found alone is a person of its own), in order of first appearance. Limbs
are the drawing's bones (a bone to a midpoint, as the neck, joins each of its joints); colours are
the drawing's, RGB, one per point as pose-format's visualizer reads them (the colour of the bone
that reaches the point). The frame rate is that of the frames exported (the video's, divided by
`--every`); width and height are the image's.
"""
from __future__ import annotations

import io
import math
from fractions import Fraction
from typing import Optional

import numpy as np

from dope.exports.people import Clip, Person
from dope.files import atomic_write
from dope.parts import BODY, FACE, HAND, Part

# (component name, person part key of exports/people.py, the part's table)
COMPONENTS = (("BODY", "body", BODY), ("LEFT_HAND", "left_hand", HAND), ("RIGHT_HAND", "right_hand", HAND),
              ("FACE", "face", FACE))
SUFFIX_3D = "_3D"
EXTRA = "pose-format"  # in the pose extra
MAX_PEOPLE = 65535  # the body says its people in an unsigned 16-bit word
MAX_BYTES = 2 << 30  # every person in every frame, built in memory (twice, as it is written): refused past 2 GiB
ADVICE = "export fewer people (--max-people), part of the video (--start, --end), or use .npz"
# Frame rates of video in common use, to snap a rate estimated from rounded frame times to.
COMMON_RATES = tuple(Fraction(r) for r in (24, 25, 30, 48, 50, 60, 90, 100, 120, 240)) + tuple(
    Fraction(r * 1000, 1001) for r in (24, 30, 60, 120))


def pose_format_missing() -> Optional[str]:
    """A one-line message when the pose-format package cannot be imported, else None."""
    import importlib
    try:
        importlib.import_module("pose_format")
    except ImportError:
        return f"the .pose format needs the {EXTRA} package: pip install 'dope-wholebody[pose]'"
    return None


def limbs(part: Part) -> list[tuple[int, int]]:
    """The part's bones as pairs of point indexes: a bone with a midpoint end (two joints) becomes
    one limb per joint (paired in order when both ends are midpoints)."""
    out: list[tuple[int, int]] = []
    for bone in part.bones:
        if len(bone.a) == len(bone.b):
            pairs = list(zip(bone.a, bone.b))
        else:
            pairs = [(a, b) for a in bone.a for b in bone.b]
        out += [p for p in pairs if p not in out]
    return out


def point_colors(part: Part) -> list[tuple[int, int, int]]:
    """RGB per point: the colour of the first bone ending at it, else of the first starting at it."""
    colors = []
    for j in range(part.num_joints):
        bone = next((b for b in part.bones if j in b.b), None) or next((b for b in part.bones if j in b.a), None)
        b, g, r = bone.color if bone is not None else (255, 255, 255)
        colors.append((r, g, b))
    return colors


def pose_header(width: int, height: int, camera_3d: bool = False):
    """The pose-format header of DOPE's components (see the module's docstring)."""
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
    fmt = "XYZC" if camera_3d else "XYC"
    names = [name for name, _, _ in COMPONENTS] + ([name + SUFFIX_3D for name, _, _ in COMPONENTS] if camera_3d else [])
    parts = [part for _, _, part in COMPONENTS] * (2 if camera_3d else 1)
    components = [PoseHeaderComponent(name, list(part.joints), limbs(part), point_colors(part), fmt)
                  for name, part in zip(names, parts)]
    return PoseHeader(0.2, PoseHeaderDimensions(int(width), int(height), 0), components)


def first_appearance(people: list[Person]) -> list[Person]:
    """People sorted by the first frame they are seen in (ties keep the clip's order)."""
    def first(p: Person) -> int:
        seen = np.flatnonzero(p.seen)
        return int(seen[0]) if len(seen) else 1 << 62
    return sorted(people, key=first)


def pose_arrays(clip: Clip, camera_3d: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(data float32[T, P, N, D], confidence float32[T, P, N], person names) of the clip, with the
    people in order of first appearance; zeros (and confidence 0) where not seen."""
    people = first_appearance(clip.people)
    dims = 3 if camera_3d else 2
    sizes = [part.num_joints for _, _, part in COMPONENTS]
    n2d = sum(sizes)
    n = n2d * (2 if camera_3d else 1)
    data = np.zeros((len(clip), len(people), n, dims), np.float32)
    conf = np.zeros((len(clip), len(people), n), np.float32)
    starts = np.cumsum([0] + sizes)
    tiny = np.finfo(np.float32).tiny  # a part that is seen never reads as masked, even with score 0
    for p, person in enumerate(people):
        for (_, key, _), s, e in zip(COMPONENTS, starts[:-1], starts[1:]):
            part = person.parts.get(key)
            if part is None:
                continue
            seen = part.seen
            score = np.maximum(part.scores[seen], tiny).astype(np.float32)
            data[seen, p, s:e, :2] = part.pose2d[seen]
            conf[seen, p, s:e] = score[:, None]
            if camera_3d:
                data[seen, p, s:e, 2] = part.joints[seen][..., 2]
                data[seen, p, n2d + s:n2d + e] = part.joints[seen]
                conf[seen, p, n2d + s:n2d + e] = score[:, None]
    return data, conf, [p.name for p in people]


def sample_rate(clip: Clip) -> float:
    """Frames per second of the clip's frames: the video's rate over the step between frames kept
    (`--every`); a rate estimated from frame times (saved JSON rounds them) is snapped to the
    common rate it cannot be told from."""
    frames, times = clip.frames, clip.time_s
    step = float(np.median(np.diff(frames))) if len(frames) > 1 else 1.0
    if len(frames) < 2 or not np.isfinite(times).all() or times[-1] <= times[0] or step <= 0:
        return float(clip.fps)
    span_frames, span_s = float(frames[-1] - frames[0]), float(times[-1] - times[0])
    video_fps = span_frames / span_s  # frames of the video per second
    if abs(clip.fps - video_fps) <= 5e-4 * video_fps:
        video_fps = float(clip.fps)  # the video's own rate, which the times agree with
    else:
        tolerance = video_fps * 2e-4 / span_s + 1e-9  # times are rounded to 0.1 ms (outputs/writers.py)
        near = [r for r in COMMON_RATES if abs(float(r) - video_fps) <= tolerance]
        if near:
            video_fps = float(min(near, key=lambda r: abs(float(r) - video_fps)))
    return video_fps / step


def size_refused(frames: int, people: int, camera_3d: bool = False) -> Optional[str]:
    """The reason a .pose file of `frames` frames and `people` people is not written, else None: a
    .pose body holds every person in every frame (zeros where not seen)."""
    if people > MAX_PEOPLE:
        return f"a .pose file holds at most {MAX_PEOPLE} people and this clip has {people}"
    points = sum(part.num_joints for _, _, part in COMPONENTS) * (2 if camera_3d else 1)
    size = frames * people * points * ((3 if camera_3d else 2) + 1) * 4
    if size > MAX_BYTES:
        return (f"a .pose file holds every person in every frame: {people} people over {frames} frames would take "
                f"{size / (1 << 30):.1f} GiB, more than the {MAX_BYTES >> 30} GiB this export builds in memory")
    return None


def write_pose(clip: Clip, path: str, camera_3d: bool = False) -> None:
    """Write the clip as a .pose file (built in memory, written under a staging name, then renamed)."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from dope.exports.people import ExportError
    reason = size_refused(len(clip), len(clip.people), camera_3d)
    if reason:
        raise ExportError(f"{reason}; {ADVICE}")
    data, conf, _ = pose_arrays(clip, camera_3d)
    fps = sample_rate(clip)
    if not (math.isfinite(fps) and fps > 0):
        fps = float(clip.fps)
    header = pose_header(clip.width, clip.height, camera_3d)
    body = NumPyPoseBody(fps=fps, data=data, confidence=conf)
    buffer = io.BytesIO()
    Pose(header, body).write(buffer)
    atomic_write(path, buffer.getvalue())
