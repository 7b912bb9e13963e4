"""Deterministic interruption points, for the test suite only.

A test that must interrupt a run at a given point (a kill between two videos, SIGTERM after some
records, a Ray worker lost in the middle of its batch) cannot poll the outputs and hope to act in
time: on a busy machine the run may be done before the poll looks. Instead it sets

    DOPE_TEST_INTERRUPT="WHERE:N:SIGNAL[:ONCE]"

and the process sends itself SIGNAL (KILL, TERM or INT) the Nth time it passes the point WHERE:

- `line`: a JSON Lines line written and flushed (`outputs.writers.JsonLinesWriter`);
- `batch`: a Ray worker's batch of images computed, before it is sent back (`cluster.images`);
- `download`: a chunk of a checkpoint download written (`inputs.weights`).

ONCE, a path: only the process that creates that file acts (a Ray worker restarted after the
signal then carries on). Users never set this variable; an unreadable value is ignored with a
warning, so that a stray setting cannot stop a real run silently. The Ray driver passes it on to
its workers (`cluster.session`).
"""
from __future__ import annotations

import logging
import os
import signal
from typing import Optional

log = logging.getLogger("dope")

VARIABLE = "DOPE_TEST_INTERRUPT"
POINTS = ("line", "batch", "download")
SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "INT": signal.SIGINT}

_counts: dict[str, int] = {}
_parsed: Optional[tuple[str, tuple[str, int, signal.Signals, Optional[str]]]] = None


def _plan() -> Optional[tuple[str, int, signal.Signals, Optional[str]]]:
    """(where, n, signal, once) from the environment, parsed once per value; None when unset."""
    global _parsed
    value = os.environ.get(VARIABLE, "")
    if _parsed is not None and _parsed[0] == value:
        return _parsed[1]
    plan = None
    if value:
        fields = value.split(":", 3)
        try:
            where, n, sig = fields[0], int(fields[1]), SIGNALS[fields[2]]
            if where not in POINTS or n < 1:
                raise ValueError
            plan = (where, n, sig, fields[3] if len(fields) > 3 else None)
        except (IndexError, KeyError, ValueError):
            log.warning("ignored %s=%r: expected WHERE:N:SIGNAL[:ONCE] with WHERE in %s and SIGNAL in %s",
                        VARIABLE, value, "/".join(POINTS), "/".join(SIGNALS))
    _parsed = (value, plan)
    return plan


def passed(where: str) -> None:
    """Count one pass of the point `where`; interrupt the process if the plan says so."""
    plan = _plan()
    if plan is None or plan[0] != where:
        return
    _counts[where] = _counts.get(where, 0) + 1
    if _counts[where] != plan[1]:
        return
    if plan[3] is not None:
        try:
            os.close(os.open(plan[3], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another process (or this one's earlier life) acted already
    os.kill(os.getpid(), plan[2])
