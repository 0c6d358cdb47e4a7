"""Octopush simulator: contacts and contact lists of ``https://api.octopush.com/v1/public``.

Built from DIGEST section 3 and ``octopush-contact-create.es.txt``. Routes (all under
``/v1/public``, all take a JSON body, even ``DELETE``):

=============================  ==============================================================
``POST /contact/create``       upsert contacts by phone number -> 201 ``{"items": [...]}``
``DELETE /contact/delete``     ``{"phone_numbers": [1..200], "list_name"?}`` -> 204
``POST /contact-list/create``  ``{"list_name"}`` -> 201 ``{"list_name", "id"}``
``DELETE /contact-list/delete`` ``{"list_name"}`` -> 204
``POST /contact-list/empty``   ``{"list_name", "delete_contacts"?}`` -> 204
=============================  ==============================================================

Authentication: headers ``api-login`` and ``api-key`` must both match, else 401.
Every error body is ``{"code": <int>, "message": "<text>"}`` (documented shape, DIGEST 3.3).

Error codes. The new API's code table is not documented; the legacy table is reused where a
legacy code fits (an inference, DIGEST 3.3); codes 9xx are sandbox inventions:

=====  ======  ==============================================================================
code   status  meaning
=====  ======  ==============================================================================
100    400     body missing or not a JSON object (legacy "POST request missing")
101    401     ``api-login`` / ``api-key`` missing or wrong (legacy "incorrect login")
110    400     ``contacts`` / ``phone_numbers`` missing or empty (legacy "recipient list missing")
117    400     invalid phone number(s); the whole request is rejected (legacy "no correct numbers")
125    5xx     injected server error (legacy "undefined error")
900    429     injected rate limit (not documented for Octopush at all); its headers: switch
               ``rate_limit`` (``Retry-After`` / ``X-RateLimit-*`` only / none)
901    400     a field has the wrong type
902    400     ``list_name`` longer than 30 or ``tag_name`` longer than 20 characters
903    400     too many contacts / numbers in one call
904    404     unknown ``list_name``
905    409     ``contact-list/create`` on an existing name
=====  ======  ==============================================================================

Documented choices (docs say / we do / switch on :class:`OctopushBehaviour`):

====================  ==================================================  ===================
docs say              we do                                               switch
====================  ==================================================  ===================
numbers in            must start with ``+`` and be valid for              ``invalid_number``
international ``+``   ``phonenumbers``; stored as E.164. One invalid      (refuse_call /
format                number rejects the **whole** create with 400/117    skip_item)
                      naming every invalid number (docs silent);
                      ``skip_item``: 201, the invalid item answered
                      ``"status": "skipped"`` and not stored, the others
                      applied ("we will ignore it, but your request will
                      be sent", DIGEST 3.2). Numbers listed in the load
                      key ``refused_numbers`` count as invalid although
                      they parse (the API's own check is undocumented)
create: max contacts  400/903 above the limit                             ``max_contacts_
undocumented                                                              per_create`` (500)
create: unknown       404/904, or the list is created on the fly          ``missing_list``
``list_name``                                                             (error / create)
create: added /       relative to the *account*: added = new number,      -
updated / skipped     updated = existing number (data overwritten),
                      skipped = existing number + ``do_not_overwrite``.
                      In all three cases the contact joins ``list_name``
                      and gets ``tag_name``. Keys absent from an item
                      keep their value, explicit ``null`` clears. A
                      number repeated in one call: 2nd is "updated"
create: ``email`` in  always ``null`` (the request has no e-mail)         -
the answer
``auto_remove_        numbers on the account blacklist are not stored,    -
blacklisted_numbers`` are removed from ``list_name``, status "skipped";
                      without the flag they are stored like any other
unknown keys          ignored ("we will ignore it", DIGEST 3.2)           -
delete: 1..200        0 numbers -> 400/110, above the limit 400/903       ``max_delete`` (200)
delete: unknown       silently ignored (unparseable ones too)             -
numbers
delete with           removes the membership only; without it the         -
``list_name``         contact is deleted from the account (all lists)
list create: body     201 ``{"list_name", "id"}``                         -
not shown
list create, name     409/905, or 201 with the existing list              ``existing_list``
exists                                                                    (error / ok)
list delete           204; members stay in the account; unknown 404/904   -
list empty: answer    204; ``delete_contacts`` also deletes the members   -
not shown             from the account; unknown list 404/904
====================  ==================================================  ===================

Admin ``/_sandbox/load`` body (``dump_state()`` has the same shape, plus ``list_ids``)::

    {"lists": {"name": ["+33612345678", ...]},
     "contacts": {"+33612345678": {"first_name": ..., "last_name": ..., "param1": ...,
                                   "lists": [...], "tags": [...]}},
     "blacklist": ["+33..."], "refused_numbers": ["+33..."],
     "behaviour": {...optional OctopushBehaviour fields...}}
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import phonenumbers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from .app import Simulator
from .faults import FaultPlan

BASE_PATH = "/v1/public"
CONTACT_KEYS = ("first_name", "last_name", "param1", "param2", "param3", "param4", "param5")
MAX_LIST_NAME = 30
MAX_TAG_NAME = 20


@dataclass
class OctopushBehaviour:
    """Switches for the behaviours the Octopush docs leave open (see the module docstring)."""

    max_contacts_per_create: int = 500
    max_delete: int = 200
    missing_list: Literal["error", "create"] = "error"
    existing_list: Literal["error", "ok"] = "error"
    #: a contact/create naming an invalid number: 400/117 for the whole call
    #: (``refuse_call``), or 201 with that item ``"status": "skipped"`` (``skip_item``)
    invalid_number: Literal["refuse_call", "skip_item"] = "refuse_call"
    #: injected 429s carry ``Retry-After`` (``"retry_after"``), ``X-RateLimit-*`` only
    #: (``"x_ratelimit"``) or no header (``"bare"``): Octopush documents no 429 at all
    rate_limit: Literal["retry_after", "x_ratelimit", "bare"] = "retry_after"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OctopushBehaviour:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown Octopush behaviour settings: {sorted(unknown)}")
        return cls(**data)


class OctopushError(Exception):
    """An API error answered as ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Contact:
    """One contact of the account, keyed by its E.164 number."""

    data: dict[str, Any] = field(default_factory=dict)
    lists: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: self.data.get(k) for k in CONTACT_KEYS},
            "lists": sorted(self.lists),
            "tags": sorted(self.tags),
        }


