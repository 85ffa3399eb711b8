"""`hub serve` runs each step in a process of its own, restarts one that dies, and one
interrupt stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from hub import PROJECT_ROOT
from hub.broker import Topology, delete_topology
from hub.settings import Settings
from tests.harness import hub_env, wait_for
from tests.integration.test_quickstart import _free_port
from tests.services import Services


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                           check=False)
    return [int(x) for x in found.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_serve_runs_steps_in_processes_restarts_a_dead_one_and_stops_on_one_interrupt(
    tmp_path: Path, services: Services,
) -> None:
    """Three worker processes; one killed is started again; a notice still arrives; SIGINT
    to serve leaves no process behind."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hub.sqlite3'}",
                        amqp_url=services.amqp_url, broker_prefix=f"test-{uuid.uuid4().hex[:8]}",
                        api_port=_free_port())
    site = (PROJECT_ROOT / "deploy" / "sites" / "santa-fe.yaml").read_text()
    site_file = tmp_path / "site.yaml"
    site_file.write_text(site.replace(":8701/", f":{_free_port()}/")
                         .replace(":8702/", f":{_free_port()}/"))
    env = {**hub_env(settings, site_file), "HUB_API_PORT": str(settings.api_port)}
    serve = subprocess.Popen([sys.executable, "-m", "hub", "serve"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{settings.api_port}"
    try:
        wait_for("the API", lambda: _answers(f"{url}/health"), timeout=60)
        wait_for("three workers", lambda: len(_children(serve.pid)) == 3, timeout=30)
        victim = _children(serve.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for("a worker started again", lambda: len(_children(serve.pid)) == 3
                 and victim not in _children(serve.pid), timeout=30)
        sent = subprocess.run([sys.executable, "-m", "hub", "send", "diversion-notice",
                               str(PROJECT_ROOT / "examples" / "diversion-notice.json"),
                               "--watch", "--timeout", "30"],
                              env={**env, "HUB_CLIENT_ID": "", "HUB_CLIENT_SECRET": ""},
                              cwd=tmp_path, capture_output=True, text=True, timeout=90,
                              check=False)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "provider: delivered" in sent.stdout and "da: delivered" in sent.stdout
        workers = _children(serve.pid)
        serve.send_signal(signal.SIGINT)
        assert serve.wait(30) == 0
        wait_for("every worker gone", lambda: not any(_alive(p) for p in workers), timeout=15)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
        delete_topology(services.amqp_url, Topology(settings.broker_prefix,
                                                    tuple(settings.retry_delays_ms)))


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False

