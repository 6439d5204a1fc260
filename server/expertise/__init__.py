"""Tele-expertise (domain.md §5; api.md "Tele-expertise"): advice lines run by a team of
professionals, requests from other professionals about a patient who is not present, answered in
a conversation between them (the conversations' messages, files, read marks and live events),
with a report at the answer. Patients never reach any of it (404)."""
