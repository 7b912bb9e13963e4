"""The three parts DOPE detects, as data: joint counts, joint names, bones and colours.

Every loop over parts in the project reads this table; nothing else hard-codes a part.
Colours are BGR (OpenCV). A bone joins two endpoints; an endpoint is a tuple of joint
indexes whose 2D/3D mean is the point (one index for a joint, two for a midpoint).
"""
from __future__ import annotations

from dataclasses import dataclass

Endpoint = tuple[int, ...]
Color = tuple[int, int, int]

BLUE: Color = (255, 0, 0)
GREEN: Color = (0, 255, 0)
RED: Color = (0, 0, 255)
MAGENTA: Color = (255, 0, 255)
YELLOW: Color = (0, 255, 255)
CYAN: Color = (255, 255, 0)


@dataclass(frozen=True)
class Bone:
    a: Endpoint
    b: Endpoint
    color: Color


@dataclass(frozen=True)
class Part:
    name: str
    joints: tuple[str, ...]
    bones: tuple[Bone, ...]
    joint_radius_scale: int  # joint disc radius, in units of the drawing line width

    @property
    def num_joints(self) -> int:
        return len(self.joints)


BODY_JOINTS = ("r_ankle", "l_ankle", "r_knee", "l_knee", "r_hip", "l_hip", "r_wrist", "l_wrist",
               "r_elbow", "l_elbow", "r_shoulder", "l_shoulder", "head")
BODY_R_WRIST, BODY_L_WRIST, BODY_HEAD = 6, 7, 12
HIPS, SHOULDERS = (4, 5), (10, 11)
# The neck joins the head to the middle of the shoulders; the 3D view leaves it out when a face is attached.
NECK = Bone((BODY_HEAD,), SHOULDERS, BLUE)
BODY_BONES = (
    Bone((9,), (11,), GREEN), Bone((7,), (9,), GREEN), Bone((1,), (3,), GREEN), Bone((3,), (5,), GREEN),
    Bone((0,), (2,), BLUE), Bone((2,), (4,), BLUE), Bone((8,), (10,), BLUE), Bone((6,), (8,), BLUE),
    Bone((4,), (5,), BLUE), Bone((10,), (11,), BLUE), Bone(HIPS, SHOULDERS, BLUE), NECK,
)

FINGER_NAMES = ("thumb", "index", "middle", "ring", "little")
FINGER_COLORS = (MAGENTA, BLUE, GREEN, YELLOW, RED)


def _finger_chain(f: int) -> tuple[int, ...]:
    """Joints of finger f from the wrist to the tip: 0 -> f+1 -> 3f+6 -> 3f+7 -> 3f+8."""
    return (0, f + 1, 3 * f + 6, 3 * f + 7, 3 * f + 8)


def _hand_joint_names() -> tuple[str, ...]:
    names = ["wrist"] + [""] * 20
    for f, finger in enumerate(FINGER_NAMES):
        for k, j in enumerate(_finger_chain(f)[1:]):
            names[j] = f"{finger}_{k + 1}"
    return tuple(names)


HAND_WRIST = 0
HAND_BONES = tuple(Bone((a,), (b,), FINGER_COLORS[f])
                   for f in range(5) for a, b in zip(_finger_chain(f)[:-1], _finger_chain(f)[1:]))

# Face landmark regions: (name, first, last, colour, closed loop).
FACE_REGIONS = (
    ("jaw", 0, 32, BLUE, False),
    ("eyebrow_1", 33, 37, BLUE, False),
    ("eyebrow_2", 38, 42, CYAN, False),
    ("nose_bridge", 43, 46, MAGENTA, False),
    ("nose_base", 47, 51, MAGENTA, False),
    ("eye_1", 52, 57, YELLOW, True),
    ("eye_2", 58, 63, GREEN, True),
    ("outer_lips", 64, 75, RED, True),
    ("inner_lips", 76, 83, RED, True),
)
FACE_JOINTS = tuple(f"{name}_{j - first}" for name, first, last, _, _ in FACE_REGIONS
                    for j in range(first, last + 1))
FACE_BONES = tuple(
    [Bone((j,), (j + 1,), color) for _, first, last, color, _ in FACE_REGIONS for j in range(first, last)]
    + [Bone((first,), (last,), color) for _, first, last, color, closed in FACE_REGIONS if closed]
)

BODY = Part("body", BODY_JOINTS, BODY_BONES, joint_radius_scale=2)
HAND = Part("hand", _hand_joint_names(), HAND_BONES, joint_radius_scale=2)
FACE = Part("face", FACE_JOINTS, FACE_BONES, joint_radius_scale=1)

PARTS: dict[str, Part] = {p.name: p for p in (BODY, HAND, FACE)}
PART_NAMES = tuple(PARTS)
