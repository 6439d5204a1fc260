"""Who belongs to a conversation is decided in two places: in SQL (``visible_to``, for reads and
lists) and in Python (``is_member``, for a batch of posts checked at once). They must never
disagree; this compares them for every role and every way of being, or not being, a member."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from server.conversations.service import is_member, visible_to
from server.db import create_engine, create_sessionmaker, migrate
from server.models import (
    Conversation,
    ConversationParticipant,
    SecretaryAssignment,
    User,
    new_id,
)


async def test_is_member_says_what_visible_to_says(database: tuple[str, str | None]) -> None:
    engine = create_engine(database[0], schema=database[1])
    await migrate(engine)
    now = datetime.now(UTC)
    people: dict[str, User] = {}

    def person(name: str, role: str) -> User:
        user = User(
            id=new_id(),
            email=f"{name}@example.fr",
            password_hash="x",
            role=role,
            first_name=name,
            last_name="T",
            search_name=name,
            created_at=now,
        )
        people[name] = user
        return user

    doctor = person("doctor", "doctor")
    patient = person("patient", "patient")
    for name, role in [
        ("other_patient", "patient"),
        ("other_doctor", "doctor"),
        ("added_doctor", "doctor"),
        ("nurse", "nurse"),
        ("added_nurse", "nurse"),
        ("secretary", "secretary"),
        ("other_secretary", "secretary"),
        ("added_secretary", "secretary"),
        ("admin", "admin"),
        # A doctor who is also someone's patient is a patient only in that conversation's
        # patient seat, not as a doctor.
        ("doctor_as_patient", "doctor"),
        ("added_patient", "patient"),  # no route adds a patient; the rule must still hold
    ]:
        person(name, role)
    conversation = Conversation(
        id=new_id(),
        practitioner_id=doctor.id,
        patient_id=patient.id,
        origin="invitation",
        created_at=now,
        last_seq=0,
    )
    odd = Conversation(
        id=new_id(),
        practitioner_id=people["other_doctor"].id,
        patient_id=people["doctor_as_patient"].id,
        origin="invitation",
        created_at=now,
        last_seq=0,
    )
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as db:
            db.add_all(people.values())
            await db.flush()
            db.add_all([conversation, odd])
            await db.flush()
            db.add_all(
                [
                    SecretaryAssignment(secretary_id=people["secretary"].id, doctor_id=doctor.id),
                    SecretaryAssignment(
                        secretary_id=people["other_secretary"].id,
                        doctor_id=people["other_doctor"].id,
                    ),
                ]
                + [
                    ConversationParticipant(
                        conversation_id=c.id,
                        user_id=people[name].id,
                        added_by_id=c.practitioner_id,
                        added_at=now,
                    )
                    for c in (conversation, odd)
                    for name in ("added_doctor", "added_nurse", "added_secretary", "added_patient")
                ]
            )
            await db.commit()
            members_seen = {}
            for c in (conversation, odd):
                secretaries = set(
                    await db.scalars(
                        select(SecretaryAssignment.secretary_id).where(
                            SecretaryAssignment.doctor_id == c.practitioner_id
                        )
                    )
                )
                participants = set(
                    await db.scalars(
                        select(ConversationParticipant.user_id).where(
                            ConversationParticipant.conversation_id == c.id
                        )
                    )
                )
                for name, user in people.items():
                    in_sql = (
                        await db.scalar(
                            select(Conversation.id).where(Conversation.id == c.id, visible_to(user))
                        )
                    ) is not None
                    in_python = is_member(user, c, secretaries, participants)
                    assert in_python == in_sql, (name, c is odd)
                    if in_sql:
                        members_seen.setdefault(c.id, set()).add(name)
        # The comparison saw both answers: members and strangers alike.
        assert members_seen[conversation.id] == {
            "doctor",
            "patient",
            "secretary",
            "added_doctor",
            "added_nurse",
            "added_secretary",
        }
        assert members_seen[odd.id] == {
            "other_doctor",
            "other_secretary",
            "added_doctor",
            "added_nurse",
            "added_secretary",
        }
    finally:
        await engine.dispose()
