"""What a DOPE network learns from labels: the targets of one image in network-input pixels, the
proposals sampled and matched to them, and the losses.

Losses (summed, each with weight 1; `LOSS_WEIGHTS` to change them):
- `loss_objectness`, `loss_rpn_box_reg`: torchvision's RPN losses against the labelled part boxes
  of every part (the RPN proposes bodies, hands and faces alike), when the RPN is trained;
- per part p, on RoIs_PER_IMAGE proposals per image (the labelled boxes added to the proposals, at
  most POSITIVE_FRACTION of them positive), a proposal being positive for p when its IoU with a
  labelled p box is at least FG_IOU:
  `loss_<p>_cls`: cross-entropy over background and the A anchor poses (mean over sampled RoIs);
  `loss_<p>_pose2d`, `loss_<p>_pose3d`: smooth-L1 (beta 1/9, as torchvision's box regression) between
  the pose layer's values of the matched label's anchor pose and the targets (targets.encode),
  summed over the positives and coordinates, divided by the number of sampled RoIs and by J (so
  that 84 face joints weigh like 13 body joints).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou

from dope.parts import PART_NAMES, PARTS
from dope.training.labels import LabelledImage
from dope.training.targets import as_regression, encode, nearest_anchor, part_boxes, side_mask

FG_IOU = 0.5  # a proposal is positive for a labelled part at this IoU or more, background below
ROIS_PER_IMAGE = 512
POSITIVE_FRACTION = 0.25
SMOOTH_L1_BETA = 1 / 9
LOSS_WEIGHTS: dict[str, float] = {}  # loss name -> weight; 1 for every loss not named


@dataclass
class PartTargets:
    """One part's labels in one image, in network-input pixels: boxes (N, 4), pose2d (N, J, 2),
    pose3d (N, J, 3), classes (N,) (the anchor pose each is encoded against)."""
    boxes: Tensor
    pose2d: Tensor
    pose3d: Tensor
    classes: Tensor

    def to(self, device: torch.device) -> "PartTargets":
        return PartTargets(*(t.to(device) for t in (self.boxes, self.pose2d, self.pose3d, self.classes)))


def image_targets(label: LabelledImage, input_size: tuple[int, int], anchors: Mapping[str, Tensor],
                  hand_k: Optional[int]) -> dict[str, PartTargets]:
    """Per part, the labels of one image scaled to the network input (input_size = (h, w) of the
    resized image, before padding: `ImageList.image_sizes`), with their anchor-pose classes."""
    sy, sx = input_size[0] / label.height, input_size[1] / label.width
    scale = torch.tensor([sx, sy], dtype=torch.float32)
    out = {}
    for part in PART_NAMES:
        lab = label.parts[part]
        a = anchors[part].float().cpu()
        pose2d = torch.as_tensor(lab.pose2d, dtype=torch.float32) * scale
        pose3d = torch.as_tensor(lab.pose3d, dtype=torch.float32)
        allowed = side_mask(torch.as_tensor(lab.is_right), len(a), hand_k) if part == "hand" else None
        classes = nearest_anchor(pose3d, a, allowed) if len(pose3d) else torch.zeros(0, dtype=torch.int64)
        out[part] = PartTargets(part_boxes(pose2d), pose2d, pose3d, classes)
    return out


@dataclass
class Sample:
    """The RoIs of one image that the part heads learn from: boxes (S, 4) in input pixels, their
    indexes into the image's proposals, and per part labels (S,) (0 background, 1 + anchor pose) and
    regression targets (S, 5J) (zeros where background)."""
    boxes: Tensor
    index: Tensor
    labels: dict[str, Tensor]
    regression: dict[str, Tensor]


def balanced_sample(positive: Tensor, generator: Optional[torch.Generator] = None, size: int = ROIS_PER_IMAGE,
                    fraction: float = POSITIVE_FRACTION) -> tuple[Tensor, Tensor]:
    """torchvision's BalancedPositiveNegativeSampler for one image, with an optional generator (so
    that an image's sample can be the same whichever process draws it): (positive, negative) masks."""
    pos, neg = torch.where(positive)[0], torch.where(~positive)[0]
    num_pos = min(int(size * fraction), len(pos))
    num_neg = min(size - num_pos, len(neg))
    on_cpu = {"generator": generator, "device": "cpu"} if generator is not None else {"device": positive.device}
    pick_pos = pos[torch.randperm(len(pos), **on_cpu).to(pos.device)[:num_pos]]
    pick_neg = neg[torch.randperm(len(neg), **on_cpu).to(neg.device)[:num_neg]]
    pos_mask, neg_mask = torch.zeros_like(positive), torch.zeros_like(positive)
    pos_mask[pick_pos] = True
    neg_mask[pick_neg] = True
    return pos_mask, neg_mask


