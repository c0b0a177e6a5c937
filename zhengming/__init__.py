"""Operator tooling of zhengming: the `zhengming` command and the local infrastructure."""
