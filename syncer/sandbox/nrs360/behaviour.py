"""Switches for the 360NRS behaviours the reference does not pin down.

Every default is the strict reading (the one that makes a client bug visible); see the table in
the package docstring (:mod:`syncer.sandbox.nrs360`) for what the docs say about each one.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import Literal

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Nrs360Behaviour:
    """How the simulator resolves the reference's gaps (defaults: strict)."""

    #: ``POST``/``PUT /contacts`` with an email or mobile phone another contact already has:
    #: ``"refuse"`` answers 422 ``"The email has already been taken."``; ``"accept"`` stores
    #: it (a second contact with the same email).
    duplicate_email: Literal["refuse", "accept"] = "refuse"
    #: ``PUT /contacts/{id}``: ``"merge"`` keeps the scalars and custom fields not sent (custom
    #: fields merge by key); ``"replace"`` clears them. Groups: see ``put_groups``.
    put_semantics: Literal["merge", "replace"] = "merge"
    #: ``PUT /contacts/{id}`` with ``groupsIds``/``groupsNames``: ``"replace"`` the contact's
    #: groups by those sent; ``"add"`` them to its groups (the reference's "se añadirá").
    put_groups: Literal["replace", "add"] = "replace"
    #: injected 429s carry ``Retry-After`` (``"retry_after"``), ``X-RateLimit-*`` only
    #: (``"x_ratelimit"``) or no header (``"bare"``): the reference documents no 429 at all.
    rate_limit: Literal["retry_after", "x_ratelimit", "bare"] = "retry_after"
    #: ``limit`` above 1000: ``"reject"`` answers 422; ``"clamp"`` serves 1000 per page.
    limit_overflow: Literal["reject", "clamp"] = "reject"
    #: ``groupsNames`` naming no group: ``"must_exist"`` answers 422; ``"create"`` creates it.
    group_names: Literal["must_exist", "create"] = "must_exist"
    #: ``POST /groups`` with a name already used: allowed (``True``) or 422 (``False``).
    duplicate_group_names: bool = True
    #: Also accept ``PUT /groups`` with ``{"id", "name"}`` in the body (the doc's code examples).
    group_update_without_id: bool = False
    #: Accept (and strip) a leading ``+`` on ``phone``; otherwise such a number is invalid.
    accept_plus_prefix: bool = False
    #: Check ``phone``/``landline`` with ``phonenumbers`` (real number of ``countryIso``).
    validate_phone_numbers: bool = True
    #: Accept ``externalId`` on ``POST``/``PUT /contacts`` and show it in contact JSON.
    external_id_writable: bool = False
    #: ``DELETE /v2/blacklist/{type}`` of a recipient not listed: 204 (``True``) or 404.
    blacklist_delete_missing_ok: bool = False
    #: the old name of ``duplicate_email`` (``"reject"``/``"allow"``), kept for its callers
    duplicates: InitVar[Literal["reject", "allow"] | None] = None

    def __post_init__(self, duplicates: Literal["reject", "allow"] | None) -> None:
        if duplicates is not None:
            choice = {"reject": "refuse", "allow": "accept"}[duplicates]
            object.__setattr__(self, "duplicate_email", choice)
