"""Choosing a new password with a link sent by email or a code sent by SMS (domain.md §7).

Asking always gets the same answer and does the same work, whether an account has the address
or not (no account enumeration, by answer or by timing): one reset row and one notice are
written either way; the notice of an unknown address is skipped by the worker. The secret is
made when the message leaves (``notify.worker``); here it is checked, once, within the hour.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit, limits
from server.accounts.service import close_all_sessions
from server.errors import Gone, InvalidInput
from server.models import NoticeKind, PasswordReset, User
from server.notify.queue import add_notice
from server.notify.worker import code_hash
from server.services import Services
from server.tokens import token_hash

LINK_NOT_VALID = (
    "Ce lien n'est plus valable : il a déjà servi, ou il date de plus d'une heure. "
    "Demandez-en un nouveau depuis la page « Mot de passe oublié »."
)
CODE_NOT_VALID = (
    "Ce code n'est pas le bon, ou il n'est plus valable (il sert une fois, pendant une heure). "
    "Vérifiez le dernier SMS reçu, ou demandez un nouveau code."
)


async def _account_by_phone(db: AsyncSession, phone: str) -> User | None:
    """Phones are not unique (a family may share one): a code goes out only when exactly one
    active account has the number."""
    users = list(await db.scalars(select(User).where(User.phone == phone, User.is_active).limit(2)))
    return users[0] if len(users) == 1 else None


async def request_reset(
    db: AsyncSession,
    services: Services,
    *,
    email: str | None,
    phone: str | None,
    ip: str | None,
) -> None:
    now = services.clock.now()
    if email is not None:
        user = await db.scalar(select(User).where(User.email == email, User.is_active))
    else:
        assert phone is not None
        user = await _account_by_phone(db, phone)
    # Counted for an unknown address too (an id no row has): the same queries either way.
    recent = await db.scalar(
        select(func.count(PasswordReset.id)).where(
            PasswordReset.user_id == (user.id if user else ""),
            PasswordReset.created_at > now - timedelta(hours=1),
        )
    )
    if (recent or 0) >= limits.PASSWORD_RESETS_PER_ACCOUNT_PER_HOUR:
        user = None  # enough messages this hour: the same work, nothing sent
    reset = PasswordReset(
        user_id=user.id if user else None,
        channel="email" if email is not None else "sms",
        attempts=0,
        created_at=now,
        expires_at=now + limits.PASSWORD_RESET_VALIDITY,
    )
    db.add(reset)
    await db.flush()
    add_notice(
        db,
        now,
        user_id=reset.user_id,
        kind=NoticeKind.PASSWORD_RESET,
        subject_id=reset.id,
        dedupe_key=f"reset:{reset.id}",
    )
    audit.record(
        db,
        services.clock,
        "auth.password_reset_requested",
        actor_id=None,
        ip=ip,
        resource_type="user" if user else None,
        resource_id=user.id if user else None,
        details={"channel": reset.channel},
    )


async def _reset_of_token(db: AsyncSession, services: Services, token: str) -> PasswordReset:
    reset = await db.scalar(
        select(PasswordReset).where(
            PasswordReset.secret_hash == token_hash(token), PasswordReset.channel == "email"
        )
    )
    now = services.clock.now()
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        raise Gone(LINK_NOT_VALID)
    return reset


async def check_link(db: AsyncSession, services: Services, token: str) -> None:
    """Whether a link still works, so that its page says so before the person types."""
    await _reset_of_token(db, services, token)


async def _reset_of_code(
    db: AsyncSession, services: Services, phone: str, code: str
) -> PasswordReset | None:
    """The pending SMS reset the code matches. A wrong code counts against the newest pending
    reset (and voids it at the fifth); the caller commits that even when refusing."""
    user = await _account_by_phone(db, phone)
    if user is None:
        return None
    now = services.clock.now()
    reset = await db.scalar(
        select(PasswordReset)
        .where(
            PasswordReset.user_id == user.id,
            PasswordReset.channel == "sms",
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
            PasswordReset.secret_hash.is_not(None),
        )
        .order_by(PasswordReset.created_at.desc())
        .limit(1)
    )
    if reset is None:
        return None
    expected = code_hash(services.settings.secret_key, reset.id, code)
    assert reset.secret_hash is not None
    if hmac.compare_digest(expected, reset.secret_hash):
        return reset
    reset.attempts += 1
    if reset.attempts >= limits.PASSWORD_RESET_CODE_ATTEMPTS:
        reset.used_at = now
    return None


async def confirm_reset(
    db: AsyncSession,
    services: Services,
    *,
    token: str | None,
    phone: str | None,
    code: str | None,
    password: str,
    ip: str | None,
) -> tuple[User | None, list[str]]:
    """Sets the new password and ends every session of the account; returns the account and
    the ended sessions (their sockets are closed after the commit). (None, []) when the code
    was wrong: the caller commits the counted attempt, then refuses."""
    if token is not None:
        reset = await _reset_of_token(db, services, token)
    else:
        assert phone is not None and code is not None
        found = await _reset_of_code(db, services, phone, code)
        if found is None:
            return None, []
        reset = found
    assert reset.user_id is not None
    user = await db.get(User, reset.user_id)
    if user is None or not user.is_active:
        raise Gone(LINK_NOT_VALID)
    now = services.clock.now()
    user.password_hash = await services.passwords.hash(password)
    # Every other pending reset of the account dies with this one.
    await db.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        db,
        services.clock,
        "auth.password_reset",
        actor_id=user.id,
        ip=ip,
        resource_type="user",
        resource_id=user.id,
        details={"channel": reset.channel},
    )
    ended = await close_all_sessions(
        db, services, user.id, actor_id=user.id, ip=ip, why="password_reset"
    )
    return user, ended


def wrong_code() -> InvalidInput:
    return InvalidInput(
        CODE_NOT_VALID, extra={"errors": [{"field": "code", "detail": CODE_NOT_VALID}]}
    )
