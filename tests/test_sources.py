"""Image decoding: every Pillow mode becomes RGB, EXIF orientation is applied, bad files are named."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sources import ImageError, load_image


def test_every_mode_becomes_rgb(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = (200, 30, 60)
    base = Image.fromarray(rgb)
    cases = {
        "L.png": base.convert("L"),
        "LA.png": base.convert("LA"),
        "P.png": base.convert("P"),
        "RGBA.png": base.convert("RGBA"),
        "CMYK.jpg": base.convert("CMYK"),
        "I16.png": Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257)),
        "RGB.bmp": base,
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
        out = load_image(tmp_path / name)
        assert out.shape == (6, 8, 3) and out.dtype == np.uint8, name
        # left half brighter than the (black) right half, whatever the mode
        assert out[:, :4].mean() > 40 and out[:, 4:].mean() < 10, name
    assert Image.open(tmp_path / "I16.png").mode.startswith("I")
    np.testing.assert_array_equal(load_image(tmp_path / "RGB.bmp"), rgb)


def test_exif_orientation_is_applied(tmp_path):
    rgb = np.zeros((4, 10, 3), np.uint8)
    rgb[0, 0] = 255  # a marker in the top-left corner
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90° clockwise
    im.save(tmp_path / "turned.png", exif=exif)
    out = load_image(tmp_path / "turned.png")
    assert out.shape == (10, 4, 3)
    assert out[0, -1].max() == 255  # the top-left marker is now top-right


@pytest.mark.parametrize("content,message", [(None, "does not exist"), (b"", "is empty"),
                                             (b"\x89PNG broken" * 5, "cannot decode")])
def test_bad_files_are_named(tmp_path, content, message):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as e:
        load_image(path)
    assert "x.png" in str(e.value)
