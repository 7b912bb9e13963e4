"""Exports (dope/exports/): people of a clip as NPZ, C3D, BVH and glTF, read back by independent readers.

Readers: c3d and ezc3d for C3D, this file's own BVH parser and forward kinematics, pygltflib and the
Khronos glTF validator (npm package gltf-validator, run with node) for GLB. The clips are hand-made
whole-body people at known places (tests/handmade.py), seen by a known pinhole camera.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import ROOT
from handmade import camera_scene
from dope.inputs.sources import Item
from dope.outputs.frames import JsonFrames
from dope.parts import BODY_JOINTS, FACE_JOINTS, HAND
from dope.stream import Frame

FOCAL = 1000.0
FPS = 25.0
CI = os.environ.get("DOPE_CI") == "1"
NODE_MODULES = os.environ.get("DOPE_NODE_MODULES", os.path.expanduser("~/.cache/dope-ci/node_modules"))
FINGERS = ("thumb", "index", "middle", "ring", "little")


def dope(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def write_clip(path, frames=12, positions=((-1.0, 0.2, 3.0), (1.4, 0.4, 9.0), (0.3, 0.3, 5.5)), drop=None,
               lone_hand=False, tracks=False):
    """A JSON Lines clip (video frames at 25 fps) of people walking and turning; their true joints.

    drop: {frame: [person indexes not seen then]}. tracks: add a `track` field and reverse the
    order of the bodies every other frame (so that only the tracks tell who is who)."""
    writer = JsonFrames(str(path), model="handmade")
    truths = []
    for t in range(frames):
        moved = [(x + 0.03 * t * (1 if k % 2 else -1), y, z - 0.02 * t) for k, (x, y, z) in enumerate(positions)]
        result, truth = camera_scene(moved, focal=FOCAL, yaws=[8 * t + 30 * k for k in range(len(positions))],
                                     lone_hand=lone_hand, head_turn=3 * t - 15)
        people = list(range(len(positions)))
        if tracks:
            result = result.replace(body=result.body.with_fields(track=np.array(people) + 10),
                                    hand=result.hand.with_fields(track=np.arange(len(result.hand)) + 20),
                                    face=result.face.with_fields(track=np.arange(len(result.face)) + 40))
            if t % 2:
                result = result.select({"body": people[::-1]})
        gone = (drop or {}).get(t, [])
        if gone:  # these people, their hands and their faces are not seen in this frame
            ids = result.body.track - 10 if tracks else np.arange(len(result.body))
            result = result.select({"body": [i for i in range(len(result.body)) if ids[i] not in gone],
                                    "hand": [h for h in range(len(result.hand))
                                             if h // 2 not in gone or h >= 2 * len(positions)],
                                    "face": [f for f in range(len(result.face)) if f not in gone]})
        writer.write(Frame(Item(t, "clip.mp4", t, t / FPS), None, result))
        truths.append(truth)
    writer.close()
    return truths


def similarity_error(x: np.ndarray, y: np.ndarray) -> float:
    """Mean distance between points y (N, 3) and points x (N, 3) after the best similarity transform
    of x (Umeyama: scale, rotation, translation)."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    u, s, vt = np.linalg.svd(yc.T @ xc / len(x))
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(u @ vt))
    r = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / (xc ** 2).sum(1).mean()
    return float(np.linalg.norm(scale * xc @ r.T + my - y, axis=1).mean())


# ------------------------------------------------------------------------------------ readers


