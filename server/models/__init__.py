"""SQLAlchemy tables. Importing this package registers every table on ``Base.metadata``."""

from .accounts import AuthSession, Practice, Role, SecretaryAssignment, User
from .audit import AuditEvent
from .base import Base, new_id
from .contacts import ContactRequest, ContactRequestStatus
from .conversations import Conversation
from .invitations import Channel, Delivery, DeliveryStatus, Invitation, InvitationStatus

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Base",
    "Channel",
    "ContactRequest",
    "ContactRequestStatus",
    "Conversation",
    "Delivery",
    "DeliveryStatus",
    "Invitation",
    "InvitationStatus",
    "Practice",
    "Role",
    "SecretaryAssignment",
    "User",
    "new_id",
]
