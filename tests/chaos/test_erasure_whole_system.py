"""Erasure, whole system: forgotten customers leave every target and the state database.

The crash suite's workload (:mod:`workload`) with pipelines that all delete on a forget
(Octopush ``on_delete: delete`` takes the number off the account, NP6's order pipeline deletes
the target its orders made). Every target fails the way real APIs do (5xx, answers lost after
the write) the whole time, and ``syncer run`` is SIGKILLed again and again:

1. churn while the daemon is started and killed; then some Octopush VIPs lose their tag (they
   leave the list, their number stays on the account); a ``sync --once`` drains, and every
   target must hold exactly :func:`~workload.expected_state`;
2. three kinds of customers are deleted in Contacthub: those who left the Octopush list, those
   with orders in NP6, and plain 360NRS subscribers; the daemon is killed once more, a last
   ``sync --once`` drains (and scrubs);
3. none of them is in any simulator (contacts, lists, account numbers, NP6 targets), none of
   their e-mails or phone numbers is in any column of the state database, every other customer
   is exactly as before, and ``syncer erasures --json`` shows each forgotten customer
   ``scrubbed`` with the acknowledgement of each target that held it.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from workload import (
    PIPELINES,
    SYNCER,
    Churn,
    Expected,
    Op,
    Sims,
    build_dataset,
    churning,
    compare,
    contacthub_client,
    e164,
    email_key,
    expected_state,
    load_contacthub,
    seed,
    sigkill,
    start_daemon,
    sync_once,
    syncer_env,
    write_config,
)

# every pipeline deletes on a forget (the orders block is the last: its on_delete goes last)
ERASING = PIPELINES.replace("on_delete: remove_from_list", "on_delete: delete") + (
    "    on_delete: delete\n"
)
SIM = {"nrs": "nrs360", "octo": "octopush", "np6": "np6"}
PER_KIND = 6


def _run_killed(config: Path, log: Path, rng: random.Random, kills: int) -> None:
    for n in range(kills):
        proc = start_daemon(config, log)
        time.sleep(rng.uniform(1.0, 3.0))  # start-up is ~0.8 s: ingest or delivery is cut
        assert sigkill(proc) is None, f"syncer run ended by itself before kill {n}"


def _drain(config: Path) -> None:
    done = sync_once(config)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _state_texts(db: Path) -> list[tuple[str, str, str]]:
    """``(table, column, value)`` of every text value in the state database."""
    out: list[tuple[str, str, str]] = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                for (value,) in conn.execute(f'SELECT "{column}" FROM "{table}"'):
                    if isinstance(value, str):
                        out.append((table, column, value))
    return out


def _without(want: Expected, emails: set[str], phones: set[str]) -> Expected:
    """``want`` once the customers with ``emails`` and ``phones`` are forgotten."""
    return Expected(
        {e: c for e, c in want.nrs.items() if e not in emails},
        {name: members - phones for name, members in want.octo.items()},
        {e: o for e, o in want.np6.items() if e not in emails},
    )


def test_forgotten_customers_are_in_no_target_and_nowhere_in_the_state(tmp_path: Path) -> None:
    rng = random.Random(seed(95))
    data, evts = build_dataset(400, 800, seed(95))
    with Sims(np6_processing=0.3) as sims:
        load_contacthub(sims.url("contacthub"), data, evts)
        for i, sim in enumerate(SIM.values()):
            sims.faults(sim, error_rate=0.1, lost_response_rate=0.05, seed=i)
        config, _ = write_config(tmp_path, sims, pipelines=ERASING, max_attempts=100)
        db, log = tmp_path / "state.db", tmp_path / "syncer.log"
        churn = Churn(sims.url("contacthub"), data, evts, seed(95), rate=10.0)
        with churning(churn):
            _run_killed(config, log, rng, kills=3)
        churn.http = contacthub_client(sims.url("contacthub"))  # the writes below are the test's
        _drain(config)

        # 1. some Octopush VIPs lose the tag: they leave the list, the number stays
        listed = {p for members in sims.state("octopush")["lists"].values() for p in members}
        by_phone = {
            e164(d["base"]["contacts"].get("mobilePhone")): c for c, d in churn.model.items()
        }
        leavers = sorted(by_phone[p] for p in listed if by_phone.get(p) in churn.live)
        leavers = [c for c in leavers if c not in churn.ordered][:PER_KIND]
        for cid in leavers:
            manual = churn.model[cid]["tags"]["manual"]
            churn._patch(cid, {"tags": {"manual": [t for t in manual if t != "vip"]}})
        _drain(config)
        want = expected_state(data, evts, churn.journal)
        assert compare(sims, want) == []
        account = sims.state("octopush")["contacts"]
        leaver_phones = {e164(churn.model[c]["base"]["contacts"]["mobilePhone"]) for c in leavers}
        assert leavers and leaver_phones <= set(account), "a leave is expected to keep the number"

        # 2. forget leavers, customers with orders in NP6, plain 360NRS subscribers
        emails_of = {
            c: email_key(d["base"]["contacts"].get("email")) for c, d in churn.model.items()
        }
        ordered = sorted(c for c in churn.ordered if emails_of.get(c) in want.np6)[:PER_KIND]
        subscribers = sorted(
            c
            for c in churn.live
            if emails_of[c] in want.nrs and c not in churn.ordered and c not in leavers
        )[:PER_KIND]
        victims = {"leaver": leavers, "orders": ordered, "subscriber": subscribers}
        assert all(len(v) == PER_KIND for v in victims.values()), victims
        forgotten = [c for kind in victims.values() for c in kind]
        emails = {e for c in forgotten if (e := emails_of[c])}
        phones = {
            p
            for c in forgotten
            if (p := e164(churn.model[c]["base"]["contacts"].get("mobilePhone")))
        }
        # the searches below find them while they are there
        assert {v for _, _, v in _state_texts(db) if any(e in v for e in emails)}
        for cid in forgotten:
            resp = churn.http.delete(f"/customers/{cid}")
            assert resp.status_code == 200, (resp.status_code, resp.text)
            churn.journal.append(Op("delete", cid, None, time.time()))
        _run_killed(config, log, rng, kills=1)
        _drain(config)

        # 3. nowhere in the targets, everyone else as before
        problems = compare(sims, _without(want, emails, phones))
        nrs_emails = {c["email"] for c in sims.state("nrs360")["contacts"]}
        octo = sims.state("octopush")
        np6_emails = {t["fields"]["1001"] for t in sims.state("np6")["targets"]}
        found = {
            "360NRS contacts": sorted(emails & nrs_emails),
            "Octopush numbers": sorted(phones & set(octo["contacts"])),
            "NP6 targets": sorted(emails & np6_emails),
        }
        if problems or any(found.values()):
            sims.dump_calls(tmp_path)
    assert problems == [], "\n".join(problems)
    assert not any(found.values()), found

    # ... and nowhere in the state database
    leaks = sorted(
        {(t, c) for t, c, v in _state_texts(db) if any(n in v for n in (*emails, *phones))}
    )
    assert leaks == [], f"forgotten customers' e-mails or phones left in {leaks}"
    # not in the file either (freed pages keep what was deleted unless overwritten)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    in_file = sorted(n for n in (*emails, *phones) if n.encode() in raw)
    assert in_file == [], f"{len(in_file)} e-mails or phones still in the database file"

    # the receipt: every forgotten customer scrubbed, each target that held it acknowledged
    shown = subprocess.run(
        [SYNCER, "erasures", "--json"],
        env=syncer_env(config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    ledger: dict[str, Any] = {r["customer_id"]: r for r in json.loads(shown.stdout)["erasures"]}
    held_by = {"leaver": "octo", "orders": "np6", "subscriber": "nrs"}
    for kind, cids in victims.items():
        for cid in cids:
            record = ledger[cid]
            acked = {t["target"] for t in record["targets"] if t["state"] == "done"}
            assert record["state"] == "scrubbed", record
            assert all(t["state"] == "done" for t in record["targets"]), record
            assert held_by[kind] in acked, (kind, record)