def read_bvh(path: str, rotations: bool = False):
    """World positions float[T, 3] of every joint (and `<joint>/end` End Site) of a BVH file, and its
    frame time, by the format's own rules: offsets from the parent, rotations in channel order
    (with `rotations`, also every joint's world rotation float[T, 3, 3])."""
    tokens = open(path).read().split()
    pos = 0
    joints = []  # (name, parent index, offset, channels)

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    assert take() == "HIERARCHY"
    stack = []
    while True:
        tok = take()
        if tok in ("ROOT", "JOINT"):
            name = take()
            assert take() == "{"
            assert take() == "OFFSET"
            offset = np.array([float(take()) for _ in range(3)])
            assert take() == "CHANNELS"
            channels = [take() for _ in range(int(take()))]
            joints.append((name, stack[-1] if stack else -1, offset, channels))
            stack.append(len(joints) - 1)
        elif tok == "End":
            assert take() == "Site" and take() == "{" and take() == "OFFSET"
            offset = np.array([float(take()) for _ in range(3)])
            assert take() == "}"
            joints.append((joints[stack[-1]][0] + "/end", stack[-1], offset, []))
        elif tok == "}":
            stack.pop()
        elif tok == "MOTION":
            break
    assert take() == "Frames:"
    frames = int(take())
    assert take() == "Frame" and take() == "Time:"
    frame_time = float(take())
    width = sum(len(j[3]) for j in joints)
    motion = np.array([float(x) for x in tokens[pos:]]).reshape(frames, width)

    def axis(name, degrees):
        a = np.radians(degrees)
        c, s = np.cos(a), np.sin(a)
        m = np.zeros((len(a), 3, 3))
        i = "XYZ".index(name)
        j, k = [n for n in range(3) if n != i]
        m[:, i, i] = 1
        m[:, j, j], m[:, k, k] = c, c
        m[:, j, k], m[:, k, j] = -s, s
        if i == 1:  # about y, the signs of the sine swap (right-handed)
            m[:, j, k], m[:, k, j] = s, -s
        return m

    world_r, world_p, out = {}, {}, {}
    column = 0
    for index, (name, parent, offset, channels) in enumerate(joints):
        r = np.broadcast_to(np.eye(3), (frames, 3, 3)).copy()
        p = np.broadcast_to(offset, (frames, 3)).copy()
        for ch in channels:
            values = motion[:, column]
            column += 1
            if ch.endswith("position"):
                p[:, "XYZ".index(ch[0])] += values
            else:
                r = r @ axis(ch[0], values)
        if parent >= 0:
            p = world_p[parent] + np.einsum("tij,tj->ti", world_r[parent], offset[None].repeat(frames, 0))
            r = world_r[parent] @ r
        world_r[index], world_p[index] = r, p
        out[name] = p
    if rotations:
        return out, frame_time, {joints[i][0]: world_r[i] for i in world_r}
    return out, frame_time


def glb_joints(path: str) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """World positions float[T, 3] of every animated node of a GLB at its keyframes, the key times and
    the document (pygltflib), composing each node with its parents' static transforms."""
    from pygltflib import GLTF2
    gltf = GLTF2().load(path)
    blob = gltf.binary_blob()
    sizes = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
    types = {5126: np.float32, 5123: np.uint16, 5125: np.uint32, 5121: np.uint8}

    def read(index):
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        n = sizes[acc.type]
        return np.frombuffer(blob, types[acc.componentType], acc.count * n, start).reshape(acc.count, n)

    parent = {c: i for i, node in enumerate(gltf.nodes) for c in (node.children or [])}
    anim = gltf.animations[0]
    animated, times = {}, None
    for ch in anim.channels:
        sampler = anim.samplers[ch.sampler]
        if ch.target.path == "translation":
            animated[ch.target.node] = read(sampler.output).astype(np.float64)
            times = read(sampler.input)[:, 0]
    for node in gltf.nodes:
        assert node.rotation in (None, [0, 0, 0, 1]) and node.matrix is None  # only translations here

    def world(i, t):
        own = animated[i][t] if i in animated else np.array(gltf.nodes[i].translation or [0, 0, 0], float)
        return own + (world(parent[i], t) if i in parent else 0)

    out = {gltf.nodes[i].name: np.array([world(i, t) for t in range(len(times))]) for i in animated}
    return out, times, gltf


