"""Every limit the server enforces, in one place, each with the reason for its value.

Kept apart from ``settings`` because these are product rules, not deployment choices: a clinic
does not tune the invitation validity, the spec does (domain.md §1).
"""

from datetime import timedelta

# domain.md §1: "The invitation is valid 15 days."
INVITATION_VALIDITY = timedelta(days=15)

# A sign-in lasts a working week at most; a shared computer in a practice must not stay signed in
# forever, and health data sits behind it.
SESSION_LIFETIME = timedelta(days=7)
# Idle sessions end sooner: a forgotten tab on a reception desk should not stay open for days.
SESSION_IDLE_TIMEOUT = timedelta(hours=12)
# Refresh the idle deadline at most this often, so every request does not write to the database.
SESSION_TOUCH_INTERVAL = timedelta(minutes=5)

# Sign-in throttling (NIST SP 800-63B §5.2.2, OWASP ASVS 2.2.1). Each attempt is counted before
# the password is checked. Per account *and* address: 5 attempts in 15 minutes, then each further
# failure doubles the pause (15 min, 30 min, 1 h … at most a day) until a success from there; a
# stranger's failures from elsewhere never lock the owner out.
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_FREE_ATTEMPTS = 5
LOGIN_BACKOFF_CAP = timedelta(days=1)
# One address trying many accounts; higher, since a practice shares one public address.
LOGIN_MAX_FAILURES_PER_ADDRESS = 30
# Many addresses trying one account (NIST: at most 100 consecutive failures). Addresses the
# account signed in from within LOGIN_KNOWN_FOR are spared, so the owner is never locked out by
# strangers.
LOGIN_MAX_FAILURES_PER_ACCOUNT = 100
LOGIN_ACCOUNT_WINDOW = timedelta(days=1)
LOGIN_KNOWN_FOR = timedelta(days=30)

# Passwords: NIST SP 800-63B asks for at least 8 characters; we ask 10 because these accounts open
# medical records. The upper bound keeps argon2 from being fed megabytes.
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256

# A JSON request body is small (names, addresses, messages); anything larger is a mistake or abuse.
JSON_BODY_MAX_BYTES = 64 * 1024

# Invitation tokens: 32 random bytes (256 bits), far above the 128-bit minimum.
TOKEN_BYTES = 32

# Invitations: a doctor invites a day's patients, not thousands; this stops a stolen session or a
# script from turning the server into a spam relay.
INVITATIONS_PER_DOCTOR_PER_HOUR = 60
# Resending the same invitation: enough for "I did not get it", not enough to harass.
RESENDS_PER_INVITATION_PER_HOUR = 5

# Connection requests: a patient cannot flood doctors (issue 2).
CONTACT_REQUESTS_PER_PATIENT_PER_DAY = 5
# After a doctor declines, the same patient cannot ask again before this delay.
CONTACT_REQUEST_COOLDOWN_AFTER_DECLINE = timedelta(days=30)
CONTACT_REQUEST_MESSAGE_MAX_LENGTH = 1000

# Socket connections: a page reconnects a few times on a bad network; a script that opens sockets
# in a loop (each costs a session lookup) is refused. Per user for signed-in sockets; per address
# for refused ones (a practice shares one address, but its pages' cookies are valid).
SOCKET_CONNECTS_PER_USER = 60
SOCKET_REFUSALS_PER_ADDRESS = 60
SOCKET_CONNECT_WINDOW = timedelta(minutes=1)

# Registration from one address: stops bulk account creation.
REGISTRATIONS_PER_ADDRESS_PER_HOUR = 20
# Probing which addresses have an account: a sign-up (or an invitation's acceptance) that finds
# the address taken, and invitation links that do not exist, are counted per address; past these
# the address is refused for the hour, whatever it tries.
TAKEN_ADDRESS_PROBES_PER_HOUR = 5
INVALID_INVITATION_LINKS_PER_HOUR = 20
PROBE_WINDOW = timedelta(hours=1)

