"""The JSON Lines of a corpus of videos (outputs/corpus_json.py, corpus.py): whole videos only, in
input order; --resume with --json over videos after a kill, in one process (test_cluster.py runs
the same on Ray). Videos are tiny mp4 files (tests/test_video.py) run with the synthetic checkpoint."""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, interrupted, wait_killed
from test_video import write_clip
from dope.errors import DopeError
from dope.inputs.sources import Item
from benchmarks.scenes import make_scene
from dope.outputs.corpus_json import CorpusJson, read_finished_videos
from dope.outputs.writers import partial_path
from dope.stream import Frame

FAST = ["--max-proposals", "20"]
TIMEOUT_S = 600
FRAMES = {"a.mp4": 2, "c.mp4": 3, "d.mp4": 2}  # and b_broken.mp4, which does not open


def write_corpus(folder) -> list[str]:
    """folder/a.mp4, b_broken.mp4 (not a video), c.mp4, d.mp4: the videos in input order."""
    os.makedirs(folder, exist_ok=True)
    for name, n in FRAMES.items():
        write_clip(os.path.join(folder, name), levels=tuple(30 + 40 * i for i in range(n)))
    with open(os.path.join(folder, "b_broken.mp4"), "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 200)
    return [os.path.join(folder, n) for n in ("a.mp4", "b_broken.mp4", "c.mp4", "d.mp4")]


def same_npz(a, b) -> bool:
    with np.load(a) as x, np.load(b) as y:
        return sorted(x.files) == sorted(y.files) and all(
            np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f") for k in x.files)


def dope(*args, cwd, wait=True, env=None):
    cmd = [sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def killed_at_line(args, *, cwd, line: int, env=None) -> None:
    """Run the command, SIGKILLed (by itself, tests.conftest.interrupted) right after its `line`th
    JSON Lines line is written: a kill at a chosen point, whatever the machine's speed."""
    wait_killed(dope(*args, cwd=cwd, wait=False, env=interrupted("line", line, "KILL", env=env)), signal.SIGKILL)


# ------------------------------------------------------------------------------ the writer alone


def frames(video: str, n: int, seed: int = 0) -> list[Frame]:
    scene = make_scene(num_people=2, frames=40, fps=10.0, width=320, height=240, seed=seed)
    return [Frame(Item(t, video, t, t / 10.0), None, r) for t, r in enumerate(scene.results[:n])]


def records(path) -> list[tuple[str, int]]:
    return [(r["video"], r["frame"]) for r in map(json.loads, open(path, encoding="utf-8"))]


def test_blocks_are_whole_videos_in_input_order(tmp_path):
    out = str(tmp_path / "all.jsonl")
    w = CorpusJson(out, ["a", "b", "c", "x"], model="m")
    for video, n in (("c", 3), ("x", 2), ("a", 2)):  # as Ray may bring them back
        w.begin(video)
        for f in frames(video, n):
            w.write(f)
        w.drop(video) if video == "x" else w.finish(video)  # x failed midway: its records go
    w.add("b", [json.dumps({"video": "b", "frame": 0, "model": "m"}) + "\n"])
    w.close()
    assert records(out) == [("a", 0), ("a", 1), ("b", 0), ("c", 0), ("c", 1), ("c", 2)]
    assert all(json.loads(line)["model"] == "m" for line in open(out))
    assert os.listdir(tmp_path) == ["all.jsonl"]  # no staging file left


def test_resume_keeps_finished_videos_and_drops_one_cut_by_a_kill(tmp_path):
    out = str(tmp_path / "all.jsonl")
    order = ["a", "b", "c"]
    w = CorpusJson(out, order, resume=True, model="m")
    for video, n in (("a", 2), ("b", 3)):
        w.begin(video)
        for f in frames(video, n):
            w.write(f)
        if video == "a":
            w.finish(video)
    # killed in the middle of b (and of a line): what the partial file holds now
    killed = open(partial_path(out), "rb").read() + b'{"video": "b", "fra'
    w.abort()
    with open(partial_path(out), "wb") as f:
        f.write(killed)
    assert not os.path.exists(out)
    finished = read_finished_videos(out, made={"model": "m"})
    assert list(finished) == ["a"] and finished["a"].records == 2
    with pytest.raises(DopeError, match="model 'm', not 'other'"):
        read_finished_videos(out, made={"model": "other"})
    # the next run keeps a (read from the partial file it writes anew), does b and c
    w = CorpusJson(out, order, kept=finished, resume=True, model="m")
    for video, n in (("c", 1), ("b", 3)):
        w.add(video, [json.dumps({"video": video, "frame": i, "model": "m"}) + "\n" for i in range(n)])
    w.close()
    assert records(out) == [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("b", 2), ("c", 0)]
    assert os.listdir(tmp_path) == ["all.jsonl"]  # no finished lines, no partial or hidden file
    assert all("finished" not in line for line in open(out))
    assert list(read_finished_videos(out)) == order  # a finished file: every video in it is whole


def test_resume_refuses_a_file_of_images(tmp_path):
    out = tmp_path / "images.jsonl"
    out.write_text(json.dumps({"image": "x.jpg", "width": 4, "height": 4}) + "\n")
    with pytest.raises(DopeError, match="line 1 is not a video frame's record"):
        read_finished_videos(str(out))


# -------------------------------------------------------------------------- the command, resumed


@pytest.fixture(scope="module")
def reference(tmp_path_factory, checkpoint_path):
    """An uninterrupted corpus run: JSON Lines and npz exports, the reference of the resumed ones."""
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root / "videos")
    p = dope("--model", checkpoint_path, "--video", "videos/", "--json", "ref.jsonl", "--export", "ref/",
             "--export-format", "npz", "--no-overlay", *FAST, "-q", cwd=root)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines() == [
        "skipped: cannot open video 'videos/b_broken.mp4': not a video OpenCV reads (mp4, avi, mov, mkv...)",
        "1 of 4 videos could not be processed (named above); the others are done"]
    assert records(root / "ref.jsonl") == [(f"videos/{v}", i) for v, n in FRAMES.items() for i in range(n)]
    return root


def test_resume_json_over_videos_after_a_kill(reference, checkpoint_path, tmp_path):
    shutil.copytree(reference / "videos", tmp_path / "videos")
    args = ["--model", checkpoint_path, "--video", "videos/", "--json", "b.jsonl", "--export", "out/",
            "--export-format", "npz", "--no-overlay", *FAST, "--resume"]
    # a's two records and its `finished` line, then c's first (b does not open): killed inside c
    killed_at_line([*args, "-q"], cwd=tmp_path, line=4)
    assert (tmp_path / "b.partial.jsonl").read_bytes().count(b"\n") == 4
    assert not (tmp_path / "b.jsonl").exists() and (tmp_path / "out" / "a.npz").exists()
    stamp = os.stat(tmp_path / "out" / "a.npz").st_mtime_ns
    p = dope(*args, "-v", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert "resuming: 1 of 4 videos already done" in p.stderr
    assert (tmp_path / "b.jsonl").read_bytes() == (reference / "ref.jsonl").read_bytes()
    assert os.stat(tmp_path / "out" / "a.npz").st_mtime_ns == stamp  # not done again
    for name in FRAMES:
        assert same_npz(tmp_path / "out" / name.replace(".mp4", ".npz"), reference / "ref" / name.replace(".mp4", ".npz"))
    assert sorted(os.listdir(tmp_path)) == ["b.jsonl", "out", "videos"]  # no partial or hidden file left
    # done: a third run does nothing; a video whose export went is done again, its records replaced
    os.remove(tmp_path / "out" / "c.npz")
    p = dope(*args, "-v", cwd=tmp_path)
    assert p.returncode == 1 and "resuming: 2 of 4 videos already done" in p.stderr, p.stderr
    assert (tmp_path / "b.jsonl").read_bytes() == (reference / "ref.jsonl").read_bytes()
    assert same_npz(tmp_path / "out" / "c.npz", reference / "ref" / "c.npz")
    assert not glob.glob(str(tmp_path / "out" / ".*"))
