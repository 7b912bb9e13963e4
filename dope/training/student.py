"""The network being trained: made from a checkpoint (fine-tuning, compression) or new (a backbone
of the caller's choice, anchor poses by k-means on the labels), and written back in the official
checkpoint format (SPEC §2) that `dope.py --model` and `DOPE(...)` load unchanged."""
from __future__ import annotations

import copy
import dataclasses
import logging
import os
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import Tensor, nn

from dope.network.checkpoint import (DEFAULT_DOPE_KWARGS, LEGACY_KEYS, PUBLISHED_MAX_PROPOSALS, Checkpoint, merge_config,
                                     read_checkpoint)
from dope.network.dopenet import RESNETS, DOPENet, build_model
from dope.parts import PART_NAMES
from dope.training.labels import LabelledImage
from dope.training.targets import kmeans_anchor_poses

log = logging.getLogger(__name__)

# Post-processing settings of a new network (those of the published files): the first K hand
# anchor poses are right hands (k-means runs per side), every body anchor pose is a whole body.
NEW_PPI_KWARGS = {"body": {"th_pose3D": 0.3, "th_iou": 0.2, "iou_func": "bbox"},
                  "hand": {"th_pose3D": 0.3, "th_iou": 0.2, "iou_func": "bbox"},
                  "face": {"th_pose3D": 0.3, "th_iou": 0.2, "iou_func": "bbox"}}
SAVED_SETTINGS = ("min_size", "max_size", "num_anchor_poses", "backbone", "pose2d_reg_weights", "pose3d_reg_weights")
CHECKPOINT_TOP_KEYS = ("state_dict", "half", "dope_kwargs", *(f"{p}_ppi_kwargs" for p in PART_NAMES))


def hand_k(checkpoint: Checkpoint) -> Optional[int]:
    """The hands' K (right-hand anchor poses are those below it), as PPI reads it."""
    return checkpoint.ppi_kwargs.get("hand", {}).get("K")


def reset_part_predictors(net: DOPENet, generator: Optional[torch.Generator] = None) -> DOPENet:
    """Draw the part predictors' linear layers again, as torchvision initialises a detector's box
    predictor: class logits N(0, 0.01²), pose regressions N(0, 0.001²), biases 0. In place; returns net."""
    with torch.no_grad():
        for name, layer in net.roi_heads.dope_predictor.named_children():
            std = 0.01 if name.endswith("cls_score") else 0.001
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
            layer.bias.zero_()
    return net


def from_checkpoint(path: Any, backbone: Optional[str] = None, max_proposals: Optional[int] = None
                    ) -> tuple[DOPENet, Checkpoint]:
    """The network of a checkpoint, in float32: a file, a model name as `dope.py --model` takes it
    (`DOPE_v1_0_0`: the models folder, downloaded if official and missing), or a dict as
    `checkpoint_dict` gives."""
    if isinstance(path, (str, os.PathLike)):
        from dope.detector import resolve_model
        path = resolve_model(os.fspath(path))
    ckpt = read_checkpoint(path)
    # the proposals the detector keeps (PUBLISHED_MAX_PROPOSALS, whatever the file says)
    proposals = max_proposals or PUBLISHED_MAX_PROPOSALS
    ckpt = dataclasses.replace(ckpt, config=merge_config(ckpt.config, {"rpn_post_nms_top_n_test": proposals}))
    if backbone is not None and backbone != ckpt.config["backbone"]:
        from dope.errors import DopeError
        raise DopeError(f"--init {path!r} is a {ckpt.config['backbone']} network, not {backbone}: "
                        "leave out --backbone, or --init to train a new network")
    net = build_model(ckpt)
    # The network's tensors share the checkpoint's memory: give training its own copies.
    net.load_state_dict({k: v.clone() for k, v in net.state_dict().items()}, assign=True)
    return net.float(), Checkpoint(ckpt.config, {}, False, copy.deepcopy(ckpt.ppi_kwargs), ckpt.source)


