"""The `hub` command: thin wrappers that build the hub and call into it."""

from __future__ import annotations

import signal
import sys
import time
from typing import Annotated

import typer
from pydantic import ValidationError

from hub import logs
from hub.bootstrap import bootstrap
from hub.broker import STEPS
from hub.cli_send import send, stand_ins
from hub.errors import HubError
from hub.settings import Settings
from hub.startup_errors import startup_line

app = typer.Typer(help="LEAD Hub: consent-gated interagency data exchange.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
dlq_app = typer.Typer(help="Dead-letter (parking) queues.", no_args_is_help=True)
client_app = typer.Typer(help="OAuth2 clients of agencies.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(client_app, name="client")
app.add_typer(db_app, name="db")
audit_app = typer.Typer(help="The disclosure ledger: verification, checkpoints, reports.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'settings'}: {e['msg']}"
                             for e in exc.errors())
        typer.echo(f"error: the configuration (HUB_* variables) has problems: {problems}",
                   err=True)
        raise typer.Exit(2) from None
    logs.configure(settings.log_level)
    return settings


def _fail(exc: HubError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


def _cannot_start(exc: HubError) -> None:
    typer.echo(startup_line(exc), err=True)
    raise typer.Exit(2)


@app.command()
def serve(
    workers: Annotated[int, typer.Option(
        help="worker processes per step (0: the API only; run `hub worker` elsewhere)")] = 1,
) -> None:
    """Run the API here and every step in worker processes of its own (one machine).

    A development site's stand-in receivers (agencies with `stand_in: true`) run here too.
    One Ctrl-C stops them all.
    """
    from hub.api.server import serve_foreground
    from hub.banner import banner
    from hub.service import CheckpointThread
    from hub.stand_ins import start_stand_ins, stop_stand_ins
    from hub.supervisor import WorkerProcesses

    try:
        hub = bootstrap(_settings())
        stand_ins = start_stand_ins(hub.site)
    except HubError as exc:
        _cannot_start(exc)
    processes = WorkerProcesses(STEPS if workers > 0 else (), workers).start()
    checkpoints = CheckpointThread(hub)
    checkpoints.start()
    typer.echo(banner(hub, f"{', '.join(STEPS)}: {workers} process(es) each" if workers
                      else "none here (API only)"), err=True)
    try:
        serve_foreground(hub)
    finally:
        checkpoints.stop()
        processes.stop()
        stop_stand_ins(stand_ins)
        hub.close()


@app.command()
def worker(step: Annotated[str, typer.Argument(help="ingest, route or deliver")]) -> None:
    """Run one step's worker (start more processes for more throughput)."""
    if step not in STEPS:
        typer.echo(f"error: no step {step!r}; choose one of {', '.join(STEPS)}", err=True)
        raise typer.Exit(2)
    from hub.service import WorkerThread

    try:
        hub = bootstrap(_settings())
    except HubError as exc:
        _cannot_start(exc)
    worker_loop = WorkerThread(hub, step)  # run in the foreground; it reconnects if RabbitMQ drops

    def stop_on_term(*_: object) -> None:  # SIGTERM stops as Ctrl-C does (unacked work requeues)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    try:
        worker_loop.run()
    except KeyboardInterrupt:
        worker_loop.stop()
    finally:
        hub.close()


@app.command()
def demo() -> None:
    """Send a diversion, a hold and a status update through the real hub; print the timeline."""
    from hub.demo import run_demo

    settings = Settings()
    logs.configure("WARNING")  # the timeline is the output; problems still show
    sys.exit(run_demo(settings))


app.command("send")(send)
app.command("stand-ins")(stand_ins)


@app.command("topology")
def topology_export() -> None:
    """Print the RabbitMQ definitions (JSON) of this hub's queues, for operators to pre-load."""
    import json

    from hub.broker import Topology

    settings = _settings()
    topology = Topology(settings.broker_prefix, tuple(settings.retry_delays_ms))
    typer.echo(json.dumps(topology.definitions(), indent=2))


@dlq_app.command("list")
def dlq_list() -> None:
    """Show what is parked, where and why."""
    from hub.dlq import list_parked

    hub = bootstrap(_settings(), migrate=False)
    parked = list_parked(hub.settings.amqp_url, hub.topology)
    if not parked:
        typer.echo("nothing parked")
    for p in parked:
        typer.echo(f"{p.step:8} {p.message_id}  tries={p.attempts + 1}  {p.reason}")
    hub.close()


@dlq_app.command("replay")
def dlq_replay(
    step: Annotated[str | None, typer.Option(help="only this step's parking queue")] = None,
    message: Annotated[str | None, typer.Option(help="only this message id")] = None,
) -> None:
    """Send parked messages back through their step; consent is decided again."""
    import getpass

    from hub import ledger_events
    from hub.dlq import replay

    hub = bootstrap(_settings(), migrate=False)
    operator = f"cli:{getpass.getuser()}"

    def record(replayed_step: str, message_id: str) -> None:
        ledger_events.record(hub.engine, hub.chain, site=hub.site.site,
                             kind=ledger_events.REPLAYED, actor=operator, subject=replayed_step,
                             reason="replayed from the parking queue", message_id=message_id)

    n = replay(hub.settings.amqp_url, hub.topology, step, message, on_replay=record)
    typer.echo(f"replayed {n} message(s)")
    hub.close()


@client_app.command("add")
def client_add(
    agency: Annotated[str, typer.Argument(help="agency id from the site file")],
    scope: Annotated[list[str], typer.Option(help="repeat for each scope")],
) -> None:
    """Register an OAuth2 client for an agency; prints the id and the secret (shown once)."""
    hub = bootstrap(_settings(), declare=False)
    if agency not in hub.site.agencies:
        typer.echo(f"error: no agency {agency!r}; known: {', '.join(hub.site.agencies)}", err=True)
        raise typer.Exit(2)
    try:
        client_id, secret = hub.clients.register(hub.site.site, agency, set(scope))
    except HubError as exc:
        _fail(exc)
    typer.echo(f"client_id={client_id}\nclient_secret={secret}")
    hub.close()


@client_app.command("disable")
def client_disable(
    client_id: Annotated[str, typer.Argument(help="the client_id `hub client add` printed")],
) -> None:
    """Stop a client: it gets no new tokens, and the tokens it holds stop working at once."""
    hub = bootstrap(_settings(), declare=False)
    try:
        hub.clients.disable(hub.site.site, client_id)
    except HubError as exc:
        _fail(exc)
    finally:
        hub.close()
    typer.echo(f"client {client_id} disabled")


@audit_app.command("verify")
def audit_verify(
    public_key: Annotated[str | None, typer.Option(
        help="hex Ed25519 public key to trust (default: the configured signing key's)")] = None,
) -> None:
    """Check the ledger's hash chain and signed checkpoints; exit 1 naming the first bad entry."""
    from hub.ledger_chain import verify

    hub = bootstrap(_settings(), declare=False)
    started = time.monotonic()

    def progress(n: int) -> None:
        typer.echo(f"  checked {n:,} entries ({time.monotonic() - started:.1f} s)", err=True)

    verdict = verify(hub.engine, hub.chain, public_key or hub.signer.public_hex, progress)
    hub.close()
    elapsed = time.monotonic() - started
    if verdict.ok:
        typer.echo(f"ledger verified: {verdict.entries:,} entries, {verdict.checkpoints} signed "
                   f"checkpoint(s), {elapsed:.1f} s")
        return
    typer.echo(f"LEDGER VERIFICATION FAILED at seq {verdict.first_bad_seq} "
               f"(id {verdict.first_bad_id}): {verdict.problem}", err=True)
    raise typer.Exit(1)


@audit_app.command("report")
def audit_report(
    case: Annotated[str | None, typer.Option(
        help="the diversion notice's message id ('last': the last one `hub send` sent from "
             "here)")] = None,
    participant: Annotated[str | None, typer.Option(help="the participant id")] = None,
    start: Annotated[str | None, typer.Option("--from", help="ISO time with offset")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO time with offset")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, csv or fhir")] = "json",
) -> None:
    """Accounting of disclosures for one patient and period (at most 3 years)."""
    import getpass
    import json
    from datetime import datetime

    from hub import ledger_events
    from hub.accounting import build_accounting
    from hub.api.audit import period, resolve_participant

    if fmt not in ("json", "csv", "fhir"):
        typer.echo("error: --format is json, csv or fhir", err=True)
        raise typer.Exit(2)
    hub = bootstrap(_settings(), declare=False)
    if case == "last":
        from hub.sender import last_case

        case = last_case(hub.site.site)
        if case is None:
            typer.echo("error: no diversion notice has been sent with `hub send` from here",
                       err=True)
            raise typer.Exit(2)
    try:
        pid = resolve_participant(hub, participant, case)
        begin, finish = period(datetime.fromisoformat(start) if start else None,
                               datetime.fromisoformat(end) if end else None)
        report = build_accounting(hub, pid, begin, finish)
        ledger_events.record(hub.engine, hub.chain, site=hub.site.site,
                             kind=ledger_events.VIEWED, actor=f"cli:{getpass.getuser()}",
                             subject=f"accounting ({fmt})", reason="accounting via CLI",
                             participant_id=pid)
    except HubError as exc:
        _fail(exc)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        hub.close()
    if fmt == "csv":
        typer.echo(report.to_csv(), nl=False)
    else:
        typer.echo(json.dumps(report.to_fhir() if fmt == "fhir" else report.to_json(), indent=2))


@audit_app.command("purge")
def audit_purge(
    yes: Annotated[bool, typer.Option("--yes", help="really remove the entries")] = False,
) -> None:
    """Remove ledger entries older than the retention period, behind a signed checkpoint."""
    from datetime import datetime, timedelta, timezone

    from hub.ledger_chain import purge_before

    hub = bootstrap(_settings(), declare=False)
    cutoff = datetime.now(timezone.utc) - timedelta(days=hub.settings.ledger_retention_days)
    if not yes:
        typer.echo(f"would remove entries recorded before {cutoff.isoformat()}; "
                   "run again with --yes")
        hub.close()
        return
    purged = purge_before(hub.engine, hub.signer, cutoff)
    hub.close()
    typer.echo(f"removed {purged.entries} entries up to seq {purged.upto_seq} "
               f"(checkpoint {purged.checkpoint_id}); what remains still verifies")


@audit_app.command("extract")
def audit_extract(
    evaluator: Annotated[str, typer.Option(help="evaluator id from the site file")],
    identified: Annotated[bool, typer.Option(
        help="add case keys; needs a current evaluator agreement")] = False,
    start: Annotated[str | None, typer.Option("--from", help="ISO time with offset")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO time with offset")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
) -> None:
    """Case timelines for program evaluation, de-identified unless an agreement is on file."""
    import getpass
    import json
    from datetime import datetime

    from hub.api.audit import period
    from hub.evaluation import build_extract, to_csv

    hub = bootstrap(_settings(), declare=False)
    try:
        begin, finish = period(datetime.fromisoformat(start) if start else None,
                               datetime.fromisoformat(end) if end else None)
        rows = build_extract(hub, evaluator, begin, finish, identified,
                             f"cli:{getpass.getuser()}")
    except HubError as exc:
        _fail(exc)
    finally:
        hub.close()
    typer.echo(json.dumps(rows, indent=2) if fmt == "json" else to_csv(rows), nl=fmt == "json")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint of the ledger's head now."""
    from hub.ledger_chain import make_checkpoint

    hub = bootstrap(_settings(), declare=False)
    cp = make_checkpoint(hub.engine, hub.signer, "on-demand")
    typer.echo(f"checkpoint {cp.id}: up to seq {cp.upto_seq}, head {cp.head_hash[:16]}..., "
               f"key {cp.public_key[:16]}...")
    hub.close()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    hub = bootstrap(_settings(), declare=False)
    typer.echo("database is at the newest schema")
    hub.close()


officer_app = typer.Typer(help="Compliance officers' accounts for the web console (/console).",
                          no_args_is_help=True)
app.add_typer(officer_app, name="officer")


@officer_app.command("add")
def officer_add(
    username: Annotated[str, typer.Argument(help="the name the officer signs in with")],
    agency: Annotated[str, typer.Option(help="agency id from the site file (kind compliance)")],
    name: Annotated[str, typer.Option(help="the officer's full name")],
) -> None:
    """Create a console account; prints its generated password (shown once)."""
    from hub.console import login_limits
    from hub.console.officers import Officers
    from hub.site import AgencyKind

    hub = bootstrap(_settings(), declare=False)
    try:
        officer, password = Officers(hub.engine, hub.site).add(username, agency, name)
        login_limits.forget(hub, officer.username)
    except HubError as exc:
        hub.close()
        _fail(exc)
    kind = hub.site.agencies[agency].kind
    hub.close()
    if kind != AgencyKind.COMPLIANCE:
        typer.echo(f"note: {agency!r} is a {kind.value} agency; only compliance agencies' "
                   "officers may sign in to the console", err=True)
    typer.echo(f"username={officer.username}\npassword={password}")


@officer_app.command("disable")
def officer_disable(
    username: Annotated[str, typer.Argument(help="the account to disable")],
) -> None:
    """Stop an account: it cannot sign in, and its open sessions end at their next request."""
    from hub.console.officers import Officers

    hub = bootstrap(_settings(), declare=False)
    try:
        Officers(hub.engine, hub.site).disable(username)
    except HubError as exc:
        _fail(exc)
    finally:
        hub.close()
    typer.echo(f"officer {username} disabled")


@officer_app.command("unlock")
def officer_unlock(
    username: Annotated[str, typer.Argument(help="the account locked by failed sign-ins")],
) -> None:
    """Lift a console account's lock after repeated failed sign-ins (ledgered, with who)."""
    import getpass

    from hub.console import login_limits

    hub = bootstrap(_settings(), declare=False)
    try:
        was_locked = login_limits.unlock(hub, username, f"cli:{getpass.getuser()}")
    except HubError as exc:
        _fail(exc)
    finally:
        hub.close()
    typer.echo(f"officer {username} unlocked" if was_locked
               else f"officer {username} was not locked; failed sign-ins reset")
