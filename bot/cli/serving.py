"""`flywheel serve`, `worker` and `run`: the Slack app (over HTTP, in several processes, or in Socket Mode)
and the worker."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from bot.cli.common import Failure, load_settings, open_database, quiet_slack_sdk
from store.errors import FlywheelError


def _socket_mode_refusal(error: str) -> str:
    where = "Basic Information > App-Level Tokens"
    if error == "not_allowed_token_type":
        return (f"SLACK_APP_TOKEN is not an app-level token ({error}): use the xapp-... token from {where}, "
                "not the bot token")
    if error == "missing_scope":
        return f"SLACK_APP_TOKEN lacks the connections:write scope ({error}): add it under {where}"
    if error in ("invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"):
        return (f"Slack refused SLACK_APP_TOKEN ({error}): create an app-level token with the "
                f"connections:write scope under {where} and set SLACK_APP_TOKEN to it")
    return (f"Slack refused to open a Socket Mode connection ({error}): check SLACK_APP_TOKEN and that "
            "Socket Mode is enabled in the app's settings")


@click.command()
@click.option("--port", type=int, default=3000, show_default=True, help="HTTP port for Slack's requests.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; put a TLS proxy in front, Slack only calls https URLs.")


@click.option("--socket", is_flag=True, help="Socket Mode (SLACK_APP_TOKEN): no public URL needed.")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="HTTP processes answering on the port: one per core uses them all (Python runs one "
                   "request's code at a time per process).")


@click.option("--fd", type=int, hidden=True, help="Serve on this inherited listening socket (one of --processes).")
def serve(port: int, host: str, socket: bool, processes: int, fd: int | None) -> None:
    """Run the Slack app: commands, buttons, modals and App Home."""
    from bot.app import check_settings

    settings = load_settings()
    if socket and processes != 1:
        raise Failure("Socket Mode runs in one process: drop --processes, or serve over HTTP")
    try:
        check_settings(settings, socket=socket)  # every setting, then the database and the port, then Slack
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    db = open_database(settings)
    if socket:
        _serve_socket_mode(settings, db)
        return
    import socket as sockets

    import uvicorn

    if fd is not None:  # one of --processes: the parent checked everything and bound the port
        web, _ = _built(settings, db)
        # A socket object of the inherited descriptor's own family (uvicorn's --fd takes it for a Unix socket).
        uvicorn.Server(uvicorn.Config(web, log_level="warning", log_config=None)).run(
            sockets=[sockets.socket(fileno=fd)])
        return
    bound = _listen_all(host, port, processes)
    web, release = _built(settings, db)  # asks Slack whether the token is good
    several = f" ({processes} processes)" if processes > 1 else ""
    click.echo(f"Flywheel listening on http://{_address(bound[0])}/slack/events, pages under "
               f"{settings.public_url}{several}")
    if processes == 1:
        uvicorn.Server(uvicorn.Config(web, log_level="warning", log_config=None)).run(sockets=bound)
        return
    release()  # with several processes each builds its own; this one checked
    _serve_processes(bound)


def _built(settings, db):
    from bot.web import build_server

    try:
        with quiet_slack_sdk():
            return build_server(settings, db=db)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None


def _listen_all(host: str, port: int, processes: int) -> list:
    """One listening socket per process on host:port (port 0: the one the kernel gives the first), with
    SO_REUSEPORT when several; a Failure naming the address when it is taken."""
    bound: list = []
    try:
        for _ in range(processes):
            bound.append(_listen(host, port, reuse_port=processes > 1))
            port = bound[0].getsockname()[1]
    except Failure:
        for sock in bound:
            sock.close()
        raise
    return bound


def _listen(host: str, port: int, *, reuse_port: bool):
    import socket as sockets

    sock = sockets.socket(sockets.AF_INET6 if ":" in host else sockets.AF_INET, sockets.SOCK_STREAM)
    try:
        sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_REUSEPORT if reuse_port else sockets.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        advice = "; stop what is using it or pick another --port" if exc.errno == errno.EADDRINUSE else ""
        raise Failure(f"can't listen on {host}:{port}: {exc.strerror}{advice}") from None
    return sock


def _address(sock) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _serve_processes(bound: list) -> None:
    """Several `serve` processes, each on its own socket bound to the port with SO_REUSEPORT: the kernel
    spreads new connections across them evenly. (On one shared socket, whichever process woke first took
    most of a burst: 41 of 50 connections in some trials, and kept-alive connections stay where they land.)"""
    import subprocess

    with _shared_metrics():
        children = [subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--fd", str(sock.fileno())],
                                     pass_fds=[sock.fileno()]) for sock in bound]
        for sock in bound:
            sock.close()  # each child holds its own
        _supervise(children)


@contextmanager
def _shared_metrics() -> Iterator[None]:
    """A fresh folder for the processes' Prometheus values (prometheus_client's multiprocess mode), so a
    scrape answered by any one of them counts the requests all of them served; removed when they stop.
    One an operator set (PROMETHEUS_MULTIPROC_DIR) is used as it is, and kept."""
    import shutil
    import tempfile

    from bot.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="flywheel-metrics-")
    os.environ[MULTIPROC_ENV] = folder  # read by each process as it imports prometheus_client
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(folder, ignore_errors=True)


def _supervise(children: list) -> None:
    """Wait for the child processes; Ctrl-C or SIGTERM stops them all, and so does one of them stopping."""
    import signal
    import time

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        stop()
        codes = [child.wait(timeout=30) for child in children]
    if any(code not in (0, -signal.SIGTERM) for code in codes):
        raise Failure(f"a process stopped unexpectedly (exit codes {codes})")


def _serve_socket_mode(settings, db) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    from bot.app import build
    from bot.logs import socket_mode_context
    from bot.web import steady_collections

    try:
        with quiet_slack_sdk():
            app, _ = build(settings, db=db, socket=True, queued=True)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    app.use(socket_mode_context)  # a request id, team and user for each request's log lines
    steady_collections()
    # slack_sdk's built-in client; it asks app.client (FLYWHEEL_SLACK_API_URL) for each WebSocket URL.
    handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
    try:
        handler.start()  # connects, then blocks; reconnects on its own when Slack refreshes the link
    except SlackApiError as exc:
        raise Failure(_socket_mode_refusal(str(exc.response.get("error")))) from None
    except KeyboardInterrupt:
        handler.close()


@click.command()
@click.option("--standby/--no-standby", default=True, show_default=True,
              help="On PostgreSQL, wait to take over when another worker leads (instead of exiting).")
@click.option("--metrics-port", type=click.IntRange(min=0, max=65535), default=None,
              help="Serve Prometheus metrics on http://HOST:PORT/metrics (off unless given).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Address for --metrics-port; 0.0.0.0 lets a Prometheus on another machine scrape it.")


def worker(standby: bool, metrics_port: int | None, metrics_host: str) -> None:
    """Fire each model's checks on its schedule and run queued work (retraining)."""
    import signal

    from bot.app import build_worker
    from jobs.worker import WorkerRefused, leadership_for, lower_priority

    settings = load_settings()
    lower_priority(settings.worker_nice)  # before any thread: `flywheel serve` beside it answers Slack first
    runner, _ = build_worker(settings, db=open_database(settings))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    if metrics_port is not None:
        _serve_worker_metrics(metrics_host, metrics_port, runner.db)
    click.echo("Flywheel worker starting")
    try:
        runner.run(leadership_for(runner.db), block=standby)
    except WorkerRefused as exc:
        raise Failure(str(exc)) from None
    click.echo("Flywheel worker stopped")


def _serve_worker_metrics(host: str, port: int, db) -> None:
    from bot.metrics import serve_worker_metrics

    try:
        server = serve_worker_metrics(port, host, db)
    except OSError as exc:
        advice = "; stop what is using it or pick another --metrics-port" if exc.errno == errno.EADDRINUSE else ""
        raise Failure(f"can't serve metrics on {host}:{port}: {exc.strerror}{advice}") from None
    click.echo(f"Flywheel worker metrics on http://{host}:{server.server_address[1]}/metrics")


@click.command()
@click.option("--port", type=int, default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="HTTP processes of the Slack app (see `flywheel serve --help`).")


def run(port: int, host: str, processes: int) -> None:
    """Start the Slack app and a worker together (small installs); Ctrl-C or SIGTERM stops both."""
    import subprocess

    _supervise([subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--host", host,
                                  "--processes", str(processes)]),
                subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"])])
