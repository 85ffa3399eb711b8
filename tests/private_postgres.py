"""A PostgreSQL server of a test's own (its own data directory and port), to stop and start at will.

The shared PostgreSQL is never stopped by a test; a test that needs an outage runs this one.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

OWNER = "postgres"  # initdb refuses to run as root


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if found is None:
        pytest.fail(f"this test runs a PostgreSQL of its own and needs `{name}` "
                    "(Debian: apt-get install postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """initdb, start, stop and remove one throw-away server, trusting local connections."""

    def __init__(self) -> None:
        # not under pytest's tmp_path: the server's user must be able to enter the folder
        self.folder = Path(tempfile.mkdtemp(prefix="hub-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, OWNER, OWNER)
        self.data = self.folder / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        as_owner = ["runuser", "-u", OWNER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_owner, *args], capture_output=True, text=True, timeout=timeout,
                              check=False)  # the failure is raised below, with stderr
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout}")

    def init(self) -> None:
        self._run(_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")  # a throw-away server: speed over crash safety of the OS
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        """Stop the server if it runs and delete everything it wrote."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
