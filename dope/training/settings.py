"""`TrainConfig`: every training setting with its default, typed; the command line stops at it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class TrainConfig:
    """Every training setting, with its default (the command line's defaults are these)."""
    labels: str
    out: str
    init: Optional[str] = None  # a checkpoint to start from (fine-tuning); None: a new network
    backbone: Optional[str] = None  # None: the --init network's, else resnet50
    imagenet: bool = False  # a new network's ResNet from torchvision's ImageNet weights
    freeze: str = "none"  # none, backbone or features
    steps: int = 300
    batch_size: int = 2  # images per step and per process
    optimizer: Optional[str] = None  # sgd or adamw; None: sgd when only the predictors train, else adamw
    lr: Optional[float] = None  # None: 0.1 for sgd, 1e-4 for adamw
    weight_decay: float = 0.0
    warmup_steps: Optional[int] = None  # None: 5% of the steps
    val_labels: Optional[str] = None
    val_fraction: float = 0.0
    val_every: int = 0  # steps; 0: once, at the end
    save_every: int = 0  # steps; 0: at the end only
    resume: Optional[str] = None
    log_csv: Optional[str] = None  # None: the output's name with .csv
    device: Optional[str] = None  # None: CUDA when available
    amp: bool = True  # mixed precision on a GPU
    seed: int = 0
    workers: int = 0
    min_size: int = 800  # a new network's input size (an --init network keeps its own)
    max_size: int = 1333
    num_anchor_poses: Optional[dict[str, int]] = None
    rois_per_image: int = 512  # sampled for the part heads, a quarter positive at most (torchvision's default)
    max_proposals: Optional[int] = None  # kept after the RPN at inference (features, validation); None: 1000
    progress: bool = True

    def optimizer_name(self) -> str:
        return self.optimizer or ("sgd" if self.freeze == "features" else "adamw")

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.1 if self.optimizer_name() == "sgd" else 1e-4)
