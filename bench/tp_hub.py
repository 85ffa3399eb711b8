"""Running the hub for bench/throughput.py through its public entry points only.

`hub client add`, `hub serve`, `hub worker` as subprocesses, and its HTTP API. Nothing here
imports the hub, so the benchmark keeps working while the hub's internals change.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("ingest", "route", "deliver")  # `hub worker --help`: ingest, route or deliver


class BenchError(Exception):
    """A phase could not be measured; the message says why, in one line."""


def hub_command() -> list[str]:
    exe = Path(sys.executable).with_name("hub")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hub"]


try:
    _LIBC: Any = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded here, not after a fork
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: one C call, no lock, no import. A hub whose
    benchmark was killed -9 gets SIGTERM instead of running on."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Resources:
    """Everything the benchmark created, removed by `cleanup()` even after Ctrl-C or a failure."""

    def __init__(self, amqp_url: str, pg_admin: str) -> None:
        self.amqp_url = amqp_url
        self.pg_admin = pg_admin
        self.procs: list[subprocess.Popen[bytes]] = []
        self.prefixes: list[str] = []
        self.databases: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="hub-bench-"))
        self._lock = threading.Lock()

    def spawn(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            p = subprocess.Popen(args, env=env, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                 preexec_fn=_die_with_parent)  # noqa: PLW1509 (see there)
        with self._lock:
            self.procs.append(p)
        return p

    def stop_procs(self, procs: list[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
        """SIGINT (the hub's Ctrl-C) to each process group we started, then SIGKILL."""
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGINT)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):  # its group: any children it left
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
        with self._lock:
            self.procs = [p for p in self.procs if p not in procs]

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.pg_admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.pg_admin.rsplit("/", 1)[0] + "/" + name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.databases:
            self.databases.remove(name)

    def delete_queues(self, prefix: str) -> None:
        """Every queue and exchange named `prefix` or `prefix.*` (listed by rabbitmqctl when it is
        there, else the hub's documented names), so nothing of ours stays on the shared broker."""
        import pika

        queues, exchanges = set(), {prefix, f"{prefix}.retry", f"{prefix}.parked"}
        for step in STEPS:
            queues |= {f"{prefix}.{step}", f"{prefix}.{step}.parked"}
            queues |= {f"{prefix}.{step}.retry.{i}" for i in range(10)}
        for what, names in (("list_queues", queues), ("list_exchanges", exchanges)):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(["rabbitmqctl", "-q", what, "name"], capture_output=True,
                                     text=True, timeout=30, check=False).stdout
                names |= {n for n in out.split() if n == prefix or n.startswith(prefix + ".")}
        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            ch = conn.channel()
            for q in sorted(queues):
                ch.queue_delete(q)
            for e in sorted(exchanges):
                ch.exchange_delete(e)
        finally:
            conn.close()
        if prefix in self.prefixes:
            self.prefixes.remove(prefix)

    def cleanup(self) -> list[str]:
        problems = []
        self.stop_procs(list(self.procs), grace=8)
        for prefix in list(self.prefixes):
            try:
                self.delete_queues(prefix)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"queues {prefix}.*: {type(exc).__name__} {exc}".strip())
        for name in list(self.databases):
            try:
                self.drop_database(name)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"database {name}: {type(exc).__name__} {exc}".strip())
        shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


# ---------------------------------------------------------------------------------------------
# CPU of a process tree
# ---------------------------------------------------------------------------------------------


