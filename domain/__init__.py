"""Tiaokuai's write side: aggregates, their events and invariants.

Pure: imports only the standard library and eventsourcing's domain module.
"""
