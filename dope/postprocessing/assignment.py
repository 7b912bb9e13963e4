"""Assigning hands and faces to bodies (SPEC §6), on 2D poses after post-processing.

Two methods share the distances and the limits:
- "nearest" (default, as published): each wrist and each head is linked on its own, so one hand
  can be attached to both wrists of a body (or to wrists of two bodies) when it is the nearest of both;
- "unique": one to one, the Hungarian method (scipy's linear_sum_assignment) minimising the total
  distance over the pairs within the limits: every hand to at most one wrist, every face to at most one body.
"""
from __future__ import annotations

import numpy as np

from dope.parts import BODY_HEAD, BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST
from dope.results import NO_LINK, PartArrays, Parts

ASSIGNMENTS = ("nearest", "unique")


def _one_to_one(dist: np.ndarray, allowed: np.ndarray) -> dict[int, int]:
    """Row i -> column j, one to one, minimising the total distance over the allowed pairs.

    Forbidden pairs cost more than any set of allowed ones, so the most pairs are linked first,
    then the nearest; forbidden pairs the solver still had to use are dropped.
    """
    from scipy.optimize import linear_sum_assignment
    if dist.size == 0 or not allowed.any():
        return {}
    big = 1.0 + 2.0 * float(np.abs(dist[allowed]).sum())
    rows, cols = linear_sum_assignment(np.where(allowed, dist, big))
    return {int(i): int(j) for i, j in zip(rows, cols) if allowed[i, j]}


def _mutual_nearest(dist: np.ndarray, limit: np.ndarray) -> dict[int, int]:
    """Row i -> column j when j is i's nearest column, i is j's nearest row and dist <= limit[j]."""
    if dist.size == 0:
        return {}
    nearest_col = dist.argmin(1)
    nearest_row = dist.argmin(0)
    return {i: int(j) for i, j in enumerate(nearest_col)
            if nearest_row[j] == i and dist[i, j] <= limit[j]}


def assign_hands(body_pose2d: np.ndarray, hand_pose2d: np.ndarray,
                 method: str = "nearest") -> tuple[dict[int, int], dict[int, int]]:
    """Hands to body wrists: ({body: hand} for left wrists, {body: hand} for right wrists).

    body_pose2d (B, 13, 2), hand_pose2d (H, 21, 2). The distance is from hand joint 0 to a body
    wrist, the limit one hand size (the longest side of the hand's pose box). "nearest": a hand
    joins a wrist when each is the other's nearest among that wrist of every body, left and right
    wrists apart (as published). "unique": all 2B wrists against all hands, one to one.
    Handedness is not used, as published.
    """
    from dope.postprocessing.proposals import pose_boxes  # lazily: the command line reads ASSIGNMENTS
    if method not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {method!r}; use one of {', '.join(ASSIGNMENTS)}")
    sizes = (lambda b: np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))(pose_boxes(hand_pose2d))
    wrists = hand_pose2d[:, HAND_WRIST]

    def distances(joint: int) -> np.ndarray:
        return np.linalg.norm(body_pose2d[:, joint, None, :] - wrists[None], axis=-1)

    if method == "unique":
        d = np.concatenate([distances(BODY_L_WRIST), distances(BODY_R_WRIST)])  # (2B, H): left wrists, then right
        found = _one_to_one(d, d <= sizes[None])
        b = len(body_pose2d)
        return ({i: j for i, j in found.items() if i < b}, {i - b: j for i, j in found.items() if i >= b})
    return _mutual_nearest(distances(BODY_L_WRIST), sizes), _mutual_nearest(distances(BODY_R_WRIST), sizes)


def assign_faces(body_pose2d: np.ndarray, face_pose2d: np.ndarray, method: str = "nearest") -> dict[int, int]:
    """Faces to bodies: {body: face}.

    "nearest" (as published): when the head lies in exactly that face's box (bounds inclusive)
    and that box holds no other body's head. "unique": among the (head, face box) pairs with the
    head inside, one to one, the least total distance from heads to box centres.
    """
    from dope.postprocessing.proposals import pose_boxes
    if len(body_pose2d) == 0 or len(face_pose2d) == 0:
        return {}
    head = body_pose2d[:, BODY_HEAD]
    fb = pose_boxes(face_pose2d)
    inside = ((head[:, None, 0] >= fb[None, :, 0]) & (head[:, None, 0] <= fb[None, :, 2])
              & (head[:, None, 1] >= fb[None, :, 1]) & (head[:, None, 1] <= fb[None, :, 3]))
    if method == "unique":
        centres = (fb[:, :2] + fb[:, 2:]) / 2
        return _one_to_one(np.linalg.norm(head[:, None] - centres[None], axis=-1), inside)
    return {i: int(inside[i].argmax()) for i in range(len(head))
            if inside[i].sum() == 1 and inside[:, inside[i].argmax()].sum() == 1}


def assign(bodies: Parts, hands: Parts, faces: Parts, method: str = "nearest") -> PartArrays:
    """Bodies with their hand and face links set, and attached hands' wrists as body wrists.

    method: "nearest" (as published) or "unique" (one to one), see the module's docstring.
    Takes `PartArrays` (or lists of `Detection`s) and returns new body arrays: the inputs are left as they are.
    """
    bodies, hands, faces = (PartArrays.coerce(p, x) for p, x in (("body", bodies), ("hand", hands), ("face", faces)))
    if not len(bodies):
        return bodies
    left, right = assign_hands(bodies.pose2d, hands.pose2d, method)
    face = assign_faces(bodies.pose2d, faces.pose2d, method)
    pose = bodies.pose2d.copy()
    links = {}
    for name, joint, found in (("left_hand", BODY_L_WRIST, left), ("right_hand", BODY_R_WRIST, right),
                               ("face", None, face)):
        link = np.full(len(bodies), NO_LINK, np.int64)
        if found:
            b, o = np.array(list(found.items())).T
            link[b] = o
            if joint is not None:
                pose[b, joint] = hands.pose2d[o, HAND_WRIST]
        links[name] = link
    return PartArrays("body", bodies.scores, pose, bodies.pose3d,
                      **{**{k: bodies.fields[k] for k in bodies.extra_fields}, **links})