def normalise_number(raw: Any) -> str | None:
    """E.164 form of a valid international number (``+`` prefix required), else ``None``."""
    if not isinstance(raw, str) or not raw.strip().startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(raw.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


class OctopushSimulator(Simulator):
    """In-memory Octopush account: contacts, lists, tags and a blacklist."""

    name = "octopush"

    def __init__(
        self,
        faults: FaultPlan | None = None,
        *,
        api_login: str = "sandbox@example.com",
        api_key: str = "sandbox-octopush-key",
        behaviour: OctopushBehaviour | None = None,
    ) -> None:
        super().__init__(faults)
        self.api_login = api_login
        self.api_key = api_key
        self.behaviour = behaviour or OctopushBehaviour()
        self.reset()

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        self.contacts: dict[str, Contact] = {}
        self.lists: dict[str, int] = {}  # name -> id
        self.blacklist: set[str] = set()
        self.refused: set[str] = set()  # valid E.164 numbers this account treats as invalid
        self._next_list_id = 1

    def _add_list(self, name: str) -> int:
        if name not in self.lists:
            self.lists[name] = self._next_list_id
            self._next_list_id += 1
        return self.lists[name]

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        if "behaviour" in data:
            self.behaviour = OctopushBehaviour.from_dict(data["behaviour"])
        for name in data.get("lists", {}):
            self._add_list(name)
        for number, info in data.get("contacts", {}).items():
            contact = self.contacts.setdefault(number, Contact())
            contact.data.update({k: info[k] for k in CONTACT_KEYS if k in info})
            contact.tags.update(info.get("tags", []))
            for name in info.get("lists", []):
                self._add_list(name)
                contact.lists.add(name)
        for name, numbers in data.get("lists", {}).items():
            for number in numbers:
                self.contacts.setdefault(number, Contact()).lists.add(name)
        self.blacklist.update(data.get("blacklist", []))
        self.refused.update(data.get("refused_numbers", []))
        return {"lists": len(self.lists), "contacts": len(self.contacts)}

    def dump_state(self) -> dict[str, Any]:
        members: dict[str, list[str]] = {name: [] for name in self.lists}
        for number, contact in self.contacts.items():
            for name in contact.lists:
                members[name].append(number)
        return {
            "lists": {name: sorted(numbers) for name, numbers in members.items()},
            "list_ids": dict(self.lists),
            "contacts": {number: c.to_dict() for number, c in self.contacts.items()},
            "blacklist": sorted(self.blacklist),
            "refused_numbers": sorted(self.refused),
            "behaviour": dataclasses.asdict(self.behaviour),
        }

    def error_body(self, status: int, message: str) -> Any:
        code = {401: 101, 429: 900}.get(status, 125 if status >= 500 else 901)
        return {"code": code, "message": message}

    # -- helpers -----------------------------------------------------------------------------
    def _check_auth(self, request: Request) -> None:
        login = request.headers.get("api-login", "")
        key = request.headers.get("api-key", "")
        ok_login = hmac.compare_digest(login.encode(), self.api_login.encode())
        ok_key = hmac.compare_digest(key.encode(), self.api_key.encode())
        if not (login and key and ok_login and ok_key):
            raise OctopushError(
                401, 101, "Incorrect login: check the api-login and api-key headers"
            )

    @staticmethod
    async def _json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise OctopushError(400, 100, "The request body must be a JSON object")
        return body

    def _list_name(self, body: dict[str, Any], *, required: bool) -> str | None:
        name = body.get("list_name")
        if name is None:
            if required:
                raise OctopushError(400, 901, "list_name is required")
            return None
        if not isinstance(name, str) or not name:
            raise OctopushError(400, 901, "list_name must be a non-empty string")
        if len(name) > MAX_LIST_NAME:
            raise OctopushError(
                400, 902, f"list_name is longer than {MAX_LIST_NAME} characters: {name!r}"
            )
        return name

    def _existing_list(self, name: str) -> str:
        if name not in self.lists:
            raise OctopushError(404, 904, f"Contact list not found: {name!r}")
        return name

    @staticmethod
    def _flag(body: dict[str, Any], key: str) -> bool:
        value = body.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise OctopushError(400, 901, f"{key} must be a boolean")
        return value

    def _delete_contact(self, number: str) -> None:
        self.contacts.pop(number, None)

    # -- endpoints ---------------------------------------------------------------------------
    async def contact_create(self, body: dict[str, Any]) -> Response:
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            raise OctopushError(400, 110, "contacts must be a non-empty array")
        limit = self.behaviour.max_contacts_per_create
        if len(contacts) > limit:
            raise OctopushError(
                400, 903, f"Too many contacts in one call: {len(contacts)} (max {limit})"
            )
        list_name = self._list_name(body, required=False)
        tag = body.get("tag_name")
        if tag is not None:
            if not isinstance(tag, str):
                raise OctopushError(400, 901, "tag_name must be a string")
            if len(tag) > MAX_TAG_NAME:
                raise OctopushError(
                    400, 902, f"tag_name is longer than {MAX_TAG_NAME} characters: {tag!r}"
                )
        remove_blacklisted = self._flag(body, "auto_remove_blacklisted_numbers")
        keep_existing = self._flag(body, "do_not_overwrite")

        parsed: list[tuple[str | None, dict[str, Any]]] = []
        invalid: list[str] = []
        for item in contacts:
            if not isinstance(item, dict):
                raise OctopushError(400, 901, "each contact must be a JSON object")
            for key in CONTACT_KEYS:
                value = item.get(key)
                if value is not None and not isinstance(value, str | int | float):
                    raise OctopushError(400, 901, f"{key} must be a string")
            number = normalise_number(item.get("phone_number"))
            if number is None or number in self.refused:
                invalid.append(str(item.get("phone_number")))
                number = None
            parsed.append((number, item))
        if invalid and self.behaviour.invalid_number == "refuse_call":
            raise OctopushError(400, 117, f"Invalid phone number(s): {', '.join(invalid)}")
        if list_name is not None and list_name not in self.lists:
            if self.behaviour.missing_list == "error":
                self._existing_list(list_name)
            self._add_list(list_name)

        items = []
        for number, item in parsed:
            if number is None:  # skip_item: ignored, the rest of the request goes through
                sent = item.get("phone_number")
                items.append({"phone_number": sent, "email": None, "status": "skipped"})
                continue
            status = self._upsert(number, item, list_name, tag, remove_blacklisted, keep_existing)
            items.append({"phone_number": number, "email": None, "status": status})
        return JSONResponse({"items": items}, status_code=201)

    def _upsert(
        self,
        number: str,
        item: dict[str, Any],
        list_name: str | None,
        tag: str | None,
        remove_blacklisted: bool,
        keep_existing: bool,
    ) -> str:
        if remove_blacklisted and number in self.blacklist:
            if list_name and number in self.contacts:
                self.contacts[number].lists.discard(list_name)
            return "skipped"
        contact = self.contacts.get(number)
        if contact is None:
            contact = self.contacts[number] = Contact()
            status = "added"
        else:
            status = "skipped" if keep_existing else "updated"
        if status != "skipped":
            contact.data.update({k: item[k] for k in CONTACT_KEYS if k in item})
        if list_name:
            contact.lists.add(list_name)
        if tag:
            contact.tags.add(tag)
        return status

    async def contact_delete(self, body: dict[str, Any]) -> Response:
        numbers = body.get("phone_numbers")
        if not isinstance(numbers, list) or not numbers:
            raise OctopushError(400, 110, "phone_numbers must be a non-empty array (1 to 200)")
        limit = self.behaviour.max_delete
        if len(numbers) > limit:
            raise OctopushError(400, 903, f"Too many phone_numbers: {len(numbers)} (max {limit})")
        list_name = self._list_name(body, required=False)
        if list_name is not None:
            self._existing_list(list_name)
        for raw in numbers:
            number = normalise_number(raw)
            if number is None or number not in self.contacts:
                continue
            if list_name is None:
                self._delete_contact(number)
            else:
                self.contacts[number].lists.discard(list_name)
        return Response(status_code=204)

    async def list_create(self, body: dict[str, Any]) -> Response:
        name = self._list_name(body, required=True)
        assert name is not None
        if name in self.lists and self.behaviour.existing_list == "error":
            raise OctopushError(409, 905, f"Contact list already exists: {name!r}")
        return JSONResponse({"list_name": name, "id": self._add_list(name)}, status_code=201)

    async def list_delete(self, body: dict[str, Any]) -> Response:
        name = self._existing_list(self._list_name(body, required=True) or "")
        del self.lists[name]
        for contact in self.contacts.values():
            contact.lists.discard(name)
        return Response(status_code=204)

    async def list_empty(self, body: dict[str, Any]) -> Response:
        name = self._existing_list(self._list_name(body, required=True) or "")
        delete_contacts = self._flag(body, "delete_contacts")
        for number in [n for n, c in self.contacts.items() if name in c.lists]:
            if delete_contacts:
                self._delete_contact(number)
            else:
                self.contacts[number].lists.discard(name)
        return Response(status_code=204)

    # -- routing -----------------------------------------------------------------------------
    def _route(
        self, path: str, method: str, handler: Callable[[dict[str, Any]], Awaitable[Response]]
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                self._check_auth(request)
                return await handler(await self._json_body(request))
            except OctopushError as exc:
                return JSONResponse(
                    {"code": exc.code, "message": exc.message}, status_code=exc.status
                )

        return Route(path, endpoint, methods=[method])

    def api_routes(self) -> list[BaseRoute]:
        return [
            Mount(
                BASE_PATH,
                routes=[
                    self._route("/contact/create", "POST", self.contact_create),
                    self._route("/contact/delete", "DELETE", self.contact_delete),
                    self._route("/contact-list/create", "POST", self.list_create),
                    self._route("/contact-list/delete", "DELETE", self.list_delete),
                    self._route("/contact-list/empty", "POST", self.list_empty),
                ],
            )
        ]
