"""Every SQL statement of the analytics service."""
