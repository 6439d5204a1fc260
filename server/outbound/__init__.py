"""What leaves the server to reach a person: email (SMTP or outbox), SMS (HTTP gateway or
outbox), Web Push, and the bell that wakes the notification worker. Transports only: what to
say and when is ``server.notify``'s."""
