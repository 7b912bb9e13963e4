"""Checkpoint reading and validation, network construction, precision choice."""
from __future__ import annotations

import os

import pytest
import torch

from dope import DopeError, pick_dtype
from dope.network.checkpoint import CheckpointError, read_checkpoint
from dope.network.dopenet import build_model


def with_state(ckpt: dict, **changes) -> dict:
    """A shallow copy of a checkpoint dict with its state_dict changed (None removes a key)."""
    state = dict(ckpt["state_dict"])
    for k, v in changes.items():
        if v is None:
            state.pop(k)
        else:
            state[k] = v
    return {**ckpt, "state_dict": state}


def test_reads_legacy_rpn_names_and_defaults(checkpoint_dict):
    assert "rpn.head.conv.weight" in checkpoint_dict["state_dict"]
    ckpt = read_checkpoint(checkpoint_dict)
    assert "rpn.head.conv.0.0.weight" in ckpt.state_dict and "rpn.head.conv.weight" not in ckpt.state_dict
    assert ckpt.config["min_size"] == 320 and ckpt.config["max_size"] == 512
    assert ckpt.config["image_mean"] == [0.485, 0.456, 0.406]
    assert ckpt.config["num_anchor_poses"] == {"body": 20, "hand": 10, "face": 10}
    assert ckpt.ppi_kwargs["hand"]["K"] == 5
    assert ckpt.half is False


@pytest.fixture(scope="module")
def net(checkpoint_dict):
    return build_model(read_checkpoint(checkpoint_dict))


def test_loads_strictly_and_shares_the_resnet(net, checkpoint_dict):
    w = checkpoint_dict["state_dict"]["rpn.head.conv.weight"]
    assert torch.equal(net.rpn.head.conv[0][0].weight, w)
    assert net.backbone.resnet_backbone is net.roi_heads.dope_head.resnet_backbone
    anchors = checkpoint_dict["state_dict"]["roi_heads.face_anchor_poses"]
    assert torch.equal(net.roi_heads.face_anchor_poses, anchors)
    assert not net.training


def test_current_rpn_names_are_accepted_too(checkpoint_dict):
    state = dict(checkpoint_dict["state_dict"])
    for t in ("weight", "bias"):
        state[f"rpn.head.conv.0.0.{t}"] = state.pop(f"rpn.head.conv.{t}")
    ckpt = read_checkpoint({**checkpoint_dict, "state_dict": state})
    assert "rpn.head.conv.0.0.bias" in ckpt.state_dict


def test_unknown_setting_is_named(checkpoint_dict):
    bad = {**checkpoint_dict, "dope_kwargs": {**checkpoint_dict["dope_kwargs"], "frobnicate": 3}}
    with pytest.raises(CheckpointError, match="dope_kwargs: unknown setting 'frobnicate'; known: min_size"):
        read_checkpoint(bad)


def test_missing_tensor_is_named(checkpoint_dict):
    ckpt = read_checkpoint(with_state(checkpoint_dict, **{"roi_heads.dope_predictor.hand_cls_score.bias": None}))
    with pytest.raises(CheckpointError, match="missing tensor.*hand_cls_score.bias"):
        build_model(ckpt)


