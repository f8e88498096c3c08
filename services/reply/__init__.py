"""The reply service: sends replies and moderation actions to the platforms, and reports the outcome."""
