"""Broken claim protocols, to show that ``test_two_replicas.py`` catches them
(``test_mutants.py``, ``make chaos``). Loaded as ``sitecustomize`` by every Python process
started with this folder on ``PYTHONPATH``, the replicas included; ``SYNCER_MUTANT`` picks one:

* ``claims``: a claim takes over another worker's live claim (the primary key no longer keeps
  a customer held elsewhere);
* ``no-exclusion``: claims exclude nobody (written expired; a row in flight is claimable again
  at once).

Without ``SYNCER_MUTANT`` it does nothing (it never imports syncer then)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

MUTANT = os.environ.get("SYNCER_MUTANT")


def _install() -> None:
    from sqlalchemy import Connection, or_
    from sqlalchemy.dialects import postgresql, sqlite

    import syncer.state.delivery_ops as d

    real_take = d._take_claims

    def take_over(
        conn: Connection,
        target: str,
        subjects: Sequence[str],
        worker: str,
        token: str,
        expires_at: float,
        now: float,
    ) -> set[str]:
        dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(d.claims)
            .on_conflict_do_update(
                index_elements=["target", "subject_id"],
                set_={"owner": worker, "token": token, "expires_at": expires_at},
            )
            .returning(d.claims.c.subject_id)
        )
        won: set[str] = set()
        for s in subjects:
            row = {"target": target, "subject_id": s, "owner": worker, "token": token}
            won.update(conn.execute(stmt, {**row, "expires_at": expires_at}).scalars())
        return won

    def expired(
        conn: Connection,
        target: str,
        subjects: Sequence[str],
        worker: str,
        token: str,
        expires_at: float,
        now: float,
    ) -> set[str]:
        return real_take(conn, target, subjects, worker, token, now - 1.0, now)

    def always_due(now: float) -> Any:
        c = d.deliveries.c
        return or_(c.state.in_(d.OPEN_STATES) & (c.due_at <= now), c.state == "in_flight")

    if MUTANT == "claims":
        d._take_claims = take_over  # type: ignore[assignment]
    elif MUTANT == "no-exclusion":
        d._take_claims = expired  # type: ignore[assignment]
        d._due = always_due


if MUTANT:
    _install()
