"""The training loop, in the manner of torchvision's detection references: `train(config)` builds the
student, then runs `train_one_step` until `config.steps`, with checkpoints, a CSV log and a
validation pass (`evaluate`). The same code runs alone or under `torchrun` (DistributedDataParallel:
gloo on CPUs, nccl on GPUs), each process on its own shard of the images.

`--freeze features` trains the part predictors alone: the RoI features of a small set of images do
not change, so they are computed once per image (the same proposals `dope.py` sees) and every step
reads them; a large set (over CACHE_MAX_IMAGES per process) runs the frozen network at each step.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dope.errors import DopeError
from dope.parts import PART_NAMES
from dope.training.evaluation import PartErrors, compare, describe, summary
from dope.training.labels import LabelError, LabelledImage, check_images, load_checked_image, read_labels, split
from dope.training.losses import (Distillation, TrainingHeads, image_targets, predictor_losses, sample_rois, total,
                                  with_label_boxes)
from dope.training import student
from dope.training.settings import TrainConfig

log = logging.getLogger(__name__)

CACHE_MAX_IMAGES = 100  # per process: 1000 proposals x 2048 floats = 8 MB an image
STATS_IMAGES = 32  # images whose RoI features give the whitening (--freeze features), per process
WHITENING_FLOOR = 1e-4
LOG_EVERY_S = 10.0


def resume_path(out: str) -> str:
    return os.path.splitext(out)[0] + ".resume.pth"


def csv_path(config: TrainConfig) -> str:
    return config.log_csv or os.path.splitext(config.out)[0] + ".csv"


# --------------------------------------------------------------------------------- processes


@dataclass
class Processes:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_processes(device: Optional[str]) -> Processes:
    """One process, or those of `torchrun` (WORLD_SIZE, RANK, LOCAL_RANK in the environment)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if world <= 1:
        return Processes(0, 1, torch.device(device or ("cuda" if want_cuda else "cpu")))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if want_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if want_cuda else "gloo")
    return Processes(rank, world, torch.device(f"cuda:{local}") if want_cuda else torch.device("cpu"))


def _wrap(module: nn.Module, procs: Processes) -> nn.Module:
    if procs.world == 1:
        return module
    ids = [procs.device.index] if procs.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


# ---------------------------------------------------------------------------------- data


def image_tensor(label: LabelledImage) -> Tensor:
    """(3, H, W) float in [0, 1] of a record's image (checked against the record)."""
    pixels = load_checked_image(label)
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255)


class Images(torch.utils.data.Dataset):
    def __init__(self, labels: list[LabelledImage]) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, LabelledImage]:
        return image_tensor(self.labels[i]), self.labels[i]


def batches(labels: list[LabelledImage], batch_size: int, seed: int, workers: int
            ) -> Iterator[tuple[list[Tensor], list[LabelledImage]]]:
    """Batches of (images, labels) for ever, in a new random order each pass."""
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(Images(labels), batch_size=min(batch_size, len(labels)), shuffle=True,
                                         num_workers=workers, collate_fn=lambda b: tuple(map(list, zip(*b))),
                                         generator=generator, drop_last=True)
    while True:
        yield from loader


@dataclass
class CachedImage:
    proposals: Tensor  # (R, 4) network-input pixels, the labelled boxes included
    features: Tensor  # (R, C)
    targets: dict[str, Any]


@torch.no_grad()
def cache_features(net: nn.Module, labels: list[LabelledImage], hand_k: Optional[int], show: bool
                   ) -> list[CachedImage]:
    """The RoI features of every image's inference proposals and labelled boxes, once."""
    from dope.progress import progress_bar
    net.eval()
    anchors = student.anchor_poses(net)
    out = []
    with progress_bar(total=len(labels), desc="features", unit="image", disable=not show) as bar:
        for label in labels:
            batch, _ = net.transform([image_tensor(label).to(net.device)])
            features = net.backbone(batch.tensors)
            proposals, _ = net.rpn(batch, {"0": features})
            targets = {p: t.to(net.device) for p, t in
                       image_targets(label, batch.image_sizes[0], anchors, hand_k).items()}
            boxes = with_label_boxes(proposals[0], targets)
            out.append(CachedImage(boxes, net.roi_heads.features(features, [boxes]).float(), targets))
            bar.update(1)
    return out


