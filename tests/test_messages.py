"""What a new user reads (issue 32): usage errors in one line, messages that name the real cause."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

DOPE = os.path.join(ROOT, "dope.py")


def dope(*args, cwd=None):
    return subprocess.run([sys.executable, DOPE, *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.mark.parametrize("args", [["--image", "x.jpg", "--postprocess", "foo"], ["--bogus"],
                                  ["--image", "x.jpg", "--max-people", "-3"], ["--video"],
                                  ["--image", "a.jpg", "--video", "b.mp4"]])
def test_usage_errors_are_one_line_with_a_pointer_to_help(args):
    p = dope(*args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dope.py: error: ") and lines[0].endswith("(see dope.py --help)")
    assert "usage:" not in p.stderr and "Traceback" not in p.stderr


def test_frame_options_with_listed_images_say_so(fixture_image, tmp_path):
    p = dope("--image", fixture_image, fixture_image, "--every", "2", "--json", tmp_path / "o.jsonl")
    assert p.returncode == 1
    line, = p.stderr.strip().splitlines()
    assert "--every selects frames of a video, and --image gives images" in line
    assert "list the images with --image" not in line


def test_a_text_file_as_the_image_fails_before_the_model_loads(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture\n")
    # a model that does not exist: reaching it would fail with another message
    p = dope("--model", tmp_path / "missing.pth", "--image", text, "--json", tmp_path / "o.json")
    assert p.returncode == 1
    line, = p.stderr.strip().splitlines()
    assert "cannot decode image" in line and "notes.jpg" in line and "missing.pth" not in line
    assert not (tmp_path / "o.json").exists()