# Notification delivery (email, SMS): attempts and the delay before each retry. The last delay is
# long enough to ride out a mail server restart; after it the failure is shown to the doctor.
DELIVERY_RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
)
DELIVERY_TIMEOUT_SECONDS = 15.0
# A worker that claimed a delivery and died frees it after this delay.
DELIVERY_CLAIM_TIMEOUT = timedelta(minutes=2)
DELIVERY_POLL_INTERVAL_SECONDS = 5.0

# Practitioner search: a short query matches too many people to be useful.
SEARCH_MIN_QUERY_LENGTH = 2
SEARCH_MAX_RESULTS = 20

# Messages: long enough for a detailed question or a report summary; attachments carry the rest.
MESSAGE_MAX_LENGTH = 10_000
MESSAGE_MAX_ATTACHMENTS = 10
CLIENT_ID_MAX_LENGTH = 64
# One page of history; a reconnecting client pages through "after seq N" with this size.
MESSAGES_PAGE_DEFAULT = 50
MESSAGES_PAGE_MAX = 200
# Sequence numbers and other counters are 64-bit in the database: a larger number in a request
# is refused as invalid input, not passed to the database (where it raised a 500).
SEQ_MAX = 2**63 - 1

# Uploads (issue 3): 20 MB by default (a phone photo or a scanned prescription), configurable
# with TC_UPLOAD_MAX_BYTES. Uploads per user per hour stop a script from filling the disk.
UPLOAD_MAX_BYTES_DEFAULT = 20 * 1024 * 1024
UPLOADS_PER_USER_PER_HOUR = 120
UPLOAD_CHUNK_BYTES = 256 * 1024
# An upload never posted in a message is deleted after a day (the page posts it within minutes;
# a draft left overnight is gone, which the composer says).

# Away mode: an auto-reply text is a sentence or two, not a letter.
AWAY_MESSAGE_MAX_LENGTH = 1000

# Notifications (domain.md §7). A push not delivered within a day is not worth delivering.
PUSH_TTL_SECONDS = 24 * 3600
# Browsers a person may subscribe (phones, computers at home and at work).
PUSH_SUBSCRIPTIONS_PER_USER = 10
# Unread messages older than this when the feature starts, or after a long outage, are not
# notified: a notice about a week-old message is noise.
UNREAD_NOTICE_LOOKBACK = timedelta(days=2)
# Tests sent from the settings page: enough to try each device, not a spam relay.
TEST_NOTICES_PER_HOUR = 5

# Password reset (domain.md §7): a link or a code valid one hour, single use.
PASSWORD_RESET_VALIDITY = timedelta(hours=1)
# Requests per address and per account: "I did not get it" a few times, not a mail bomb.
PASSWORD_RESETS_PER_ADDRESS_PER_HOUR = 10
PASSWORD_RESETS_PER_ACCOUNT_PER_HOUR = 3
# A 6-digit code has a million values: five wrong tries and the code is void.
PASSWORD_RESET_CODE_ATTEMPTS = 5
PASSWORD_RESET_CONFIRMS_PER_ADDRESS_PER_HOUR = 30

# Email confirmation (a patient who signed up alone): the link stays valid a week (the first
# days of a new account), and a few may be asked for an hour.
EMAIL_VERIFICATION_VALIDITY = timedelta(days=7)
EMAIL_VERIFICATIONS_PER_HOUR = 3

# Document previews are drawn on each click of "Aperçu": a doctor rereads a few times, a script
# looping on it would hold the drawing threads.
PREVIEWS_PER_MINUTE = 30
PREVIEW_WINDOW = timedelta(minutes=1)

# A person's data export reads every file they hold: a few an hour is plenty for a person.
EXPORTS_PER_HOUR = 5
EXPORT_WINDOW = timedelta(hours=1)
