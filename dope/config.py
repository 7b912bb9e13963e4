"""The run's typed configuration: what the command line's options ask for, as one dataclass.

The command line (cli.py) turns its options into a `RunConfig`; the pipeline (pipeline.py), the
corpus runner (corpus.py) and the Ray workers (cluster/) take it, and nothing below the command
line sees argparse. Fields keep the options' names (`--max-proposals` is `max_proposals`); None
means "the default", which may depend on the other options (see `check`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from dope.errors import DopeError

# The options that shape the records besides the model and the post-processing: a run writes
# those it was given in every record's "settings" (docs/output-schema.md), so that --resume can
# refuse to continue a file that was made otherwise.
RECORD_SETTINGS = ("max_proposals", "min_score", "max_people", "parts", "track", "smooth", "fill_skipped",
                   "focal", "fov", "camera_space", "start", "end", "every", "fps")


@dataclass
class RunConfig:
    """One run of the command: inputs, model, stages over time, camera, outputs, cluster."""

    # inputs
    image: Optional[list[str]] = None            # files, folders and glob patterns
    video: Union[list[str], str, None] = None    # the same, or one video or camera index once chosen
    from_json: Optional[str] = None              # saved detections instead of the network
    start: Optional[float] = None                # video: seconds
    end: Optional[float] = None
    every: Optional[int] = None                  # video: every Nth frame
    fps: Optional[float] = None                  # video: about this many frames per second
    resume: bool = False
    # model and post-processing
    model: str = "DOPE_v1_0_0"
    no_download: bool = False
    device: Optional[str] = None
    precision: str = "auto"
    max_proposals: Optional[int] = None
    threads: Optional[int] = None
    batch_size: int = 1
    postprocess: Optional[str] = None            # ppi when None (check)
    min_score: Optional[float] = None
    assign: Optional[str] = None                 # nearest when None (check)
    max_people: Optional[int] = None
    parts: Optional[tuple[str, ...]] = None
    # over time
    track: Optional[bool] = None
    smooth: Optional[str] = None
    fill_skipped: bool = False
    # camera space
    focal: Optional[float] = None
    fov: Optional[float] = None
    camera_space: bool = False
    # outputs
    json: Optional[str] = None
    output_dir: Optional[str] = None
    no_overlay: bool = False
    visu3d: bool = False
    renderer: str = "auto"
    interactive: bool = False
    html: Optional[str] = None
    export: Optional[list[str]] = None
    export_format: Optional[str] = None
    pose_3d: bool = False
    # drawing style
    line_width: Optional[float] = None
    no_scores: bool = False
    no_pad: bool = False
    azimuth: Optional[float] = None
    elevation: Optional[float] = None
    # cluster
    ray: Optional[str] = None                    # None: no Ray; "": $RAY_ADDRESS or a local cluster
    workers: Optional[int] = None
    gpus_per_worker: Optional[float] = None
    # messages
    quiet: bool = False
    verbose: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "RunConfig":
        """A RunConfig from option values by name (`vars(namespace)`); names it does not have
        (such as the command's own --list-models) are left out."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names})

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def other_outputs(self) -> bool:
        """Whether anything but the 2D drawing is asked for."""
        return bool(self.json or self.visu3d or self.html or self.export)

    def check(self) -> "RunConfig":
        """Refuse (DopeError, one line), before the model loads, options that cannot apply to the
        others; return the configuration with the defaults that depend on them filled in
        (postprocess, assign; not for a replay). Checking a checked configuration changes nothing."""
        replay = self.from_json is not None
        for name, given in (("--postprocess", self.postprocess), ("--assign", self.assign),
                            ("--max-proposals", self.max_proposals)):
            if replay and given is not None:
                raise DopeError(f"{name} applies to the network's outputs; --from-json replays detections already "
                                "post-processed (--min-score, --max-people and --parts do apply)")
        method = self.postprocess or "ppi"
        if self.min_score is not None and not replay:
            if method == "nms" and not 0.0 <= self.min_score <= 1.0:
                raise DopeError(f"--min-score {self.min_score:g}: NMS scores are probabilities, give a value in [0, 1]")
            if method == "ppi" and self.min_score < 0:
                raise DopeError(f"--min-score {self.min_score:g}: PPI scores are sums of probabilities, never negative")
        for name, value in (("--start", self.start), ("--end", self.end), ("--every", self.every), ("--fps", self.fps)):
            if value is not None and self.video is None:
                if self.image is not None:
                    raise DopeError(f"{name} selects frames of a video, and --image gives images: give the video "
                                    "with --video, or list the images you want with --image")
                raise DopeError(f"{name} selects frames of a video: give --video")
        if self.fill_skipped and self.video is None and self.from_json is None:
            raise DopeError("--fill-skipped fills the frames left out of a video: give --video (with --every or "
                            "--fps) or --from-json")
        if self.fps is not None and not self.fps > 0:
            raise DopeError(f"--fps must be positive, got {self.fps:g}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise DopeError(f"--end {self.end:g} must come after --start {self.start:g}")
        if self.line_width is not None and not self.line_width > 0:
            raise DopeError(f"--line-width must be positive, got {self.line_width:g}")
        if (self.azimuth is not None or self.elevation is not None) and not self.visu3d:
            raise DopeError("--azimuth and --elevation turn the 3D view: add --visu3d")
        if self.no_overlay and not self.other_outputs():
            raise DopeError("--no-overlay without --json (or --visu3d, --html, --export): nothing would be written")
        if self.pose_3d and not (self.export_format == "pose"
                                 or any(e.lower().endswith(".pose") for e in self.export or ())):
            raise DopeError("--pose-3d adds 3D joints to a .pose export: add --export FILE.pose")
        if self.ray is None and (self.workers or self.gpus_per_worker is not None):
            raise DopeError("--workers and --gpus-per-worker go with --ray")
        if replay:  # nothing to fill in: the saved records say how they were made
            return self
        return self.replace(postprocess=method, assign=self.assign or "nearest")

    def record_settings(self) -> dict[str, Any]:
        """The RECORD_SETTINGS this run was given (None, and False but for --no-track, mean the
        default and are left out); parts sorted."""
        out: dict[str, Any] = {}
        for name in RECORD_SETTINGS:
            value = getattr(self, name)
            if value is None or (value is False and name != "track"):
                continue
            out[name] = sorted(value) if name == "parts" else value
        return out

    def record_keys(self, model: str) -> dict[str, Any]:
        """The top-level keys that say how this run's records were made: model, postprocess,
        assign (when not the default) and settings (when any is given)."""
        settings = self.record_settings()
        return {"model": model, "postprocess": self.postprocess,
                **({"assign": self.assign} if self.assign not in (None, "nearest") else {}),
                **({"settings": settings} if settings else {})}

    def drawing(self) -> Any:
        """draw_result with the style options (BGR in and out: the writers draw in OpenCV's order)."""
        import functools
        from dope.drawing.draw2d import draw_result
        return functools.partial(draw_result, lw=None if self.line_width is None else self.line_width / 2,
                                 scores=not self.no_scores, pad=not self.no_pad, channels="bgr")

    def view(self) -> Any:
        """The 3D view's camera angles (view3d/scene.py View; its defaults where not given)."""
        from dope.view3d.scene import View
        return View(azimuth=View.azimuth if self.azimuth is None else self.azimuth,
                    elevation=View.elevation if self.elevation is None else self.elevation)

    def detector_options(self) -> dict[str, Any]:
        """DOPE's keyword arguments from this configuration (without the model)."""
        return dict(device=self.device, precision=self.precision, postprocess=self.postprocess,
                    min_score=self.min_score, max_proposals=self.max_proposals, download=not self.no_download,
                    progress=not self.quiet, threads=self.threads, assign=self.assign,
                    max_people=self.max_people, parts=self.parts)
