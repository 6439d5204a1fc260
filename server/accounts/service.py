"""Account domain logic. Plain functions on a database session; no HTTP here."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server import audit, limits
from server.clock import Clock
from server.errors import Conflict, InvalidInput, NotAuthenticated, RateLimited
from server.models import AuthSession, Practice, Role, SecretaryAssignment, User
from server.services import Services
from server.tokens import new_token, token_hash
from server.values import search_key

SPECIALTIES = {
    "general_practice",
    "pediatrics",
    "gynecology",
    "ophthalmology",
    "psychiatry",
    "dermatology",
    "cardiology",
    "stomatology",
    "oral_maxillofacial_surgery",
    "other",
}
SECTORS = {"1", "2", "optam"}


@dataclass(frozen=True)
class NewUser:
    email: str
    password: str
    first_name: str
    last_name: str
    role: Role = Role.PATIENT
    rpps: str | None = None
    specialty: str | None = None
    sector: str | None = None
    phone: str | None = None
    birth_date: date | None = None
    practice_name: str | None = None
    practice_address: str | None = None
    # A professional who signs up alone waits for the administrator; accounts made by the
    # administrator or the command line are approved at once.
    approved: bool = True
    # The address is known to be the person's: made by the administrator, or the invitation
    # they accept was sent to it. A self sign-up confirms it by a link.
    email_verified: bool = True
    # The person ticked that they read the privacy notice (/confidentialite) at sign-up.
    privacy_accepted: bool = False


async def email_taken(db: AsyncSession, email: str) -> bool:
    return (await db.scalar(select(User.id).where(User.email == email))) is not None


async def create_user(
    db: AsyncSession, services: Services, new: NewUser, *, actor_id: str | None, ip: str | None
) -> User:
    """Create an account in the caller's transaction. Doctors get their defaults (general
    practice, sector 1) and, when no practice is named, a practice of their own."""
    if new.role in {Role.DOCTOR, Role.NURSE} and not new.rpps:
        raise InvalidInput("rpps : le numéro RPPS est obligatoire pour un professionnel de santé")
    specialty = new.specialty
    sector = new.sector
    if new.role == Role.DOCTOR:
        specialty = specialty or "general_practice"
        sector = sector or "1"
    if specialty is not None and specialty not in SPECIALTIES:
        raise InvalidInput(f"specialty : spécialité inconnue ({specialty})")
    if sector is not None and sector not in SECTORS:
        raise InvalidInput("sector : secteur attendu 1, 2 ou optam")
    if await email_taken(db, new.email):
        raise Conflict("Un compte existe déjà avec cette adresse e-mail. Connectez-vous.")
    if new.rpps and (await db.scalar(select(User.id).where(User.rpps == new.rpps))) is not None:
        raise Conflict("Un compte existe déjà avec ce numéro RPPS.")
    now = services.clock.now()
    practice_id = None
    if new.role.is_professional:
        practice = Practice(
            name=new.practice_name or f"Cabinet de {new.first_name} {new.last_name}",
            address=new.practice_address,
            created_at=now,
        )
        db.add(practice)
        await db.flush()
        practice_id = practice.id
    user = User(
        email=new.email,
        password_hash=await services.passwords.hash(new.password),
        role=new.role.value,
        first_name=new.first_name,
        last_name=new.last_name,
        search_name=search_key(new.first_name, new.last_name),
        phone=new.phone,
        birth_date=new.birth_date,
        rpps=new.rpps,
        specialty=specialty,
        sector=sector,
        practice_id=practice_id,
        is_active=True,
        created_at=now,
        approved_at=now if new.approved else None,
        email_verified_at=now if new.email_verified else None,
        privacy_accepted_at=now if new.privacy_accepted else None,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as exc:
        # Two sign-ups with the same address at the same instant: the unique index decides.
        raise Conflict("Un compte existe déjà avec cette adresse e-mail. Connectez-vous.") from exc
    audit.record(
        db,
        services.clock,
        "account.created",
        actor_id=actor_id or user.id,
        ip=ip,
        resource_type="user",
        resource_id=user.id,
        details={"role": user.role},
    )
    return user


async def attach_secretary(db: AsyncSession, secretary: User, doctor: User) -> None:
    db.add(SecretaryAssignment(secretary_id=secretary.id, doctor_id=doctor.id))
    secretary.practice_id = doctor.practice_id
    await db.flush()


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def too_many_attempts(wait_seconds: int) -> RateLimited:
    return RateLimited(
        "Trop de tentatives de connexion. Pour protéger votre compte, réessayez dans "
        f"{_minutes(wait_seconds)}. "
        "Si vous avez oublié votre mot de passe, choisissez « Mot de passe oublié ? » sous le "
        "formulaire de connexion.",
        retry_after_seconds=wait_seconds,
    )


def _login_rules(email: str, ip: str | None, known_address: bool) -> list[tuple[str, int, Any]]:
    """(key, limit, window) of each sliding limit a sign-in attempt counts against (NIST SP
    800-63B §5.2.2): per account and address, so a stranger elsewhere never locks the owner
    out; per address (one address trying many accounts); per account across addresses (many
    addresses trying one account), which spares an address the account has signed in from."""
    address = ip or "unknown"
    rules = [
        (
            f"login:pair:{email}:{address}",
            limits.LOGIN_FREE_ATTEMPTS,
            limits.LOGIN_WINDOW,
        ),
        (f"login:ip:{address}", limits.LOGIN_MAX_FAILURES_PER_ADDRESS, limits.LOGIN_WINDOW),
    ]
    if not known_address:
        rules.append(
            (
                f"login:account:{email}",
                limits.LOGIN_MAX_FAILURES_PER_ACCOUNT,
                limits.LOGIN_ACCOUNT_WINDOW,
            )
        )
    return rules


async def _throttle_login(
    db: AsyncSession, services: Services, email: str, ip: str | None
) -> list[tuple[str, int, Any]]:
    """Counts the attempt against every limit, before the password is checked (concurrent
    attempts cannot all slip under a limit); raises 429 saying for how long if any is reached.
    Returns the rules counted, for a success to take its count back."""
    limiter = services.limiter
    address = ip or "unknown"
    # An address the account signed in from lately: at least one success recorded there.
    known = (
        await limiter.retry_after(f"login:known:{email}:{address}", 1, limits.LOGIN_KNOWN_FOR)
        is not None
    )
    rules = _login_rules(email, ip, known)
    # Growing delays per account and address: after the free attempts, each failure doubles the
    # pause before the next (15 min, 30 min, 1 h … at most a day).
    wait = await limiter.backoff(
        f"login:failures:{email}:{address}",
        limits.LOGIN_FREE_ATTEMPTS,
        limits.LOGIN_WINDOW,
        limits.LOGIN_BACKOFF_CAP,
    )
    counted: list[str] = []
    if wait is None:
        for key, limit, window in rules:
            wait = await limiter.try_take(key, limit, window)
            if wait is not None:
                # The longest of the limits reached is the real wait.
                for other, other_limit, other_window in rules:
                    more = await limiter.retry_after(other, other_limit, other_window)
                    wait = max(wait, more or 0)
                break
            counted.append(key)
    if wait is None:
        return rules
    for key in counted:
        await limiter.undo(key)
    audit.record(
        db,
        services.clock,
        "auth.login_throttled",
        actor_id=None,
        ip=ip,
        details={"email": email},
    )
    await db.commit()
    raise too_many_attempts(wait)


async def authenticate(
    db: AsyncSession, services: Services, email: str, password: str, *, ip: str | None
) -> User:
    """Check credentials. Unknown address and wrong password get the same answer and take the
    same time; attempts are throttled (``_throttle_login``)."""
    limiter = services.limiter
    address = ip or "unknown"
    rules = await _throttle_login(db, services, email, ip)
    user = await db.scalar(select(User).where(User.email == email))
    if user is None:
        await services.passwords.burn_time(password)
        ok = False
    else:
        ok = user.is_active and await services.passwords.verify(user.password_hash, password)
    if not ok:
        await limiter.hit(f"login:failures:{email}:{address}", limits.LOGIN_BACKOFF_CAP)
        audit.record(
            db,
            services.clock,
            "auth.login_failed",
            actor_id=user.id if user else None,
            ip=ip,
            details={"email": email},
        )
        await db.commit()
        raise NotAuthenticated("Adresse e-mail ou mot de passe incorrect.")
    assert user is not None
    # A success clears this address's failures and takes back the attempt it counted.
    await limiter.reset(f"login:failures:{email}:{address}")
    await limiter.reset(f"login:pair:{email}:{address}")
    for key, _, _ in rules[1:]:
        await limiter.undo(key)
    await limiter.hit(f"login:known:{email}:{address}", limits.LOGIN_KNOWN_FOR)
    if services.passwords.needs_rehash(user.password_hash):
        # Parameters were raised since this hash was made: upgrade it while we have the password.
        user.password_hash = await services.passwords.hash(password)
    return user


async def open_session(
    db: AsyncSession, services: Services, user: User, *, ip: str | None, user_agent: str | None
) -> str:
    """Create a session; return the cookie token (its hash alone is stored)."""
    now = services.clock.now()
    token = new_token()
    db.add(
        AuthSession(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + limits.SESSION_LIFETIME,
            idle_expires_at=now + limits.SESSION_IDLE_TIMEOUT,
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    audit.record(
        db,
        services.clock,
        "auth.login",
        actor_id=user.id,
        ip=ip,
        resource_type="user",
        resource_id=user.id,
    )
    return token


# The session's columns, not an ORM object: every request and every batch of posts reads
# sessions, and only the user is needed as an object.
_SESSIONS_BY_TOKEN_HASH = (
    select(
        AuthSession.id,
        AuthSession.token_hash,
        AuthSession.expires_at,
        AuthSession.idle_expires_at,
        User,
    )
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_hash.in_(bindparam("hashes", expanding=True)))
)
_SESSIONS = cast(Table, AuthSession.__table__)
_TOUCH = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("b_id"))
    .values(idle_expires_at=bindparam("b_idle"))
)


def resolve_sessions(db: Session, clock: Clock, tokens: Collection[str]) -> dict[str, User]:
    """The users behind several cookie tokens in one query (a batch of posted messages); a
    token that is unknown, expired or idle too long is absent from the answer.

    A session in use has its idle expiry pushed forward, at most once per
    ``SESSION_TOUCH_INTERVAL``, in the caller's transaction (written when it commits). Sync,
    since batches of messages are written by sync code."""
    return _resolve(db, clock, tokens)[0]


def _resolve(db: Session, clock: Clock, tokens: Collection[str]) -> tuple[dict[str, User], bool]:
    """``resolve_sessions``, and whether an idle expiry moved."""
    hashes = {token_hash(token): token for token in tokens}
    rows = db.execute(_SESSIONS_BY_TOKEN_HASH, {"hashes": list(hashes)}).all()
    now = clock.now()
    found = {}
    touched = []
    for row in rows:
        user = row.User
        if now >= row.expires_at or now >= row.idle_expires_at or not user.is_active:
            continue
        found[hashes[row.token_hash]] = user
        new_idle = now + limits.SESSION_IDLE_TIMEOUT
        if new_idle - row.idle_expires_at >= limits.SESSION_TOUCH_INTERVAL:
            touched.append({"b_id": row.id, "b_idle": min(new_idle, row.expires_at)})
    if touched:
        db.execute(_TOUCH, touched)
    return found, bool(touched)


async def resolve_session(db: AsyncSession, services: Services, token: str) -> User | None:
    """The user behind a cookie token, or None if it is unknown, expired or idle too long.
    Commits if the session's idle expiry moved."""
    users, touched = await db.run_sync(_resolve, services.clock, [token])
    if touched:
        await db.commit()
    return users.get(token)


