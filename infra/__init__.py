"""Adapters and wiring: settings, the event store, read-model storage, auth tokens, logging."""