def _proc_children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_cpu(roots: dict[int, str]) -> dict[str, float]:
    """User+system CPU seconds of each root process and its descendants, keyed by role."""
    out: dict[str, float] = {}
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        for pid, role in roots.items():
            try:
                p = psutil.Process(pid)
                total = 0.0
                for q in [p, *p.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        t = q.cpu_times()
                        total += t.user + t.system
                out[role] = out.get(role, 0.0) + total
            except psutil.Error:
                pass
        return out
    tick = os.sysconf("SC_CLK_TCK")
    kids = _proc_children()
    for pid, role in roots.items():
        stack, total = [pid], 0.0
        while stack:
            p = stack.pop()
            stack += kids.get(p, [])
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        out[role] = out.get(role, 0.0) + total
    return out


# ---------------------------------------------------------------------------------------------
# Queue depths while a hub runs (where the backlog builds is the step that bounds it)
# ---------------------------------------------------------------------------------------------


class QueueWatch(threading.Thread):
    def __init__(self, amqp_url: str, queues: dict[str, str], every: float = 0.25) -> None:
        super().__init__(daemon=True, name="queue-watch")
        self._url, self._queues, self._every = amqp_url, queues, every
        self._halt = threading.Event()
        self.max_depth: dict[str, int] = {}
        self.consumers: dict[str, int] = {}
        self.problem: str | None = None

    def sample(self, ch: Any) -> None:
        for step, q in self._queues.items():
            ok = ch.queue_declare(q, passive=True)
            self.max_depth[step] = max(self.max_depth.get(step, 0), ok.method.message_count)
            self.consumers[step] = ok.method.consumer_count

    def run(self) -> None:
        import pika

        try:
            conn = pika.BlockingConnection(pika.URLParameters(self._url))
            try:
                ch = conn.channel()
                while not self._halt.is_set():
                    self.sample(ch)
                    conn.sleep(self._every)
            finally:
                if conn.is_open:
                    conn.close()
        except Exception as exc:  # noqa: BLE001 (a queue the hub names differently: no depths)
            self.problem = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


# ---------------------------------------------------------------------------------------------
# One hub: its own database, queue prefix, site file, API port, processes
# ---------------------------------------------------------------------------------------------


def serve_help() -> str:
    out = subprocess.run([*hub_command(), "serve", "--help"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, env={**os.environ, "COLUMNS": "200"}, check=False)
    return re.sub(r"[\s│╭╮╰╯─]+", " ", out.stdout + out.stderr)


def worker_mode(help_text: str) -> tuple[str | None, str]:
    """How this hub runs W worker processes per step, read from `hub serve --help`."""
    if "--workers" not in help_text:
        return None, "`hub serve` has no --workers option"
    if re.search(r"in this process|threads?\b", help_text, re.IGNORECASE):
        return ("api+workers", ("`hub serve --workers` counts consumer threads in its one "
                                "process: the variant runs `hub serve --workers 0` (API only) "
                                "plus W `hub worker STEP` processes per step"))
    if re.search(r"process", help_text, re.IGNORECASE):
        return "serve", "`hub serve --workers W` runs W worker processes per step"
    return None, "cannot tell from `hub serve --help` what --workers counts"


class HubRun:
    """A hub on its own resources; `start()` leaves it warmed up with a token ready."""

    def __init__(self, res: Resources, store: str, tag: str, partners: dict[str, int],
                 serve_args: list[str], workers_per_step: int, log_level: str = "WARNING") -> None:
        self.res, self.store, self.tag = res, store, tag
        self.prefix = tag
        self.partners = partners
        self.serve_args = serve_args
        self.workers_per_step = workers_per_step
        self.log = res.tmp / f"{tag}.log"
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.roles: dict[int, str] = {}
        self.database: str | None = None
        self.token = ""
        self.env: dict[str, str] = {}
        self.commands: list[str] = []

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def _site_file(self) -> Path:
        data = yaml.safe_load((ROOT / "deploy" / "sites" / "santa-fe.yaml").read_text())
        data["agencies"]["da"]["delivery"] = {
            "push": f"http://127.0.0.1:{self.partners['da']}/lead/messages"}
        data["agencies"]["provider"]["delivery"] = {
            "push": f"http://127.0.0.1:{self.partners['provider']}/fhir"}
        path = self.res.tmp / f"{self.tag}-site.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self.store == "sqlite":
            url = f"sqlite:///{self.res.tmp / (self.tag + '.sqlite3')}"
        else:
            self.database = self.tag.replace("-", "_")
            url = self.res.create_database(self.database)
        self.res.prefixes.append(self.prefix)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        self.env.update({
            "HUB_DATABASE_URL": url, "HUB_AMQP_URL": self.res.amqp_url,
            "HUB_BROKER_PREFIX": self.prefix, "HUB_SITE_FILE": str(self._site_file()),
            "HUB_API_HOST": "127.0.0.1", "HUB_API_PORT": str(self.port),
            "HUB_PUBLIC_URL": f"http://127.0.0.1:{self.port}", "HUB_LOG_LEVEL": "WARNING",
        })
        # a client for the police: `hub client add` also migrates the new database
        add = subprocess.run([*hub_command(), "client", "add", "sfpd", "--scope",
                              "diversion.write"], env=self.env, cwd=self.res.tmp,
                             capture_output=True, text=True, check=False,
                             timeout=max(5.0, deadline - time.monotonic()))
        found = dict(re.findall(r"^(client_id|client_secret)=(\S+)$", add.stdout, re.MULTILINE))
        if add.returncode != 0 or len(found) != 2:
            raise BenchError(f"`hub client add` failed (exit {add.returncode}): "
                             f"{(add.stderr or add.stdout).strip()[-400:]}")
        serve = [*hub_command(), "serve", *self.serve_args]
        self._spawn(serve, "serve")
        for step in STEPS:
            for _ in range(self.workers_per_step):
                self._spawn([*hub_command(), "worker", step], f"worker {step}")
        self._wait_ready(deadline)
        if self.workers_per_step:
            self._wait_consumers(deadline)
        body = b"grant_type=client_credentials"
        auth = base64.b64encode(f"{found['client_id']}:{found['client_secret']}".encode())
        status, raw = self.http("POST", "/oauth/token", body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {auth.decode()}"})
        if status != 200:
            raise BenchError(f"POST /oauth/token answered {status}: {raw[:300]!r}")
        self.token = json.loads(raw)["access_token"]

    def _spawn(self, args: list[str], role: str) -> None:
        p = self.res.spawn(args, self.env, self.log)
        self.procs.append(p)
        self.roles[p.pid] = role
        self.commands.append(" ".join(["hub", *args[len(hub_command()):]]))

    def _wait_ready(self, deadline: float) -> None:
        while True:
            for p in self.procs:
                if p.poll() is not None:
                    raise BenchError(f"`{self.commands[self.procs.index(p)]}` exited with "
                                     f"{p.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                status, _ = self.http("GET", "/health", None, {}, timeout=2)
                if status < 500:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"the hub's API did not answer on port {self.port} in time: "
                                 f"{self.log_tail()}")
            time.sleep(0.2)

    def _wait_consumers(self, deadline: float) -> None:
        """Until every `hub worker` process consumes its step's queue (they start slowly on a
        small machine; a measurement must not start with some still importing)."""
        import pika

        watch = QueueWatch(self.res.amqp_url, {s: f"{self.prefix}.{s}" for s in STEPS})
        conn = pika.BlockingConnection(pika.URLParameters(self.res.amqp_url))
        try:
            ch = conn.channel()
            while True:
                watch.sample(ch)
                if all(watch.consumers.get(s, 0) >= self.workers_per_step for s in STEPS):
                    return
                problem = self.alive()
                if problem:
                    raise BenchError(problem)
                if time.monotonic() > deadline:
                    raise BenchError(f"not every worker process consumed its queue in time "
                                     f"(consumers: {watch.consumers}): {self.log_tail()}")
                conn.sleep(0.3)
        finally:
            if conn.is_open:
                conn.close()

    def http(self, method: str, path: str, body: bytes | None, headers: dict[str, str],
             timeout: float = 30) -> tuple[int, bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def alive(self) -> str | None:
        for p, cmd in zip(self.procs, self.commands, strict=False):
            if p.poll() is not None:
                return f"`{cmd}` exited with {p.returncode}: {self.log_tail()}"
        return None

    def cpu(self) -> dict[str, float]:
        return tree_cpu(self.roles)

    def stop(self) -> list[str]:
        """Stop its processes, delete its queues and database; say what could not be removed
        (it stays registered, and the final clean-up tries again)."""
        problems = []
        self.res.stop_procs(self.procs)
        try:
            self.res.delete_queues(self.prefix)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"queues {self.prefix}.*: {type(exc).__name__} {exc}".strip())
        if self.database:
            try:
                self.res.drop_database(self.database)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"database {self.database}: {type(exc).__name__} {exc}".strip())
        return problems


# ---------------------------------------------------------------------------------------------
# Where a hub process spends its time (py-spy, with --profile)
# ---------------------------------------------------------------------------------------------

# (label, substrings of a frame's file): a sample counts for the deepest frame that matches one.
# py-spy leaves out idle threads, so the shares are of the time some thread was busy (or in a
# C call, such as a database round trip), not of CPU alone.
LIBRARIES = (
    # sqlite3 runs in C under SQLAlchemy's frames, so drivers and ORM are one figure
    ("database (SQLAlchemy, SQLModel, sqlite3, psycopg)",
     ("sqlalchemy/", "sqlmodel/", "sqlite3/", "psycopg/", "psycopg_binary/", "alembic/")),
    ("pika (RabbitMQ)", ("pika/",)),
    ("HTTP client (httpx, httpcore, h11)", ("httpx/", "httpcore/", "h11/")),
    ("API server (uvicorn, starlette, fastapi, anyio)",
     ("uvicorn/", "starlette/", "fastapi/", "anyio/")),
    ("fhir.resources", ("fhir/resources/", "fhir_core/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("crypto (cryptography, hmac, hashlib)", ("cryptography/", "hmac.py", "hashlib.py")),
    ("JSON / YAML / XML", ("json/", "orjson", "yaml/", "lxml/")),
    ("logging (structlog, logging)", ("structlog/", "logging/")),
    ("auth (authlib, joserfc)", ("authlib/", "joserfc/")),
    ("threading / queue / socket / ssl", ("threading.py", "queue.py", "socket.py", "ssl.py",
                                          "selectors.py", "asyncio/", "concurrent/")),
    ("hub, adapters, consent (own code)", ("hub/", "adapters/", "consent/")),
)


def py_spy() -> str | None:
    exe = Path(sys.executable).with_name("py-spy")
    return str(exe) if exe.exists() else shutil.which("py-spy")


class Profiler:
    """`py-spy record --format raw` on each of a hub's processes for one measurement."""

    def __init__(self, res: Resources, roles: dict[int, str], out: Path, name: str) -> None:
        self.res, self.files = res, {}
        self.procs: list[subprocess.Popen[bytes]] = []
        exe = py_spy()
        if exe is None:
            raise BenchError("--profile needs py-spy (pip install -e '.[bench]')")
        for pid, role in roles.items():
            path = out / f"profile-{name}-{role.replace(' ', '-')}-{pid}.txt"
            self.files[f"{role} (pid {pid})"] = path
            self.procs.append(res.spawn([exe, "record", "--pid", str(pid), "--format", "raw",
                                         "-o", str(path), "--rate", "100", "--nonblocking",
                                         "--subprocesses"], dict(os.environ),
                                        res.tmp / "py-spy.log"))

    def stop(self) -> dict[str, Any]:
        self.res.stop_procs(self.procs, grace=15)  # SIGINT: py-spy writes what it sampled
        return {role: summarize(path) for role, path in self.files.items() if path.exists()}


def summarize(path: Path) -> dict[str, Any]:
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        label = "other (standard library, interpreter)"
        for frame in reversed(stack.split(";")):
            where = frame.rpartition("(")[2]
            found = next((lab for lab, keys in LIBRARIES if any(k in where for k in keys)), None)
            if found:
                label = found
                break
        counts[label] = counts.get(label, 0) + int(n)
    shares = {k: round(v / total, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}
    return {"file": str(path), "samples": total, "share_by_library": shares,
            "note": "share of non-idle samples (100 Hz) by the deepest known library frame"}
