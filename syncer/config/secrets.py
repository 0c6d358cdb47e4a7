"""Finding secrets in a config: for the "must come from the environment" rule and redaction.

Besides every ``SecretStr``, the password a ``state.url`` carries is a secret for redaction
(:func:`url_passwords`): it is a plain string (a SQLAlchemy URL, written inline or through
``${VAR}``), so it is found by parsing the URL, in every form it may be shown in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from syncer.config.issues import KeyPath

__all__ = ["SECRET_URL_PARAM", "iter_secrets", "secret_values", "url_passwords"]

#: query parameters of a database URL that hold a secret (libpq: password, sslpassword)
SECRET_URL_PARAM = re.compile(r"password|secret|token", re.IGNORECASE)
# the userinfo password as written, the way SQLAlchemy splits it (up to the first "@")
_USERINFO_PASSWORD = re.compile(r"^[\w+]+://[^:/@]*:(?P<password>[^@]*)@")


def _walk(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, SecretStr]]:
    if isinstance(value, SecretStr):
        yield path, value
    elif isinstance(value, BaseModel):
        yield from iter_secrets(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def iter_secrets(model: BaseModel, path: KeyPath = ()) -> Iterator[tuple[KeyPath, SecretStr]]:
    """Every ``SecretStr`` in ``model`` with its key path (as written in YAML, aliases used)."""
    for name, info in type(model).model_fields.items():
        yield from _walk(getattr(model, name), (*path, info.alias or name))


def url_passwords(url: str) -> list[str]:
    """Every password in database URL ``url``, in each form it may appear in: as written
    (percent-encoded or not), decoded, and encoded again; from the user info
    (``user:PASSWORD@host``) and from query parameters such as ``?password=``."""
    found: list[str] = []
    written = _USERINFO_PASSWORD.match(url)
    if written is not None:
        found.append(written.group("password"))
    query = url.partition("?")[2]
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if SECRET_URL_PARAM.search(unquote(key)):
            found.append(value)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is not None:
        if parsed.password:
            found.append(str(parsed.password))
        for name, given in parsed.query.items():
            if SECRET_URL_PARAM.search(name):
                found += [given] if isinstance(given, str) else list(given)
    forms = []
    for value in filter(None, found):
        plain = unquote(value)
        forms += [value, plain, quote(plain, safe=""), quote_plus(plain)]
    return list(dict.fromkeys(f for f in forms if f))


def secret_values(cfg: BaseModel) -> list[str]:
    """The plain value of every non-empty secret in ``cfg``, for log redaction: every
    ``SecretStr`` and the passwords of ``state.url``."""
    values = [secret.get_secret_value() for _, secret in iter_secrets(cfg)]
    state = getattr(cfg, "state", None)
    url = getattr(state, "url", None)
    if isinstance(url, str):
        values += url_passwords(url)
    return list(dict.fromkeys(v for v in values if v))
