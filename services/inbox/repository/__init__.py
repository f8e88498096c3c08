"""Every SQL statement of the inbox, by topic."""
