"""Kafka adapters: topic set-up, the relay's producer side, the projection consumers."""
