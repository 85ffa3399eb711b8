"""Benchmark (not a test): the accounting query and verification on a large PostgreSQL ledger.

Builds a fresh database, fills the ledger with N chained entries (default 10,000,000) over
3 years for 100,000 participants, then reports the accounting time for one patient and
the verification rate. Usage:

    .venv/bin/python bench/ledger_scale.py [--entries N] [--keep]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.accounting import build_accounting  # noqa: E402
from hub.bootstrap import bootstrap  # noqa: E402
from hub.ledger_chain import (  # noqa: E402
    CONTENT,  # noqa: E402
    make_checkpoint,
    verify,
)
from hub.settings import Settings  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
COLUMNS = (*CONTENT, "prev_hash", "entry_hash")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    name = f"hub_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        run(url, args.entries)
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(url: str, n: int) -> None:
    hub = bootstrap(Settings(database_url=url, broker_prefix="bench-unused"), declare=False)
    rng = random.Random(7)
    participants = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(100_000)]
    target = participants[0]
    start = datetime.now(timezone.utc) - timedelta(days=3 * 365)
    step = (3 * 365 * 86400) / n
    prev = "0" * 64
    t0 = time.perf_counter()
    fields = ("case_ref", "status", "occurred_at", "plan_summary")
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE ledger_entry DISABLE TRIGGER USER")  # bulk load only
        with cur.copy(f"COPY ledger_entry ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i in range(1, n + 1):
                # the target patient gets one delivery in every 50,000 entries (about 200)
                pid = target if i % 50_000 < 4 else participants[(i // 4) % len(participants)]
                content = (i, start + timedelta(seconds=i * step), "santa-fe", f"m{i // 4}",
                           f"d{i // 4}", 1, pid, "provider", "da", "LEAD-CJ-MONITORING",
                           "referral-status", fields[i % 4], "engagement", "ab" * 32,
                           "disclosed" if i % 4 != 3 else "withheld", "bench",
                           "Consent/x/_history/1", "canonical-v1", "2.32(a)(2) short")
                link = hub.chain.link_values(prev, content)
                copy.write_row((*content, prev, link))
                prev = link
                if i % 1_000_000 == 0:
                    print(f"  loaded {i:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
        cur.execute("UPDATE ledger_head SET seq = %s, entry_hash = %s WHERE id = 1", (n, prev))
        cur.execute("INSERT INTO delivery (id, message_id, site, recipient, form, purpose, "
                    "status, attempts, updated_at) SELECT DISTINCT delivery_id, message_id, "
                    "'santa-fe', 'da', 'referral-status', 'LEAD-CJ-MONITORING', 'delivered', 1, "
                    "now() FROM ledger_entry WHERE participant_id = %s", (target,))
        cur.execute("ALTER TABLE ledger_entry ENABLE TRIGGER USER")
        conn.commit()
        cur.execute("ANALYZE ledger_entry")
    print(f"loaded {n:,} chained entries in {time.perf_counter() - t0:.0f} s")
    make_checkpoint(hub.engine, hub.signer, "on-demand")

    timings = []
    for _ in range(5):
        t = time.perf_counter()
        report = build_accounting(hub, target, start, datetime.now(timezone.utc))
        timings.append((time.perf_counter() - t) * 1000)
    data = report.to_json()
    print(f"accounting for one patient over 3 years ({sum(d['count'] for d in data['disclosures'])}"
          f" disclosures) in {min(timings):.1f} ms (best of 5; median "
          f"{sorted(timings)[2]:.1f} ms) among {n:,} entries")
    t = time.perf_counter()
    verdict = verify(hub.engine, hub.chain, hub.signer.public_hex,
                     progress=lambda k: print(f"  verified {k:,}", flush=True)
                     if k % 1_000_000 == 0 else None, batch=20_000)
    elapsed = time.perf_counter() - t
    print(f"verification: {'ok' if verdict.ok else 'FAILED ' + verdict.problem}, "
          f"{verdict.entries:,} entries in {elapsed:.0f} s = {verdict.entries / elapsed:,.0f} "
          "entries/s")
    hub.close()


if __name__ == "__main__":
    main()
