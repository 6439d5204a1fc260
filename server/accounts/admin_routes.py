"""The install's administrator manages accounts: approves professionals who signed up alone,
deactivates an account (which ends its sessions and closes its sockets at once)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.accounts import service
from server.accounts.auth import require_user
from server.errors import Conflict, NotFound
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_query
from server.http.serialize import user_json
from server.models import Role, User

routes = web.RouteTableDef()

DEACTIVATED = "Votre compte a été désactivé par l'administrateur de la plateforme."


class UsersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["pending", "active", "inactive"] | None = None


@routes.get("/api/admin/users")
@documented(
    "Accounts (admins); ?status=pending lists professionals waiting for approval",
    query=UsersQuery,
)
async def list_users(request: web.Request) -> web.Response:
    services = services_of(request)
    query = parse_query(request, UsersQuery)
    async with services.sessionmaker() as db:
        await require_user(request, db, Role.ADMIN)
        stmt = select(User).order_by(User.created_at.desc()).limit(500)
        if query.status == "pending":
            stmt = stmt.where(User.approved_at.is_(None), User.is_active.is_(True))
        elif query.status == "active":
            stmt = stmt.where(User.approved_at.is_not(None), User.is_active.is_(True))
        elif query.status == "inactive":
            stmt = stmt.where(User.is_active.is_(False))
        users = list(await db.scalars(stmt))
    return web.json_response({"items": [user_json(u) | {"active": u.is_active} for u in users]})


async def _account(db: AsyncSession, user_id: str) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("Compte introuvable.")
    return user


@routes.post("/api/admin/users/{id}/approve")
@documented("Approve a professional who signed up alone (admins)")
async def approve(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        admin = await require_user(request, db, Role.ADMIN)
        user = await _account(db, request.match_info["id"])
        if not user.pending_approval:
            raise Conflict("Ce compte est déjà validé.")
        user.approved_at = services.clock.now()
        audit.record(
            db,
            services.clock,
            "account.approved",
            actor_id=admin.id,
            ip=client_ip(request),
            resource_type="user",
            resource_id=user.id,
            details={"role": user.role, "rpps": user.rpps},
        )
        await db.commit()
    return web.json_response(user_json(user))


@routes.post("/api/admin/users/{id}/deactivate")
@documented("Deactivate an account (admins): its sessions end and its sockets close at once")
async def deactivate(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        admin = await require_user(request, db, Role.ADMIN)
        user = await _account(db, request.match_info["id"])
        if user.id == admin.id:
            raise Conflict("Vous ne pouvez pas désactiver votre propre compte.")
        user.is_active = False
        ended = await service.close_all_sessions(
            db, services, user.id, actor_id=admin.id, ip=client_ip(request), why="deactivated"
        )
        audit.record(
            db,
            services.clock,
            "account.deactivated",
            actor_id=admin.id,
            ip=client_ip(request),
            resource_type="user",
            resource_id=user.id,
        )
        await db.commit()
    await services.events.end_sessions(ended, DEACTIVATED)
    return web.json_response(user_json(user) | {"active": False})
