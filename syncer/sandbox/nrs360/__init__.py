"""Local simulator of the 360NRS REST API: contacts, groups and the v2 blacklist.

Built from the Spanish reference (``/work/shared/api-docs/360nrs-api-reference.es.txt``, "S004")
and ``DIGEST.md`` section 2. Routes live under ``/api/rest`` as on
``https://dashboard.360nrs.com/api/rest``; the frame (:mod:`syncer.sandbox.app`) adds faults,
the request log and the ``/_sandbox/`` admin API.

==========================================  ==================================================
endpoint                                    answers
==========================================  ==================================================
``GET /contacts``                           200 ``{data: [...], meta: {pagination}}``; filters
                                            ``email``, ``phone``, ``landline``, ``countryIso``,
                                            ``externalId``; ``include=customFields,groups``;
                                            ``limit`` (100, max 1000), ``page`` (1-based)
``GET /contacts/{id}``                      200 ``{data}`` (``include``), 404
``POST /contacts``                          201 ``{data: {..., links: {self}}}``, 422
``PUT /contacts/{id}``                      200 like POST, 404, 422
``DELETE /contacts/{id}``                   204, 404
``GET /groups`` / ``GET /groups/{id}``      200 (paginated) / 200, 404
``POST /groups`` / ``PUT /groups/{id}``     201 / 200 ``{data: {id, name}}``, 422
``DELETE /groups/{id}``                     204 (its contacts stay, without the membership)
``GET /v2/blacklist/{sms|mailing|voice}``   200 paginated; filters ``recipient``, ``sendingId``
``PUT /v2/blacklist/{type}``                200 ``{data: {type, recipient, isDefinitive,
                                            campaignName, createdAt}}`` (no ``sendingId``: as
                                            documented); adding twice returns the entry
``DELETE /v2/blacklist/{type}``             204 (JSON body ``{"recipient"}``)
==========================================  ==================================================

Errors are always ``{"error": {"code": <int>, "description": "<text>"}}`` (S004:L193-200):

* no/wrong ``Authorization: Basic b64(username:apiPassword)``: 401, code 103,
  ``"Username or password unknown"`` (error table, S004:L9062);
* validation: 422, code 422, one Laravel-style message naming the field, e.g. the documented
  ``"The email field is required."`` / ``"The name field is required."`` /
  ``"The recipient field is required."``; see :mod:`.validation` for every text;
* body that is not a JSON object: 400, code 125, ``"Invalid JSON"`` (error table);
* unknown contact/group id, unknown path or blacklist type, recipient not blacklisted: 404,
  code 404, ``"Resource not found"`` (the documented SMS lookup 404, S004:L458-465);
* known path, wrong method: 405, code 405, ``"Method not allowed"`` (Laravel; plus ``Allow``);
* faults injected by the frame (429/5xx/outage 503): the same body, code = HTTP status.

Pagination follows league/fractal (which the documented ``meta.pagination`` is): ``links.next``
only before the last page, ``links.previous`` only after the first, ``links`` is ``{}`` when
both are absent; ``total_pages`` is at least 1; a page past the end is empty. Links repeat the
request's query parameters in order with ``page`` set, on the simulator's own host (the
documented ``.../contacts?include=customFields%2Cgroups&page=2``).

Where the reference is silent or ambiguous (``Nrs360Behaviour`` switch, default first):

=============================  ==============================  ===================================
docs say                       we do                           switch
=============================  ==============================  ===================================
nothing on duplicate email /   422 ``"The email has already    ``duplicate_email="refuse"``
phone on POST/PUT /contacts    been taken."`` (``phone``       | ``"accept"``
                               likewise; emails compare
                               case-insensitively)
PUT /contacts has the same     request validated by that       ``put_semantics="merge"`` |
parameter table as POST;       table; scalars and custom       ``"replace"`` (unsent fields
nothing on unsent fields       fields not sent are kept        cleared)
                               (``null`` clears a scalar)
PUT groupsIds: "se añadirá"    the groups sent replace the     ``put_groups="replace"`` |
(S004:L3592, copied from       contact's groups                ``"add"``
create)
no 429 documented              injected 429: ``Retry-After``   ``rate_limit="retry_after"`` |
                                                               ``"x_ratelimit"`` | ``"bare"``
``limit`` "Máximo: 1000"       ``limit=1001``: 422 ``"The      ``limit_overflow="reject"`` |
                               limit field must not be         ``"clamp"`` (serve 1000)
                               greater than 1000."``
``groupsNames``: "names of     each name must exist, else      ``group_names="must_exist"`` |
the groups to add the          422 ``"The selected             ``"create"``; a name held by
contact to"                    groupsNames.0 is invalid."``    several groups: the oldest
nothing on duplicate group     allowed (the engine must        ``duplicate_group_names=True``
names                          guard against creating twice)   (False: 422 "already taken")
group update: heading says     only ``PUT /groups/{id}``;      ``group_update_without_id=False``
``PUT /groups/<ID>``, every    ``PUT /groups`` is 405          (True: also ``PUT /groups`` with
example ``PUT /groups``                                        ``{"id", "name"}``)
phone "with prefix", e.g.      digits only, international      ``accept_plus_prefix=False``
``34666666666``; never a       prefix, a real mobile of        ``validate_phone_numbers=True``
``+``                          ``countryIso`` (phonenumbers);  (False: 4-15 digits suffice)
                               ``+34...`` is 422. The doc's
                               own create example
                               ``3466666666`` is a digit short
                               and is rejected
landline example ``900222222`` national or international
(no prefix)                    digits, real non-mobile number
                               of ``countryIso``
``externalId`` is a list       not writable through the API    ``external_id_writable=False``
filter, not a create/update    (ignored like any unknown       (True: accepted on POST/PUT and
parameter nor in the JSON      field), settable by ``load``;   shown in contact JSON)
                               not shown in contact JSON
DELETE blacklist of a          404 ``"Resource not found"``    ``blacklist_delete_missing_ok=
recipient not listed                                           False`` (True: 204)
=============================  ==============================  ===================================

Other choices: ids are increasing integers from 1 (contacts and groups counted apart);
timestamps are UTC ``2018-03-13T14:32:25+00:00``; lists are in id order (blacklists in insertion
order); ``customFields`` ``type`` defaults to ``string``, ``date`` needs ISO 8601
(``2024-05-01`` or a datetime), ``decimal`` a number or numeric string, ``string`` a string,
``value`` may be null; countryIso is stored upper-case; filters are ANDed, ``email`` and
``countryIso`` compare case-insensitively. Lookups by email and phone use indexes (O(1)).

Admin ``load`` takes ``{"contacts": [...], "groups": [...], "blacklist": {"sms": [...]}}`` in
the :meth:`dump_state` format (see :mod:`.loading`).
"""

from __future__ import annotations

from .behaviour import Nrs360Behaviour
from .simulator import Nrs360Simulator

__all__ = ["Nrs360Behaviour", "Nrs360Simulator"]
