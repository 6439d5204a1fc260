"""Answer templates: a line's (its members share them) and an expert's own; the answer form's
"Insérer" puts one in the text."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import Forbidden
from server.expertise import lines as line_rules
from server.expertise.lines import field_error
from server.models import ExpertiseTemplate, User
from server.services import Services


async def list_templates(db: AsyncSession, user: User) -> list[ExpertiseTemplate]:
    line_rules.require_professional(user)
    mine = await line_rules.lines_of(db, user.id)
    return list(
        await db.scalars(
            select(ExpertiseTemplate)
            .where(
                or_(
                    (ExpertiseTemplate.scope == "personal")
                    & (ExpertiseTemplate.owner_id == user.id),
                    (ExpertiseTemplate.scope == "line") & ExpertiseTemplate.line_id.in_(mine),
                )
            )
            .order_by(ExpertiseTemplate.title)
        )
    )


async def create_template(
    db: AsyncSession,
    services: Services,
    user: User,
    *,
    title: str,
    body: str,
    scope: str,
    line_id: str | None,
) -> ExpertiseTemplate:
    line_rules.require_professional(user)
    if scope == "line":
        if line_id is None:
            raise field_error("line_id", "le modèle d'équipe appartient à une ligne")
        if line_id not in await line_rules.lines_of(db, user.id):
            raise Forbidden("Seuls les membres de la ligne lui ajoutent des modèles.")
    else:
        line_id = None
    template = ExpertiseTemplate(
        owner_id=user.id,
        line_id=line_id,
        scope=scope,
        title=title.strip(),
        body=body.strip(),
        created_at=services.clock.now(),
    )
    db.add(template)
    await db.flush()
    return template
