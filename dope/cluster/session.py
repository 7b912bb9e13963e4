"""Joining or starting a Ray cluster for one job, with Ray's own console output kept quiet.

Ray is the ray extra: without it, `--ray` says how to install it.
Workers import `dope` from the folder that holds it here (PYTHONPATH in the job's runtime
environment), so on a cluster of several machines the project must sit at the same path on every
node (shared storage), like the inputs and outputs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
import sys
import threading
from typing import Any, Iterator, Optional

import dope.testpoints as testpoints
from dope.errors import DopeError

log = logging.getLogger("dope")

CONNECT_TIMEOUT_S = 5  # to reach a cluster's address before Ray tries (Ray itself retries for minutes)
INSTALL_HINT = "pip install 'dope-wholebody[ray]'"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class RayJob:
    """How a job runs on Ray.

    address: a cluster address ('auto', 'ray://host:10001', 'host:6379'); None joins the cluster
        named by $RAY_ADDRESS when set, else starts a local one for the job.
    workers: model replicas (Ray actors), each loading the model once.
    gpus_per_worker: GPUs per replica (fractions share a GPU); None: 1 when the cluster has GPUs,
        else 0 (CPU workers, one CPU each).
    threads: torch CPU threads per worker; None: as many as a single-process run here uses, so that
        the numbers are the same to the last digit (CPU kernels split their sums by thread count).
    verbose: let Ray's own logs and progress bars through.
    """
    address: Optional[str] = None
    workers: int = 1
    gpus_per_worker: Optional[float] = None
    threads: Optional[int] = None
    verbose: bool = False

    @classmethod
    def from_config(cls, config: Any) -> "RayJob":
        """The job a RunConfig asks for (`--ray [ADDRESS] --workers --gpus-per-worker`)."""
        return cls(address=config.ray or None, workers=config.workers or 1, gpus_per_worker=config.gpus_per_worker,
                   threads=config.threads, verbose=config.verbose)


def import_ray() -> Any:
    """The `ray` module, or DopeError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra)
    except ImportError:
        raise DopeError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def connected(job: RayJob) -> Iterator[Any]:
    """The `ray` module, connected to the job's cluster for the block's duration (a local cluster
    started here is stopped at the end). A process already connected (ray.init called by the
    caller) stays connected as it is."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if not job.verbose:
        for name in ("ray", "ray.data", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.ERROR)
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    pythonpath = os.pathsep.join(p for p in (PROJECT_ROOT, os.environ.get("PYTHONPATH")) if p)
    level = logging.INFO if job.verbose else logging.ERROR
    with contextlib.ExitStack() as stack:
        if not job.verbose:
            stack.enter_context(_without_core_logs())
        yield from _session(ray, job, pythonpath, level)


def check_reachable(address: Optional[str], timeout: float = CONNECT_TIMEOUT_S) -> None:
    """DopeError unless a cluster address ('host:port', 'ray://host:port') takes a TCP connection
    within `timeout` seconds: Ray's own client retries a wrong address for minutes, in silence.
    'auto', 'local' and None (a local cluster) are left to Ray."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        raise DopeError(f"a Ray cluster address is 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e) or type(e).__name__)
        raise DopeError(f"cannot reach the Ray cluster at {address}: {reason} (check the address: "
                        "`ray status` on the head node shows it)") from None


def _worker_env(pythonpath: str) -> dict[str, str]:
    """The workers' environment variables: the package's path, and the tests' interruption point."""
    env = {"PYTHONPATH": pythonpath}
    if os.environ.get(testpoints.VARIABLE):
        env[testpoints.VARIABLE] = os.environ[testpoints.VARIABLE]
    return env


def _session(ray: Any, job: RayJob, pythonpath: str, level: int) -> Iterator[Any]:
    check_reachable(job.address or os.environ.get("RAY_ADDRESS"))
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=job.address, log_to_driver=job.verbose, logging_level=level, include_dashboard=False,
                 runtime_env={"env_vars": _worker_env(pythonpath)}, configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = job.address or os.environ.get("RAY_ADDRESS") or "a local cluster"
        raise DopeError(f"cannot join the Ray cluster at {where}: {str(e).splitlines()[0] if str(e) else e}") from None
    if callable(on_sigterm) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)  # Ray's core put its own (a crash report) in its place
    if not job.verbose:
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        resources = ray.cluster_resources()
        log.debug("Ray cluster: %s", {k: v for k, v in resources.items() if k in ("CPU", "GPU", "memory")})
        yield ray
    finally:
        ray.shutdown()


_CORE_HEAD = re.compile(rb"\[\d{4}-\d\d-\d\d [\d:,]+ [DIWEF] \d+ \d+\] ")  # Ray's C++ log lines...
_CORE_LOG = re.compile(_CORE_HEAD.pattern + rb"[^\n]*\n")  # ...whole


@contextlib.contextmanager
def _without_core_logs() -> Iterator[None]:
    """Drop the log lines that Ray's C++ core writes on this process's stderr (file descriptor 2,
    out of Python's reach: "[2026-01-01 12:00:00,000 E 123 123] core_worker.cc: ..."); the rest of
    stderr (our messages, the progress bar) passes as it comes."""
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to filter
        yield
        return
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def forward() -> None:
        buf = b""
        while chunk := os.read(read, 65536):
            buf = _CORE_LOG.sub(b"", buf + chunk)
            start = buf.rfind(b"[")  # hold back what may be the start of a core log line
            tail = buf[start:] if start >= 0 and b"\n" not in buf[start:] else b""
            if len(tail) > 65536 or not (len(tail) < 40 or _CORE_HEAD.match(tail)):
                tail = b""
            os.write(real, buf[:len(buf) - len(tail)])
            buf = tail
        os.write(real, buf)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last writer here: the thread sees the end
        thread.join(timeout=5)
        os.close(real)
        os.close(read)


def gpus_per_worker(ray: Any, job: RayJob) -> float:
    """The job's GPUs per worker: as asked, else 1 when the cluster has GPUs, else 0."""
    if job.gpus_per_worker is not None:
        return job.gpus_per_worker
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def default_threads(job: RayJob) -> int:
    """Torch CPU threads per worker (see RayJob.threads)."""
    if job.threads:
        return job.threads
    import torch
    return torch.get_num_threads()


def failure(e: BaseException) -> DopeError:
    """A one-line DopeError for a Ray job that failed: the innermost error's message when there is one."""
    cause = getattr(e, "cause", None) or e
    if isinstance(cause, DopeError):
        return cause
    text = str(cause).strip().splitlines()
    return DopeError(f"the Ray job failed: {text[-1] if text else type(cause).__name__}")
