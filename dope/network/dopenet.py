"""The DOPE network (a Faster R-CNN with three part heads), built from a checkpoint.

The network is composed from torchvision's detection parts; what is DOPE's own is the shared
ResNet-50 (stages 1-3 as backbone, stage 4 as RoI head), the three part predictors and the
anchor-pose decoding. checkpoint.py reads and validates a file into a `Checkpoint`;
`build_model` builds the network from its config and loads its state dict strictly; cpu.py holds
the CPU fast paths the ResNet stages take.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torchvision.models.resnet import resnet18, resnet34, resnet50
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes, resize_keypoints
from torchvision.ops import FrozenBatchNorm2d

from dope.network import winograd
from dope.network.checkpoint import Checkpoint, CheckpointError, read_checkpoint
from dope.network.cpu import _cpu_bottleneck, _folded, _matmul_ready
from dope.network.ops import roi_align, roi_align_gathered, skip_random_init
from dope.parts import PART_NAMES, PARTS

log = logging.getLogger(__name__)

ANCHOR_SIZES = (32, 64, 128, 256, 512)
ANCHOR_RATIOS = (0.5, 1.0, 2.0)
BACKBONE_CHANNELS = 1024  # ResNet-50's stage 3 (the published network); see RESNETS for the others
FEATURE_SCALE = 1 / 16  # the backbone's stride: feature-map cells per input pixel (SPEC §3.5)
ROI_SIZE, ROI_SAMPLING_RATIO = 7, 2
HEAD_CHUNK = 128  # RoIs per pass through ResNet stage 4 on CPU (64 to 200 measured best)
HEAD_CHANNELS = 2048
# The ResNets a network can be built on (the config's `backbone`, settings.BACKBONES): builder, channels
# out of stage 3 (the backbone) and out of stage 4 (the RoI head). The published checkpoints are
# ResNet-50 and do not say so; the lighter ones are for students (dope/training/).
RESNETS: dict[str, tuple[Callable[..., nn.Module], int, int]] = {
    "resnet50": (resnet50, BACKBONE_CHANNELS, HEAD_CHANNELS),
    "resnet34": (resnet34, 256, 512),
    "resnet18": (resnet18, 256, 512),
}


class ResNetStages(nn.Module):
    """ResNet stem and stages 1-3 (stride 16; 1024 channels for ResNet-50): DOPE's backbone."""

    def __init__(self, resnet: nn.Module, out_channels: int = BACKBONE_CHANNELS) -> None:
        super().__init__()
        self.resnet_backbone = resnet
        self.out_channels = out_channels
        self.channels_last = False  # see DOPENet.channels_last

    def forward(self, x: Tensor) -> Tensor:
        r = self.resnet_backbone
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        stages = (r.layer1, r.layer2, r.layer3)
        if not (x.device.type == "cpu" and self.channels_last and isinstance(r.bn1, nn.Identity)
                and all(_folded(b) for stage in stages for b in stage)):
            return r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x)))))))
        # On a CPU: stage 3's 3x3 convolutions as Winograd products where allowed (its 1x1 ones
        # stay oneDNN's, faster there; `_cpu_bottleneck`)
        x = r.maxpool(r.relu(r.conv1(x)))
        for stage in stages:
            for block in stage:
                x = _cpu_bottleneck(block, x, matmul_1x1=False)
        return x


