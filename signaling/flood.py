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
from collections import OrderedDict
from dataclasses import dataclass, field

# Per socket: a page emits a few events a second at most (ICE candidates come in bursts of a
# few tens when a call starts).
SOCKET_RATE_PER_SECOND = 10.0
SOCKET_BURST = 40
# Events of one socket being handled at once: a page waits for its answers; a flood that does not
# is refused before it piles up work (a subscribe reads a conversation's history).
SOCKET_IN_FLIGHT = 4
# Per user, all tabs together and across reconnections: a doctor with several tabs open.
USER_RATE_PER_SECOND = 20.0
USER_BURST = 100
USERS_REMEMBERED = 10_000
# Refused events a socket may send before it is disconnected: a page that hit the limit by
# mistake backs off long before this; a script that floods does not.
REFUSALS_BEFORE_DISCONNECT = 100
# A user disconnected for flooding may not open a socket again for this long (reconnecting in a
# loop would otherwise refill nothing but cost a session lookup and a burst each time).
FLOODER_COOLDOWN_SECONDS = 60.0

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
    """``admit(sid, user_id)``: "ok", "refuse" (answer 429) or "disconnect"; ``done(sid)`` when
    an admitted event has been answered."""

    def __init__(self) -> None:
        self._sockets: dict[str, TokenBucket] = {}
        self._in_flight: dict[str, int] = {}
        # A user's bucket outlives their sockets (reconnecting does not refill it); the least
        # recently used are forgotten past USERS_REMEMBERED.
        self._users: OrderedDict[str, TokenBucket] = OrderedDict()
        self._refused: dict[str, int] = {}
        self._cooling: dict[str, float] = {}  # user id → monotonic time they may come back

    def admit(self, sid: str, user_id: str | None, cookie: str | None = None) -> str:
        socket = self._sockets.get(sid)
        if socket is None:
            socket = self._sockets[sid] = TokenBucket(SOCKET_RATE_PER_SECOND, SOCKET_BURST)
        allowed = self._in_flight.get(sid, 0) < SOCKET_IN_FLIGHT and socket.take()
        if allowed and user_id is not None:
            user = self._users.get(user_id)
            if user is None:
                user = self._users[user_id] = TokenBucket(USER_RATE_PER_SECOND, USER_BURST)
                if len(self._users) > USERS_REMEMBERED:
                    self._users.popitem(last=False)
            self._users.move_to_end(user_id)
            allowed = user.take()
        if allowed:
            self._in_flight[sid] = self._in_flight.get(sid, 0) + 1
            return "ok"
        refused = self._refused[sid] = self._refused.get(sid, 0) + 1
        if refused < REFUSALS_BEFORE_DISCONNECT:
            return "refuse"
        # Both the user and the cookie cool down: the cookie is checked before any database
        # lookup when the same script reconnects.
        for key in (user_id, cookie):
            if key is not None:
                self._cooling[key] = time.monotonic() + FLOODER_COOLDOWN_SECONDS
        return "disconnect"

    def may_connect(self, key: str) -> bool:
        """False while this user (or session cookie) is cooling down after being disconnected
        for flooding."""
        until = self._cooling.get(key)
        if until is None:
            return True
        if time.monotonic() >= until:
            del self._cooling[key]
            return True
        return False

    def done(self, sid: str) -> None:
        left = self._in_flight.get(sid, 0) - 1
        if left > 0:
            self._in_flight[sid] = left
        else:
            self._in_flight.pop(sid, None)

    def retry_after(self, sid: str) -> float:
        bucket = self._sockets.get(sid)
        return bucket.retry_after() if bucket else 0.0

    def forget(self, sid: str) -> None:
        self._sockets.pop(sid, None)
        self._refused.pop(sid, None)
        self._in_flight.pop(sid, None)
