"""The inbox's use cases. They take a session and ports, never commit, and never build clients."""
