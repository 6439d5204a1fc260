"""SQLAlchemy tables. Importing this package registers every table on ``Base.metadata``."""

from .accounts import AuthSession, Practice, Role, SecretaryAssignment, User
from .audit import AuditEvent
from .base import Base, new_id
from .contacts import ContactRequest, ContactRequestStatus
from .conversations import Conversation
from .invitations import Channel, Delivery, DeliveryStatus, Invitation, InvitationStatus
from .messages import (
    Attachment,
    AwayException,
    ConversationParticipant,
    Message,
    MessagingSettings,
    ReadMark,
)

__all__ = [
    "Attachment",
    "AuditEvent",
    "AuthSession",
    "AwayException",
    "Base",
    "Channel",
    "ContactRequest",
    "ContactRequestStatus",
    "Conversation",
    "ConversationParticipant",
    "Delivery",
    "DeliveryStatus",
    "Invitation",
    "InvitationStatus",
    "Message",
    "MessagingSettings",
    "Practice",
    "ReadMark",
    "Role",
    "SecretaryAssignment",
    "User",
    "new_id",
]
