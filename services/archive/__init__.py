"""The archive service."""
