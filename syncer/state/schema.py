"""The state database: every table syncer persists, in SQLAlchemy Core.

Times are stored as float seconds since the epoch (portable across SQLite and PostgreSQL, no
time-zone surprises); offsets as 64-bit integers; payloads as JSON text. The Alembic migrations
under ``migrations/versions`` create exactly these tables; a test checks they agree.

Tables, by the step of the flow that writes them:

* ingest: ``checkpoints`` (offset + polling lease per stream), ``inbox`` (every update as
  received), ``entities`` (newest known version of each customer/event, what mapping reads at
  send time, and in ``pipelines`` which pipelines select each customer now), ``suppression``
  (deleted customers that must never be re-created), ``erasures`` (the erasure ledger: one
  row per forgotten customer), ``deliveries``, ``backfill_slices``.
* delivery: ``deliveries`` (state machine pending -> in_flight -> done | failed -> dead),
  ``claims`` (which worker holds which customer of a target, fenced by a token),
  ``id_map`` (Contacthub id -> target id + hash of the last accepted payload + whether syncer
  created the record), ``memberships``
  (groups/lists a customer is in, per pipeline), ``target_kv`` (per-target caches: group ids,
  lists created, import ids), ``target_jobs`` (multi-step target work in flight, e.g. NP6 imports),
  ``delivery_log`` (bounded history), ``erasure_acks`` (per target, when a forgotten
  customer's ``delete`` delivery was done: the erasure's receipt).
* operation: ``runs``, ``heartbeats``; the console's search: ``search_keys``, ``search_cursor``
  (filled behind the stream from the inbox).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)

metadata = MetaData()

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("stream", String(200), primary_key=True),
    Column("offset", BigInteger, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
    Column("lease_owner", String(200)),
    Column("lease_expires_at", Float),
    Column("stream_last_offset", BigInteger),
    Column("stream_checked_at", Float),
    Column("backfill_offset", BigInteger),
    Column("backfill_state", String(20)),
)

inbox = Table(
    "inbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("stream", String(200), nullable=False),
    Column("page_offset", BigInteger, nullable=False),
    Column("position", Integer, nullable=False),
    Column("origin", String(10), nullable=False),
    Column("entity_type", String(10), nullable=False),
    Column("entity_id", String(100), nullable=False),
    Column("operation", String(10), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", Float, nullable=False),
)
# by entity only for the console's record debugger (ix_inbox_entity, below): each index costs
# every update
Index("ix_inbox_page", inbox.c.stream, inbox.c.page_offset, inbox.c.position)

entities = Table(
    "entities",
    metadata,
    Column("entity_type", String(10), primary_key=True),
    Column("entity_id", String(100), primary_key=True),
    Column("customer_id", String(100)),
    Column("payload", Text, nullable=False),
    Column("version", BigInteger, nullable=False, default=0),
    Column("updated_at", String(40), nullable=False, default=""),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("inbox_id", BigInteger),
    # customers: the pipelines selecting it now, space-separated slugs ("" or NULL: none)
    Column("pipelines", Text),
)

suppression = Table(
    "suppression",
    metadata,
    Column("entity_id", String(100), primary_key=True),
    Column("reason", String(200), nullable=False),
    Column("suppressed_at", Float, nullable=False),
)

# The erasure ledger (see :mod:`.erasure_ops`): one row per customer deleted in Contacthub,
# written with its suppression row; ``scrubbed_at`` is when its personal data left the state's
# rows, ``compacted_at`` when the SQLite file was rewritten after that (its bytes left the disk).
erasures = Table(
    "erasures",
    metadata,
    Column("entity_id", String(100), primary_key=True),
    Column("reason", String(200), nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("scrubbed_at", Float),
    Column("compacted_at", Float),
)
# the scrub's and the pending count's lookup (NULL: not scrubbed yet), and the ledger's pages
Index("ix_erasures_scrubbed", erasures.c.scrubbed_at)
# the compaction's lookup (NULL: scrubbed rows whose bytes may still be in the file)
Index("ix_erasures_compacted", erasures.c.compacted_at)
Index("ix_erasures_requested", erasures.c.requested_at)

# Per (customer, pipeline, target): the delete delivery the target acknowledged (state done).
# Kept when the delivery row itself is pruned: this is the receipt.
erasure_acks = Table(
    "erasure_acks",
    metadata,
    Column("entity_id", String(100), primary_key=True),
    Column("pipeline", String(100), primary_key=True),
    Column("target", String(100), primary_key=True),
    Column("delivery_id", BigInteger),
    Column("outcome", String(20), nullable=False),
    Column("acked_at", Float, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("pipeline", String(100), nullable=False),
    Column("target", String(100), nullable=False),
    Column("entity_type", String(10), nullable=False),
    Column("entity_id", String(100), nullable=False),
    Column("action", String(10), nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("claimed_by", String(200)),
    Column("claim_expires_at", Float),
    Column("last_error", Text),
    # the customer the row is about (itself, or an event's customer): what claims exclude on
    Column("subject_id", String(100)),
    Column("claim_token", String(64)),  # the claim (see `claims`) that owns an in-flight row
)
Index("ix_deliveries_claim", deliveries.c.target, deliveries.c.state, deliveries.c.due_at)
# by customer: ingest's per-page lookups of open rows and the claim's rows of a claimed
# customer (one index serves both; each extra index slows every insert)
Index("ix_deliveries_subject_state", deliveries.c.subject_id, deliveries.c.state)

# At most one claim per (target, customer) anywhere: the primary key is what makes two workers
# (threads or replicas) unable to hold one customer at once. ``token`` fences outcomes: only
# the holder of the live token records them. ``expires_at`` is on the database's clock.
claims = Table(
    "claims",
    metadata,
    Column("target", String(100), primary_key=True),
    Column("subject_id", String(100), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("token", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)

id_map = Table(
    "id_map",
    metadata,
    Column("target", String(100), primary_key=True),
    Column("entity_id", String(100), primary_key=True),
    Column("target_id", String(200)),
    Column("target_key", String(300)),
    Column("last_hash", String(64)),
    Column("updated_at", Float, nullable=False),
    # provenance: "syncer" (syncer created the record), "found" (it was there before syncer
    # wrote to it), NULL (unknown: written before revision 0005); NULL counts as "found"
    Column("origin", String(10)),
)

# by contact: which customers resolved to one contact of a target (syncer.state.conflicts)
Index("ix_id_map_target_id", id_map.c.target, id_map.c.target_id)

memberships = Table(
    "memberships",
    metadata,
    Column("target", String(100), primary_key=True),
    Column("entity_id", String(100), primary_key=True),
    Column("pipeline", String(100), primary_key=True),
    Column("name", String(300), primary_key=True),
    Column("member_key", String(300)),
)

target_kv = Table(
    "target_kv",
    metadata,
    Column("target", String(100), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("value", Text, nullable=False),
)

target_jobs = Table(
    "target_jobs",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("target", String(100), nullable=False),
    Column("pipeline", String(100), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("phase", String(30), nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_target_jobs_open", target_jobs.c.target, target_jobs.c.phase)

backfill_slices = Table(
    "backfill_slices",
    metadata,
    Column("stream", String(200), primary_key=True),
    Column("entity_type", String(10), primary_key=True),
    Column("lo", String(40), primary_key=True),
    Column("hi", String(40), nullable=False),
    Column("state", String(10), nullable=False),
    Column("count", Integer, nullable=False, default=0),
)

runs = Table(
    "runs",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", String(20), nullable=False),
    Column("counts", Text, nullable=False, default="{}"),
    Column("message", Text),
)

delivery_log = Table(
    "delivery_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", Float, nullable=False),
    Column("run_id", String(64)),
    Column("delivery_id", BigInteger),
    Column("pipeline", String(100), nullable=False),
    Column("target", String(100), nullable=False),
    Column("entity_id", String(100), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("detail", Text),
    Column("sent", Text),  # the change handed to the target (JSON; never a credential)
    Column("target_id", String(200)),  # the record it landed on, as the target answered
)

heartbeats = Table(
    "heartbeats",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Column("interval", Float, nullable=False),
)


# The console's indexes (migration 0007; what each serves: bench/console_indexes.md). The
# partial ones spell their condition as the console's queries do: SQLite uses a partial or an
# expression index only for a query with the same literal.
DEAD_ONLY = text("state = 'dead'")
DELETES_ONLY = text("action = 'delete'")
Index("ix_deliveries_pipeline_state", deliveries.c.pipeline, deliveries.c.state)
Index(
    "ix_deliveries_dead",
    deliveries.c.pipeline,
    deliveries.c.target,
    func.substr(deliveries.c.last_error, 1, 200),
    sqlite_where=DEAD_ONLY,
    postgresql_where=DEAD_ONLY,
    postgresql_include=["last_error"],  # an index-only scan there (see migration 0007)
)
Index(
    "ix_deliveries_deletes",
    deliveries.c.state,
    deliveries.c.subject_id,
    sqlite_where=DELETES_ONLY,
    postgresql_where=DELETES_ONLY,
)
Index("ix_inbox_entity", inbox.c.entity_id)
Index("ix_delivery_log_entity", delivery_log.c.entity_id)
Index("ix_delivery_log_target_at", delivery_log.c.target, delivery_log.c.at, delivery_log.c.outcome)
Index("ix_suppression_at", suppression.c.suppressed_at)


# The console's customer search: one row per (key, customer), a key being ``email:<lowered>``,
# ``mobilePhone:...``, ``phone:...`` or ``externalId:...`` of any version the stream brought.
# Filled behind the stream (:mod:`.search_ops`), not in ingest's transaction: each entity
# index costs every ingest write. ``search_cursor`` is the last inbox row it read.
search_keys = Table(
    "search_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("entity_id", String(100), primary_key=True),
)
# the scrub's delete of a forgotten customer's keys
Index("ix_search_keys_entity", search_keys.c.entity_id)
search_cursor = Table(
    "search_cursor",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("inbox_id", BigInteger, nullable=False),
)
