"""DOPE: whole-body 3D pose detection (bodies, hands and faces) in RGB images.

    from dope import DOPE
    detector = DOPE("DOPE_v1_0_0")           # a model name in the models folder, or a checkpoint path
    result = detector("photo.jpg")           # a path, a PIL image or an RGB uint8 array
    result.body[0].pose2d, result.to_json()
    for item, image, result in detector.stream("clip.mp4"):   # or a folder, a camera index, a list
        item.frame, item.time_s, len(result.body)

Sub-packages by concern, data flowing one way: inputs -> network -> postprocessing -> motion
(tracks, smoothing, camera space) -> outputs, exports, drawing and view3d; pipeline.py composes
them from a config.RunConfig, and cli.py is the `dope` command. Importing this package loads no
torch and changes nothing in the process (see docs/performance.md).
"""
from dope.detector import (DEFAULT_MIN_SCORE, DOPE, POSTPROCESSINGS, PRECISIONS, model_name, pick_device,
                           pick_dtype, postprocess_outputs, resolve_model)
from dope.errors import DopeError
from dope.version import __version__

CLI_NAMES = ("build_parser", "exit_fast", "main", "positive_int")  # from dope.cli, imported when asked for


def __getattr__(name):
    """The command line's names (CLI_NAMES), imported on first use: the library does not need them."""
    if name in CLI_NAMES:
        from dope import cli
        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_jsonl(path):
    """(Item, Result) for each record of a JSON Lines file written by --json (see dope/inputs/replay.py)."""
    from dope.inputs.replay import read_jsonl as read  # lazily: keeps `import dope` light
    return read(path)


__all__ = ["DOPE", "DopeError", "read_jsonl", "DEFAULT_MIN_SCORE", "POSTPROCESSINGS", "PRECISIONS", "build_parser",
           "main", "model_name", "pick_device", "pick_dtype", "positive_int", "postprocess_outputs", "resolve_model",
           "__version__"]
