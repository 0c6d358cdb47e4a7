"""The web console: server-rendered pages over the state database (Starlette + Jinja2).

``console_app(store, cfg, settings)`` builds the app; :mod:`.pause` holds the pause flag the
daemon reads (:func:`~syncer.console.pause.is_paused`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ConsoleSettings", "console_app"]

if TYPE_CHECKING:
    from .app import console_app
    from .security import ConsoleSettings


def __getattr__(name: str) -> Any:
    # lazy: importing syncer.console.pause (the daemon does) must not load Starlette and Jinja2
    if name == "console_app":
        from .app import console_app

        return console_app
    if name == "ConsoleSettings":
        from .security import ConsoleSettings

        return ConsoleSettings
    raise AttributeError(name)
