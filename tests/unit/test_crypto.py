"""Secrets at rest: sealed values open with the right keys only, and keys rotate."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.config import Environment, PiazzaSettings
from shared.crypto import SecretBox, SecretBoxError, generate_key, load_secret_box
from shared.errors import ConfigurationError

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PIAZZA_SECRET_KEYS in the developer's shell must not decide these tests."""
    monkeypatch.delenv("PIAZZA_SECRET_KEYS", raising=False)


def _settings(env: Environment, data_dir: Path, keys: str | None = None) -> PiazzaSettings:
    return PiazzaSettings(env=env, data_dir=data_dir, secret_keys=SecretStr(keys) if keys else None)


@pytest.mark.parametrize("plaintext", ["bot123:ABC-token", "", "whsec_☃ unicode 🔑", "x" * 10_000])
def test_a_sealed_secret_opens_to_the_same_text(plaintext: str) -> None:
    box = SecretBox([generate_key()])

    sealed = box.seal(plaintext)

    assert plaintext not in sealed or plaintext == ""
    assert box.open(sealed) == plaintext


def test_sealing_twice_gives_different_ciphertexts() -> None:
    box = SecretBox([generate_key()])

    assert box.seal("same") != box.seal("same")


def test_a_rotated_box_opens_what_the_old_key_sealed() -> None:
    old, new = generate_key(), generate_key()
    sealed_before = SecretBox([old]).seal("platform-token")

    rotated = SecretBox([new, old])

    assert rotated.open(sealed_before) == "platform-token"


def test_a_rotated_box_seals_with_the_first_key() -> None:
    old, new = generate_key(), generate_key()

    sealed = SecretBox([new, old]).seal("platform-token")

    assert SecretBox([new]).open(sealed) == "platform-token"
    with pytest.raises(SecretBoxError):
        SecretBox([old]).open(sealed)


def test_a_wrong_key_cannot_open_a_secret() -> None:
    sealed = SecretBox([generate_key()]).seal("platform-token")

    with pytest.raises(SecretBoxError, match="does not open"):
        SecretBox([generate_key()]).open(sealed)


@pytest.mark.parametrize("sealed", ["", "not a fernet token", "gAAAAA", "é"])
def test_garbage_is_a_secret_box_error(sealed: str) -> None:
    with pytest.raises(SecretBoxError):
        SecretBox([generate_key()]).open(sealed)


def test_a_tampered_ciphertext_is_a_secret_box_error() -> None:
    box = SecretBox([generate_key()])
    sealed = box.seal("platform-token")
    tampered = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]

    with pytest.raises(SecretBoxError):
        box.open(tampered)


@pytest.mark.parametrize("keys", [[], ["not-a-fernet-key"], [generate_key(), "short"], ["é" * 44]])
def test_bad_keys_are_a_configuration_error(keys: list[str]) -> None:
    with pytest.raises(ConfigurationError):
        SecretBox(keys)


def test_development_creates_a_private_key_file_and_reuses_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"

    first = load_secret_box(_settings(Environment.DEVELOPMENT, data_dir))
    key_file = data_dir / "secret.key"
    key = key_file.read_text()
    second = load_secret_box(_settings(Environment.DEVELOPMENT, data_dir))

    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key_file.read_text() == key
    assert second.open(first.seal("platform-token")) == "platform-token"


@pytest.mark.parametrize("env", [Environment.TEST, Environment.PRODUCTION])
def test_outside_development_keys_are_required(env: Environment, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PIAZZA_SECRET_KEYS must be set"):
        load_secret_box(_settings(env, tmp_path))

    assert not (tmp_path / "secret.key").exists()


def test_configured_keys_are_used_comma_separated(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    sealed_before = SecretBox([old]).seal("platform-token")

    box = load_secret_box(_settings(Environment.PRODUCTION, tmp_path, f" {new} , {old} ,"))

    assert box.open(sealed_before) == "platform-token"
    assert SecretBox([new]).open(box.seal("x")) == "x"
    assert not (tmp_path / "secret.key").exists()


def test_configured_keys_that_are_only_commas_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load_secret_box(_settings(Environment.PRODUCTION, tmp_path, " , ,"))
