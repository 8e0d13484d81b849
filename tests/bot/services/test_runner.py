"""The in-process runner keeps only unfinished work and reports every failure, not the first."""

from __future__ import annotations

import threading

import pytest

from bot.services.common import BackgroundFailures, Runner


def test_finished_work_is_not_kept():
    runner = Runner()
    for _ in range(500):
        runner.submit(lambda: None)
    runner.join()
    assert runner.pending == 0


def test_pending_counts_only_unfinished_work():
    runner, release = Runner(), threading.Event()
    runner.submit(release.wait)
    runner.submit(lambda: None)
    assert runner.pending == 2
    release.set()
    runner.join()
    assert runner.pending == 0


def test_join_reports_every_failure_and_waits_for_the_rest():
    runner, done = Runner(), []

    def fail(n: int) -> None:
        raise ValueError(f"failure {n}")

    runner.submit(fail, 1)
    runner.submit(done.append, "ran after the first failure")
    runner.submit(fail, 2)
    with pytest.raises(BackgroundFailures) as raised:
        runner.join()
    assert sorted(str(e) for e in raised.value.exceptions) == ["failure 1", "failure 2"]
    assert done == ["ran after the first failure"]
    runner.join()  # reported once: the next join has nothing to say


def test_a_single_failure_is_raised_as_itself():
    runner = Runner()
    runner.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        runner.join()


def test_work_submitted_by_work_is_waited_for():
    runner, done = Runner(), []
    runner.submit(lambda: runner.submit(done.append, "nested"))
    runner.join()
    assert done == ["nested"]