def whitening(features: list[Tensor], procs: Processes) -> tuple[Tensor, Tensor, Tensor]:
    """(mean (C,), matrix (C, C), its inverse) such that (x - mean) @ matrix has the identity as its
    covariance over the RoI features (R_i, C) of every process's images: the Cholesky factor of the
    covariance plus WHITENING_FLOOR times its mean variance on the diagonal (so that directions of
    no variance, when there are fewer RoIs than channels, stay finite). A Cholesky factor, not the
    eigenvectors: as good for training and some twenty times quicker."""
    c = features[0].shape[1]
    sums = torch.zeros(c + 2, c, dtype=torch.float64, device=features[0].device)
    for f in features:  # image by image: never all the features in double at once
        x = f.double()
        sums[0] += x.sum(0)
        sums[1:-1] += x.T @ x
        sums[-1] += len(x)
    if procs.world > 1:
        dist.all_reduce(sums)
    n = sums[-1, 0]
    mean = sums[0] / n
    cov = sums[1:-1] / n - mean[:, None] * mean[None]
    floor = WHITENING_FLOOR * float(cov.diagonal().mean()) + 1e-30
    factor = torch.linalg.cholesky(cov + floor * torch.eye(c, dtype=cov.dtype, device=cov.device))  # cov = L L^T
    eye = torch.eye(c, dtype=cov.dtype, device=cov.device)
    matrix = torch.linalg.solve_triangular(factor, eye, upper=False).T  # L^-T
    return mean.float(), matrix.float(), factor.T.float()


# ---------------------------------------------------------------------------------- steps


