"""The Reddit connector: polls each account's inbox and followed subreddits onto the bus."""
