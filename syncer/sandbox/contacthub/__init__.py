"""Contacthub (Contactlab CDP) API simulator, ``/hub/v1/workspaces/{ws}/...``.

Sources: ``/work/shared/api-docs`` (DIGEST section 1, the 1.51 Swagger, the 1.299.1 reference).

Routes (all need ``Authorization: Bearer <token>``): ``GET/POST /customers``,
``GET/PATCH/PUT/DELETE /customers/{id}``, ``GET/POST /events``, ``GET/DELETE /events/{id}``,
``GET /updates``, ``GET /updates/last-offset``,
``GET /configuration/nodes/entries/{nodeId}/unique-customer-matching-policy``.
Admin (beyond the frame's): ``GET /_sandbox/state[?summary=1]``, ``GET/PUT /_sandbox/behaviour``
(partial JSON of :class:`ContacthubBehaviour`), ``POST /_sandbox/load`` with
``{"customers": [...], "events": [...], "append_updates": false, "workspace_id": ...}`` or
``{"generate": {"customers": N, "events": M, "seed": S}}`` (adds to what is stored; loaded
entities are taken as given, unvalidated, and only reach the update stream with
``append_updates``).

Errors: ``{"message", "logref", "data", "errors": [{"path", "message", "data", "code"}]}``, every
key always there (``null`` when empty), on every error, an unknown path or method too. Dates are
written ``2017-06-29T20:23:09.215+0000``. ``docs/sandbox.md`` gives the source of each behaviour.
Checked in this order: 401 ``The client is not authorized to access the API`` (missing/wrong
token), 403 ``workspace not found: <id>``, 404 ``node not found <id>`` (any unknown ``nodeId``),
404 ``customer not found <id>`` / ``event not found <id>``, 413 over 64 kB, 400 otherwise.

================  ====================  ==================================  ========================
topic             docs say              we do                               switch
================  ====================  ==================================  ========================
search page size  default 20, max 50    default 10 (SDK fixtures, Node      max_page_size,
                  (1.51); 1.299.1       SDK e2e), 1..max, else 400          default_page_size
                  silent

page object       1.299.1: maxElements, all of size, totalElements,         page_object
                  maxPages; fixtures:   totalUnfilteredElements (0, as in   union|legacy|
                  totalUnfiltered...    every fixture), totalPages, number, current
                                        maxElements, maxPages; legacy: no
                                        max*, current: no totalUnfiltered...

throttled call    silent (DIGEST 1.6)   injected 429 with Retry-After;      rate_limit
                                        X-RateLimit-* only; no header       retry_after|
                                                                            x_ratelimit|bare

search size=0     std: bad value ->     400 (paging by 0 is meaningless)    -
                  400

search cap        max 10000 matched     first 10000 in sort order           search_cap,
                  elements              reachable; totalElements = min(n,   search_cap_mode
                                        10000), maxElements = 10000; or     truncate|error
                                        400

page past the     std: empty            elements [], page info kept         -
end               collection

sort              prop,asc|desc;        same; ties by id asc; nulls last;   -
                  default updatedAt     no direction = asc
                  desc

fields            comma list            dotted paths that exist, + id       -
                                        always

query semantics   SDK JSON format only  arrays match on any element; ISO    -
                                        strings compare as instants;
                                        BETWEEN inclusive; IN/NOT_IN take
                                        a scalar as a one-element list
                                        (both SDKs send one); malformed ->
                                        400

repeated search   -                     matches cached per query until a    -
                                        customer write (cheap paging)

date-range        -                     a query whose AND-part bounds the   -
search speed                            sort property by date-time, every
                                        value canonical (.mmm+0000):
                                        bisection over the sorted ids,
                                        the rest tested on that run only;
                                        same answers as testing each

POST existing     1.299.1: MERGE        MERGE: properties replaced,         conflict_mode merge|409,
customer          updates it;           collections appended + dedup; 200   merge_status
                  1.51/SDKs: 409        (201 only when created)

matching policy   per node, via         ["externalId"], case-sensitive;     matching_policy,
                  configuration         composite key (all must match);     matching_case_sensitive
                  endpoint              POST without it -> 400 'unique
                                        customer property is required'

PUT               keeps missing props   same (1.299.1 text); STRICT blanks  ?mode=STRICT
                  unless mode=STRICT    every mutable property not given

PATCH             deep merge; STRICT    deep merge, lists replaced +        ?mode=STRICT
                  avoids it             dedup; STRICT replaces given top-
                                        level properties whole

PUT/PATCH unique  409 listed            409 'Conflict with exiting          -
clash                                   customer <id>'

immutable fields  immutable             ignored; another nodeId -> 400      -
in body

email format      format: email         loose check (x@y.z, no spaces) on   -
                                        writes

DELETE customer   200, no schema        200, empty body (Go SDK)            -

cascade (1.52)    events deleted with   yes; one DELETE EVENT update per    cascade_event_updates
                  the customer          event, before the customer's

Forget customer   no path documented    not simulated                       -

POST /events      202 {"id"},           202; visible at once                -
                  asynchronous

event, unknown    silent                400 'event is not valid'            -
customer                                (customerId or EXTERNAL_ID)

event mode        ACTIVE / PASSIVE,     PASSIVE = campaign                  -
filter            not a field           sent/bounced/blacklisted,
                                        invitations, orderShipped, ...

stream offsets    integer, offset       1, 2, 3... per workspace, one per   -
                  exclusive             API write (and per append_updates
                                        load)

nextOffset        'next offset'         offset of the last update returned  -

empty stream      silent                updates [], nextOffset = the        -
page                                    requested offset

no offset, no     silent                from the beginning (offset 0)       -
timestamp

timestamp unit    silent                epoch ms; updates written at/after  timestamp_unit ms|s
                                        it

DELETE payload    silent                the entity as it was before         delete_payload
                                        deletion                            full|id_only

offset on each    not in the schema     not added                           -
update

stream size       0..4000, default 50   same; outside -> 400; 0 -> empty    stream_max_size
                                        page

last-offset       {"lastOffset": n}     0 when empty; nodeId/entity         -
                                        honoured

payload limit     64 kB, customers and  413 with the standard body          max_payload_bytes
                  events

workspace down    -                     503 on every API request of the     down_workspaces
                                        listed workspaces (choice: fault
                                        switch for multi-source tests)

string limits     255; street 500;      same; 400 with a JSON pointer per   -
                  pictureUrl 1000;      error
                  tags 1000 summed
================  ====================  ==================================  ========================
"""

from __future__ import annotations

from .behaviour import (
    DEFAULT_NODE_ID,
    DEFAULT_TOKEN,
    DEFAULT_WORKSPACE_ID,
    EVENT_CONTEXTS,
    EVENT_TYPES,
    ContacthubBehaviour,
)
from .simulator import ContacthubSimulator

__all__ = [
    "DEFAULT_NODE_ID",
    "DEFAULT_TOKEN",
    "DEFAULT_WORKSPACE_ID",
    "EVENT_CONTEXTS",
    "EVENT_TYPES",
    "ContacthubBehaviour",
    "ContacthubSimulator",
]
