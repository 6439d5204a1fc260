"""Every branch of the write rule (domain.md §2), as a pure function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.conversations.policy import Away, patient_may_write

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def decide(**overrides: object) -> tuple[bool, str | None]:
    args: dict[str, object] = {
        "patient_id": "p1",
        "practitioner_name": "Dr Claire Martin",
        "patient_can_write": None,
        "practitioner_open": False,
        "away": None,
        "latest_professional_reply_allowed": None,
        "now": NOW,
    }
    args.update(overrides)
    decision = patient_may_write(**args)  # type: ignore[arg-type]
    return decision.allowed, decision.code


def away(start: int = -1, until: int = 1, exceptions: frozenset[str] = frozenset()) -> Away:
    return Away(
        NOW + timedelta(days=start), NOW + timedelta(days=until), "Urgences : 15", exceptions
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # Defaults: open false, unset, nobody wrote → the patient does not start threads.
        ({}, (False, "closed")),
        # A professional asked something (reply_allowed defaults to true) → the patient answers.
        ({"latest_professional_reply_allowed": True}, (True, None)),
        ({"latest_professional_reply_allowed": False}, (False, "reply_not_allowed")),
        # The practitioner opened messaging: applies when the conversation setting is unset.
        ({"practitioner_open": True}, (True, None)),
        ({"practitioner_open": True, "patient_can_write": False}, (False, "closed")),
        (
            {
                "practitioner_open": True,
                "patient_can_write": False,
                "latest_professional_reply_allowed": True,
            },
            (True, None),
        ),
        # Per-conversation override.
        ({"patient_can_write": True}, (True, None)),
        ({"patient_can_write": True, "latest_professional_reply_allowed": False}, (True, None)),
        # Away mode beats everything, except for the chosen patients.
        ({"patient_can_write": True, "away": away()}, (False, "away")),
        ({"patient_can_write": True, "away": away(exceptions=frozenset({"p1"}))}, (True, None)),
        ({"away": away(exceptions=frozenset({"p1"}))}, (False, "closed")),
        # Away mode not yet started, or over.
        ({"patient_can_write": True, "away": away(start=1, until=3)}, (True, None)),
        ({"patient_can_write": True, "away": away(start=-3, until=-1)}, (True, None)),
    ],
)
def test_rule(overrides: dict[str, object], expected: tuple[bool, str | None]) -> None:
    assert decide(**overrides) == expected


def test_reasons_say_why_and_until_when() -> None:
    decision = patient_may_write(
        patient_id="p1",
        practitioner_name="Dr Claire Martin",
        patient_can_write=True,
        practitioner_open=True,
        away=away(),
        latest_professional_reply_allowed=True,
        now=NOW,
    )
    assert not decision.allowed and decision.until == NOW + timedelta(days=1)
    assert (
        decision.reason
        == "Dr Claire Martin est absent·e jusqu'au 24/11/2026 à 11:00. Urgences : 15"
    )
    closed = patient_may_write(
        patient_id="p1",
        practitioner_name="Dr Claire Martin",
        patient_can_write=None,
        practitioner_open=False,
        away=None,
        latest_professional_reply_allowed=None,
        now=NOW,
    )
    assert closed.reason is not None and "dès qu'il ou elle vous écrira" in closed.reason


def test_away_boundaries() -> None:
    window = away(start=0, until=1)
    assert window.active(NOW)
    assert not window.active(NOW + timedelta(days=1))
    assert not window.active(NOW - timedelta(seconds=1))
    assert Away(None, NOW, None, frozenset()).active(NOW - timedelta(days=30))
    assert not Away(None, None, None, frozenset()).active(NOW)
