"""`dope-train` (and `python train.py` in a checkout): the training command line, options to a
`TrainConfig`, messages and exit codes; `dope-label-holistic`: MediaPipe Holistic labels.

Exit codes: 0; 1 for an expected mistake (labels, images, checkpoint), said in one line; 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

from dope.training.settings import TrainConfig

log = logging.getLogger("dope")

EXAMPLES = """examples:
  dope.py --image photos/ --json labels.jsonl                     # labels from a DOPE checkpoint
  train.py --labels labels.jsonl --init DOPE_v1_0_0 --freeze features --out student.pth
  train.py --labels labels.jsonl --backbone resnet18 --imagenet --steps 20000 --out student.pth
  torchrun --nproc_per_node 4 train.py --labels labels.jsonl --init DOPE_v1_0_0 --out student.pth
"""


def _per_part(text: str) -> dict[str, int]:
    try:
        counts = dict(zip(("body", "hand", "face"), (int(v) for v in text.split(","))))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three whole numbers BODY,HAND,FACE, got {text!r}") from None
    if len(counts) != 3 or min(counts.values()) < 1:
        raise argparse.ArgumentTypeError(f"expected three whole numbers of at least 1, BODY,HAND,FACE, got {text!r}")
    return counts


def parser() -> argparse.ArgumentParser:
    from dope.settings import BACKBONES
    d = TrainConfig(labels="", out="")
    ap = argparse.ArgumentParser(prog="dope-train", description="Train a DOPE network on labels in the JSON "
                                 "schema of `dope --json` (docs/training.md).", epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", required=True, help="JSON Lines records (one per image, with the image's path)")
    ap.add_argument("--out", required=True, help="the student checkpoint to write (official format); beside it "
                    "OUT.resume.pth (to --resume) and OUT.csv (losses per step)")
    ap.add_argument("--init", help="checkpoint (file or model name, as dope.py --model) to start from (fine-tuning); without it, a new network whose anchor "
                    "poses are k-means centres of the labels")
    ap.add_argument("--backbone", choices=BACKBONES, help="a new network's ResNet (default resnet50, the "
                    "published one; resnet18/34 are lighter and faster)")
    ap.add_argument("--imagenet", action="store_true", help="a new network's ResNet starts from torchvision's "
                    "ImageNet weights (downloaded once into torch's cache)")
    ap.add_argument("--freeze", choices=("none", "backbone", "features"), default=d.freeze,
                    help="what stays fixed: nothing; the ResNet's stem and stages 1-3; everything but the part "
                    "predictors' linear layers (features) (default %(default)s)")
    ap.add_argument("--steps", type=int, default=d.steps, help="optimizer steps (default %(default)s)")
    ap.add_argument("--batch-size", type=int, default=d.batch_size,
                    help="images per step and per process (default %(default)s)")
    ap.add_argument("--optimizer", choices=("sgd", "adamw"), help="default: sgd (momentum 0.9) with --freeze features, "
                    "else adamw")
    ap.add_argument("--lr", type=float, help="peak learning rate (default 0.1 for sgd, 1e-4 for adamw)")
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay, help="(default %(default)s)")
    ap.add_argument("--warmup-steps", type=int, help="linear warm-up, then cosine decay (default 5%% of the steps)")
    ap.add_argument("--val-labels", help="held-out records to validate on (per part 2D error and 3D MPJPE)")
    ap.add_argument("--val-fraction", type=float, default=d.val_fraction,
                    help="hold out this fraction of --labels for validation (default %(default)s)")
    ap.add_argument("--val-every", type=int, default=d.val_every, help="validate every N steps (0: at the end)")
    ap.add_argument("--save-every", type=int, default=d.save_every, help="write the checkpoints every N steps "
                    "(0: at the end)")
    ap.add_argument("--resume", help="an OUT.resume.pth to go on from (same --labels and settings)")
    ap.add_argument("--log-csv", help="the losses per step (default: OUT with .csv)")
    ap.add_argument("--device", help="cpu, cuda, cuda:1... (default: CUDA when available; torchrun: one GPU per process)")
    ap.add_argument("--no-amp", action="store_true", help="full precision on a GPU (default: mixed precision)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--workers", type=int, default=d.workers, help="image-reading processes (default %(default)s)")
    ap.add_argument("--min-size", type=int, default=d.min_size, help="a new network's input: shorter side (default %(default)s)")
    ap.add_argument("--max-size", type=int, default=d.max_size, help="a new network's input: longer side at most (default %(default)s)")
    ap.add_argument("--anchor-poses", type=_per_part, metavar="BODY,HAND,FACE",
                    help="a new network's anchor poses per part (default 20,10,10)")
    ap.add_argument("--rois-per-image", type=int, default=d.rois_per_image,
                    help="RoIs sampled per image for the part heads, a quarter positive at most (default %(default)s)")
    ap.add_argument("--max-proposals", type=int, help="proposals kept after the RPN, as dope.py's --max-proposals: "
                    "those --freeze features learns from, and validation's (default 1000)")
    ap.add_argument("-q", "--quiet", action="store_true", help="errors only")
    return ap


def _config(a: argparse.Namespace) -> TrainConfig:
    return TrainConfig(labels=a.labels, out=a.out, init=a.init, backbone=a.backbone, imagenet=a.imagenet,
                       freeze=a.freeze, steps=a.steps, batch_size=a.batch_size, optimizer=a.optimizer, lr=a.lr, weight_decay=a.weight_decay,
                       warmup_steps=a.warmup_steps, val_labels=a.val_labels, val_fraction=a.val_fraction,
                       val_every=a.val_every, save_every=a.save_every, resume=a.resume, log_csv=a.log_csv,
                       device=a.device, amp=not a.no_amp, seed=a.seed, workers=a.workers, min_size=a.min_size,
                       max_size=a.max_size, num_anchor_poses=a.anchor_poses, max_proposals=a.max_proposals,
                       rois_per_image=a.rois_per_image,
                       progress=not a.quiet and int(os.environ.get("RANK", "0")) == 0)


def _check(ap: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    if a.max_proposals is not None and not 1 <= a.max_proposals <= 5000:
        ap.error("--max-proposals must be in 1..5000")
    for name in ("steps", "batch_size", "rois_per_image"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.lr is not None and not a.lr > 0:
        ap.error("--lr must be positive")
    if not 0 <= a.val_fraction < 1:
        ap.error("--val-fraction must be in [0, 1)")
    if a.init and (a.imagenet or a.anchor_poses):
        ap.error("--imagenet and --anchor-poses make a new network: leave out --init")


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    _check(ap, a)
    # under torchrun, the first process speaks for all
    quiet = a.quiet or int(os.environ.get("RANK", "0")) > 0
    logging.basicConfig(level=logging.ERROR if quiet else logging.INFO, format="%(message)s")
    from dope.errors import DopeError
    from dope.inputs.weights import DownloadError
    from dope.network.checkpoint import CheckpointError
    from dope.training.labels import check_images, read_labels
    try:
        # the labels first: a mistake in them is said before torch is even imported
        check_images(read_labels(a.labels))
        from dope.training.train import train
        report = train(_config(a))
    except (DopeError, CheckpointError, DownloadError) as e:
        print(f"dope-train: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dope-train: interrupted", file=sys.stderr)
        return 130
    if "validation" in report:
        log.info("validation: %s", json.dumps(report["validation"]))
    log.info("%d steps in %.1f s; wrote %s", report["steps"], report["seconds"], a.out)
    return 0


def console() -> None:
    sys.exit(main())


def label_main(argv: Optional[Sequence[str]] = None) -> int:
    """`dope-label-holistic IMAGE... --json labels.jsonl`: MediaPipe Holistic's landmarks as DOPE labels."""
    ap = argparse.ArgumentParser(prog="dope-label-holistic", description="Label images with MediaPipe Holistic "
                                 "(one person per image) in DOPE's JSON schema, for dope-train.")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--json", required=True, help="JSON Lines to write (one record per image)")
    a = ap.parse_args(argv)
    from dope.errors import DopeError
    from dope.training.holistic import label_images
    try:
        n = 0
        with open(a.json, "w", encoding="utf-8") as f:
            for record in label_images(a.images):
                f.write(json.dumps(record) + "\n")
                n += 1
    except DopeError as e:
        print(f"dope-label-holistic: error: {e}", file=sys.stderr)
        return 1
    print(f"{n} record(s) written to {a.json}", file=sys.stderr)
    return 0


def label_console() -> None:
    sys.exit(label_main())
