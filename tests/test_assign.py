"""Hands and faces assigned to bodies (SPEC §6) on small hand-made cases."""
from __future__ import annotations

import numpy as np

from dope.parts import BODY_HEAD, BODY_L_WRIST, BODY_R_WRIST
from dope.postprocessing.assignment import assign, assign_faces, assign_hands
from dope.results import Detection


def body(head=(50.0, 10.0), lwrist=(80.0, 60.0), rwrist=(20.0, 60.0)) -> np.ndarray:
    p = np.full((13, 2), 50.0, np.float32)
    p[BODY_HEAD], p[BODY_L_WRIST], p[BODY_R_WRIST] = head, lwrist, rwrist
    return p


def hand(wrist, size=20.0) -> np.ndarray:
    """A hand whose joints span a size x size square, wrist (joint 0) at one corner."""
    p = np.zeros((21, 2), np.float32)
    p[1:] = np.asarray(wrist) + np.linspace(0, size, 20)[:, None]
    p[0] = wrist
    return p


def face(x0, y0, x1, y1) -> np.ndarray:
    t = np.linspace(0, 1, 84)[:, None]
    return (np.array([x0, y0]) + t * np.array([x1 - x0, y1 - y0])).astype(np.float32)


def test_hand_joins_the_nearest_wrist_within_its_size():
    bodies = np.stack([body()])
    hands = np.stack([hand((85.0, 62.0)), hand((22.0, 65.0))])
    left, right = assign_hands(bodies, hands)
    assert left == {0: 0} and right == {0: 1}


def test_hand_too_far_is_not_attached():
    # hand box side: 20 px grown by 10% per side = 24 px; wrist distance 30 px > 24
    left, right = assign_hands(np.stack([body()]), np.stack([hand((110.0, 60.0))]))
    assert left == {} and right == {}
    # at exactly one hand size (24 px) it is accepted (<=)
    left, _ = assign_hands(np.stack([body()]), np.stack([hand((104.0, 60.0))]))
    assert left == {0: 0}


def test_hand_must_be_mutually_nearest():
    # Two bodies' left wrists compete for one hand: only the nearer body gets it.
    bodies = np.stack([body(lwrist=(80.0, 60.0)), body(lwrist=(90.0, 60.0))])
    left, _ = assign_hands(bodies, np.stack([hand((88.0, 60.0))]))
    assert left == {1: 0}


def test_ties_go_to_the_first():
    # Two hands at the same distance from one wrist: the first (higher score) wins.
    bodies = np.stack([body(lwrist=(80.0, 60.0), rwrist=(-500.0, -500.0))])
    left, _ = assign_hands(bodies, np.stack([hand((90.0, 60.0)), hand((70.0, 60.0))]))
    assert left == {0: 0}
    # Two bodies at the same distance from a hand: the first body wins.
    bodies = np.stack([body(lwrist=(80.0, 60.0)), body(lwrist=(100.0, 60.0))])
    left, _ = assign_hands(bodies, np.stack([hand((90.0, 60.0))]))
    assert left == {0: 0}


def test_one_hand_may_serve_both_wrists_as_published():
    # Handedness is not used: a hand between both wrists of one body is nearest to each.
    b = body(lwrist=(55.0, 60.0), rwrist=(45.0, 60.0))
    left, right = assign_hands(np.stack([b]), np.stack([hand((50.0, 60.0))]))
    assert left == {0: 0} and right == {0: 0}


def test_no_hands_or_no_bodies():
    assert assign_hands(np.zeros((0, 13, 2)), np.stack([hand((0.0, 0.0))])) == ({}, {})
    assert assign_hands(np.stack([body()]), np.zeros((0, 21, 2))) == ({}, {})
    assert assign_faces(np.stack([body()]), np.zeros((0, 84, 2))) == {}


def test_face_contains_exactly_one_head():
    bodies = np.stack([body(head=(50.0, 10.0)), body(head=(200.0, 10.0))])
    faces = np.stack([face(40, 0, 60, 20), face(190, 0, 210, 20)])
    assert assign_faces(bodies, faces) == {0: 0, 1: 1}


def test_face_bounds_are_inclusive():
    # face box: x 40..60 grown by 2 px each side -> 38..62
    assert assign_faces(np.stack([body(head=(62.0, 10.0))]), np.stack([face(40, 0, 60, 20)])) == {0: 0}
    assert assign_faces(np.stack([body(head=(62.5, 10.0))]), np.stack([face(40, 0, 60, 20)])) == {}


def test_face_with_two_heads_or_head_in_two_faces_is_not_assigned():
    two_heads = np.stack([body(head=(45.0, 10.0)), body(head=(55.0, 10.0))])
    assert assign_faces(two_heads, np.stack([face(40, 0, 60, 20)])) == {}
    overlapping = np.stack([face(40, 0, 60, 20), face(45, 5, 65, 25)])
    assert assign_faces(np.stack([body(head=(50.0, 10.0))]), overlapping) == {}


def test_assign_sets_links_and_replaces_wrists_without_mutating():
    b = Detection(0.9, body(), np.zeros((13, 3), np.float32))
    h = [Detection(0.8, hand((85.0, 62.0)), np.zeros((21, 3), np.float32), is_right=False)]
    f = [Detection(0.7, face(40, 0, 60, 20), np.zeros((84, 3), np.float32))]
    before = b.pose2d.copy()
    (out,) = assign([b], h, f)
    assert (out.left_hand, out.right_hand, out.face) == (0, None, 0)
    np.testing.assert_array_equal(out.pose2d[BODY_L_WRIST], [85.0, 62.0])
    np.testing.assert_array_equal(out.pose2d[BODY_R_WRIST], before[BODY_R_WRIST])
    np.testing.assert_array_equal(b.pose2d, before)
    assert b.left_hand is None
    assert len(assign([], h, f)) == 0
