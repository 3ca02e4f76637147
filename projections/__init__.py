"""Read side: pure projections from event envelopes to view documents, and their queries.

Nothing here knows the store, Kafka or SQL: a projection is fed ``EventEnvelope``s and
writes through the ``ViewStore`` protocol, so the in-process runner, a Kafka consumer
and a unit test feed it the same way.
"""
