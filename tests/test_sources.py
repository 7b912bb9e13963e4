"""Image decoding: every Pillow mode becomes RGB, EXIF orientation is applied, bad files are named.

Many images: files, folders and glob patterns expand to sorted image lists; the background
reader keeps order, bounds memory and stops cleanly; `dope.py --image FOLDER 'PATTERN'` skips
unreadable files with a warning and exits 1.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dope.inputs.sources import ImageError, load_image


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


# ----------------------------------------------------------------------------- many images


def make_folder(root, names):
    """Files under root: .png/.jpg names get a decodable 6x8 image, 'broken' in the name garbage."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if "broken" in name:
            path.write_bytes(b"\x89PNG\r\n\x1a\n not really" * 4)
        elif name.endswith((".png", ".jpg", ".JPG")):
            Image.fromarray(np.full((6, 8, 3), 100, np.uint8)).save(path, format="PNG" if name.endswith(".png")
                                                                     else "JPEG")
        else:
            path.write_text("notes")
    return root


def test_folder_gives_its_images_sorted(tmp_path):
    from dope.inputs.sources import expand_images
    make_folder(tmp_path, ["b.png", "a.JPG", "c_broken.png", "notes.txt", "data.json", "clip.mp4",
                           "a.JPG_DOPE_v1_0_0.jpg", "a.JPG_DOPE_v1_0_0_visu3d.jpg", "x_y.jpg", "sub/d.png"])
    got = expand_images([tmp_path])
    # not the text, json or video; not sub-folders; not drawings of earlier runs; x_y.jpg is a photo
    assert got == [str(tmp_path / n) for n in ("a.JPG", "b.png", "c_broken.png", "x_y.jpg")]


def test_glob_patterns(tmp_path):
    from dope.inputs.sources import SourceError, expand_images
    make_folder(tmp_path, ["s1/f10.png", "s1/f2.png", "s1/notes.txt", "s2/f1.png", "s2/deep/f0.jpg"])
    assert expand_images([str(tmp_path / "s1" / "*.png")]) == [str(tmp_path / "s1" / n) for n in ("f10.png", "f2.png")]
    assert expand_images([str(tmp_path / "s1" / "*")]) == [str(tmp_path / "s1" / n) for n in ("f10.png", "f2.png")]
    assert expand_images([str(tmp_path / "s?" / "f1*.png")]) == [str(tmp_path / "s1" / "f10.png"),
                                                                 str(tmp_path / "s2" / "f1.png")]
    assert expand_images([str(tmp_path / "**" / "*.jpg")]) == [str(tmp_path / "s2" / "deep" / "f0.jpg")]
    assert expand_images([str(tmp_path / "**" / "f1*")]) == [str(tmp_path / "s1" / "f10.png"),
                                                             str(tmp_path / "s2" / "f1.png")]
    with pytest.raises(SourceError, match="no file matches"):  # patterns give files, not folders
        expand_images([str(tmp_path / "s*")])


def test_files_folders_and_patterns_mix_in_order_once(tmp_path):
    from dope.inputs.sources import expand_images
    make_folder(tmp_path, ["d/a.png", "d/b.png", "e/c.png", "named.dat"])
    got = expand_images([tmp_path / "e" / "c.png", tmp_path / "d", str(tmp_path / "*" / "c.png"),
                         tmp_path / "named.dat"])
    # an explicitly named file is taken whatever its extension; c.png comes once
    assert got == [str(tmp_path / "e" / "c.png"), str(tmp_path / "d" / "a.png"), str(tmp_path / "d" / "b.png"),
                   str(tmp_path / "named.dat")]


@pytest.mark.parametrize("spec,message", [
    ("missing.png", "image '.*missing.png' does not exist"),
    ("empty.png", "image '.*empty.png' is empty"),
    ("nothing_here", "folder '.*nothing_here' holds no images"),
    ("*.gif", "no file matches '.*gif'"),
    ("*.txt*", "no image matches"),
])
def test_expansion_errors_name_the_input(tmp_path, spec, message):
    from dope.inputs.sources import SourceError, expand_images
    make_folder(tmp_path, ["nothing_here/readme.txt", "readme.txt"])
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SourceError, match=message):
        expand_images([str(tmp_path / spec)])


