"""Confirming that an account's email address is its owner's (domain.md §7).

A patient who signed up alone typed an address nobody checked: a typo means every notice goes
to a stranger. The link sent at sign-up proves the address; until it is followed the pages say
so and offer to send it again. An invitation accepted from an email already proved it, and
accounts made by the administrator are trusted as made.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit, limits
from server.errors import Gone, RateLimited
from server.models import EmailVerification, NoticeKind, User
from server.notify.queue import add_notice
from server.services import Services
from server.tokens import token_hash

LINK_NOT_VALID = (
    "Ce lien de confirmation n'est plus valable : il a déjà servi, ou il a plus de 7 jours. "
    "Connectez-vous : votre espace propose d'en envoyer un nouveau."
)


async def ask_verification(db: AsyncSession, services: Services, user: User) -> None:
    """Queue the confirmation email (its link is made when it leaves). At most a few an hour."""
    now = services.clock.now()
    recent = await db.scalar(
        select(func.count(EmailVerification.id)).where(
            EmailVerification.user_id == user.id,
            EmailVerification.created_at > now - timedelta(hours=1),
        )
    )
    if (recent or 0) >= limits.EMAIL_VERIFICATIONS_PER_HOUR:
        raise RateLimited(
            "Plusieurs e-mails de confirmation sont déjà partis cette heure-ci. Regardez aussi "
            "dans les courriers indésirables, ou réessayez plus tard.",
            retry_after_seconds=3600,
        )
    verification = EmailVerification(
        user_id=user.id,
        email=user.email,
        created_at=now,
        expires_at=now + limits.EMAIL_VERIFICATION_VALIDITY,
    )
    db.add(verification)
    await db.flush()
    add_notice(
        db,
        now,
        user_id=user.id,
        kind=NoticeKind.EMAIL_VERIFICATION,
        subject_id=verification.id,
        dedupe_key=f"verify:{verification.id}",
    )


async def confirm_email(
    db: AsyncSession, services: Services, token: str, *, ip: str | None
) -> User:
    now = services.clock.now()
    verification = await db.scalar(
        select(EmailVerification).where(EmailVerification.secret_hash == token_hash(token))
    )
    if verification is None or verification.used_at is not None or verification.expires_at <= now:
        raise Gone(LINK_NOT_VALID)
    user = await db.get(User, verification.user_id)
    # The link proves the address it was sent to, not one changed since.
    if user is None or not user.is_active or user.email != verification.email:
        raise Gone(LINK_NOT_VALID)
    verification.used_at = now
    if user.email_verified_at is None:
        user.email_verified_at = now
        audit.record(
            db,
            services.clock,
            "auth.email_verified",
            actor_id=user.id,
            ip=ip,
            resource_type="user",
            resource_id=user.id,
        )
    return user
