"""Getting the official checkpoints: where they come from, where they go, fetching and verifying them.

The two published checkpoints are fetched on first use from NAVER LABS Europe's server into the
models folder. A download goes to a temporary file beside its final name and is renamed only
once it is complete and loads as a DOPE checkpoint, so an interrupted or bad download never
leaves a file that a later run would pick up.

Nothing here imports torch: listing models and building messages stay cheap; only the
verification step loads the network code.
"""
from __future__ import annotations

import http.client
import logging
import os
import shlex
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO, Optional

from wholebody.files import staging_path

log = logging.getLogger(__name__)

# The checkout: dope.py and models/ sit two folders above this file (wholebody/inputs/).
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
TIMEOUT_S = 60.0  # per socket operation, not for the whole download


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


def models_dir() -> str:
    """The folder where model names are looked up: $DOPE_MODELS, else models/ beside dope.py."""
    return os.environ.get("DOPE_MODELS") or MODELS_DIR


def download_url() -> str:
    """The base address of the official checkpoints: $DOPE_DOWNLOAD_URL (mirrors, tests), else NAVER's."""
    return os.environ.get("DOPE_DOWNLOAD_URL") or DOWNLOAD_URL


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

    NAVER publishes no checksums for these files, so no hash can be pinned here; instead a
    download must load safely and hold every tensor the network expects, with the right shapes.
    """
    from wholebody.network.dopenet import build_model, read_checkpoint
    build_model(read_checkpoint(path))


def fetch_checkpoint(name: str, folder: str, base_url: str, *, progress: bool = True,
                     timeout: float = TIMEOUT_S) -> str:
    """Download official checkpoint `name` from `base_url` into `folder` and return its path.

    Says (logging, INFO) what it fetches, its size and the weights' licence; shows a tqdm bar on
    stderr when `progress`. Raises `DownloadError` (nothing left behind) when the server cannot be
    reached, answers with an error, sends fewer bytes than announced or sends a file that is not a
    DOPE checkpoint. On KeyboardInterrupt, removes the partial file and re-raises.
    """
    url, path = checkpoint_url(name, base_url), official_path(name, folder)
    manual = manual_instructions(name, folder, base_url)
    retry = f"nothing was kept in {folder}; run the command again to retry, or {manual}"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the models folder {folder!r} ({e.strerror}); "
                            f"set DOPE_MODELS to a writable folder, or {manual}") from None
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"cannot download {url}: the server answered HTTP {e.code} {e.reason}; {manual}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        # URLError covers DNS failures and refused connections: most often, an offline machine.
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"cannot reach {url} ({reason}); if this machine is offline, {manual}") from None
    # A name of our own beside the final one, so that os.replace is atomic and concurrent
    # downloads of the same model do not write into each other's file.
    tmp = staging_path(path, PARTIAL_SUFFIX)
    try:
        with response:
            size = _content_length(response)
            log.info("downloading %s (%s) from %s to %s", name, format_size(size), url, path)
            log.info("the %s weights are licensed under %s", name, WEIGHTS_LICENCE)
            try:
                out = open(tmp, "xb")
            except OSError as e:
                raise DownloadError(f"cannot write into {folder!r} ({e.strerror}); "
                                    f"set DOPE_MODELS to a writable folder, or {manual}") from None
            with out:
                received = _copy(response, out, size, progress, name, url, retry)
                out.flush()
                os.fsync(out.fileno())
        if size is not None and received != size:
            raise DownloadError(f"download of {url} stopped after {received} of {size} bytes; {retry}")
        _verify_download(tmp, url, retry)
        os.replace(tmp, path)
    except KeyboardInterrupt:
        log.warning("download of %s interrupted; nothing was kept in %s; run the same command again to restart it",
                    name, folder)
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("saved %s (%s)", path, format_size(os.path.getsize(path)))
    return path


def _content_length(response: http.client.HTTPResponse) -> Optional[int]:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _copy(response: http.client.HTTPResponse, out: BinaryIO, size: Optional[int], progress: bool, name: str,
          url: str, retry: str) -> int:
    """Copy the response body to `out` with a progress bar; the number of bytes received."""
    from tqdm import tqdm
    received = 0
    with tqdm(total=size, unit="B", unit_scale=True, desc=name, file=sys.stderr, disable=not progress) as bar:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (http.client.HTTPException, OSError) as e:
                # IncompleteRead (newer Pythons), resets and timeouts: the transfer broke off.
                raise DownloadError(f"download of {url} broke off after {received} bytes "
                                    f"({e or type(e).__name__}); {retry}") from None
            if not chunk:
                return received
            try:
                out.write(chunk)
            except OSError as e:
                raise DownloadError(f"cannot write the download into {os.path.dirname(out.name)!r} "
                                    f"({e.strerror}); {retry}") from None
            received += len(chunk)
            bar.update(len(chunk))


def _verify_download(tmp: str, url: str, retry: str) -> None:
    from wholebody.network.dopenet import CheckpointError
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
