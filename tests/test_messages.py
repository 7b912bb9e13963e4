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


def test_a_start_past_the_end_says_so_with_the_length(checkpoint_path, tmp_path):
    from test_video import write_clip
    clip = write_clip(tmp_path / "clip.mp4")  # 5 frames at 10 fps: 0.5 s
    p = dope("--model", checkpoint_path, "--video", clip, "--start", "10", "--json", tmp_path / "o.jsonl")
    assert p.returncode == 1
    line, = p.stderr.strip().splitlines()
    assert "--start 10 s is past the end" in line and "0.50 s long" in line and "damaged" not in line


def test_a_time_window_over_several_videos_is_not_a_broken_file(checkpoint_path, tmp_path):
    from test_video import write_clip
    (tmp_path / "videos").mkdir()
    for name in ("a", "b"):
        write_clip(tmp_path / "videos" / f"{name}.mp4", levels=tuple(range(20, 220, 10)))  # 20 frames, 2 s
    p = dope("--model", checkpoint_path, "--video", tmp_path / "videos", "--end", "0.5", "--json",
             tmp_path / "o.jsonl", "--no-overlay", "--max-proposals", "20", "-q")
    assert p.returncode == 0, p.stderr
    assert "truncated" not in p.stderr and "damaged" not in p.stderr and "could not be processed" not in p.stderr
    import json
    frames = [json.loads(line)["frame"] for line in open(tmp_path / "o.jsonl")]
    assert frames == [0, 1, 2, 3, 4] * 2


def test_export_lines_count_the_people_in_each_file_and_replayed_rates_are_round(tmp_path):
    import numpy as np
    from benchmarks.scenes import make_scene
    from dope.inputs.sources import Item
    from dope.outputs.frames import JsonFrames
    from dope.stream import Frame
    scene = make_scene(num_people=3, frames=40, fps=25.0, width=640, height=480, seed=1)
    w = JsonFrames(str(tmp_path / "clip.jsonl"), model="m", postprocess="ppi")
    for t, r in enumerate(scene.results):
        w.write(Frame(Item(t, "clip.mp4", t, t / 25.0), None, r))
    w.close()
    p = dope("--from-json", tmp_path / "clip.jsonl", "--fov", "70", "--export", tmp_path / "p.bvh", tmp_path / "p.npz")
    assert p.returncode == 0, p.stderr
    bvh = [line for line in p.stderr.splitlines() if line.startswith("wrote") and ".bvh" in line]
    assert len(bvh) >= 2 and all("(1 person," in line for line in bvh), bvh
    with np.load(tmp_path / "p.npz") as z:
        assert float(z["fps"]) == 25.0


def test_progress_into_a_pipe_is_log_lines(checkpoint_path, fixture_image, tmp_path):
    import shutil
    for i in range(3):
        shutil.copy(fixture_image, tmp_path / f"im{i}.png")
    p = dope("--model", checkpoint_path, "--image", tmp_path, "--json", tmp_path / "o.jsonl", "--no-overlay",
             "--max-proposals", "20")
    assert p.returncode == 0, p.stderr
    assert "\r" not in p.stderr and "\x1b" not in p.stderr  # no bar's carriage returns or cursor moves
    assert "wrote" in p.stderr


def test_log_progress_says_where_it_is(caplog, monkeypatch):
    import logging
    from dope import progress
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="dope"):
        with progress.progress_bar(total=4, unit="frame") as bar:  # not a terminal under pytest
            for _ in range(4):
                bar.update()
    assert [r.getMessage() for r in caplog.records] == [f"{i}/4 ({25 * i}%) frames" for i in (1, 2, 3, 4)]


def test_one_export_that_cannot_be_written_costs_none_of_the_others(tmp_path):
    from benchmarks.exports import synthetic_frames
    from dope.outputs.frames import JsonFrames
    w = JsonFrames(str(tmp_path / "crowd.jsonl"), model="m", postprocess="ppi")
    for f in synthetic_frames(3, 50):  # 50 people: more markers than a C3D file can name
        w.write(f)
    w.close()
    outs = [tmp_path / f"people.{ext}" for ext in ("npz", "c3d", "glb", "bvh")]
    p = dope("--from-json", tmp_path / "crowd.jsonl", "--fov", "70", "--export", *outs)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if "not written" in line]
    assert len(errors) == 1 and "people.c3d" in errors[0] and "cannot name" in errors[0], p.stderr
    assert (tmp_path / "people.npz").is_file() and (tmp_path / "people.glb").is_file()
    assert list(tmp_path.glob("people.*.bvh")) and not (tmp_path / "people.c3d").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no staging file left


