"""Rate limits on socket.io events, per socket and per user.

One socket that repeats an event a thousand times a second must not delay everyone else's
replies (an audit stalled other users for 25 s that way). Each event costs a token from the
socket's bucket and from its user's (all of the user's tabs on this process); an empty bucket
refuses the event cheaply, before any database work, and a socket that keeps pushing past its
limit is disconnected with the reason.

Token buckets: a page's normal bursts (subscribing to its conversations on load, a burst of ICE
candidates when a call starts) pass; a sustained flood does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Per socket: a page emits a few events a second at most (ICE candidates come in bursts of tens).
SOCKET_RATE_PER_SECOND = 20.0
SOCKET_BURST = 100
# Per user, all tabs together: a doctor with several tabs open.
USER_RATE_PER_SECOND = 40.0
USER_BURST = 200
# Refused events a socket may send before it is disconnected: a page that hit the limit by
# mistake backs off long before this; a script that floods does not.
REFUSALS_BEFORE_DISCONNECT = 200

TOO_MANY = "Trop de requêtes en peu de temps : patientez quelques secondes."
DISCONNECTED = "Connexion fermée : trop de requêtes envoyées."


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = field(init=False)
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def retry_after(self) -> float:
        return max(0.0, (1 - self.tokens) / self.rate)


class FloodGuard:
    """``admit(sid, user_id)``: "ok", "refuse" (answer 429) or "disconnect"."""

    def __init__(self) -> None:
        self._sockets: dict[str, TokenBucket] = {}
        self._users: dict[str, TokenBucket] = {}
        self._refused: dict[str, int] = {}
        self._sockets_of_user: dict[str, set[str]] = {}

    def admit(self, sid: str, user_id: str | None) -> str:
        socket = self._sockets.get(sid)
        if socket is None:
            socket = self._sockets[sid] = TokenBucket(SOCKET_RATE_PER_SECOND, SOCKET_BURST)
        allowed = socket.take()
        if allowed and user_id is not None:
            user = self._users.get(user_id)
            if user is None:
                user = self._users[user_id] = TokenBucket(USER_RATE_PER_SECOND, USER_BURST)
            self._sockets_of_user.setdefault(user_id, set()).add(sid)
            allowed = user.take()
        if allowed:
            return "ok"
        refused = self._refused[sid] = self._refused.get(sid, 0) + 1
        return "disconnect" if refused >= REFUSALS_BEFORE_DISCONNECT else "refuse"

    def retry_after(self, sid: str) -> float:
        bucket = self._sockets.get(sid)
        return bucket.retry_after() if bucket else 0.0

    def forget(self, sid: str, user_id: str | None) -> None:
        self._sockets.pop(sid, None)
        self._refused.pop(sid, None)
        if user_id is not None:
            sids = self._sockets_of_user.get(user_id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    # The user's bucket goes with their last socket (memory stays bounded).
                    del self._sockets_of_user[user_id]
                    self._users.pop(user_id, None)
