"""Bulk work on millions of small Python objects: the cyclic garbage collector paused."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for bulk work, and restore it after.

    An import or a training run's load allocates millions of short-lived tuples that form no
    cycles; with the collector on, they set off collections that walk everything allocated so
    far again and again: 45% of an impressions import, 25% of a dislikes import
    (bench/ingest.py), a third of loading a million training examples (bench/learning.py).
    Memory is still freed by reference counting. The collector is turned back on only if it
    was on before, so bulk work inside other bulk work leaves the process as it found it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
