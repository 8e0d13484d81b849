"""`flywheel serve --processes N`: the real command, its processes answering Slack's signed requests on one
port, and stopping together (cleanly on SIGTERM, all of them when one dies)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from store.models import AuditEvent
from tests.support.slack_fake import FakeSlack, command_body, sign
from tests.support.slack_world import ELI, MODEL, register_fraud_model
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SECRET = "serve-processes-signing-secret"
BOT_TOKEN = "xoxb-serve-processes-secret"
STARTUP_SECONDS = 120  # every process imports the app and builds it, on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(fake: FakeSlack, database_url: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FLYWHEEL_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET, FLYWHEEL_SLACK_API_URL=fake.api_url,
               FLYWHEEL_DATABASE_URL=database_url, FLYWHEEL_SECRET_KEY="k" * 40,
               FLYWHEEL_ARTIFACTS=str(folder / "artifacts"), FLYWHEEL_OUTBOX=str(folder / "outbox"),
               PYTHONPATH=str(ROOT))
    return env


def _serve(env: dict[str, str], folder: Path, *args: str) -> subprocess.Popen:
    with (folder / "serve.out").open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", *args], cwd=folder, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _output(folder: Path) -> str:
    return (folder / "serve.out").read_text(errors="replace")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def _sockets(pid: int, port: int, state: str) -> int:
    """Sockets on `port` in `state` that process `pid` holds (Linux: its socket fds in /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, found, inode = int(fields[1].rpartition(":")[2], 16), fields[3], fields[9]
            held += local_port == port and found == state and inode in inodes
    return held


def _held(pid: int, port: int) -> int:
    """Established connections to `port` that process `pid` holds."""
    return _sockets(pid, port, "01")


def _both_listening(parent: int, port: int) -> bool:
    """Whether both serving processes listen on `port`. Each gets its socket bound but listens only once
    uvicorn is up, and until then the kernel gives that socket none of the port's connections."""
    children = _children(parent)
    try:
        return len(children) == 2 and all(_sockets(pid, port, "0A") == 1 for pid in children)
    except FileNotFoundError:  # a child gone between the two looks
        return False


def _status(client: httpx.Client, port: int) -> httpx.Response:
    """`/flywheel status` as Slack sends it."""
    body = command_body("/flywheel", f"status {MODEL}", user_id=ELI, response_url="https://hooks.example/r")
    return client.post(f"http://127.0.0.1:{port}/slack/events", content=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)})


@pytest.fixture
def started(db, fraud_data, tmp_path):
    """`flywheel serve --processes 2` answering, and its two serving processes."""
    register_fraud_model(db, fraud_data)
    port = _free_port()
    with FakeSlack(token=BOT_TOKEN) as fake:
        parent = _serve(_env(fake, db.url, tmp_path), tmp_path, "--port", str(port), "--processes", "2")
        try:
            def answering() -> bool:
                assert parent.poll() is None, f"serve exited {parent.returncode}:\n{_output(tmp_path)}"
                return _both_listening(parent.pid, port) and _answers(port)
            wait_until(answering, STARTUP_SECONDS, "serve to answer from both processes", poll=0.2,
                       detail=lambda: _output(tmp_path))
            yield parent, port, _children(parent.pid)
        finally:
            if parent.poll() is None:
                os.killpg(parent.pid, signal.SIGKILL)
                parent.wait(timeout=30)
    assert BOT_TOKEN not in _output(tmp_path) and SECRET not in _output(tmp_path)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json() == {"status": "ok"}
    except httpx.HTTPError:
        return False


def _wait_exit(process: subprocess.Popen, folder: Path, seconds: float = 60) -> int:
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"serve did not stop:\n{_output(folder)}") from None


