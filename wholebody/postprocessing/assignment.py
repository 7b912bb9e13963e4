"""Assigning hands and faces to bodies (SPEC §6), on 2D poses after post-processing."""
from __future__ import annotations

import numpy as np

from wholebody.parts import BODY_HEAD, BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST
from wholebody.postprocessing.proposals import pose_boxes
from wholebody.results import NO_LINK, PartArrays, Parts

def _mutual_nearest(dist: np.ndarray, limit: np.ndarray) -> dict[int, int]:
    """Row i -> column j when j is i's nearest column, i is j's nearest row and dist <= limit[j]."""
    if dist.size == 0:
        return {}
    nearest_col = dist.argmin(1)
    nearest_row = dist.argmin(0)
    return {i: int(j) for i, j in enumerate(nearest_col)
            if nearest_row[j] == i and dist[i, j] <= limit[j]}


def assign_hands(body_pose2d: np.ndarray, hand_pose2d: np.ndarray) -> tuple[dict[int, int], dict[int, int]]:
    """Hands to body wrists: ({body: hand} for left wrists, {body: hand} for right wrists).

    body_pose2d (B, 13, 2), hand_pose2d (H, 21, 2). A hand joins a wrist when each is the other's
    nearest (hand joint 0 against that wrist of every body) and they are at most one hand size
    apart (the longest side of the hand's pose box). Handedness is not used, as published.
    """
    sizes = (lambda b: np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))(pose_boxes(hand_pose2d))
    wrists = hand_pose2d[:, HAND_WRIST]

    def links(joint: int) -> dict[int, int]:
        d = np.linalg.norm(body_pose2d[:, joint, None, :] - wrists[None], axis=-1)
        return _mutual_nearest(d, sizes)

    return links(BODY_L_WRIST), links(BODY_R_WRIST)


def assign_faces(body_pose2d: np.ndarray, face_pose2d: np.ndarray) -> dict[int, int]:
    """Faces to bodies: {body: face} when the head lies in exactly that face's box (bounds
    inclusive) and that box holds no other body's head."""
    if len(body_pose2d) == 0 or len(face_pose2d) == 0:
        return {}
    head = body_pose2d[:, BODY_HEAD]
    fb = pose_boxes(face_pose2d)
    inside = ((head[:, None, 0] >= fb[None, :, 0]) & (head[:, None, 0] <= fb[None, :, 2])
              & (head[:, None, 1] >= fb[None, :, 1]) & (head[:, None, 1] <= fb[None, :, 3]))
    return {i: int(inside[i].argmax()) for i in range(len(head))
            if inside[i].sum() == 1 and inside[:, inside[i].argmax()].sum() == 1}


def assign(bodies: Parts, hands: Parts, faces: Parts) -> PartArrays:
    """Bodies with their hand and face links set, and attached hands' wrists as body wrists.

    Takes `PartArrays` (or lists of `Detection`s) and returns new body arrays: the inputs are left as they are.
    """
    bodies, hands, faces = (PartArrays.coerce(p, x) for p, x in (("body", bodies), ("hand", hands), ("face", faces)))
    if not len(bodies):
        return bodies
    left, right = assign_hands(bodies.pose2d, hands.pose2d)
    face = assign_faces(bodies.pose2d, faces.pose2d)
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
