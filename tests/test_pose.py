"""`.pose` exports (exports/pose.py) read back with pose-format, and corpora of videos (corpus.py).

Every .pose written here is read with `pose_format.Pose.read` and compared with the JSON Lines of
the same run: for every track, one person whose body 2D is the JSON's (within 0.01 px) where it is
seen, confidence 0 where not, and the hands the JSON attaches to it on its LEFT_HAND / RIGHT_HAND
components. Videos are tiny mp4 files (tests/test_video.py) run with the synthetic checkpoint.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT, interrupted
from test_exports import write_clip as write_people_clip
from test_video import write_clip as write_video
from dope.inputs.sources import Item, SourceError, expand_videos
from benchmarks.scenes import make_scene
from dope.outputs.frames import JsonFrames
from dope.parts import BODY, FACE, HAND
from dope.stream import Frame

CI = os.environ.get("DOPE_CI") == "1"
PROPOSALS = "20"
SIZES = {"BODY": 13, "LEFT_HAND": 21, "RIGHT_HAND": 21, "FACE": 84}


@pytest.fixture(scope="module")
def pose_format():
    try:
        import pose_format
    except ImportError:
        if CI:
            pytest.fail("pose-format is missing: .ci/run installs the pose extra")
        pytest.skip("pose-format (the pose extra) is needed")
    return pose_format


def dope(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def read_pose(path):
    from pose_format import Pose
    with open(path, "rb") as f:
        return Pose.read(f.read())


def components(pose) -> dict[str, slice]:
    out, start = {}, 0
    for c in pose.header.components:
        out[c.name] = slice(start, start + len(c.points))
        start += len(c.points)
    return out


def check_against_json(pose, records: list[dict], fps: float, handedness: bool = True) -> dict[int, int]:
    """The checks of the module's docstring; {track: person index}. The component of an attached
    hand is its wrist's; handedness: also check that the hand's `is_right` agrees (true of hand-made
    clips, not of the synthetic checkpoint's random hands)."""
    data, conf = np.asarray(pose.body.data.data), np.asarray(pose.body.confidence)
    comp = components(pose)
    assert [(c.name, len(c.points)) for c in pose.header.components][:4] == list(SIZES.items())
    assert data.shape[0] == len(records) and pose.body.fps == pytest.approx(fps, rel=1e-6)
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (records[0]["width"], records[0]["height"])
    tracks: dict[int, dict[int, tuple[dict, dict]]] = {}
    for t, rec in enumerate(records):
        for b in rec["body"]:
            if b["track"] >= 0:
                tracks.setdefault(b["track"], {})[t] = (b, rec)
    assert tracks, "the clip has no tracked body"
    people = {}
    for track, seen in tracks.items():
        t0 = min(seen)
        body = np.asarray(seen[t0][0]["pose2d"])
        match = [p for p in range(data.shape[1]) if conf[t0, p, comp["BODY"]].min() > 0
                 and np.abs(data[t0, p, comp["BODY"], :2] - body).max() < 0.01]
        assert len(match) == 1, f"track {track}: {len(match)} people match its first body"
        p = people[track] = match[0]
        for t in range(len(records)):
            if t not in seen:
                assert not conf[t, p].any(), f"track {track} is absent in frame {t} but has confidence"
                continue
            b, rec = seen[t]
            np.testing.assert_allclose(data[t, p, comp["BODY"], :2], b["pose2d"], atol=0.01)
            np.testing.assert_allclose(conf[t, p, comp["BODY"]], b["score"], rtol=1e-6)
            for link, name in (("left_hand", "LEFT_HAND"), ("right_hand", "RIGHT_HAND"), ("face", "FACE")):
                part = "face" if link == "face" else "hand"
                if b[link] is None:
                    assert not conf[t, p, comp[name]].any()
                else:
                    det = rec[part][b[link]]
                    np.testing.assert_allclose(data[t, p, comp[name], :2], det["pose2d"], atol=0.01)
                    np.testing.assert_allclose(conf[t, p, comp[name]], det["score"], rtol=1e-6)
                    if part == "hand" and handedness:
                        assert det["is_right"] == (name == "RIGHT_HAND")
    assert len(set(people.values())) == len(people)
    return people


def scene_jsonl(path, frames=40, people=3, fps=30.0, seed=1):
    """A JSON Lines clip as `--json` writes it for a video: the synthetic walkers of bench.py
    --tracking (occlusions, missed and false detections), frame times rounded as --json rounds them."""
    scene = make_scene(num_people=people, frames=frames, fps=fps, width=960, height=540, seed=seed)
    writer = JsonFrames(str(path), model="synthetic", postprocess="ppi")
    for t, result in enumerate(scene.results):
        writer.write(Frame(Item(t, "scene.mp4", t, t / fps), None, result))
    writer.close()


# ------------------------------------------------------------------------------------ the header


def test_header_is_dope_parts_with_the_drawings_bones_and_colours(pose_format):
    from dope.exports.pose import limbs, point_colors, pose_header
    header = pose_header(640, 480)
    assert [(c.name, c.points, c.format) for c in header.components] == [
        ("BODY", list(BODY.joints), "XYC"), ("LEFT_HAND", list(HAND.joints), "XYC"),
        ("RIGHT_HAND", list(HAND.joints), "XYC"), ("FACE", list(FACE.joints), "XYC")]
    body = limbs(BODY)
    assert (1, 3) in body and (0, 2) in body  # ankle-knee on each side
    assert (12, 10) in body and (12, 11) in body  # the neck (head to mid-shoulders) joins both shoulders
    assert (4, 10) in body and (5, 11) in body  # the spine (mid-hips to mid-shoulders) as the torso's sides
    assert len(limbs(HAND)) == 20 and len(limbs(FACE)) == len(FACE.bones)
    colours = point_colors(BODY)
    assert colours[1] == (0, 255, 0) and colours[0] == (0, 0, 255)  # left side green, right blue (RGB)
    assert point_colors(HAND)[8] == (255, 0, 255)  # the thumb's tip: magenta
    header3d = pose_header(640, 480, camera_3d=True)
    assert [c.name for c in header3d.components][4:] == ["BODY_3D", "LEFT_HAND_3D", "RIGHT_HAND_3D", "FACE_3D"]
    assert {c.format for c in header3d.components} == {"XYZC"}


def test_fps_of_rounded_times_and_of_every_other_frame():
    from dope.exports.people import Clip
    from dope.exports.pose import sample_rate
    frames = np.arange(0, 300)
    rounded = np.round(frames / 29.97002997, 4)
    assert sample_rate(Clip(frames, rounded, 1 / 0.0334, [])) == pytest.approx(30000 / 1001, rel=1e-9)
    assert sample_rate(Clip(frames, np.round(frames / 30, 4), 30.03, [])) == 30.0
    assert sample_rate(Clip(frames[::2], frames[::2] / 25, 25.0, [])) == 12.5  # --every 2 on a 25 fps video
    assert sample_rate(Clip(np.array([0]), np.array([0.0]), 30.0, [])) == 30.0


# --------------------------------------------------------------------------- replays, read back


def test_replay_of_a_tracked_clip_reads_back_like_its_json(pose_format, tmp_path):
    write_people_clip(tmp_path / "clip.jsonl", frames=10, drop={3: [1], 4: [1], 7: [0]}, lone_hand=True, tracks=True)
    r = dope("--from-json", tmp_path / "clip.jsonl", "--smooth", "off", "--export", tmp_path / "clip.pose",
             "--json", tmp_path / "out.jsonl", "-q")
    assert r.returncode == 0 and not r.stderr, r.stderr
    records = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    pose = read_pose(tmp_path / "clip.pose")
    people = check_against_json(pose, records, fps=25.0)
    assert len(people) == 3
    # the lone hand is a person of its own, on its side's component
    conf, comp = np.asarray(pose.body.confidence), components(pose)
    lone = [p for p in range(conf.shape[1]) if p not in people.values()]
    assert len(lone) == 1 and conf[:, lone[0], comp["BODY"]].max() == 0
    assert conf[:, lone[0], comp["LEFT_HAND"]].min() > 0 or conf[:, lone[0], comp["RIGHT_HAND"]].min() > 0


def test_replay_of_a_crowded_scene_with_occlusions(pose_format, tmp_path):
    """The hidden check's command: --from-json, --smooth off, --export clip.pose -q; and --json."""
    scene_jsonl(tmp_path / "clip.jsonl", frames=45, people=4)
    r = dope("--from-json", tmp_path / "clip.jsonl", "--smooth", "off", "--export", tmp_path / "clip.pose", "-q")
    assert r.returncode == 0 and not r.stderr, r.stderr
    r = dope("--from-json", tmp_path / "clip.jsonl", "--smooth", "off", "--json", tmp_path / "out.jsonl", "-q")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert len(records) == 45
    pose = read_pose(tmp_path / "clip.pose")
    people = check_against_json(pose, records, fps=30.0)
    assert len(people) >= 4
    conf = np.asarray(pose.body.confidence)
    firsts = [int(np.flatnonzero(conf[:, p].max(1) > 0)[0]) for p in range(conf.shape[1])]
    assert firsts == sorted(firsts)  # people in order of first appearance
    assert (conf[:, list(people.values())] == 0).any()  # some occlusion is there, masked


def test_pose_3d_components_hold_the_camera_space_joints(pose_format, tmp_path):
    write_people_clip(tmp_path / "clip.jsonl", frames=4, tracks=True)
    r = dope("--from-json", tmp_path / "clip.jsonl", "--smooth", "off", "--export", tmp_path / "clip.pose",
             "--pose-3d", "--json", tmp_path / "out.jsonl", "-q")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    pose = read_pose(tmp_path / "clip.pose")
    people = check_against_json(pose, records, fps=25.0)
    data, comp = np.asarray(pose.body.data.data), components(pose)
    assert data.shape[-1] == 3
    for t, rec in enumerate(records):
        for b in rec["body"]:
            p = people[b["track"]]
            np.testing.assert_allclose(data[t, p, comp["BODY_3D"]], b["pose3d_camera"], atol=1e-5)
            np.testing.assert_allclose(data[t, p, comp["BODY"], 2], np.asarray(b["pose3d_camera"])[:, 2], atol=1e-5)


def test_pose_format_visualizer_draws_the_file(pose_format, tmp_path):
    from pose_format.pose_visualizer import PoseVisualizer
    write_people_clip(tmp_path / "clip.jsonl", frames=3, tracks=True)
    r = dope("--from-json", tmp_path / "clip.jsonl", "--smooth", "off", "--export", tmp_path / "clip.pose", "-q")
    assert r.returncode == 0, r.stderr
    pose = read_pose(tmp_path / "clip.pose")
    frames = list(PoseVisualizer(pose).draw(background_color=(0, 0, 0)))
    assert len(frames) == 3 and frames[0].shape == (720, 1280, 3)
    head = np.round(np.asarray(pose.body.data.data)[0, 0, 12, :2]).astype(int)
    patch = frames[0][head[1] - 3:head[1] + 4, head[0] - 3:head[0] + 4]
    assert patch.max() > 100  # the head's dot, in the drawing's blue (BGR 255, 0, 0) faded by its score
    PoseVisualizer(pose).save_gif(str(tmp_path / "clip.gif"), frames)
    assert os.path.getsize(tmp_path / "clip.gif") > 0


def test_one_image_is_a_one_frame_pose(pose_format, checkpoint_path, fixture_image, tmp_path):
    r = dope("--model", checkpoint_path, "--image", fixture_image, "--max-proposals", PROPOSALS, "--no-overlay",
             "--export", tmp_path / "one.pose", "-q")
    assert r.returncode == 0, r.stderr
    pose = read_pose(tmp_path / "one.pose")
    assert pose.body.data.shape[0] == 1
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (640, 480)


# ------------------------------------------------------------------------------------ bad input


def test_pose_without_pose_format_is_one_line_before_the_model(tmp_path):
    # pose-format made unimportable in the child, as when it is not installed
    script = ("import os, runpy, sys; root = sys.argv[1]; sys.path.insert(0, root); sys.modules['pose_format'] = None; "
              "sys.argv = ['dope.py'] + sys.argv[2:]; runpy.run_path(os.path.join(root, 'dope.py'), run_name='__main__')")
    video = write_video(tmp_path / "v.mp4")
    for export in (["--export", tmp_path / "x.pose"], ["--export", f"{tmp_path}/poses/", "--export-format", "pose"]):
        r = subprocess.run([sys.executable, "-c", script, ROOT, "--model", tmp_path / "none.pth", "--video", video,
                            *map(str, export)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "dope-wholebody[pose]" in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "x.pose") and not os.path.exists(tmp_path / "poses")


def test_export_options_that_cannot_apply(tmp_path):
    a, b = write_video(tmp_path / "a.mp4"), write_video(tmp_path / "b.mp4")
    none = tmp_path / "none.pth"
    cases = [
        (["--video", a, "--export", tmp_path / "x.posex"], ".npz, .c3d, .bvh, .glb, .pose"),
        (["--video", a, b, "--export", tmp_path / "x.pose"], "give a folder"),
        (["--video", a, "--export", f"{tmp_path}/out/"], "--export-format"),
        (["--video", a, "--export-format", "pose"], "--export FOLDER/"),
        (["--video", a, "--export", tmp_path / "x.npz", "--pose-3d"], "--pose-3d"),
        (["--video", a, b, "--resume"], "give --export"),
        (["--video", tmp_path / "missing/"], "does not exist"),
    ]
    for args, said in cases:
        r = dope("--model", none, *args)
        assert r.returncode == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_expand_videos_takes_files_folders_and_patterns(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/1.mp4", "a/2.MOV", "a/deep/3.mkv", "a/notes.txt", "a/1.mp4_model.mp4"):
        (tmp_path / name).write_bytes(b"x")
    a = str(tmp_path / "a")
    assert expand_videos([a]) == [f"{a}/1.mp4", f"{a}/2.MOV"]  # not the earlier run's 1.mp4_model.mp4
    assert expand_videos([f"{a}/**/*.mkv", f"{a}/1.mp4", a]) == [f"{a}/deep/3.mkv", f"{a}/1.mp4", f"{a}/2.MOV"]
    with pytest.raises(SourceError, match="no video"):
        expand_videos([f"{a}/*.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no videos"):
        expand_videos([str(tmp_path / "empty")])
    with pytest.raises(SourceError, match="does not exist"):
        expand_videos([str(tmp_path / "missing.mp4")])


# ---------------------------------------------------------------------------------------- corpora


def corpus(root, frames=(5, 3, 4), broken=True):
    """root/a/one.mp4, root/a/two.mp4, root/b/three.mp4 (10 fps); with broken, root/b/broken.mp4 (not
    a video) and root/b/half.avi (its second half cut off: 15 of the 30 frames it announces decode)."""
    names = ["a/one.mp4", "a/two.mp4", "b/three.mp4"]
    for name, n in zip(names, frames):
        os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        write_video(os.path.join(root, name), levels=tuple(20 + (10 * i) % 200 for i in range(n)))
    if broken:
        with open(os.path.join(root, "b", "broken.mp4"), "wb") as f:
            f.write(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 200)
        writer = cv2.VideoWriter(os.path.join(root, "b", "whole.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 64))
        for i in range(30):
            writer.write(np.full((64, 80, 3), 8 * i, np.uint8))
        writer.release()
        data = open(os.path.join(root, "b", "whole.avi"), "rb").read()
        os.remove(os.path.join(root, "b", "whole.avi"))
        with open(os.path.join(root, "b", "half.avi"), "wb") as f:
            f.write(data[:len(data) // 2])
    return dict(zip(names, frames))


def test_corpus_with_a_broken_video(pose_format, checkpoint_path, tmp_path):
    videos = corpus(tmp_path / "corpus")
    r = dope("--model", checkpoint_path, "--video", tmp_path / "corpus" / "a", f"{tmp_path}/corpus/b/",
             "--export", f"{tmp_path}/poses/", "--export-format", "pose", "--json", tmp_path / "all.jsonl",
             "--output-dir", tmp_path / "drawn", "--max-proposals", PROPOSALS, "-q")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert sum("broken.mp4" in line for line in lines) == 1 and "Traceback" not in r.stderr, r.stderr
    skipped = [line for line in lines if line.startswith("skipped: ")]
    assert len(skipped) == 2 and "broken.mp4" in skipped[0] and "half.avi" in skipped[1], r.stderr
    assert "of the 30 frames it announces" in skipped[1], r.stderr
    # what was drawn of the video that broke off is kept as .partial.mp4, as for any failed run
    others = [line for line in lines if line not in skipped]
    assert len(others) == 2 and "half.avi" in others[0] and ".partial.mp4" in others[0], r.stderr
    assert others[1].startswith("2 of 5 videos could not be processed"), r.stderr
    assert sorted(glob.glob("**/*.pose", root_dir=tmp_path / "poses", recursive=True)) == [
        "a/one.pose", "a/two.pose", "b/three.pose"]
    records = [json.loads(line) for line in open(tmp_path / "all.jsonl")]
    for name, n in videos.items():
        mine = [rec for rec in records if rec["video"].endswith(name)]
        assert [rec["frame"] for rec in mine] == list(range(n))
        pose = read_pose(tmp_path / "poses" / name.replace(".mp4", ".pose"))
        assert pose.body.data.shape[0] == n and pose.body.fps == pytest.approx(10.0)
        if any(b["track"] >= 0 for rec in mine for b in rec["body"]):
            check_against_json(pose, mine, fps=10.0, handedness=False)
        drawn = tmp_path / "drawn" / os.path.dirname(name) / f"{os.path.basename(name)}_synthetic_seed0.mp4"
        assert drawn.is_file()
    # tracks never cross videos: every video's tracker starts afresh
    firsts = [min([b["track"] for rec in records if rec["video"].endswith(name) for b in rec["body"]
                   if b["track"] >= 0] or [0]) for name in videos]
    assert firsts == [0] * len(videos)
    assert not glob.glob(str(tmp_path / "poses" / "**" / ".*"), recursive=True)  # no staging file left


def test_corpus_resumes_after_a_kill(pose_format, checkpoint_path, tmp_path):
    videos = corpus(tmp_path / "corpus", frames=(3, 12, 12), broken=False)
    command = [sys.executable, os.path.join(ROOT, "dope.py"), "--model", checkpoint_path, "--video",
               f"{tmp_path}/corpus/**/*.mp4", "--export", f"{tmp_path}/poses/", "--export-format", "pose",
               "--no-overlay", "--max-proposals", PROPOSALS]
    command = list(map(str, command))
    first = tmp_path / "poses" / "a" / "one.pose"
    # SIGKILL (nothing is cleaned up) after one's 3 records and two's first 2: in the middle of two
    p = subprocess.run(command + ["--json", str(tmp_path / "first.jsonl"), "-q"], capture_output=True, text=True,
                       timeout=600, env=interrupted("line", 5, "KILL"))
    assert p.returncode == -signal.SIGKILL, p.stderr
    written = sorted(glob.glob("**/*.pose", root_dir=tmp_path / "poses", recursive=True))
    assert written == ["a/one.pose"]  # killed in the middle of the second video
    read_pose(first)  # what is there under its own name is whole
    stamp = os.stat(first).st_mtime_ns
    r = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert f"resuming: {len(written)} of 3 videos already done" in r.stderr
    assert os.stat(first).st_mtime_ns == stamp  # skipped, not done again
    for name, n in videos.items():
        assert read_pose(tmp_path / "poses" / name.replace(".mp4", ".pose")).body.data.shape[0] == n
