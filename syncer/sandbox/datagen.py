"""Seeded, fast generator of realistic Contacthub customers and events.

Pure: the same arguments always give the same data. Customers are Italian, Spanish and French
(with accents; rarely non-Latin or emoji names), with the mess real CDP data has: emails with
upper case or stray spaces, mobile phones in national and international formats, ~3% invalid
phones, missing contacts, country codes *and* names, mixed consents, tags, loyalty tiers,
nulls and unknown extended fields. ``registeredAt`` spreads over 2018-2025 (the backfill slices
by it) and ``updatedAt >= registeredAt``.

    customers = list(generate_customers(10_000, seed=1, node_id=NODE))
    events = list(generate_events(customers, 20_000, seed=1))
"""

from __future__ import annotations

import functools
import random
import time
import unicodedata
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

START = datetime(2018, 1, 1, tzinfo=UTC).timestamp()
END = datetime(2025, 12, 31, tzinfo=UTC).timestamp()
SOURCE = "sandbox-datagen"
_T = TypeVar("_T")


def _words(text: str) -> list[str]:
    return text.split()


FIRST = {
    "IT": _words(
        "Giulia Francesca Chiara Sofia Martina Alessandro Marco Luca Matteo Andrea "
        "Niccolò Lorenzo Gabriele Federica Elena Giuseppe Antonella Davide Ilaria Noemi"
    ),
    "ES": _words(
        "María José Lucía Sofía Martín Hugo Pablo Álvaro Alejandro Carmen Nuria Iñaki "
        "Jesús Begoña Raúl Inés Ramón Ángela Íñigo Sergio Àlex"
    ),
    "FR": _words(
        "Camille Léa Chloé Zoé Hélène Théo Louis Gabriel Jules François Élodie Mathéo "
        "Amélie Benoît Joël Gaëlle Anaïs Noël Céline Jérôme"
    ),
}
LAST = {
    "IT": _words(
        "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno "
        "Gallo Conti De_Luca Mancini Costa Giordano Rizzo Lombardi Moretti D'Angelo "
        "Fabbrì"
    ),
    "ES": _words(
        "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín "
        "Jiménez Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Núñez De_la_Cruz Jordà"
    ),
    "FR": _words(
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon "
        "Laurent Lefèvre Michel Garcia David Bertrand Roux Fontaine Lemaître Gaël Le_Goff"
    ),
}
EXOTIC = [
    ("Дмитрий", "Иванов"),
    ("王", "伟"),
    ("Αλέξανδρος", "Παπαδόπουλος"),
    ("さくら", "田中"),
    ("Giulia 🌸", "Rossi"),
    ("Ana 💃", "García"),
    ("محمد", "علي"),
]
DOMAINS = {
    "IT": ["gmail.com", "libero.it", "tiscali.it", "hotmail.it", "yahoo.it", "outlook.com"],
    "ES": ["gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"],
    "FR": ["gmail.com", "orange.fr", "free.fr", "laposte.net", "yahoo.fr", "sfr.fr"],
}
COUNTRY_NAMES = {
    "IT": ["IT", "IT", "Italia", "Italy"],
    "ES": ["ES", "ES", "España", "Spain"],
    "FR": ["FR", "FR", "France"],
}
CITIES = {
    "IT": [("Milano", "20121"), ("Roma", "00184"), ("Napoli", "80133"), ("Torino", "10121")],
    "ES": [
        ("Madrid", "28013"),
        ("Barcelona", "08002"),
        ("Sevilla", "41004"),
        ("A Coruña", "15001"),
    ],
    "FR": [("Paris", "75004"), ("Lyon", "69002"), ("Marseille", "13001"), ("Nantes", "44000")],
}
LOCALES = {"IT": "it_IT", "ES": "es_ES", "FR": "fr_FR"}
AUTO_TAGS: list[list[str]] = [
    [],
    [],
    ["web"],
    ["app"],
    ["store"],
    ["web", "app"],
    ["import"],
    ["web", "store"],
]
TIERS = ["bronze", "bronze", "silver", "silver", "gold", "platinum", None]
INVALID_PHONES = ["12345", "347-ABC-1234", "+39 000", "n/a", "0000000000", "+33 6 12"]
PAGES = ["/", "/shop/shoes", "/shop/bags", "/sale", "/account", "/cart", "/blog/summer-looks"]


def _pick(rng: random.Random, seq: Sequence[_T]) -> _T:
    return seq[int(rng.random() * len(seq))]


def _between(rng: random.Random, low: int, high: int | None = None) -> int:
    """Like ``randrange(low, high)`` (or ``randrange(low)``), several times faster."""
    if high is None:
        low, high = 0, low
    return low + int(rng.random() * (high - low))


@functools.lru_cache(maxsize=16384)
def _iso_day(days: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(days * 86400))


def iso_ts(ts: float) -> str:
    """Epoch seconds -> the Contacthub spelling, ``2017-06-29T20:23:09.215+0000``."""
    whole = int(ts)
    days, secs = divmod(whole, 86400)  # the date part is cached: a million calls add up
    hours, secs = divmod(secs, 3600)
    return (
        f"{_iso_day(days)}{hours:02d}:{secs // 60:02d}:{secs % 60:02d}"
        f".{int((ts - whole) * 1000):03d}+0000"
    )


