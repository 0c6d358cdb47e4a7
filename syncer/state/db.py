"""Opening the state database: engine settings, migrations and the schema-version check.

SQLite runs in WAL mode with a busy timeout (readers never block the writer, a second writer
waits instead of failing at once) and ``synchronous=NORMAL``: a committed transaction survives a
process crash (SIGKILL), which is the failure syncer must survive; a power cut may lose the last
transactions, which costs a re-send, never a skip, because offsets and outcomes move together.
PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ..errors import StateError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PAGE_SIZE = 8192
READ_ONLY = "syncer_read_only"  # execution option: this connection only reads


# query parameters of a URL that hold a secret (libpq: password, sslpassword)
_SECRET_PARAM = re.compile(r"password|secret|token", re.IGNORECASE)


def redacted_url(url: str) -> str:
    """``url`` fit for a message: the user-info password and secret query parameters
    (``?password=``) replaced by ``***``; host, port, database and user kept."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "(unparseable URL, not shown)"
    shown = parsed.render_as_string(hide_password=True)
    base, sep, query = shown.partition("?")
    if not sep:
        return shown
    pairs = []
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        pairs.append(f"{key}{eq}***" if eq and _SECRET_PARAM.search(unquote(key)) else pair)
    return f"{base}?{'&'.join(pairs)}"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_state_engine(url: str) -> Engine:
    """An Engine for ``url`` with the settings above; the database is not touched yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            # pooled: opening a SQLite connection (and its pragmas) costs more than a page write
            pool_size=8,
            max_overflow=24,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is off so BEGIN IMMEDIATE below takes the lock.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # 8 KiB pages for a new database (no effect on an existing one): ingest's inserts
            # and commits cost 15-20 % less than with 4 KiB; more would make every randomly
            # placed row a delivery outcome updates cost a bigger page in the WAL.
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: big pages of inserts stay in memory
            cur.execute("PRAGMA foreign_keys=ON")
            # deleted content is overwritten with zeros: a scrubbed customer's e-mail must not
            # stay readable in freed pages of the file (issue 14)
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # Writers take the write lock at BEGIN, so two writers queue instead of
            # deadlocking; readers (Store.reader) take none, so a long write never blocks them.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)


def db_unavailable(exc: BaseException) -> str | None:
    """One line saying why, when ``exc`` means the state database cannot be reached or used
    right now (server down or restarting, connection lost, SQLite locked beyond the busy
    timeout); None for any other error. Never the SQL, its parameters or the URL."""
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    names = {cls.__name__ for cls in type(orig).__mro__}
    first = (str(orig).strip().splitlines() or [type(exc).__name__])[0]
    if exc.connection_invalidated:
        return first
    if type(orig).__module__.startswith("psycopg"):
        return first if names & {"OperationalError", "InterfaceError"} else None
    if "OperationalError" in names and _SQLITE_UNAVAILABLE.search(first):
        return first  # sqlite3: locked or busy past the busy timeout, file unreachable
    return None


_SQLITE_UNAVAILABLE = re.compile(r"locked|busy|unable to open|disk I/O", re.IGNORECASE)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Refuse a database written by a newer syncer (a revision this code does not know)."""
    current = current_revision(engine)
    if current is None:
        return
    script = ScriptDirectory.from_config(_alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise StateError(
            f"the state database is at schema revision {current!r}, which this syncer does not "
            f"know (newest known: {head_revision()!r}); it was written by a newer syncer: "
            "upgrade syncer instead of downgrading the database"
        )


MIGRATION_LOCK = 0x5359_4E43  # "SYNC": the advisory lock every migrating process takes


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent). On PostgreSQL the migration runs
    under a transaction-level advisory lock: pods of a rolling update all running ``db
    upgrade`` take turns, and the later ones find the schema current (SQLite's BEGIN
    IMMEDIATE serialises them already)."""
    check_schema(engine)
    cfg = _alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
