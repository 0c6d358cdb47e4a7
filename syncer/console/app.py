"""The console's Starlette app: pages, actions, access control (see :mod:`.security`).

:func:`console_app` builds it for a store and a config; ``syncer console`` serves it with
uvicorn, and ``syncer run`` can serve the same app next to ``/metrics``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..config.models import SyncerConfig
from ..logs import get_logger, redactor
from ..state.delivery_ops import DISCARDED
from ..state.store import Store
from . import actions, charts, debugger, queries
from .erasures import ledger_for
from .pause import paused_targets, set_paused
from .security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    ConsoleSettings,
    Principal,
    new_csrf_cookie,
)

__all__ = ["console_app"]

HERE = Path(__file__).parent
PUBLIC = ("/static/", "/login")
LAG_SAMPLES = 720  # lag samples kept per stream (one per LAG_EVERY seconds: six hours)
LAG_EVERY = 30.0
SUPERSEDED = "superseded by a newer delivery"  # dlq_ops.dlq_retry's last_error for such rows

log = get_logger(component="console")


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Console:
    """Shared state of one console app: store, config, templates, lag history, flashes."""

    def __init__(self, store: Store, cfg: SyncerConfig, settings: ConsoleSettings) -> None:
        self.store, self.cfg, self.settings = store, cfg, settings
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=_when,
            ago=_ago,
            duration=_duration,
            number=_number,
            count=queries.show_count,
            pretty=_pretty_json,
        )
        self.lag: dict[str, deque[tuple[float, int, float]]] = {}
        self._lag_at = 0.0
        self._lock = threading.Lock()
        self.flashes: OrderedDict[str, str] = OrderedDict()

    # -- rendering ---------------------------------------------------------------------------
    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        principal: Principal | None = getattr(request.state, "principal", None)
        flash = self.flashes.pop(request.query_params.get("flash", ""), None)
        html = self.env.get_template(name).render(
            request=request,
            principal=principal,
            csrf=self.settings.csrf_token(request.state.csrf_cookie),
            csrf_field=CSRF_FIELD,
            flash=flash,
            now=time.time(),
            targets=sorted(self.cfg.targets),
            pipelines=[p.name for p in self.cfg.pipelines],
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def flash_redirect(self, url: str, message: str) -> RedirectResponse:
        key = secrets.token_urlsafe(8)
        with self._lock:
            self.flashes[key] = message
            while len(self.flashes) > 200:
                self.flashes.popitem(last=False)
        sep = "&" if "?" in url else "?"
        return RedirectResponse(f"{url}{sep}flash={key}", status_code=303)

    def sample_lag(self, lags: list[queries.StreamLag], now: float) -> None:
        with self._lock:
            if now - self._lag_at < LAG_EVERY:
                return
            self._lag_at = now
            for s in lags:
                series = self.lag.setdefault(s.stream, deque(maxlen=LAG_SAMPLES))
                series.append((now, s.lag_offsets or 0, s.lag_seconds or 0.0))

    # -- guards ------------------------------------------------------------------------------
    async def action_form(self, request: Request) -> tuple[Principal, Any]:
        """The form of an action POST after the CSRF and operator checks."""
        form = await read_form(request)
        submitted = form.get(CSRF_FIELD)
        if not self.settings.csrf_ok(request, submitted if isinstance(submitted, str) else None):
            raise Forbidden("refused: missing or wrong CSRF token (reload the page and retry)")
        principal: Principal = request.state.principal
        if not principal.can_act:
            raise Forbidden("refused: this token is read-only (actions need the operator token)")
        return principal, form


MAX_FORM = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (every console form is one); anything
    else, or a body over 64 KiB, is an empty form, which every check then refuses."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _raw(form: Any, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _form_str(form: Any, key: str) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) and value != "" else None


def console_app(
    store: Store, cfg: SyncerConfig, settings: ConsoleSettings | None = None
) -> Starlette:
    """The console for ``store`` and ``cfg``; ``settings`` default to ``cfg.console``."""
    console = Console(store, cfg, settings or ConsoleSettings.from_config(cfg))
    c = console

    # -- pages -------------------------------------------------------------------------------
    def overview(request: Request) -> Response:
        now = time.time()
        names = sorted(cfg.targets)
        with store.reader() as conn:
            lags = queries.stream_lags(conn, now)
            by_target = queries.counts_by_target(conn, names)
            due = queries.oldest_due(conn, names)
            through = queries.throughput(conn, names, now)
            runs = queries.last_runs(conn, 8)
            dead = sum(v.get("dead", 0) for v in by_target.values())
            erasures = ledger_for(conn).pending(conn)
            paused = paused_targets(conn)
        c.sample_lag(lags, now)
        lag_charts = {
            stream: charts.sparkline([float(v) for _, v, _ in series], label="lag (offsets)")
            for stream, series in c.lag.items()
        }
        rows = []
        for name in names:
            t = through.get(name) or queries.Throughput(
                series=[0] * int(queries.LOG_WINDOW // queries.BUCKET)
            )
            rows.append(
                {
                    "name": name,
                    "type": cfg.targets[name].type,
                    "states": by_target.get(name, {}),
                    "oldest_due": due.get(name),
                    "last_hour": t.last_hour,
                    "last_hour_done": t.done_last_hour,
                    "chart": charts.sparkline([float(v) for v in t.series], label="records/10 min"),
                    "rate_limited": _metric("syncer_http_429_total", name),
                    "logged_429": t.rate_limited,
                    "breaker": _breaker(name),
                    "paused": name in paused,
                }
            )
        return c.render(
            request,
            "overview.html",
            page="overview",
            lags=lags,
            lag_charts=lag_charts,
            rows=rows,
            runs=runs,
            dead=dead,
            erasures=erasures,
            states=queries.STATES,
        )

    def pipelines(request: Request) -> Response:
        with store.reader() as conn:
            counts = queries.counts_by_pipeline(conn, [p.name for p in cfg.pipelines])
            reasons = queries.top_reasons(conn)
        items = []
        for p in cfg.pipelines:
            conditions = [label for label, _ in debugger.describe_conditions(p.when, p.entity)]
            if p.event_types:
                conditions.insert(0, "event type in " + ", ".join(p.event_types))
            items.append(
                {
                    "p": p,
                    "conditions": conditions,
                    "states": counts.get(p.name, {}),
                    "reasons": reasons.get(p.name, []),
                }
            )
        return c.render(
            request, "pipelines.html", page="pipelines", items=items, states=queries.STATES
        )

    def dead_letters(request: Request) -> Response:
        q = request.query_params
        pipeline, target = q.get("pipeline") or None, q.get("target") or None
        reason = q.get("reason")
        before = _int(q.get("before"))
        with store.reader() as conn:
            groups = queries.dead_groups(conn, pipeline, target)
            rows = queries.dead_rows(conn, pipeline, target, reason, before)
        filters = {"pipeline": pipeline or "", "target": target or "", "reason": reason}
        next_url = None
        if len(rows) == queries.PAGE:
            params = {k: v for k, v in filters.items() if v is not None}
            next_url = "/dead-letters?" + urlencode({**params, "before": rows[-1].id})
        return c.render(
            request,
            "dead_letters.html",
            page="dead",
            groups=groups,
            rows=rows,
            filters=filters,
            next_url=next_url,
            total=sum(g.count for g in groups),
            link=_link,
        )

    def runs_page(request: Request) -> Response:
        before = _int(request.query_params.get("before"))
        with store.reader() as conn:
            runs = queries.last_runs(conn, 50, before)
        next_url = f"/runs?before={runs[-1].id}" if len(runs) == 50 else None
        return c.render(request, "runs.html", page="runs", runs=runs, next_url=next_url)

    def records(request: Request) -> Response:
        query = request.query_params.get("q", "")
        hits: list[debugger.Hit] = []
        if query.strip():
            with store.reader() as conn:
                hits = debugger.search(conn, query)
        return c.render(request, "records.html", page="records", q=query, hits=hits)

    def record(request: Request) -> Response:
        cid = request.path_params["cid"]
        with store.reader() as conn:
            found = debugger.record(conn, cfg, cid)
        if found is None:
            return c.render(
                request, "records.html", status=404, page="records", q=cid, hits=[], missing=cid
            )
        return c.render(
            request,
            "record.html",
            page="records",
            r=found,
            # a delivered (or discarded) row keeps its last failure: shown as history, so a
            # "done" badge never sits next to what reads as a current error
            closed_states=("done", DISCARDED),
            superseded=SUPERSEDED,  # the closing reason dlq retry writes: current, not history
        )

    def erasures_page(request: Request) -> Response:
        before = _float(request.query_params.get("before"))
        with store.reader() as conn:
            ledger = ledger_for(conn)
            items = ledger.page(conn, before, queries.PAGE)
            pending = ledger.pending(conn)
        next_url = (
            f"/erasures?before={items[-1].requested_at}" if len(items) == queries.PAGE else None
        )
        return c.render(
            request,
            "erasures.html",
            page="erasures",
            items=items,
            pending=pending,
            next_url=next_url,
        )

    def targets_page(request: Request) -> Response:
        with store.reader() as conn:
            by_target = queries.counts_by_target(conn, sorted(cfg.targets))
            paused = paused_targets(conn)
        items = [
            {
                "name": name,
                "settings": public_settings(t),
                "states": by_target.get(name, {}),
                "paused": name in paused,
                "pipelines": [p.name for p in cfg.pipelines if p.target == name],
            }
            for name, t in sorted(cfg.targets.items())
        ]
        return c.render(request, "targets.html", page="targets", items=items, states=queries.STATES)

    # -- actions -----------------------------------------------------------------------------
    async def dead_action(request: Request) -> Response:
        principal, form = await c.action_form(request)
        op = _form_str(form, "op")
        if op not in ("retry", "discard"):
            return c.render(request, "message.html", status=400, message=f"unknown action {op!r}")
        scope = actions.Scope(
            id=_int(_form_str(form, "id")),
            pipeline=_form_str(form, "pipeline"),
            target=_form_str(form, "target"),
            # a reason may be "" (rows without an error): has_reason says the field counts
            reason=_raw(form, "reason") if _form_str(form, "has_reason") else None,
        )
        back = _safe_back(_form_str(form, "back")) or "/dead-letters"
        if _form_str(form, "confirm") != "yes":
            with store.reader() as conn:
                count = len(actions.scope_ids(conn, scope))
            return c.render(
                request,
                "confirm.html",
                page="dead",
                action="/dead-letters/action",
                question=f"{op.capitalize()} {scope.describe()}: {count} row(s)?",
                fields={
                    "op": op,
                    "id": "" if scope.id is None else str(scope.id),
                    "pipeline": scope.pipeline or "",
                    "target": scope.target or "",
                    "reason": scope.reason or "",
                    "has_reason": "1" if scope.reason is not None else "",
                    "back": back,
                },
                back=back,
                danger=op == "discard",
            )

        def run() -> str:
            now = time.time()
            with store.transaction() as conn:
                if op == "retry":
                    retried, superseded = actions.retry(conn, scope, now)
                    done = f"{retried} queued again, {superseded} closed as superseded"
                else:
                    done = f"{actions.discard(conn, scope, now)} discarded"
            log.info(
                "console action",
                who=principal.name,
                action=f"dlq_{op}",
                scope=scope.describe(),
                result=done,
            )
            return done

        message = await run_in_threadpool(run)
        return c.flash_redirect(back, f"{op}: {scope.describe()}: {message}")

    async def target_action(request: Request) -> Response:
        principal, form = await c.action_form(request)
        name = request.path_params["name"]
        op = _form_str(form, "op")
        if name not in cfg.targets or op not in ("pause", "resume", "check"):
            return c.render(request, "message.html", status=400, message="unknown target or action")
        if op != "check" and _form_str(form, "confirm") != "yes":
            return c.render(
                request,
                "confirm.html",
                page="targets",
                action=f"/targets/{name}",
                question=f"{op.capitalize()} target {name}?"
                + (
                    " The daemon stops claiming for it until it is resumed."
                    if op == "pause"
                    else ""
                ),
                fields={"op": op, "back": "/targets"},
                back="/targets",
                danger=op == "pause",
            )

        def run() -> str:
            if op == "check":
                return check_target(name, cfg)
            with store.transaction() as conn:
                set_paused(conn, name, op == "pause")
            return "paused" if op == "pause" else "resumed"

        result = await run_in_threadpool(run)
        log.info(
            "console action", who=principal.name, action=f"target_{op}", target=name, result=result
        )
        return c.flash_redirect("/targets", f"{name}: {result}")

    # -- login ---------------------------------------------------------------------------------
    async def login(request: Request) -> Response:
        nxt = _safe_back(request.query_params.get("next")) or "/"
        if request.method == "GET":
            return c.render(request, "login.html", page="login", next=nxt)
        form = await read_form(request)
        submitted = form.get(CSRF_FIELD)
        if not c.settings.csrf_ok(request, submitted if isinstance(submitted, str) else None):
            return c.render(
                request,
                "login.html",
                status=403,
                page="login",
                next=nxt,
                error="missing or wrong CSRF token: reload the page",
            )
        token = form.get("token")
        principal = c.settings.principal_for_token(token if isinstance(token, str) else "")
        if principal is None:
            log.warning("console login refused", client=_client(request))
            return c.render(
                request, "login.html", status=401, page="login", next=nxt, error="unknown token"
            )
        log.info("console login", who=principal.name, client=_client(request))
        response = RedirectResponse(_safe_back(_form_str(form, "next")) or "/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            c.settings.session_value(principal),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        form = await read_form(request)
        submitted = form.get(CSRF_FIELD)
        if not c.settings.csrf_ok(request, submitted if isinstance(submitted, str) else None):
            raise Forbidden("refused: missing or wrong CSRF token")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    routes = [
        Route("/", overview),
        Route("/pipelines", pipelines),
        Route("/dead-letters", dead_letters),
        Route("/dead-letters/action", dead_action, methods=["POST"]),
        Route("/runs", runs_page),
        Route("/records", records),
        Route("/records/{cid:path}", record),
        Route("/erasures", erasures_page),
        Route("/targets", targets_page),
        Route("/targets/{name}", target_action, methods=["POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Guard, console=console)],
        exception_handlers={Forbidden: _forbidden_handler(console)},
    )
    app.state.console = console
    return app


class _Guard(BaseHTTPMiddleware):
    """Authentication, the CSRF cookie, the security headers, clean 403s."""

    def __init__(self, app: Any, console: Console) -> None:
        super().__init__(app)
        self.console = console

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        c = self.console
        cookie = request.cookies.get(CSRF_COOKIE)
        fresh = cookie is None
        request.state.csrf_cookie = cookie or new_csrf_cookie()
        principal = c.settings.authenticate(request)
        request.state.principal = principal
        public = any(request.url.path.startswith(p) for p in PUBLIC)
        response: Response
        if principal is None and not public:
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                response = c.render(
                    request,
                    "login.html",
                    status=401,
                    page="login",
                    next=_safe_back(str(request.url.path)) or "/",
                )
            else:
                response = Response(
                    "401: a console token is needed\n", status_code=401, media_type="text/plain"
                )
            response.headers["WWW-Authenticate"] = 'Bearer realm="syncer console"'
        else:
            response = await call_next(request)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE,
                request.state.csrf_cookie,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        for k, v in SECURITY_HEADERS.items():
            response.headers[k] = v
        return response


def _forbidden_handler(console: Console) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        message = exc.message if isinstance(exc, Forbidden) else "refused"
        log.warning("console refused", reason=message, client=_client(request))
        return console.render(request, "message.html", status=403, message=message)

    return handle


def public_settings(t: Any) -> dict[str, Any]:
    """A target's settings that are safe to show: never a secret, a user name or a key."""
    out: dict[str, Any] = {"type": t.type, "base_url": _strip_userinfo(str(t.base_url))}
    for key in ("max_in_flight", "rate_limit", "timeout", "max_attempts", "batch_size", "mode"):
        if hasattr(t, key) and getattr(t, key) is not None:
            out[key] = getattr(t, key)
    return out


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_target(name: str, cfg: SyncerConfig) -> str:
    """The target's own cheap authenticated call (``Target.check``), as one line."""
    from ..targets.registry import build_target

    try:
        target = build_target(name, cfg.targets[name])
    except Exception as exc:  # a connector that cannot be built is the answer here
        return redactor.redact_text(f"check failed: {type(exc).__name__}: {exc}")
    try:
        target.check()
    except Exception as exc:
        return redactor.redact_text(f"check failed: {type(exc).__name__}: {exc}")
    finally:
        target.close()
    return "check ok: credentials accepted"


def _metric(name: str, target: str) -> float | None:
    from ..observability.metrics import REGISTRY

    value = REGISTRY.get_sample_value(name, {"target": target})
    return None if value is None else float(value)


def _breaker(target: str) -> str:
    value = _metric("syncer_circuit_state", target)
    return {None: "—", 0.0: "closed", 1.0: "half-open", 2.0: "open"}.get(value, "?")


def _link(**params: Any) -> str:
    return "/dead-letters?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _safe_back(url: str | None) -> str | None:
    """A local path only (no open redirect)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return None
    return url


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z"


def _ago(ts: float | None, now: float | None = None) -> str:
    if ts is None:
        return "—"
    delta = (now or time.time()) - ts
    return _duration(delta) + " ago" if delta >= 0 else "due in " + _duration(-delta)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = max(0.0, float(seconds))
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _number(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _pretty_json(value: Any) -> str:
    """``value`` indented; a string is JSON text already (a delivery log's ``sent``)."""
    import json

    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except ValueError:
            return text
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
