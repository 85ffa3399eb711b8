"""The console's pages under /console: thin routes that read `reports` and render templates.

Pages that show participant-level data are recorded in the ledger, as views, before the
response is built (`Console.viewed`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from hub import ledger_events
from hub.accounting import build_accounting
from hub.api.deps import HubDep
from hub.bootstrap import Hub
from hub.broker import STEPS
from hub.classification import DataClass
from hub.console import forms, login_limits, lookup, reports
from hub.console.officers import NotCompliance, Officers
from hub.console.sessions import COOKIE, LOGIN_COOKIE, TTL_SECONDS, Sessions
from hub.console.web import (
    PREFIX,
    TEMPLATES,
    Console,
    ConsoleRoute,
    CsrfRefused,
    Poster,
    Viewer,
    form_value,
    log,
    render,
    safe_next,
    set_cookie,
)
from hub.dlq import replay
from hub.errors import BadInput, Forbidden, NotFound, Problem, Unauthenticated
from hub.ledger_chain import make_checkpoint

ENTERED = re.compile(r"CourtOrder/[0-9a-f-]{36}/_history/[0-9]+")
# The same words whichever limit refused, and whether or not the username exists.
TOO_MANY = "Too many failed sign-ins. Wait {} seconds, then try again."
LOCKED = ("Too many failed sign-ins: this username is locked. A compliance officer can "
          "unlock it with `hub officer unlock`.")
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


# login --------------------------------------------------------------------------------------
@router.get("/console.css")
def stylesheet() -> Response:
    return PlainTextResponse((TEMPLATES / "console.css").read_text(), media_type="text/css")


def _login_page(request: Request, hub: Hub, status: int = 200, message: str | None = None,
                next_path: str = PREFIX, username: str = "") -> Response:
    sessions = Sessions(hub.settings.token_key)
    nonce = sessions.new_login_nonce()
    response = render(request, "login.html", status, message=message, next_path=next_path,
                      username=username, login_token=sessions.login_token(nonce))
    set_cookie(response, request, hub, LOGIN_COOKIE, nonce, 3600)
    return response


@router.get("/login")
def login_form(request: Request, hub: HubDep, next: str | None = None) -> Response:
    sessions = Sessions(hub.settings.token_key)
    session = sessions.read(request.cookies.get(COOKIE))
    if session and Officers(hub.engine, hub.site).current(session.officer_id):
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, hub, next_path=safe_next(next))


@router.post("/login")
def login(request: Request, hub: HubDep, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", login_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = PREFIX) -> Response:
    next_path, username = safe_next(next), username.strip()
    sessions = Sessions(hub.settings.token_key)
    if not sessions.login_ok(request.cookies.get(LOGIN_COOKIE), login_token):
        raise CsrfRefused
    try:
        attempt = login_limits.admit(hub, username, login_limits.client_address(request))
    except login_limits.TooManyAttempts as exc:
        log.warning("console login refused", reason="too many failed sign-ins",
                    http_status=429)
        response = _login_page(request, hub, 429, TOO_MANY.format(exc.retry_after),
                               next_path, username)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except login_limits.AccountLocked:
        log.warning("console login refused", reason="username locked", http_status=423)
        return _login_page(request, hub, 423, LOCKED, next_path, username)
    try:
        officer = Officers(hub.engine, hub.site).authenticate(username, password)
    except NotCompliance as exc:
        login_limits.succeeded(hub, attempt)  # the password was right
        log.warning("console login refused", agency=exc.agency, http_status=403,
                 reason="the account's agency is not a compliance office")
        return _login_page(request, hub, 403, str(exc), next_path, username)
    except Unauthenticated:
        login_limits.failed(hub, attempt, username)
        log.warning("console login refused", reason="unknown username or wrong password",
                 http_status=401)
        return _login_page(request, hub, 401, "Unknown username or wrong password.",
                           next_path, username)
    except Forbidden as exc:
        login_limits.succeeded(hub, attempt)  # the password was right
        log.warning("console login refused", reason="account of another site", http_status=403)
        return _login_page(request, hub, 403, str(exc), next_path, username)
    login_limits.succeeded(hub, attempt)
    token, _ = sessions.issue(officer)
    log.info("console login", agency=officer.agency)
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, request, hub, COOKIE, token, TTL_SECONDS)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
def logout(request: Request, console: Poster) -> Response:
    request.state.console_cookie = None  # a renewal due now must not outlive the logout
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# search -------------------------------------------------------------------------------------
@router.get("")
def search_page(request: Request, console: Viewer) -> Response:
    return render(request, "search.html", active="search", message=None, matches=[],
                  values={})


@router.post("/search")
def search(request: Request, console: Poster) -> Response:
    hub = console.hub
    by = form_value(console, "by")
    values = {k: form_value(console, k)
              for k in ("case_id", "family_name", "given_name", "date_of_birth")}
    if by == "case":
        if not values["case_id"]:
            raise BadInput("nothing to search for", [Problem("case_id", "give the case id")])
        case = lookup.by_case(hub, values["case_id"])
        if case.participant_id:
            return RedirectResponse(f"{PREFIX}/participants/{case.participant_id}",
                                    status_code=303)
        message = ("That case is known but not yet tied to a participant; try again in a "
                   "moment." if case.known else "No diversion case has that id at this site.")
        return render(request, "search.html", 404, active="search", message=message,
                      matches=[], values=values)
    problems = [Problem(k, "required") for k in ("family_name", "given_name", "date_of_birth")
                if not values[k]]
    born: date | None = None
    try:
        born = date.fromisoformat(values["date_of_birth"]) if values["date_of_birth"] else None
    except ValueError:
        problems.append(Problem("date_of_birth", "a date, YYYY-MM-DD"))
    if problems or born is None:
        raise BadInput("the search has problems", problems)
    matches = lookup.by_name_and_birth_date(hub, values["family_name"], values["given_name"],
                                            born)
    if len(matches) == 1:
        return RedirectResponse(f"{PREFIX}/participants/{matches[0].participant_id}",
                                status_code=303)
    for m in matches:  # several people: the list itself says who is in the program
        console.viewed(request, m.participant_id)
    return render(request, "search.html", 200 if matches else 404, active="search",
                  message=None if matches else "No participant has that name and date of "
                                               "birth.", matches=matches, values={})


# a participant's accounting -----------------------------------------------------------------
def _today(hub: Hub) -> date:
    return datetime.now(ZoneInfo(hub.site.timezone)).date()


@router.get("/participants/{participant_id}")
def participant(request: Request, console: Viewer, participant_id: str) -> Response:
    hub = console.hub
    if not lookup.exists(hub, participant_id):
        raise NotFound("no participant with this id at this site")
    first, last = request.query_params.get("from"), request.query_params.get("to")
    try:
        p = reports.period(hub.site.timezone, first, last, _today(hub))
    except BadInput as exc:
        return render(request, "participant.html", 422, active=None, pid=participant_id,
                      problems=exc.problems, period=None, first=first or "", last=last or "",
                      accounting=None, agencies=hub.site.agencies, query="")
    console.viewed(request, participant_id)
    accounting = build_accounting(hub, participant_id, p.start, p.end).to_json()
    query = f"from={p.first_day.isoformat()}&to={p.last_day.isoformat()}"
    return render(request, "participant.html", active=None, pid=participant_id, problems=[],
                  period=p, first=p.first_day.isoformat(), last=p.last_day.isoformat(),
                  accounting=accounting, agencies=hub.site.agencies,
                  query=query)


@router.get("/participants/{participant_id}/accounting.{fmt}")
def accounting_download(request: Request, console: Viewer, participant_id: str,
                        fmt: str) -> Response:
    hub = console.hub
    if fmt not in ("json", "csv", "fhir") or not lookup.exists(hub, participant_id):
        raise NotFound("no such accounting")
    p = reports.period(hub.site.timezone, request.query_params.get("from"),
                       request.query_params.get("to"), _today(hub))
    report = build_accounting(hub, participant_id, p.start, p.end)
    console.viewed(request, participant_id)
    name = f"accounting-{participant_id}-{p.first_day}-{p.last_day}"
    if fmt == "csv":
        return Response(report.to_csv(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"'})
    body = report.to_fhir() if fmt == "fhir" else report.to_json()
    return JSONResponse(orjson.loads(orjson.dumps(body)),
                        media_type="application/fhir+json" if fmt == "fhir"
                        else "application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}.json"'})


# withheld, parked, ledger -------------------------------------------------------------------
@router.get("/withheld")
def withheld(request: Request, console: Viewer) -> Response:
    rows = reports.withheld(console.hub)
    console.viewed(request)
    return render(request, "withheld.html", active="withheld", rows=rows,
                  limit=reports.WITHHELD_PAGE_SIZE, agencies=console.hub.site.agencies)


@router.get("/dlq")
def dlq(request: Request, console: Viewer) -> Response:
    items = reports.parked(console.hub)
    console.viewed(request)
    replayed = request.query_params.get("replayed")
    flash = f"Replayed {int(replayed)} message(s); each meets the consent gate again." \
        if replayed and replayed.isdigit() else None
    return render(request, "dlq.html", active="dlq", items=items, flash=flash,
                  agencies=console.hub.site.agencies)


@router.post("/dlq/replay")
def dlq_replay(console: Poster) -> Response:
    hub = console.hub
    step, message_id = form_value(console, "step"), form_value(console, "message_id")
    if step not in STEPS or not message_id:
        raise BadInput("what should be replayed?", [Problem("step", f"one of {', '.join(STEPS)}"),
                                                    Problem("message_id", "required")])

    def record(replayed_step: str, replayed_id: str) -> None:
        message = hub.store.get_message(replayed_id)
        ledger_events.record(hub.engine, hub.chain, site=hub.site.site,
                             kind=ledger_events.REPLAYED, actor=console.actor,
                             subject=replayed_step, reason="replayed from the parking queue "
                                                           "(compliance console)",
                             participant_id=message.participant_id if message else None,
                             message_id=replayed_id)

    count = replay(hub.settings.amqp_url, hub.topology, step, message_id, on_replay=record)
    log.info("console replay", step=step, message_id=message_id, count=count)
    return RedirectResponse(f"{PREFIX}/dlq?replayed={count}", status_code=303)


@router.get("/ledger")
def ledger(request: Request, console: Viewer) -> Response:
    signed = request.query_params.get("signed")
    flash = f"Checkpoint {int(signed)} signed." if signed and signed.isdigit() else None
    return render(request, "ledger.html", active="ledger",
                  ledger=reports.ledger_status(console.hub), flash=flash)


@router.post("/ledger/verify")
def verify_now(console: Poster) -> Response:
    verdict = reports.verify_and_record(console.hub, console.actor)
    log.info("console verification", status="ok" if verdict.ok else "failed",
             count=verdict.entries)
    return RedirectResponse(f"{PREFIX}/ledger", status_code=303)


@router.post("/ledger/checkpoint")
def checkpoint(console: Poster) -> Response:
    cp = make_checkpoint(console.hub.engine, console.hub.signer, "on-demand")
    log.info("console checkpoint", count=cp.upto_seq)
    return RedirectResponse(f"{PREFIX}/ledger?signed={cp.id}", status_code=303)


# court orders -------------------------------------------------------------------------------
def _court_orders_page(request: Request, console: Console, status: int = 200,
                       values: dict[str, Any] | None = None,
                       problems: list[Problem] | None = None, flash: str | None = None
                       ) -> Response:
    hub = console.hub
    orders = reports.court_orders(hub)
    console.viewed(request)
    blank = {k: [] if k in forms.LISTS else "" for k in forms.LABELS}
    values = values or {**blank, "other_purposes": "",
                        "entered_by": console.officer.display_name}
    by_field: dict[str, list[str]] = {}
    for p in problems or []:
        by_field.setdefault(forms.field_of(p.path), []).append(p.message)
    return render(request, "court_orders.html", status, active="court-orders", orders=orders,
                  values=values, problems=problems or [], by_field=by_field,
                  labels=forms.LABELS, field_of=forms.field_of, agencies=hub.site.agencies,
                  classes=[c.value for c in DataClass], purposes=forms.purposes_offered(hub),
                  flash=flash)


@router.get("/court-orders")
def court_orders(request: Request, console: Viewer) -> Response:
    entered = request.query_params.get("entered", "")
    flash = f"Court order entered: {entered}." if ENTERED.fullmatch(entered) else None
    return _court_orders_page(request, console, flash=flash)


@router.get("/court-orders/{order_id}")
def court_order(request: Request, console: Viewer, order_id: str) -> Response:
    """One court order, where an accounting's legal basis links to."""
    found = reports.court_orders(console.hub, order_id)
    if not found:
        raise NotFound("no court order with this id at this site")
    console.viewed(request, found[0].participant_id)
    return render(request, "court_order.html", active="court-orders", order=found[0])


@router.post("/court-orders")
def enter_court_order(request: Request, console: Poster) -> Response:
    assert console.form is not None
    values = forms.values_of(console.form, console.form.getlist)
    try:
        order = forms.court_order(console.hub, values)
        reg = console.hub.registry.add_court_order(order, console.actor)
    except BadInput as exc:
        return _court_orders_page(request, console, 422, values, exc.problems)
    log.info("console court order entered", count=1)
    ref = f"CourtOrder/{reg.consent_id}/_history/{reg.version}"
    return RedirectResponse(f"{PREFIX}/court-orders?entered={quote(ref, safe='')}",
                            status_code=303)
