"""The one object through which the domain reaches the outside world.

Built once by the application factory and handed to every handler (Synapse's ``HomeServer``, in
small): tests swap the clock or the senders by building their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.clock import Clock
from server.db import SessionMaker
from server.events import EventPublisher
from server.outbound.bell import Bell
from server.outbound.push import PushSender
from server.outbound.senders import EmailSender, SmsSender
from server.passwords import Passwords
from server.payment_providers import PaymentProvider
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.storage import AttachmentStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    passwords: Passwords
    limiter: RateLimiter
    email: EmailSender
    sms: SmsSender
    sessionmaker: SessionMaker
    events: EventPublisher
    attachments: AttachmentStore
    payments: PaymentProvider
    push: PushSender
    # Wakes the notification loop after a commit that queued something urgent.
    bell: Bell = field(default_factory=Bell)

    @property
    def public_url(self) -> str:
        return self.settings.effective_public_url
