"""The four zhengming services: intake, review, clarification, archive."""
