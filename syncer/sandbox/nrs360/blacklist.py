"""``/v2/blacklist/{type}`` routes (type: ``sms``, ``mailing``, ``voice``): list, add, remove."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .context import Context
from .store import BLACKLIST_TYPES, BlacklistEntry, blacklist_key
from .validation import invalid, parse_int_param, parse_limit, parse_recipient, present
from .web import OrjsonResponse, not_found, paginate, read_json


class BlacklistTypeConvertor(Convertor[str]):
    """Only the three documented types route; any other answers 404 like an unknown path."""

    regex = "|".join(BLACKLIST_TYPES)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("nrs360_blacklist_type", BlacklistTypeConvertor())


def routes(ctx: Context) -> list[Route]:
    """The blacklist routes, each behind Basic auth."""

    async def list_entries(request: Request) -> Response:
        kind = request.path_params["type"]
        query = dict(request.query_params)
        limit = parse_limit(query, ctx.behaviour)
        page = parse_int_param(query, "page", 1)
        entries = ctx.store.blacklist[kind]
        recipient = query.get("recipient") or None
        sending_id = parse_int_param(query, "sendingId", 0, minimum=0) or None
        if recipient is None and sending_id is None:
            items, total = list(entries.values()), len(entries)
        else:
            if recipient is not None:
                hit = entries.get(blacklist_key(kind, recipient))
                candidates = [hit] if hit is not None else []
            else:
                candidates = list(entries.values())
            items = [e for e in candidates if sending_id is None or e.sending_id == sending_id]
            total = len(items)
        chunk, meta = paginate(request, iter(items), total, limit, page)
        return OrjsonResponse({"data": [e.to_json() for e in chunk], "meta": meta})

    async def add_entry(request: Request) -> Response:
        kind = request.path_params["type"]
        recipient = parse_recipient(await read_json(request), kind, ctx.behaviour)
        entries = ctx.store.blacklist[kind]
        key = blacklist_key(kind, recipient)
        entry = entries.get(key)
        if entry is None:  # adding twice is harmless: the existing entry is returned
            entry = entries[key] = BlacklistEntry(kind, recipient, ctx.now())
        return OrjsonResponse({"data": entry.to_json(with_sending_id=False)})

    async def remove_entry(request: Request) -> Response:
        kind = request.path_params["type"]
        body = await read_json(request)
        if not present(body, "recipient"):
            raise invalid("The recipient field is required.")
        recipient = body["recipient"]
        if not isinstance(recipient, str):
            raise invalid("The recipient field must be a valid phone or email.")
        if ctx.behaviour.accept_plus_prefix and kind != "mailing":
            recipient = recipient.removeprefix("+")
        removed = ctx.store.blacklist[kind].pop(blacklist_key(kind, recipient), None)
        if removed is None and not ctx.behaviour.blacklist_delete_missing_ok:
            raise not_found()
        return Response(status_code=204)

    path = "/v2/blacklist/{type:nrs360_blacklist_type}"
    return [
        Route(path, ctx.endpoint(list_entries), methods=["GET"]),
        Route(path, ctx.endpoint(add_entry), methods=["PUT"]),
        Route(path, ctx.endpoint(remove_entry), methods=["DELETE"]),
    ]
