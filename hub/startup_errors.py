"""What `hub serve` and `hub worker` say when they cannot start: one line, with what to do."""

from __future__ import annotations

from hub.errors import BrokerUnavailable, ConfigError, DatabaseUnavailable, HubError

HINTS: list[tuple[type[HubError], str]] = [
    (BrokerUnavailable, "start RabbitMQ (on this machine: `rabbitmq-server -detached`) or point "
                        "HUB_AMQP_URL at a running broker"),
    (DatabaseUnavailable, "start the database server, fix HUB_DATABASE_URL, or unset it to use "
                          "the SQLite file under var/"),
    (ConfigError, "fix the file named above and start again"),
]


def startup_line(exc: HubError) -> str:
    """The one line to print: what is wrong, then what to do about it."""
    what = str(exc).rstrip(".")
    for kind, hint in HINTS:
        if isinstance(exc, kind):
            return f"error: {what}; {hint}."
    return f"error: {what}."
