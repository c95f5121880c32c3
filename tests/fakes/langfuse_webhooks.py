"""The Langfuse fake grown Langfuse's prompt-version webhooks: moving a label or deleting a
version gives the bodies of the deliveries Langfuse sends, and :meth:`webhook_headers` signs a
body as Langfuse signs it (written here from Langfuse's own signing code, not from ours).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Final

from tests.fakes.langfuse import FakeLangfuse

__all__ = ["WebhookLangfuse"]

# The fields of ``prompt`` in Langfuse's PromptWebhookOutbound.
_WEBHOOK_PROMPT_FIELDS: Final = (
    "id",
    "name",
    "version",
    "projectId",
    "labels",
    "prompt",
    "type",
    "config",
    "commitMessage",
    "tags",
    "createdAt",
    "updatedAt",
)


class WebhookLangfuse(FakeLangfuse):
    """A :class:`FakeLangfuse` that also says what Langfuse's webhooks would send."""

    # --- webhooks, as Langfuse sends them -----------------------------------------------------

    def move_label(self, name: str, label: str, version: int) -> list[bytes]:
        """Move ``label`` to ``version`` as the UI does; the bodies of the deliveries Langfuse
        sends for it: one ``updated`` event for the version that gains the label, one for the
        version that loses it (if any)."""
        stored = self._prompts[name]
        losers = [n for n, v in stored.versions.items() if label in v.labels and n != version]
        stored.take_labels([label])
        stored.versions[version].labels.append(label)
        return [self.webhook_event(name, n, "updated") for n in (version, *losers)]

    def delete_version(self, name: str, version: int) -> bytes:
        """Delete one version; the body of Langfuse's ``deleted`` delivery for it."""
        event = self.webhook_event(name, version, "deleted")
        del self._prompts[name].versions[version]
        return event

    def webhook_event(self, name: str, version: int, action: str) -> bytes:
        """The body of a ``prompt-version`` delivery (Langfuse's ``PromptWebhookOutbound``)."""
        stored = self._prompts[name]
        row = self._serialise(stored, stored.versions[version])
        prompt = {key: row[key] for key in _WEBHOOK_PROMPT_FIELDS}
        event = {
            "id": f"evt-{uuid.uuid4().hex}",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "type": "prompt-version",
            "apiVersion": "v1",
            "action": action,
            "prompt": prompt,
        }
        return json.dumps(event, separators=(",", ":")).encode()

    @staticmethod
    def webhook_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers of a delivery of ``body``, signed as Langfuse signs it: HMAC-SHA256 of
        ``"<t>.<body>"`` keyed with the secret as shown (``lf-whsec_…``), in hex."""
        t = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return {
            "content-type": "application/json",
            "user-agent": "Langfuse/1.0",
            "x-langfuse-signature": f"t={t},v1={digest}",
        }
