"""`zhengming demo`: the Lishui Q1 2023 scenario on a fresh local stack of its own, driven through
the services' public HTTP APIs and the inbound topic only, with a progress display, the quarterly
report checked against Lishui's published figures, the documents, one case's audit timeline and
the verification of the whole trail.

stack: its ports and root; calls: how it calls the services; runner: the phases; report: the
tables; main: the command."""

from zhengming.demo.main import DEFAULT_SEED, run_demo

__all__ = ["DEFAULT_SEED", "run_demo"]
