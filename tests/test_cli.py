"""The command line, run as users run it: `python dope.py ...` in a subprocess.

Parity: the JSON it writes matches the published pipeline's outputs (fixtures/network_seed0_*).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import FIXTURES, ROOT
from parity import assert_result_close


def dope(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})})


def expected(postprocess: str) -> dict:
    with gzip.open(os.path.join(FIXTURES, f"network_seed0_{postprocess}.json.gz"), "rt") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def image_copy(tmp_path_factory, fixture_image):
    folder = tmp_path_factory.mktemp("images")
    path = folder / "synthetic_480x640.png"
    shutil.copy(fixture_image, path)
    return path


def test_ppi_parity_json_and_overlay(checkpoint_path, image_copy, tmp_path):
    out = tmp_path / "out.json"
    r = dope("--model", checkpoint_path, "--image", image_copy, "--json", out)
    assert r.returncode == 0, r.stderr
    got = json.loads(out.read_text())
    assert (got["height"], got["width"]) == (480, 640)
    assert_result_close(got, expected("ppi"))
    # the drawing beside the image, named IMAGE_MODEL.jpg, same size (nothing outside: no padding)
    drawing = image_copy.parent / "synthetic_480x640.png_synthetic_seed0.jpg"
    img = cv2.imread(str(drawing))
    assert img is not None and img.shape[2] == 3 and img.shape[0] >= 480 and img.shape[1] >= 640
    source = cv2.imread(str(image_copy))
    top = (img.shape[0] - 480)  # padding is at most what the joints need; compare a central crop
    assert np.abs(img[top:top + 480, :640].astype(int) - source[:480, :640]).mean() > 1  # something drawn


def test_nms_parity_and_output_dir(checkpoint_path, image_copy, tmp_path):
    out = tmp_path / "out.json"
    outdir = tmp_path / "drawings"
    r = dope("--model", checkpoint_path, "--image", image_copy, "--json", out, "--postprocess", "nms",
             "--output-dir", outdir, "-q")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    assert_result_close(json.loads(out.read_text()), expected("nms"))
    assert (outdir / "synthetic_480x640.png_synthetic_seed0_nms.jpg").is_file()  # settings in the name (issue 21)


def test_no_people_gives_empty_lists(checkpoint_path, tmp_path):
    # A tiny flat image; with min_score 1.0 NMS keeps nothing: empty lists, not a crash.
    img = tmp_path / "flat.png"
    cv2.imwrite(str(img), np.full((40, 50, 3), 127, np.uint8))
    out = tmp_path / "o.json"
    r = dope("--model", checkpoint_path, "--image", img, "--json", out, "--postprocess", "nms",
             "--min-score", "1.0", "--no-overlay")
    assert r.returncode == 0, r.stderr
    got = json.loads(out.read_text())
    assert got["body"] == [] and got["hand"] == [] and got["face"] == []
    assert not (tmp_path / "flat.png_synthetic_seed0.jpg").exists()


def one_line_error(r, *fragments):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if "error" in line.lower()]
    assert len(lines) == 1, r.stderr  # one line says what is wrong (progress/info lines may precede it)
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def test_unknown_model_name_says_where_it_looked(tmp_path, fixture_image):
    r = dope("--model", "DOPE_v1_0_0", "--image", fixture_image, "--no-download",
             env={"DOPE_MODELS": str(tmp_path)})
    if "unrecognized arguments" in r.stderr:  # before the download feature existed
        r = dope("--model", "DOPE_v1_0_0", "--image", fixture_image, env={"DOPE_MODELS": str(tmp_path)})
    one_line_error(r, str(tmp_path), "DOPE_v1_0_0.pth.tgz",
                   "http://download.europe.naverlabs.com/ComputerVision/DOPE_models/DOPE_v1_0_0.pth.tgz",
                   "CC BY-NC-SA 4.0")


def test_wrong_model_name(tmp_path, fixture_image):
    r = dope("--model", "DOPE_v9", "--image", fixture_image, env={"DOPE_MODELS": str(tmp_path)})
    one_line_error(r, "DOPE_v9", "not found", "DOPE_v1_0_0")


def test_missing_checkpoint_path(fixture_image):
    one_line_error(dope("--model", "/nonexistent/model.pth", "--image", fixture_image), "/nonexistent/model.pth")


def test_model_name_resolves_in_models_folder(tmp_path, checkpoint_path, image_copy):
    os.symlink(checkpoint_path, tmp_path / "Mine.pth")
    out = tmp_path / "o.json"
    r = dope("--model", "Mine", "--image", image_copy, "--json", out, "--no-overlay", "--postprocess", "nms",
             "--min-score", "1.0", env={"DOPE_MODELS": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["width"] == 640


@pytest.mark.parametrize("name,content,message", [
    ("missing.jpg", None, "does not exist"),
    ("empty.jpg", b"", "is empty"),
    ("garbage.jpg", b"GIF89a not really an image" * 20, "cannot decode"),
])
def test_bad_images_are_named(tmp_path, checkpoint_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    r = dope("--model", checkpoint_path, "--image", path)
    one_line_error(r, name, message)


@pytest.mark.parametrize("content,message", [
    (b"\x80\x02not a zip nor a pickle", "not a readable checkpoint"),
    (b"", "is empty"),
])
def test_corrupt_checkpoint(tmp_path, fixture_image, content, message):
    ckpt = tmp_path / "broken.pth"
    ckpt.write_bytes(content)
    one_line_error(dope("--model", ckpt, "--image", fixture_image), "broken.pth", message)


def test_json_never_overwrites_an_input(tmp_path, checkpoint_path, fixture_image):
    img = tmp_path / "a.png"
    shutil.copy(fixture_image, img)
    before = img.read_bytes()
    one_line_error(dope("--model", checkpoint_path, "--image", img, "--json", img), "overwrite")
    assert img.read_bytes() == before


def test_help_mentions_the_main_options():
    r = dope("--help")
    assert r.returncode == 0
    for flag in ("--model", "--image", "--postprocess", "--json", "--output-dir", "--device", "--precision",
                 "--max-proposals", "--min-score"):
        assert flag in r.stdout


def test_the_library_does_not_import_the_command_line_yet_offers_its_names():
    # `import dope` for the DOPE class leaves dope.cli (argparse, the writers' options: ~30 ms)
    # unimported; dope.main, dope.build_parser and the rest still come from it when asked for
    code = ("import sys, dope\n"
            "print('cli at import:', 'dope.cli' in sys.modules)\n"
            "from dope import cli\n"
            "print('same:', all(getattr(dope, n) is getattr(cli, n) for n in dope.CLI_NAMES))\n"
            "ns = {}\n"
            "exec('from dope import *', ns)\n"
            "print('star:', ns['main'] is cli.main, ns['build_parser'] is cli.build_parser)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cli at import: False" in out.stdout
    assert "same: True" in out.stdout
    assert "star: True True" in out.stdout
