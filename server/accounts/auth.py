"""Who is calling, for handlers: the user behind the session cookie, and role requirements."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.service import resolve_session
from server.errors import Forbidden, NotAuthenticated
from server.http.auth import SESSION_COOKIE
from server.http.keys import services_of
from server.models import Role, User


async def optional_user(request: web.Request, db: AsyncSession) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await resolve_session(db, services_of(request), token)


PENDING_APPROVAL = (
    "Votre compte professionnel attend la validation de l'administrateur de la plateforme. "
    "Vous pourrez inviter des patients et être trouvé par eux dès qu'il sera validé."
)


async def require_user(
    request: web.Request, db: AsyncSession, *roles: Role, allow_pending: bool = False
) -> User:
    """The signed-in user, with one of ``roles`` if any are named. A professional whose account
    waits for approval reaches only what ``allow_pending`` routes offer (their own account)."""
    user = await optional_user(request, db)
    if user is None:
        raise NotAuthenticated("Vous n'êtes pas connecté, ou votre session a expiré.")
    if user.pending_approval and not allow_pending:
        raise Forbidden(PENDING_APPROVAL)
    if roles and user.role not in roles:
        raise Forbidden("Votre profil ne permet pas cette action.")
    return user


async def idempotency_owner(request: web.Request, db: AsyncSession) -> str | None:
    """Whose Idempotency-Key a request carries: the signed-in user's (``http/idempotency``)."""
    user = await optional_user(request, db)
    return user.id if user is not None else None