def new_network(labels: list[LabelledImage], *, backbone: str = "resnet50",
                num_anchor_poses: Optional[Mapping[str, int]] = None, min_size: int = 800, max_size: int = 1333,
                imagenet: bool = False, seed: int = 0, max_proposals: Optional[int] = None
                ) -> tuple[DOPENet, Checkpoint]:
    """A new network: anchor poses by k-means on the labels (hands per side: the first half right),
    predictors drawn at random, the ResNet's weights from ImageNet (torchvision's, downloaded once
    into torch's cache) when `imagenet`, else random (training from scratch: slow and data-hungry)."""
    counts = dict(num_anchor_poses or DEFAULT_DOPE_KWARGS["num_anchor_poses"])
    config = merge_config(DEFAULT_DOPE_KWARGS, {"backbone": backbone, "num_anchor_poses": counts,
                                                "min_size": min_size, "max_size": max_size,
                                                "rpn_post_nms_top_n_test": max_proposals or PUBLISHED_MAX_PROPOSALS})
    torch.manual_seed(seed)
    net = DOPENet(config)
    ppi = copy.deepcopy(NEW_PPI_KWARGS)
    ppi["hand"]["K"] = counts["hand"] // 2
    ppi["body"]["K"] = counts["body"]
    ppi["face"]["K"] = counts["face"]
    for part in PART_NAMES:
        pose2d = np.concatenate([lab.parts[part].pose2d for lab in labels])
        pose3d = np.concatenate([lab.parts[part].pose3d for lab in labels])
        a = counts[part]
        if not len(pose3d):
            log.warning("no labelled %s: its anchor poses stay at zero", part)
            continue
        if part == "hand":
            right = np.concatenate([lab.parts[part].is_right for lab in labels])
            k = ppi["hand"]["K"]
            sides = [(right, k, 0), (~right, a - k, k)]
            anchors = np.zeros((a,) + pose3d.shape[1:-1] + (5,))
            for mask, n, start in sides:
                chosen = mask if mask.any() else np.ones_like(mask)
                anchors[start:start + n] = kmeans_anchor_poses(pose2d[chosen], pose3d[chosen], n, seed)
        else:
            anchors = kmeans_anchor_poses(pose2d, pose3d, a, seed)
        getattr(net.roi_heads, f"{part}_anchor_poses").copy_(torch.as_tensor(anchors, dtype=torch.float32))
    reset_part_predictors(net, torch.Generator().manual_seed(seed))
    if imagenet:
        _load_imagenet(net, backbone)
    return net, Checkpoint(config, {}, False, ppi, None)


def _load_imagenet(net: DOPENet, backbone: str) -> None:
    from torchvision.models import get_model_weights
    from dope.errors import DopeError
    weights = get_model_weights(backbone).IMAGENET1K_V1
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # no network, a proxy, a partial download: one line, not a traceback
        raise DopeError(f"cannot fetch torchvision's ImageNet weights of {backbone} ({e.__class__.__name__}: {e}); "
                        f"put them in torch's cache ({weights.url}) or leave out --imagenet") from None
    missing, unexpected = net.backbone.resnet_backbone.load_state_dict(state, strict=False)
    # FrozenBatchNorm2d has no num_batches_tracked: that alone may be left over.
    if missing or [k for k in unexpected if not k.endswith("num_batches_tracked")]:
        raise DopeError(f"torchvision's {backbone} weights do not fit: missing {missing[:2]}, unexpected {unexpected[:2]}")


def checkpoint_dict(net: DOPENet, checkpoint: Checkpoint) -> dict[str, Any]:
    """The network as an official checkpoint (SPEC §2): `state_dict` with the published tensor names
    (the ResNet under both prefixes, the RPN convolution under its old name), `half` False,
    `dope_kwargs` (the settings that differ from the defaults, the anchor-pose counts and the
    backbone), the three `<part>_ppi_kwargs`. Only tensors and plain values: loads with weights_only=True."""
    legacy = {new: old for old, new in LEGACY_KEYS.items()}
    state = {legacy.get(k, k): v.detach().float().cpu().clone() for k, v in net.state_dict().items()}
    # One ResNet registered twice: both names hold one tensor, as in the published files.
    shared = "roi_heads.dope_head.resnet_backbone."
    for k in list(state):
        if k.startswith(shared):
            state[k] = state["backbone.resnet_backbone." + k[len(shared):]]
    kwargs = {k: copy.deepcopy(checkpoint.config[k]) for k in SAVED_SETTINGS
              if k in ("num_anchor_poses", "backbone") or checkpoint.config[k] != DEFAULT_DOPE_KWARGS[k]}
    out: dict[str, Any] = {"state_dict": state, "half": False, "dope_kwargs": kwargs}
    for part in PART_NAMES:
        out[f"{part}_ppi_kwargs"] = dict(checkpoint.ppi_kwargs.get(part, {}))
    return out


def save(obj: Mapping[str, Any], path: str) -> None:
    """torch.save under a temporary name in the same folder, then renamed: never a half-written file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        torch.save(dict(obj), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def trainable(net: DOPENet, freeze: str) -> list[nn.Parameter]:
    """Set requires_grad by `freeze` and return the parameters to train: 'none' everything but the
    unused classifier `fc`; 'backbone' the RPN, ResNet stage 4 and the predictors (stem and stages
    1-3 frozen); 'features' the part predictors' linear layers alone."""
    if freeze not in ("none", "backbone", "features"):
        raise ValueError(f"freeze must be none, backbone or features, got {freeze!r}")
    resnet = net.backbone.resnet_backbone
    for p in net.parameters():
        p.requires_grad_(freeze == "none")
    if freeze == "backbone":
        for p in [*net.rpn.parameters(), *resnet.layer4.parameters()]:
            p.requires_grad_(True)
    for p in net.roi_heads.dope_predictor.parameters():
        p.requires_grad_(True)
    for p in resnet.fc.parameters():
        p.requires_grad_(False)
    seen, params = set(), []
    for p in net.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            params.append(p)
    return params


def anchor_poses(net: DOPENet) -> dict[str, Tensor]:
    return {p: getattr(net.roi_heads, f"{p}_anchor_poses") for p in PART_NAMES}


def backbones() -> tuple[str, ...]:
    return tuple(RESNETS)
