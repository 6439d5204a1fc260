"""Invitations: a doctor brings a patient into a conversation by email or SMS."""
