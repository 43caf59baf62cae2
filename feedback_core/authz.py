"""Authorization: who may take which action, checked at the moment of the action.

The dashboard and the API both act through ``Operator``; plain ``FeedbackSystem`` calls stay
available to trusted code (scripts, tests, the worker). A refusal raises
``PermissionDeniedError`` and is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from feedback_core.db import write_transaction
from feedback_core.errors import PermissionDeniedError
from feedback_core.recording import write_audit
from feedback_core.versions import ANY_ACTIVE

ROLES = ("viewer", "approver", "admin")

# action -> roles allowed to take it
PERMISSIONS: dict[str, frozenset[str]] = {
    "adjustment.approve": frozenset({"approver", "admin"}),
    "adjustment.reject": frozenset({"approver", "admin"}),
    "adjustment.revert": frozenset({"approver", "admin"}),
    "retrain.request": frozenset({"admin"}),
    "model.activate": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Principal:
    """A named person or program with roles."""

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, name: str, roles: Iterable[str]) -> "Principal":
        """Build a principal, rejecting unknown roles."""
        roles = frozenset(r.strip() for r in roles if r and r.strip())
        unknown = roles - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; allowed: {', '.join(ROLES)}")
        return cls(name, roles)

    def can(self, action: str) -> bool:
        """Say whether this principal may take ``action``."""
        return bool(self.roles & PERMISSIONS[action])


class Operator:
    """The loop's state-changing operations, each checked against a principal's roles."""

    def __init__(self, system: Any, principal: Principal) -> None:
        self.system = system
        self.principal = principal

    def _require(self, action: str, entity_type: str, entity_id: Any = None) -> None:
        if self.principal.can(action):
            return
        with write_transaction(self.system.engine) as conn:
            write_audit(
                conn,
                at=self.system.now(),
                actor=self.principal.name,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                outcome="denied",
                details={"roles": sorted(self.principal.roles)},
            )
        allowed = " or ".join(sorted(PERMISSIONS[action]))
        raise PermissionDeniedError(
            f"{self.principal.name} may not {action.replace('.', ' ')}: needs the {allowed} role"
        )

    def approve_adjustment(self, adjustment_id: int, magnitude: float | None = None) -> dict:
        """Approve (and apply) a proposal as this principal."""
        self._require("adjustment.approve", "adjustment", adjustment_id)
        return self.system.approve_adjustment(adjustment_id, self.principal.name, magnitude=magnitude)

    def reject_adjustment(self, adjustment_id: int, note: str = "") -> dict:
        """Reject a proposal as this principal."""
        self._require("adjustment.reject", "adjustment", adjustment_id)
        return self.system.reject_adjustment(adjustment_id, self.principal.name, note)

    def approve_adjustments(
        self, adjustment_ids: list[int], magnitudes: dict[int, float] | None = None
    ) -> dict:
        """Approve many proposals as this principal (``magnitudes``: edited ones, by id)."""
        self._require("adjustment.approve", "adjustment")
        return self.system.approve_adjustments(adjustment_ids, self.principal.name, magnitudes)

    def reject_adjustments(self, adjustment_ids: list[int], note: str = "") -> dict:
        """Reject many proposals as this principal."""
        self._require("adjustment.reject", "adjustment")
        return self.system.reject_adjustments(adjustment_ids, self.principal.name, note)

    def revert_adjustment(self, adjustment_id: int) -> dict:
        """Revert an applied adjustment as this principal."""
        self._require("adjustment.revert", "adjustment", adjustment_id)
        return self.system.revert_adjustment(adjustment_id, self.principal.name)

    def request_retrain(self) -> dict:
        """Queue a manual retrain as this principal."""
        self._require("retrain.request", "retrain_job")
        return self.system.request_retrain(self.principal.name)

    def activate_model_version(self, version_id: int, expected_active=ANY_ACTIVE) -> dict:
        """Activate (or roll back to) a model version as this principal; with ``expected_active``
        only while that version (None: none) is still the active one."""
        self._require("model.activate", "model_version", version_id)
        return self.system.activate_model_version(
            version_id, self.principal.name, expected_active=expected_active
        )
