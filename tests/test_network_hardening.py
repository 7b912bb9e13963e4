"""Hostile settings, options, files and values around the network (issues 15 and 20).

Settings by name, type and range in ppi, nms and checkpoints; one source for the proposal count;
arguments checked before anything loads; a checkpoint file replaced under a running process;
non-finite weights; negative camera indexes; JSON Lines with non-finite numbers.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import ROOT, TESTS
from dope import DOPE, DopeError
from dope.network.checkpoint import CheckpointError, read_checkpoint
from dope.network.dopenet import build_model
from dope.postprocessing.proposals import BOX_OVERLAPS, POSE_SUBSETS, nms, ppi
from dope.settings import IOU_FUNCS, SettingError


def proposals(n=6, a=20, j=13, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.dirichlet(np.ones(a + 1), n).astype(np.float32)
    boxes = np.tile(np.array([[10, 10, 90, 190]], np.float32), (n, 1))
    return scores, boxes, rng.uniform(0, 100, (n, a, j, 2)).astype(np.float32), \
        rng.normal(0, 0.3, (n, a, j, 3)).astype(np.float32)


# ----------------------------------------------------------------------------- settings by name


@pytest.mark.parametrize("bad", ["th_IoU", "th_pose3d", "k", "iou"])
def test_ppi_rejects_misspelled_settings_naming_them_and_the_known_ones(bad):
    with pytest.raises(SettingError, match=f"unknown setting '{bad}'; known: K, score_th, th_pose3D, th_iou"):
        ppi(*proposals(), (200, 100), **{bad: 0.9})


def test_ppi_and_nms_reject_bad_values():
    with pytest.raises(SettingError, match="th_iou='0.2'"):
        ppi(*proposals(), (200, 100), th_iou="0.2")
    with pytest.raises(SettingError, match="K=True"):
        ppi(*proposals(), (200, 100), K=True)
    with pytest.raises(SettingError, match="iou_func='nope'.*one of bbox"):
        ppi(*proposals(), (200, 100), iou_func="nope")
    with pytest.raises(SettingError, match="unknown setting 'th_iou'; known: min_score, K"):
        nms(*proposals(), th_iou=0.5)
    with pytest.raises(SettingError, match="min_score=nan"):
        nms(*proposals(), min_score=float("nan"))
    assert len(ppi(*proposals(), (200, 100), K=10, th_iou=0.2, th_pose3D=0.3, iou_func="bbox")) > 0


def test_iou_function_names_agree_with_the_overlaps():
    assert set(IOU_FUNCS) == set(BOX_OVERLAPS) | set(POSE_SUBSETS)


def changed(ckpt: dict, **dope_kwargs) -> dict:
    return {**ckpt, "dope_kwargs": {**ckpt["dope_kwargs"], **dope_kwargs}}


@pytest.fixture(scope="module")
def tiny(checkpoint_dict):
    """The fixtures' checkpoint at a 64/128 input size: the same network, quick to run."""
    return changed(checkpoint_dict, min_size=64, max_size=128)


@pytest.mark.parametrize("key,value,message", [
    ("min_size", -5, r"min_size=-5 is not valid; min_size must be an integer in 32\.\.4096"),
    ("min_size", 100000, "min_size=100000"),  # would allocate tens of GB
    ("min_size", 1e5, "min_size=100000.0"),
    ("max_size", "1333", "max_size='1333'"),
    ("min_size", True, "min_size=True"),
    ("rpn_nms_thresh", float("nan"), "rpn_nms_thresh=nan"),
    ("rpn_post_nms_top_n_test", 10 ** 7, "rpn_post_nms_top_n_test"),
    ("image_std", [0.2, 0.2], "image_std"),
    ("image_mean", "abc", "image_mean"),
    ("num_anchor_poses", {"body": 0}, "num_anchor_poses"),
    ("num_anchor_poses", {"feet": 3}, "num_anchor_poses"),
    ("pose2d_reg_weights", {"hand": "5"}, "pose2d_reg_weights"),
])
def test_checkpoint_network_settings_are_checked_at_load(checkpoint_dict, key, value, message):
    with pytest.raises(CheckpointError, match=message) as e:
        read_checkpoint(changed(checkpoint_dict, **{key: value}))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs,message", [
    ({"th_IoU": 0.9}, "body_ppi_kwargs: unknown setting 'th_IoU'; known: K, score_th"),
    ({"iou_func": "nope"}, "iou_func='nope'"),
    ({"K": "10"}, "K='10'"),
    ({"th_pose3D": -1}, "th_pose3D=-1"),
])
def test_checkpoint_ppi_settings_are_checked_at_load(checkpoint_dict, kwargs, message):
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint({**checkpoint_dict, "body_ppi_kwargs": {**checkpoint_dict["body_ppi_kwargs"], **kwargs}})


def test_download_verification_refuses_bad_settings(checkpoint_dict, tmp_path):
    from dope.inputs.weights import verify_checkpoint
    path = tmp_path / "bad.pth"
    torch.save(changed(checkpoint_dict, min_size=100000), path)
    with pytest.raises(CheckpointError, match="min_size=100000"):
        verify_checkpoint(str(path))


# --------------------------------------------------------------- one source for the proposal count