def sample_rois(proposals: Tensor, targets: Mapping[str, PartTargets], anchors: Mapping[str, Tensor],
                w2d: Mapping[str, float], w3d: Mapping[str, float], generator: Optional[torch.Generator] = None,
                size: int = ROIS_PER_IMAGE) -> Sample:
    """Match proposals (R, 4) (the labelled boxes among them: see `with_label_boxes`) to each part's
    labelled boxes, sample up to `size` with POSITIVE_FRACTION positive (for any part; as
    torchvision's sampler, drawing from `generator` when given), and give the sampled RoIs' per-part
    labels and regression targets."""
    matched, positive = {}, torch.zeros(len(proposals), dtype=torch.bool, device=proposals.device)
    for part in PART_NAMES:
        t = targets[part]
        if len(t.boxes):
            iou, idx = box_iou(proposals, t.boxes).max(dim=1)
            fg = iou >= FG_IOU
        else:
            idx = torch.zeros(len(proposals), dtype=torch.int64, device=proposals.device)
            fg = torch.zeros(len(proposals), dtype=torch.bool, device=proposals.device)
        matched[part] = (idx, fg)
        positive |= fg
    pos, neg = balanced_sample(positive, generator, size)
    index = torch.where(pos | neg)[0]
    boxes = proposals[index]
    labels, regression = {}, {}
    for part in PART_NAMES:
        t, (idx, fg) = targets[part], matched[part]
        j = PARTS[part].num_joints
        idx, fg = idx[index], fg[index]
        lab = torch.zeros(len(index), dtype=torch.int64, device=proposals.device)
        reg = torch.zeros(len(index), 5 * j, device=proposals.device)
        if fg.any():
            g = idx[fg]
            cls = t.classes[g]
            d2, d3 = encode(t.pose2d[g], t.pose3d[g], boxes[fg], anchors[part][cls].float(), w2d[part], w3d[part])
            lab[fg] = cls + 1
            reg[fg] = as_regression(d2, d3)
        labels[part], regression[part] = lab, reg
    return Sample(boxes, index, labels, regression)


def with_label_boxes(proposals: Tensor, targets: Mapping[str, PartTargets]) -> Tensor:
    """The proposals with every labelled part box added (as torchvision's RoI heads add theirs):
    each labelled part has at least one proposal that fits it."""
    return torch.cat([proposals, *(targets[p].boxes.to(proposals) for p in PART_NAMES)])


