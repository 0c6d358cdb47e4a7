"""Facts about Contacthub documents that the config checks rely on."""

from __future__ import annotations

import re

__all__ = ["KNOWN_CONSENTS", "PATH_RE"]

# Every leaf of a customer's ``consents`` object that carries ``status``/``objection``
# (API digest 1.3). ``disclaimer`` holds a date and version, not a status, so it is absent.
KNOWN_CONSENTS: tuple[str, ...] = (
    "marketing.traditional.telephonic",
    "marketing.traditional.papery",
    "marketing.automatic.sms",
    "marketing.automatic.email",
    "marketing.automatic.push",
    "marketing.automatic.im",
    "marketing.automatic.telephonic",
    "profiling.classic",
    "profiling.online",
    "softSpam.email",
    "softSpam.papery",
    "thirdPartyTransfer.profiling",
    "thirdPartyTransfer.marketing",
)

# A dotted path into a document: ``base.contacts.email``, ``properties.amount.total``.
PATH_RE = re.compile(r"[A-Za-z_$@][\w$@-]*(?:\.[\w$@-]+)*")
