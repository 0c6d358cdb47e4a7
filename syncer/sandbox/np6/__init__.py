"""NP6 simulator (``https://api-cm.np6.com``): fields, targets, redlist and CSV imports.

Built from DIGEST section 4, ``np6-imports.txt``, ``np6-subscriptions.txt`` and NP6-SLATE.

Routes (all at ``/``; every one needs ``X-Key``, header name case-insensitive):

====================================  =======================================================
``GET /fields``, ``/fields/{id}``     the tenant schema (default seeded on reset, loadable)
``POST/GET /importFormats``           create (409 duplicate name) / list formats
``GET /importFormats/{id}``           one format (``{"identifier": {"guid": id}, ...}``)
``POST/GET /imports``                 create (200, the definition with ``id``) / list
``GET/DELETE /imports/{id}``          one definition / delete it (204)
``PUT /imports/{id}/source``          upload the CSV (``application/octet-stream``)
``POST /imports/{id}/executions``     start an execution -> ``{"startDate", "state": 0, ...}``
``GET /imports/{id}/executions``      the last execution: ``{"state": 0|1|2, ...}``
``GET /targets?unicity=``             one target (404 if none); without ``unicity``: all
``PUT /targets?unicity=``             upsert, flat ``{"<fieldId>": value}`` body (200)
``POST /targets``                     create (409 if the unicity value exists)
``GET /targets/count``                ``{"targetsCount": n}``
``GET/PUT/DELETE /targets/{id}``      read / update (404, 409 unicity clash) / delete (204)
``DELETE /targets``                   bulk delete by unicity, id or segment
``POST /targets/{id}/redlist/{ch}``   opt-out on ``mail`` or ``sms`` -> 204
``GET /targets/redlist/{ch}``         opt-outs between ``startDate`` and ``endDate``
====================================  =======================================================

Every answer carries ``x-request-id``; while a rate limit is configured every answer also
carries ``X-RateLimit-Limit/Remaining/Reset`` and the 429s add ``Retry-After`` (switch
``rate_limit``; table in ``docs/sandbox.md``). Error answers
have an **empty body** (401, 404, 409, ...), except the observed 400 "target cannot be
identified - unicity is null" (plain text). 411 if a POST has no ``Content-Length``; 415 if a
JSON body is not ``application/json`` (or ``*/*+json``).

Default tenant (on reset): fields 1001 ``Email`` (email, unicity, mandatory), 1002 ``orderId``
(textField), 1003 ``amount`` (numeric), 1004 ``orderDate`` (date), 1010 ``FirstName``,
1011 ``LastName``, 1012 ``Phone`` (phone), 1013 ``Birthdate`` (date), 1014 ``Gender``,
1015 ``City``, 1016 ``Country``; import format **1234** binding columns 0..3 to 1001..1004,
separator ``;`` (59), ``startAt`` 1. Value parsing per field type: see :mod:`.fields`.

Documented choices (docs say / we do / switch on :class:`Np6Behaviour`):

====================  ==================================================  ===================
docs say              we do                                               switch
====================  ==================================================  ===================
vnd ``Accept``        406 (empty body; NP6 gives no status, 406 is        ``require_import_
"imperative" for      RFC 9110's) without ``application/vnd.mperf.v8.     accept`` (True)
imports (SLATE        import.v1+json`` on **every** ``/imports`` call,
``_imports.md``       GETs and DELETE included; ``*/*`` is not enough
L401-403)
``startAt`` = "Value  0-based index of the first data record; records     -
of start"             before it are skipped (1 = one header line)
execution state       0 for ``processing_seconds`` after the POST, then   ``processing_
0 / 1 / 2             1, or 2 if the file is malformed. Applied lazily    seconds`` (0.2)
                      by the next API or admin call
malformed file        state 2 and **nothing** applied if any row has the  ``max_bad_lines_
(undocumented)        wrong column count (vs the first record), a value   reported`` (100)
                      its field type rejects, an empty mandatory or
                      unicity cell, broken quoting; also for no data
                      rows, a non-UTF-8 file, an unbound unicity field.
                      ``sandboxDetails`` (rows, badLines = 1-based file
                      lines, errors) is a sandbox extension: the engine
                      must not rely on it
duplicate rule        first / last row of a unicity value in the file     ``duplicate_
ignore/first/last     wins; ``ignore`` drops every row of a duplicated    default`` (last)
                      value; without the feature: the default
``updateExisting``    false: existing targets are left untouched          ``update_existing_
                                                                          default`` (True)
``crushData``         false: empty cells never clear stored values;       ``crush_data_
                      true: they clear them (never the unicity)           default`` (False)
execution body        its ``features`` replace the definition's ones of   -
                      the same type; its ``binding`` wins
execution while one   409 (empty body); DELETE of that import: 409 too    -
is in state 0
execution without     400; no/unknown binding 400; unknown import 404.    -
source                A finished import can run again (source kept,
                      every execution counted)
``GET executions``    404 before the first execution, or 200 ``{}``       ``no_execution``
                                                                          (not_found_404)
features              ``segmentation``, ``redList`` applied (redlist      -
                      origin 2); ``report``, ``normalization`` accepted,
                      no effect
source upload answer  200 ``{"type": "file", "id", "creationDate",        ``max_source_bytes``
                      "updateDate", "filename": "<hex>_<name>", "data":   (256 MiB, else 413)
                      []}``, the name from Content-Disposition
bulk delete: SLATE    200 ``[{"id", "unicity": [v]}]`` of the deleted     ``bulk_delete_
list vs 8.1.0 204     targets (unknown values ignored), or 204            response`` (list)
unknown bulk delete:  unknown values ignored (``[]`` if none known), or   ``unknown_delete``
SLATE lists a 404     404 with nothing deleted                            (empty_200)
429 headers: "may"    ``Retry-After`` + ``X-RateLimit-*``; or the         ``rate_limit``
X-RateLimit-*, no     ``X-RateLimit-*`` only; or none at all              (retry_after)
Retry-After
``GET executions``:   the full object, or ``{"state": n}`` only           ``execution_
8.1.0 ``{"state"}``                                                       body`` (full)
write keys: ids       both accepted; nested ``{"fields": {...}}`` -> 400  -
(SLATE), names (seen) "target cannot be identified - unicity is null"
``PUT /targets?       upsert; keys not sent are kept; ``null``/``""``     -
unicity=``            clears; a body unicity != the query -> 400
email values          lower-cased; unicity lookups case-insensitive       -
redlist POST answer   204; ``origin`` 0..9 (default 1); timestamp ISO or  -
(undocumented)        Unix seconds (default now)
redlist GET dates     both required; ISO; inclusive; naive = UTC          -
====================  ==================================================  ===================

Admin ``/_sandbox/load`` body: ``{"behaviour": {...}, "fields": [field JSON],
"formats": [format JSON], "targets": [target read JSON]}`` (all optional). ``dump_state()``:
``{"targets", "imports" (definitions + "executions" summaries with row counts),
"executionCount", "formats", "fields", "segments", "redlist", "behaviour"}``.
"""

from __future__ import annotations

from .behaviour import Np6Behaviour
from .simulator import DEFAULT_FORMAT_ID, Np6Simulator

__all__ = ["DEFAULT_FORMAT_ID", "Np6Behaviour", "Np6Simulator"]
