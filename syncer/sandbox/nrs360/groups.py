"""``/groups`` routes: list, show, create, update, delete."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .context import Context
from .store import Group
from .validation import invalid, parse_int_param, parse_limit, present
from .web import OrjsonResponse, not_found, paginate, read_json


def find_group(ctx: Context, group_id: int) -> Group:
    group = ctx.store.groups.get(group_id)
    if group is None:
        raise not_found()
    return group


def _valid_name(ctx: Context, body: dict[str, Any], group_id: int | None) -> str:
    if not present(body, "name"):
        raise invalid("The name field is required.")
    name = body["name"]
    if not isinstance(name, str):
        raise invalid("The name field must be a string.")
    if len(name) > 255:
        raise invalid("The name field must not be greater than 255 characters.")
    if not ctx.behaviour.duplicate_group_names:
        holders = ctx.store.groups_by_name.get(name.casefold(), {})
        if any(other != group_id for other in holders):
            raise invalid("The name has already been taken.")
    return name


def routes(ctx: Context) -> list[Route]:
    """The group routes, each behind Basic auth."""

    async def list_groups(request: Request) -> Response:
        query = dict(request.query_params)
        limit = parse_limit(query, ctx.behaviour)
        page = parse_int_param(query, "page", 1)
        groups = ctx.store.groups
        chunk, meta = paginate(request, iter(groups.values()), len(groups), limit, page)
        return OrjsonResponse({"data": [g.to_json() for g in chunk], "meta": meta})

    async def show_group(request: Request) -> Response:
        group = find_group(ctx, request.path_params["id"])
        return OrjsonResponse({"data": group.to_json()})

    async def create_group(request: Request) -> Response:
        name = _valid_name(ctx, await read_json(request), None)
        group = ctx.store.add_group(Group(ctx.store.next_group_id, name))
        return OrjsonResponse({"data": group.to_json()}, status_code=201)

    async def update_group(request: Request) -> Response:
        body = await read_json(request)
        group_id = request.path_params.get("id")
        if group_id is None:  # PUT /groups with the id in the body (behaviour switch)
            group_id = body.get("id")
            if group_id in (None, ""):
                raise invalid("The id field is required.")
            if isinstance(group_id, bool) or not isinstance(group_id, int):
                raise invalid("The id field must be an integer.")
        group = find_group(ctx, group_id)
        ctx.store.rename_group(group, _valid_name(ctx, body, group.id))
        return OrjsonResponse({"data": group.to_json()})

    async def delete_group(request: Request) -> Response:
        ctx.store.delete_group(find_group(ctx, request.path_params["id"]))
        return Response(status_code=204)

    found: list[Route] = [
        Route("/groups", ctx.endpoint(list_groups), methods=["GET"]),
        Route("/groups", ctx.endpoint(create_group), methods=["POST"]),
        Route("/groups/{id:int}", ctx.endpoint(show_group), methods=["GET"]),
        Route("/groups/{id:int}", ctx.endpoint(update_group), methods=["PUT"]),
        Route("/groups/{id:int}", ctx.endpoint(delete_group), methods=["DELETE"]),
    ]
    if ctx.behaviour.group_update_without_id:
        found.append(Route("/groups", ctx.endpoint(update_group), methods=["PUT"]))
    return found
