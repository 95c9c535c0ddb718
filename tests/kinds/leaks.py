"""A secret, and where pieces of it show: the redaction tests of every kind."""

from __future__ import annotations

SECRET = "hunter2-very-secret"


def leaks(text: str, secret: str = SECRET) -> list[str]:
    """Every piece of the secret of 3 characters or more that shows in `text` (no shorter piece of
    this one occurs in the marker or the dropped-bytes notice)."""
    return [secret[i:j] for i in range(len(secret)) for j in range(i + 3, len(secret) + 1) if secret[i:j] in text]