def seeded_uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


@functools.lru_cache(maxsize=4096)
def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def mobile_phone(rng: random.Random, country: str) -> str | None:
    roll = rng.random()
    if roll < 0.10:
        return None
    if roll < 0.13:
        return _pick(rng, INVALID_PHONES)
    d = f"{_between(rng, 10**8):08d}"
    if country == "IT":
        p = "3" + _pick(rng, ["20", "28", "33", "38", "39", "40", "47", "48", "49"]) + d[:7]
        return _pick(rng, [f"+39 {p[:3]} {p[3:6]} {p[6:]}", p, f"+39{p}", f"0039 {p}", f"+39 {p}"])
    if country == "ES":
        p = _pick(rng, "67") + d
        return _pick(rng, [f"+34 {p[:3]} {p[3:6]} {p[6:]}", f"0034{p}", p, f"+34{p}"])
    p = _pick(rng, "67") + d
    pairs = " ".join(p[i : i + 2] for i in range(1, 9, 2))
    return _pick(rng, [f"+33 {p[0]} {pairs}", f"0{p[0]} {pairs}", f"0033{p}", f"+33{p}"])


def _email(rng: random.Random, first: str, last: str, country: str, i: int) -> str | None:
    roll = rng.random()
    if roll < 0.06:
        return None
    f, surname = ascii_slug(first), ascii_slug(last)
    if not f or not surname:
        local = f"user{i}"
    else:
        local = _pick(
            rng,
            [
                f"{f}.{surname}",
                f"{f[0]}{surname}",
                f"{f}{surname}{i % 1000}",
                f"{f}.{surname}{i}",
                f"{surname}.{f}",
            ],
        )
    email = f"{local}@{_pick(rng, DOMAINS[country])}"
    if roll > 0.97:
        email = email.upper() if roll > 0.985 else email.title()
    elif roll > 0.95:
        email = f" {email} " if roll > 0.96 else f"{email} "
    return email


def _dob(rng: random.Random) -> str:
    return f"{_between(rng, 1945, 2006)}-{_between(rng, 1, 13):02d}-{_between(rng, 1, 29):02d}"


def _consent(rng: random.Random, p_yes: float) -> dict[str, bool]:
    objection = rng.random() < 0.05
    return {
        "status": not objection and rng.random() < p_yes,
        "limitation": False,
        "objection": objection,
    }


class _Parts:
    """With ``shared``, one object per distinct small part (address, consents, tags...): a
    million customers repeat a few hundred of them. Only for a store that never mutates its
    entities in place (the simulators); the values are the same either way."""

    def __init__(self, shared: bool) -> None:
        self._table: dict[tuple[Any, ...], Any] | None = {} if shared else None

    def __call__(self, key: tuple[Any, ...], obj: _T) -> _T:
        if self._table is None:
            return obj
        hit: _T = self._table.setdefault(key, obj)
        return hit

    def consents(self, email: dict[str, bool], sms: dict[str, bool]) -> dict[str, Any]:
        email = self(("consent", *email.values()), email)
        sms = self(("consent", *sms.values()), sms)
        automatic = self(("automatic", id(email), id(sms)), {"email": email, "sms": sms})
        return self(("marketing", id(automatic)), {"automatic": automatic})

    def tags(self, auto: int, manual: list[str]) -> dict[str, list[str]]:
        auto_tags = self(("auto", auto), list(AUTO_TAGS[auto]))
        manual = self(("manual", *manual), manual)
        return self(("tags", id(auto_tags), id(manual)), {"auto": auto_tags, "manual": manual})


