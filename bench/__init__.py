"""Benchmarks on the real PostgreSQL and Kafka (`make bench`, or `python -m bench.run`)."""
