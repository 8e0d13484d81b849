"""The worker's CPU priority: batch work (checks, training, charts) yields to `flywheel serve` answering
Slack on the same machine."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("flywheel.worker")


def lower_priority(nice: int) -> int:
    """Make every thread of this process at least `nice` nice; return the process's niceness.

    Linux keeps a niceness per thread and a new thread inherits its creator's, so the threads already
    running (numpy's and pyarrow's pools, started on import) are lowered one by one."""
    if not hasattr(os, "setpriority"):  # not a Unix: nothing to lower
        return 0
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: elsewhere the call on 0 covers the whole process
        threads = [0]
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    _lower_own_session(nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


AUTOGROUP = Path("/proc/self/autogroup")  # "/autogroup-85 nice 0"


def session_nice() -> int | None:
    """The niceness of this process's autogroup (its session's CPU share), or None when the session is not
    scheduled as an autogroup: a kernel without autogroups, or a session of init's, which the kernel shows
    as an empty file (a container's processes started outside any login or service often are)."""
    try:
        return int(AUTOGROUP.read_text().rsplit(maxsplit=1)[1])
    except (OSError, ValueError, IndexError):
        return None


def _lower_own_session(nice: int) -> None:
    """Linux's autogroup scheduling first shares the CPU evenly between sessions, and only within one by
    niceness: a worker leading a session of its own (a service, `setsid`) lowers that session too, or a
    `flywheel serve` in another session would still get only an even share. A worker in a session it
    shares (under `flywheel run`, in a terminal) leaves the session alone: its own niceness ranks it there,
    and a shell's session would stay lowered after the worker stops."""
    if os.getsid(0) != os.getpid():
        return
    current = session_nice()
    if current is None or current >= nice:
        return
    try:
        AUTOGROUP.write_text(str(nice))
    except OSError:  # a kernel that refuses: the threads' niceness still holds
        log.warning("could not lower this session's CPU share (%s)", AUTOGROUP)
