"""Telegram Bot API: the HTTP client and the normalisation of updates into Piazza events."""
