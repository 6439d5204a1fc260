"""Advice lines: a team, what it accepts, from where, what it asks first, how soon it answers,
and who is the doctor of the day. The creator manages the line and is one of its members."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.clock import PARIS
from server.errors import Forbidden, InvalidInput, NotFound
from server.models import (
    ExpertiseLine,
    ExpertiseLineMember,
    ExpertiseRequest,
    ExpertiseRota,
    ExpertiseStatus,
    Role,
    User,
)
from server.services import Services
from server.values import search_key

EXPERT_ROLES = (Role.DOCTOR, Role.NURSE)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_MEMBERS = 100


@dataclass(frozen=True)
class LineInput:
    name: str
    specialty: str
    description: str = ""
    instructions: str = ""
    accepts: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    perimeter: tuple[str, ...] = ()
    questionnaire: tuple[dict[str, Any], ...] = ()
    delay_hours: int = 72
    members: tuple[str, ...] = field(default=())


def field_error(field: str, detail: str) -> InvalidInput:
    """A refusal about one field: placed beside it by the pages (``errors[]``), said at the top."""
    return InvalidInput(
        detail[0].upper() + detail[1:], extra={"errors": [{"field": field, "detail": detail}]}
    )


def require_professional(user: User) -> None:
    """Tele-expertise is between professionals: anyone else is told nothing exists (404)."""
    if user.role not in (Role.DOCTOR, Role.NURSE, Role.SECRETARY):
        raise NotFound("Page introuvable.")


async def _check_members(db: AsyncSession, ids: tuple[str, ...]) -> list[User]:
    if len(ids) > MAX_MEMBERS:
        raise field_error("members", f"{MAX_MEMBERS} membres au plus")
    found = []
    for user_id in dict.fromkeys(ids):
        member = await db.get(User, user_id)
        if member is None or member.role not in EXPERT_ROLES or not member.is_active:
            raise field_error(
                "members",
                "chaque membre est un médecin ou un infirmier inscrit "
                f"(compte inconnu : {user_id})",
            )
        if member.pending_approval:
            raise field_error("members", f"{member.display_name} attend encore sa validation")
        found.append(member)
    return found


def _search_text(data: LineInput) -> str:
    return search_key(data.name, data.specialty, data.description)[:600]


async def create_line(
    db: AsyncSession, services: Services, user: User, data: LineInput, *, ip: str | None
) -> ExpertiseLine:
    if user.role not in EXPERT_ROLES or user.pending_approval:
        raise Forbidden("Seul un médecin ou un infirmier validé crée une ligne d'avis.")
    members = await _check_members(db, (user.id, *data.members))
    now = services.clock.now()
    line = ExpertiseLine(
        name=data.name,
        specialty=data.specialty,
        description=data.description,
        instructions=data.instructions,
        accepts=list(data.accepts),
        excludes=list(data.excludes),
        perimeter=list(data.perimeter),
        questionnaire=list(data.questionnaire),
        delay_hours=data.delay_hours,
        manager_id=user.id,
        search_text=_search_text(data),
        active=True,
        created_at=now,
    )
    db.add(line)
    await db.flush()
    for member in members:
        db.add(ExpertiseLineMember(line_id=line.id, user_id=member.id, added_at=now))
    audit.record(
        db,
        services.clock,
        "expertise.line_created",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_line",
        resource_id=line.id,
        details={"members": len(members)},
    )
    return line


async def find_line(db: AsyncSession, user: User, line_id: str) -> ExpertiseLine:
    require_professional(user)
    line = await db.get(ExpertiseLine, line_id)
    if line is None or not line.active:
        raise NotFound("Ligne d'avis introuvable.")
    return line


async def managed_line(db: AsyncSession, user: User, line_id: str) -> ExpertiseLine:
    line = await find_line(db, user, line_id)
    if line.manager_id != user.id:
        raise Forbidden("Seul le responsable de la ligne la modifie.")
    return line


async def update_line(
    db: AsyncSession,
    services: Services,
    user: User,
    line_id: str,
    data: LineInput,
    *,
    ip: str | None,
) -> ExpertiseLine:
    line = await managed_line(db, user, line_id)
    members = await _check_members(db, (user.id, *data.members))
    line.name, line.specialty = data.name, data.specialty
    line.description, line.instructions = data.description, data.instructions
    line.accepts, line.excludes = list(data.accepts), list(data.excludes)
    line.perimeter, line.questionnaire = list(data.perimeter), list(data.questionnaire)
    line.delay_hours = data.delay_hours
    line.search_text = _search_text(data)
    now = services.clock.now()
    keep = {m.id for m in members}
    current = set(
        await db.scalars(
            select(ExpertiseLineMember.user_id).where(ExpertiseLineMember.line_id == line.id)
        )
    )
    if current - keep:
        await db.execute(
            delete(ExpertiseLineMember).where(
                ExpertiseLineMember.line_id == line.id,
                ExpertiseLineMember.user_id.in_(current - keep),
            )
        )
        await db.execute(
            delete(ExpertiseRota).where(
                ExpertiseRota.line_id == line.id, ExpertiseRota.user_id.in_(current - keep)
            )
        )
    for member_id in keep - current:
        db.add(ExpertiseLineMember(line_id=line.id, user_id=member_id, added_at=now))
    audit.record(
        db,
        services.clock,
        "expertise.line_updated",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_line",
        resource_id=line.id,
    )
    return line


async def member_ids(db: AsyncSession, line_id: str) -> list[str]:
    return list(
        await db.scalars(
            select(ExpertiseLineMember.user_id)
            .where(ExpertiseLineMember.line_id == line_id)
            .order_by(ExpertiseLineMember.added_at, ExpertiseLineMember.user_id)
        )
    )


async def lines_of(db: AsyncSession, user_id: str) -> list[str]:
    """The lines a person answers for."""
    return list(
        await db.scalars(
            select(ExpertiseLineMember.line_id).where(ExpertiseLineMember.user_id == user_id)
        )
    )


async def set_rota(
    db: AsyncSession,
    services: Services,
    user: User,
    line_id: str,
    weekdays: dict[str, str | None],
    *,
    ip: str | None,
) -> dict[str, str | None]:
    line = await managed_line(db, user, line_id)
    members = set(await member_ids(db, line.id))
    for day, member in weekdays.items():
        if day not in WEEKDAYS:
            raise field_error("weekdays", f"jours mon, tue, wed, thu, fri, sat, sun (pas {day!r})")
        if member is not None and member not in members:
            raise field_error(f"weekdays.{day}", "le médecin du jour est un membre de la ligne")
    await db.execute(delete(ExpertiseRota).where(ExpertiseRota.line_id == line.id))
    for day, member in weekdays.items():
        if member is not None:
            db.add(ExpertiseRota(line_id=line.id, weekday=WEEKDAYS.index(day), user_id=member))
    audit.record(
        db,
        services.clock,
        "expertise.rota_set",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_line",
        resource_id=line.id,
    )
    return {day: weekdays.get(day) for day in WEEKDAYS}


async def rota(db: AsyncSession, line_id: str) -> dict[str, str | None]:
    rows = await db.scalars(select(ExpertiseRota).where(ExpertiseRota.line_id == line_id))
    days: dict[str, str | None] = dict.fromkeys(WEEKDAYS)
    for row in rows:
        days[WEEKDAYS[row.weekday]] = row.user_id
    return days


async def directory(
    db: AsyncSession, user: User, q: str | None, specialty: str | None
) -> list[ExpertiseLine]:
    require_professional(user)
    stmt = select(ExpertiseLine).where(ExpertiseLine.active.is_(True))
    if specialty:
        stmt = stmt.where(ExpertiseLine.specialty == specialty)
    for word in search_key(q or "").split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(ExpertiseLine.search_text.like(f"%{escaped}%", escape="\\"))
    return list(await db.scalars(stmt.order_by(ExpertiseLine.name).limit(200)))


async def figures(
    db: AsyncSession, user: User, line_id: str, now: datetime
) -> list[dict[str, Any]]:
    """A line's activity per month over the last twelve: requests, answered, rejected, and the
    median time to answer — what justifies its staffing (domain.md §5). Members only."""
    line = await find_line(db, user, line_id)
    if user.id not in await member_ids(db, line.id):
        raise Forbidden("Les chiffres d'une ligne sont pour ses membres.")
    since = (now.astimezone(PARIS).replace(day=1) - timedelta(days=335)).replace(day=1)
    rows = await db.scalars(
        select(ExpertiseRequest).where(
            ExpertiseRequest.line_id == line.id, ExpertiseRequest.created_at >= since
        )
    )
    months: dict[str, dict[str, Any]] = {}
    delays: dict[str, list[float]] = {}
    for request in rows:
        month = request.created_at.astimezone(PARIS).strftime("%Y-%m")
        entry = months.setdefault(
            month, {"month": month, "requests": 0, "answered": 0, "rejected": 0, "late": 0}
        )
        entry["requests"] += 1
        if request.answered_at is not None:
            entry["answered"] += 1
            delays.setdefault(month, []).append(
                (request.answered_at - request.created_at).total_seconds() / 3600
            )
            if request.answered_at > request.due_at:
                entry["late"] += 1
        if request.status == ExpertiseStatus.REJECTED:
            entry["rejected"] += 1
    for month, entry in months.items():
        found = delays.get(month)
        entry["median_hours_to_answer"] = round(statistics.median(found), 1) if found else None
    return [months[m] for m in sorted(months, reverse=True)]
