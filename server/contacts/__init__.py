"""Connection requests: a patient finds a practitioner by name and asks to be followed."""
