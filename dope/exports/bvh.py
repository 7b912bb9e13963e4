"""People of a clip as BVH files (one per person): a skeleton with constant bones, animated by inverse kinematics.

Axes and units: metres, Y up. BVH world = OpenCV camera frame with y and z negated (x right, y up,
z towards the viewer; the camera at the origin looking down -Z, as in glTF), so a person in front
of the camera stands at negative z, facing +Z when it faces the camera. Blender's BVH importer with
its defaults (forward -Z, up Y, scale 1) shows people at their real size and place (1 unit = 1 m).

Hierarchy (names are DOPE's joint names; `hips`, `spine` and `neck` are the middle of the hips,
the middle of hips and shoulders, and the middle of the shoulders):

    hips (root: Xposition Yposition Zposition Zrotation Xrotation Yrotation)
      r_hip - r_knee - r_ankle - End        l_hip - l_knee - l_ankle - End
      spine
        neck - head - End
        r_shoulder - r_elbow - r_wrist [- rhand_<finger>_1 - _2 - _3 - End (the tip, <finger>_4)] x 5
        l_shoulder - l_elbow - l_wrist [- lhand_...]

Other joints have only rotations (Zrotation Xrotation Yrotation: R = Rz Rx Ry, degrees). Finger chains
are there when the person has that hand in some frame. The rest pose (all rotations zero) is a
T-pose facing +Z: legs down, arms along x, fingers along the arms, palms down.

Offsets are constant per person: a bone's length is its median over the clip; a joint with several
children (hips, spine, wrists) keeps each child where it lies on average in its own frame. Rotations
come from inverse kinematics, top-down: a joint with one child turns its rest bone onto the observed
bone by the shortest arc (swing) and then about the bone (twist) so that its hinge axis lies along
the normal of the plane of this bone and the next (the elbow, knee or finger bend; no twist when
the limb is straight or has no next bone); a joint with several children takes the frame of two
observed directions (hips: up the spine and across the hips; spine: up to the neck and across the
shoulders; wrist: to the middle finger and across the knuckles; head, when the person has a face:
up from the chin to the brows and across the eyes). Forward kinematics then gives back
the observed joints up to the bones' changes of length. Frames where the person, or a hand, is not
seen repeat the nearest frame where it is.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from dope.exports.people import Clip, ExportError, Person, hold_nearest
from dope.files import atomic_write
from dope.parts import BODY_JOINTS, FINGER_NAMES, HAND

log = logging.getLogger(__name__)

# OpenCV camera frame -> BVH world (Y up): y and z negated
CAMERA_TO_BVH = np.array([1.0, -1.0, -1.0])
END_SITE_M = 0.05  # length of the placeholder end bones (feet, head, hands without fingers)
STRAIGHT = 1e-6    # squared norm of a bend normal below which a limb counts as straight
DECIMALS = 6

Points = dict[str, np.ndarray]  # point name -> float64[T, 3], BVH world metres
# Face landmarks (first, last) whose mean orients the head (SPEC §1: iBUG layout, the subject's right eye first)
FACE_POINTS = {"face_chin": (16, 16), "face_brows": (33, 42), "face_right_eye": (52, 57), "face_left_eye": (58, 63)}


@dataclass
class Joint:
    """One BVH joint: where it is (a point name), how its rotation is found, and its children.

    rest: the rest direction of its one child (unit, rest frame) or, for a joint with several
    children, the rest directions (primary, secondary) of the two observed directions `frame`
    (pairs of point names: from, to). hinge: the rest axis that twist turns onto the bend normal.
    end: the rest offset of an End Site (leaf joints only).
    """
    name: str
    point: str
    children: list["Joint"] = field(default_factory=list)
    rest: Optional[np.ndarray] = None
    frame: Optional[tuple[tuple[str, str], tuple[str, str], np.ndarray, np.ndarray]] = None
    hinge: Optional[np.ndarray] = None
    end: Optional[np.ndarray] = None
    end_point: Optional[str] = None  # the point the End Site stands for (a finger tip), if any


def _v(*x: float) -> np.ndarray:
    return np.array(x, np.float64)


def _limb(names: list[str], rest: np.ndarray, hinge: Optional[np.ndarray], end: Optional[np.ndarray] = None,
          end_point: Optional[str] = None) -> Joint:
    """A chain of one-child joints named after their points, the last ending in an End Site (standing for
    `end_point` when given, else a placeholder at `end`)."""
    joints = [Joint(n, n, rest=rest, hinge=hinge) for n in names]
    for a, b in zip(joints, joints[1:]):
        a.children.append(b)
    joints[-1].end = end if end is not None else rest * END_SITE_M
    joints[-1].end_point = end_point
    return joints[0]


def _hand(side: str, with_fingers: bool) -> Joint:
    """The wrist joint of side "r" or "l", with five finger chains when the hand is seen."""
    sign = -1.0 if side == "r" else 1.0
    along = _v(sign, 0, 0)
    wrist = Joint(f"{side}_wrist", f"{side}_wrist")
    if not with_fingers:
        wrist.end = along * END_SITE_M
        return wrist
    prefix = f"{side}hand_"
    wrist.frame = ((f"{side}_wrist", f"{prefix}middle_1"), (f"{prefix}little_1", f"{prefix}index_1"),
                   along, _v(0, 0, 1))
    curl = _v(0, 0, -sign)  # fingers curl towards the palm (down in the rest pose)
    for finger in FINGER_NAMES:
        names = [f"{prefix}{finger}_{k}" for k in (1, 2, 3)]
        wrist.children.append(_limb(names, along, curl, end_point=f"{prefix}{finger}_4"))
    return wrist


def skeleton(hands: tuple[bool, bool], face: bool = False) -> Joint:
    """The hierarchy of the module's docstring; hands: (left, right) finger chains wanted; face: the
    head turns with the face (else the head joint has no rotation of its own)."""
    down = _v(0, -1, 0)
    # a hip joint's rotation turns the thigh, its twist following the knee's bend
    legs = [_limb([f"{s}_hip", f"{s}_knee", f"{s}_ankle"], down, _v(1, 0, 0), end=_v(0, 0, END_SITE_M))
            for s in ("r", "l")]
    arms = []
    for side, sign, has in (("r", -1.0, hands[1]), ("l", 1.0, hands[0])):
        along = _v(sign, 0, 0)
        # the shoulder's twist follows the elbow's bend; the forearm's roll is left to the wrist
        elbow = Joint(f"{side}_elbow", f"{side}_elbow", children=[_hand(side, has)], rest=along)
        arms.append(Joint(f"{side}_shoulder", f"{side}_shoulder", children=[elbow], rest=along, hinge=_v(0, -sign, 0)))
    neck = _limb(["neck", "head"], _v(0, 1, 0), None, end=_v(0, END_SITE_M, 0))
    if face:  # up from the chin to the brows, across from the right eye to the left
        neck.children[0].frame = (("face_chin", "face_brows"), ("face_right_eye", "face_left_eye"), _v(0, 1, 0),
                                  _v(1, 0, 0))
    spine = Joint("spine", "spine", children=[neck] + arms,
                  frame=(("spine", "neck"), ("r_shoulder", "l_shoulder"), _v(0, 1, 0), _v(1, 0, 0)))
    return Joint("hips", "hips", children=legs + [spine],
                 frame=(("hips", "neck"), ("r_hip", "l_hip"), _v(0, 1, 0), _v(1, 0, 0)))


# ------------------------------------------------------------------------------------ points


def person_points(person: Person) -> Points:
    """The points the skeleton stands on, in BVH world coordinates (held over unseen frames)."""
    body = hold_nearest(person.parts["body"].joints) * CAMERA_TO_BVH
    pts = {name: body[:, k] for k, name in enumerate(BODY_JOINTS)}
    pts["hips"] = (pts["r_hip"] + pts["l_hip"]) / 2
    pts["neck"] = (pts["r_shoulder"] + pts["l_shoulder"]) / 2
    pts["spine"] = (pts["hips"] + pts["neck"]) / 2
    for key, side in (("left_hand", "l"), ("right_hand", "r")):
        if key in person.parts:
            hand = hold_nearest(person.parts[key].joints) * CAMERA_TO_BVH
            # the body's wrist is the hand's: the hand was placed on it
            for k, name in enumerate(HAND.joints[1:], 1):
                pts[f"{side}hand_{name}"] = hand[:, k]
    if "face" in person.parts:
        face = hold_nearest(person.parts["face"].joints) * CAMERA_TO_BVH
        for name, (first, last) in FACE_POINTS.items():
            pts[name] = face[:, first:last + 1].mean(1)
    return pts


# ------------------------------------------------------------------------------------ rotations


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _basis(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """float[..., 3, 3] orthonormal columns: primary, secondary made orthogonal to it, their cross product."""
    e1 = _unit(primary)
    e2 = _unit(secondary - (secondary * e1).sum(-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], -1)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices float[..., 3, 3] about unit axes float[..., 3] by angles float[...] (Rodrigues)."""
    axis = np.broadcast_to(axis, np.shape(angle) + (3,))
    k = np.zeros(axis.shape + (3,))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = axis[..., 2], -axis[..., 1], axis[..., 0]
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _arc(d: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The shortest-arc rotations float[T, 3, 3] taking the unit vector d (3,) onto unit vectors v (T, 3)."""
    axis = np.cross(d, v)
    s = np.linalg.norm(axis, axis=-1)
    c = np.clip((v * d).sum(-1), -1.0, 1.0)
    angle = np.arctan2(s, c)
    other = np.cross(d, _v(1, 0, 0) if abs(d[0]) < 0.9 else _v(0, 1, 0))  # for v = -d: any axis across d
    axis = np.where((s > 1e-12)[:, None], axis / np.where(s > 1e-12, s, 1.0)[:, None], _unit(other))
    return _axis_angle(axis, angle)


def _swing_twist(parent: np.ndarray, d: np.ndarray, bone: np.ndarray, hinge: Optional[np.ndarray],
                 bend: Optional[np.ndarray]) -> np.ndarray:
    """Local rotations float[T, 3, 3] of a one-child joint: swing of rest direction d onto the observed
    bone (world, float[T, 3]) seen from the parent's frame (float[T, 3, 3]), after a twist about d that
    turns the rest hinge axis onto the observed bend normal (world, float[T, 3]; skipped where it vanishes)."""
    to_local = np.swapaxes(parent, -1, -2)
    v = _unit(np.einsum("tij,tj->ti", to_local, bone))
    swing = _arc(d, v)
    if hinge is None or bend is None:
        return swing
    n = np.einsum("tij,tj->ti", to_local, bend)
    r = np.einsum("tji,tj->ti", swing, n)  # the bend normal in the rest frame: swing^T n
    r = r - (r @ d)[:, None] * d
    ok = (r * r).sum(-1) > STRAIGHT * np.maximum((n * n).sum(-1), 1e-300)
    angle = np.arctan2(np.cross(hinge, r) @ d, r @ hinge)
    twist = _axis_angle(d, np.where(ok, angle, 0.0))
    return swing @ twist


@dataclass
class Motion:
    """A person's skeleton with offsets and per-frame local rotations (float[T, 3, 3]) by joint name."""
    root: Joint
    offsets: dict[str, np.ndarray]  # joint name -> rest offset from its parent (root: zero)
    ends: dict[str, np.ndarray]     # joint name -> End Site offset
    local: dict[str, np.ndarray]
    root_position: np.ndarray       # float[T, 3]


def solve(person: Person) -> Motion:
    """Constant offsets and per-frame rotations reproducing the person's joints (see the module's docstring)."""
    pts = person_points(person)
    hands = ("left_hand" in person.parts, "right_hand" in person.parts)
    root = skeleton(hands, face="face" in person.parts)
    t = len(pts["hips"])
    offsets: dict[str, np.ndarray] = {root.name: np.zeros(3)}
    ends: dict[str, np.ndarray] = {}
    local: dict[str, np.ndarray] = {}

    def bend_of(joint: Joint) -> Optional[np.ndarray]:
        child = joint.children[0] if joint.children else None
        nxt = None
        if child is not None:
            nxt = pts.get(child.children[0].point) if child.children else pts.get(child.end_point or "")
        if child is None or nxt is None or joint.hinge is None:
            return None
        return np.cross(pts[child.point] - pts[joint.point], nxt - pts[child.point])

    def visit(joint: Joint, parent_world: np.ndarray) -> None:
        if joint.frame is not None:
            (a0, a1), (b0, b1), rest1, rest2 = joint.frame
            world = _basis(pts[a1] - pts[a0], pts[b1] - pts[b0]) @ _basis(rest1, rest2).T
            local[joint.name] = np.swapaxes(parent_world, -1, -2) @ world
            for child in joint.children:
                rel = np.einsum("tji,tj->ti", world, pts[child.point] - pts[joint.point])
                offsets[child.name] = np.median(rel, axis=0)
        elif joint.children or joint.end_point:
            target = joint.children[0].point if joint.children else joint.end_point
            bone = pts[target] - pts[joint.point]
            length = float(np.median(np.linalg.norm(bone, axis=-1)))
            local[joint.name] = _swing_twist(parent_world, joint.rest, bone, joint.hinge, bend_of(joint))
            world = parent_world @ local[joint.name]
            if joint.children:
                offsets[joint.children[0].name] = length * joint.rest
            else:
                ends[joint.name] = length * joint.rest
        else:  # a leaf without data beyond it: no rotation of its own
            local[joint.name] = np.broadcast_to(np.eye(3), (t, 3, 3))
            world = parent_world
        if joint.end is not None and joint.name not in ends:
            ends[joint.name] = joint.end
        for child in joint.children:
            visit(child, world)

    visit(root, np.broadcast_to(np.eye(3), (t, 3, 3)))
    return Motion(root, offsets, ends, local, pts["hips"])


def forward(motion: Motion) -> dict[str, np.ndarray]:
    """World positions float[T, 3] of every joint and End Site (`<joint>/end`) of a Motion."""
    out: dict[str, np.ndarray] = {}

    def visit(joint: Joint, position: np.ndarray, parent_world: np.ndarray) -> None:
        out[joint.name] = position
        world = parent_world @ motion.local[joint.name]
        for child in joint.children:
            visit(child, position + np.einsum("tij,j->ti", world, motion.offsets[child.name]), world)
        if joint.name in motion.ends:
            out[joint.name + "/end"] = position + np.einsum("tij,j->ti", world, motion.ends[joint.name])

    t = len(motion.root_position)
    visit(motion.root, motion.root_position, np.broadcast_to(np.eye(3), (t, 3, 3)))
    return out


# ------------------------------------------------------------------------------------ writing


def _euler_zxy(matrices: np.ndarray) -> np.ndarray:
    """float[T, 3] degrees (z, x, y) with R = Rz Rx Ry, for BVH's `Zrotation Xrotation Yrotation`."""
    from scipy.spatial.transform import Rotation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: still an exact decomposition
        return Rotation.from_matrix(matrices).as_euler("ZXY", degrees=True)


def bvh_text(motion: Motion, fps: float) -> str:
    """The BVH file of one person's motion."""
    lines: list[str] = ["HIERARCHY"]
    order: list[Joint] = []

    def fmt(v: np.ndarray) -> str:
        return " ".join(f"{x:.{DECIMALS}f}" for x in v)

    def visit(joint: Joint, depth: int) -> None:
        pad = "  " * depth
        is_root = depth == 0
        lines.append(f"{pad}{'ROOT' if is_root else 'JOINT'} {joint.name}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {fmt(motion.offsets[joint.name])}")
        channels = "6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" if is_root else \
            "3 Zrotation Xrotation Yrotation"
        lines.append(f"{pad}  CHANNELS {channels}")
        order.append(joint)
        for child in joint.children:
            visit(child, depth + 1)
        if joint.name in motion.ends:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {fmt(motion.ends[joint.name])}",
                          f"{pad}  }}"])
        lines.append(f"{pad}}}")

    visit(motion.root, 0)
    t = len(motion.root_position)
    columns = [motion.root_position] + [_euler_zxy(np.asarray(motion.local[j.name])) for j in order]
    table = np.concatenate(columns, 1)
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{x:.{DECIMALS}f}" for x in row) for row in np.round(table, DECIMALS) + 0.0]  # no -0
    return "\n".join(lines) + "\n"


def bvh_paths(path: str, clip: Clip) -> dict[str, str]:
    """person name -> `STEM.<person>.bvh` for every person with a body."""
    stem = path[:-4] if path.lower().endswith(".bvh") else path
    return {p.name: f"{stem}.{p.name}.bvh" for p in clip.people if "body" in p.parts}


def write_bvh(clip: Clip, path: str, say: Callable[..., None] = log.info) -> list[str]:
    """One BVH file per person with a body (`STEM.<person>.bvh`), each under a staging name; the paths."""
    paths = bvh_paths(path, clip)
    if not paths:
        raise ExportError(f"{path}: no body in the clip, so no skeleton to write")
    skipped = [p.name for p in clip.people if p.name not in paths]
    if skipped:
        say("BVH: %s without a body, not written", ", ".join(skipped))
    written = []
    for person in clip.people:
        if person.name in paths:
            atomic_write(paths[person.name], bvh_text(solve(person), clip.fps))
            written.append(paths[person.name])
    return written


__all__ = ["CAMERA_TO_BVH", "bvh_paths", "bvh_text", "forward", "solve", "write_bvh"]
