"""The console's HTTP plumbing: rendering, cookies, the signed-in officer, CSRF, refusals.

Every page needs a signed-in compliance officer (anyone else is sent to the login page);
every POST needs the session's CSRF token. Refusals become HTML pages here, never
problem+json or a stack trace, and every response is marked not to be cached or framed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
import structlog
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.templating import Jinja2Templates

from hub import ledger_events
from hub.api.deps import HubDep
from hub.bootstrap import Hub
from hub.console.officers import Officers, SignedIn
from hub.console.sessions import COOKIE, TTL_SECONDS, Session, Sessions
from hub.errors import (
    BadInput,
    Conflict,
    Forbidden,
    HubError,
    NotFound,
    TransientError,
    Unauthenticated,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
PREFIX = "/console"
VIEW_REASON = "compliance console page view"
log = structlog.get_logger("hub.console")


class LoginRequired(Exception):
    """No valid session: the officer is sent to the login page."""


class CsrfRefused(Exception):
    """A POST without this session's CSRF token."""


def _when(value: Any, tz: str, with_time: bool = True) -> str:
    """A date (ISO text or datetime) in the site's time zone, for people to read."""
    if value is None or value == "":
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:  # the hub stores UTC
        when = when.replace(tzinfo=timezone.utc)
    local = when.astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M %Z" if with_time else "%Y-%m-%d")


def _listed(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


@cache
def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["listed"] = _listed
    return Jinja2Templates(env=env)


def _secure(request: Request, hub: Hub) -> bool:
    return request.url.scheme == "https" or hub.settings.public_url.startswith("https:")


def set_cookie(response: Response, request: Request, hub: Hub, name: str, value: str,
               max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True,
                        samesite="strict", secure=_secure(request, hub))


def _harden(response: Response) -> None:
    """PHI pages are never cached, framed, or given away in a Referer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")


def safe_next(target: str | None) -> str:
    """Only a console path: a login must not become an open redirect."""
    if target and target.startswith(PREFIX) and not target.startswith("//") \
            and "\\" not in target and "://" not in target:
        return target
    return PREFIX


def _login_url(request: Request) -> str:
    target = request.url.path if request.method == "GET" else PREFIX
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return f"{PREFIX}/login?next={quote(target, safe='')}"


def render(request: Request, name: str, code: int = 200, **context: Any) -> Response:
    hub: Hub = request.app.state.hub
    ctx = getattr(request.state, "console", None)
    base = {"site": hub.site, "tz": hub.site.timezone,
            "officer": ctx.officer if ctx else None, "csrf": ctx.csrf if ctx else "",
            "flash": None, "active": None}
    return _templates().TemplateResponse(request, name, {**base, **context}, status_code=code)


_ERRORS: list[tuple[type[HubError], int, str]] = [
    (BadInput, 422, "The request has problems"), (Unauthenticated, 401, "Not signed in"),
    (Forbidden, 403, "Not allowed"), (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflicts with what the hub holds"),
    (TransientError, 503, "A service the hub needs is unavailable; try again shortly"),
]


def _error_page(request: Request, exc: HubError) -> Response:
    status, title = next(((s, t) for cls, s, t in _ERRORS if isinstance(exc, cls)),
                         (500, "The hub failed"))
    problems = exc.problems if isinstance(exc, BadInput) else []
    if isinstance(exc, BadInput):
        detail = exc.title
    elif status in (401, 403, 404, 409):  # the hub's own words, meant for the caller
        detail = str(exc)
    else:
        detail = "Nothing was changed. Try again later."
    log.info("console request refused", path=request.url.path, http_status=status,
             error_kind=type(exc).__name__)
    return render(request, "error.html", status, title=title, detail=detail,
                  problems=problems)


class ConsoleRoute(APIRoute):
    """Turns the console's refusals into pages (not problem+json) and hardens every response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handle(request)
            except LoginRequired:
                response = RedirectResponse(_login_url(request), status_code=303)
            except CsrfRefused:
                log.info("console request refused", path=request.url.path, http_status=403,
                         reason="missing or wrong CSRF token")
                response = render(request, "error.html", 403, title="Refused",
                                  detail="This form is missing its security token or it "
                                         "has expired. Go back, reload the page and try "
                                         "again.", problems=[])
            except HubError as exc:
                response = _error_page(request, exc)
            except RequestValidationError:
                response = render(request, "error.html", 422, title="The request has problems",
                                  detail="The address or form is not one this console "
                                         "understands.", problems=[])
            except Exception as exc:  # noqa: BLE001 (an HTML page instead of a stack trace)
                log.error("console page failed", path=request.url.path,
                          exc_type=type(exc).__name__)
                response = render(request, "error.html", 500, title="The hub failed",
                                  detail="Nothing was changed. Try again later.", problems=[])
            renewed = getattr(request.state, "console_cookie", None)
            if renewed:
                set_cookie(response, request, request.app.state.hub, COOKIE, renewed,
                           TTL_SECONDS)
            _harden(response)
            return response

        return console_handler


@dataclass
class Console:
    """One request's signed-in officer."""

    hub: Hub
    officer: SignedIn
    session: Session
    csrf: str
    form: FormData | None = None

    @property
    def actor(self) -> str:
        return f"console:{self.officer.username}"

    def viewed(self, request: Request, participant_id: str | None = None) -> None:
        """Ledger this page view (path without query values) before anything is shown."""
        ledger_events.record(self.hub.engine, self.hub.chain, site=self.hub.site.site,
                             kind=ledger_events.VIEWED, actor=self.actor,
                             subject=request.url.path, reason=VIEW_REASON,
                             participant_id=participant_id)


def signed_in(request: Request, hub: HubDep) -> Console:
    sessions = Sessions(hub.settings.token_key)
    session = sessions.read(request.cookies.get(COOKIE))
    officer = Officers(hub.engine, hub.site).current(session.officer_id) if session else None
    if session is None or officer is None:
        raise LoginRequired
    if sessions.due_for_renewal(session):
        request.state.console_cookie, session = sessions.issue(officer, session)
    console = Console(hub, officer, session, sessions.csrf_token(session))
    request.state.console = console
    return console


async def posting(request: Request,
                  console: Annotated[Console, Depends(signed_in)]) -> Console:
    form = await request.form()
    token = form.get("csrf_token")
    if not Sessions(console.hub.settings.token_key).csrf_ok(
            console.session, token if isinstance(token, str) else None):
        raise CsrfRefused
    console.form = form
    return console


Viewer = Annotated[Console, Depends(signed_in)]
Poster = Annotated[Console, Depends(posting)]


def form_value(console: Console, name: str) -> str:
    value = console.form.get(name, "") if console.form else ""
    return value.strip() if isinstance(value, str) else ""


def refusal_page(request: Request, status: int, detail: str) -> Response:
    """A form refused before any route ran (too large, or not a form): the console's error page."""
    title = "Too much was sent" if status == 413 else "Not a form this console reads"
    response = render(request, "error.html", status, title=title, detail=detail, problems=[])
    _harden(response)
    return response
