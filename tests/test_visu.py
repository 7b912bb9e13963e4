"""The 2D drawing (SPEC §7): bones and joints land on the expected pixels, padding, empty results."""
from __future__ import annotations

import functools

import numpy as np

from dope.drawing.draw2d import draw_result as draw_any, padding
from dope.parts import BLUE, FACE, GREEN, HAND, RED
from dope.results import Detection, Result

# the style's colours are checked in OpenCV's order (BGR)
draw_result = functools.partial(draw_any, channels="bgr")

BLACK = np.zeros((200, 300, 3), np.uint8)


def standing_body(x=150.0, y=20.0) -> np.ndarray:
    """A stick figure: head at (x, y), arms out, legs down (image pixels)."""
    p = np.zeros((13, 2), np.float32)
    p[12] = (x, y)
    p[10], p[11] = (x - 20, y + 20), (x + 20, y + 20)      # shoulders (r, l)
    p[8], p[9] = (x - 40, y + 20), (x + 40, y + 20)        # elbows
    p[6], p[7] = (x - 60, y + 20), (x + 60, y + 20)        # wrists
    p[4], p[5] = (x - 15, y + 80), (x + 15, y + 80)        # hips
    p[2], p[3] = (x - 15, y + 120), (x + 15, y + 120)      # knees
    p[0], p[1] = (x - 15, y + 160), (x + 15, y + 160)      # ankles
    return p


def result_with(**parts) -> Result:
    return Result(height=BLACK.shape[0], width=BLACK.shape[1], **parts)


def det(pose2d) -> Detection:
    return Detection(score=0.87, pose2d=pose2d, pose3d=np.zeros((len(pose2d), 3), np.float32))


def color_at(img, x, y):
    return tuple(int(c) for c in img[int(y), int(x)])


def test_body_bones_and_joints_land_on_their_pixels():
    pose = standing_body()
    out = draw_result(BLACK, result_with(body=[det(pose)]), scores=False)
    assert out.shape == BLACK.shape  # everything inside: no padding
    # middle of the left shin (3-1) is green, the right shin (2-0) blue
    assert color_at(out, 165, 20 + 140) == GREEN
    assert color_at(out, 135, 20 + 140) == BLUE
    # left forearm (7-9) green, right forearm (6-8) blue; middle of the torso line blue
    assert color_at(out, 200, 40) == GREEN and color_at(out, 100, 40) == BLUE
    assert color_at(out, 150, (40 + 100) / 2) == BLUE
    # joints: filled red discs of radius 4 over the bones
    for x, y in pose:
        assert color_at(out, x, y) == RED
    # far from the skeleton: untouched
    assert color_at(out, 5, 195) == (0, 0, 0)
    # the input is not drawn on
    assert not BLACK.any()


def test_hand_fingers_have_their_colours():
    p = np.zeros((21, 2), np.float32)
    p[0] = (150, 150)
    for f in range(5):  # each finger a straight ray going up, spread in x
        for k, j in enumerate((f + 1, 3 * f + 6, 3 * f + 7, 3 * f + 8)):
            p[j] = (110 + 20 * f, 130 - 25 * k)
    out = draw_result(BLACK, result_with(hand=[det(p)]))
    for f, color in enumerate((HAND.bones[4 * f].color for f in range(5))):
        x = 110 + 20 * f
        assert color_at(out, x, 130 - 25 * 1.5) == color, f  # middle of the finger's 2nd bone


def test_face_loops_are_closed_with_their_colour():
    p = np.zeros((84, 2), np.float32)
    p[:] = (10, 10)
    # outer lips (64-75): a horizontal segment from x=100 to x=210; closing bone 64-75 back
    p[64:76] = np.stack([np.linspace(100, 210, 12), np.full(12, 100)], 1)
    p[75] = (100, 150)  # the last lip point below the first: closing bone 64-75 is vertical
    out = draw_result(BLACK, result_with(face=[det(p)]))
    assert color_at(out, 100, 125) == FACE.bones[-2].color == RED


def test_padding_follows_the_published_rule():
    pose = standing_body(x=150, y=20)
    pose[12] = (150, -30)   # head above the top edge: pad int(30 - 5) = 25
    pose[6] = (-500, 40)    # wrist far left: capped at 100
    pad = padding({"body": [det(pose)]}, 200, 300)
    assert pad == (25, 0, 100, 0)
    out = draw_result(BLACK, result_with(body=[det(pose)]), scores=False)
    assert out.shape == (200 + 25, 300 + 100, 3)
    # the whole drawing is shifted by (left, top)
    assert color_at(out, pose[7][0] + 100, pose[7][1] + 25) == RED


def test_nothing_detected_returns_an_unchanged_copy():
    img = np.random.default_rng(0).integers(0, 255, (50, 60, 3), dtype=np.uint8)
    out = draw_result(img, Result(height=50, width=60))
    np.testing.assert_array_equal(out, img)
    assert out is not img


def test_score_text_near_the_head():
    white = np.full_like(BLACK, 255)
    out = draw_result(white, result_with(body=[det(standing_body())]), scores=True)
    plain = draw_result(white, result_with(body=[det(standing_body())]), scores=False)
    diff = np.argwhere((out != plain).any(-1))
    assert len(diff) > 0
    x0, y1 = diff[:, 1].min(), diff[:, 0].max()
    assert 140 - 2 <= x0 and y1 <= 20 - 10 + 2  # text starts at head + (-10, -10), above that line
    assert (out[diff[:, 0], diff[:, 1]] < 255).all() and out[diff[:, 0], diff[:, 1]].min() == 0  # black text
