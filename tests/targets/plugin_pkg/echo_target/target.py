"""The echo target itself: imported by :func:`echo_target.build` on first use (a spec module
is loaded while syncer builds its config models, so it imports only the config base and
:mod:`syncer.targets.spec`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from syncer.targets.base import Change, FlushPolicy, Outcome, TargetContext


class EchoTarget:
    per_record = True

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory

    def flush_policy(self) -> FlushPolicy | None:
        return None

    def check(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def apply(self, changes: Sequence[Change], ctx: TargetContext) -> list[Outcome]:
        out = []
        for change in changes:
            path = self.directory / f"{change.entity_id}.json"
            if change.action == "upsert" and change.record is not None:
                existed = path.exists()
                path.write_text(json.dumps(dict(change.record.fields), sort_keys=True))
                detail = "updated" if existed else "created"
                out.append(Outcome.done(change, detail, target_id=change.entity_id))
            else:
                path.unlink(missing_ok=True)
                out.append(Outcome.done(change, "deleted", forget=True))
        return out

    def close(self) -> None:
        pass