def warmup_cosine(steps: int, warmup: int) -> Callable[[int], float]:
    """The learning rate's factor at each step: linear warm-up, then a cosine down to 0."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
    return factor


def train_one_step(compute_losses: Callable[[], dict[str, Tensor]], optimizer: torch.optim.Optimizer,
                   scheduler: Any, scaler: Optional[torch.amp.GradScaler], autocast: Any) -> dict[str, float]:
    with autocast():
        losses = compute_losses()
        loss = total(losses)
    if not torch.isfinite(loss):
        raise DopeError(f"the loss is {loss.item()} ({', '.join(f'{k} {v.item():.3g}' for k, v in losses.items())}); "
                        "lower --lr, or check the labels")
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    scheduler.step()
    return {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}


class Progress:
    """A bar with the losses on a terminal, a log line every LOG_EVERY_S seconds elsewhere."""

    def __init__(self, total: int, initial: int, show: bool) -> None:
        from dope.progress import interactive, progress_bar
        self.bar = progress_bar(total=total, initial=initial, desc="training", unit="step", disable=not show)
        self.tty, self.show, self.total = interactive(), show, total
        self.last = time.monotonic()

    def update(self, step: int, values: dict[str, float]) -> None:
        text = f"loss {values['loss']:.4f}"
        if self.tty:
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(1)
        if self.show and not self.tty and (time.monotonic() - self.last >= LOG_EVERY_S or step == self.total):
            self.last = time.monotonic()
            log.info("step %d/%d: %s (%s)", step, self.total, text,
                     ", ".join(f"{k[5:]} {v:.4f}" for k, v in values.items() if k.startswith("loss_")))

    def close(self) -> None:
        self.bar.close()


# ---------------------------------------------------------------------------------- evaluation


def evaluate(checkpoint: dict[str, Any], labels: list[LabelledImage], device: torch.device,
             max_proposals: Optional[int] = None) -> dict[str, PartErrors]:
    """Run a checkpoint as `dope.py` does (its default post-processing) on labelled images and
    compare its detections with the labels (evaluation.compare)."""
    from dope.detector import DOPE
    detector = DOPE(checkpoint, device=str(device), progress=False, max_proposals=max_proposals)
    return compare((label, detector(load_checked_image(label))) for label in labels)


# ---------------------------------------------------------------------------------- the loop


def _network(config: TrainConfig, labels: list[LabelledImage], resume: Optional[dict[str, Any]]):
    if resume is not None:
        return student.from_checkpoint(resume["model"], max_proposals=config.max_proposals)
    if config.init:
        return student.from_checkpoint(config.init, config.backbone, config.max_proposals)
    return student.new_network(labels, backbone=config.backbone or "resnet50",
                               num_anchor_poses=config.num_anchor_poses, min_size=config.min_size,
                               max_size=config.max_size, imagenet=config.imagenet, seed=config.seed,
                               max_proposals=config.max_proposals)


def train(config: TrainConfig) -> dict[str, Any]:
    """Train as `config` says; returns what was done: steps, seconds, the last losses, the
    validation summary (per part: matched, labelled, median and mean 2D error, MPJPE)."""
    procs = init_processes(config.device)
    try:
        return _train(config, procs)
    finally:
        if procs.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: TrainConfig, procs: Processes) -> dict[str, Any]:
    show = config.progress and procs.main
    labels = read_labels(config.labels)
    check_images(labels)
    labels, held_out = split(labels, config.val_fraction, config.seed)
    if config.val_labels:
        held_out = held_out + read_labels(config.val_labels)
        check_images(held_out)
    if len(labels) < procs.world:
        raise LabelError(f"{len(labels)} training image(s) for {procs.world} processes: each needs one at least")
    shard = labels[procs.rank::procs.world]
    resume = None
    if config.resume:
        if not os.path.isfile(config.resume):
            raise DopeError(f"--resume {config.resume!r}: no such file")
        resume = torch.load(config.resume, map_location="cpu", weights_only=True)
    net, ckpt = _network(config, labels, resume)
    net.to(procs.device)
    hand_k = student.hand_k(ckpt)
    params = student.trainable(net, config.freeze)
    rh = net.roi_heads
    heads = None
    cache: list[CachedImage] = []
    if config.freeze == "features":
        small = len(shard) <= CACHE_MAX_IMAGES
        cache = cache_features(net, shard if small else shard[:STATS_IMAGES], hand_k, show)
        heads = TrainingHeads(rh.dope_predictor, whitening([c.features for c in cache], procs)).to(procs.device)
        params = list(heads.parameters())
        for p in rh.dope_predictor.parameters():  # the heads' own layers learn; written back by fold
            p.requires_grad_(False)
        if not small:
            cache = []
        for c in cache:  # whitened once, not at every step
            c.features = heads.prepare(c.features)
    if config.optimizer_name() == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(params, lr=config.learning_rate(), momentum=0.9,
                                                           weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate(), weight_decay=config.weight_decay)
    warmup = config.warmup_steps if config.warmup_steps is not None else max(1, config.steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config.steps, warmup))
    step = 0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        step = int(resume["step"])
    torch.manual_seed(config.seed + 1000 * procs.rank + step)
    cuda = procs.device.type == "cuda"
    amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    use_amp = cuda and config.amp
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None

    def autocast():
        return torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp)

    if cache:
        assert heads is not None
        wrapped = _wrap(heads, procs)
        anchors = student.anchor_poses(net)
        order = torch.Generator().manual_seed(config.seed + procs.rank)
        counter = [step]

        def compute_losses() -> dict[str, Tensor]:
            pick = torch.randperm(len(cache), generator=order)[:config.batch_size].tolist()
            # each image's RoIs drawn from (seed, image, step): the same whichever process holds the image
            samples = []
            for i in pick:
                image = procs.rank + i * procs.world  # its index in the whole training set
                g = torch.Generator().manual_seed(hash((config.seed, image, counter[0])) & 0xFFFFFFFF)
                samples.append(sample_rois(cache[i].proposals, cache[i].targets, anchors, rh.pose2d_reg_weights,
                                           rh.pose3d_reg_weights, g, config.rois_per_image))
            counter[0] += 1
            return predictor_losses(wrapped, [cache[i].features for i in pick], samples)
    else:
        model = _wrap(Distillation(net, hand_k, train_rpn=config.freeze != "features", heads=heads,
                                   rois_per_image=config.rois_per_image), procs)
        model.train()
        data = batches(shard, config.batch_size, config.seed + procs.rank, config.workers)

        def compute_losses() -> dict[str, Tensor]:
            images, labs = next(data)
            return model(images, labs)

    def current() -> dict[str, Any]:
        """The network as it is now, as an official checkpoint."""
        if heads is not None:
            heads.fold(rh.dope_predictor)
        return student.checkpoint_dict(net, ckpt)

    csv_file = None
    if procs.main:
        path = csv_path(config)
        new = resume is None or not os.path.exists(path)
        csv_file = open(path, "w" if new else "a", newline="")
    writer, started = None, time.monotonic()
    bar = Progress(config.steps, step, show)
    values: dict[str, float] = {}
    try:
        while step < config.steps:
            values = train_one_step(compute_losses, optimizer, scheduler, scaler, autocast)
            step += 1
            bar.update(step, values)
            if csv_file is not None:
                row = {"step": step, "lr": scheduler.get_last_lr()[0], "time_s": round(time.monotonic() - started, 3),
                       **values}
                if writer is None:
                    writer = csv.DictWriter(csv_file, fieldnames=list(row))
                    if new:
                        writer.writeheader()
                writer.writerow(row)
                csv_file.flush()
            last = step == config.steps
            if config.save_every and step % config.save_every == 0 or last:
                _save(current, optimizer, scheduler, step, config, procs)
            if held_out and not last and config.val_every and step % config.val_every == 0:
                _validate(current, held_out, procs, step, config.max_proposals)
    finally:
        bar.close()
        if csv_file is not None:
            csv_file.close()
    report: dict[str, Any] = {"steps": step, "seconds": time.monotonic() - started, "losses": values,
                              "processes": procs.world}
    if held_out and procs.main:
        errors = evaluate(current(), held_out, procs.device, config.max_proposals)
        log.info("validation on %d image(s): %s", len(held_out), describe(errors))
        report["validation"] = summary(errors)
    return report


def _save(current: Callable[[], dict[str, Any]], optimizer: Any, scheduler: Any, step: int, config: TrainConfig,
          procs: Processes) -> None:
    if procs.main:
        model = current()
        student.save(model, config.out)
        student.save({"model": model, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                      "step": step}, resume_path(config.out))
        log.info("step %d: wrote %s (and %s to resume)", step, config.out, resume_path(config.out))
    if procs.world > 1:
        dist.barrier()


def _validate(current: Callable[[], dict[str, Any]], held_out: list[LabelledImage], procs: Processes, step: int,
              max_proposals: Optional[int]) -> None:
    if procs.main:
        errors = evaluate(current(), held_out, procs.device, max_proposals)
        log.info("step %d, validation on %d image(s): %s", step, len(held_out), describe(errors))
    if procs.world > 1:
        dist.barrier()
