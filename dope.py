#!/usr/bin/env python3
"""DOPE: whole-body 3D pose detection (bodies, hands and faces) in RGB images.

    python dope.py --model DOPE_v1_0_0 --image photo.jpg            # writes photo.jpg_DOPE_v1_0_0.jpg
    python dope.py --model DOPE_v1_0_0 --image photo.jpg --json out.json --postprocess nms
    python dope.py --image shots/ 'more/*.jpg' --json all.jsonl      # folders and patterns: JSON Lines
    python dope.py --video clip.mp4 --json clip.jsonl               # writes clip.mp4_DOPE_v1_0_0.mp4

As a library:

    from dope import DOPE
    detector = DOPE("DOPE_v1_0_0")           # a model name in models/, or a checkpoint path
    result = detector("photo.jpg")           # a path, a PIL image or an RGB uint8 array
    result.body[0].pose2d, result.to_json()
    for item, image, result in detector.stream("clip.mp4"):   # or a folder, a camera index, a list
        item.frame, item.time_s, len(result.body)

This file is the public face: everything lives in the `wholebody` package beside it, and this file
imports only from there, so a folder with its own model.py or utils.py can still `from dope import DOPE`.
"""
from wholebody.detector import (DEFAULT_MIN_SCORE, DOPE, POSTPROCESSINGS, PRECISIONS, model_name, pick_device,
                                pick_dtype, postprocess_outputs, resolve_model)
from wholebody.errors import DopeError


CLI_NAMES = ("build_parser", "exit_fast", "main", "positive_int")  # from wholebody.cli, imported when asked for


def __getattr__(name):
    """The command line's names (CLI_NAMES), imported on first use: the library does not need them."""
    if name in CLI_NAMES:
        from wholebody import cli
        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_jsonl(path):
    """(Item, Result) for each record of a JSON Lines file written by --json (see wholebody/inputs/replay.py)."""
    from wholebody.inputs.replay import read_jsonl as read  # lazily: keeps `import dope` light
    return read(path)


__all__ = ["DOPE", "DopeError", "read_jsonl", "DEFAULT_MIN_SCORE", "POSTPROCESSINGS", "PRECISIONS", "build_parser", "main",
           "model_name", "pick_device", "pick_dtype", "positive_int", "postprocess_outputs", "resolve_model"]

if __name__ == "__main__":
    from wholebody.cli import main
    from wholebody.startup import exit_fast
    exit_fast(main())  # sys.exit, without Python's teardown once torch is loaded (startup.py)
