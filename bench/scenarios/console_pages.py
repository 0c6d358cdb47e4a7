"""console_pages: every console page's response time on a large state database.

A SQLite state database with 1,000,000 deliveries (100,000 of them dead, with 20 reasons over
3 pipelines and 3 targets), 200,000 customers in ``entities`` and ``inbox``, a full delivery
log (100,000 lines), id map, memberships, 10,000 erasures and 1,000 runs; the schema (and the
console's indexes, migration 0007) made by syncer's migrations. The console is served by
uvicorn on a loopback port and each page is fetched over HTTP (warm: one fetch first, then
``reps`` timed ones; median). Target: every page under 300 ms. ``--quick``: a tenth of the sizes.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ..core import Check, NotRun, Row, Stopwatch, median
from ..scenario import Context, Metric, Scenario

NAME = "console_pages"
LIMIT_MS = 300.0
SENT = (
    '{"action":"upsert","fields":{"email":"someone@example.com","first_name":"Ana",'
    '"last_name":"Rossi","phone":"+393331234567","country":"IT"},"groups":["Newsletter"]}'
)
PIPES = (("newsletter", "nrs"), ("sms", "octo"), ("orders", "np6"))
REASONS = [
    f"gave up after 8 attempts: target answered 5{i:02d}: reason number {i}" for i in range(20)
]
PAGES = (
    "overview",
    "pipelines",
    "dead letters",
    "dead letters: one reason",
    "dead letters: pipeline+target",
    "runs",
    "search by e-mail",
    "search by phone",
    "record debugger",
    "erasures",
    "targets",
)
METRICS = tuple(Metric(f"{page} (ms)", "ms", (Check("value", "<=", LIMIT_MS),)) for page in PAGES)


def _doc(i: int) -> dict[str, Any]:
    return {
        "id": f"cust-{i:07d}",
        "externalId": f"CRM-{i:07d}",
        "base": {
            "firstName": "Name",
            "lastName": f"L{i}",
            "contacts": {"email": f"person{i}@example.com", "mobilePhone": f"+39347{i:07d}"},
            "address": {"country": "IT"},
        },
        "consents": {"marketing": {"automatic": {"email": {"status": True}}}},
        "tags": {"auto": [], "manual": ["vip"] if i % 7 == 0 else []},
    }


Table = tuple[str, tuple[str, ...], Iterator[tuple[Any, ...]]]


def tables(n_deliveries: int, n_dead: int, n_customers: int, now: float) -> list[Table]:
    """Every table's rows, as (table, columns, row tuples), the same for both databases."""
    rng = random.Random(5)
    payloads = [json.dumps(_doc(i)) for i in range(n_customers)]

    def cid(i: int) -> str:
        return f"cust-{i:07d}"

    entities_rows = (
        ("customer", cid(i), None, payloads[i], 1, "2026-01-01", False, "newsletter")
        for i in range(n_customers)
    )
    inbox_rows = (
        (
            "s",
            i // 500,
            i % 500,
            "stream",
            "customer",
            cid(i % n_customers),
            "UPDATE",
            payloads[i % n_customers],
            now,
        )
        for i in range(n_customers + n_customers // 4)
    )
    dead_every = n_deliveries // n_dead

    def delivery_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(n_deliveries):
            pipeline, target = PIPES[i % 3]
            c = cid((i // 3) % n_customers)
            if i % dead_every == 0:
                state, error = "dead", REASONS[rng.randrange(len(REASONS))]
            elif i % 97 == 1:
                state, error = "pending", None
            elif i % 211 == 2:
                state, error = "failed", "503"
            else:
                state, error = "done", None
            action = "delete" if i % 101 == 5 else "upsert"
            yield (
                pipeline,
                target,
                "customer",
                c,
                c,
                action,
                state,
                1,
                now - i * 0.01,
                0.0,
                0.0,
                error,
            )

    log_rows = (
        (
            now - rng.random() * 6 * 3600,
            "r",
            i,
            PIPES[i % 3][0],
            PIPES[i % 3][1],
            cid((i // 3) % n_customers),
            "updated" if i % 10 else "retry",
            None,
            SENT,  # what the call sent, as the engine logs it (about 200 bytes)
            str(i),
        )
        for i in range(100_000)
    )
    return [
        (
            "entities",
            (
                "entity_type",
                "entity_id",
                "customer_id",
                "payload",
                "version",
                "updated_at",
                "deleted",
                "pipelines",
            ),
            entities_rows,
        ),
        (
            "inbox",
            (
                "stream",
                "page_offset",
                "position",
                "origin",
                "entity_type",
                "entity_id",
                "operation",
                "payload",
                "received_at",
            ),
            inbox_rows,
        ),
        (
            "deliveries",
            (
                "pipeline",
                "target",
                "entity_type",
                "entity_id",
                "subject_id",
                "action",
                "state",
                "attempts",
                "due_at",
                "created_at",
                "updated_at",
                "last_error",
            ),
            delivery_rows(),
        ),
        (
            "delivery_log",
            (
                "at",
                "run_id",
                "delivery_id",
                "pipeline",
                "target",
                "entity_id",
                "outcome",
                "detail",
                "sent",
                "target_id",
            ),
            log_rows,
        ),
        (
            "id_map",
            ("target", "entity_id", "target_id", "target_key", "last_hash", "updated_at"),
            ((t, cid(i), str(i), None, "h", now) for i in range(n_customers) for _, t in PIPES[:2]),
        ),
        (
            "memberships",
            ("target", "entity_id", "pipeline", "name", "member_key"),
            (("nrs", cid(i), "newsletter", "Newsletter", None) for i in range(n_customers)),
        ),
        (
            "suppression",
            ("entity_id", "reason", "suppressed_at"),
            (
                (cid(i), "deleted", now - i)
                for i in range(0, n_customers, max(1, n_customers // 10_000))
            ),
        ),
        (
            "runs",
            ("run_id", "kind", "started_at", "finished_at", "status", "counts", "message"),
            (
                (
                    f"run-{i}",
                    "sync",
                    now - i * 60,
                    now - i * 60 + 5,
                    "ok",
                    '{"ingest_pages": 3}',
                    None,
                )
                for i in range(1000)
            ),
        ),
    ]


SEARCH = {"email": "PERSON4242@example.com", "phone": "+393470004242"}


def build(path: Path, n_deliveries: int, n_dead: int, n_customers: int) -> dict[str, Any]:
    """Create the SQLite state database (schema by syncer's migrations, rows by bulk
    inserts)."""
    from syncer.state.store import Store

    url = f"sqlite:///{path}"
    Store(url).close()  # the schema and the console's indexes, by the migrations
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    for table, columns, rows in tables(n_deliveries, n_dead, n_customers, time.time()):
        marks = ", ".join("?" * len(columns))
        db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
    db.commit()
    db.close()
    _read_search_keys(url)
    return {"url": url, **SEARCH}


def _read_search_keys(url: str) -> None:
    """What the daemon's search job has done on a running deployment: every inbox row read
    into the console's search keys (migration 0011)."""
    from syncer.state import search_ops
    from syncer.state.store import Store

    store = Store(url, migrate=False)
    try:
        search_ops.catch_up(store)
    finally:
        store.close()


def build_pg(url: str, n_deliveries: int, n_dead: int, n_customers: int) -> dict[str, Any]:
    """The same state database on PostgreSQL: migrations, then COPY; then VACUUM ANALYZE, as
    autovacuum would have done on a database that grew to this size (statistics for the
    planner, and the visibility map that lets index-only scans skip the table)."""
    import psycopg

    from syncer.state.store import Store

    Store(url).close()
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, columns, rows in tables(n_deliveries, n_dead, n_customers, time.time()):
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for r in rows:
                    copy.write_row(r)
    _read_search_keys(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {"url": url, **SEARCH}


def config(url: str) -> Any:
    from syncer.config.models import SyncerConfig

    target = {"base_url": "http://127.0.0.1:9/x"}  # never called
    return SyncerConfig.model_validate(
        {
            "version": 1,
            "state": {"url": url},
            "source": {
                "type": "contacthub",
                "base_url": "http://127.0.0.1:9/hub/v1",
                "workspace_id": "w",
                "node_id": "n",
                "token": "t",
            },
            "targets": {
                "nrs": {
                    "type": "360nrs",
                    "base_url": target["base_url"],
                    "username": "u",
                    "api_password": "p",
                },
                "octo": {
                    "type": "octopush",
                    "base_url": target["base_url"],
                    "api_login": "a",
                    "api_key": "k",
                },
                "np6": {
                    "type": "np6",
                    "base_url": target["base_url"],
                    "api_key": "k",
                    "import": {"binding": 1},
                },
            },
            "pipelines": [
                {
                    "name": "newsletter",
                    "target": "nrs",
                    "entity": "customer",
                    "when": {"consent": "marketing.automatic.email"},
                    "fields": {"email": "base.contacts.email"},
                    "groups": ["Newsletter"],
                },
                {
                    "name": "sms",
                    "target": "octo",
                    "entity": "customer",
                    "when": {"tags_any": ["vip"]},
                    "fields": {"phone_number": "base.contacts.mobilePhone"},
                    "list": "VIP",
                },
                {
                    "name": "orders",
                    "target": "np6",
                    "entity": "event",
                    "fields": {"1001": "customer.base.contacts.email"},
                },
            ],
        }
    )


def _sizes(ctx: Context) -> tuple[int, int, int]:
    scale = 10 if ctx.quick else 1
    return 1_000_000 // scale, 100_000 // scale, 200_000 // scale


def measure(ctx: Context, name: str, info: dict[str, Any], notes: str) -> list[Row]:
    """Serve the console on ``info["url"]`` and time every page (warm, median)."""
    from syncer.console import ConsoleSettings, console_app
    from syncer.sandbox.serve import ServedApp
    from syncer.state.store import Store

    reason = quote(REASONS[3][:200])
    urls = {
        "overview": "/",
        "pipelines": "/pipelines",
        "dead letters": "/dead-letters",
        "dead letters: one reason": f"/dead-letters?reason={reason}",
        "dead letters: pipeline+target": "/dead-letters?pipeline=sms&target=octo",
        "runs": "/runs",
        "search by e-mail": f"/records?q={quote(info['email'])}",
        "search by phone": f"/records?q={quote(info['phone'])}",
        "record debugger": "/records/cust-0004242",
        "erasures": "/erasures",
        "targets": "/targets",
    }
    store = Store(info["url"], migrate=False)
    cfg = config(info["url"])
    timings: dict[str, list[float]] = {}
    try:
        app = console_app(store, cfg, ConsoleSettings())
        with ServedApp(app) as served, httpx.Client(base_url=served.url, timeout=60) as http:
            for page, url in urls.items():
                first = http.get(url)
                if first.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {first.status_code}")
                samples = []
                for _ in range(max(3, ctx.reps)):
                    with Stopwatch() as one:
                        http.get(url).raise_for_status()
                    samples.append(one.seconds * 1000)
                timings[page] = samples
                ctx.log(f"{name}: {page}: {median(samples):.0f} ms")
    finally:
        store.close()
    rows = []
    for metric, page in zip(METRICS, PAGES, strict=True):
        row = metric.row(name, value=median(timings[page]), samples=timings[page])
        rows.append(row)
    rows[0].notes.append(notes)
    return rows


def run(ctx: Context) -> list[Row]:
    n_deliveries, n_dead, n_customers = _sizes(ctx)
    path = ctx.dir(NAME) / "state.db"
    ctx.log(f"{NAME}: building {n_deliveries:,} deliveries ({n_dead:,} dead)")
    with Stopwatch() as sw:
        info = build(path, n_deliveries, n_dead, n_customers)
    ctx.log(f"{NAME}: built in {sw.seconds:.0f} s ({path.stat().st_size / 1e6:,.0f} MB)")
    notes = (
        f"SQLite, {n_deliveries:,} deliveries ({n_dead:,} dead), {n_customers:,} customers; "
        f"schema and console indexes by the migrations, search keys read from the inbox; "
        f"served over loopback HTTP, warm"
    )
    return measure(ctx, NAME, info, notes)


NAME_PG = "console_pages_pg"
PG_ENV = ("SYNCER_BENCH_PG_URL", "SYNCER_TEST_PG_URL")  # the second: tools/with-postgres.sh


def run_pg(ctx: Context) -> list[Row]:
    """The same on PostgreSQL, in a database of its own on the server the environment names
    (created and dropped here)."""
    import os
    import uuid

    from sqlalchemy import create_engine, text

    admin_url = next((os.environ[k] for k in PG_ENV if os.environ.get(k)), None)
    if admin_url is None:
        raise NotRun(f"no PostgreSQL server: set {PG_ENV[0]} or run under tools/with-postgres.sh")
    n_deliveries, n_dead, n_customers = _sizes(ctx)
    name = f"bench_console_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        ctx.log(f"{NAME_PG}: building {n_deliveries:,} deliveries ({n_dead:,} dead)")
        with Stopwatch() as sw:
            info = build_pg(url, n_deliveries, n_dead, n_customers)
        ctx.log(f"{NAME_PG}: built in {sw.seconds:.0f} s")
        notes = (
            f"PostgreSQL, {n_deliveries:,} deliveries ({n_dead:,} dead), {n_customers:,} "
            "customers; schema and console indexes by the migrations (0007), VACUUM ANALYZEd; "
            "served over loopback HTTP, warm"
        )
        return measure(ctx, NAME_PG, info, notes)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


SCENARIO = Scenario(
    name=NAME,
    description="console page times on 1M deliveries / 100k dead letters (target < 300 ms)",
    metrics=METRICS,
    run=run,
    budget_s=240,
)

SCENARIO_PG = Scenario(
    name=NAME_PG,
    description="console_pages on PostgreSQL (needs a server: tools/with-postgres.sh)",
    metrics=METRICS,
    run=run_pg,
    budget_s=300,
)