class TrainingHeads(nn.Module):
    """The part predictors as training evaluates them: the class logits of every sampled RoI, and
    the pose layer on the positives alone (the only RoIs whose regressions are learnt), for each
    one's own anchor pose: a tenth of the work of the whole layer on every RoI.

    whitening (mean (C,), matrix (C, C), inverse (C, C)): with the features frozen, train on whitened
    features (x - mean) @ matrix (`whitening`), as linear probes often put a normalisation without
    affine before their head: the same linear functions, learnt many times faster (the raw features
    of a ResNet are strongly correlated, and gradient descent crawls along what tells RoIs apart).
    The layers here are then this module's own, and `fold` writes them back into the predictor as
    plain layers on the raw features. Without it, they are the predictor's own layers.
    """

    def __init__(self, predictor: nn.Module, whitening: Optional[tuple[Tensor, Tensor, Tensor]] = None) -> None:
        super().__init__()
        self.whiten = whitening is not None
        if whitening is not None:
            mean, matrix, inverse = whitening
            self.register_buffer("mean", mean.float().clone())
            self.register_buffer("matrix", matrix.float().clone())
        with torch.no_grad():
            for part in PART_NAMES:
                for kind in ("cls_score", "pose_pred"):
                    layer = getattr(predictor, f"{part}_{kind}")
                    if whitening is not None:  # the same function of the whitened features
                        own = nn.Linear(layer.in_features, layer.out_features).to(layer.weight.device)
                        own.weight.copy_(layer.weight @ inverse.to(layer.weight).T)
                        own.bias.copy_(layer.bias + layer.weight @ self.mean)
                        layer = own
                    self.add_module(f"{part}_{kind}", layer)

    @torch.no_grad()
    def fold(self, predictor: nn.Module) -> None:
        """Write the layers back into `predictor` as layers on the raw features (no-op without whitening)."""
        if not self.whiten:
            return
        for part in PART_NAMES:
            for kind in ("cls_score", "pose_pred"):
                own, layer = getattr(self, f"{part}_{kind}"), getattr(predictor, f"{part}_{kind}")
                weight = own.weight @ self.matrix.T
                layer.weight.copy_(weight)
                layer.bias.copy_(own.bias - weight @ self.mean)

    def prepare(self, features: Tensor) -> Tensor:
        """The features the layers take: float32, whitened when this module whitens."""
        x = features.float()
        return (x - self.mean) @ self.matrix if self.whiten else x

    def forward(self, features: Tensor, samples: list[Sample], prepared: bool = False
                ) -> dict[str, tuple[Tensor, Tensor]]:
        """Per part: logits (S, A+1) of the batch's sampled RoIs (features (S, C), in sample order;
        `prepared`: already through `prepare`) and the 5J pose values (P, 5J) of its positives, for
        their own anchor pose (only those rows of the pose layer are computed)."""
        x = features if prepared else self.prepare(features)
        out = {}
        for part in PART_NAMES:
            labels = torch.cat([s.labels[part] for s in samples])
            fg = torch.where(labels > 0)[0]
            j = PARTS[part].num_joints
            layer = getattr(self, f"{part}_pose_pred")
            weight, bias = layer.weight.view(-1, 5 * j, layer.in_features), layer.bias.view(-1, 5 * j)
            values = x.new_zeros(len(fg), 5 * j)
            cls = labels[fg] - 1
            for c in cls.unique().tolist():
                rows = torch.where(cls == c)[0]
                values = values.index_put((rows,), x[fg[rows]] @ weight[c].T + bias[c])
            if not len(fg):  # keep every parameter in the graph (DistributedDataParallel expects it)
                values = values + 0 * (weight.sum() + bias.sum())
            out[part] = (getattr(self, f"{part}_cls_score")(x), values)
        return out


def part_losses(outputs: Mapping[str, tuple[Tensor, Tensor]], samples: list[Sample]) -> dict[str, Tensor]:
    """The part heads' losses from `TrainingHeads`' outputs on a batch's samples."""
    losses = {}
    for part in PART_NAMES:
        logits, values = outputs[part]
        labels = torch.cat([s.labels[part] for s in samples])
        target = torch.cat([s.regression[part] for s in samples])[labels > 0]
        j = PARTS[part].num_joints
        losses[f"loss_{part}_cls"] = F.cross_entropy(logits.float(), labels)
        norm = max(len(labels), 1) * j
        for name, sl in (("pose2d", slice(0, 2 * j)), ("pose3d", slice(2 * j, 5 * j))):
            losses[f"loss_{part}_{name}"] = F.smooth_l1_loss(values.float()[:, sl], target[:, sl],
                                                             beta=SMOOTH_L1_BETA, reduction="sum") / norm
    return losses