def test_both_processes_answer_and_a_sigterm_stops_them_with_their_audit_written(started, db, tmp_path):
    parent, port, children = started
    assert len(children) == 2
    clients = [httpx.Client(timeout=30) for _ in range(20)]  # 20 kept-alive connections, as Slack may hold
    try:
        answered = [_status(client, port) for client in clients]
        assert {r.status_code for r in answered} == {200}
        assert all(r.json()["text"].startswith(f"{MODEL}: v1 in production") for r in answered)
        # The kernel spreads connections across the processes' sockets: 20 on one would be 1 in 500,000.
        held = [_held(pid, port) for pid in children]
        assert sum(held) == 20 and min(held) > 0, held
    finally:
        for client in clients:
            client.close()
    parent.send_signal(signal.SIGTERM)
    assert _wait_exit(parent, tmp_path) == 0, _output(tmp_path)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "a serving process outlived serve"
    with db.read() as s:  # each process wrote its batched command audit events before exiting
        typed = s.execute(select(func.count(AuditEvent.id)).where(AuditEvent.action == "command")).scalar_one()
    assert typed == 20


def _environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").partition("=")[::2] for p in pairs if p)


def test_a_scrape_of_either_process_counts_the_requests_both_served(started, tmp_path):
    parent, port, children = started
    folder = {_environ(pid).get("PROMETHEUS_MULTIPROC_DIR") for pid in children}
    assert len(folder) == 1 and Path(next(iter(folder))).is_dir()  # one folder, made by serve for them
    clients = [httpx.Client(timeout=30) for _ in range(20)]
    try:
        assert {_status(client, port).status_code for client in clients} == {200}
        assert min(_held(pid, port) for pid in children) > 0  # both processes answered some
    finally:
        for client in clients:
            client.close()
    for _ in range(6):  # each on a new connection: the kernel hands them to either process
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        acks = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name.startswith("flywheel_slack_ack_seconds") and s.labels.get("request") == "command"
                and s.labels.get("le") in (None, "+Inf")}
        assert acks["flywheel_slack_ack_seconds_count"] == acks["flywheel_slack_ack_seconds_bucket"] == 20
    parent.send_signal(signal.SIGTERM)
    assert _wait_exit(parent, tmp_path) == 0, _output(tmp_path)
    assert not Path(next(iter(folder))).exists()  # removed once they stopped


def test_when_one_process_dies_serve_stops_the_other_and_says_so(started, tmp_path):
    parent, port, children = started
    os.kill(children[0], signal.SIGKILL)
    code = _wait_exit(parent, tmp_path)
    assert code == 2
    assert "a process stopped unexpectedly" in _output(tmp_path)
    assert not Path(f"/proc/{children[1]}").exists() or \
        Path(f"/proc/{children[1]}/stat").read_text().rpartition(")")[2].split()[0] == "Z"


def test_a_port_already_taken_is_named_before_any_process_starts(db, tmp_path):
    with FakeSlack(token=BOT_TOKEN) as fake, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _serve(_env(fake, db.url, tmp_path), tmp_path, "--port", str(port), "--processes", "2")
        assert _wait_exit(process, tmp_path, STARTUP_SECONDS) == 2
    assert f"can't listen on 127.0.0.1:{port}: Address already in use" in _output(tmp_path)


def test_socket_mode_refuses_several_processes(db, tmp_path):
    with FakeSlack(token=BOT_TOKEN) as fake:
        env = {**_env(fake, db.url, tmp_path), "SLACK_APP_TOKEN": "xapp-1-A0-1-secret"}
        process = _serve(env, tmp_path, "--socket", "--processes", "2")
        assert _wait_exit(process, tmp_path, STARTUP_SECONDS) == 2
    assert "Socket Mode runs in one process" in _output(tmp_path)


def test_a_serving_process_freezes_what_it_built_and_collects_fully_a_tenth_as_often(db, tmp_path):
    """build_server as `flywheel serve` runs it, in a child process (freezing and thresholds are process-wide)."""
    script = ("import gc; from bot.config import Settings; from bot.web import build_server; "
              "default = gc.get_threshold(); build_server(Settings()); "
              "print(*default, *gc.get_threshold(), gc.get_freeze_count())")
    with FakeSlack(token=BOT_TOKEN) as fake:
        out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(fake, db.url, tmp_path),
                             capture_output=True, text=True, timeout=STARTUP_SECONDS)
    assert out.returncode == 0, out.stderr[-2000:]
    young, middle, full, young_now, middle_now, full_now, frozen = map(int, out.stdout.split())
    assert (young_now, middle_now, full_now) == (young, middle, 10 * full)
    assert frozen > 10_000  # the app, its caches and the modules it imported
