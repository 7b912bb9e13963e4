"""Assigning hands and faces to bodies (SPEC §6), on 2D poses after post-processing."""
from __future__ import annotations

import numpy as np

from wholebody.parts import BODY_HEAD, BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST, PARTS
from wholebody.postprocessing.proposals import pose_boxes
from wholebody.results import Detection

HAND_JOINTS = PARTS["hand"].num_joints
FACE_JOINTS = PARTS["face"].num_joints


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


def assign(bodies: list[Detection], hands: list[Detection], faces: list[Detection]) -> list[Detection]:
    """Bodies with their hand and face links set, and attached hands' wrists as body wrists.

    Returns new Detection objects (the inputs are left as they are).
    """
    if not bodies:
        return []
    body2d = np.stack([b.pose2d for b in bodies])
    hand2d = np.stack([h.pose2d for h in hands]) if hands else np.zeros((0, HAND_JOINTS, 2), np.float32)
    face2d = np.stack([f.pose2d for f in faces]) if faces else np.zeros((0, FACE_JOINTS, 2), np.float32)
    left, right = assign_hands(body2d, hand2d)
    face = assign_faces(body2d, face2d)
    out = []
    for i, b in enumerate(bodies):
        pose = b.pose2d.copy()
        if i in left:
            pose[BODY_L_WRIST] = hand2d[left[i], HAND_WRIST]
        if i in right:
            pose[BODY_R_WRIST] = hand2d[right[i], HAND_WRIST]
        out.append(Detection(score=b.score, pose2d=pose, pose3d=b.pose3d, is_right=b.is_right,
                             left_hand=left.get(i), right_hand=right.get(i), face=face.get(i)))
    return out