def test_unexpected_tensor_is_named(checkpoint_dict):
    ckpt = read_checkpoint(with_state(checkpoint_dict, **{"roi_heads.extra": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="unexpected tensor.*roi_heads.extra"):
        build_model(ckpt)


def test_wrong_shape_is_named(checkpoint_dict):
    ckpt = read_checkpoint(with_state(checkpoint_dict, **{"roi_heads.body_anchor_poses": torch.zeros(21, 13, 5)}))
    with pytest.raises(CheckpointError, match=r"roi_heads.body_anchor_poses.*\(21, 13, 5\).*\(20, 13, 5\)"):
        build_model(ckpt)


def test_anchor_pose_counts_come_from_the_file(checkpoint_dict):
    # A checkpoint with 5 body anchor poses: the predictor and buffers follow the file.
    state = dict(checkpoint_dict["state_dict"])
    state["roi_heads.body_anchor_poses"] = state["roi_heads.body_anchor_poses"][:5]
    state["roi_heads.dope_predictor.body_cls_score.weight"] = state["roi_heads.dope_predictor.body_cls_score.weight"][:6]
    state["roi_heads.dope_predictor.body_cls_score.bias"] = state["roi_heads.dope_predictor.body_cls_score.bias"][:6]
    state["roi_heads.dope_predictor.body_pose_pred.weight"] = state["roi_heads.dope_predictor.body_pose_pred.weight"][:325]
    state["roi_heads.dope_predictor.body_pose_pred.bias"] = state["roi_heads.dope_predictor.body_pose_pred.bias"][:325]
    kwargs = {**checkpoint_dict["dope_kwargs"], "num_anchor_poses": {"body": 5, "hand": 10, "face": 10}}
    net = build_model(read_checkpoint({**checkpoint_dict, "state_dict": state, "dope_kwargs": kwargs}))
    assert net.roi_heads.body_anchor_poses.shape == (5, 13, 5)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch /tmp/dope_test_pwned_marker",))


def test_checkpoint_that_runs_code_is_refused_without_running(tmp_path):
    marker = "/tmp/dope_test_pwned_marker"
    if os.path.exists(marker):
        os.unlink(marker)
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        read_checkpoint(str(path))
    assert not os.path.exists(marker)


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (b"this is not a checkpoint at all" * 10, "not a readable checkpoint"),
])
def test_corrupt_files(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(str(path))


def test_truncated_file(tmp_path, checkpoint_path):
    path = tmp_path / "cut.pth"
    with open(checkpoint_path, "rb") as f:
        path.write_bytes(f.read(1_000_000))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(str(path))


@pytest.mark.parametrize("obj", [{"model": {"w": torch.zeros(1)}}, torch.zeros(3), [1, 2]])
def test_foreign_files(tmp_path, obj):
    path = tmp_path / "other.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="not a DOPE checkpoint"):
        read_checkpoint(str(path))


def test_missing_file():
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint("/nonexistent/x.pth")


def test_precision_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert pick_dtype("auto", True, cpu) == torch.float32
    assert pick_dtype("auto", True, cuda) == torch.float16
    assert pick_dtype("auto", False, cuda) == torch.float32
    assert pick_dtype("bf16", False, cpu) == torch.bfloat16
    assert pick_dtype("fp16", False, cpu) == torch.float16
    with pytest.raises(DopeError, match="unknown precision"):
        pick_dtype("fp8", False, cpu)


def test_half_checkpoint_runs_in_fp32_on_cpu(checkpoint_dict, fixture_image):
    from dope import DOPE
    half = {**checkpoint_dict, "half": True,
            "state_dict": {k: v.half() for k, v in checkpoint_dict["state_dict"].items()}}
    det = DOPE(half, device="cpu")
    assert det.dtype == torch.float32
    assert det.net.roi_heads.body_anchor_poses.dtype == torch.float32
    assert det.checkpoint.half is True


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_runs_on_cpu(checkpoint_dict, fixture_image, precision):
    # torchvision has no fp16/bf16 NMS (and no bf16 RoIAlign) on CPU: those steps run in fp32.
    import numpy as np
    from dope import DOPE
    from dope.inputs.sources import load_image
    det = DOPE(checkpoint_dict, device="cpu", precision=precision, max_proposals=20)
    assert det.net.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    assert det.net.backbone.resnet_backbone.conv1.weight.dtype == det.net.dtype
    assert det.net.roi_heads.body_anchor_poses.dtype == torch.float32  # decoding stays fp32
    image = np.ascontiguousarray(load_image(fixture_image)[:96, :128])
    (out,) = det.network([image])
    assert out["boxes"].shape == (20, 4) and out["body"]["scores"].shape == (20, 21)
    assert np.isfinite(out["body"]["pose2d"]).all()
    result = det(image)
    assert len(result.body) > 0


# ------------------------------------------------------------------ batch norms folded for inference


def test_folded_batch_norms_give_the_same_outputs(checkpoint_dict):
    from dope.network.dopenet import fold_batchnorms
    from torchvision.ops import FrozenBatchNorm2d
    plain = build_model(read_checkpoint(checkpoint_dict))
    ckpt = read_checkpoint(checkpoint_dict)
    before = {k: v.clone() for k, v in ckpt.state_dict.items()}
    folded = fold_batchnorms(build_model(ckpt))
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.Identity) for m in folded.backbone.resnet_backbone.modules()) == 53
    for k, v in ckpt.state_dict.items():  # not in place: the checkpoint's tensors are as they were
        assert torch.equal(v, before[k]), k
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        a, b = plain.backbone(x), folded.backbone(x)
        assert a.abs().max() > 0.01
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
        rois = torch.rand(8, 1024, 7, 7, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(folded.roi_heads.dope_head(rois), plain.roi_heads.dope_head(rois),
                                   rtol=1e-4, atol=1e-5)
    again = fold_batchnorms(folded)  # folding twice changes nothing
    assert torch.equal(again.backbone.resnet_backbone.conv1.weight, folded.backbone.resnet_backbone.conv1.weight)


def test_folding_in_place_reuses_the_checkpoint_tensors(checkpoint_dict):
    from dope.network.dopenet import fold_batchnorms
    ckpt = read_checkpoint({**checkpoint_dict,
                            "state_dict": {k: v.clone() for k, v in checkpoint_dict["state_dict"].items()}})
    # the ResNet is registered twice; it holds the tensors of the prefix loaded last
    name = "roi_heads.dope_head.resnet_backbone.layer1.0.conv1.weight"
    original = ckpt.state_dict[name].clone()
    net = fold_batchnorms(build_model(ckpt), in_place=True)
    w = net.backbone.resnet_backbone.layer1[0].conv1.weight
    assert w.data_ptr() == ckpt.state_dict[name].data_ptr()
    assert not torch.equal(w, original)  # scaled where it was


def test_dope_runs_with_folded_batch_norms(checkpoint_path):
    from dope import DOPE
    from torchvision.ops import FrozenBatchNorm2d
    det = DOPE(checkpoint_path, device="cpu", max_proposals=20)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in det.net.modules())


