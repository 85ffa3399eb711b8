"""The real services the integration tests use: the running ones, or containers where Docker runs.

A missing service fails the run with a clear message; it never turns into a skipped test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest

AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_ADMIN_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Services:
    amqp_url: str
    pg_admin_url: str


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), 2):
            return True
    except OSError:
        return False


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def start_services() -> tuple[Services, list[object]]:
    """Use the running RabbitMQ and PostgreSQL; fall back to testcontainers with a Docker engine."""
    amqp, pg = AMQP_URL, PG_ADMIN_URL
    containers: list[object] = []
    missing = [name for name, url in (("RabbitMQ", amqp), ("PostgreSQL", pg))
               if not _reachable(url)]
    if missing and _docker_engine():
        if "RabbitMQ" in missing:
            from testcontainers.rabbitmq import RabbitMqContainer

            rabbit = RabbitMqContainer("rabbitmq:3.13").start()
            containers.append(rabbit)
            amqp = (f"amqp://guest:guest@{rabbit.get_container_host_ip()}:"
                    f"{rabbit.get_exposed_port(5672)}/%2F")
        if "PostgreSQL" in missing:
            from testcontainers.postgres import PostgresContainer

            postgres = PostgresContainer("postgres:16").start()
            containers.append(postgres)
            pg = postgres.get_connection_url().replace("+psycopg2", "")
        missing = []
    if missing:
        pytest.exit(
            f"integration tests need {' and '.join(missing)} "
            f"(RabbitMQ at {AMQP_URL}, PostgreSQL at {PG_ADMIN_URL}; override with "
            "HUB_TEST_AMQP_URL / HUB_TEST_PG_URL). Start them (see README) and run again.",
            returncode=3,
        )
    return Services(amqp, pg), containers
