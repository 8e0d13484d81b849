"""What the benchmark scripts share: a scratch registry database on this machine, and a main() that
removes what a run made however it ends (finished, failed, Ctrl-C or SIGTERM)."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class BenchError(Exception):
    """The benchmark can't go on; the message says why."""


@contextmanager
def scratch_database(server_url: str | None, folder: Path, *, prefix: str = "flywheel_bench") -> Iterator[str]:
    """A SQLite file in `folder`, or a fresh database on the given PostgreSQL server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if server_url is None:
        yield f"sqlite:///{folder / 'registry.db'}"
        return
    url = make_url(server_url)
    if url.get_backend_name() != "postgresql":
        raise BenchError(f"--database-url must be a PostgreSQL URL, got the {url.get_backend_name()} backend")
    if url.host is not None and url.host not in LOOPBACK:  # None: a Unix socket, local too
        raise BenchError(f"--database-url must point at this machine (127.0.0.1), not {url.host}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main_running(name: str, parse_args: Callable[[list[str] | None], argparse.Namespace],
                 run: Callable[[argparse.Namespace, ExitStack], None], *,
                 interrupted: str) -> Callable[[list[str] | None], int]:
    """A script's main(argv): exit 0 when `run` finishes, 1 with its BenchError's reason, 130 on an interrupt.
    Whatever `run` enters on the stack (servers, databases, folders) is cleaned up in every case."""

    def main(argv: list[str] | None = None) -> int:
        args = parse_args(argv)
        # SIGTERM unwinds like Ctrl-C; SIGINT is set too, since a shell starts background jobs with it ignored.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with ExitStack() as stack:
                run(args, stack)
        except KeyboardInterrupt:
            print(f"\nInterrupted; {interrupted}", file=sys.stderr)
            return 130
        except BenchError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        return 0

    return main


@contextmanager
def scratch_registry(server_url: str | None, *, prefix: str = "flywheel_bench") -> Iterator:
    """A migrated registry (store.db.Database) on a scratch database, in a temporary folder; all removed after."""
    from store.db import Database

    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as folder, \
            scratch_database(server_url, Path(folder), prefix=prefix) as url:
        db = Database(url)
        try:
            db.upgrade()
            yield db
        finally:
            db.dispose()
