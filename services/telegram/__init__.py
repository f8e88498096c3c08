"""The Telegram connector: long-polls each bot in polling mode and publishes its updates."""
