"""The DOPE network (SPEC §2-3): reading a checkpoint and building the model from torchvision parts.

The public face of `dope.network` (checkpoint.py and dopenet.py), where the code lives:

    from model import load_model
    net, checkpoint = load_model("models/DOPE_v1_0_0.pth.tgz")   # weights_only=True, validated
"""
from dope.network.checkpoint import PUBLISHED_MAX_PROPOSALS, Checkpoint, CheckpointError, read_checkpoint
from dope.network.dopenet import DOPENet, build_model, load_model

__all__ = ["PUBLISHED_MAX_PROPOSALS", "Checkpoint", "CheckpointError", "DOPENet", "build_model", "load_model",
           "read_checkpoint"]
