"""Getting the official checkpoints: where they come from, where they go, fetching and verifying them.

The two published checkpoints are fetched on first use from NAVER LABS Europe's server into the
models folder. A download goes to a temporary file beside its final name and is renamed only
once it is complete and loads as a DOPE checkpoint, so an interrupted or bad download never
leaves a file that a later run would pick up.

Nothing here imports torch: listing models and building messages stay cheap; only the
verification step loads the network code. urllib and http.client (60 ms) are imported by the download.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Optional

import dope.testpoints as testpoints
from dope.files import Output, OutputError, open_output

if TYPE_CHECKING:
    import http.client

log = logging.getLogger(__name__)

# In a checkout, dope.py and models/ sit two folders above this file (dope/inputs/); installed, the
# package sits in site-packages and the models go to the per-user cache (models_dir).
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS_DIR = os.path.join(CHECKOUT, "models")
KNOWN_MODELS = ("DOPE_v1_0_0", "DOPErealtime_v1_0_0")
# Plain http, as published: browsers refuse it, which is why this module exists.
DOWNLOAD_URL = "http://download.europe.naverlabs.com/ComputerVision/DOPE_models"
WEIGHTS_LICENCE = "CC BY-NC-SA 4.0 (NAVER LABS Europe; non-commercial use)"
# The published file name; despite it, the file is a plain torch.save archive, not a tarball.
OFFICIAL_SUFFIX = ".pth.tgz"
# What a model name is looked up as in the models folder, in this order.
CHECKPOINT_SUFFIXES = (OFFICIAL_SUFFIX, ".pth")
PARTIAL_SUFFIX = ".part"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0  # per socket operation (connecting, each read)
# The whole download must end within this many seconds ($DOPE_DOWNLOAD_TIMEOUT overrides): a
# server that trickles bytes never trips the per-read timeout. An hour is 185 MB at 0.4 Mbit/s.
DEADLINE_S = 3600.0
# The SHA-256 of each official checkpoint, recorded after its first verified download (the
# download logs it; see docs/checkpoints.md). None: not recorded yet, so only the checks
# of verify_checkpoint apply. When set, a download with another hash is refused.
OFFICIAL_SHA256: dict[str, Optional[str]] = {
    "DOPE_v1_0_0": None,
    "DOPErealtime_v1_0_0": None,
}


class DownloadError(Exception):
    """A download that failed or gave something unusable; the message says what to do, on one line."""


@dataclass(frozen=True)
class ModelFile:
    """A model the CLI can name: an official one (maybe not downloaded yet) or a checkpoint in the folder.

    path: the checkpoint file, None when not downloaded.  size: its size in bytes, None likewise.
    """
    name: str
    path: Optional[str]
    size: Optional[int]
    official: bool


def in_checkout() -> bool:
    """Whether the package runs from a checkout (dope.py beside it), not from an installation."""
    return os.path.isfile(os.path.join(CHECKOUT, "dope.py")) and os.path.isdir(os.path.join(CHECKOUT, "dope"))


def models_dir() -> str:
    """The folder where model names are looked up: $DOPE_MODELS, else models/ in a checkout, else the
    per-user cache ($XDG_CACHE_HOME/dope/models, by default ~/.cache/dope/models)."""
    if os.environ.get("DOPE_MODELS"):
        return os.environ["DOPE_MODELS"]
    if in_checkout():
        return MODELS_DIR
    from dope.files import cache_dir
    return os.path.join(cache_dir(), "models")


def download_url() -> str:
    """The base address of the official checkpoints: $DOPE_DOWNLOAD_URL (mirrors, tests), else NAVER's."""
    return os.environ.get("DOPE_DOWNLOAD_URL") or DOWNLOAD_URL


def download_deadline() -> float:
    """Seconds a whole download may take: $DOPE_DOWNLOAD_TIMEOUT, else DEADLINE_S; DownloadError when
    the variable is not a positive number."""
    text = os.environ.get("DOPE_DOWNLOAD_TIMEOUT")
    if not text:
        return DEADLINE_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise DownloadError(f"DOPE_DOWNLOAD_TIMEOUT={text!r} is not a positive number of seconds; "
                            f"unset it for the default ({DEADLINE_S:.0f} s)")
    return value


