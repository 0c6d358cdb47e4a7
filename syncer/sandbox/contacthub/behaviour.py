"""Behaviour switches and constants of the Contacthub simulator."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_WORKSPACE_ID = "7e1a5ad4-2e1c-4f5e-9a51-5a4d1b0c0001"
DEFAULT_NODE_ID = "3f7c2a10-8b4e-4c1d-9e2f-5a4d1b0c0002"
DEFAULT_TOKEN = "sandbox-contacthub-token"
SOURCE_ID = "sandbox-api-source"

# Event types and contexts of API 1.299.1 (a superset of the 1.51 enums).
EVENT_TYPES = frozenset(
    [
        "abandonedCart",
        "abandonedSession",
        "addedCompare",
        "addedProduct",
        "addedReward",
        "addedWishlist",
        "campaignBlacklisted",
        "campaignBounced",
        "campaignLinkClicked",
        "campaignMarkedSpam",
        "campaignOpened",
        "campaignOptinRequested",
        "campaignSent",
        "campaignSubscribed",
        "campaignUnsubscribed",
        "changedSetting",
        "clickedLink",
        "closedTicket",
        "completedOrder",
        "eventConfirmed",
        "eventDeclined",
        "eventEligible",
        "eventInvited",
        "eventNoShow",
        "eventNotInvited",
        "eventParticipated",
        "eventRegistered",
        "formCompiled",
        "genericActiveEvent",
        "genericPassiveEvent",
        "grantedCoupon",
        "loggedIn",
        "loggedOut",
        "openedTicket",
        "orderShipped",
        "removedCompare",
        "removedProduct",
        "removedReward",
        "removedWishlist",
        "repliedTicket",
        "reviewedProduct",
        "searched",
        "serviceSubscribed",
        "serviceUnsubscribed",
        "surveyCompiled",
        "viewedPage",
        "viewedProduct",
        "viewedProductCategory",
    ]
)
# "PASSIVE if the customer receives the event": what the platform does *to* the customer.
PASSIVE_EVENT_TYPES = frozenset(
    [
        "campaignBlacklisted",
        "campaignBounced",
        "campaignOptinRequested",
        "campaignSent",
        "eventEligible",
        "eventInvited",
        "eventNotInvited",
        "genericPassiveEvent",
        "grantedCoupon",
        "orderShipped",
    ]
)
EVENT_CONTEXTS = frozenset(
    [
        "WEB",
        "MOBILE",
        "ECOMMERCE",
        "RETAIL",
        "SOCIAL",
        "DIGITAL_CAMPAIGN",
        "CONTACT_CENTER",
        "IOT",
        "OTHER",
    ]
)

_CHOICES: dict[str, tuple[str, ...]] = {
    "search_cap_mode": ("truncate", "error"),
    "conflict_mode": ("merge", "409"),
    "delete_payload": ("full", "id_only"),
    "timestamp_unit": ("ms", "s"),
    # 429 headers: the status and headers of a throttled call are not documented (DIGEST 1.6)
    "rate_limit": ("retry_after", "x_ratelimit", "bare"),
    # which vintage of the page object: both (default), SDK fixtures', or 1.299.1's
    "page_object": ("union", "legacy", "current"),
}


@dataclass
class ContacthubBehaviour:
    """Switches for the places where the docs are silent, old, or have changed over time.

    Every default is the documented (1.299.1) behaviour or, where the docs are silent, the
    choice recorded in the table of :mod:`syncer.sandbox.contacthub`.
    """

    max_page_size: int = 50
    default_page_size: int = 10
    search_cap: int = 10_000
    search_cap_mode: str = "truncate"
    conflict_mode: str = "merge"
    merge_status: int = 200
    matching_policy: list[str] = field(default_factory=lambda: ["externalId"])
    matching_case_sensitive: bool = True
    delete_payload: str = "full"
    cascade_event_updates: bool = True
    timestamp_unit: str = "ms"
    stream_default_size: int = 50
    stream_max_size: int = 4000
    max_payload_bytes: int = 64 * 1024
    # A fault switch (choice: not an API behaviour): these workspaces answer 503 to every API
    # request, the others keep working; one source of a multi-source syncer is "down".
    down_workspaces: list[str] = field(default_factory=list)
    rate_limit: str = "retry_after"
    page_object: str = "union"

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise ValueError("need 1 <= default_page_size <= max_page_size")
        if not self.matching_policy or not all(isinstance(p, str) for p in self.matching_policy):
            raise ValueError("matching_policy must be a non-empty list of property paths")
        self.matching_policy = list(self.matching_policy)
        if not all(isinstance(w, str) for w in self.down_workspaces):
            raise ValueError("down_workspaces must be a list of workspace ids")
        self.down_workspaces = list(self.down_workspaces)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContacthubBehaviour:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown behaviour switches: {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)

    def updated(self, changes: dict[str, Any]) -> ContacthubBehaviour:
        """A copy with ``changes`` applied (validated like :meth:`from_dict`)."""
        return ContacthubBehaviour.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
