"""Videos on Ray: one Ray task per video, so that its frames stay in order (tracking, smoothing).

The task runs the single-process pipeline on a worker (the command line's own `run`, passed in:
the package does not import the CLI), which writes the video's outputs itself (JSON Lines,
annotated video) on storage the driver shares. The task's warnings are shown by the driver.
A worker that dies has its task run again from the start (outputs are written under staging
names, so a half-done attempt never replaces a file). Ctrl-C cancels the task, which then keeps
what it had written, as a single-process run does.
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Callable

from wholebody.cluster.session import RayJob, connected, default_threads, failure, gpus_per_worker
from wholebody.errors import DopeError

log = logging.getLogger("dope")

TASK_RETRIES = 3
CANCEL_WAIT_S = 60  # how long Ctrl-C waits for the task to close its outputs


def _video_task(run: Callable[[argparse.Namespace], int], args: argparse.Namespace, cwd: str,
                ) -> tuple[int, list[str]]:
    """On a worker: (exit code, warnings logged) of one single-process run (or 1 and its error)."""
    class Collect(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            said.append(rec.getMessage())

    said: list[str] = []
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative paths as on the driver (shared storage)
    logger = logging.getLogger("dope")
    handler = Collect(logging.WARNING)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return run(args), said
    except DopeError as e:
        return 1, said + [f"error: {e}"]
    except KeyboardInterrupt:
        return 130, said
    finally:
        logger.removeHandler(handler)


def run_video(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """--ray with --video: the job of `args` (without --ray) as one Ray task; its exit code."""
    job = RayJob.from_args(args)
    if not os.path.isfile(args.video):
        raise DopeError(f"--ray takes video files (cameras are read where they are plugged in): {args.video!r}")
    with connected(job) as ray:
        gpus = gpus_per_worker(ray, job)
        task_args = argparse.Namespace(**{**vars(args), "ray": None, "workers": None, "gpus_per_worker": None,
                                          "threads": default_threads(job), "quiet": True,
                                          "device": args.device or ("cuda" if gpus else "cpu")})
        task = ray.remote(_video_task).options(num_cpus=0 if gpus else 1, num_gpus=gpus, max_retries=TASK_RETRIES,
                                               retry_exceptions=False)
        ref = task.remote(run, task_args, os.getcwd())
        log.info("Ray: %s as one task (%s)", args.video, f"{gpus:g} GPU" if gpus else "CPU")
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
    if code == 0 and not args.quiet:
        for path in _outputs(args):
            log.info("wrote %s", path)
    return code


def _outputs(args: argparse.Namespace) -> list[str]:
    from wholebody.detector import model_name, resolve_model
    from wholebody.files import output_path
    out = [args.json] if args.json else []
    if not args.no_overlay:
        out.append(output_path(args.video, model_name(resolve_model(args.model, download=False)), args.output_dir,
                               ".mp4"))
    return [p for p in out if os.path.exists(p)]
