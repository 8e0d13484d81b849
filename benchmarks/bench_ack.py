"""Time from request to HTTP response for Slack's requests to a real `flywheel serve` process.

The script prepares a registry with the fraud model (SQLite file in a temporary folder, or a fresh
PostgreSQL database it creates and drops), runs a fake Slack Web API in a process of its own, posts a
drift alert through the app's own notifier, then starts `python -m bot.cli serve` (the `flywheel serve`
entry point) on 127.0.0.1 and sends it requests signed exactly as Slack signs them, `--concurrency` at a
time (closed loop: each client sends its next request when the last one is answered), the measured ones
straight after a warm-up on the same connections. Printed per mix: p50, p90, p99 and max milliseconds,
requests per second, the opening burst (the slowest of the first `--concurrency`, sent at once on new
connections), how long after the last answer the server went idle (follow-ups sent, writes committed),
the server's CPU milliseconds per request (that work included) and the time its threads waited for a
core, the harness's CPU (this script and the fake Slack: on the same cores, unlike Slack), the other
load (cores kept busy by every other process meanwhile: other jobs on a shared machine, PostgreSQL's own
processes), errors (a status other than 200, or no answer) and wrong answers (200 with an unexpected
body); then the server's peak memory.

Slack shows the user an error when the answer takes over 3,000 ms; Flywheel's target is a p99 under
100 ms at 50 concurrent requests on 2 cores. GET /healthz, which does no Slack work, is the
harness's own floor on this machine.

    python benchmarks/bench_ack.py                                   # SQLite, 1,000 requests per mix
    python benchmarks/bench_ack.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/bench_ack.py --mixes status acknowledge --requests 500 --concurrency 10
    python benchmarks/bench_ack.py --profile /tmp/ack.txt            # py-spy samples of the server
    python benchmarks/bench_ack.py --with-cycle --cycle-data /tmp/flywheel-cycle-data  # while a worker checks

With --with-cycle, benchmarks/bench_cycle.py runs in its own process against the same registry: it
adds its models (200 by default, 100k-row windows) and checks them through the worker's own path,
cycle after cycle, for as long as the requests are measured; the requests start once its first
cycle has begun. Its cycles are printed at the end, with the cores it kept busy meanwhile.

Traffic goes only to 127.0.0.1. The server, the fake Slack, the temporary folder and the PostgreSQL
database are removed on exit, Ctrl-C and failure alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import BenchError, main_running, scratch_database  # noqa: E402
from tests.support.slack_fake import FakeSlack, action_body, block_action, command_body, sign  # noqa: E402
from tests.support.slack_world import ELI, MODEL, NOW, register_fraud_model, write_fraud_data  # noqa: E402

FORM = "application/x-www-form-urlencoded"
SERVER_START_SECONDS = 60
REQUEST_TIMEOUT = 30.0
QUIET_SECONDS = 1.0  # the fake Slack saw no call and the server did (next to) nothing for this long: a mix is done
IDLE_CORES = 0.03  # "next to nothing": the server's CPU over that second, in cores
CYCLE_READY_SECONDS = 900  # bench_cycle writes its data first (about 80 s for 10 teams) unless kept
CYCLE_READY = "bench_cycle: checking"  # what bench_cycle prints when its first cycle starts


@dataclass(frozen=True)
class Request:
    kind: str
    method: str
    body: bytes = b""


@dataclass(frozen=True)
class Sample:
    kind: str
    seconds: float
    status: int  # 0: no answer
    right: bool


@dataclass(frozen=True)
class PostedAlert:
    channel: str
    ts: str
    blocks: list[dict]  # as first posted: clicks carry these, not the message after Acknowledge settled it


@dataclass(frozen=True)
class Mix:
    name: str
    label: str
    kinds: tuple[str, ...]


MIXES = {
    "healthz": Mix("healthz", "GET /healthz (no Slack work: the floor)", ("healthz",)),
    "status": Mix("status", f"/flywheel status {MODEL}", ("status",)),
    "help": Mix("help", "/flywheel help", ("help",)),
    "typo": Mix("typo", "/flywheel stauts (unknown command)", ("typo",)),
    "acknowledge": Mix("acknowledge", "Acknowledge on the drift alert", ("acknowledge",)),
    "view_details": Mix("view_details", "View details (link button)", ("view_details",)),
}
MIXES["all"] = Mix("all", "all five, interleaved", ("status", "help", "typo", "acknowledge", "view_details"))


# -- preparing the registry, the fake Slack and the alert -----------------------------------------

class SlackProcess:
    """The fake Slack in a process of its own, as Slack is not inside the load generator. In this process
    its threads (one per connection, each validating the Block Kit of every follow-up) would hold the GIL
    while the event loop timing the answers waits for it, and the wait would count as the server's."""

    def __init__(self, token: str):
        self.token = token
        self.api_url = ""
        self.pid = 0
        self._conn = None
        self._process = None

    def __enter__(self) -> SlackProcess:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_serve_fake_slack, args=(theirs, self.token), daemon=True,
                                        name="fake-slack")
        self._process.start()
        theirs.close()
        if not self._conn.poll(60):
            raise BenchError("the fake Slack process did not start within 60 s")
        self.api_url, self.pid = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._ask("stop")
        except (OSError, EOFError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _ask(self, *command: object):
        self._conn.send(command)
        return self._conn.recv()

    def response_urls(self, count: int) -> list[str]:
        return self._ask("response_urls", count)

    def call_count(self) -> int:
        return self._ask("call_count")

    def methods(self) -> Counter:
        return self._ask("methods")

    def message(self, channel: str, ts: str) -> dict:
        return self._ask("message", channel, ts)


def _serve_fake_slack(conn, token: str) -> None:
    with FakeSlack(token=token) as fake:
        conn.send((fake.api_url, os.getpid()))
        while True:
            command, *args = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            conn.send({"response_urls": lambda n: [fake.response_url() for _ in range(n)],
                       "call_count": lambda: len(fake.calls),
                       "methods": lambda: Counter(c.method for c in fake.calls),
                       "message": lambda channel, ts: fake.messages.get((channel, ts)) or {}}[command](*args))


def prepare_registry(url: str, folder: Path) -> None:
    from store.db import Database

    write_fraud_data(folder)
    db = Database(url)
    try:
        db.upgrade()
        register_fraud_model(db, folder)
    finally:
        db.dispose()


def app_env(url: str, folder: Path, fake: SlackProcess, secret: str) -> dict[str, str]:
    """The settings the app reads from its environment; every path inside the temporary folder."""
    return {"FLYWHEEL_DATABASE_URL": url, "FLYWHEEL_ARTIFACTS": str(folder / "artifacts"),
            "FLYWHEEL_OUTBOX": str(folder / "outbox"), "FLYWHEEL_SECRET_KEY": secrets.token_urlsafe(32),
            "SLACK_BOT_TOKEN": fake.token, "SLACK_SIGNING_SECRET": secret, "FLYWHEEL_SLACK_API_URL": fake.api_url}


def post_alert(env: dict[str, str], fake: SlackProcess) -> PostedAlert:
    """Run the checks and let the app's own notifier post the alerts; returns the first with an Acknowledge button."""
    from bot.app import build
    from bot.config import Settings
    from bot.ids import ActionId
    from jobs.monitor import check_model

    _, ops = build(Settings(**env), clock=lambda: NOW)
    try:
        posted = ops.notifier.on_checks(check_model(db=ops.db, model_key=MODEL, as_of=NOW, now=NOW))
        ops.join()
    finally:
        ops.db.dispose()
    for ref in posted:
        channel, _, ts = ref.partition(":")
        blocks = fake.message(channel, ts).get("blocks") or []
        if any(e.get("action_id") == ActionId.acknowledge for b in blocks for e in b.get("elements", [])):
            return PostedAlert(channel, ts, blocks)
    raise BenchError(f"the checks posted no alert with an Acknowledge button (posted: {posted or 'nothing'})")


# -- the server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen, *, grace: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown; py-spy writes its output
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def served(env: dict[str, str], folder: Path, processes: int) -> Iterator[tuple[int, subprocess.Popen, Path]]:
    """`flywheel serve` in its own process (own session, so a Ctrl-C reaches only this script)."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FLYWHEEL_", "SLACK_"))}
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1",
                                    "--port", str(port), "--processes", str(processes)], cwd=ROOT, env={**inherited, **env}, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                raise BenchError(f"`flywheel serve` exited with code {process.returncode} before answering:\n"
                                 f"{tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"`flywheel serve` did not answer /healthz within {SERVER_START_SECONDS} s:\n"
                                 f"{tail(log)}")
            time.sleep(0.1)
        yield port, process, log
    finally:
        stop(process)


@contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy samples of the server's threads while they run on a CPU, as collapsed stacks; with
    --processes, of every serving process (the parent only supervises)."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy")
    if spy is None:
        raise BenchError("--profile needs py-spy: pip install py-spy")
    process = subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "250", "--threads",
                                "--format", "raw", "--output", str(out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(1.0)
        if process.poll() is not None:
            raise BenchError(f"py-spy stopped at once: {process.stderr.read().decode().strip()}")
        yield
    finally:
        stop(process, grace=60)


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds so far of a process, its threads and its child processes (uvicorn's
    workers, say), from /proc (Linux); None elsewhere."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stats[int(entry.parent.name)] = entry.read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue  # a process that ended meanwhile
    if pid not in stats:
        return None
    tree, grown = {pid}, True
    while grown:
        found = {child for child, fields in stats.items() if int(fields[1]) in tree} - tree  # fields[1]: ppid
        tree |= found
        grown = bool(found)
    ticks = sum(int(stats[member][11]) + int(stats[member][12]) for member in tree)  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_of(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(entry.parent.name)] = int(entry.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
    tree, grown = {pid}, True
    while grown:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grown = bool(found)
    return tree


def peak_rss_mb(pids: set[int]) -> dict[int, float]:
    """VmHWM (peak resident set) of each process, in MB."""
    out = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[pid] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return out


def runqueue_wait_seconds(pid: int) -> float | None:
    """Seconds the threads of a process and its children spent ready to run but waiting for a core, from
    /proc/PID/task/TID/schedstat (Linux with scheduler statistics); None elsewhere. Threads that ended are
    not counted: the server's are long-lived pools."""
    total, found = 0, False
    for member in tree_of(pid):
        for stat in Path(f"/proc/{member}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[1])
                found = True
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e9 if found else None


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot, summed over the cores (Linux), else None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class _Reading(NamedTuple):
    """Counters read at the start and the end of a mix; None where this system does not keep one."""
    server: float | None  # CPU seconds of the server's processes
    ours: float | None  # of this script's tree: the server, the fake Slack, bench_cycle, py-spy
    busy: float | None  # of every process on the machine
    wall: float
    harness: float | None  # of this script's own process and the fake Slack's
    waited: float | None  # the server's threads ready to run, waiting for a core


@dataclass
class CpuMeter:
    """CPU used by the server, and by everything else on the machine but this script: the noise."""

    server_pid: int
    slack_pid: int
    server: float | None = None
    waited: float | None = None  # the server's threads, ready to run but waiting for a core
    harness: float | None = None  # this script sending the load, and the fake Slack answering the follow-ups
    others: float | None = None  # in cores: 1.0 is one core kept busy the whole time
    _start: _Reading | None = None

    def _now(self) -> _Reading:
        slack = cpu_seconds(self.slack_pid)
        return _Reading(server=cpu_seconds(self.server_pid), ours=cpu_seconds(os.getpid()),
                        busy=machine_busy_seconds(), wall=time.monotonic(),
                        harness=None if slack is None else time.process_time() + slack,
                        waited=runqueue_wait_seconds(self.server_pid))

    def __enter__(self) -> CpuMeter:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        start, end = self._start, self._now()
        spent = {name: None if None in (a, b) else b - a for name, a, b in zip(_Reading._fields, start, end, strict=True)}
        self.server, self.waited, self.harness = spent["server"], spent["waited"], spent["harness"]
        # This script's tree holds the server, the fake Slack (and py-spy): what is left is everybody else.
        if None not in (spent["busy"], spent["ours"]):
            self.others = max(0.0, spent["busy"] - spent["ours"]) / spent["wall"]


def tail(log: Path, lines: int = 20) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return "\n".join(text[-lines:]) or "(no output)"


def code_version() -> str:
    """The commit the server runs, so runs before and after a change can be told apart."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown code (no git)"
    return f"code at {commit or 'an unknown commit'}{' with uncommitted changes' if dirty else ''}"


def wait_quiet(fake: SlackProcess, server_pid: int, limit: float = 300.0) -> float:
    """Wait until the last mix's work is done: its follow-ups sent to Slack and its writes committed (an
    acknowledge is answered at once and written by the group commit after). Returns the seconds that took;
    otherwise the next mix would be measured against the last one's leftovers."""
    began = deadline = time.monotonic()
    deadline += limit
    seen, since = fake.call_count(), began
    cpu_marks = [(began, cpu_seconds(server_pid) or 0.0)]
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now, cpu = time.monotonic(), cpu_seconds(server_pid) or 0.0
        cpu_marks.append((now, cpu))
        if (count := fake.call_count()) != seen:
            seen, since = count, now
        window = [(t, c) for t, c in cpu_marks if t >= now - QUIET_SECONDS]
        idle = window[0][0] <= now - QUIET_SECONDS + 0.15 and cpu - window[0][1] <= IDLE_CORES * QUIET_SECONDS
        if now - since >= QUIET_SECONDS and idle:
            return now - began - QUIET_SECONDS
    raise BenchError(f"the server was still busy {limit:.0f} s after the last answer of a mix")


@contextmanager
def cycling(args: argparse.Namespace, url: str, folder: Path) -> Iterator[subprocess.Popen | None]:
    """bench_cycle checking its models cycle after cycle, in its own process, against the same registry."""
    if not args.with_cycle:
        yield None
        return
    log = folder / "cycle.log"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_cycle.py"), "--use-database", url, "--cycles", "0",
               "--models", str(args.cycle_models), "--workers", str(args.cycle_workers)]
    if args.cycle_nice is not None:
        command += ["--nice", str(args.cycle_nice)]
    if args.cycle_data:
        command += ["--data-dir", str(args.cycle_data)]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FLYWHEEL_", "SLACK_"))}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=inherited, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + CYCLE_READY_SECONDS
        while CYCLE_READY not in log.read_text(errors="replace"):
            if process.poll() is not None:
                raise BenchError(f"bench_cycle exited with code {process.returncode} before checking:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise BenchError(f"bench_cycle did not start checking within {CYCLE_READY_SECONDS} s:\n{tail(log)}")
            time.sleep(0.5)
        yield process
    finally:
        stop(process, grace=60)


def checks_recorded(url: str) -> int:
    """Check runs in the registry so far: bench_cycle's progress, whether or not a cycle has ended."""
    from sqlalchemy import func, select

    from store.db import Database
    from store.models import CheckRun

    db = Database(url)
    try:
        with db.read() as s:
            return s.execute(select(func.count(CheckRun.id))).scalar_one()
    finally:
        db.dispose()


def cycle_lines(folder: Path) -> list[str]:
    log = folder / "cycle.log"
    return [line for line in log.read_text(errors="replace").splitlines()
            if line.startswith(("cycle ", "  verdicts", "  FAILED"))] if log.exists() else []


# -- requests as Slack sends them ----------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def text(self) -> str:
        """The `text` of a JSON answer; empty for anything else."""
        return json.loads(self.body).get("text", "") if self.content_type.startswith("application/json") else ""


def expected(kind: str) -> Callable[[Answer], bool]:
    return {
        "healthz": lambda a: a.body == b"ok",
        "status": lambda a: a.text().startswith(f"{MODEL}: v1 in production"),
        "help": lambda a: a.text().startswith("What you can do with /flywheel"),
        "typo": lambda a: a.text() == "`stauts` isn't a Flywheel command. Did you mean `status`?",
        "acknowledge": lambda a: a.body == b"",
        "view_details": lambda a: a.body == b"",
    }[kind]


def build_request(kind: str, response_url: str, alert: PostedAlert) -> Request:
    if kind == "healthz":
        return Request(kind, "GET")
    commands = {"status": f"status {MODEL}", "help": "help", "typo": f"stauts {MODEL}"}
    if kind in commands:
        return Request(kind, "POST", command_body("/flywheel", commands[kind], user_id=ELI,
                                                  response_url=response_url))
    element = next(e for b in alert.blocks for e in b.get("elements", [])
                   if e.get("action_id") == f"flywheel.{kind}")
    payload = block_action(element["action_id"], element.get("value", ""), user_id=ELI, channel_id=alert.channel,
                           message_ts=alert.ts, response_url=response_url, message_blocks=alert.blocks)
    if "value" not in element:  # a link button's click carries no value
        payload["actions"][0].pop("value")
    return Request(kind, "POST", action_body(payload))


class Connection:
    """One keep-alive HTTP/1.1 connection to the server. httpx spent 1 to 2.5 ms of client CPU per
    request at 50 in flight on the development VM, as much as the server's own work on 2 cores; this
    costs a small fraction of that, so the figures are the server's rather than the client's."""

    def __init__(self, port: int):
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, request: Request, headers: dict[str, str]) -> Answer:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        path = "/healthz" if request.method == "GET" else "/slack/events"
        lines = [f"{request.method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                 f"Content-Length: {len(request.body)}", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + request.body)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        if "content-length" not in fields:
            raise ConnectionError(f"an answer without Content-Length: {head[0]}")
        body = await reader.readexactly(int(fields["content-length"]))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return Answer(int(head[0].split(" ", 2)[1]), fields.get("content-type", ""), body)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


@dataclass
class Run:
    samples: list[Sample]  # the measured requests'
    seconds: float  # from the first measured request sent to the last answered
    opening: float  # the slowest of the first `concurrency` requests, sent at once on new connections


async def send_all(port: int, requests: list[Request], concurrency: int, secret: str, warmup: int = 0) -> Run:
    """`concurrency` workers, each on its own connection, send the requests in order until none is left.
    The first `warmup` are not measured; the measured ones follow them on the same connections at once,
    so they see the steady state rather than the opening burst of `concurrency` requests at an idle server."""
    checks = {kind: expected(kind) for kind in {r.kind for r in requests}}
    samples: list[Sample] = []
    opening: list[float] = []
    queue = enumerate(requests)
    measured_from: list[float] = []

    async def worker() -> None:
        connection = Connection(port)
        try:
            for index, request in queue:
                # Signed at send time, as Slack does: the timestamp is part of the signature.
                headers = {} if request.method == "GET" else {"Content-Type": FORM, **sign(request.body, secret)}
                start = time.perf_counter()
                if index == warmup:
                    measured_from.append(start)
                try:
                    answer = await asyncio.wait_for(connection.send(request, headers), REQUEST_TIMEOUT)
                    sample = Sample(request.kind, time.perf_counter() - start, answer.status,
                                    answer.status == 200 and checks[request.kind](answer))
                except (OSError, ValueError, asyncio.IncompleteReadError):  # TimeoutError is an OSError
                    sample = Sample(request.kind, time.perf_counter() - start, 0, False)
                    connection.close()
                if index < concurrency:
                    opening.append(sample.seconds)
                if index >= warmup:
                    samples.append(sample)
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(samples, time.perf_counter() - measured_from[0], max(opening))


# -- report -------------------------------------------------------------------------------------

def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q% of the samples at or below it."""
    return sorted_ms[max(0, math.ceil(q / 100 * len(sorted_ms)) - 1)]


def row(label: str, samples: list[Sample], seconds: float | None, cpu: CpuMeter | None = None,
        settled: float | None = None, sent: int = 0, opening: float | None = None) -> list[str]:
    """One line of the table; CPU is per request sent, the warm-up's included (it was measured with them)."""
    ms = sorted(s.seconds * 1000 for s in samples)
    errors = sum(s.status != 200 for s in samples)
    wrong = sum(s.status == 200 and not s.right for s in samples)
    rate = f"{len(samples) / seconds:.0f}" if seconds else ""
    per_request = f"{cpu.server * 1000 / sent:.2f}" if cpu and cpu.server is not None else ""
    waited = f"{cpu.waited * 1000 / sent:.2f}" if cpu and cpu.waited is not None else ""
    harness = f"{cpu.harness * 1000 / sent:.2f}" if cpu and cpu.harness is not None else ""
    others = f"{cpu.others:.2f}" if cpu and cpu.others is not None else ""
    return [label, str(len(samples)), *(f"{percentile(ms, q):.1f}" for q in (50, 90, 99)), f"{ms[-1]:.1f}",
            rate, "" if opening is None else f"{opening * 1000:.0f}", "" if settled is None else f"{settled:.1f}", per_request, waited, harness, others, str(errors), str(wrong)]


def print_table(rows: list[list[str]]) -> None:
    headers = ["mix", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s", "opening burst max ms", "done after s", "server CPU ms/req",
               "server waited for a core ms/req",
               "harness CPU ms/req", "other load", "errors", "wrong"]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        print("| " + " | ".join(cells) + " |")


# -- main ---------------------------------------------------------------------------------------

def run(args: argparse.Namespace, stack: ExitStack) -> None:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flywheel-bench-ack-")))
    secret = secrets.token_hex(16)
    began = time.perf_counter()
    url = stack.enter_context(scratch_database(args.database_url, folder))
    prepare_registry(url, folder)
    fake = stack.enter_context(SlackProcess(token=f"xoxb-bench-{secrets.token_hex(4)}"))
    env = app_env(url, folder, fake, secret)
    alert = post_alert(env, fake)
    cycle = stack.enter_context(cycling(args, url, folder))
    port, server, log = stack.enter_context(served(env, folder, args.processes))
    kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"Registry on {kind}; `flywheel serve` (pid {server.pid}, {code_version()}) on 127.0.0.1:{port}; "
          f"prepared in {time.perf_counter() - began:.1f} s. {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}.")
    print(f"{args.requests} requests per mix after {args.warmup} warm-up, {args.concurrency} in flight, on the warm-up's connections. "
          f"`opening burst`: the slowest of the warm-up's first {args.concurrency}, sent at once on new connections "
          "to an idle server. `done after`: "
          "seconds from a mix's last answer until its Slack follow-ups were sent and its writes committed; server CPU "
          "includes that work; other load is the cores that other processes kept busy meanwhile.\n")
    if cycle is not None:
        print(f"bench_cycle (pid {cycle.pid}) is checking {args.cycle_models} models against the same registry.\n")
    cycle_cpu0, cycle_wall0 = (cpu_seconds(cycle.pid), time.monotonic()) if cycle is not None else (None, 0.0)
    checked0 = checks_recorded(url) if cycle is not None else 0
    rows = []
    with profiled(server.pid, args.profile):
        for name in args.mixes:
            mix = MIXES[name]
            sent = args.warmup + args.requests
            requests = [build_request(mix.kinds[i % len(mix.kinds)], url, alert)
                        for i, url in enumerate(fake.response_urls(sent))]
            with CpuMeter(server.pid, fake.pid) as cpu:
                run = asyncio.run(send_all(port, requests, args.concurrency, secret, warmup=args.warmup))
                settled = wait_quiet(fake, server.pid)  # the follow-ups' and writes' CPU is part of a click's
            if server.poll() is not None:
                raise BenchError(f"the server exited with code {server.returncode} during {name}:\n{tail(log)}")
            rows.append(row(mix.label, run.samples, run.seconds, cpu, settled, sent, run.opening))
            if len(mix.kinds) > 1:
                rows += [row(f"  of which {k}", [s for s in run.samples if s.kind == k], None) for k in mix.kinds]
    print_table(rows)
    if cycle is not None:
        cycle_cpu1, cycle_wall1, checked1 = cpu_seconds(cycle.pid), time.monotonic(), checks_recorded(url)
        minutes = (cycle_wall1 - cycle_wall0) / 60
        busy = f", keeping {(cycle_cpu1 - cycle_cpu0) / (cycle_wall1 - cycle_wall0):.2f} cores busy" \
            if None not in (cycle_cpu0, cycle_cpu1) else ""
        if cycle.poll() is not None:
            raise BenchError(f"bench_cycle exited with code {cycle.returncode} during the measurement:\n"
                             f"{tail(folder / 'cycle.log')}")
        # Each of its models has four checks (drift, KPIs, performance, data quality).
        print(f"\nMeanwhile bench_cycle recorded {checked1 - checked0:,} checks in {minutes * 60:.0f} s, "
              f"{(checked1 - checked0) / 4 / minutes:.0f} models a minute{busy}. Its cycles so far:")
        print("\n".join(cycle_lines(folder)) or "(none finished yet)")
    rss = peak_rss_mb(tree_of(server.pid))
    print(f"\nThe server's peak resident memory: {' + '.join(f'{v:.0f}' for v in rss.values())} MB.")
    updates = fake.methods()
    print(f"\nLoad average {os.getloadavg()[0]:.2f} at the end. The fake Slack received "
          f"{', '.join(f'{n} {m}' for m, n in sorted(updates.items()))}.")
    problems = [line for line in log.read_text(errors="replace").splitlines()
                if line.startswith(("ERROR", "CRITICAL", "Traceback"))]
    if problems:
        print(f"The server logged {len(problems)} error(s); the last lines:\n{tail(log)}")
    if args.profile:
        print(f"py-spy samples (collapsed stacks, one thread per line prefix): {args.profile}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per mix (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests before each mix (default 100)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight at once (default 50)")
    parser.add_argument("--processes", type=int, default=1,
                        help="`flywheel serve --processes`: HTTP processes answering (default 1)")
    parser.add_argument("--database-url", help="a PostgreSQL server on 127.0.0.1, e.g. "
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test; a fresh database is created there "
                        "and dropped (default: a temporary SQLite file)")
    parser.add_argument("--mixes", nargs="+", choices=list(MIXES), default=list(MIXES),
                        help="which mixes to run, in order (default: all)")
    parser.add_argument("--profile", type=Path, help="record the server with py-spy into this file while measuring")
    parser.add_argument("--with-cycle", action="store_true",
                        help="measure while benchmarks/bench_cycle.py checks its models against the same registry")
    parser.add_argument("--cycle-models", type=int, default=200, help="models bench_cycle checks (default 200)")
    parser.add_argument("--cycle-workers", type=int, default=1, help="bench_cycle's worker processes (default 1)")
    parser.add_argument("--cycle-nice", type=int, choices=range(20), metavar="0-19",
                        help="bench_cycle's niceness (default: as `flywheel worker`, FLYWHEEL_WORKER_NICE or 10)")
    parser.add_argument("--cycle-data", type=Path, help="where bench_cycle keeps its data between runs "
                        "(default: written afresh into the temporary folder)")
    args = parser.parse_args(argv)
    for name in ("requests", "concurrency", "processes", "cycle_models", "cycle_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be 0 or more, got {args.warmup}")
    return args


main = main_running("bench_ack", parse_args, run,
                    interrupted="the server is stopped and the temporary data removed.")


if __name__ == "__main__":
    sys.exit(main())
