"""``syncer status``: the data (:func:`collect_status`, also the ``--json`` document) and its
rendering as rich tables on a terminal or plain lines in a pipe.

One vocabulary everywhere (status, ``dlq list``, ``plan``, the run summaries): **invalid** =
rejected before sending (the mapping or the target's own validation), **dead** = refused by
the target. Both are stored as dead deliveries; the delivery log tells them apart.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection

from ..errors import SyncerError
from ..source.contacthub import DEFAULT_SOURCE, ContacthubClient, parse_instant
from ..state.delivery_ops import DISCARDED
from ..state.store import Store

__all__ = [
    "QUEUE_STATES",
    "collect_status",
    "oldest_unread_at",
    "plain_status",
    "render_status",
    "stream_label",
]

# discarded: dead letters an operator closed in the console without sending (not dead letters)
QUEUE_STATES = ("pending", "in_flight", "failed", "done", "invalid", "dead", DISCARDED)
OPEN_STATES = ("pending", "in_flight", "failed")


def invalid_ids(conn: Connection, pipeline: str | None = None) -> set[int]:
    """Ids of dead deliveries whose last logged outcome is ``invalid`` (rejected before
    sending). The delivery log is bounded: a row whose log was pruned counts as dead."""
    sql = (
        "SELECT l.delivery_id FROM delivery_log l JOIN deliveries d ON d.id = l.delivery_id "
        "WHERE d.state = 'dead' AND l.outcome = 'invalid' AND l.id = "
        "(SELECT MAX(m.id) FROM delivery_log m WHERE m.delivery_id = l.delivery_id)"
    )
    params: tuple[Any, ...] = ()
    if pipeline is not None:
        sql += " AND d.pipeline = ?"
        params = (pipeline,)
    return {int(r[0]) for r in conn.exec_driver_sql(_p(conn, sql), params)}


def _p(conn: Connection, sql: str) -> str:
    """``?`` placeholders for the driver (SQLite's qmark, psycopg's %s)."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def queues(conn: Connection, now: float) -> list[dict[str, Any]]:
    """One entry per pipeline and target: the count of every state, the oldest open row's
    due time (and how overdue it is)."""
    rows = conn.exec_driver_sql(
        "SELECT pipeline, target, state, COUNT(*), MIN(due_at) FROM deliveries "
        "GROUP BY pipeline, target, state"
    ).all()
    invalid = conn.exec_driver_sql(
        "SELECT d.pipeline, d.target, COUNT(*) FROM deliveries d WHERE d.state = 'dead' AND "
        "d.id IN (SELECT l.delivery_id FROM delivery_log l WHERE l.outcome = 'invalid' AND "
        "l.id = (SELECT MAX(m.id) FROM delivery_log m WHERE m.delivery_id = l.delivery_id)) "
        "GROUP BY d.pipeline, d.target"
    ).all()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for pipeline, target, state, count, due in rows:
        entry = out.setdefault((pipeline, target), _empty_queue(pipeline, target))
        entry[str(state)] = entry.get(str(state), 0) + int(count)
        if state in OPEN_STATES and due is not None:
            oldest = entry["oldest_due_at"]
            entry["oldest_due_at"] = due if oldest is None else min(oldest, due)
    for pipeline, target, count in invalid:
        entry = out[(pipeline, target)]
        entry["invalid"] = int(count)
        entry["dead"] -= int(count)
    for entry in out.values():
        due = entry["oldest_due_at"]
        entry["overdue_seconds"] = None if due is None else round(max(0.0, now - due), 1)
        entry["open"] = sum(entry[s] for s in OPEN_STATES)
    return [out[k] for k in sorted(out)]


def _empty_queue(pipeline: str, target: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"pipeline": pipeline, "target": target}
    entry.update(dict.fromkeys(QUEUE_STATES, 0))
    entry["oldest_due_at"] = None
    return entry


def erasures_pending(conn: Connection) -> int:
    """Deleted customers whose delete is not yet settled at every target."""
    return int(
        conn.exec_driver_sql(
            "SELECT COUNT(DISTINCT entity_id) FROM deliveries WHERE action = 'delete' AND "
            "state IN ('pending', 'in_flight', 'failed')"
        ).scalar_one()
    )


def run_entry(run: dict[str, Any]) -> dict[str, Any]:
    """A ``runs`` row in the status vocabulary: per target done / invalid / dead / open."""
    counts = run.get("counts") or {}
    targets = {}
    for name, stats in sorted((counts.get("targets") or {}).items()):
        targets[name] = {
            "done": stats.get("done", 0),
            "invalid": stats.get("invalid", 0),
            "dead": stats.get("dead", 0),
            "open": stats.get("waiting", 0),
            "stopped": stats.get("error"),
        }
    started, finished = run.get("started_at"), run.get("finished_at")
    entry: dict[str, Any] = {
        "run_id": run["run_id"],
        "kind": run["kind"],
        "status": run["status"],
        "started_at": started,
        "finished_at": finished,
        "duration_seconds": None if not (started and finished) else round(finished - started, 1),
        "targets": targets,
    }
    if "ingest" in counts:
        entry["ingest"] = {k: counts["ingest"].get(k) for k in ("updates", "offset")}
    if "backfill" in counts:
        entry["backfill"] = counts["backfill"]
    if run.get("message"):
        entry["message"] = run["message"]
    return entry