def test_stage4_with_matrix_products_equals_torchvisions_blocks(checkpoint_dict):
    from dope.network.cpu import _matmul_ready
    from dope.network.dopenet import fold_batchnorms
    folded = fold_batchnorms(build_model(read_checkpoint(checkpoint_dict)))
    head = folded.roi_heads.dope_head
    assert all(_matmul_ready(b) for b in head.resnet_backbone.layer4)
    assert not any(_matmul_ready(b) for b in build_model(read_checkpoint(checkpoint_dict)).roi_heads.dope_head
                   .resnet_backbone.layer4)  # not folded: torchvision's blocks as they are
    rois = torch.rand(150, 1024, 7, 7, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        head.channels_last = True
        fast = head(rois)
        head.channels_last = False  # torchvision's Bottleneck.forward, contiguous layout
        plain = head(rois)
    assert fast.shape == (150, 2048) and plain.abs().max() > 0.01
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


def test_backbone_fast_path_equals_torchvisions_blocks(checkpoint_dict):
    from dope.network import dopenet
    folded = dopenet.fold_batchnorms(build_model(read_checkpoint(checkpoint_dict)))
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(3))
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # Winograd allowed, as the command line runs
        with torch.inference_mode():
            folded.channels_last = True
            fast = folded.backbone(x)
            folded.channels_last = False  # torchvision's Bottleneck.forward, contiguous layout
            plain = folded.backbone(x)
    finally:
        torch.set_float32_matmul_precision(before)
    assert fast.is_contiguous(memory_format=torch.channels_last) and plain.abs().max() > 0.01
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


def test_the_cpu_path_leaves_the_callers_tensors_alone(checkpoint_dict):
    """The in-place residual sums and ReLUs write only into the network's own intermediates."""
    from dope.network import dopenet
    folded = dopenet.fold_batchnorms(build_model(read_checkpoint(checkpoint_dict)))
    folded.channels_last = True
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(4)).contiguous(memory_format=torch.channels_last)
    before = x.clone()
    with torch.inference_mode():
        folded.backbone(x)
    assert torch.equal(x, before)
