"""Waiting for what another thread or process does: the one helper every test uses."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str, *, poll: float = 0.02,
               changed: threading.Condition | None = None, detail: Callable[[], str] | None = None) -> T:
    """The first truthy value `condition()` returns; an AssertionError naming `what` after `timeout` seconds.

    `condition` may itself fail the wait at once by raising (say, when the process it waits on died).
    With `changed`, a Condition the other side notifies whenever its state changes, `condition` is called
    with it held and the wait sleeps until a notification instead of polling every `poll` seconds.
    `detail` adds what helps the reader of a timeout: a process's output, what was seen instead.
    """
    deadline = time.monotonic() + timeout
    if changed is not None:
        with changed:
            while not (found := condition()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                changed.wait(left)
            else:
                return found
    else:
        while not (found := condition()):
            if time.monotonic() >= deadline:
                break
            time.sleep(poll)
        else:
            return found
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}" + (f"\n{detail()}" if detail else ""))