def test_proposal_count_comes_from_the_config(tiny, fixture_image):
    from dope.inputs.sources import load_image
    ckpt = changed(tiny, rpn_post_nms_top_n_test=300)
    assert build_model(read_checkpoint(ckpt)).max_proposals == 300  # the file's value
    det = DOPE(ckpt, device="cpu")  # the published override, through the config
    assert det.config["rpn_post_nms_top_n_test"] == 1000 and det.net.max_proposals == 1000
    det = DOPE(ckpt, device="cpu", max_proposals=20)
    assert det.config["rpn_post_nms_top_n_test"] == 20 and det.net.max_proposals == 20
    (out,) = det.network([load_image(fixture_image)])
    assert out["boxes"].shape == (20, 4)
    assert ckpt["dope_kwargs"]["rpn_post_nms_top_n_test"] == 300  # the caller's dict is not changed


# ------------------------------------------------------------------ arguments checked before loading

MISSING = "/nonexistent/folder/model.pth"  # loading it would fail: the argument's error must come first


@pytest.mark.parametrize("kwargs,message", [
    ({"device": "meta"}, "device 'meta' is not supported; use cpu, cuda or cuda:N"),
    ({"device": "mps"}, "device 'mps' is not supported"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"device": "cuda:99"}, "cuda:99"),
    ({"threads": 100000}, "threads=100000 is more than 4 per core"),
    ({"threads": 0}, "threads must be"),
    ({"precision": "fp8"}, "unknown precision 'fp8'"),
    ({"max_proposals": 0}, "max_proposals must be"),
    ({"max_proposals": 10 ** 6}, "max_proposals must be"),
    ({"min_score": float("nan")}, "min_score must be"),
    ({"min_score": -1}, "min_score must be"),
    ({"postprocess": "soft-nms"}, "unknown post-processing"),
])
def test_bad_arguments_are_refused_before_the_checkpoint_is_read(kwargs, message):
    threads = torch.get_num_threads()
    with pytest.raises(DopeError, match=message) as e:
        DOPE(MISSING, download=False, **kwargs)
    assert "\n" not in str(e.value)
    assert torch.get_num_threads() == threads  # a refused call changes nothing


def test_cuda_index_is_checked_against_the_gpus_present():
    from dope.detector import pick_device
    if not torch.cuda.is_available():
        with pytest.raises(DopeError, match="CUDA is not available"):
            pick_device("cuda:0")
    else:
        n = torch.cuda.device_count()
        assert pick_device(f"cuda:{n - 1}").index == n - 1
        with pytest.raises(DopeError, match=f"has {n} GPU"):
            pick_device(f"cuda:{n}")


# ---------------------------------------------------------------- checkpoint replaced while running


def test_checkpoint_replaced_or_truncated_under_a_running_process(tiny, fixture_image, tmp_path):
    # In a child process: with weights memory-mapped from the file, this would die of SIGBUS.
    path = tmp_path / "model.pth"
    torch.save(tiny, path)
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {ROOT!r})
        import numpy as np
        from dope import DOPE
        from dope.inputs.sources import load_image
        image = np.ascontiguousarray(load_image({fixture_image!r})[:160, :200])
        det = DOPE({str(path)!r}, device="cpu", max_proposals=30)
        before = det(image).to_json()
        with open({str(path)!r}, "r+b") as f:
            f.truncate(0)          # as `curl -o` over it does first
        with open({str(path)!r}, "wb") as f:
            f.write(b"x" * 4096)   # then other contents
        after = det(image).to_json()
        assert before == after
        print("same")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    assert r.stdout.strip() == "same"


# ------------------------------------------------------------------------------ non-finite values


@pytest.mark.parametrize("tensor,value", [("roi_heads.body_anchor_poses", np.inf),
                                          ("roi_heads.dope_predictor.body_cls_score.bias", np.nan)])
def test_non_finite_weights_warn_at_load_and_at_inference(tiny, caplog, tensor, value):
    state = dict(tiny["state_dict"])
    t = state[tensor].clone()
    t.view(-1)[0] = float(value)
    state[tensor] = t
    with caplog.at_level(logging.WARNING):
        det = DOPE({**tiny, "state_dict": state}, device="cpu", max_proposals=30)
    assert any("NaN or infinite" in r.getMessage() and tensor in r.getMessage() for r in caplog.records)
    caplog.clear()
    image = np.full((120, 160, 3), 120, np.uint8)
    with caplog.at_level(logging.WARNING):
        result = det(image)
        det(image)
    warnings = [r for r in caplog.records if "network outputs are NaN or infinite" in r.getMessage()]
    assert len(warnings) == 1  # once per detector, not once per frame

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    strict(result.to_json())


def test_json_lines_writer_writes_non_finite_numbers_as_null(tmp_path):
    from dope.outputs.writers import JsonLinesWriter
    path = tmp_path / "out.jsonl"
    with JsonLinesWriter(path) as w:
        w.write({"time_s": float("nan"), "x": [1.0, float("inf"), {"y": -float("inf")}], "n": 3})
    line = path.read_text().splitlines()[0]
    assert json.loads(line, parse_constant=lambda c: pytest.fail(c)) == {"time_s": None, "x": [1.0, None, {"y": None}],
                                                                         "n": 3}


# ------------------------------------------------------------------------------------- cameras


@pytest.mark.parametrize("index", [-1, -5])
def test_negative_camera_index_is_refused_before_opencv(tiny, index):
    from dope.inputs.sources import SourceError, Video
    with pytest.raises(SourceError, match="camera index must be 0 or more"):
        Video(index)
    det = DOPE(tiny, device="cpu", max_proposals=10)
    with pytest.raises(DopeError, match="camera index must be 0 or more"):
        next(det.stream(index))