def test_read_images_passes_errors_in_place(tmp_path):
    from dope.inputs.sources import Item, read_images
    make_folder(tmp_path, ["a.png", "broken.png"])
    array = np.zeros((3, 4, 3), np.uint8)
    pil = Image.fromarray(np.full((5, 6), 7, np.uint8))  # grey: converted to RGB
    got = list(read_images([tmp_path / "a.png", str(tmp_path / "broken.png"), array, pil]))
    assert [item for item, _ in got] == [Item(0, str(tmp_path / "a.png")), Item(1, str(tmp_path / "broken.png")),
                                         Item(2), Item(3)]
    assert got[0][1].shape == (6, 8, 3)
    assert isinstance(got[1][1], ImageError) and "broken.png" in str(got[1][1])
    assert got[2][1] is array
    assert got[3][1].shape == (5, 6, 3) and got[3][1].max() == 7


def test_prefetch_keeps_order_bounds_memory_and_stops():
    import threading
    import time
    from dope.inputs.sources import prefetch
    produced = []
    closed = threading.Event()

    def numbers():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    reader = prefetch(numbers(), size=3)
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    time.sleep(0.3)
    assert len(produced) <= 5 + 3 + 1  # at most `size` ahead (plus the one waiting to be queued)
    reader.close()
    assert closed.wait(2)  # the source iterator was closed, in the reading thread
    assert not [t for t in threading.enumerate() if t.name == "dope-prefetch"]
    assert list(prefetch(iter(range(10)), size=2)) == list(range(10))


def test_prefetch_raises_the_readers_error_in_order():
    from dope.inputs.sources import prefetch

    def failing():
        yield 1
        yield 2
        raise RuntimeError("decoder broke")

    got = []
    with pytest.raises(RuntimeError, match="decoder broke"):
        for x in prefetch(failing(), size=4):
            got.append(x)
    assert got == [1, 2]


def test_cli_folder_and_pattern_skip_unreadable_and_exit_1(checkpoint_path, tmp_path):
    import json
    import subprocess
    import sys
    from conftest import ROOT
    make_folder(tmp_path / "shots", ["b.png", "a.jpg", "a_broken.png", "notes.txt"])
    make_folder(tmp_path / "more", ["c.png", "z.txt"])
    out = tmp_path / "all.jsonl"
    r = subprocess.run([sys.executable, f"{ROOT}/dope.py", "--model", checkpoint_path, "--image", tmp_path / "shots",
                        str(tmp_path / "more" / "*"), "--json", out, "--max-proposals", "10"],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    warned = [line for line in r.stderr.splitlines() if "a_broken.png" in line]
    assert len(warned) == 1 and "skipped" in warned[0] and "cannot decode" in warned[0]  # one line
    assert "1 of 4 images" in r.stderr  # and a summary at the end
    records = [json.loads(line) for line in out.read_text().splitlines()]
    # the unreadable image keeps its place as an error record (issue 21)
    assert [d["image"] for d in records] == [str(tmp_path / "shots" / "a.jpg"), str(tmp_path / "shots" / "a_broken.png"),
                                             str(tmp_path / "shots" / "b.png"), str(tmp_path / "more" / "c.png")]
    assert set(records[1]) == {"image", "error"} and "cannot decode" in records[1]["error"]
    records = records[:1] + records[2:]
    assert all((d["height"], d["width"]) == (6, 8) for d in records)
    drawings = sorted(p.name for p in tmp_path.glob("*/*_synthetic_seed0.jpg"))
    assert drawings == ["a.jpg_synthetic_seed0.jpg", "b.png_synthetic_seed0.jpg", "c.png_synthetic_seed0.jpg"]
