"""Conversations between a patient and a practitioner's care team."""
