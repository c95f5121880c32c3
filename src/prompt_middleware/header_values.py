"""Text as a response header value: the one quoting of every ``x-prompt-*`` header.

Prompt names, labels and store prefixes come from configuration and from client input: a
header value must carry no CR/LF (header splitting) and no non-ASCII. Printable ASCII but
``%`` (the escape) and the space (a value must not start or end with one, and a name may)
stays as it is; everything else is percent-encoded, so a reader decodes it with any URL
unquote.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final
from urllib.parse import quote

__all__ = ["header_value"]

_HEADER_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


@lru_cache(maxsize=4096)
def header_value(value: str) -> bytes:
    """``value`` as a header value, percent-encoded where it is not printable ASCII."""
    return quote(value, safe=_HEADER_SAFE).encode("ascii")
