"""Progress of long work: a tqdm bar on a terminal, log lines elsewhere (a file, a pipe, CI logs),
where a bar's carriage returns and cursor escapes would only fill the log."""
from __future__ import annotations

import logging
import sys
import time
from typing import Any, Optional

log = logging.getLogger("dope")

LOG_EVERY_S = 10.0  # at most one progress line this often, plus the last


def interactive(stream: Any = None) -> bool:
    """Whether `stream` (default: standard error) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LogProgress:
    """tqdm's interface as far as DOPE uses it (update, close, a context manager, `disable`), as
    log lines: `frames: 120/400 (30%)` at most every LOG_EVERY_S seconds, and at the end."""

    def __init__(self, total: Optional[int] = None, initial: int = 0, unit: str = "it", desc: Optional[str] = None,
                 disable: bool = False, **_: Any) -> None:
        self.total, self.n, self.unit, self.desc, self.disable = total, initial, unit, desc, disable
        self._last = time.monotonic()
        self._said = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.disable and time.monotonic() - self._last >= LOG_EVERY_S:
            self._say()

    def _say(self) -> None:
        self._last, self._said = time.monotonic(), self.n
        where = f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else str(self.n)
        log.info("%s%s %ss", f"{self.desc}: " if self.desc else "", where, self.unit)

    def close(self) -> None:
        if not self.disable and self.n != self._said and self.n > 1:
            self._say()
        self.disable = True

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(**kwargs: Any) -> Any:
    """A tqdm bar on a terminal (standard error), else a LogProgress with the same arguments."""
    if interactive():
        from tqdm import tqdm
        return tqdm(file=sys.stderr, **kwargs)
    return LogProgress(**kwargs)
