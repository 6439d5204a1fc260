"""Outgoing email and SMS: real senders when configured, a local outbox otherwise."""
