"""The ids webapi gives requests that bring none: unique, uuid4-shaped, and a forked child's
never repeat its parent's (the served ids are checked in tests/webapi/test_observability.py)."""

from __future__ import annotations

import multiprocessing
import re

from webapi.observability import _RequestIds


def _id_in_child(ids: _RequestIds, queue: multiprocessing.Queue[str]) -> None:
    queue.put(ids())


def test_ids_are_unique_hex_of_a_uuids_length() -> None:
    ids = _RequestIds()
    drawn = [ids() for _ in range(10_000)]
    assert len(set(drawn)) == len(drawn)
    assert all(re.fullmatch("[0-9a-f]{32}", drawn_id) for drawn_id in drawn)
    assert _RequestIds()()[:16] != drawn[0][:16]  # another process's prefix, by chance equal at 2**-64
    # consecutive, from a random start: no count of the requests served shows
    assert int(drawn[1][16:], 16) == int(drawn[0][16:], 16) + 1 and int(drawn[0][16:], 16) > 2**32


def test_a_forked_child_draws_a_prefix_of_its_own() -> None:
    ids = _RequestIds()
    parent = ids()
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    child = context.Process(target=_id_in_child, args=(ids, queue))
    child.start()
    child_id = queue.get(timeout=30)
    child.join(timeout=30)
    assert child_id[:16] != parent[:16]
    assert ids()[:16] == parent[:16]  # the parent's own stay as they were
