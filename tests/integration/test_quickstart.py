"""The README's quickstart, run exactly as written in a fresh clone, so the front door cannot
drift from the code. (A clone holds what is committed: run it after committing.)"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.broker import Topology, delete_topology
from hub.settings import Settings
from tests.services import Services

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- quickstart: (.+?) -->\s*```sh\n(.*?)```", re.DOTALL)


def quickstart_blocks(readme: str) -> dict[str, list[str]]:
    """The shell lines under each `<!-- quickstart: NAME -->` marker, comments dropped."""
    return {name: [line for line in body.splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
            for name, body in MARKER.findall(readme)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Quickstart:
    """A fresh clone, and the environment that keeps it off the shared queues and ports."""

    def __init__(self, folder: Path, services: Services) -> None:
        self.folder = folder
        self.port = _free_port()
        self.prefix = f"test-qs-{uuid.uuid4().hex[:8]}"
        site = (folder / "deploy" / "sites" / "santa-fe.yaml").read_text()
        site = site.replace(":8701/", f":{_free_port()}/").replace(":8702/", f":{_free_port()}/")
        site_file = folder.parent / "site.yaml"  # the demo site, on ports of this test's own
        site_file.write_text(site)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        self.env.update(HUB_API_PORT=str(self.port), HUB_BROKER_PREFIX=self.prefix,
                        HUB_AMQP_URL=services.amqp_url, HUB_SITE_FILE=str(site_file))
        self.amqp_url = services.amqp_url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def quickstart(tmp_path: Path, services: Services) -> Iterator[Quickstart]:
    folder = tmp_path / "lead-hub"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    qs = Quickstart(folder, services)
    yield qs
    delete_topology(qs.amqp_url, Topology(qs.prefix, tuple(Settings().retry_delays_ms)))


def _wait_until_serving(qs: Quickstart, hub: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300  # the first `make run` installs into .venv
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise AssertionError(f"`make run` exited {hub.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{qs.url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the hub did not serve within 300 s:\n{log.read_text()[-3000:]}")


def _sign_in(qs: Quickstart, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=qs.url) as web:
        form = web.get("/console/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert token, form.text
        signed = web.post("/console/login", data={"username": username, "password": password,
                                                  "login_token": token.group(1)})
        assert signed.status_code == 303, signed.text
        return web.get("/console")


def test_the_readme_quickstart_works_as_written(quickstart: Quickstart) -> None:
    """make run, send the example notice, see it at the stand-ins, read the accounting, sign in."""
    blocks = quickstart_blocks((quickstart.folder / "README.md").read_text())
    assert set(blocks) == {"terminal 1", "terminal 2"}, blocks
    assert blocks["terminal 1"] == ["make run"]
    log = quickstart.folder.parent / "make-run.log"
    with log.open("wb") as out:
        hub = subprocess.Popen(["bash", "-c", blocks["terminal 1"][0]], cwd=quickstart.folder,
                               env=quickstart.env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        _wait_until_serving(quickstart, hub, log)
        banner = log.read_text()
        assert "STAND-IN receivers" in banner and "/docs" in banner and "/console" in banner
        said = ""
        for line in blocks["terminal 2"]:
            done = subprocess.run(["bash", "-c", line], cwd=quickstart.folder,
                                  env=quickstart.env, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            said += done.stdout
        assert "provider: delivered" in said and "da: delivered" in said
        assert re.search(r"da \(stand-in for .+\): 1 received", said), said
        assert re.search(r"provider \(stand-in for .+\): 1 received", said), said
        assert "FHIR Bundle: Patient, ServiceRequest, Task" in said
        assert "da: withheld" in said  # provider status without a consent
        assert "disclosed," in said and "withheld," in said  # the accounting's CSV rows
        password = re.search(r"password=(\S+)", said)
        assert password, said
        console = _sign_in(quickstart, "jdoe", password.group(1))
        assert console.status_code == 200 and "Find a participant" in console.text
    finally:
        os.killpg(hub.pid, signal.SIGTERM)
        try:
            hub.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait(5)
