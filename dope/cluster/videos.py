"""Videos on Ray: one Ray task per video, so that its frames stay in order (tracking, smoothing).

The task runs the single-process pipeline (pipeline.Pipeline) on a worker, which writes the
video's outputs itself (annotated video, exports) on storage the driver shares. The task's warnings are shown by the driver.
A worker that dies has its task run again from the start (outputs are written under staging
names, so a half-done attempt never replaces a file). Ctrl-C cancels the tasks, which then keep
what they had written (one video) or drop their video's outputs (a corpus), as a single-process
run does.

A corpus (several videos, corpus.py) is one task per video, at most --workers at a time (else as
many as the cluster's resources hold, Ray's own scheduling). Each task runs its video as the
single-process corpus runs each of its videos (a video that breaks off writes no exports); its
JSON records come back to the driver, which writes them into the corpus's JSON Lines, in input
order once closed (outputs/corpus_json.py). A worker process keeps the last model it loaded for
the next video of the same job (`_DETECTORS`), as the single-process corpus loads it once.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Any, Callable, Iterator

from dope.cluster.session import RayJob, connected, default_threads, failure, gpus_per_worker
from dope.startup import allow_winograd
from dope.config import RunConfig
from dope.errors import DopeError, InputError
from dope.pipeline import Pipeline

log = logging.getLogger("dope")

TASK_RETRIES = 3
CANCEL_WAIT_S = 60  # how long Ctrl-C waits for the task to close its outputs
# A worker process's last model, {settings: DOPE}: the next video of the job on that worker skips
# the load. One entry only, so a worker never holds two models (in GPU memory) at once.
_DETECTORS: dict[str, Any] = {}


@contextlib.contextmanager
def _collected_warnings(config: RunConfig) -> Iterator[list[str]]:
    """On a worker: the messages of warnings logged in the block (for the driver to show)."""
    class Collect(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            said.append(rec.getMessage())

    said: list[str] = []
    logger = logging.getLogger("dope")
    handler = Collect(logging.WARNING)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if config.verbose else logging.INFO)
    try:
        yield said
    finally:
        logger.removeHandler(handler)


def _video_task(config: RunConfig, cwd: str,
                ) -> tuple[int, list[str]]:
    """On a worker: (exit code, warnings logged) of one single-process run (or 1 and its error)."""
    allow_winograd()  # the job's own process: as the command's
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative paths as on the driver (shared storage)
    with _collected_warnings(config) as said:
        try:
            return Pipeline(config).run(), said
        except DopeError as e:
            return 1, said + [f"error: {e}"]
        except KeyboardInterrupt:
            return 130, said


def _block_lines(path: str, extra: dict[str, Any]) -> Any:
    """On a worker: a corpus's JSON writer that keeps the video's lines, for the driver."""
    from dope.outputs.corpus_json import BlockLines
    return BlockLines(**extra)


def _corpus_task(config: RunConfig, template: Any, cwd: str) -> dict[str, Any]:
    """On a worker: one video of a corpus, run as the single-process corpus runs it (template: the
    corpus's `Shared`, without a model or JSON writer of its own). Returns
    {"code", "said" (warnings), "lines" (its JSON lines, None when it failed or wrote none),
    "error" (the message of the error it failed with, else None), "early" (whether that error came
    before the model loaded: the same for every video)}."""
    allow_winograd()  # the job's own process: as the command's
    if os.path.isdir(cwd):
        os.chdir(cwd)
    key = repr(sorted((k, v) for k, v in vars(config).items() if k in _MODEL_OPTIONS))
    shared = dataclasses.replace(template, bar={})  # the corpus's Shared, for this video alone
    shared.detector = _DETECTORS.get(key)
    out: dict[str, Any] = {"code": 1, "lines": None, "error": None, "early": False}
    with _collected_warnings(config) as said:
        try:
            out["code"] = Pipeline(config, shared).run()
            out["lines"] = shared.json.lines if shared.json is not None else None
        except InputError as e:
            out["error"] = str(e)
        except DopeError as e:
            out["error"], out["early"] = str(e), shared.detector is None
        except KeyboardInterrupt:
            out["code"] = 130
    if shared.detector is not None and key not in _DETECTORS:
        _DETECTORS.clear()
        _DETECTORS[key] = shared.detector
    return dict(out, said=said)


# The options a detector is built from (pipeline.py): videos with the same ones share a worker's model.
_MODEL_OPTIONS = ("model", "device", "precision", "postprocess", "min_score", "max_proposals", "threads", "assign",
                  "max_people", "parts", "no_download")


def run_video(config: RunConfig) -> int:
    """--ray with --video: the job of `config` (without --ray) as one Ray task; its exit code."""
    job = RayJob.from_config(config)
    if not os.path.isfile(config.video):
        raise DopeError(f"--ray takes video files (cameras are read where they are plugged in): {config.video!r}")
    with connected(job) as ray:
        gpus = gpus_per_worker(ray, job)
        task_args = _task_args(config, job, gpus)
        task = ray.remote(_video_task).options(num_cpus=0 if gpus else 1, num_gpus=gpus, max_retries=TASK_RETRIES,
                                               retry_exceptions=False)
        ref = task.remote(task_args, os.getcwd())
        log.info("Ray: %s as one task (%s)", config.video, f"{gpus:g} GPU" if gpus else "CPU")
        try:
            code, said = ray.get(ref)
        except KeyboardInterrupt:
            ray.cancel(ref)  # KeyboardInterrupt in the task: its writers keep what they have
            try:
                ray.get(ref, timeout=CANCEL_WAIT_S)
            except Exception:  # cancelled tasks end with TaskCancelledError
                pass
            raise
        except ray.exceptions.RayError as e:
            raise failure(e) from None
    for line in said:
        if line.startswith("error: "):
            raise DopeError(line[len("error: "):])
        log.warning("%s", line)
    if code == 0 and not config.quiet:
        for path in _outputs(config):
            log.info("wrote %s", path)
    return code


def _outputs(config: RunConfig) -> list[str]:
    from dope.detector import model_name, resolve_model
    from dope.files import output_path
    out = [config.json] if config.json else []
    if not config.no_overlay:
        out.append(output_path(config.video, model_name(resolve_model(config.model, download=False)), config.output_dir,
                               ".mp4"))
    return [p for p in out if os.path.exists(p)]


def _task_args(config: RunConfig, job: RayJob, gpus: float) -> RunConfig:
    """The options of a run on a worker: without --ray, quiet, on the worker's device."""
    return config.replace(ray=None, workers=None, gpus_per_worker=None, threads=default_threads(job), quiet=True,
                          device=config.device or ("cuda" if gpus else "cpu"))


def run_corpus(config: RunConfig, videos: list[tuple[str, RunConfig]],
               shared: Any, ended: Callable[..., None]) -> None:
    """--ray with several videos (corpus.py): (video, its options) each as one Ray task, at most
    --workers at a time; `ended(video, code, error)` as each ends (error: an exception to report,
    else None); the JSON records of the videos done go to `shared`'s JSON writer. DopeError when
    a task fails before its model loads (the same for every video: the others are cancelled)."""
    job = RayJob.from_config(config)
    with connected(job) as ray:
        if not videos:
            return
        gpus = gpus_per_worker(ray, job)
        if config.json:
            shared.json = shared.open_json(config.json, {})  # the tasks send back whole lines
        task = ray.remote(_corpus_task).options(num_cpus=0 if gpus else 1, num_gpus=gpus, max_retries=TASK_RETRIES,
                                                retry_exceptions=False)
        window = config.workers or len(videos)  # else Ray runs as many as the cluster's resources hold
        log.info("Ray: %d videos, one task each (%s)%s", len(videos), f"{gpus:g} GPU" if gpus else "CPU",
                 f", {window} at a time" if config.workers else "")
        queue = list(reversed(videos))
        one_args = dict(videos)
        running: dict[Any, str] = {}
        cwd = os.getcwd()
        # what a task's run shares: nothing of the driver's (the worker loads its own model)
        template = dataclasses.replace(shared, open_json=_block_lines, json=None, detector=None, bar={})
        try:
            while queue or running:
                while queue and len(running) < window:
                    video, one = queue.pop()
                    running[task.remote(_task_args(one, job, gpus), template, cwd)] = video
                done, _ = ray.wait(list(running), num_returns=1)
                video = running.pop(done[0])
                try:
                    out = ray.get(done[0])
                except ray.exceptions.RayError as e:  # its worker died more often than it is retried
                    ended(video, 1, failure(e))
                    continue
                for line in out["said"]:
                    log.warning("%s", line)
                if out["early"]:
                    raise DopeError(out["error"])
                if out["lines"] is not None and shared.json is not None:
                    shared.json.add(video, out["lines"])
                if out["error"] is None and out["code"] == 0:
                    for path in (one_args[video].export or ()):
                        log.info("wrote %s", path)
                ended(video, out["code"], None if out["error"] is None else DopeError(out["error"]))
        except BaseException:
            for ref in running:  # KeyboardInterrupt in the tasks: their videos' outputs are dropped
                ray.cancel(ref)
            try:
                ray.wait(list(running), num_returns=len(running), timeout=CANCEL_WAIT_S)
            except Exception:
                pass
            raise

