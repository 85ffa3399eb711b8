"""Benchmark (not a test): the hub's throughput and latency against the raw limit, per store.

One run measures, on SQLite and on PostgreSQL (issue 8, point 10):

1. the raw limit: the hub's hops in bare pika (bench/tp_raw.py: sealed jobs, quorum queues,
   pipelined confirms, one transaction and one multiple-ack per batch of 64, pushes to two
   local partners), no hub code;
2. the hub: `hub serve` as a subprocess on its own database and queue prefix, diversion
   notices submitted over HTTP with a real token, until every notice's FHIR referral reached
   the provider partner and its notice the DA partner: notices/s, p50/p95/p99
   ingest-to-delivery latency, CPU seconds per notice of the hub's processes, hub/raw ratio;
3. the same with W worker processes per step (1, 2, 4), where the hub can run them;
4. latency at fixed offered rates (open loop), and whether the hub kept up.

Writes DIR/throughput.json (every figure, the machine) and DIR/throughput.png (if matplotlib
is installed: `pip install -e '.[bench]'`), and prints a table. Everything it creates (hub
processes, queues under its own prefix, databases, temp files) is removed at the end, also
after Ctrl-C or a failure. Usage, from the project root:

    .venv/bin/python bench/throughput.py [--notices N] [--stores sqlite,postgresql]
        [--workers 1,2,4] [--rates 50,300,1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tp_raw
from tp_http import Arrivals, Sent, receivers_main, submit
from tp_hub import (
    ROOT,
    STEPS,
    BenchError,
    HubRun,
    Profiler,
    QueueWatch,
    Resources,
    serve_help,
    tree_cpu,
    worker_mode,
)

AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PARTNERS = ("provider", "da")  # a diversion notice: FHIR referral to one, the notice to the other
SUBMIT_PATH = "/v1/agencies/sfpd/diversion-notices"
BENCH_KEY = "YmVuY2gtcGF5bG9hZC1rZXktMzItYnl0ZXMtbG9uZyE="  # 32 bytes, base64 (raw phase)


def parse_args() -> argparse.Namespace:
    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--notices", type=int, default=500,
                   help="notices per throughput run of the hub (default 500)")
    p.add_argument("--raw-notices", type=int, default=3000,
                   help="messages through the raw pipeline per store (default 3000)")
    p.add_argument("--raw-http", choices=("httpx", "lean"), default="httpx",
                   help="the raw pipeline's HTTP client: httpx (as the hub; default) or lean "
                        "(a minimal asyncio client: the hardware's ceiling)")
    p.add_argument("--stores", default="sqlite,postgresql")
    p.add_argument("--phases", default="raw,hub,workers,rates",
                   help="which phases to run (default raw,hub,workers,rates)")
    p.add_argument("--workers", type=ints, default=[1, 2, 4],
                   help="worker processes per step to try (default 1,2,4; empty: skip)")
    p.add_argument("--rates", type=ints, default=[50, 300, 1000],
                   help="offered notices/s for the latency runs (default 50,300,1000)")
    p.add_argument("--rate-seconds", type=float, default=10.0,
                   help="how long each fixed rate is offered (default 10 s)")
    p.add_argument("--rate-cap", type=float, default=15.0,
                   help="stop offering after this many seconds whatever was sent (default 15)")
    p.add_argument("--drain", type=float, default=15.0,
                   help="after a fixed-rate run, wait at most this long for deliveries")
    p.add_argument("--connections", type=int, default=8,
                   help="concurrent HTTP connections submitting (throughput runs)")
    p.add_argument("--rate-connections", type=int, default=64,
                   help="concurrent HTTP connections available to the fixed-rate runs")
    p.add_argument("--phase-timeout", type=float, default=180.0,
                   help="seconds a throughput run may take before it is cut (default 180)")
    p.add_argument("--start-timeout", type=float, default=90.0,
                   help="seconds a hub may take to start (default 90)")
    p.add_argument("--out", default=str(ROOT / "var" / "bench"),
                   help="folder for throughput.json and throughput.png (default var/bench)")
    p.add_argument("--profile", action="store_true",
                   help="sample each hub process with py-spy during the throughput runs; "
                        "writes DIR/profile-*.txt (collapsed stacks: speedscope, flamegraph.pl) "
                        "and a share of time per library into the JSON")
    p.add_argument("--all-rates", action="store_true",
                   help="run every rate even after the hub did not keep up at a lower one")
    p.add_argument("--amqp-url", default=AMQP)
    p.add_argument("--pg-admin", default=PG_ADMIN,
                   help="a PostgreSQL database to connect to for CREATE/DROP DATABASE")
    args = p.parse_args()
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    args.phases = [s.strip() for s in args.phases.split(",") if s.strip()]
    if set(args.phases) - {"raw", "hub", "workers", "rates"}:
        p.error("--phases: raw, hub, workers, rates")
    if "workers" not in args.phases:
        args.workers = []
    if "rates" not in args.phases:
        args.rates = []
    unknown = set(args.stores) - {"sqlite", "postgresql"}
    if unknown:
        p.error(f"unknown store(s) {', '.join(sorted(unknown))}: sqlite, postgresql")
    return args


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def notices(n: int, seed: str) -> tuple[list[bytes], list[str]]:
    """N distinct diversion notices (the shape of examples/ and tests/harness.py) and keys."""
    now = datetime.now(UTC)
    bodies, keys = [], []
    for i in range(n):
        bodies.append(orjson.dumps({
            "pathway": "arrest-diversion",
            "referred_at": now.isoformat(),
            "person": {"given_name": f"Avery{i}", "family_name": "Benchperson",
                       "date_of_birth": f"19{60 + i % 40}-0{1 + i % 9}-1{i % 10}",
                       "state_id": f"NM-B-{seed[:4]}{i:06d}"},
            "contact": {"phone": "555-0199", "address": f"{i} Bench Way, Santa Fe"},
            "incident": {"report_number": f"SFPD-{seed[:6]}-{i:06d}",
                         "occurred_at": (now - timedelta(hours=1)).isoformat(),
                         "officer": "Badge 4242", "location": "Plaza",
                         "charges": [{"statute": "30-31-23", "description": "possession"}]},
            "referral_reason": "possession under 3 g",
        }))
        keys.append(f"bench-{seed}-{i}")
    return bodies, keys


def percentiles(values: list[float], censored: int = 0, floor: float = 0.0) -> dict[str, Any]:
    """p50/p95/p99 in ms; `censored` values never arrived (at least `floor` s): a percentile
    that falls among them is a lower bound, and is listed under `lower_bounds`."""
    out: dict[str, Any] = {}
    ordered = sorted(values)
    total = len(ordered) + censored
    if not total:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    bounds = []
    for q in (50, 95, 99):
        k = max(0, math.ceil(q / 100 * total) - 1)
        if k < len(ordered):
            out[f"p{q}_ms"] = round(ordered[k] * 1000, 1)
        else:
            out[f"p{q}_ms"] = round(max(floor, ordered[-1] if ordered else 0) * 1000, 1)
            bounds.append(f"p{q}")
    if ordered:
        out["max_ms"] = round(ordered[-1] * 1000, 1)
        out["mean_ms"] = round(sum(ordered) / len(ordered) * 1000, 1)
    if bounds:
        out["lower_bounds"] = bounds
    return out


def own_cpu(receivers_pid: int) -> float:
    t = os.times()
    return t.user + t.system + sum(tree_cpu({receivers_pid: "partners"}).values())


# ---------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.base = f"bench-tp-{self.run_id}"
        self.res = Resources(args.amqp_url, args.pg_admin)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.json_path = self.out / "throughput.json"
        self.report: dict[str, Any] = {
            "benchmark": "bench/throughput.py", "run_id": self.run_id,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "args": {k: v for k, v in vars(args).items() if k not in ("amqp_url", "pg_admin")},
            "stores": {}, "errors": [], "interrupted": False,
        }
        self._ctx = mp.get_context("spawn")
        self._events = self._ctx.Queue()
        parent, child = self._ctx.Pipe()
        self._recv_pipe = parent
        self._receivers = self._ctx.Process(target=receivers_main,
                                            args=(list(PARTNERS), child, self._events),
                                            daemon=True, name="partners")
        self.arrivals = Arrivals(self._events)
        self.ports: dict[str, int] = {}
        self.n_hub = 0

    # -- bookkeeping --------------------------------------------------------------------------

    def save(self) -> None:
        self.report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.report, indent=2))
        tmp.replace(self.json_path)

    def say(self, text: str) -> None:
        print(text, flush=True)

    def error(self, where: str, exc: BaseException) -> dict[str, Any]:
        message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__} {exc}".strip()
        self.say(f"  ! {where}: {message}")
        if not isinstance(exc, BenchError):
            traceback.print_exc()
        self.report["errors"].append(f"{where}: {message}")
        return {"error": message}

    def store_report(self, store: str) -> dict[str, Any]:
        return self.report["stores"].setdefault(store, {})

    # -- setup --------------------------------------------------------------------------------

    def start_partners(self) -> None:
        self._receivers.start()
        if not self._recv_pipe.poll(30):
            raise BenchError("the partner receivers did not start within 30 s")
        self.ports = self._recv_pipe.recv()

    def stop_partners(self) -> None:
        if self._receivers.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self._recv_pipe.send("stop")
            self._receivers.join(5)
            if self._receivers.is_alive():
                self._receivers.kill()

    def machine(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "sqlite": sqlite3.sqlite_version,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        }
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    m["cpu"] = line.split(":", 1)[1].strip()
                    break
        with contextlib.suppress(Exception):
            import pika

            conn = pika.BlockingConnection(pika.URLParameters(self.args.amqp_url))
            props = getattr(conn._impl, "server_properties", {}) or {}
            version = props.get("version")
            m["rabbitmq"] = version.decode() if isinstance(version, bytes) else version
            conn.close()
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(self.args.pg_admin, connect_timeout=5) as conn:
                m["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        with contextlib.suppress(Exception):
            git = ["git", "-C", str(ROOT)]
            m["hub_commit"] = subprocess.run([*git, "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True,
                                             timeout=10, check=False).stdout.strip()
            dirty = subprocess.run([*git, "status", "--porcelain", "--", "hub", "adapters",
                                    "consent"], capture_output=True, text=True,
                                   timeout=10, check=False).stdout.strip()
            m["hub_uncommitted_changes"] = bool(dirty)
        return m

    def store_url(self, store: str, tag: str) -> tuple[str, str | None]:
        if store == "sqlite":
            return f"sqlite:///{self.res.tmp / (tag + '.sqlite3')}", None
        name = tag.replace("-", "_")
        return self.res.create_database(name), name

    # -- the raw limit ------------------------------------------------------------------------

    def raw(self, store: str) -> dict[str, Any]:
        n = self.args.raw_notices
        tag = f"{self.base}-raw-{store[:2]}"
        self.res.prefixes.append(tag)
        url, dbname = self.store_url(store, tag)
        qa, qb = f"{tag}.a", f"{tag}.b"
        ctx = self._ctx
        out = ctx.Queue()
        stop, go = ctx.Event(), ctx.Event()
        ready = [ctx.Event(), ctx.Event()]
        partners = {"provider": f"http://127.0.0.1:{self.ports['provider']}/fhir",
                    "da": f"http://127.0.0.1:{self.ports['da']}/lead/messages"}
        procs: list[Any] = []
        try:
            tp_raw.create_schema(url)
            tp_raw.declare(self.args.amqp_url, [qa, qb])
            bodies, _ = notices(n, self.run_id)
            procs = [
                ctx.Process(target=tp_raw.stage_main, name="raw-b", daemon=True, args=(
                    "b", self.args.amqp_url, qb, None, url, BENCH_KEY, partners,
                    self.args.raw_http, ready[1], stop, out)),
                ctx.Process(target=tp_raw.stage_main, name="raw-a", daemon=True, args=(
                    "a", self.args.amqp_url, qa, qb, url, BENCH_KEY, partners,
                    self.args.raw_http, ready[0], stop, out)),
                ctx.Process(target=tp_raw.producer_main, name="raw-producer", daemon=True,
                            args=(self.args.amqp_url, qa, bodies, BENCH_KEY, go, out)),
            ]
            for p in procs:
                p.start()
            deadline = time.monotonic() + 60
            for r in ready:
                if not r.wait(max(0.1, deadline - time.monotonic())):
                    raise BenchError(f"the raw pipeline did not start within 60 s "
                                     f"{self._raw_errors(out)}")
            roles = {p.pid: p.name for p in procs}
            cpu0 = tree_cpu(roles)
            go.set()
            deadline = time.monotonic() + self.args.phase_timeout
            times: list[tuple[str, float]] | None = None
            while times is None:
                with contextlib.suppress(queue.Empty):
                    kind, value = out.get(timeout=0.2)
                    if kind == "error":
                        raise BenchError(f"raw pipeline: {value}")
                    times = value
                if time.monotonic() > deadline:
                    raise BenchError(f"raw pipeline: the producer did not finish within "
                                     f"{self.args.phase_timeout:.0f} s")
            ids = [mid for mid, _ in times]
            done = self.wait_delivered(ids, deadline, lambda: self._raw_problem(procs, out))
            cpu1 = tree_cpu(roles)
            result = self.figures(ids, {mid: t for mid, t in times}, done, timed_out=(
                len(done) < len(ids)))
            result["cpu_s_per_notice"] = round(
                (sum(cpu1.values()) - sum(cpu0.values())) / max(1, len(done)), 5)
            result["cpu_s_by_process"] = {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 2)
                                          for k in cpu1}
            result["pipeline"] = ("bare pika, no hub code: publish (confirms) -> quorum queue "
                                  "-> stage A (15 rows/msg, 1 tx/batch, follow-up with "
                                  "confirms, 1 multi-ack) -> quorum queue -> stage B (15 rows "
                                  "per delivery x 2 deliveries, 1 tx/batch, then the 2 POSTs "
                                  "per message over keep-alive connections, 1 multi-ack); "
                                  "prefetch and batch 64; AES-256-GCM jobs; one process per "
                                  "stage; HTTP client: " + self.args.raw_http)
            if result.get("timed_out"):
                result["error"] = (f"only {len(done)} of {n} delivered within "
                                   f"{self.args.phase_timeout:.0f} s")
            return result
        finally:
            stop.set()
            go.set()
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
                    p.join(5)
            with contextlib.suppress(Exception):
                self.res.delete_queues(tag)
            if dbname:
                with contextlib.suppress(Exception):
                    self.res.drop_database(dbname)

    def _raw_errors(self, out: Any) -> str:
        errors = []
        with contextlib.suppress(queue.Empty):
            while True:
                kind, value = out.get_nowait()
                if kind == "error":
                    errors.append(value)
        return f"({'; '.join(errors)})" if errors else ""

    def _raw_problem(self, procs: list[Any], out: Any) -> str | None:
        with contextlib.suppress(queue.Empty):
            kind, value = out.get_nowait()
            if kind == "error":
                return f"raw pipeline: {value}"
        dead = [p.name for p in procs if p.name != "raw-producer" and not p.is_alive()]
        return f"raw pipeline: {', '.join(dead)} exited" if dead else None

    # -- the hub ------------------------------------------------------------------------------

    def hub(self, store: str, label: str, serve_args: list[str], workers_per_step: int,
            rate: int | None = None) -> dict[str, Any]:
        self.n_hub += 1
        tag = f"{self.base}-{store[:2]}{self.n_hub}"
        run = HubRun(self.res, store, tag, self.ports, serve_args, workers_per_step)
        result: dict[str, Any] = {"variant": label}
        try:
            t = time.monotonic()
            run.start(self.args.start_timeout)
            result["commands"] = run.commands
            result["start_s"] = round(time.monotonic() - t, 1)
            warm = self.measure(run, 5, connections=1, timeout=60)
            if warm.get("delivered") != 5:
                raise BenchError(f"the hub did not deliver 5 warm-up notices within 60 s "
                                 f"(delivered {warm.get('delivered')}, submit errors "
                                 f"{warm.get('submit_errors')}): {run.log_tail()}")
            if rate is None:
                slug = label.replace(" ", "-").replace("/", "-per-")
                result.update(self.measure(run, self.args.notices, self.args.connections,
                                           timeout=self.args.phase_timeout,
                                           profile=f"{store}-{slug}" if self.args.profile
                                           else None))
            else:
                count = max(1, int(rate * self.args.rate_seconds))
                result.update(self.measure(run, count, self.args.rate_connections,
                                           timeout=self.args.rate_cap + self.args.drain,
                                           rate=rate))
            if result.get("timed_out") and "error" not in result and rate is None:
                result["error"] = (f"only {result['delivered']} of {result['notices']} "
                                   f"delivered within {self.args.phase_timeout:.0f} s")
            problem = run.alive()
            if problem:
                result.setdefault("error", problem)
        finally:
            problems = run.stop()
            if problems:
                result["cleanup_problems"] = problems
        return result

    def measure(self, run: HubRun, n: int, connections: int, timeout: float,
                rate: int | None = None, profile: str | None = None) -> dict[str, Any]:
        bodies, keys = notices(n, uuid.uuid4().hex[:8])
        watch = QueueWatch(self.args.amqp_url, {s: f"{run.prefix}.{s}" for s in STEPS})
        watch.start()
        profiler = Profiler(self.res, run.roles, self.out, profile) if profile else None
        profiles = None
        repeats0 = self.arrivals.repeats
        cpu0, bench0 = run.cpu(), own_cpu(self._receivers.pid)
        cap = self.args.rate_cap if rate else timeout
        try:
            sent, t0 = asyncio.run(submit("127.0.0.1", run.port, SUBMIT_PATH, run.token, bodies,
                                          keys, connections, rate=rate, cap_seconds=cap))
            accepted = [s for s in sent if s.message_id]
            last_answer = max((s.answered for s in sent), default=t0)
            deadline = last_answer + self.args.drain if rate else t0 + timeout
            ids = [s.message_id for s in accepted if s.message_id]
            done = self.wait_delivered(ids, deadline, run.alive)
        finally:
            watch.stop()
            cpu1, bench1 = run.cpu(), own_cpu(self._receivers.pid)
            if profiler:
                profiles = profiler.stop()
        submit_at = {s.message_id: (s.scheduled if rate else s.sent) for s in accepted
                     if s.message_id}
        result = self.figures(ids, submit_at, done, timed_out=len(done) < len(ids))
        result["notices"] = n
        result["submitted"] = len(sent)
        result["accepted"] = len(accepted)
        errors = [s.error for s in sent if s.error]
        result["submit_errors"] = len(errors)
        if errors:
            result["first_submit_error"] = errors[0]
        if accepted:
            span = max(s.answered for s in accepted) - t0
            result["accepted_per_s"] = round(len(accepted) / span, 1) if span > 0 else None
            result["api"] = percentiles([s.answered - s.sent for s in accepted])
        hub_cpu = sum(cpu1.values()) - sum(cpu0.values())
        result["cpu_s"] = round(hub_cpu, 2)
        result["cpu_s_per_notice"] = round(hub_cpu / max(1, len(done)), 5)
        result["cpu_s_by_process"] = {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 2) for k in cpu1}
        result["bench_cpu_s"] = round(bench1 - bench0, 2)
        result["max_ready_in_queue"] = watch.max_depth  # beyond what consumers prefetched
        result["consumers"] = watch.consumers
        if watch.problem:
            result["queue_watch_problem"] = watch.problem
        result["partner_repeats"] = self.arrivals.repeats - repeats0
        if profiles is not None:
            result["profile"] = profiles
        if rate:
            self.rate_verdict(result, rate, sent, t0, n)
        return result

    def rate_verdict(self, result: dict[str, Any], rate: int, sent: list[Sent], t0: float,
                     offered: int) -> None:
        window = offered / rate
        result["offered_per_s"] = rate
        result["offered_window_s"] = round(window, 2)
        last_sent = max((s.sent for s in sent), default=t0)
        result["sent_per_s"] = round(len(sent) / max(last_sent - t0, 1 / rate), 1)
        result["latency_from"] = "the scheduled submit time (open loop: a slow API counts)"
        last = result.get("last_delivery_s")
        backlog = None if last is None else round(last - window, 2)
        result["backlog_at_end_s"] = backlog
        result["kept_up"] = bool(len(sent) == offered and result["delivered"] == offered
                                 and backlog is not None and backlog <= 1.0)

    def wait_delivered(self, ids: list[str], deadline: float, problem: Any) -> dict[str, float]:
        """Until every id reached both partners or the deadline: id -> later arrival time."""
        pending = set(ids)
        done: dict[str, float] = {}
        checked = time.monotonic()
        while True:
            self.arrivals.drain()
            for mid in [m for m in pending if self.arrivals.complete(m, PARTNERS)]:
                done[mid] = max(self.arrivals.by_message[mid].values())
                pending.discard(mid)
            if not pending or time.monotonic() > deadline:
                return done
            if time.monotonic() - checked > 1:
                checked = time.monotonic()
                trouble = problem()
                if trouble:
                    raise BenchError(trouble)
            time.sleep(0.05)

    def figures(self, ids: list[str], submit_at: dict[str, float | None],
                done: dict[str, float], timed_out: bool) -> dict[str, Any]:
        firsts = [t for t in submit_at.values() if t is not None]
        start = min(firsts) if firsts else time.monotonic()
        latencies = [done[m] - t for m, t in submit_at.items() if m in done and t is not None]
        now = time.monotonic()
        undelivered = [now - t for m, t in submit_at.items() if m not in done and t is not None]
        result: dict[str, Any] = {"delivered": len(done), "timed_out": timed_out}
        if done:
            elapsed = max(done.values()) - start
            result["elapsed_s"] = round(elapsed, 2)
            result["last_delivery_s"] = round(elapsed, 2)
            result["notices_per_s"] = round(len(done) / elapsed, 1) if elapsed > 0 else None
        else:
            result["notices_per_s"] = 0.0
        result["latency"] = percentiles(latencies, censored=len(undelivered),
                                        floor=min(undelivered, default=0.0))
        return result

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        self.say(f"bench/throughput.py: run {self.run_id}; results to {self.json_path}")
        try:
            import pika

            pika.BlockingConnection(pika.URLParameters(args.amqp_url)).close()
        except Exception as exc:  # noqa: BLE001
            raise BenchError(f"RabbitMQ not reachable at {args.amqp_url.split('@')[-1]} "
                             f"({type(exc).__name__}): nothing to measure") from None
        self.report["machine"] = self.machine()
        self.start_partners()
        mode, how = worker_mode(serve_help())
        self.report["worker_processes"] = {"mode": mode or "not supported", "how": how}
        self.say(f"  worker processes: {how}")
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        if load > cores / 2:
            note = (f"the machine is busy (load {load:.1f} on {cores} cores) before the run: "
                    "figures will be low and noisy")
            self.report["note"] = note
            self.say(f"  note: {note}")
        self.save()
        for store in args.stores:
            rep = self.store_report(store)
            if store == "postgresql":
                try:
                    import psycopg

                    with psycopg.connect(args.pg_admin, connect_timeout=5):
                        pass
                except Exception as exc:  # noqa: BLE001
                    reason = " ".join(str(exc).split())
                    rep["error"] = f"PostgreSQL not reachable at {args.pg_admin}: {reason}"
                    self.report["errors"].append(f"{store}: {rep['error']}")
                    self.say(f"  ! {store}: {rep['error']}")
                    continue
            if "raw" in args.phases:
                self.say(f"[{store}] raw limit: {args.raw_notices} messages through bare pika")
                try:
                    rep["raw"] = self.raw(store)
                except Exception as exc:  # noqa: BLE001
                    rep["raw"] = self.error(f"{store} raw", exc)
                self.show_line(store, "raw", rep["raw"])
                self.save()

            if "hub" in args.phases:
                self.say(f"[{store}] hub serve: {args.notices} notices ...")
                try:
                    rep["hub"] = self.hub(store, "hub serve", [], 0)
                except Exception as exc:  # noqa: BLE001
                    rep["hub"] = self.error(f"{store} hub serve", exc)
                self.show_line(store, "hub serve", rep["hub"])
                raw_rate = rep.get("raw", {}).get("notices_per_s")
                hub_rate = rep["hub"].get("notices_per_s")
                rep["hub_raw_ratio"] = (round(hub_rate / raw_rate, 4)
                                        if raw_rate and hub_rate else None)
                self.save()

            if args.workers:
                rep["workers"] = {}
            for w in args.workers:
                label = f"{w} worker process{'es' if w > 1 else ''}/step"
                if mode is None:
                    rep["workers"][str(w)] = {"variant": label, "not_supported": how}
                    continue
                serve_args = (["--workers", "0"] if mode == "api+workers"
                              else ["--workers", str(w)])
                extra = w if mode == "api+workers" else 0
                self.say(f"[{store}] {label}: {args.notices} notices ...")
                try:
                    rep["workers"][str(w)] = self.hub(store, label, serve_args, extra)
                except Exception as exc:  # noqa: BLE001
                    rep["workers"][str(w)] = self.error(f"{store} {label}", exc)
                self.show_line(store, label, rep["workers"][str(w)])
                self.save()

            if args.rates:
                rep["rates"] = {}
            behind = None
            for rate in args.rates:
                if behind is not None and not args.all_rates:
                    rep["rates"][str(rate)] = {
                        "skipped": f"the hub did not keep up at {behind}/s (--all-rates runs it)"}
                    self.say(f"[{store}] {rate}/s skipped: the hub did not keep up at {behind}/s")
                    continue
                self.say(f"[{store}] hub serve at {rate} notices/s offered "
                         f"({min(args.rate_seconds, args.rate_cap):.0f} s) ...")
                try:
                    rep["rates"][str(rate)] = self.hub(store, f"hub serve at {rate}/s", [], 0,
                                                       rate=rate)
                except Exception as exc:  # noqa: BLE001
                    rep["rates"][str(rate)] = self.error(f"{store} rate {rate}", exc)
                self.show_line(store, f"at {rate}/s", rep["rates"][str(rate)])
                if not rep["rates"][str(rate)].get("kept_up"):
                    behind = rate
                self.save()

    def show_line(self, store: str, label: str, r: dict[str, Any]) -> None:
        if "error" in r and not r.get("delivered"):
            return
        lat = r.get("latency", {})
        extra = ""
        if "kept_up" in r:
            extra = f"  kept up: {'yes' if r['kept_up'] else 'no'}"
        self.say(f"  {store} {label}: {r.get('notices_per_s')} /s, p50 {lat.get('p50_ms')} ms, "
                 f"p99 {lat.get('p99_ms')} ms, {r.get('cpu_s_per_notice')} CPU s/notice{extra}")


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def lat(r: dict[str, Any], q: str) -> str:
    latency = r.get("latency", {})
    v = latency.get(f"{q}_ms")
    if v is None:
        return "-"
    return (">" if q in latency.get("lower_bounds", []) else "") + f"{v:,.0f}"


def table(report: dict[str, Any]) -> str:
    lines = [(f"{'store':10} {'variant':28} {'notices/s':>10} {'p50 ms':>9} {'p95 ms':>9} "
              f"{'p99 ms':>9} {'CPU s/ntc':>10} {'vs raw':>7}")]
    rates = [(f"{'store':10} {'offered/s':>9} {'sent/s':>8} {'accepted/s':>10} "
              f"{'dlvd/offered':>12} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}  kept up")]
    for store, rep in report["stores"].items():
        if "error" in rep:
            lines.append(f"{store:10} {rep['error']}")
            continue
        raw = (rep.get("raw") or {}).get("notices_per_s")
        rows = [(label, rep[key]) for label, key in (("raw (bare pika)", "raw"),
                                                     ("hub serve", "hub")) if key in rep]
        rows += [(r.get("variant", f"{w} workers"), r) for w, r in rep.get("workers", {}).items()]
        for label, r in rows:
            if "not_supported" in r:
                lines.append(f"{store:10} {label:28} not supported: {r['not_supported']}")
                continue
            if "error" in r and not r.get("delivered"):
                lines.append(f"{store:10} {label:28} FAILED: {r['error'][:120]}")
                continue
            ratio = (r.get("notices_per_s") or 0) / raw if raw and label != "raw (bare pika)" \
                else None
            lines.append(f"{store:10} {label:28} {fmt(r.get('notices_per_s'), 1):>10} "
                         f"{lat(r, 'p50'):>9} {lat(r, 'p95'):>9} {lat(r, 'p99'):>9} "
                         f"{fmt(r.get('cpu_s_per_notice'), 4):>10} {fmt(ratio, 3):>7}")
        for rate, r in rep.get("rates", {}).items():
            if "skipped" in r:
                rates.append(f"{store:10} {rate:>9} skipped: {r['skipped']}")
                continue
            if "error" in r and not r.get("delivered"):
                rates.append(f"{store:10} {rate:>9} FAILED: {r['error'][:120]}")
                continue
            rates.append(f"{store:10} {rate:>9} {fmt(r.get('sent_per_s'), 1):>8} "
                         f"{fmt(r.get('accepted_per_s'), 1):>10} "
                         f"{r.get('delivered', 0):>6}/{r.get('notices', 0):<5} "
                         f"{lat(r, 'p50'):>9} {lat(r, 'p95'):>9} {lat(r, 'p99'):>9}  "
                         f"{'yes' if r.get('kept_up') else 'no'}")
    text = "\n".join(lines)
    if len(rates) > 1:
        text += "\n\nlatency at fixed offered rates (hub serve):\n" + "\n".join(rates)
    return text


def plot(report: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no plot"
    stores = [s for s, r in report["stores"].items() if "error" not in r]
    if not stores:
        return "nothing measured: no plot"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    variants = ["raw", "hub serve"] + [f"{w}/step" for w in report["args"]["workers"]]
    width = 0.8 / len(stores)
    for i, store in enumerate(stores):
        rep = report["stores"][store]
        values = [rep.get("raw", {}).get("notices_per_s") or 0,
                  rep.get("hub", {}).get("notices_per_s") or 0]
        values += [(rep.get("workers", {}).get(str(w)) or {}).get("notices_per_s") or 0
                   for w in report["args"]["workers"]]
        xs = [x + i * width for x in range(len(variants))]
        bars = ax1.bar(xs, [v or 0.1 for v in values], width, label=store)
        for b, v in zip(bars, values, strict=False):
            ax1.annotate(f"{v:,.0f}" if v else "n/a", (b.get_x() + b.get_width() / 2,
                                                       b.get_height()),
                         ha="center", va="bottom", fontsize=8)
    if any(b.get_height() > 1 for b in ax1.patches):
        ax1.set_yscale("log")
    ax1.set_xticks([x + width * (len(stores) - 1) / 2 for x in range(len(variants))])
    ax1.set_xticklabels(["raw limit\n(bare pika)", "hub serve"] +
                        [f"{w} worker\nproc./step" for w in report["args"]["workers"]])
    ax1.set_ylabel("notices per second, end to end (log)")
    ax1.set_title("Throughput")
    ax1.legend()
    styles = {"p50": ":", "p95": "--", "p99": "-"}
    for store, color in zip(stores, ("tab:blue", "tab:orange"), strict=False):
        rates = report["stores"][store].get("rates", {})
        xs = [int(r) for r, v in rates.items() if v.get("latency", {}).get("p99_ms")]
        if not xs:
            continue
        for q, style in styles.items():
            ys = [rates[str(x)]["latency"][f"{q}_ms"] for x in xs]
            ax2.plot(xs, ys, style, marker="o", color=color, label=f"{store} {q}")
        for x in xs:
            if not rates[str(x)].get("kept_up"):
                ax2.annotate("behind", (x, rates[str(x)]["latency"]["p99_ms"]), fontsize=8,
                             color=color, xytext=(4, 4), textcoords="offset points")
    ax2.axhline(200, color="grey", linewidth=0.8)
    if ax2.lines[:-1]:
        ax2.set_xscale("log")
        ax2.set_yscale("log")
    ax2.annotate("200 ms", (ax2.get_xlim()[0], 200), fontsize=8, color="grey")
    ax2.set_xlabel("offered notices per second (log)")
    ax2.set_ylabel("ingest-to-delivery latency, ms (log)")
    ax2.set_title("Latency at fixed rates (hub serve)")
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=8)
    m = report.get("machine", {})
    fig.suptitle(f"LEAD Hub throughput: {m.get('cores')} cores, Python {m.get('python')}, "
                 f"RabbitMQ {m.get('rabbitmq', '?')}, PostgreSQL {m.get('postgresql', '?')}, "
                 f"hub {m.get('hub_commit', '?')}"
                 f"{'+changes' if m.get('hub_uncommitted_changes') else ''}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main() -> int:
    args = parse_args()
    bench = Bench(args)

    def on_term(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with it ignored
    status = 0
    started = time.monotonic()
    try:
        bench.run()
    except KeyboardInterrupt:
        bench.report["interrupted"] = True
        bench.say("\ninterrupted: cleaning up (this takes a few seconds) ...")
        status = 130
    except Exception as exc:  # noqa: BLE001
        bench.error("benchmark", exc)
        status = 1
    finally:
        signal.signal(signal.SIGINT, lambda *_: print("  still cleaning up ...", flush=True))
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        problems = bench.res.cleanup()
        bench.stop_partners()
        if problems:
            bench.report["cleanup_problems"] = problems
            for p in problems:
                bench.say(f"  ! cleanup: {p}")
        bench.report["elapsed_s"] = round(time.monotonic() - started, 1)
        bench.save()
        png = bench.out / "throughput.png"
        try:
            note = plot(bench.report, png)
        except Exception as exc:  # noqa: BLE001 (the table and the JSON matter more)
            note = f"no plot: {type(exc).__name__}: {exc}"

        print()
        print(table(bench.report))
        print(f"\n{bench.json_path}" + (f"\n{png}" if note is None else f"\n({note})"))
        if bench.report["errors"]:
            status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
