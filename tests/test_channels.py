"""The image's channel order is one explicit argument, "rgb" by default, everywhere: the detector,
its stream and the drawing (issue 31: `detector(cv2.imread(p))` ran quietly on swapped channels)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dope.detector import DOPE
from dope.drawing.draw2d import draw_result
from dope.errors import DopeError


@pytest.fixture(scope="module")
def detectors(checkpoint_path):
    return (DOPE(checkpoint_path, device="cpu", max_proposals=100),
            DOPE(checkpoint_path, device="cpu", max_proposals=100, channels="bgr"))


def same(a, b) -> bool:
    return all(np.array_equal(a[p].scores, b[p].scores) and np.array_equal(a[p].pose2d, b[p].pose2d)
               for p in ("body", "hand", "face"))


def test_a_bgr_array_with_the_bgr_setting_gives_the_rgb_images_detections(detectors, fixture_image):
    rgb_det, bgr_det = detectors
    rgb = np.asarray(Image.open(fixture_image).convert("RGB"))
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # as cv2.imread gives it
    want = rgb_det(rgb)
    assert len(want.body) > 0
    assert same(bgr_det(bgr), want)
    assert same(bgr_det(fixture_image), want)  # a path is read in its own order
    assert not same(rgb_det(bgr), want)  # the swap the setting exists for does change the detections


def test_the_stream_gives_frames_back_in_the_detectors_order(detectors, fixture_image):
    rgb_det, bgr_det = detectors
    rgb = np.asarray(Image.open(fixture_image).convert("RGB"))
    (_, image_rgb, r1), = list(rgb_det.stream([rgb]))
    (_, image_bgr, r2), = list(bgr_det.stream([np.ascontiguousarray(rgb[:, :, ::-1])]))
    (_, from_file, r3), = list(bgr_det.stream(fixture_image))
    assert np.array_equal(image_rgb, rgb) and np.array_equal(image_bgr, rgb[:, :, ::-1])
    assert np.array_equal(from_file, rgb[:, :, ::-1])  # read as RGB, given back in the detector's order
    assert same(r1, r2) and same(r1, r3)


def test_the_drawing_takes_the_same_setting(detectors, fixture_image):
    rgb_det, _ = detectors
    rgb = np.asarray(Image.open(fixture_image).convert("RGB"))
    r = rgb_det(rgb)
    drawn_rgb = draw_result(rgb, r)  # rgb by default, as the detector
    drawn_bgr = draw_result(np.ascontiguousarray(rgb[:, :, ::-1]), r, channels="bgr")
    assert np.array_equal(drawn_rgb, drawn_bgr[:, :, ::-1])
    assert not np.array_equal(drawn_rgb, draw_result(rgb, r, channels="bgr"))  # the colours follow the order
    with pytest.raises(ValueError, match="channels"):
        draw_result(rgb, r, channels="RGB ")


def test_an_unknown_order_is_refused(checkpoint_path):
    with pytest.raises(DopeError, match="channels must be 'rgb' or 'bgr'"):
        DOPE(checkpoint_path, device="cpu", channels="brg")