@dataclass(frozen=True)
class LiveSession:
    """A signed-in session as a socket holds it: whose, which, and until when it is surely
    valid (the earlier of its expiry and its idle expiry at the time it was read)."""

    user: User
    session_id: str
    valid_until: datetime


_SESSION_BY = select(
    AuthSession.id, AuthSession.expires_at, AuthSession.idle_expires_at, User
).join(User, User.id == AuthSession.user_id)


def _live(row: Any, now: datetime) -> LiveSession | None:
    if now >= row.expires_at or now >= row.idle_expires_at or not row.User.is_active:
        return None
    return LiveSession(row.User, row.id, min(row.expires_at, row.idle_expires_at))


async def live_session_of_token(
    db: AsyncSession, services: Services, token: str
) -> LiveSession | None:
    """The live session behind a cookie token (a socket connecting), or None."""
    if await resolve_session(db, services, token) is None:
        return None
    row = (await db.execute(_SESSION_BY.where(AuthSession.token_hash == token_hash(token)))).first()
    return None if row is None else _live(row, services.clock.now())


async def live_session(db: AsyncSession, clock: Clock, session_id: str) -> LiveSession | None:
    """The session ``session_id`` if it is still valid and its user still active, else None:
    what every socket event is checked against."""
    row = (await db.execute(_SESSION_BY.where(AuthSession.id == session_id))).first()
    return None if row is None else _live(row, clock.now())