def test_records_replayed_over_pixels_they_were_not_made_from_are_refused(checkpoint_path, fixture_image, tmp_path):
    from test_video import write_clip
    clip = write_clip(tmp_path / "clip.mp4")
    other = write_clip(tmp_path / "other.mp4", size=(48, 64))
    assert dope("--model", checkpoint_path, "--video", clip, "--json", tmp_path / "clip.jsonl", "--no-overlay",
                "--max-proposals", "20").returncode == 0
    assert dope("--model", checkpoint_path, "--image", fixture_image, "--json", tmp_path / "im.jsonl", "--no-overlay",
                "--max-proposals", "20").returncode == 0
    (tmp_path / "unrelated.png").write_bytes(open(fixture_image, "rb").read())
    cases = [("clip.jsonl", ["--image", fixture_image], "holds the frames of a video"),
             ("im.jsonl", ["--video", clip], "holds images"),
             ("clip.jsonl", ["--video", other], "64x48"),
             ("im.jsonl", ["--image", tmp_path / "unrelated.png"], "none of the records")]
    for saved, pixels, says in cases:
        out = tmp_path / "out"
        p = dope("--from-json", tmp_path / saved, *pixels, "--output-dir", out, "--json", tmp_path / "again.jsonl")
        assert p.returncode == 1, (saved, pixels, p.stderr)
        line, = p.stderr.strip().splitlines()
        assert says in line, line
        assert not out.exists() and not (tmp_path / "again.jsonl").exists()
    ok = dope("--from-json", tmp_path / "clip.jsonl", "--video", clip, "--output-dir", tmp_path / "fine")
    assert ok.returncode == 0, ok.stderr


