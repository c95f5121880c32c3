"""A request's sticky key: the body's ``user``, a header, or none (a random draw)."""

from __future__ import annotations

import pytest

from prompt_middleware.experiments import Experiment, Split, Variant, assign, sticky_key
from prompt_middleware.request import decode_body


def make_split(sticky: str, draw: float = 0.99) -> Split:
    return Split(
        Experiment(
            prompt_id="p",
            name="tone",
            sticky=sticky,
            variants=(Variant(label="a", weight=50), Variant(label="b", weight=50)),
        ),
        lambda: draw,
    )


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"user": "alice"}', "alice"),
        (b'{"user": "\\u00e9l\\u00e8ve"}', "élève"),
        (b'{"user": 12345}', b"12345"),
        (b'{"user": {"id": 1}}', b'{"id": 1}'),
        (b'{"user": null}', None),
        (b'{"user": ""}', None),
        (b"{}", None),
    ],
)
def test_sticky_user_reads_the_bodys_user_field(body: bytes, key: str | bytes | None) -> None:
    assert sticky_key(make_split("user"), decode_body(body), [(b"x-user-id", b"h")]) == key


def test_sticky_header_reads_that_header_whatever_its_case() -> None:
    split = make_split("header:X-User-Id")
    fields = decode_body(b'{"user": "alice"}')
    assert sticky_key(split, fields, [(b"accept", b"*/*"), (b"x-user-id", b"u-7")]) == b"u-7"
    assert sticky_key(split, fields, [(b"X-User-Id", b"u-8")]) == b"u-8"
    assert sticky_key(split, fields, [(b"x-user-id", b"")]) is None
    assert sticky_key(split, fields, []) is None


def test_sticky_none_reads_nothing() -> None:
    fields = decode_body(b'{"user": "alice"}')
    assert sticky_key(make_split("none"), fields, [(b"x-user-id", b"u")]) is None


def test_the_same_user_by_body_or_by_header_gets_the_same_variant() -> None:
    by_user, by_header = make_split("user"), make_split("header:x-user-id")
    for n in range(200):
        user = f"user-{n}"
        body = decode_body(b'{"user": "%s"}' % user.encode())
        assert (
            assign(by_user, body, []).name
            == assign(by_header, {}, [(b"x-user-id", user.encode())]).name
        )


def test_no_key_is_a_random_draw() -> None:
    assert assign(make_split("user", draw=0.99), {}, []).name == "b"
    assert assign(make_split("user", draw=0.01), {}, []).name == "a"