def generate_customers(
    n: int, *, seed: int, node_id: str, shared: bool = False
) -> Iterator[dict[str, Any]]:
    """``n`` customers as stored by Contacthub (full entity dicts), lazily.

    ``shared``: equal small parts are one object (see :class:`_Parts`); never mutate them.
    """
    rng = random.Random(seed)
    span = END - START
    parts = _Parts(shared)
    for i in range(n):
        roll = rng.random()
        country = "IT" if roll < 0.55 else ("ES" if roll < 0.8 else "FR")
        if rng.random() < 0.01:
            first, last = _pick(rng, EXOTIC)
        else:
            first = _pick(rng, FIRST[country])
            last = _pick(rng, LAST[country]).replace("_", " ")
        registered = START + rng.random() ** 0.8 * span
        updated = min(END, registered + rng.random() * _pick(rng, (0, 86400, 86400 * 400)))
        city, zip_code = _pick(rng, CITIES[country])
        manual = [
            t
            for t, p in (("vip", 0.15), ("newsletter", 0.4), ("loyalty", 0.25))
            if rng.random() < p
        ]
        extended: dict[str, Any] = {
            "loyaltyTier": _pick(rng, TIERS),
            "points": _between(rng, 0, 5000),
        }
        if rng.random() < 0.03:
            extended[_pick(rng, ("legacyCode", "favouriteStore", "crmNote"))] = (
                f"X{_between(rng, 10**6)}"
            )
        else:
            extended = parts(("extended", *extended.values()), extended)
        base: dict[str, Any] = {
            "firstName": first if rng.random() > 0.01 else None,
            "lastName": last,
            "gender": _pick(rng, ("female", "male", None)),
            "dob": _dob(rng) if rng.random() < 0.7 else None,
            "locale": LOCALES[country],
            "contacts": {
                "email": _email(rng, first, last, country, i),
                "mobilePhone": mobile_phone(rng, country),
            },
            "address": {
                "city": city,
                "zip": zip_code,
                "country": _pick(rng, COUNTRY_NAMES[country]),
            },
        }
        address = base["address"]
        base["address"] = parts(("address", *address.values()), address)
        registered_at = iso_ts(registered)
        consents: dict[str, Any] = {}
        if rng.random() > 0.1:
            email_consent = _consent(rng, 0.65)
            consents = {
                "disclaimer": {"date": registered_at, "version": "v2"},
                "marketing": parts.consents(email_consent, _consent(rng, 0.4)),
            }
        yield {
            "id": seeded_uuid(rng),
            "intId": i + 1,
            "externalId": f"CRM-{seed % 1000:03d}-{i:07d}",
            "nodeId": node_id,
            "base": base,
            "consents": consents,
            "extended": extended,
            "extra": None,
            "tags": parts.tags(_between(rng, len(AUTO_TAGS)), manual),
            "enabled": rng.random() > 0.02,
            "registeredAt": registered_at,
            "updatedAt": iso_ts(updated),
            "version": _between(rng, 0, 4),
            "deleted": 0,
            "sourceInfo": parts(("source",), {"registeredBy": SOURCE, "updatedBy": SOURCE}),
        }


def order_properties(rng: random.Random, n: int) -> dict[str, Any]:
    """``completedOrder`` properties: orderId, products and ``amount.total``."""
    products: list[dict[str, Any]] = [
        {
            "sku": f"SKU{_between(rng, 10**5):05d}",
            "name": _pick(rng, ("Sneakers", "Borsa", "Camicia", "Vestido")),
            "price": round(rng.uniform(9, 250), 2),
            "quantity": _between(rng, 1, 4),
        }
        for _ in range(_between(rng, 1, 4))
    ]
    subtotal = round(sum(p["price"] * p["quantity"] for p in products), 2)
    shipping = _pick(rng, (0.0, 4.9, 6.9))
    return {
        "orderId": f"ORD-{n:08d}",
        "type": "sale",
        "storeCode": _pick(rng, ("WEB", "MI01", "MAD2", "PAR3")),
        "paymentMethod": _pick(rng, ("card", "paypal", "cash")),
        "products": products,
        "amount": {
            "total": round(subtotal + shipping, 2),
            "revenue": subtotal,
            "shipping": shipping,
            "tax": round(subtotal * 0.22, 2),
            "discount": 0.0,
            "currency": "EUR",
        },
    }


def generate_events(
    customers: Sequence[dict[str, Any]], n: int, *, seed: int
) -> Iterator[dict[str, Any]]:
    """``n`` events of random ``customers``: completedOrder, viewedPage, campaignUnsubscribed."""
    rng = random.Random(seed ^ 0x5EED)
    if not customers:
        return
    for i in range(n):
        customer = customers[_between(rng, len(customers))]
        start = datetime.fromisoformat(customer["registeredAt"]).timestamp()
        date = iso_ts(start + rng.random() * (END - start))
        kind = rng.choices(
            ("viewedPage", "completedOrder", "campaignUnsubscribed"), (0.6, 0.32, 0.08)
        )[0]
        if kind == "completedOrder":
            props, context = order_properties(rng, i), _pick(rng, ("ECOMMERCE", "RETAIL"))
        elif kind == "viewedPage":
            path = _pick(rng, PAGES)
            props, context = (
                {
                    "url": f"https://shop.example.com{path}",
                    "path": path,
                    "title": path.strip("/") or "Home",
                },
                "WEB",
            )
        else:
            props = {
                "channel": _pick(rng, ("EMAIL", "SMS")),
                "campaignId": f"CMP{_between(rng, 1000):04d}",
                "reason": _pick(rng, ("too_many", "not_interested", None)),
            }
            context = "DIGITAL_CAMPAIGN"
        yield {
            "id": seeded_uuid(rng),
            "customerId": customer["id"],
            "bringBackProperties": None,
            "type": kind,
            "context": context,
            "contextInfo": {},
            "properties": props,
            "tracking": None,
            "date": date,
            "registeredAt": date,
            "updatedAt": date,
        }


def generate_dataset(
    n_customers: int, n_events: int, *, seed: int, node_id: str, shared: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Customers and events together (events need the customers)."""
    customers = list(generate_customers(n_customers, seed=seed, node_id=node_id, shared=shared))
    return customers, list(generate_events(customers, n_events, seed=seed))