# updates read to find the oldest unread change's time: a DELETE may carry only the id
# (DIGEST.md §1.2, the sandbox's delete_payload=id_only), so the first dated one is taken
AGE_PROBE_SIZE = 20


def _change_time(update: dict[str, Any]) -> float | None:
    """When the change of one stream update happened: its entity's ``updatedAt`` (a customer
    or an event as it was then; DIGEST.md §1.3), else ``registeredAt``; None without either."""
    entity = update.get("entity")
    data = entity.get("data") if isinstance(entity, dict) else None
    if not isinstance(data, dict):
        return None
    for key in ("updatedAt", "registeredAt"):
        moment = parse_instant(data.get(key))
        if moment is not None:
            return moment.timestamp()
    return None


def oldest_unread_at(client: ContacthubClient, offset: int) -> float | None:
    """The time of the oldest change after ``offset`` that carries one (one read-only call:
    the stream page right after the committed offset, nothing ingested); None when
    Contacthub does not answer or no update of the page is dated."""
    try:
        page = client.updates(offset, AGE_PROBE_SIZE)
    except SyncerError:
        return None  # status must work during an outage: the age is then unknown
    for update in page.updates:
        stamp = _change_time(update)
        if stamp is not None:
            return stamp
    return None


def _lag_seconds(lag: int | None, oldest: float | None, now: float) -> float | None:
    """How far behind ingest is in time: the age of the oldest unread change (0 when caught
    up; None when the stream's end or that change's time is unknown)."""
    if lag is None:
        return None
    if lag == 0:
        return 0.0
    return None if oldest is None else round(max(0.0, now - oldest), 1)


