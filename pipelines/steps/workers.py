"""Normalization on every core: chunks of payloads out to worker processes, outcomes back in order.

Why processes: normalizing is CPU work (email, phone and name parsing), and
threads of one Python process share one core. Why in order: a record landed
twice in one read (changed between two pages) must end with its later
payload's outcome, so outcomes come back in the order the chunks went out.
At most `2 × workers + 1` chunks are out at once, so memory holds a few chunks
whatever the backlog. Workers are spawned, never forked (the step's process
has threads: the read's prefetch, Dagster's own), and import only
`schemas.apply` and the normalizer's module (never this package, whose
import loads the Dagster definitions); each exits when the step's process is
gone (a run killed with SIGKILL). If the pool breaks (a worker
killed, a normalizer that cannot be pickled), the chunks still out and all
later ones are normalized in the step's own process: slower, same outcomes.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

from schemas.apply import Outcome, exit_with_parent, normalize_all

Tag = TypeVar("Tag")
log = logging.getLogger(__name__)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or `taskset` narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Workers(Generic[Tag]):
    """`submit` chunks, then take their outcomes from `done`, in submission order.

    `cores`: how many cores normalize. The step's own process is one of
    them (it reads, builds the stored rows and writes them, about 40 % of
    the work), so `cores - 1` worker processes run the normalizers; 1 is
    all in this process.
    """

    def __init__(self, cores: int) -> None:
        self.size = max(1, cores - 1)
        pool = cores > 1 and not mp.current_process().daemon  # a daemonic process may not have children
        self._pool = ProcessPoolExecutor(self.size, mp_context=mp.get_context("spawn"),
                                         initializer=exit_with_parent) if pool else None
        self._out: deque[tuple[Tag, Callable[..., dict[str, Any]], Sequence[Any], str, Future | list[Outcome]]] = deque()

    def submit(self, tag: Tag, normalize: Callable[..., dict[str, Any]], payloads: Sequence[Any], region: str) -> None:
        result: Future | list[Outcome] | None = None
        if self._pool is not None:
            try:
                result = self._pool.submit(normalize_all, normalize, payloads, region)
            except Exception as exc:  # the pool is broken, or cannot start here
                self._give_up(exc)
        if result is None:
            result = normalize_all(normalize, payloads, region)
        self._out.append((tag, normalize, payloads, region, result))

    def done(self, *, wait: bool = False) -> Iterator[tuple[Tag, list[Outcome]]]:
        """The outcomes ready at the head of the line; with `wait` (or too many out), all of them in turn."""
        while self._out:
            tag, normalize, payloads, region, result = self._out[0]
            if isinstance(result, Future):
                if not (wait or result.done() or len(self._out) > 2 * self.size + 1):
                    return
                result = self._result(result, normalize, payloads, region)
            self._out.popleft()
            yield tag, result

    def _result(self, future: Future, normalize: Callable[..., dict[str, Any]], payloads: Sequence[Any],
                region: str) -> list[Outcome]:
        try:
            return future.result()
        except Exception as exc:  # normalize_all raises nothing itself: the pool failed, not the payloads
            self._give_up(exc)
            return normalize_all(normalize, payloads, region)

    def _give_up(self, exc: Exception) -> None:
        if self._pool is not None:
            log.warning("normalization workers failed (%s); normalizing in this process from here on",
                        type(exc).__name__)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