class ResNetHead(nn.Module):
    """ResNet-50 stage 4 and global average pooling on RoI features: (R, 1024, 7, 7) -> (R, 2048).

    On CPU the RoIs go through in chunks of at most HEAD_CHUNK: about 15% faster than all at once (the
    activations stay in cache) for the same results, and hundreds of MB less memory. On CPU in
    channels-last with the batch norms folded, the 1x1 convolutions of stage 4 run as matrix
    products over the pixels, and its 3x3 ones of stride 1 as Winograd products (`_cpu_bottleneck`):
    on 7x7 and 4x4 maps oneDNN's convolutions reach less of the machine than one GEMM does.
    """

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.resnet_backbone = resnet
        self.channels_last = False  # see DOPENet.channels_last

    def forward(self, x: Tensor) -> Tensor:
        r = self.resnet_backbone
        # Chunks of equal sizes (1000 RoIs: 8 of 125, not 7 of 128 and one of 104): oneDNN builds its
        # kernels once per shape, and each new shape costs a first call of its own.
        chunks = x.tensor_split(-(-len(x) // HEAD_CHUNK)) if x.device.type == "cpu" and len(x) > HEAD_CHUNK else [x]
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        chunks = [c.contiguous(memory_format=layout) for c in chunks]
        stage: Callable[[Tensor], Tensor] = r.layer4
        if x.device.type == "cpu" and self.channels_last and all(_matmul_ready(b) for b in r.layer4):
            def stage(t: Tensor) -> Tensor:
                for block in r.layer4:
                    t = _cpu_bottleneck(block, t, matmul_1x1=True)
                return t
        return torch.cat([torch.flatten(r.avgpool(stage(c)), 1) for c in chunks])


def _apply_keeping_fp32(module: nn.Module, apply: Any, fn: Any, recurse: bool,
                        slots: list[tuple[dict[str, Any], str]]) -> nn.Module:
    """`module._apply(fn)` (every .to, .half, .cuda goes through it) with the fp32 tensors in `slots`
    ((dict, name) of parameters or buffers) moved but not cast: they keep their fp32 values."""
    # .data: parameters are converted in place (param.data = ...), so keep the tensors themselves
    saved = [(store, name, None if store[name] is None else store[name].data) for store, name in slots]
    apply(fn, recurse)
    for store, name, before in saved:
        after = store[name]
        if before is not None and after is not None and before.dtype == torch.float32 and after.dtype != torch.float32:
            moved = before.to(after.device)
            if isinstance(after, nn.Parameter):
                after.data = moved
            else:
                store[name] = moved
    return module


class PartPredictor(nn.Module):
    """Per part: anchor-pose class logits (A+1) and pose regressions (A*J*5) from a 2048-d feature.

    Runs in fp32 whatever dtype the network is moved to (its weights stay fp32): in fp16, the
    regressions' rounding alone puts joints of a 1900 px box half a pixel off, and these layers
    cost about 1% of the RoI head.
    """

    def __init__(self, num_anchor_poses: Mapping[str, int], in_channels: int = HEAD_CHANNELS) -> None:
        super().__init__()
        for part in PART_NAMES:
            a, j = num_anchor_poses[part], PARTS[part].num_joints
            self.add_module(f"{part}_cls_score", nn.Linear(in_channels, a + 1))
            self.add_module(f"{part}_pose_pred", nn.Linear(in_channels, a * j * 5))

    def _apply(self, fn: Any, recurse: bool = True) -> "PartPredictor":
        return _apply_keeping_fp32(self, super()._apply, fn, recurse,
                                   [(layer._parameters, name) for layer in self.children() for name in layer._parameters])

    def forward(self, x: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        x = x.float()
        return {p: (getattr(self, f"{p}_cls_score")(x), getattr(self, f"{p}_pose_pred")(x)) for p in PART_NAMES}


class RoIPool(nn.Module):
    """RoIAlign of proposals on the feature map: 7x7, sampling ratio 2, at the map's fixed scale of
    1/16 (SPEC §3.5), in fp32 whatever the network's dtype; nothing is kept from one call to the next.

    forward(feature_map (B, C, H/16, W/16), proposals: per image (R_i, 4) boxes in network-input
    pixels) -> (sum R_i, C, 7, 7) in the feature map's dtype.

    The scale is the backbone's stride, not derived from the batch (torchvision's MultiScaleRoIAlign
    infers it from the first call's image and feature sizes and caches it: a padded batch of mixed
    orientations could fix a wrong one). fp32 because torchvision's RoIAlign has no bf16 kernel on
    CPU or CUDA, and fp16 box coordinates lose up to half a pixel at 1000 px; the map's conversion
    costs a fraction of the backbone's time.
    On a CPU it runs as one weighted gather (ops.roi_align_gathered: about 4x faster than
    torchvision's kernel, which loops over channels on one core; same features to float noise);
    elsewhere torchvision's kernel.
    """

    def __init__(self, output_size: int = ROI_SIZE, spatial_scale: float = FEATURE_SCALE,
                 sampling_ratio: int = ROI_SAMPLING_RATIO) -> None:
        super().__init__()
        self.output_size, self.spatial_scale, self.sampling_ratio = output_size, spatial_scale, sampling_ratio

    def align(self, feature_map: Tensor, boxes: list[Tensor]) -> Tensor:
        return roi_align(feature_map, boxes, self.output_size, self.spatial_scale, self.sampling_ratio, aligned=False)

    def forward(self, feature_map: Tensor, proposals: list[Tensor]) -> Tensor:
        dtype = feature_map.dtype
        fmap, boxes = feature_map.float(), [p.float() for p in proposals]
        if fmap.device.type == "cpu":
            return roi_align_gathered(fmap, boxes, self.output_size, self.spatial_scale, self.sampling_ratio).to(dtype)
        return self.align(fmap, boxes).to(dtype)


class DopeRoIHeads(nn.Module):
    """RoIAlign, the ResNet stage-4 head, the part predictors and the anchor-pose decoding.

    The part predictors and anchor poses stay fp32 whatever dtype the network is moved to, and
    decoding runs in fp32: in fp16 a box-relative joint position at 1920 px is off by up to a pixel.
    """

    def __init__(self, resnet: nn.Module, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.box_roi_pool = RoIPool()
        self.dope_head = ResNetHead(resnet)
        self.dope_predictor = PartPredictor(config["num_anchor_poses"], RESNETS[config["backbone"]][2])
        for part in PART_NAMES:
            a, j = config["num_anchor_poses"][part], PARTS[part].num_joints
            self.register_buffer(f"{part}_anchor_poses", torch.zeros(a, j, 5))
        self.pose2d_reg_weights = dict(config["pose2d_reg_weights"])
        self.pose3d_reg_weights = dict(config["pose3d_reg_weights"])

    def _apply(self, fn: Any, recurse: bool = True) -> "DopeRoIHeads":
        return _apply_keeping_fp32(self, super()._apply, fn, recurse,
                                   [(self._buffers, f"{part}_anchor_poses") for part in PART_NAMES])

    def features(self, feature_map: Tensor, proposals: list[Tensor]) -> Tensor:
        """(sum R_i, 2048) features of every proposal, in the network's dtype."""
        return self.dope_head(self.box_roi_pool(feature_map, proposals))

    def decode(self, features: Tensor, boxes: Tensor) -> dict[str, dict[str, Tensor]]:
        """Per part: scores (R, A+1), pose2d (R, A, J, 2) in the boxes' pixels, pose3d (R, A, J, 3);
        fp32 whatever the dtype of `features` (R, 2048)."""
        out = {}
        boxes = boxes.float()
        size = (boxes[:, 2:] - boxes[:, :2])[:, None, None, :]
        corner = boxes[:, None, None, :2]
        for part, (logits, reg) in self.dope_predictor(features).items():
            logits, reg = logits.float(), reg.float()
            anchors = getattr(self, f"{part}_anchor_poses").float()
            a, j = anchors.shape[:2]
            reg = reg.view(-1, a, 5 * j)
            d2 = reg[:, :, :2 * j].reshape(-1, a, j, 2)
            d3 = reg[:, :, 2 * j:].reshape(-1, a, j, 3)
            pose2d = corner + (anchors[None, :, :, :2] + d2 / self.pose2d_reg_weights[part]) * size
            pose3d = anchors[None, :, :, 2:] + d3 / self.pose3d_reg_weights[part]
            out[part] = {"scores": torch.softmax(logits, dim=1), "pose2d": pose2d, "pose3d": pose3d}
        return out


class ProposalHead(RPNHead):
    """torchvision's RPN head, whose objectness and box deltas come out in fp32 whatever the
    network's dtype: box decoding, proposal filtering and NMS then run in fp32 (torchvision has no
    reduced-precision NMS on CPU and no bf16 one on CUDA; fp16 boxes lose up to half a pixel)."""

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__(in_channels, num_anchors)

    def forward(self, x: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        conv = self.conv[0][0]  # torchvision's Conv2dNormActivation: the 3x3 convolution, then a ReLU
        if not all(winograd.usable(conv, f) for f in x):
            logits, deltas = super().forward(x)
            return [t.float() for t in logits], [t.float() for t in deltas]
        # on a CPU: the 3x3 convolution (1024 channels, a third of the backbone's work) as Winograd products
        hidden = [winograd.conv3x3(f, conv).relu_() for f in x]
        return [self.cls_logits(t) for t in hidden], [self.bbox_pred(t) for t in hidden]


class FP32Anchors(AnchorGenerator):
    """torchvision's anchor generator, whose anchors are fp32 whatever the feature map's dtype."""

    def forward(self, image_list: Any, feature_maps: list[Tensor]) -> list[Tensor]:
        # The maps give only their shape, dtype and device: stand-ins of the same shape cost nothing.
        shapes = [torch.empty((), dtype=torch.float32, device=f.device).expand(f.shape) for f in feature_maps]
        return super().forward(image_list, shapes)


class DOPENet(nn.Module):
    """Images in, per-image proposal boxes and per-part anchor-pose scores and poses out.

    forward(images: list of float[3, H, W] in [0, 1], original_sizes=None) -> list (one per image)
    of dicts: boxes (R, 4) in original-image pixels, and per part name a dict with
        scores (R, A+1), pose2d (R, A, J, 2) in original-image pixels, pose3d (R, A, J, 3);
    all fp32 whatever the network's dtype. original_sizes: (H, W) per image when the images given
    were shrunk from larger originals (boxes and poses are mapped to those); default: their sizes.
    R is at most `max_proposals`, the config's rpn_post_nms_top_n_test: the one setting of it.
    """

    def __init__(self, config: Mapping[str, Any], *, device: Union[str, torch.device, None] = None) -> None:
        """device: where weights are allocated (default: torch's). 'meta' builds the structure
        without allocating or randomly initialising any weight (50 M of them: most of the build
        time), for `build_model` to put a checkpoint's tensors in."""
        super().__init__()
        c = config
        weights = torch.device(device) if device is not None else contextlib.nullcontext()
        self.transform = GeneralizedRCNNTransform(c["min_size"], c["max_size"], c["image_mean"], c["image_std"])
        # Outside `weights`: the anchor generator's cell anchors are constants, not checkpoint tensors.
        anchors = FP32Anchors(sizes=(ANCHOR_SIZES,), aspect_ratios=(ANCHOR_RATIOS,))
        make_resnet, channels, _ = RESNETS[c["backbone"]]
        with weights:
            resnet = make_resnet(weights=None, norm_layer=FrozenBatchNorm2d)
            rpn_head = ProposalHead(channels, anchors.num_anchors_per_location()[0])
        # One ResNet registered twice, as in the checkpoint: stages 1-3 here, stage 4 in the RoI head.
        self.backbone = ResNetStages(resnet, channels)
        self.rpn = RegionProposalNetwork(
            anchors, rpn_head,
            c["rpn_fg_iou_thresh"], c["rpn_bg_iou_thresh"], c["rpn_batch_size_per_image"],
            c["rpn_positive_fraction"],
            dict(training=c["rpn_pre_nms_top_n_train"], testing=c["rpn_pre_nms_top_n_test"]),
            dict(training=c["rpn_post_nms_top_n_train"], testing=c["rpn_post_nms_top_n_test"]),
            c["rpn_nms_thresh"])
        with weights:
            self.roi_heads = DopeRoIHeads(resnet, c)


    @property
    def channels_last(self) -> bool:
        """Whether the convolutions run in the channels-last layout (about 1.3x faster on CPU).

        The activations decide: the backbone's input and the RoI features are made channels-last,
        and every convolution after them follows. The weights stay as loaded: oneDNN reorders them
        for each call whatever their layout (same results to the bit, same speed), so no copy of
        them is made at load time.
        """
        return self.backbone.channels_last

    @channels_last.setter
    def channels_last(self, on: bool) -> None:
        self.backbone.channels_last = self.roi_heads.dope_head.channels_last = bool(on)

    @property
    def max_proposals(self) -> int:
        """Proposals kept after the RPN (the config's rpn_post_nms_top_n_test; fixed at build)."""
        return self.rpn.post_nms_top_n()

    @property
    def device(self) -> torch.device:
        return self.backbone.resnet_backbone.conv1.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the convolutions (the part predictors, anchor poses and decoding stay fp32)."""
        return self.backbone.resnet_backbone.conv1.weight.dtype

    def forward(self, images: Sequence[Tensor],
                original_sizes: Optional[Sequence[tuple[int, int]]] = None) -> list[dict[str, Any]]:
        if original_sizes is None:
            original_sizes = [tuple(img.shape[-2:]) for img in images]
        batch, _ = self.transform([img.to(self.device, self.dtype) for img in images])
        features = self.backbone(batch.tensors)
        proposals, _ = self.rpn(batch, {"0": features})
        feats = self.roi_heads.features(features, proposals)
        return self.decode(feats, proposals, batch.image_sizes, list(original_sizes))

    def decode(self, feats: Tensor, proposals: list[Tensor], image_sizes: list[tuple[int, int]],
               original_sizes: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """Split the RoI features per image, decode them and map boxes and 2D poses to original pixels."""
        results = []
        for feat, boxes, size, original in zip(feats.split([len(p) for p in proposals]), proposals,
                                               image_sizes, original_sizes):
            parts = self.roi_heads.decode(feat, boxes)
            out: dict[str, Any] = {"boxes": resize_boxes(boxes, size, original)}
            for part, d in parts.items():
                out[part] = {"scores": d["scores"], "pose2d": resize_keypoints(d["pose2d"], size, original),
                             "pose3d": d["pose3d"]}
            results.append(out)
        return results


def build_model(checkpoint: Checkpoint) -> DOPENet:
    """Build the network the checkpoint describes and load its weights strictly (in eval mode).

    The network's fp32 tensors are the checkpoint's own (no copy): they share memory with
    `checkpoint.state_dict` (the file's contents in memory of this process: the file itself is not
    used after loading).
    """
    try:
        with skip_random_init():  # the checkpoint gives every value
            net = DOPENet(checkpoint.config, device="meta")
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {checkpoint.source or ''} has unusable dope_kwargs: {e}") from None
    expected = net.state_dict()
    got = checkpoint.state_dict
    where = f" {checkpoint.source!r}" if checkpoint.source else ""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    if missing or unexpected:
        what = []
        if missing:
            what.append(f"{len(missing)} missing tensor(s), e.g. {missing[0]!r}")
        if unexpected:
            what.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]!r}")
        raise CheckpointError(f"checkpoint{where} does not match the DOPE network: {'; '.join(what)}")
    for k, v in expected.items():
        if tuple(got[k].shape) != tuple(v.shape):
            raise CheckpointError(f"checkpoint{where}: tensor {k!r} has shape {tuple(got[k].shape)}, "
                                  f"expected {tuple(v.shape)}")
    # Both ResNet prefixes point at the same module: it takes the tensors of the last prefix loaded.
    net.load_state_dict({k: v.float() for k, v in got.items()}, strict=True, assign=True)
    left = [k for k, t in [*net.named_parameters(), *net.named_buffers()] if t.is_meta]
    if left:  # strict loading covers every tensor of the state dict; this would be a bug here
        raise RuntimeError(f"tensors not loaded from the checkpoint: {', '.join(left)}")
    return net.eval()


def fold_batchnorms(net: DOPENet, *, in_place: bool = False) -> DOPENet:
    """Fold each FrozenBatchNorm2d of the ResNet into the convolution before it; returns `net`.

    A frozen batch norm is an affine map per channel (x * scale + shift), so the convolution it
    follows can do it: weights scaled per output channel, the shift as the convolution's bias, and
    the norm becomes an identity. Same function to float noise (products rounded once instead of
    twice), and the network skips two passes over every activation: about 1.7x on ResNet stages
    1-3 and 1.3x on stage 4 on a CPU. Inference only: the state dict no longer has the checkpoint's
    names (no `bn*` tensors, convolutions with biases). Fold in fp32, then cast to half if wanted.

    in_place: scale the weight tensors where they are (7 ms; for tensors nothing else holds, such as
    a checkpoint just read from a file); otherwise new ones are made (about 50 ms) and the old ones
    are left as they were.
    """
    def fold(owner: nn.Module, conv_name: str, norm_name: str) -> None:
        conv, norm = getattr(owner, conv_name), getattr(owner, norm_name)
        if not isinstance(norm, FrozenBatchNorm2d):
            return  # folded already
        scale = norm.weight * (norm.running_var + norm.eps).rsqrt()  # FrozenBatchNorm2d's own formula
        shift = norm.bias - norm.running_mean * scale
        if conv.bias is not None:  # ResNet's convolutions have none; kept general
            shift = shift + conv.bias * scale
        weight = conv.weight.data
        weight = weight.mul_(scale.reshape(-1, 1, 1, 1)) if in_place else weight * scale.reshape(-1, 1, 1, 1)
        conv.weight = nn.Parameter(weight, requires_grad=False)
        conv.bias = nn.Parameter(shift, requires_grad=False)
        setattr(owner, norm_name, nn.Identity())

    resnet = net.backbone.resnet_backbone  # the one ResNet: the RoI head holds the same module
    with torch.no_grad():
        fold(resnet, "conv1", "bn1")
        for stage in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
            for block in stage:
                for i in (1, 2, 3):
                    if hasattr(block, f"bn{i}"):  # ResNet-18/34's BasicBlocks have two
                        fold(block, f"conv{i}", f"bn{i}")
                if block.downsample is not None:
                    fold(block.downsample, "0", "1")
    return net


def load_model(source: Union[str, os.PathLike, Mapping[str, Any], Checkpoint]) -> tuple[DOPENet, Checkpoint]:
    """Read and build in one step."""
    ckpt = source if isinstance(source, Checkpoint) else read_checkpoint(source)
    return build_model(ckpt), ckpt