def total(losses: Mapping[str, Tensor]) -> Tensor:
    return sum(LOSS_WEIGHTS.get(k, 1.0) * v for k, v in losses.items())


class Distillation(nn.Module):
    """A DOPE network in training: images and labels in, losses out (the network's own modules,
    torchvision's RPN computing its losses in training mode, as torchvision's detection models do).

    forward(images: list of float (3, H, W) in [0, 1], labels: list of LabelledImage) -> dict of losses.
    train_rpn: compute the RPN losses (its proposals then follow its training settings); otherwise
    the RPN runs as at inference and gives the same proposals `dope.py` sees.
    heads: the part predictors' `TrainingHeads` (default: on the raw features).
    rois_per_image: RoIs sampled per image for the part heads.
    """

    def __init__(self, net: nn.Module, anchors_k: Optional[int], *, train_rpn: bool = True,
                 heads: Optional[TrainingHeads] = None, rois_per_image: int = ROIS_PER_IMAGE) -> None:
        super().__init__()
        self.rois_per_image = rois_per_image
        self.net = net
        self.heads = heads if heads is not None else TrainingHeads(net.roi_heads.dope_predictor)
        self.hand_k = anchors_k
        self.train_rpn = train_rpn

    def anchors(self) -> dict[str, Tensor]:
        return {p: getattr(self.net.roi_heads, f"{p}_anchor_poses") for p in PART_NAMES}

    def targets(self, labels: list[LabelledImage], image_sizes: list[tuple[int, int]], device: torch.device
                ) -> list[dict[str, PartTargets]]:
        anchors = self.anchors()
        return [{p: t.to(device) for p, t in image_targets(lab, size, anchors, self.hand_k).items()}
                for lab, size in zip(labels, image_sizes)]

    def proposals(self, images: list[Tensor], labels: list[LabelledImage]
                  ) -> tuple[Tensor, list[Tensor], list[dict[str, PartTargets]], dict[str, Tensor]]:
        """Backbone features, proposals (labelled boxes added), targets and the RPN's losses."""
        net = self.net
        batch, _ = net.transform([img.to(net.device, net.dtype) for img in images])
        targets = self.targets(labels, batch.image_sizes, net.device)
        features = net.backbone(batch.tensors)
        net.rpn.train(self.train_rpn and self.training)
        rpn_targets = [{"boxes": torch.cat([t[p].boxes for p in PART_NAMES])} for t in targets]
        if net.rpn.training:
            proposals, rpn_losses = net.rpn(batch, {"0": features}, rpn_targets)
        else:
            with torch.no_grad():
                proposals, rpn_losses = net.rpn(batch, {"0": features})
        proposals = [with_label_boxes(p.detach(), t) for p, t in zip(proposals, targets)]
        return features, proposals, targets, rpn_losses

    def forward(self, images: list[Tensor], labels: list[LabelledImage]) -> dict[str, Tensor]:
        features, proposals, targets, losses = self.proposals(images, labels)
        rh = self.net.roi_heads
        anchors = self.anchors()
        samples = [sample_rois(p, t, anchors, rh.pose2d_reg_weights, rh.pose3d_reg_weights, size=self.rois_per_image)
                   for p, t in zip(proposals, targets)]
        feats = rh.features(features, [s.boxes for s in samples])
        losses.update(part_losses(self.heads(feats, samples), samples))
        return losses


def predictor_losses(heads: Callable[..., Any], features: list[Tensor], samples: list[Sample]
                     ) -> dict[str, Tensor]:
    """The part losses from precomputed RoI features (one (R_i, C) tensor per image, indexed by the
    samples, already through `TrainingHeads.prepare`): training the predictors alone on a cache
    (`heads`: a TrainingHeads, or its DDP wrapper)."""
    feats = torch.cat([f[s.index] for f, s in zip(features, samples)])
    return part_losses(heads(feats, samples, prepared=True), samples)