def test_verbose_names_the_renderer_once(checkpoint_path, fixture_image, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    p = subprocess.run([sys.executable, DOPE, "--model", checkpoint_path, "--image", fixture_image, "--visu3d",
                        "--output-dir", tmp_path, "--max-proposals", "20", "-v"], capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert sum(line.startswith("3D view: ") for line in p.stderr.splitlines()) == 1, p.stderr


def test_verbose_stage_times_add_up_to_the_wall_time(checkpoint_path, tmp_path):
    import re
    import time
    from test_video import write_clip
    clip = write_clip(tmp_path / "clip.mp4")
    t = time.monotonic()
    p = dope("--model", checkpoint_path, "--video", clip, "--json", tmp_path / "o.jsonl", "--fov", "60",
             "--max-proposals", "20", "-v")
    outside = time.monotonic() - t
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stderr.splitlines() if x.startswith("time: "))
    parts = dict((k.strip(), float(v)) for k, v in re.findall(r"([a-zA-Z][a-zA-Z0-9 -]*?) (\d+\.\d+) s", line))
    wall = parts.pop("wall")
    for stage in ("start-up", "loading the model", "reading", "network", "post-processing", "tracking", "smoothing", "camera space",
                  "JsonFrames", "closing outputs"):
        assert stage in parts, (stage, line)
    assert abs(sum(parts.values()) - wall) <= 0.01 * len(parts) + 0.02, line  # the 2-decimal rounding of each
    assert parts["start-up"] > 0.2 and wall <= outside  # the process's own start counts


@pytest.mark.parametrize("first, then, names", [
    (["--max-proposals", "20"], ["--max-proposals", "30"], "--max-proposals 20, and this run has --max-proposals 30"),
    (["--max-proposals", "20"], ["--max-proposals", "20", "--postprocess", "nms"], "--postprocess ppi"),
    (["--max-proposals", "20"], ["--max-proposals", "20", "--min-score", "0.5"], "no --min-score, and this run has "
                                                                                  "--min-score 0.5"),
    (["--max-proposals", "20", "--parts", "body"], ["--max-proposals", "20"], "--parts body"),
    (["--max-proposals", "20", "--fov", "60"], ["--max-proposals", "20", "--fov", "70"], "--fov 60"),
])
def test_resume_refuses_records_made_with_other_settings(checkpoint_path, fixture_image, tmp_path, first, then, names):
    import shutil
    for i in range(3):
        shutil.copy(fixture_image, tmp_path / f"im{i}.png")
    out = tmp_path / "o.jsonl"
    some = [tmp_path / "im0.png", tmp_path / "im1.png"]
    base = ["--model", checkpoint_path, "--json", out, "--no-overlay"]
    assert dope(*base, "--image", *some, *first).returncode == 0
    before = out.read_bytes()
    p = dope(*base, "--image", tmp_path, "--resume", *then)
    assert p.returncode == 1, p.stderr
    line, = p.stderr.strip().splitlines()
    assert names in line and "resume with the same options" in line, line
    assert out.read_bytes() == before  # nothing of the user's lost
    again = dope(*base, "--image", tmp_path, "--resume", *first)
    assert again.returncode == 0, again.stderr
    assert "2 of 3 images already done" in again.stderr
    assert len(out.read_text().splitlines()) == 3


def test_resume_over_videos_refuses_other_settings(checkpoint_path, tmp_path):
    from test_video import write_clip
    (tmp_path / "videos").mkdir()
    for name in ("a", "b"):
        write_clip(tmp_path / "videos" / f"{name}.mp4")
    out = tmp_path / "o.jsonl"
    base = ["--model", checkpoint_path, "--video", tmp_path / "videos", "--json", out, "--no-overlay",
            "--max-proposals", "20", "-q"]
    assert dope(*base, "--smooth", "online").returncode == 0
    p = dope(*base, "--resume", "--smooth", "offline")
    assert p.returncode == 1
    line, = p.stderr.strip().splitlines()
    assert "--smooth online, and this run has --smooth offline" in line, line
    assert dope(*base, "--resume", "--smooth", "online").returncode == 0


def test_replayed_records_say_the_settings_of_both_runs(checkpoint_path, fixture_image, tmp_path):
    import json
    out = tmp_path / "o.jsonl"
    assert dope("--model", checkpoint_path, "--image", fixture_image, fixture_image, "--json", out, "--no-overlay",
                "--max-proposals", "20").returncode == 0
    assert json.loads(out.read_text().splitlines()[0])["settings"] == {"max_proposals": 20}
    again = tmp_path / "again.jsonl"
    assert dope("--from-json", out, "--min-score", "0.5", "--json", again).returncode == 0
    assert json.loads(again.read_text().splitlines()[0])["settings"] == {"max_proposals": 20, "min_score": 0.5}


def test_c3d_knows_early_when_its_markers_cannot_be_named():
    from benchmarks.exports import synthetic_frames
    from dope.exports.c3dfile import c3d_bytes, markers_refused
    from dope.exports.people import ClipBuilder, ExportError
    from dope.motion.camera import place
    verdicts = []
    for people in (1, 10, 30, 36, 40, 60):
        builder = ClipBuilder()
        for f in place(synthetic_frames(2, people), fov=70):
            builder.add(f)
        early = markers_refused(builder.seen)
        try:
            c3d_bytes(builder.build())
            written = True
        except ExportError:
            written = False
        assert not (early and written), people  # an early refusal is never wrong
        verdicts.append((people, bool(early), written))
    assert verdicts[0][2] and verdicts[-1][1], verdicts  # one person fits; sixty are refused early


def test_c3d_frames_beyond_its_limit_are_refused_before_the_model_loads(tmp_path):
    from dope.config import RunConfig
    from dope.errors import DopeError
    from dope.pipeline import _check_export_limits
    config = RunConfig(video="v.mp4", export=[str(tmp_path / "p.c3d"), str(tmp_path / "p.npz")])
    _check_export_limits(config, 65535)
    with pytest.raises(DopeError, match="C3D holds at most 65535 frames and this run has 70000"):
        _check_export_limits(config, 70000)


def test_progress_with_filled_frames_never_passes_its_total(checkpoint_path, tmp_path):
    import re
    from test_video import write_clip
    clip = write_clip(tmp_path / "clip.mp4", levels=tuple(range(20, 220, 20)))  # 10 frames
    p = dope("--model", checkpoint_path, "--video", clip, "--every", "3", "--fill-skipped", "--json",
             tmp_path / "o.jsonl", "--no-overlay", "--max-proposals", "20")
    assert p.returncode == 0, p.stderr
    counts = [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+) \(\d+%\)", p.stderr)]
    assert counts and all(a <= b for a, b in counts) and counts[-1][0] == counts[-1][1], p.stderr


def test_several_images_say_where_their_drawings_went(checkpoint_path, fixture_image, tmp_path):
    import shutil
    for i in range(3):
        shutil.copy(fixture_image, tmp_path / f"im{i}.png")
    p = dope("--model", checkpoint_path, "--image", tmp_path, "--output-dir", tmp_path / "out", "--max-proposals", "20")
    assert p.returncode == 0, p.stderr
    line, = [x for x in p.stderr.splitlines() if x.startswith("wrote ")]
    assert line.startswith(f"wrote 3 drawings in {tmp_path / 'out'}"), line
    assert len(list((tmp_path / "out").glob("*.jpg"))) == 3


def test_every_output_makes_its_missing_folder(checkpoint_path, fixture_image, tmp_path):
    outs = {"--json": tmp_path / "a" / "o.json", "--html": tmp_path / "b" / "o.html",
            "--export": tmp_path / "c" / "o.npz", "--output-dir": tmp_path / "d" / "e"}
    p = dope("--model", checkpoint_path, "--image", fixture_image, "--fov", "60", "--max-proposals", "20",
             *[x for option, path in outs.items() for x in (option, path)])
    assert p.returncode == 0, p.stderr
    assert all(path.exists() for path in outs.values())


def test_records_of_more_frames_or_of_another_image_size_are_refused(checkpoint_path, fixture_image, tmp_path):
    from PIL import Image
    from test_video import write_clip
    long = write_clip(tmp_path / "long.mp4", levels=tuple(range(20, 220, 10)))  # 20 frames
    short = write_clip(tmp_path / "short.mp4")  # 5 frames, the same size
    base = ["--model", checkpoint_path, "--no-overlay", "--max-proposals", "20"]
    assert dope(*base, "--video", long, "--json", tmp_path / "long.jsonl").returncode == 0
    (tmp_path / "shots").mkdir()
    Image.open(fixture_image).save(tmp_path / "shots" / "a.png")
    assert dope(*base, "--image", tmp_path / "shots" / "a.png", "--json", tmp_path / "a.jsonl").returncode == 0
    (tmp_path / "other").mkdir()
    Image.open(fixture_image).resize((100, 80)).save(tmp_path / "other" / "a.png")  # the same name, another size
    for saved, pixels, says in (("long.jsonl", ["--video", short], "holds frame 19"),
                                ("a.jsonl", ["--image", tmp_path / "other" / "a.png"], "is 100x80")):
        p = dope("--from-json", tmp_path / saved, *pixels, "--output-dir", tmp_path / "out")
        assert p.returncode == 1, p.stderr
        line, = p.stderr.strip().splitlines()
        assert says in line, line
        assert not (tmp_path / "out").exists()


def test_a_pose_export_too_big_to_build_is_refused_as_soon_as_known(tmp_path, monkeypatch):
    from benchmarks.exports import synthetic_frames
    from dope.exports import pose
    from dope.exports.people import ExportError
    from dope.exports.writer import ExportWriter
    from dope.motion.camera import place
    assert pose.size_refused(100, 10) is None
    assert "65535 people" in pose.size_refused(1, 70000)
    assert "GiB" in pose.size_refused(200_000, 400)  # a long video of a crowd
    frames = list(place(synthetic_frames(6, 4), fov=70))
    one = (len(frames) // 2) * 4 * 139 * 3 * 4  # half the frames' bytes, every person in every frame
    monkeypatch.setattr(pose, "MAX_BYTES", one)
    w = ExportWriter(str(tmp_path / "p.pose"))
    for f in frames:
        w.write(f)
    assert w.refused and len(w.builder.frame_numbers) == 0  # refused midway, the frames let go
    with pytest.raises(ExportError, match="--max-people"):
        w.close()
    assert not (tmp_path / "p.pose").exists()
