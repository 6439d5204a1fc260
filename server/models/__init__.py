"""SQLAlchemy tables. Importing this package registers every table on ``Base.metadata``."""

from sqlalchemy.orm import aliased

from .accounts import AuthSession, Practice, Role, SecretaryAssignment, User
from .after_call import (
    BillingProfile,
    BillingRecord,
    Document,
    PaymentDetails,
    PaymentEvent,
    PaymentRequest,
    PaymentStatus,
)
from .audit import AuditChainHead, AuditEvent
from .base import Base, new_id
from .calls import Call, CallEvent, CallPeer, CallStatus
from .contacts import ContactRequest, ContactRequestStatus
from .conversations import Conversation
from .expertise import (
    ExpertiseLine,
    ExpertiseLineMember,
    ExpertiseRequest,
    ExpertiseRota,
    ExpertiseStatus,
    ExpertiseTemplate,
)
from .idempotency import IdempotentRequest
from .invitations import Channel, Delivery, DeliveryStatus, Invitation, InvitationStatus
from .messages import (
    Attachment,
    AwayException,
    ConversationParticipant,
    Message,
    MessagingSettings,
    ReadMark,
)
from .notifications import (
    EmailVerification,
    Notice,
    NoticeKind,
    NoticeStatus,
    NotificationSettings,
    PasswordReset,
    PushSubscription,
    UnreadNotice,
)

__all__ = [
    "PATIENT",
    "PRACTITIONER",
    "Attachment",
    "AuditChainHead",
    "AuditEvent",
    "AuthSession",
    "AwayException",
    "Base",
    "BillingProfile",
    "BillingRecord",
    "Call",
    "CallEvent",
    "CallPeer",
    "CallStatus",
    "Channel",
    "ContactRequest",
    "ContactRequestStatus",
    "Conversation",
    "ConversationParticipant",
    "Delivery",
    "DeliveryStatus",
    "Document",
    "EmailVerification",
    "ExpertiseLine",
    "ExpertiseLineMember",
    "ExpertiseRequest",
    "ExpertiseRota",
    "ExpertiseStatus",
    "ExpertiseTemplate",
    "IdempotentRequest",
    "Invitation",
    "InvitationStatus",
    "Message",
    "MessagingSettings",
    "Notice",
    "NoticeKind",
    "NoticeStatus",
    "NotificationSettings",
    "PasswordReset",
    "PaymentDetails",
    "PaymentEvent",
    "PaymentRequest",
    "PaymentStatus",
    "Practice",
    "PushSubscription",
    "ReadMark",
    "Role",
    "SecretaryAssignment",
    "UnreadNotice",
    "User",
    "new_id",
]

# The two people of a conversation or a request, as aliases of ``users``. Built once: SQLAlchemy
# rebuilds an alias's column collection on first use, which costs milliseconds per request when
# the alias is made anew each time.
PATIENT = aliased(User, name="patient")
PRACTITIONER = aliased(User, name="practitioner")
