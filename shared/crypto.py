"""Secrets at rest: platform tokens and signing secrets are sealed before they are stored.

Keys come from ``PIAZZA_SECRET_KEYS`` (comma-separated Fernet keys; the first seals, all open, so a
key can be rotated). In development a key is generated once into the data folder so that
``make run`` needs no setup; anywhere else a missing key is a configuration error.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.config import PiazzaSettings
from shared.errors import ConfigurationError

_DEV_KEY_FILE = "secret.key"


class SecretBoxError(Exception):
    """A sealed value could not be opened with any configured key."""


class SecretBox:
    """Seals and opens short secrets with authenticated encryption."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError("at least one secret key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as exc:
            raise ConfigurationError(
                "PIAZZA_SECRET_KEYS must hold Fernet keys (`piazza secret-key` makes one)"
            ) from exc

    def seal(self, plaintext: str) -> str:
        """Encrypt a secret for storage."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        """Decrypt a stored secret, or raise :class:`SecretBoxError`."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise SecretBoxError("sealed secret does not open with the configured keys") from exc


def generate_key() -> str:
    """A new random key for ``PIAZZA_SECRET_KEYS``."""
    return Fernet.generate_key().decode()


def load_secret_box(settings: PiazzaSettings) -> SecretBox:
    """The process's secret box, from the environment or (development only) the data folder."""
    if settings.secret_keys is not None:
        keys = [k.strip() for k in settings.secret_keys.get_secret_value().split(",") if k.strip()]
        return SecretBox(keys)
    if not settings.is_development:
        raise ConfigurationError("PIAZZA_SECRET_KEYS must be set outside development")
    return SecretBox([_dev_key(settings.data_dir)])


def _dev_key(data_dir: Path) -> str:
    path = data_dir / _DEV_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_key())
    return path.read_text().strip()
