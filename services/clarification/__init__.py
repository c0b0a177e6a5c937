"""The clarification service."""