def checkpoint_url(name: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/{name}{OFFICIAL_SUFFIX}"


def official_path(name: str, folder: str) -> str:
    """Where a downloaded official checkpoint lives: `<folder>/<name>.pth.tgz`."""
    return os.path.join(folder, name + OFFICIAL_SUFFIX)


def manual_instructions(name: str, folder: str, base_url: str) -> str:
    """One line telling how to fetch a checkpoint by hand: address, destination, licence."""
    url, path = checkpoint_url(name, base_url), official_path(name, folder)
    return (f"to get it by hand, download {url} to {path} (e.g. curl -fLo {shlex.quote(path)} {shlex.quote(url)}); "
            f"the weights' licence is {WEIGHTS_LICENCE}")


def format_size(n: Optional[int]) -> str:
    """Bytes as '185.6 MB' (decimal units, as tqdm shows them)."""
    if n is None:
        return "size unknown"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def verify_checkpoint(path: str) -> None:
    """Raise `model.CheckpointError` unless `path` loads (weights_only=True) into the DOPE network.

    NAVER publishes no checksums for these files (OFFICIAL_SHA256 pins ours once recorded), so a
    download must also load safely and hold every tensor the network expects, with the right shapes.
    """
    from dope.network.checkpoint import read_checkpoint
    from dope.network.dopenet import build_model
    build_model(read_checkpoint(path))


def fetch_checkpoint(name: str, folder: str, base_url: str, *, progress: bool = True,
                     timeout: float = TIMEOUT_S, deadline: Optional[float] = None,
                     sha256: Optional[str] = None) -> str:
    """Download official checkpoint `name` from `base_url` into `folder` and return its path.

    Says (logging, INFO) what it fetches, its size and the weights' licence; shows a tqdm bar on
    stderr when `progress`. `timeout`: seconds per socket operation; `deadline`: seconds for the
    whole download (default `download_deadline()`); `sha256`: the hash the file must have (default
    OFFICIAL_SHA256[name]; None checks none). Raises `DownloadError` (nothing left behind) when the
    server cannot be reached, answers with an error, is too slow, sends fewer bytes than announced,
    or sends a file that is not a DOPE checkpoint or has another hash. On KeyboardInterrupt (Ctrl-C,
    SIGTERM in the CLI), removes the partial file and re-raises.
    """
    import http.client
    import urllib.error
    import urllib.request
    url, path = checkpoint_url(name, base_url), official_path(name, folder)
    manual = manual_instructions(name, folder, base_url)
    retry = f"nothing was kept in {folder}; run the command again to retry, or {manual}"
    deadline = download_deadline() if deadline is None else deadline
    sha256 = OFFICIAL_SHA256.get(name) if sha256 is None else sha256
    end = time.monotonic() + deadline
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the models folder {folder!r} ({e.strerror}); "
                            f"set DOPE_MODELS to a writable folder, or {manual}") from None
    try:
        response = urllib.request.urlopen(url, timeout=min(timeout, deadline))
    except urllib.error.HTTPError as e:
        raise DownloadError(f"cannot download {url}: the server answered HTTP {e.code} {e.reason}; {manual}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        # URLError covers DNS failures and refused connections: most often, an offline machine.
        reason = getattr(e, "reason", None) or e
        if isinstance(reason, (socket.timeout, TimeoutError)) and time.monotonic() >= end:
            raise DownloadError(f"download of {url} did not finish within {deadline:g} s "
                                f"(set DOPE_DOWNLOAD_TIMEOUT=SECONDS to allow more); {retry}") from None
        raise DownloadError(f"cannot reach {url} ({reason}); if this machine is offline, {manual}") from None
    # files.open_output stages under a name of our own beside the final one (beside a symlink's
    # target), so that the rename is atomic and concurrent downloads do not write into each other.
    with response:
        size = _content_length(response)
        log.info("downloading %s (%s) from %s to %s", name, format_size(size), url, path)
        log.info("the %s weights are licensed under %s", name, WEIGHTS_LICENCE)
        try:
            out = open_output(path, "wb", suffix=PARTIAL_SUFFIX)
        except OutputError as e:
            raise DownloadError(f"{e}; set DOPE_MODELS to a writable folder, or {manual}") from None
        try:
            received, digest = _copy(response, out, size, progress, name, url, retry, end, timeout, deadline)
            out.flush()
            os.fsync(out.file.fileno())
            if size is not None and received != size:
                raise DownloadError(f"download of {url} stopped after {received} of {size} bytes; {retry}")
            _verify_download(out.name, url, retry)
            if sha256 is not None and digest != sha256.lower():
                raise DownloadError(f"the download's SHA-256 is {digest}, not the {sha256} recorded for {name}: "
                                    f"the file at {url} is not the published one; {retry}")
            out.commit()
        except KeyboardInterrupt:
            out.discard()
            log.warning("download of %s interrupted; nothing was kept in %s; run the same command again to "
                        "restart it", name, folder)
            raise
        except OutputError as e:
            out.discard()
            raise DownloadError(f"{e}; {retry}") from None
        except BaseException:
            out.discard()
            raise
    if sha256 is None:
        log.info("SHA-256 of %s: %s (not recorded yet: to pin it, set OFFICIAL_SHA256[%r] in "
                 "dope/inputs/weights.py and the table of docs/checkpoints.md)", name, digest, name)
    log.info("saved %s (%s)", path, format_size(os.path.getsize(path)))
    return path


def _content_length(response: http.client.HTTPResponse) -> Optional[int]:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _copy(response: http.client.HTTPResponse, out: Output, size: Optional[int], progress: bool, name: str,
          url: str, retry: str, end: float, timeout: float, deadline: float) -> tuple[int, str]:
    """Copy the response body to `out` with a progress bar, until `end` (time.monotonic());
    (bytes received, their SHA-256 in hex)."""
    import http.client
    from tqdm import tqdm
    received = 0
    digest = hashlib.sha256()
    late = DownloadError(f"download of {url} did not finish within {deadline:g} s "
                         f"(set DOPE_DOWNLOAD_TIMEOUT=SECONDS to allow more); {retry}")
    with tqdm(total=size, unit="B", unit_scale=True, desc=name, file=sys.stderr, disable=not progress) as bar:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise late
            _set_read_timeout(response, min(timeout, left))
            try:
                # read1: whatever one read of the socket gives, so that a trickle still comes back
                # here to be timed (read(n) would wait for all n bytes).
                chunk = response.read1(CHUNK_BYTES)
            except (http.client.HTTPException, OSError) as e:
                if isinstance(e, (socket.timeout, TimeoutError)) and time.monotonic() >= end - 0.01:
                    raise late from None
                # IncompleteRead (newer Pythons), resets and timeouts: the transfer broke off.
                raise DownloadError(f"download of {url} broke off after {received} bytes "
                                    f"({e or type(e).__name__}); {retry}") from None
            if not chunk:
                return received, digest.hexdigest()
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
            testpoints.passed("download")


def _set_read_timeout(response: http.client.HTTPResponse, seconds: float) -> None:
    """Shorten the socket's timeout to what is left of the deadline. http.client keeps the socket
    inside its file object; without it (another Python), each read keeps urlopen's timeout."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _verify_download(tmp: str, url: str, retry: str) -> None:
    from dope.network.checkpoint import CheckpointError
    log.info("checking that the download is a DOPE checkpoint")
    try:
        verify_checkpoint(tmp)
    except CheckpointError as e:
        # The temporary name means nothing to the user: name the address instead.
        reason = str(e).replace(repr(tmp), repr(url)).replace(tmp, url)
        raise DownloadError(f"the download is not a usable DOPE checkpoint: {reason}; {retry}") from None


def find_models(folder: str) -> list[ModelFile]:
    """The official models (present or not), then any other checkpoint file in `folder`, by name."""
    found: dict[str, ModelFile] = {}
    for name in KNOWN_MODELS:
        paths = [os.path.join(folder, name + s) for s in CHECKPOINT_SUFFIXES]
        path = next((p for p in paths if os.path.isfile(p)), None)
        found[name] = ModelFile(name, path, os.path.getsize(path) if path else None, official=True)
    others = []
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for file in files:
        path = os.path.join(folder, file)
        suffix = next((s for s in CHECKPOINT_SUFFIXES if file.endswith(s)), None)
        if suffix is None or file.startswith(".") or not os.path.isfile(path):
            continue
        name = file[: -len(suffix)]
        if name not in found and name not in {m.name for m in others}:
            others.append(ModelFile(name, path, os.path.getsize(path), official=False))
    return list(found.values()) + others


def describe_models(folder: str, base_url: str, from_env: bool = False) -> str:
    """A few lines for `dope.py --list-models`: each model, its size and where it lives.

    from_env: the folder was set by $DOPE_MODELS (then its absence is reported, not a hint to set it).
    """
    models = find_models(folder)
    width = max(len(m.name) for m in models)
    if from_env:
        missing = "" if os.path.isdir(folder) else "; it does not exist (it is created on the first download)"
        lines = [f"models folder: {folder} (from DOPE_MODELS){missing}"]
    else:
        lines = [f"models folder: {folder} (set DOPE_MODELS to use another)"]
    for m in models:
        if m.path is None:
            where = f"not downloaded; fetched on first use from {checkpoint_url(m.name, base_url)}"
            lines.append(f"  {m.name:<{width}}  {'-':>9}  {where}")
        else:
            note = "" if m.official else "  (not an official model)"
            lines.append(f"  {m.name:<{width}}  {format_size(m.size):>9}  {m.path}{note}")
    lines.append(f"official weights: {WEIGHTS_LICENCE}")
    return "\n".join(lines)
