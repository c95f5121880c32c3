"""Langfuse's webhook signature, checked the way Langfuse signs, and its event body."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from prompt_middleware.errors import InvalidRequest, InvalidSignature
from prompt_middleware.live.webhook import (
    WebhookEvent,
    WebhookVerifier,
    parse_event,
    signature_header,
)

SECRET = "lf-whsec_" + "ab" * 32
NOW = 1_770_000_000
BODY = (
    b'{"id":"evt_1","timestamp":"2026-12-04T05:00:00.000Z","type":"prompt-version",'
    b'"apiVersion":"v1","action":"updated","prompt":{"id":"p1","name":"support/answer",'
    b'"version":3,"projectId":"proj","labels":["production"],"prompt":"Hi","type":"text",'
    b'"config":{},"commitMessage":null,"tags":[],"createdAt":"2026-12-04T04:59:00.000Z"}}'
)


def langfuse_header(body: bytes, timestamp: int, secret: str = SECRET) -> bytes:
    # Written out here rather than through signature_header: the test checks the scheme.
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}".encode()


def verifier(now: float = NOW) -> WebhookVerifier:
    return WebhookVerifier(SECRET, clock=lambda: now)


def test_a_delivery_signed_as_langfuse_signs_is_accepted() -> None:
    verifier().verify(langfuse_header(BODY, NOW), BODY)


def test_the_helper_signs_as_langfuse_does() -> None:
    assert signature_header(SECRET, BODY, NOW) == langfuse_header(BODY, NOW)


def test_a_retried_delivery_is_accepted_again() -> None:
    header = langfuse_header(BODY, NOW)
    check = verifier(NOW + 60)
    check.verify(header, BODY)
    check.verify(header, BODY)


@pytest.mark.parametrize("skew", [-300, 300])
def test_a_timestamp_up_to_300_s_away_is_accepted(skew: int) -> None:
    verifier(NOW + skew).verify(langfuse_header(BODY, NOW), BODY)


@pytest.mark.parametrize("skew", [-301, 301, 100_000])
def test_a_timestamp_more_than_300_s_away_is_refused(skew: int) -> None:
    with pytest.raises(InvalidSignature, match="300 s"):
        verifier(NOW + skew).verify(langfuse_header(BODY, NOW), BODY)


def test_a_missing_header_is_refused() -> None:
    with pytest.raises(InvalidSignature) as caught:
        verifier().verify(None, BODY)
    assert caught.value.status_code == 401
    assert b'"code":"invalid_signature"' in caught.value.to_json()


@pytest.mark.parametrize(
    "header",
    [
        b"",
        b"garbage",
        b"t=,v1=00",
        b"v1=" + b"0" * 64,
        b"t=1770000000",
        b"t=1770000000,s=" + b"0" * 64,  # the scheme of other providers: not Langfuse's
        b"t=17700000.5,v1=" + b"0" * 64,
        b"t=-1770000000,v1=" + b"0" * 64,
        b"t=\xd9\xa1,v1=00",
        b"t=" + b"9" * 40 + b",v1=00",
    ],
)
def test_a_malformed_header_is_refused(header: bytes) -> None:
    with pytest.raises(InvalidSignature, match="malformed"):
        verifier().verify(header, BODY)


def test_a_wrong_secret_is_refused_and_the_message_names_the_setting() -> None:
    with pytest.raises(InvalidSignature) as caught:
        verifier().verify(langfuse_header(BODY, NOW, "lf-whsec_other"), BODY)
    assert "PROMPT_MIDDLEWARE_LANGFUSE_WEBHOOK_SECRET" in caught.value.message
    assert SECRET not in caught.value.message


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(InvalidSignature, match="does not match"):
        verifier().verify(langfuse_header(BODY, NOW), BODY.replace(b"answer", b"answers"))


def test_a_signature_for_another_timestamp_is_refused() -> None:
    header = langfuse_header(BODY, NOW).replace(str(NOW).encode(), str(NOW + 1).encode())
    with pytest.raises(InvalidSignature, match="does not match"):
        verifier().verify(header, BODY)


def test_one_right_signature_among_several_is_enough() -> None:
    good = langfuse_header(BODY, NOW)
    header = good.replace(b",v1=", b",v1=" + b"0" * 64 + b",v1=")
    verifier().verify(header, BODY)


@pytest.mark.parametrize("action", ["created", "updated", "deleted"])
def test_every_prompt_version_action_invalidates_the_prompt(action: str) -> None:
    event = parse_event(BODY.replace(b'"updated"', f'"{action}"'.encode()))
    assert event == WebhookEvent(type="prompt-version", prompt_name="support/answer")
    assert event.invalidates


def test_other_event_types_are_read_and_do_not_invalidate() -> None:
    event = parse_event(b'{"type":"trace-created","prompt":42,"whatever":[1]}')
    assert event == WebhookEvent(type="trace-created", prompt_name=None)
    assert not event.invalidates


def test_unknown_fields_are_ignored() -> None:
    body = b'{"type":"prompt-version","new":{"x":1},"prompt":{"name":"a","more":true}}'
    assert parse_event(body).prompt_name == "a"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"type":1}',
        b'{"type":"prompt-version"}',
        b'{"type":"prompt-version","prompt":null}',
        b'{"type":"prompt-version","prompt":{"version":3}}',
        b'{"type":"prompt-version","prompt":{"name":3}}',
    ],
)
def test_a_body_that_is_not_such_an_event_is_an_invalid_request(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_event(body)
    assert caught.value.status_code == 400


def test_the_fakes_deliveries_verify_and_name_their_prompt() -> None:
    from tests.fakes.langfuse_webhooks import WebhookLangfuse

    langfuse = WebhookLangfuse()
    langfuse.add_prompt("support/answer", "One.", labels=["production"])
    two = langfuse.add_prompt("support/answer", "Two.")
    deliveries = langfuse.move_label("support/answer", "production", two)
    assert len(deliveries) == 2  # the version that gains the label, the one that loses it
    deliveries.append(langfuse.delete_version("support/answer", 1))
    for body in deliveries:
        header = langfuse.webhook_headers(SECRET, body, NOW)["x-langfuse-signature"]
        verifier().verify(header.encode(), body)
        assert parse_event(body) == WebhookEvent("prompt-version", "support/answer")
