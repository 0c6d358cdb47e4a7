"""Who may see and do what in the console, CSRF tokens, and the security headers.

Access (``console`` section of the config):

* no ``token`` configured: only loopback clients (127.0.0.0/8, ::1) are answered without a
  token; any other client gets 401. Proxies are not trusted: the socket's peer address counts.
* ``token`` configured: every request needs a token (``Authorization: Bearer …`` or the
  session cookie the login form sets), from loopback too.
* actions (retry, discard, pause, resume, check) need the ``operator_token``; without one
  configured, the console is read-only for everybody. A read-only caller gets 403.

The session cookie holds an HMAC of the token's name under a key made at start-up, never the
token: it is ``HttpOnly``, ``SameSite=Strict``, and dies with the process.

CSRF: every form carries ``csrf`` = HMAC(key, the ``syncer_csrf`` cookie); a POST whose field is
missing or does not match is refused with 403 before anything runs (bearer callers too).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

from starlette.requests import Request

from ..config.models import SyncerConfig

SESSION_COOKIE = "syncer_console"
CSRF_COOKIE = "syncer_csrf"
CSRF_FIELD = "csrf"

# No inline script or style anywhere: every asset is a file of the package.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages hold personal data
}


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token's name (``token``, ``operator_token``) or ``loopback``."""

    name: str
    can_act: bool


@dataclass
class ConsoleSettings:
    """The console's access settings; :meth:`from_config` reads the ``console`` section."""

    token: str | None = None
    operator_token: str | None = None
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def __repr__(self) -> str:  # never the tokens
        return (
            f"ConsoleSettings(token={'set' if self.token else None}, "
            f"operator_token={'set' if self.operator_token else None})"
        )

    @classmethod
    def from_config(cls, cfg: SyncerConfig) -> ConsoleSettings:
        c = cfg.console
        return cls(
            token=c.token.get_secret_value() or None if c.token else None,
            operator_token=c.operator_token.get_secret_value() or None
            if c.operator_token
            else None,
        )

    # -- tokens --------------------------------------------------------------------------
    def _tokens(self) -> dict[str, str]:
        out = {}
        if self.token:
            out["token"] = self.token
        if self.operator_token:
            out["operator_token"] = self.operator_token
        return out

    def principal_for_token(self, presented: str) -> Principal | None:
        found = None
        for name, value in self._tokens().items():
            # every comparison runs, in constant time: no early exit tells which token it was
            if hmac.compare_digest(presented.encode(), value.encode()):
                found = name
        if found is None:
            return None
        return Principal(found, can_act=found == "operator_token")

    def session_value(self, principal: Principal) -> str:
        return f"{principal.name}.{self._mac('session', principal.name)}"

    def _principal_for_session(self, value: str) -> Principal | None:
        name, _, mac = value.partition(".")
        if name not in self._tokens():
            return None
        if not hmac.compare_digest(mac, self._mac("session", name)):
            return None
        return Principal(name, can_act=name == "operator_token")

    def _mac(self, purpose: str, value: str) -> str:
        # the token is part of the key: changing a token ends its sessions
        key = self.key + hashlib.sha256(repr(sorted(self._tokens().items())).encode()).digest()
        return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    # -- requests ------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Principal | None:
        """The caller, or ``None`` (answer 401)."""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return self.principal_for_token(auth[7:].strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            found = self._principal_for_session(cookie)
            if found is not None:
                return found
        if not self.token and is_loopback(request):
            return Principal("loopback", can_act=False)
        return None

    def csrf_token(self, csrf_cookie: str) -> str:
        return self._mac("csrf", csrf_cookie)

    def csrf_ok(self, request: Request, submitted: str | None) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not submitted:
            return False
        return hmac.compare_digest(submitted, self.csrf_token(cookie))


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)