def stream_status(
    store: Store,
    source: str,
    stream: str,
    last_offset: int | None,
    oldest_unread: float | None = None,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """One source node's stream: committed offset, the stream's end (``last_offset`` when
    known, else the recorded one), lag in updates and in seconds (``oldest_unread``: the
    time of the oldest unread change, when read), lease and backfill (state and slices)."""
    now = time.time() if now is None else now
    cp = store.checkpoint(stream)
    offset = cp.offset if cp else 0
    live = last_offset is not None
    if last_offset is None and cp is not None:
        last_offset = cp.stream_last_offset
    lag = None if last_offset is None else max(0, last_offset - offset)
    with store.reader() as conn:
        slices = conn.exec_driver_sql(
            _p(
                conn,
                "SELECT entity_type, state, COUNT(*) FROM backfill_slices WHERE stream = ? "
                "GROUP BY entity_type, state",
            ),
            (stream,),
        ).all()
    backfill: dict[str, Any] = {"state": cp.backfill_state if cp else None, "slices": {}}
    for entity_type, state, count in slices:
        backfill["slices"].setdefault(str(entity_type), {})[str(state)] = int(count)
    return {
        "source": source,
        "stream": stream,
        "offset": offset,
        "last_offset": last_offset,
        "lag": lag,
        # only from what Contacthub answered now: a recorded end says nothing of the age
        "lag_seconds": _lag_seconds(lag, oldest_unread, now) if live else None,
        "oldest_unread_at": oldest_unread if live and lag else None,
        "checked_at": cp.stream_checked_at if cp else None,
        "lease_owner": cp.lease_owner if cp else None,
        "lease_expires_at": cp.lease_expires_at if cp else None,
        "backfill": backfill,
    }


def collect_status(
    store: Store,
    streams: list[tuple[str, str, int | None, float | None]],
    pipelines: dict[str, str],
    *,
    runs: int = 10,
) -> dict[str, Any]:
    """The ``syncer status`` document. ``streams``: (source, stream, the stream's end when
    known, the time of its oldest unread change when known) of every source node, in config
    order; ``pipelines``: name -> target of the config (a pipeline with nothing queued yet is
    listed too)."""
    now = time.time()
    per_stream = [stream_status(store, *s, now=now) for s in streams]
    with store.reader() as conn:
        queue = queues(conn, now)
        erasures = erasures_pending(conn)
    seen = {q["pipeline"] for q in queue}
    queue += [
        _empty_queue(p, t) | {"overdue_seconds": None, "open": 0}
        for p, t in sorted(pipelines.items())
        if p not in seen
    ]
    return {
        "generated_at": now,
        "source": per_stream[0],  # the first stream (the only one of the single source form)
        "streams": per_stream,  # every source node's stream
        "queues": queue,
        "totals": {s: sum(q[s] for q in queue) for s in (*QUEUE_STATES, "open")},
        "erasures_pending": erasures,
        "runs": [run_entry(r) for r in store.last_runs(runs)],
    }


def stream_label(src: dict[str, Any]) -> str:
    """``<ws>/<node>`` of the single source form; ``<source> (<stream>)`` of named ones."""
    name = src.get("source", DEFAULT_SOURCE)
    return src["stream"] if name == DEFAULT_SOURCE else f"{name} ({src['stream']})"


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + "Z"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _targets(run: dict[str, Any]) -> str:
    parts = []
    for name, t in run["targets"].items():
        text = f"{name} {t['done']} done"
        if t["invalid"]:
            text += f", {t['invalid']} invalid"
        if t["dead"]:
            text += f", {t['dead']} dead"
        if t["open"]:
            text += f", {t['open']} open"
        if t["stopped"]:
            text += " (stopped)"
        parts.append(text)
    if "backfill" in run:
        b = run["backfill"]
        parts.append(f"scanned {b.get('customers', 0)} customers, {b.get('events', 0)} events")
    return "; ".join(parts) or "-"


def render_status(data: dict[str, Any], console: Console) -> None:
    source = Table(title="Source", title_justify="left")
    columns = ("source", "stream", "committed offset", "stream last offset", "lag", "behind")
    for column in (*columns, "lease", "backfill"):
        source.add_column(column)
    for src in data.get("streams", [data["source"]]):
        source.add_row(
            str(src.get("source", DEFAULT_SOURCE)),
            str(src["stream"]),
            str(src["offset"]),
            "-" if src["last_offset"] is None else str(src["last_offset"]),
            "-" if src["lag"] is None else str(src["lag"]),
            _age(src.get("lag_seconds")),
            str(src["lease_owner"] or "free"),
            str(src["backfill"]["state"] or "none"),
        )
    console.print(source)

    queue = Table(title="Queue by state", title_justify="left")
    queue.add_column("pipeline")
    queue.add_column("target")
    for state in QUEUE_STATES:
        queue.add_column(state, justify="right")
    queue.add_column("oldest due", justify="right")
    for q in data["queues"]:
        cells = [str(q.get(s, 0)) for s in QUEUE_STATES]
        cells = [
            f"[red]{v}[/]" if s in ("dead", "invalid") and v != "0" else v
            for s, v in zip(QUEUE_STATES, cells, strict=True)
        ]
        due = "-" if q["oldest_due_at"] is None else f"{_age(q['overdue_seconds'])} ago"
        queue.add_row(q["pipeline"], q["target"], *cells, due)
    console.print(queue)
    console.print(f"Erasures pending: {data['erasures_pending']}")

    runs = Table(title="Recent runs", title_justify="left")
    for column in ("run", "kind", "status", "started", "duration", "per target"):
        runs.add_column(column)
    for r in data["runs"]:
        duration = "-" if r["duration_seconds"] is None else _age(r["duration_seconds"])
        runs.add_row(
            r["run_id"], r["kind"], r["status"], _when(r["started_at"]), duration, _targets(r)
        )
    console.print(runs)


def _lag_text(src: dict[str, Any]) -> str:
    """``lag 12, 3m behind`` (updates, then the age of the oldest unread change)."""
    if src["lag"] is None:
        return "lag -"
    seconds = src.get("lag_seconds")
    return f"lag {src['lag']}, {'age unknown' if seconds is None else _age(seconds) + ' behind'}"


def plain_status(data: dict[str, Any]) -> list[str]:
    """The same content as lines, for a pipe (no tables, no colour)."""
    lines = [
        f"source {stream_label(src)}: offset {src['offset']}, stream last "
        f"{src['last_offset'] if src['last_offset'] is not None else '-'}, {_lag_text(src)}, "
        f"lease {src['lease_owner'] or 'free'}, backfill {src['backfill']['state'] or 'none'}"
        for src in data.get("streams", [data["source"]])
    ]
    for q in data["queues"]:
        states = ", ".join(f"{s} {q.get(s, 0)}" for s in QUEUE_STATES)
        due = "" if q["oldest_due_at"] is None else f", oldest due {_age(q['overdue_seconds'])} ago"
        lines.append(f"queue {q['pipeline']} -> {q['target']}: {states}{due}")
    lines.append(f"erasures pending: {data['erasures_pending']}")
    for r in data["runs"]:
        duration = "-" if r["duration_seconds"] is None else _age(r["duration_seconds"])
        lines.append(
            f"run {r['run_id']} ({r['kind']}) {r['status']}, started {_when(r['started_at'])}, "
            f"took {duration}: {_targets(r)}"
        )
    return lines


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
