"""The one place where the hub is wired together. Nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import Engine

from adapters import fhir_ehr, json_partner
from adapters.fhir_task import TaskMapping, load_task_mapping
from adapters.http_push import Pusher
from adapters.niem_police import NiemAdapter, load_mappings
from consent.decisions import DisclosurePolicy
from consent.policy import ConsentPolicy
from consent.registry import Registry
from hub.auth import Clients
from hub.broker import PublisherPool, Topology, declare_topology
from hub.classification import Catalogue, load_catalogue
from hub.crypto import Hasher, Sealer
from hub.db.engine import database_answers, make_engine, upgrade
from hub.db.store import Store
from hub.errors import ConfigError
from hub.inbox import Inbox
from hub.intake import Intake
from hub.ledger import LedgerReader
from hub.ledger_chain import Chain, Signer
from hub.settings import Settings
from hub.site import Site, load_site
from hub.steps.deliver import DeliverStep
from hub.steps.ingest import IngestStep
from hub.steps.route import RouteStep
from hub.steps.runner import Handle, JobCodec, StepRunner


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    site: Site
    catalogue: Catalogue
    task_mapping: TaskMapping
    niem: NiemAdapter
    topology: Topology
    store: Store
    sealer: Sealer
    hasher: Hasher
    codec: JobCodec
    publishers: PublisherPool
    clients: Clients
    inbox: Inbox
    ledger: LedgerReader
    intake: Intake
    policy: DisclosurePolicy
    registry: Registry
    chain: Chain
    signer: Signer

    def handler(self, step: str) -> Handle:
        if step == "ingest":
            return IngestStep(self.site.site, self.store, self.hasher, self.registry)
        if step == "route":
            return RouteStep(self.site, self.store)
        if step == "deliver":
            return DeliverStep(
                self.site, self.store, self.catalogue, self.policy, self.hasher, self.inbox,
                Pusher(self.settings.push_timeout_seconds),
                lease=timedelta(seconds=self.settings.push_timeout_seconds + 5),
                renderers={"json": json_partner.render,
                           "fhir-r4": partial(fhir_ehr.render,
                                              validate=self.settings.validate_fhir_on_egress)},
            )
        raise ValueError(f"no step {step!r}; steps are ingest, route, deliver")

    def runner(self, step: str) -> StepRunner:
        return StepRunner(step, self.handler(step), self.codec, self.settings.amqp_url,
                          self.settings.prefetch, partial(database_answers, self.engine),
                          batch=min(self.settings.step_batch, self.settings.prefetch))

    def close(self) -> None:
        self.publishers.close()
        self.engine.dispose()


def bootstrap(settings: Settings | None = None, *, migrate: bool = True,
              declare: bool = True, endpoint_overrides: dict[str, str] | None = None) -> Hub:
    settings = settings or Settings()
    site = load_site(settings.site_file, endpoint_overrides)
    if settings.env == "production" and site.stand_ins:
        raise ConfigError(
            f"{settings.site_file}: agencies {', '.join(site.stand_ins)} have 'stand_in: true'; "
            "stand-in receivers are for development only: point their 'push' at the real "
            "systems")
    catalogue = load_catalogue(settings.mapping_file)
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    topology = Topology(settings.broker_prefix, tuple(settings.retry_delays_ms))
    if declare:
        declare_topology(settings.amqp_url, topology)
    sealer, hasher = Sealer(settings.payload_key), Hasher(settings.ledger_key)
    chain = Chain(settings.ledger_key)
    store = Store(engine, chain)
    codec = JobCodec(sealer, topology)
    publishers = PublisherPool(settings.amqp_url)
    registry = Registry(engine, sealer, site, store)
    return Hub(
        settings=settings, engine=engine, site=site, catalogue=catalogue, topology=topology,
        task_mapping=load_task_mapping(settings.task_mapping_file),
        niem=NiemAdapter(load_mappings(Path(settings.niem_mapping_dir)), site.timezone),
        store=store, sealer=sealer, hasher=hasher, codec=codec, publishers=publishers,
        clients=Clients(engine, settings.token_key, settings.token_ttl_seconds),
        inbox=Inbox(engine, sealer), ledger=LedgerReader(engine),
        intake=Intake(site, store, publishers, codec, sealer, hasher),
        policy=ConsentPolicy(registry), registry=registry, chain=chain,
        signer=Signer(settings.ledger_signing_key),
    )
