"""Téléconsult: the HTTP API and the domain of the teleconsultation server."""
