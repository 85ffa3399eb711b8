"""Site configuration: the agencies of one LEAD site and where each message goes (data, not code)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.errors import ConfigError, json_path
from hub.messages import MessageType, Pathway
from hub.yaml_lines import line_of, load_with_lines

REFERRING_AGENCY = "$referring-agency"
LOOPBACK = frozenset({"127.0.0.1", "localhost"})
AgencyId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]


class AgencyKind(StrEnum):
    POLICE = "police"
    PROSECUTOR = "prosecutor"
    TREATMENT = "treatment"
    COMMUNITY = "community"
    COMPLIANCE = "compliance"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Delivery(Strict):
    """Push to an HTTP endpoint, or keep for the agency to pull from its inbox."""

    push: AnyHttpUrl | None = None
    inbox: bool = False
    # development only: `hub serve` runs a stand-in receiver at the push URL (refused when
    # HUB_ENV=production)
    stand_in: bool = False
    # pushes in flight to this agency at once, per deliver worker: a slow partner holds at
    # most this many of a batch's connections
    concurrency: int = Field(8, ge=1, le=64)

    @model_validator(mode="after")
    def _one_way(self) -> "Delivery":
        if (self.push is None) == (not self.inbox):
            raise ValueError("give exactly one of 'push: <url>' or 'inbox: true'")
        if self.stand_in and (self.push is None or self.push.host not in LOOPBACK
                              or self.push.port is None):
            raise ValueError("a stand-in receives on this machine: give 'push: "
                             "http://127.0.0.1:<port>/...'")
        return self


class Agency(Strict):
    name: str
    kind: AgencyKind
    address: str | None = None
    format: Literal["json", "fhir-r4"] = "json"
    part2_program: bool = False
    tpo_covered_entity: bool = False
    delivery: Delivery = Delivery(inbox=True)


class Target(Strict):
    to: str
    form: MessageType = Field(alias="as")
    purpose: str


class EvaluatorAgreement(Strict):
    """A written agreement under 42 CFR 2.53: lets an evaluator receive identifying keys."""

    reference: str
    expires: date


class Evaluator(Strict):
    name: str
    agreement: EvaluatorAgreement | None = None


class RouteWhen(Strict):
    pathway: list[Pathway] | None = None


class Route(Strict):
    message: MessageType
    when: RouteWhen = RouteWhen()
    deliver: list[Target]


# Which agency kinds may originate which message types.
SUBMITTERS: dict[MessageType, set[AgencyKind]] = {
    MessageType.DIVERSION_NOTICE: {AgencyKind.POLICE, AgencyKind.COMMUNITY},
    MessageType.CHARGE_HOLD: {AgencyKind.PROSECUTOR},
    MessageType.REFERRAL_STATUS: {AgencyKind.TREATMENT},
}


class Site(Strict):
    site: AgencyId
    name: str
    timezone: str = "UTC"  # local times from agency systems that omit an offset

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                             "America/Denver)") from None
        return value
    agencies: dict[AgencyId, Agency]
    routes: list[Route]
    evaluators: dict[AgencyId, Evaluator] = {}

    @property
    def stand_ins(self) -> dict[str, Agency]:
        """Agencies whose receiving system `hub serve` stands in for (development only)."""
        return {k: a for k, a in self.agencies.items() if a.delivery.stand_in}

    def routes_for(self, message_type: MessageType, pathway: str | None) -> list[Target]:
        targets: list[Target] = []
        for route in self.routes:
            if route.message != message_type:
                continue
            if route.when.pathway is not None and pathway not in route.when.pathway:
                continue
            targets.extend(route.deliver)
        return targets


def _where(loc: tuple[str | int, ...]) -> str:
    """A location as a path: agencies.da.delivery.push, routes[0].deliver[1].to."""
    return json_path(loc).removeprefix("$").removeprefix(".") or "(top)"


def load_site(file: str | Path, endpoint_overrides: dict[str, str] | None = None) -> Site:
    """Load and validate a site file; every error names the file, the line and the field.

    `endpoint_overrides` (agency -> URL) points agencies at other receivers, e.g. the demo's.
    """
    file = Path(file)
    data, lines = load_with_lines(file)
    if isinstance(data, dict):
        for agency, url in (endpoint_overrides or {}).items():
            if agency in data.get("agencies", {}):
                data["agencies"][agency]["delivery"] = {"push": url}
    problems = []
    try:
        site = Site.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = _where(loc)
            problems.append(f"{file}:{line_of(lines, loc)}: {where}: {err['msg']}")
    else:
        for r, route in enumerate(site.routes):
            for t, target in enumerate(route.deliver):
                if target.to != REFERRING_AGENCY and target.to not in site.agencies:
                    loc = ("routes", r, "deliver", t, "to")
                    problems.append(
                        f"{file}:{line_of(lines, loc)}: {_where(loc)}: no agency "
                        f"{target.to!r} (known: {', '.join(site.agencies)}, or {REFERRING_AGENCY})"
                    )
    if problems:
        raise ConfigError("site file is invalid:\n  " + "\n  ".join(problems))
    return site
