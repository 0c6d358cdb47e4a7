"""``syncer discover`` (what each source's Contacthub workspace has: fields with types, consents,
event types, entry nodes; every configured source unless ``--source``) and the checks of
``syncer validate --online`` built on it.

Endpoints (contacthub-swagger-1.51.yaml, see syncer/sandbox/contacthub/api_configuration.py):
``GET /configuration/properties/base``, ``/configuration/properties/extended`` (a JSON schema),
``/configuration/events``, ``/configuration/nodes/entries``. No endpoint lists consents: the
consent tree is the API's fixed customer model (DIGEST.md §1.3), so it is listed from there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

from ..config.models import DEFAULT_SOURCE, SyncerConfig, field_source
from .common import ConfigOption, clean_errors, load

__all__ = ["discover_workspace", "online_problems", "register"]

# DIGEST.md §1.3: every consent leaf is {status, limitation, objection}
CONSENTS = (
    "disclaimer",
    "marketing.traditional.telephonic",
    "marketing.traditional.papery",
    "marketing.automatic.sms",
    "marketing.automatic.email",
    "marketing.automatic.push",
    "marketing.automatic.im",
    "marketing.automatic.telephonic",
    "profiling.classic",
    "profiling.online",
    "softSpam.email",
    "softSpam.papery",
    "thirdPartyTransfer.profiling",
    "thirdPartyTransfer.marketing",
)

# DIGEST.md §1.3 (customer JSON): the types and sub-fields of the base properties
BASE_TYPES = {"dob": "date", "educations": "array", "likes": "array", "jobs": "array"}
BASE_TYPES |= {"subscriptions": "array", "socialProfile": "object"}
BASE_CHILDREN = {
    "contacts": ("email", "fax", "mobilePhone", "phone", "otherContacts", "mobileDevices"),
    "address": ("street", "city", "country", "province", "region", "zip", "geo"),
    "credential": ("password", "username"),
}
CHILD_TYPES = {"otherContacts": "array", "mobileDevices": "array", "geo": "object"}
# top-level customer properties a mapping may read (DIGEST.md §1.3)
TOP_FIELDS = {"id": "string", "externalId": "string", "nodeId": "string", "tags": "object"}
TOP_FIELDS |= {"registeredAt": "date-time", "updatedAt": "date-time", "enabled": "boolean"}


def _schema_fields(prefix: str, schema: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        out.append({"path": path, "type": str(sub.get("type", "any"))})
        if sub.get("type") == "object":
            out += _schema_fields(path, sub)
    return out


def discover_workspace(cfg: SyncerConfig, source: str | None = None) -> dict[str, Any]:
    """Read the workspace's configuration listings with the credentials of ``source`` (by
    default the first source): the listings are the workspace's, so one node's client."""
    from ..source.sources import source_clients

    chosen = source or next(iter(cfg.sources))
    client, *others = source_clients(cfg, only=chosen)
    for other in others:
        other.http.close()
    try:
        base = client._get("/configuration/properties/base", {}, "base properties")
        extended = client._get("/configuration/properties/extended", {}, "extended properties")
        events = client._get("/configuration/events", {}, "event configuration")
        nodes = client._get("/configuration/nodes/entries", {}, "entry nodes")
    finally:
        client.http.close()
    fields = [{"path": p, "type": t} for p, t in TOP_FIELDS.items()]
    for prop in base.get("elements") or []:
        if not prop.get("enabled", True):
            continue
        name = str(prop["name"])
        children = BASE_CHILDREN.get(name)
        kind = BASE_TYPES.get(name, "object" if children else "string")
        fields.append({"path": f"base.{name}", "type": kind})
        for child in children or ():
            child_kind = CHILD_TYPES.get(child, "string")
            fields.append({"path": f"base.{name}.{child}", "type": child_kind})
    schema = extended.get("schema") or "{}"
    fields += _schema_fields("extended", json.loads(schema) if isinstance(schema, str) else schema)
    return {
        "source": chosen,
        "workspace_id": cfg.sources[chosen].workspace_id,
        "fields": fields,
        "consents": list(CONSENTS),
        "event_types": [
            {"type": e.get("type"), "mode": e.get("mode"), "enabled": e.get("enabled", True)}
            for e in events.get("elements") or []
        ],
        "nodes": [{"id": n.get("id"), "name": n.get("name")} for n in nodes.get("elements") or []],
    }


_PATH = re.compile(r"(?<![\w.])((?:customer\.)?(?:base|extended)(?:\.[A-Za-z_]\w*)+)")


def _paths(text: str, entity: str) -> list[str]:
    """Customer paths a path or template reads: an event pipeline reads its customer under
    ``customer.`` (its own properties have no schema to check against)."""
    found = _PATH.findall(text)
    if entity == "event":
        return [m.removeprefix("customer.") for m in found if m.startswith("customer.")]
    return [m for m in found if not m.startswith("customer.")]


def online_problems(cfg: SyncerConfig, found: dict[str, Any]) -> list[str]:
    """What the config uses that the workspace of ``found["source"]`` does not have (its
    nodes, and what the pipelines of that source read), with key paths."""
    known = {f["path"] for f in found["fields"]}
    enabled = {e["type"] for e in found["event_types"] if e["enabled"]}
    problems = []
    name = found["source"]
    src = cfg.sources[name]
    node_ids = {n["id"] for n in found["nodes"]}
    where_src = "source" if cfg.source is not None else f"sources.{name}"
    for i, node in enumerate(src.nodes):
        if node not in node_ids:
            key = f"{where_src}.node_id" if src.node_ids is None else f"{where_src}.node_ids[{i}]"
            problems.append(
                f"{key}: {node!r} is not an entry node of the workspace "
                f"(nodes: {', '.join(sorted(map(str, node_ids))) or 'none'})"
            )
    mine = {id(p) for p in cfg.pipelines_of(name)}
    for n, p in enumerate(cfg.pipelines):
        if id(p) not in mine:
            continue
        where = f"pipelines[{n}] ({p.name})"
        for t in p.event_types or []:
            if t not in enabled:
                problems.append(f"{where}.event_types: {t!r} is not an enabled event type")
        if p.when is not None and p.when.consent and p.when.consent not in CONSENTS:
            problems.append(f"{where}.when.consent: {p.when.consent!r} is not a consent")
        sources = {f"fields.{k}": field_source(v) for k, v in p.fields.items()}
        if p.when is not None:
            sources |= {f"when.present[{i}]": v for i, v in enumerate(p.when.present)}
        for key, text in sources.items():
            for path in _paths(text, p.entity):
                parts = path.split(".")
                prefixes = {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
                if not prefixes & known:
                    problems.append(f"{where}.{key}: {path!r} is not a field of the workspace")
    return problems


@clean_errors
def discover(
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    source: str | None = typer.Option(
        None, "--source", help="Only this source (a key of 'sources'); default: every source."
    ),
) -> None:
    """List each source's workspace: fields (with types), consents, event types and entry
    nodes (every configured source, in config order, unless ``--source``)."""
    from ..source.sources import check_source_name

    cfg = load(config)
    check_source_name(cfg, source)
    names = [source] if source is not None else list(cfg.sources)
    found = [discover_workspace(cfg, name) for name in names]
    if as_json:
        # one source: its listing, as always; several: the first's at the top too (as
        # `status` and `offsets show` do with streams), and each source's under "sources"
        doc = found[0] if len(found) == 1 else {**found[0], "sources": found}
        typer.echo(json.dumps(doc, indent=2))
        return
    for n, one in enumerate(found):
        if n:
            typer.echo("")
        _print_listing(one)


def _print_listing(found: dict[str, Any]) -> None:
    """One source's listing: the single ``source:`` form keeps its ``workspace`` heading."""
    name = found["source"]
    head = f"workspace {found['workspace_id']}"
    typer.echo(head if name == DEFAULT_SOURCE else f"source {name}: {head}")
    typer.echo("entry nodes:")
    for node in found["nodes"]:
        typer.echo(f"  {node['id']}  {node['name']}")
    typer.echo("fields:")
    for f in found["fields"]:
        typer.echo(f"  {f['path']:<40} {f['type']}")
    typer.echo("consents (under consents.<path>):")
    for c in found["consents"]:
        typer.echo(f"  {c}")
    typer.echo("event types:")
    for e in found["event_types"]:
        off = "" if e["enabled"] else "  (disabled)"
        typer.echo(f"  {e['type']:<28} {e['mode']}{off}")


def register(app: typer.Typer) -> None:
    app.command("discover")(discover)
