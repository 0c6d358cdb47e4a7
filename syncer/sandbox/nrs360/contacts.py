"""``/contacts`` routes: list (filters, include, paging), show, create, update, delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .context import Context
from .store import SCALAR_FIELDS, Contact, Group
from .validation import ContactInput, invalid, parse_contact, parse_int_param, parse_limit
from .web import OrjsonResponse, not_found, paginate, read_json

INCLUDES = frozenset({"customFields", "groups"})


def _include(request: Request) -> frozenset[str]:
    """``include=customFields,groups``; unknown names are ignored (as fractal does)."""
    raw = request.query_params.get("include", "")
    return INCLUDES.intersection(part.strip() for part in raw.split(","))


def _find(ctx: Context, request: Request) -> Contact:
    contact = ctx.store.contacts.get(request.path_params["id"])
    if contact is None:
        raise not_found()
    return contact


def _resolve_groups(ctx: Context, data: ContactInput) -> tuple[list[int], list[str]]:
    """Existing group ids for ``groupsIds`` + ``groupsNames``, and the names to create."""
    store = ctx.store
    ids: list[int] = []
    for index, group_id in enumerate(data.group_ids):
        if group_id not in store.groups:
            raise invalid(f"The selected groupsIds.{index} is invalid.")
        ids.append(group_id)
    to_create: list[str] = []
    for index, name in enumerate(data.group_names):
        group = store.group_named(name)
        if group is not None:
            ids.append(group.id)
        elif ctx.behaviour.group_names == "create":
            to_create.append(name)
        else:
            raise invalid(f"The selected groupsNames.{index} is invalid.")
    return ids, to_create


def _check_unique(ctx: Context, data: ContactInput, own_id: int | None) -> None:
    """Our documented choice: an email or mobile phone belongs to one contact only."""
    if ctx.behaviour.duplicate_email != "refuse":
        return
    email, phone = data.scalars.get("email"), data.scalars.get("phone")
    if email and any(i != own_id for i in ctx.store.contact_ids_with_email(email)):
        raise invalid("The email has already been taken.")
    if phone and any(i != own_id for i in ctx.store.contact_ids_with_phone(phone)):
        raise invalid("The phone has already been taken.")


def _validated(
    ctx: Context, body: dict[str, Any], own_id: int | None
) -> tuple[ContactInput, list[int]]:
    """Validate a body fully (nothing changes before this returns) and return the group ids."""
    data = parse_contact(body, ctx.behaviour)
    _check_unique(ctx, data, own_id)
    group_ids, to_create = _resolve_groups(ctx, data)
    for name in to_create:  # behaviour group_names="create": all checks passed, now create
        group = ctx.store.group_named(name)  # the same name twice in one request
        if group is None:
            group = ctx.store.add_group(Group(ctx.store.next_group_id, name))
        group_ids.append(group.id)
    return data, list(dict.fromkeys(group_ids))


def _apply(ctx: Context, contact: Contact, data: ContactInput, *, replace: bool) -> None:
    """Write the validated fields; ``replace`` clears what was not sent."""
    for api_name, attr in SCALAR_FIELDS.items():
        if api_name in data.scalars:
            setattr(contact, attr, data.scalars[api_name])
        elif replace and (api_name != "externalId" or ctx.behaviour.external_id_writable):
            setattr(contact, attr, None)
    if data.custom_fields is not None or replace:
        sent = {field.key: field for field in data.custom_fields or []}
        contact.custom_fields = sent if replace else {**contact.custom_fields, **sent}


def _filtered(ctx: Context, request: Request) -> tuple[Iterable[Contact], int]:
    """The contacts matching the list filters (AND), via the indexes when possible."""
    store, query = ctx.store, request.query_params
    email, phone = query.get("email") or None, query.get("phone") or None
    if phone and ctx.behaviour.accept_plus_prefix:
        phone = phone.removeprefix("+")
    landline, country = query.get("landline") or None, query.get("countryIso") or None
    external_id = query.get("externalId") or None
    if not (email or phone or landline or country or external_id):
        return iter(store.contacts.values()), len(store.contacts)
    if email:
        candidates: Iterable[int] = store.contact_ids_with_email(email)
    elif phone:
        candidates = store.contact_ids_with_phone(phone)
    else:
        candidates = store.contacts
    found = [
        contact
        for contact in (store.contacts[i] for i in candidates)
        if (not phone or contact.phone == phone)
        and (not landline or contact.landline == landline)
        and (not country or (contact.country_iso or "").upper() == country.upper())
        and (not external_id or contact.external_id == external_id)
    ]
    return found, len(found)


def routes(ctx: Context) -> list[Route]:
    """The contact routes, each behind Basic auth (switches are read on every call)."""

    def written(request: Request, contact: Contact, status: int) -> Response:
        show_external_id = ctx.behaviour.external_id_writable
        data = ctx.store.contact_json(contact, external_id=show_external_id)
        data["links"] = {"self": str(request.url_for("nrs360_contact", id=contact.id))}
        return OrjsonResponse({"data": data}, status_code=status)

    async def list_contacts(request: Request) -> Response:
        query = dict(request.query_params)
        limit = parse_limit(query, ctx.behaviour)
        page = parse_int_param(query, "page", 1)
        include = _include(request)
        items, total = _filtered(ctx, request)
        chunk, meta = paginate(request, items, total, limit, page)
        show = ctx.behaviour.external_id_writable
        data = [ctx.store.contact_json(c, include=include, external_id=show) for c in chunk]
        return OrjsonResponse({"data": data, "meta": meta})

    async def show_contact(request: Request) -> Response:
        contact = _find(ctx, request)
        data = ctx.store.contact_json(
            contact, include=_include(request), external_id=ctx.behaviour.external_id_writable
        )
        return OrjsonResponse({"data": data})

    async def create_contact(request: Request) -> Response:
        data, group_ids = _validated(ctx, await read_json(request), None)
        now = ctx.now()
        contact = Contact(ctx.store.next_contact_id, created_at=now, updated_at=now)
        _apply(ctx, contact, data, replace=True)
        contact.groups = dict.fromkeys(group_ids)
        ctx.store.add_contact(contact)
        return written(request, contact, 201)

    async def update_contact(request: Request) -> Response:
        contact = _find(ctx, request)
        data, group_ids = _validated(ctx, await read_json(request), contact.id)
        ctx.store.unindex(contact)
        _apply(ctx, contact, data, replace=ctx.behaviour.put_semantics == "replace")
        ctx.store.reindex(contact)
        if ctx.behaviour.put_groups == "add":
            group_ids = list(dict.fromkeys([*contact.groups, *group_ids]))
        ctx.store.set_groups(contact, group_ids)
        contact.updated_at = ctx.now()
        return written(request, contact, 200)

    async def delete_contact(request: Request) -> Response:
        ctx.store.delete_contact(_find(ctx, request))
        return Response(status_code=204)

    return [
        Route("/contacts", ctx.endpoint(list_contacts), methods=["GET"]),
        Route("/contacts", ctx.endpoint(create_contact), methods=["POST"]),
        Route(
            "/contacts/{id:int}",
            ctx.endpoint(show_contact),
            methods=["GET"],
            name="nrs360_contact",
        ),
        Route("/contacts/{id:int}", ctx.endpoint(update_contact), methods=["PUT"]),
        Route("/contacts/{id:int}", ctx.endpoint(delete_contact), methods=["DELETE"]),
    ]
