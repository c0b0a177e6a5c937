"""Shared core of the zhengming services: envelope, event store, outbox, consumer, crypto, logging."""
