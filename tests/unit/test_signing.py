"""Standard Webhooks signatures: the published vector, tolerance, rotation and hostile headers."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.webhooks.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SignatureError,
    generate_secret,
    secret_key,
    sign,
    verify,
)

pytestmark = pytest.mark.unit

# The test vector published by the Standard Webhooks specification.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()


def _verify(
    signature: str,
    *,
    secrets: list[str] | None = None,
    body: bytes = VECTOR_BODY,
    timestamp: str = str(VECTOR_TIMESTAMP),
    now: float = VECTOR_TIMESTAMP,
) -> int:
    return verify(
        secrets if secrets is not None else [VECTOR_SECRET],
        webhook_id=VECTOR_ID,
        timestamp=timestamp,
        signature=signature,
        body=body,
        now=now,
    )


def _reason(signature: str, **kwargs: object) -> str:
    with pytest.raises(SignatureError) as caught:
        _verify(signature, **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


def test_signing_the_published_vector_gives_the_published_signature() -> None:
    headers = sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)

    assert headers.signature == VECTOR_SIGNATURE
    assert headers.as_dict() == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": VECTOR_SIGNATURE,
    }


def test_the_published_vector_verifies_and_returns_its_timestamp() -> None:
    assert _verify(VECTOR_SIGNATURE) == VECTOR_TIMESTAMP


def test_a_timestamp_exactly_at_the_tolerance_edge_is_accepted_both_ways() -> None:
    assert _verify(VECTOR_SIGNATURE, now=VECTOR_TIMESTAMP + DEFAULT_TOLERANCE_SECONDS) == VECTOR_TIMESTAMP
    assert _verify(VECTOR_SIGNATURE, now=VECTOR_TIMESTAMP - DEFAULT_TOLERANCE_SECONDS) == VECTOR_TIMESTAMP


def test_a_stale_timestamp_is_rejected() -> None:
    reason = _reason(VECTOR_SIGNATURE, now=VECTOR_TIMESTAMP + DEFAULT_TOLERANCE_SECONDS + 1)

    assert reason == "webhook-timestamp is too old"


def test_a_timestamp_from_the_future_is_rejected() -> None:
    reason = _reason(VECTOR_SIGNATURE, now=VECTOR_TIMESTAMP - DEFAULT_TOLERANCE_SECONDS - 1)

    assert reason == "webhook-timestamp is too far in the future"


def test_a_custom_tolerance_is_honoured() -> None:
    with pytest.raises(SignatureError, match="too old"):
        verify(
            [VECTOR_SECRET],
            webhook_id=VECTOR_ID,
            timestamp=str(VECTOR_TIMESTAMP),
            signature=VECTOR_SIGNATURE,
            body=VECTOR_BODY,
            now=VECTOR_TIMESTAMP + 11,
            tolerance=10,
        )


def test_one_matching_signature_among_several_is_enough() -> None:
    wrong = "v1," + base64.b64encode(b"\x00" * 32).decode()

    assert _verify(f"{wrong} {VECTOR_SIGNATURE} {wrong}") == VECTOR_TIMESTAMP


@pytest.mark.parametrize("secrets", [[VECTOR_SECRET, OTHER_SECRET], [OTHER_SECRET, VECTOR_SECRET]])
def test_either_of_two_rotated_secrets_verifies(secrets: list[str]) -> None:
    assert _verify(VECTOR_SIGNATURE, secrets=secrets) == VECTOR_TIMESTAMP


def test_a_sender_rotating_its_secret_may_sign_with_both() -> None:
    old = sign(OTHER_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY).signature

    assert _verify(f"{old} {VECTOR_SIGNATURE}", secrets=[OTHER_SECRET]) == VECTOR_TIMESTAMP
    assert _verify(f"{old} {VECTOR_SIGNATURE}", secrets=[VECTOR_SECRET]) == VECTOR_TIMESTAMP


def test_a_signature_by_a_secret_we_do_not_hold_is_rejected() -> None:
    assert _reason(VECTOR_SIGNATURE, secrets=[OTHER_SECRET]) == "no signature matches"


def test_no_secrets_at_all_verifies_nothing() -> None:
    assert _reason(VECTOR_SIGNATURE, secrets=[]) == "no signature matches"


@pytest.mark.parametrize("version", ["v1a", "v2", "V1", "v0"])
def test_signatures_of_other_versions_are_ignored(version: str) -> None:
    digest = VECTOR_SIGNATURE.removeprefix("v1,")

    assert _reason(f"{version},{digest}") == "webhook-signature holds no v1 signature"


def test_an_unknown_version_beside_a_valid_v1_does_not_hurt() -> None:
    assert _verify(f"v1a,whatever {VECTOR_SIGNATURE}") == VECTOR_TIMESTAMP


@pytest.mark.parametrize(
    "signature", ["v1,not base64!", "v1,g0hM9SsE+OTPJTGt/tmI=KtSy", "v1,é", "v1,g0hM9SsE+"]
)
def test_malformed_base64_is_a_signature_error(signature: str) -> None:
    assert _reason(signature) == "webhook-signature holds no v1 signature"


@pytest.mark.parametrize("signature", ["v1,", "v1", "v1,AAAA", ","])
def test_an_empty_or_short_signature_matches_nothing(signature: str) -> None:
    with pytest.raises(SignatureError):
        _verify(signature)


@pytest.mark.parametrize(
    "timestamp",
    [
        "",
        "-1614265330",
        "1614265330.0",
        " 1614265330",
        "abc",
        "\u0663\u0663",  # Arabic-Indic digits: str.isdigit() says yes, int() would parse them
        "\uff11\uff16\uff11\uff14",  # fullwidth digits, likewise
    ],
)
def test_a_timestamp_that_is_not_ascii_digits_is_rejected(timestamp: str) -> None:
    with pytest.raises(SignatureError):
        _verify(VECTOR_SIGNATURE, timestamp=timestamp)


@pytest.mark.parametrize("missing", ["webhook_id", "timestamp", "signature"])
def test_a_missing_header_is_rejected(missing: str) -> None:
    headers: dict[str, str | None] = {
        "webhook_id": VECTOR_ID,
        "timestamp": str(VECTOR_TIMESTAMP),
        "signature": VECTOR_SIGNATURE,
    }
    headers[missing] = None

    with pytest.raises(SignatureError, match="missing"):
        verify([VECTOR_SECRET], **headers, body=VECTOR_BODY, now=VECTOR_TIMESTAMP)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [b'{"test":2432232314}', b'{"test": 2432232314} ', b' {"test": 2432232314}', b'{"test": 2432232315}'],
)
def test_a_tampered_body_is_rejected(body: bytes) -> None:
    assert _reason(VECTOR_SIGNATURE, body=body) == "no signature matches"


def test_a_different_webhook_id_is_rejected() -> None:
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(
            [VECTOR_SECRET],
            webhook_id=VECTOR_ID + "x",
            timestamp=str(VECTOR_TIMESTAMP),
            signature=VECTOR_SIGNATURE,
            body=VECTOR_BODY,
            now=VECTOR_TIMESTAMP,
        )


@settings(database=None, max_examples=300)
@given(webhook_id=st.text(), timestamp=st.text(), signature=st.text(), body=st.binary())
def test_arbitrary_headers_only_ever_raise_signature_error(
    webhook_id: str, timestamp: str, signature: str, body: bytes
) -> None:
    with pytest.raises(SignatureError):
        verify(
            [VECTOR_SECRET],
            webhook_id=webhook_id,
            timestamp=timestamp,
            signature=signature,
            body=body,
            now=VECTOR_TIMESTAMP,
        )


@settings(database=None, max_examples=300)
@given(signature=st.text(), body=st.binary())
def test_arbitrary_signatures_over_a_fresh_timestamp_only_raise_signature_error(
    signature: str, body: bytes
) -> None:
    # A valid id and timestamp get past the cheap checks, so the signature parser sees every input.
    with pytest.raises(SignatureError):
        _verify(signature, body=body)


@settings(database=None, max_examples=200)
@given(body=st.binary(), webhook_id=st.text(min_size=1))
def test_whatever_sign_produces_verify_accepts(body: bytes, webhook_id: str) -> None:
    headers = sign(VECTOR_SECRET, webhook_id, VECTOR_TIMESTAMP, body)

    accepted = verify(
        [VECTOR_SECRET],
        webhook_id=headers.webhook_id,
        timestamp=str(headers.timestamp),
        signature=headers.signature,
        body=body,
        now=VECTOR_TIMESTAMP,
    )

    assert accepted == VECTOR_TIMESTAMP


def test_a_timestamp_with_thousands_of_digits_is_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        _verify(VECTOR_SIGNATURE, timestamp="9" * 5000)


def test_a_webhook_id_with_a_lone_surrogate_is_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        verify(
            [VECTOR_SECRET],
            webhook_id="msg_\ud800",
            timestamp=str(VECTOR_TIMESTAMP),
            signature=VECTOR_SIGNATURE,
            body=VECTOR_BODY,
            now=VECTOR_TIMESTAMP,
        )


def test_a_generated_secret_round_trips_through_secret_key() -> None:
    secret = generate_secret()

    assert secret.startswith("whsec_")
    assert secret_key(secret) == base64.b64decode(secret.removeprefix("whsec_"))
    assert len(secret_key(secret)) == 32
    assert generate_secret() != secret


def test_a_generated_secret_signs_and_verifies() -> None:
    secret = generate_secret()
    headers = sign(secret, "msg_1", VECTOR_TIMESTAMP, b"{}")

    assert (
        verify(
            [secret],
            webhook_id="msg_1",
            timestamp=str(VECTOR_TIMESTAMP),
            signature=headers.signature,
            body=b"{}",
            now=VECTOR_TIMESTAMP,
        )
        == VECTOR_TIMESTAMP
    )


def test_a_secret_without_the_whsec_prefix_is_the_same_key() -> None:
    bare = VECTOR_SECRET.removeprefix("whsec_")

    assert secret_key(bare) == secret_key(VECTOR_SECRET)
    assert _verify(VECTOR_SIGNATURE, secrets=[bare]) == VECTOR_TIMESTAMP


def test_a_secret_missing_its_base64_padding_still_decodes() -> None:
    padded = "whsec_" + base64.b64encode(b"12345").decode()  # "MTIzNDU="

    assert secret_key(padded.rstrip("=")) == b"12345"


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_", "", "whsec_é"])
def test_an_invalid_secret_raises_value_error(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        secret_key(secret)
