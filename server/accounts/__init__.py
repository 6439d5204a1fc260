"""Accounts: registration, sign-in with throttling, server-side sessions."""
