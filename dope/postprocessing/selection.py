"""Keeping some of the detections after post-processing: a limit on the number of people, and parts."""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from dope.results import NO_LINK, LINKS, Result

HANDS_PER_PERSON = 2


def limit_people(result: Result, max_people: int) -> Result:
    """At most `max_people` people: the best-scoring bodies, with the hands and faces attached to them.

    Hands and faces attached to a dropped body are dropped with it; those attached to no body are
    kept, best first, while there is room (2 hands and 1 face per person allowed). Order and links
    are kept (see `Result.select`).
    """
    if max_people < 0:
        raise ValueError(f"max_people must be at least 0, got {max_people}")
    body = result.body
    kept_bodies = np.sort(np.argsort(-body.scores, kind="stable")[:max_people])
    dropped_bodies = np.setdiff1d(np.arange(len(body)), kept_bodies)
    keep = {"body": kept_bodies}
    for part, cap in (("hand", HANDS_PER_PERSON * max_people), ("face", max_people)):
        links = [link for link, p in LINKS.items() if p == part]
        attached = {int(i) for link in links for i in body.fields[link][kept_bodies]} - {NO_LINK}
        elsewhere = {int(i) for link in links for i in body.fields[link][dropped_bodies]} - {NO_LINK} - attached
        scores = result[part].scores
        free = [i for i in np.argsort(-scores, kind="stable") if i not in attached and i not in elsewhere]
        keep[part] = np.array(sorted(attached | set(free[:max(0, cap - len(attached))])), np.int64)
    return result.select(keep)


def select_detections(result: Result, *, min_score: Optional[float] = None, max_people: Optional[int] = None,
                      parts: Optional[Iterable[str]] = None) -> Result:
    """`result` with only the detections scoring at least `min_score`, at most `max_people` people
    (`limit_people`) and only the `parts` named (others left empty). None keeps everything."""
    if min_score is not None or parts is not None:
        result = result.filter(min_score=min_score, parts=parts)
    if max_people is not None:
        result = limit_people(result, max_people)
    return result
