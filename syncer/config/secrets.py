"""Finding secrets in a config: for the "must come from the environment" rule and redaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

from syncer.config.issues import KeyPath

__all__ = ["iter_secrets", "secret_values"]


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


def secret_values(cfg: BaseModel) -> list[str]:
    """The plain value of every non-empty secret in ``cfg``, for log redaction."""
    values = (secret.get_secret_value() for _, secret in iter_secrets(cfg))
    return list(dict.fromkeys(v for v in values if v))
