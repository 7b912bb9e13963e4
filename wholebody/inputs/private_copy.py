"""A checkpoint file copied into this process's own memory on another thread, while torch is imported.

Why: `import torch` keeps one core busy for about 2 s, and reading a 200 MB checkpoint afterwards
costs another 0.15 s. `PrivateCopy` starts the copy first, on a thread of its own that spends its
time in the kernel (os.sendfile, without the GIL), so it is done when torch is; torch.load then
maps the copy (0.03 s). The copy is an anonymous in-memory file (memfd) that only this process
holds: unlike a map of the checkpoint file itself, nothing done to that file meanwhile (cp or
curl -o over it, truncation) can reach the weights, so there is no SIGBUS to fear.

Linux only (memfd_create and /proc/self/fd); elsewhere, or when the copy fails for any reason,
`path()` is None and the caller reads the file as usual. Nothing here imports torch.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Optional

log = logging.getLogger(__name__)


class PrivateCopy:
    """Copies `source` (a regular file) into a memfd on a background thread, from construction on.

    path(): where the finished copy can be opened (/proc/self/fd/N), or None if it could not be
    made; close() (or the end of a `with` block, or garbage collection) frees it. Memory is held
    until then, and afterwards by whatever mapped it.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._fd: Optional[int] = None
        self._thread = threading.Thread(target=self._copy, name="dope-checkpoint-copy", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        fd = None
        try:
            fd = os.memfd_create("dope-checkpoint", os.MFD_CLOEXEC)
            with open(self.source, "rb") as src:
                size, offset = os.fstat(src.fileno()).st_size, 0
                while offset < size:
                    sent = os.sendfile(fd, src.fileno(), offset, size - offset)
                    if sent == 0:  # the file shrank meanwhile: what is there is what a read would give
                        break
                    offset += sent
            self._fd, fd = fd, None
        except (OSError, AttributeError, ValueError) as e:  # AttributeError: no memfd_create or sendfile
            log.debug("no private copy of %r (%s): it will be read as usual", self.source, e)
        finally:
            if fd is not None:
                os.close(fd)

    def path(self) -> Optional[str]:
        """The finished copy's path (waits for it), or None when there is none."""
        self._thread.join()
        if self._fd is None:
            return None
        path = f"/proc/self/fd/{self._fd}"
        return path if os.path.exists(path) else None

    def close(self) -> None:
        self._thread.join()
        self._release()

    def _release(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "PrivateCopy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._release()  # the thread holds a reference while it runs: this runs once it is done
