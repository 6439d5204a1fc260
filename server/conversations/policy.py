"""Who may write in a conversation (domain.md §2, "The rule, precisely").

A pure function of plain values, so every branch is tested without a database. Professionals may
always write; a patient may post when both hold:
1. the practitioner is not away now, or the patient is among the away mode's exceptions;
2. and one of: the conversation's ``patient_can_write`` is true; it is unset and the
   practitioner's ``open`` setting is true; the latest professional message allows a reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.clock import PARIS


@dataclass(frozen=True)
class Away:
    start: datetime | None
    until: datetime | None
    message: str | None
    exceptions: frozenset[str]

    def active(self, now: datetime) -> bool:
        if self.start is None and self.until is None:
            return False
        started = self.start is None or self.start <= now
        not_over = self.until is None or now < self.until
        return started and not_over


@dataclass(frozen=True)
class WriteDecision:
    allowed: bool
    # Why not, in words for the patient, and when they may write again (None: when the
    # practitioner writes to them, or unknown).
    reason: str | None = None
    until: datetime | None = None
    code: str | None = None


ALLOWED = WriteDecision(allowed=True)


def _date_fr(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def patient_may_write(
    *,
    patient_id: str,
    practitioner_name: str,
    patient_can_write: bool | None,
    practitioner_open: bool,
    away: Away | None,
    latest_professional_reply_allowed: bool | None,
    now: datetime,
) -> WriteDecision:
    """``latest_professional_reply_allowed`` is None when no professional has written yet."""
    if away is not None and away.active(now) and patient_id not in away.exceptions:
        until = f" jusqu'au {_date_fr(away.until)}" if away.until else ""
        text = f"{practitioner_name} est absent·e{until}."
        if away.message:
            text += f" {away.message}"
        return WriteDecision(False, text, away.until, "away")
    if patient_can_write is True:
        return ALLOWED
    if patient_can_write is None and practitioner_open:
        return ALLOWED
    if latest_professional_reply_allowed:
        return ALLOWED
    if latest_professional_reply_allowed is False:
        reason = (
            f"{practitioner_name} n'attend pas de réponse à son dernier message. "
            "Vous pourrez écrire quand il ou elle vous sollicitera de nouveau."
        )
        return WriteDecision(False, reason, None, "reply_not_allowed")
    reason = (
        f"{practitioner_name} ne reçoit pas de nouveaux messages en dehors des consultations. "
        "Vous pourrez répondre dès qu'il ou elle vous écrira."
    )
    return WriteDecision(False, reason, None, "closed")