def validate(path: str) -> dict:
    """The Khronos glTF validator's issues for a file (node + npm's gltf-validator)."""
    if not (shutil.which("node") and os.path.isdir(os.path.join(NODE_MODULES, "gltf-validator"))):
        if CI:
            pytest.fail(f"node or gltf-validator missing (looked in {NODE_MODULES}); .ci/run installs them")
        pytest.skip("node and gltf-validator (npm) are needed: see .ci/run")
    proc = subprocess.run(["node", os.path.join(ROOT, "tests", "validate_gltf.js"), path], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "NODE_PATH": NODE_MODULES})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def read_c3d_both(path: str) -> tuple[list[str], np.ndarray, float, list[str], np.ndarray]:
    """(c3d labels, c3d points float[T, M, 3] NaN where invalid, rate, ezc3d labels, ezc3d points float[T, M, 3])."""
    import c3d
    import ezc3d
    with open(path, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No analog data found in file."
        reader = c3d.Reader(f)
        labels = [x.strip() for x in reader.point_labels]
        rate = reader.point_rate
        frames = []
        for _, points, _ in reader.read_frames():
            p = points[:, :3].astype(np.float64)
            p[points[:, 3] < 0] = np.nan
            frames.append(p)
    e = ezc3d.c3d(path)
    params = e["parameters"]["POINT"]
    e_labels = list(params["LABELS"]["value"])
    k = 2
    while f"LABELS{k}" in params:
        e_labels += list(params[f"LABELS{k}"]["value"])
        k += 1
    e_points = np.transpose(e["data"]["points"][:3], (2, 1, 0))
    return labels, np.array(frames), rate, e_labels, e_points


# ------------------------------------------------------------------------------------ the issue's check


@pytest.fixture(scope="module")
def hidden_check(tmp_path_factory):
    """The issue's "How it is checked" commands, run once on a clip of three people at 3, 5.5 and 9 m."""
    folder = tmp_path_factory.mktemp("check")
    truths = write_clip(folder / "cam.jsonl")
    base = ["--from-json", "cam.jsonl", "--focal", "1000", "--smooth", "off", "-q"]
    runs = {}
    for extra in (["--json", "out.jsonl"], ["--export", "people.c3d"], ["--export", "people.npz"],
                  ["--export", "people.bvh"], ["--export", "people.glb"]):
        runs[extra[1]] = dope(*base, *extra, cwd=folder)
    return folder, truths, runs


def test_check_json_places_bodies_and_hands(hidden_check):
    folder, truths, runs = hidden_check
    assert runs["out.jsonl"].returncode == 0, runs["out.jsonl"].stderr
    records = [json.loads(line) for line in open(folder / "out.jsonl")]
    assert len(records) == len(truths)
    for rec, truth in zip(records, truths):
        for i, body in enumerate(rec["body"]):
            assert np.abs(np.array(body["pose3d_camera"]) - truth[i]["body"]).max() < 0.01
            for link, key in (("left_hand", "left_hand"), ("right_hand", "right_hand")):
                hand = np.array(rec["hand"][body[link]]["pose3d_camera"])
                assert np.abs(hand - truth[i][key]).max() < 0.02


def test_check_c3d_has_every_body_joint_within_a_millimetre(hidden_check):
    folder, truths, runs = hidden_check
    assert runs["people.c3d"].returncode == 0, runs["people.c3d"].stderr
    labels, points, rate, e_labels, e_points = read_c3d_both(str(folder / "people.c3d"))
    assert rate == FPS and len(points) == len(truths)
    np.testing.assert_allclose(e_points, points, atol=1e-3, equal_nan=True)  # the two readers agree
    assert labels == e_labels[:len(labels)] and len(e_labels) == points.shape[1]
    for t, truth in enumerate(truths):
        for i in range(3):
            for k, joint in enumerate(BODY_JOINTS):
                m = labels.index(f"person{i}_{joint}")  # bodies come first: all in the first 255 labels
                assert np.linalg.norm(points[t, m] - truth[i]["body"][k] * 1000) < 1.0
            m = e_labels.index(f"person{i}_lhand_index_3")
            assert np.linalg.norm(e_points[t, m] - truth[i]["left_hand"][HAND.joints.index("index_3")] * 1000) < 20


def test_check_npz_holds_the_joints_within_5_mm(hidden_check):
    folder, truths, runs = hidden_check
    assert runs["people.npz"].returncode == 0, runs["people.npz"].stderr
    with np.load(folder / "people.npz", allow_pickle=False) as z:
        assert list(z["people"]) == ["person0", "person1", "person2"]
        assert float(z["fps"]) == FPS and list(z["frame"]) == list(range(len(truths)))
        assert list(z["body_joints"]) == list(BODY_JOINTS) and list(z["face_joints"]) == list(FACE_JOINTS)
        assert float(z["focal_px"]) == FOCAL
        for i in range(3):
            body = z[f"person{i}/body"]
            assert body.shape == (len(truths), 13, 3)
            assert np.abs(body - [truth[i]["body"] for truth in truths]).max() < 0.005
            assert np.abs(z[f"person{i}/right_hand"] - [truth[i]["right_hand"] for truth in truths]).max() < 0.02
            assert z[f"person{i}/body_2d"].shape == (len(truths), 13, 2) and z[f"person{i}/seen"].all()


def test_check_bvh_forward_kinematics_fits_each_person(hidden_check):
    folder, truths, runs = hidden_check
    assert runs["people.bvh"].returncode == 0, runs["people.bvh"].stderr
    assert sorted(os.listdir(folder)) == ["cam.jsonl", "out.jsonl", "people.c3d", "people.glb", "people.npz",
                                          "people.person0.bvh", "people.person1.bvh", "people.person2.bvh"]
    for i in range(3):
        joints, frame_time = read_bvh(str(folder / f"people.person{i}.bvh"))
        assert frame_time == pytest.approx(1 / FPS)
        fk = np.concatenate([joints[name] for name in BODY_JOINTS], 0)
        true = np.concatenate([[truth[i]["body"][k] for truth in truths] for k in range(13)], 0)
        assert similarity_error(fk, true) < 0.03
        # and exactly, once the documented axes are undone (y and z negated; metres)
        assert np.abs(fk * (1, -1, -1) - true).max() < 1e-3
        # the head turns with the face (which turns 15 degrees either way of the body): the head's
        # rest x axis (the subject's left) follows the line from the right eye to the left one
        _, _, world = read_bvh(str(folder / f"people.person{i}.bvh"), rotations=True)
        face = np.array([truth[i]["face"] for truth in truths]) * (1, -1, -1)
        eyes = face[:, 58:64].mean(1) - face[:, 52:58].mean(1)
        left = world["head"][:, :, 0]
        cos = (left * eyes).sum(1) / np.linalg.norm(eyes, axis=1)
        assert cos.min() > 0.999
        assert (world["neck"][:, :, 0] * eyes).sum(1).min() / np.linalg.norm(eyes, axis=1).max() < 0.99  # not the neck's
        tips = np.concatenate([joints[f"rhand_{f}_3/end"] for f in FINGERS])
        true_tips = np.concatenate([[truth[i]["right_hand"][HAND.joints.index(f"{f}_4")] for truth in truths]
                                    for f in FINGERS])
        assert np.linalg.norm(tips * (1, -1, -1) - true_tips, axis=1).mean() < 0.01


def test_check_glb_is_valid_and_its_joints_fit_each_person(hidden_check):
    folder, truths, runs = hidden_check
    assert runs["people.glb"].returncode == 0, runs["people.glb"].stderr
    issues = validate(str(folder / "people.glb"))
    assert issues["numErrors"] == 0, issues["messages"][:5]
    assert issues["numWarnings"] == 0, issues["messages"][:5]
    joints, times, gltf = glb_joints(str(folder / "people.glb"))
    np.testing.assert_allclose(times, np.arange(len(truths)) / FPS, atol=1e-6)
    assert {s.name for s in gltf.skins} == {"person0", "person1", "person2"}
    assert gltf.cameras[0].perspective.yfov == pytest.approx(2 * np.arctan(360 / FOCAL))
    for i in range(3):
        got = np.concatenate([joints[f"person{i}_{name}"] for name in BODY_JOINTS])
        true = np.concatenate([[truth[i]["body"][k] for truth in truths] for k in range(13)])
        assert similarity_error(got, true) < 0.03
        assert np.abs(got * (1, -1, -1) - true).max() < 1e-4  # glTF axes: y and z negated


def test_check_bad_focal_is_one_line(tmp_path):
    write_clip(tmp_path / "cam.jsonl", frames=1)
    proc = dope("--from-json", "cam.jsonl", "--focal", "-5", "--smooth", "off", "-q", "--export", "people.glb",
                cwd=tmp_path)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1 and "--focal" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["cam.jsonl"]


# ------------------------------------------------------------------------------------ beyond the check


def test_one_image_is_a_one_frame_clip_at_30_fps(tmp_path):
    result, truths = camera_scene([(0.2, 0.3, 4.0)], focal=FOCAL)
    rec = result.to_dict()
    rec["image"] = "photo.jpg"
    (tmp_path / "one.json").write_text(json.dumps(rec, indent=1))  # what --json writes for one image
    proc = dope("--from-json", "one.json", "--focal", FOCAL, "-q", "--export", "a.npz", "a.c3d", "a.bvh", "a.glb",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    labels, points, rate, _, _ = read_c3d_both(str(tmp_path / "a.c3d"))
    assert rate == 30 and points.shape[0] == 1
    joints, frame_time = read_bvh(str(tmp_path / "a.person0.bvh"))
    assert frame_time == pytest.approx(1 / 30) and joints["head"].shape == (1, 3)
    assert np.abs(joints["r_knee"][0] * (1, -1, -1) - truths[0]["body"][2]).max() < 1e-3
    assert validate(str(tmp_path / "a.glb"))["numErrors"] == 0
    with np.load(tmp_path / "a.npz") as z:
        assert z["person0/body"].shape == (1, 13, 3) and float(z["fps"]) == 30


def test_gaps_lone_parts_and_tracks(tmp_path):
    drop = {2: [1], 3: [1], 4: [1]}
    truths = write_clip(tmp_path / "cam.jsonl", frames=8, drop=drop, lone_hand=True, tracks=True)
    # --no-track: the saved tracks are kept (by default a replay is tracked again)
    proc = dope("--from-json", "cam.jsonl", "--focal", FOCAL, "-q", "--no-track", "--export", "g.npz", "g.c3d",
                "g.bvh", "g.glb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "g.npz") as z:
        # tracks name the people (bodies 10, 11, 12), whatever their order in each frame
        assert list(z["people"]) == ["person10", "person11", "person12", "hand26"]
        seen = z["person11/seen"]
        assert list(seen) == [t not in drop for t in range(8)]
        assert np.isnan(z["person11/body"][2:5]).all()
        assert np.abs(z["person11/body"][seen] - [truths[t][1]["body"] for t in range(8) if t not in drop]).max() < 1e-3
        assert np.abs(z["person12/body"] - [truth[2]["body"] for truth in truths]).max() < 1e-3
        assert np.abs(z["hand26/right_hand"] - [truth[3]["lone_hand"] for truth in truths]).max() < 1e-3
    labels, points, _, _, _ = read_c3d_both(str(tmp_path / "g.c3d"))
    m = labels.index("person11_head")
    assert np.isnan(points[2:5, m]).all() and np.isfinite(points[5:, m]).all()
    assert "hand26_rhand_wrist" in read_c3d_both(str(tmp_path / "g.c3d"))[3]
    # BVH: one file per person with a body (not the lone hand), every frame, the gap held
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".bvh")) == [
        "g.person10.bvh", "g.person11.bvh", "g.person12.bvh"]
    joints, _ = read_bvh(str(tmp_path / "g.person11.bvh"))
    assert joints["hips"].shape == (8, 3)
    np.testing.assert_allclose(joints["head"][2], joints["head"][1])  # held from the nearest frame seen
    ok = [t for t in range(8) if t not in drop]
    assert np.abs(joints["head"][ok] * (1, -1, -1) - [truths[t][1]["body"][12] for t in ok]).max() < 1e-3
    issues = validate(str(tmp_path / "g.glb"))
    assert issues["numErrors"] == 0, issues["messages"][:5]
    got, _, gltf = glb_joints(str(tmp_path / "g.glb"))
    scaled = [c for c in gltf.animations[0].channels if c.target.path == "scale"]
    assert scaled and all(gltf.nodes[c.target.node].name.startswith("person11_") for c in scaled)


def test_unknown_format_is_refused_before_any_work(tmp_path):
    proc = dope("--from-json", "missing.jsonl", "--export", "people.fbx", cwd=tmp_path)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert ".fbx" in proc.stderr and all(ext in proc.stderr for ext in (".npz", ".c3d", ".bvh", ".glb"))
    proc = dope("--from-json", "missing.jsonl", "--export", tmp_path / "no" / "people.c3d")
    assert proc.returncode == 1 and "missing.jsonl" in proc.stderr
    assert os.listdir(tmp_path) == []  # the export's missing folder is made only once the inputs are known good


def test_nobody_in_the_clip_is_said_and_nothing_is_written(tmp_path):
    result, _ = camera_scene([])
    (tmp_path / "empty.jsonl").write_text(json.dumps(result.to_dict()) + "\n")
    proc = dope("--from-json", "empty.jsonl", "--focal", FOCAL, "-q", "--export", "x.c3d", cwd=tmp_path)
    assert proc.returncode == 1 and "nobody" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["empty.jsonl"]


def test_export_benchmark_runs_on_a_small_clip():
    from benchmarks.exports import bench_exports, format_report
    report = bench_exports(frames=5, people=2)
    assert report["frames"] == 5 and all(report[ext][1] > 1000 for ext in (".npz", ".c3d", ".bvh", ".glb"))
    assert "| write .glb |" in format_report(report)


def test_c3d_too_many_people_is_an_error_not_a_broken_file():
    from benchmarks.exports import synthetic_frames
    from dope.exports.c3dfile import c3d_bytes
    from dope.exports.people import ExportError, clip_people
    from dope.motion.camera import intrinsics, place_result
    cam = intrinsics(1280, 720, focal=FOCAL)

    def clip(n):
        return clip_people([Frame(f.item, None, place_result(f.result, cam)) for f in synthetic_frames(2, n)])
    assert len(c3d_bytes(clip(30))) > 0
    with pytest.raises(ExportError, match="cannot name 6950 markers"):
        c3d_bytes(clip(50))


def test_bodies_without_hands_or_faces(tmp_path):
    result, truths = camera_scene([(0.2, 0.3, 4.0), (-1, 0.3, 6.0)], focal=FOCAL)
    result = result.select({"hand": [], "face": []})
    (tmp_path / "b.jsonl").write_text(json.dumps(result.to_dict()) + "\n")
    proc = dope("--from-json", "b.jsonl", "--focal", FOCAL, "-q", "--export", "b.bvh", "b.glb", "b.c3d", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    joints, _ = read_bvh(str(tmp_path / "b.person1.bvh"))
    assert not any("hand_" in name for name in joints) and "r_wrist/end" in joints
    assert np.abs(joints["l_ankle"][0] * (1, -1, -1) - truths[1]["body"][1]).max() < 1e-3
    assert validate(str(tmp_path / "b.glb"))["numErrors"] == 0
    labels = read_c3d_both(str(tmp_path / "b.c3d"))[0]
    assert len(labels) == 26 and labels[13] == "person1_r_ankle"
