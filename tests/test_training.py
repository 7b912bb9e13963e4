"""Training by distillation (dope/training/): targets that the network's own decoding turns back
into the labels, checkpoints that the detector loads, one-line errors for bad labels, a teacher's
heads recovered by training (alone and under torchrun), and the MediaPipe Holistic labels."""
from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, SMALL

from dope.network.checkpoint import DEFAULT_DOPE_KWARGS, Checkpoint, merge_config, read_checkpoint
from dope.network.dopenet import DOPENet, build_model
from dope.parts import PART_NAMES, PARTS
from dope.training import losses, student, targets
from dope.training.labels import LabelledImage, PartLabels

CI = os.environ.get("DOPE_CI") == "1"


def _poses(rng: np.random.Generator, n: int, j: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    centre = rng.uniform([0.2 * width, 0.2 * height], [0.8 * width, 0.8 * height], size=(n, 1, 2))
    pose2d = centre + rng.normal(0, 40, size=(n, j, 2))
    return pose2d, rng.normal(0, 0.3, size=(n, j, 3))


# ------------------------------------------------------------------------- targets


def test_round_trip_through_the_networks_decoding():
    """Labels encoded against proposals, given to the network as its pose layer's output and decoded by
    DOPENet.decode (RoI decoding and the mapping back to the original image): the same poses, 1e-4 px."""
    config = merge_config(DEFAULT_DOPE_KWARGS, {"backbone": "resnet18", **SMALL,
                                                "pose2d_reg_weights": {"hand": 3.0}, "pose3d_reg_weights": {"face": 2.0}})
    torch.manual_seed(0)
    net = DOPENet(config).eval()
    rng = np.random.default_rng(0)
    height, width = 480, 640
    input_size = (320, 426)  # what the transform makes of 480x640 at min_size 320
    batch, _ = net.transform([torch.zeros(3, height, width)])
    assert tuple(batch.image_sizes[0]) == input_size
    label = LabelledImage("x.jpg", height, width, {})
    for part in PART_NAMES:
        j = PARTS[part].num_joints
        p2, p3 = _poses(rng, 3, j, height, width)
        label.parts[part] = PartLabels(p2, p3, np.array([True, False, True]))
        anchors = getattr(net.roi_heads, f"{part}_anchor_poses")
        anchors.copy_(torch.as_tensor(np.concatenate([rng.uniform(0.1, 0.9, anchors.shape[:2] + (2,)),
                                                      rng.normal(0, 0.3, anchors.shape[:2] + (3,))], -1)))
    t = losses.image_targets(label, input_size, student.anchor_poses(net), hand_k=5)
    # proposals: each labelled box jittered, several per label; features: one-hot rows, so that the
    # pose layer's output for RoI i is its weight's column i
    proposals = torch.cat([t[p].boxes + torch.as_tensor(rng.normal(0, 8, (len(t[p].boxes), 4)), dtype=torch.float32)
                           for p in PART_NAMES for _ in range(2)])
    channels = net.roi_heads.dope_predictor.body_pose_pred.in_features
    features = torch.eye(len(proposals), channels)
    anchors = student.anchor_poses(net)
    expected = {}
    with torch.no_grad():
        for part in PART_NAMES:
            iou_index = torch.arange(len(proposals)) % len(t[part].boxes)  # any label for any proposal
            cls = t[part].classes[iou_index]
            rh = net.roi_heads
            d2, d3 = targets.encode(t[part].pose2d[iou_index].double(), t[part].pose3d[iou_index].double(),
                                    proposals.double(), anchors[part][cls].double(), rh.pose2d_reg_weights[part],
                                    rh.pose3d_reg_weights[part])
            layer = getattr(rh.dope_predictor, f"{part}_pose_pred")
            j = PARTS[part].num_joints
            weight = torch.zeros(layer.weight.shape[0], channels, dtype=torch.float64)
            for i, c in enumerate(cls.tolist()):
                weight[c * 5 * j:(c + 1) * 5 * j, i] = targets.as_regression(d2[i:i + 1], d3[i:i + 1])[0]
            layer.weight.copy_(weight)
            layer.bias.zero_()
            lab = label.parts[part]
            expected[part] = (lab.pose2d[iou_index.numpy()], lab.pose3d[iou_index.numpy()], cls)
        out = net.decode(features, [proposals], [input_size], [(height, width)])[0]
    for part in PART_NAMES:
        pose2d, pose3d, cls = expected[part]
        rows = torch.arange(len(proposals))
        got2d = out[part]["pose2d"][rows, cls].double().numpy()
        got3d = out[part]["pose3d"][rows, cls].double().numpy()
        assert np.abs(got2d - pose2d).max() < 1e-4, part
        assert np.abs(got3d - pose3d).max() < 1e-5, part


def test_classes_are_nearest_anchor_poses_and_hands_keep_their_side():
    anchors = torch.zeros(4, 2, 5)
    anchors[:, :, 2] = torch.tensor([0.0, 1.0, 2.0, 3.0])[:, None]
    pose3d = torch.zeros(2, 2, 3)
    pose3d[:, :, 0] = torch.tensor([0.9, 2.9])[:, None]
    assert targets.nearest_anchor(pose3d, anchors).tolist() == [1, 3]
    # K = 2: anchor poses 0, 1 are right hands, 2, 3 left ones
    mask = targets.side_mask(torch.tensor([False, True]), 4, 2)
    assert targets.nearest_anchor(pose3d, anchors, mask).tolist() == [2, 1]


def test_part_boxes_grow_the_tight_box():
    box = targets.part_boxes(torch.tensor([[[10.0, 20.0], [110.0, 70.0]]]))
    assert box.tolist() == [[0.0, 15.0, 120.0, 75.0]]


def test_kmeans_anchor_poses():
    rng = np.random.default_rng(0)
    p2, p3 = _poses(rng, 50, 13, 480, 640)
    p3[:25] += 5  # two clear clusters
    a = targets.kmeans_anchor_poses(p2, p3, 2)
    assert a.shape == (2, 13, 5)
    assert sorted(np.round(a[:, :, 2:].mean((1, 2))).tolist()) == [0.0, 5.0]
    assert (a[:, :, :2] > 0).all() and (a[:, :, :2] < 1).all()  # box units
    assert targets.kmeans_anchor_poses(p2[:3], p3[:3], 5).shape == (5, 13, 5)


# ------------------------------------------------------------------------- checkpoints


def test_student_checkpoints_are_official_ones(tmp_path, checkpoint_dict):
    """A ResNet-50 student has the published tensor names and shapes, and loads with weights_only;
    a ResNet-18 one records its backbone; the official files (no backbone key) load as ResNet-50."""
    with open(os.path.join(ROOT, "tests", "state_dict_manifest.json")) as f:
        manifest = {name: tuple(shape) for name, shape in json.load(f)["tensors"]}
    ckpt = read_checkpoint(checkpoint_dict)
    assert ckpt.config["backbone"] == "resnet50" and "backbone" not in checkpoint_dict["dope_kwargs"]
    net = build_model(ckpt)
    saved = student.checkpoint_dict(net, Checkpoint(ckpt.config, {}, False, ckpt.ppi_kwargs))
    assert {k: tuple(v.shape) for k, v in saved["state_dict"].items()} == manifest
    path = tmp_path / "s.pth"
    student.save(saved, str(path))
    again = torch.load(path, weights_only=True)
    assert again["dope_kwargs"]["backbone"] == "resnet50" and again["half"] is False
    assert again["body_ppi_kwargs"] == checkpoint_dict["body_ppi_kwargs"]
    from benchmarks.students import student_checkpoint
    small = student_checkpoint("resnet18", 320, 512)
    torch.save(small, tmp_path / "r18.pth")
    net18 = build_model(read_checkpoint(str(tmp_path / "r18.pth")))
    assert net18.roi_heads.dope_predictor.body_pose_pred.in_features == 512


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34"])
def test_lighter_backbones_run_in_the_detector(backbone):
    from benchmarks.students import student_checkpoint
    from dope.detector import DOPE
    det = DOPE(student_checkpoint(backbone, 160, 256), device="cpu", max_proposals=20, progress=False)
    result = det(np.zeros((120, 160, 3), np.uint8))
    assert result.height == 120


def test_freezing_features_trains_only_the_linear_layers(checkpoint_dict):
    net = build_model(read_checkpoint(checkpoint_dict))
    params = student.trainable(net, "features")
    predictor = list(net.roi_heads.dope_predictor.parameters())
    assert {id(p) for p in params} == {id(p) for p in predictor}
    assert len(student.trainable(net, "backbone")) > len(predictor)
    assert not any(p.requires_grad for p in net.backbone.resnet_backbone.layer3.parameters())


def test_whitened_heads_fold_back_to_the_same_function(checkpoint_dict):
    net = build_model(read_checkpoint(checkpoint_dict))
    x = torch.rand(3000, 2048)
    from dope.training.train import Processes, whitening
    heads = losses.TrainingHeads(net.roi_heads.dope_predictor, whitening([x], Processes()))
    before = net.roi_heads.dope_predictor(x)
    with torch.no_grad():
        heads.body_pose_pred.weight.add_(0.01)
    heads.fold(net.roi_heads.dope_predictor)
    after = net.roi_heads.dope_predictor(x)
    z = (x - heads.mean) @ heads.matrix
    assert torch.allclose(after["body"][1], heads.body_pose_pred(z), atol=1e-3)
    assert torch.allclose(after["hand"][0], before["hand"][0], atol=1e-3)


# ------------------------------------------------------------------------- the command


def _train(args, cwd, timeout=600):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": ROOT})


def _record(image, height, width, j=13):
    return {"image": image, "height": height, "width": width,
            "body": [{"score": 1.0, "pose2d": [[100.0 + i, 100.0 + 2 * i] for i in range(j)],
                      "pose3d": [[0.0, 0.1 * i, 0.0] for i in range(j)]}]}


@pytest.mark.parametrize("case, message", [
    ("no image", "no 'image' path"),
    ("missing image", "does not exist"),
    ("wrong size", "the record says 100x80"),
    ("wrong shape", "has shape (12, 2), expected (13, 2)"),
    ("no hand side", "needs 'is_right'"),
    ("video", "a video frame"),
])
def test_bad_labels_are_one_line_errors(tmp_path, fixture_image, checkpoint_path, case, message, capsys,
                                        monkeypatch):
    rec = _record(fixture_image, 480, 640)
    if case == "no image":
        del rec["image"]
    elif case == "missing image":
        rec["image"] = "nowhere.jpg"
    elif case == "wrong size":
        rec.update(height=80, width=100)
    elif case == "wrong shape":
        rec = _record(fixture_image, 480, 640, j=12)
    elif case == "no hand side":
        rec["hand"] = [{"pose2d": [[0.0, 0.0]] * 21, "pose3d": [[0.0, 0.0, 0.0]] * 21}]
    else:
        rec = {"video": "clip.mp4", "frame": 3, **rec}
    (tmp_path / "l.jsonl").write_text(json.dumps(rec) + "\n")
    monkeypatch.chdir(tmp_path)
    from dope.training.cli import main
    assert main(["--labels", "l.jsonl", "--init", checkpoint_path, "--out", "s.pth", "--steps", "1", "-q"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "l.jsonl, line 1" in lines[0], lines


def test_the_command_says_what_is_wrong_in_one_line(tmp_path, fixture_image, checkpoint_path):
    (tmp_path / "l.jsonl").write_text(json.dumps(_record(fixture_image, 80, 100)) + "\n")
    proc = _train(["--labels", "l.jsonl", "--init", checkpoint_path, "--out", "s.pth"], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"dope-train: error: l.jsonl, line 1: image {fixture_image!r} is "
                                                "640x480, the record says 100x80 (labels of another image, or of a "
                                                "resized copy?)"]


def test_training_takes_labels_and_writes_a_resumable_checkpoint(tmp_path, fixture_image, checkpoint_path):
    """A few steps of full training (freeze backbone: RPN, stage 4 and predictors) on hand-made
    labels, with validation, a CSV and a resume; the result runs in dope.py."""
    import shutil
    shutil.copy(fixture_image, tmp_path / "photo.png")  # dope.py draws beside its input
    label = tmp_path / "l.jsonl"
    label.write_text(json.dumps(_record("photo.png", 480, 640)) + "\n" + json.dumps(_record("photo.png", 480, 640)) + "\n")
    proc = _train(["--labels", "l.jsonl", "--val-labels", "l.jsonl", "--init", checkpoint_path, "--freeze", "backbone",
                   "--steps", "2", "--batch-size", "1", "--max-proposals", "50", "--rois-per-image", "16", "--out",
                   "s.pth"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "validation on 2 image(s): body " in proc.stderr and "/2 median 2D" in proc.stderr, proc.stderr
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0].startswith("step,lr,time_s,loss,loss_objectness") and len(rows) == 3
    proc = _train(["--labels", "l.jsonl", "--init", checkpoint_path, "--freeze", "backbone", "--steps", "3",
                   "--batch-size", "1", "--max-proposals", "50", "--rois-per-image", "16", "--out", "s.pth", "--resume",
                   "s.resume.pth"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 4
    assert torch.load(tmp_path / "s.resume.pth", weights_only=True)["step"] == 3
    run = subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), "--model", str(tmp_path / "s.pth"),
                          "--image", "photo.png", "--json", "out.json", "--max-proposals", "20"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


# ------------------------------------------------------------------------- recovery


@pytest.fixture(scope="module")
def recovery_folder(tmp_path_factory):
    """A synthetic teacher at the tests' small input size, its labels on two photos, S0."""
    pytest.importorskip("skimage") if not CI else None
    from benchmarks.students import detect, teacher
    folder = str(tmp_path_factory.mktemp("recovery"))
    images, labels = teacher(folder, min_size=SMALL["min_size"], max_size=SMALL["max_size"],
                             photos=("astronaut", "coffee"))
    detect("S0.pth", images, "S0.jsonl", folder)
    return folder, images, labels


def _median_error(folder, images, labels, name):
    from benchmarks.students import body_errors, detect
    detect(name + ".pth", images, name + ".jsonl", folder)
    errors = body_errors(labels, os.path.join(folder, name + ".jsonl"))
    assert len(errors) >= 6  # of the 8 label bodies (4 per photo), matched one to one
    return statistics.median(errors)


def test_training_recovers_the_teachers_heads(recovery_folder):
    """The recovery check in small (two photos, the tests' input size, 60 steps): S0's median body
    error falls to under a tenth (the check asks for a quarter)."""
    from benchmarks.students import body_errors, train_student
    folder, images, labels = recovery_folder
    s0 = statistics.median(body_errors(labels, os.path.join(folder, "S0.jsonl")))
    train_student(folder, 60)
    s = _median_error(folder, images, labels, "S")
    assert s < 0.1 * s0, (s, s0)


def test_torchrun_two_processes_recover_as_well(recovery_folder):
    from benchmarks.students import train_student
    folder, images, labels = recovery_folder
    if not os.path.exists(os.path.join(folder, "S.pth")):
        train_student(folder, 60)
    alone = _median_error(folder, images, labels, "S")
    train_student(folder, 60, nproc=2, out="S2.pth")
    two = _median_error(folder, images, labels, "S2")
    assert two <= 1.2 * alone + 0.5, (two, alone)  # 0.5 px: both are a pixel or so


# ------------------------------------------------------------------------- MediaPipe Holistic


def test_holistic_correspondence_is_complete():
    from dope.training import holistic
    assert len(holistic.BODY) == PARTS["body"].num_joints
    assert sorted(holistic.HAND) == list(range(21))
    assert holistic.JAW_POINTS + len(holistic.FACE_REST) == PARTS["face"].num_joints
    assert len(set(holistic.FACE_REST)) == len(holistic.FACE_REST) and max(holistic.FACE_REST) < 468
    # DOPE's finger f runs 0 -> f+1 -> 3f+6 -> 3f+7 -> 3f+8; MediaPipe's from 4f+1 to 4f+4
    for f in range(5):
        assert [holistic.HAND[k] for k in (f + 1, 3 * f + 6, 3 * f + 7, 3 * f + 8)] == [4 * f + 1 + i for i in range(4)]
    names = dict(zip(PARTS["body"].joints, holistic.BODY))
    assert names["r_wrist"] == (16,) and names["l_knee"] == (25,) and names["head"] == (7, 8)


def test_holistic_record_from_landmarks():
    """Arrays in MediaPipe's layout (no MediaPipe needed): a record training reads, hands sided by wrists."""
    from dope.training import holistic
    from dope.training.labels import parse_record
    rng = np.random.default_rng(0)
    pose = rng.uniform(100, 300, (33, 3))
    world = rng.normal(0, 0.3, (33, 3))
    hand = rng.uniform(0, 20, (21, 3)) + [pose[15, 0], pose[15, 1], 0]  # by the left wrist
    hand[0, :2] = pose[15, :2]
    face = rng.uniform(100, 150, (468, 3))
    rec = holistic.to_record("x.jpg", 480, 640, pose, world, [hand], face)
    lab = parse_record(json.loads(json.dumps(rec)), "x", ".")
    assert [len(lab.parts[p]) for p in PART_NAMES] == [1, 1, 1]
    assert lab.parts["hand"].is_right.tolist() == [False] and rec["body"][0]["left_hand"] == 0
    assert np.allclose(lab.parts["body"].pose2d[0, 6], pose[16, :2], atol=1e-3)
    assert np.allclose(lab.parts["body"].pose3d[0, 0], world[28] * [-1, -1, 1], atol=1e-5)
    jaw = lab.parts["face"].pose2d[0, :33]
    assert np.allclose(jaw[0], face[127, :2], atol=1e-3) and np.allclose(jaw[-1], face[356, :2], atol=1e-3)


def test_holistic_labels_land_on_the_astronaut(tmp_path):
    """MediaPipe Holistic on scikit-image's astronaut: her body and face joints in hand-checked boxes."""
    if not CI:
        pytest.importorskip("mediapipe")
        pytest.importorskip("skimage")
    from benchmarks.students import write_photos
    from dope.training.holistic import label_images
    (name,) = write_photos(str(tmp_path), ["astronaut"])
    (rec,) = label_images([str(tmp_path / name)])
    assert len(rec["body"]) == 1 and len(rec["face"]) == 1
    body = np.array(rec["body"][0]["pose2d"])
    # hand-checked on docs/training_holistic_astronaut.jpg: shoulders, elbows and head on her
    assert (body[8:13, 0] > 40).all() and (body[8:13, 0] < 360).all()
    assert (body[8:13, 1] > 80).all() and (body[8:13, 1] < 420).all()
    face = np.array(rec["face"][0]["pose2d"])
    assert (face[:, 0] > 150).all() and (face[:, 0] < 280).all() and (face[:, 1] > 40).all() and (face[:, 1] < 230).all()
    assert abs(np.array(rec["body"][0]["pose3d"])[[4, 5]].mean(0)).max() < 0.05  # origin between the hips


# ------------------------------------------------------------------------- layout


def test_the_library_never_imports_training():
    for folder, dirs, files in os.walk(os.path.join(ROOT, "dope")):
        if os.path.basename(folder) == "training":
            dirs[:] = []
            continue
        for f in files:
            if f.endswith(".py"):
                text = open(os.path.join(folder, f), encoding="utf-8").read()
                for node in ast.walk(ast.parse(text)):
                    if isinstance(node, ast.ImportFrom) and node.module:
                        assert not node.module.startswith("dope.training"), f
                    if isinstance(node, ast.Import):
                        assert not any(a.name.startswith("dope.training") for a in node.names), f