async def close_session(
    db: AsyncSession, services: Services, token: str, *, user_id: str, ip: str | None
) -> list[str]:
    """Ends the session of ``token``; returns its id (for its sockets to be closed too)."""
    ended = list(
        await db.scalars(
            delete(AuthSession)
            .where(AuthSession.token_hash == token_hash(token))
            .returning(AuthSession.id)
        )
    )
    audit.record(
        db,
        services.clock,
        "auth.logout",
        actor_id=user_id,
        ip=ip,
        resource_type="user",
        resource_id=user_id,
    )
    return ended


async def close_all_sessions(
    db: AsyncSession, services: Services, user_id: str, *, actor_id: str, ip: str | None, why: str
) -> list[str]:
    """Ends every session of an account ("sign out everywhere", a password reset, a deactivated
    account); returns their ids, whose sockets the caller closes once this is committed."""
    ended = list(
        await db.scalars(
            delete(AuthSession).where(AuthSession.user_id == user_id).returning(AuthSession.id)
        )
    )
    audit.record(
        db,
        services.clock,
        "auth.sessions_ended",
        actor_id=actor_id,
        ip=ip,
        resource_type="user",
        resource_id=user_id,
        details={"why": why, "count": len(ended)},
    )
    return ended


async def sessions_of(db: AsyncSession, services: Services, user_id: str) -> list[AuthSession]:
    """The account's sessions that are still valid, newest first."""
    now = services.clock.now()
    return list(
        await db.scalars(
            select(AuthSession)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.expires_at > now,
                AuthSession.idle_expires_at > now,
            )
            .order_by(AuthSession.created_at.desc())
        )
    )
