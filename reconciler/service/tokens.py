"""Named bearer tokens with roles, read from `--token-file`.

The file holds one token per line: `NAME ROLE TOKEN`, where ROLE is `read` (may read the API,
the dashboard's data and /metrics when `--read-token-required` is set) or `operate` (may also
trigger, pause, resume and backfill). Blank lines and lines starting with `#` are ignored. A file
whose only content is one word is the older format: that word is a single `operate` token named
`api-token` (the name pauses made through the API were recorded under before).

A token is never logged nor put in an error message: errors name the file and the line only.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

MIN_LENGTH = 16
LEGACY_NAME = "api-token"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class Role(StrEnum):
    READ = "read"
    OPERATE = "operate"


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    role: Role
    secret: bytes

    def __repr__(self) -> str:  # a token in a traceback or a log line shows its name only
        return f"Token({self.name!r}, {self.role.value})"


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file and the line, never a token."""


@dataclass(frozen=True, slots=True)
class Tokens:
    entries: tuple[Token, ...]

    @classmethod
    def single(cls, secret: str) -> Tokens:
        return cls((Token(LEGACY_NAME, Role.OPERATE, secret.encode()),))

    def match(self, given: bytes) -> Token | None:
        """The token whose secret is `given`. Every entry is compared in constant time, and all of
        them are, so that the time taken tells nothing of which (or whether one) matched."""
        found = None
        for token in self.entries:
            if hmac.compare_digest(given, token.secret):
                found = token
        return found


def parse(text: str, path: str) -> Tokens:
    lines = text.splitlines()
    meaningful = [(n, line.strip()) for n, line in enumerate(lines, 1)
                  if line.strip() and not line.strip().startswith("#")]
    if not meaningful:
        raise TokenFileError(f"{path}: no token in the file")
    if len(meaningful) == 1 and len(meaningful[0][1].split()) == 1:  # the older one-token file
        n, secret = meaningful[0]
        if len(secret) < MIN_LENGTH:
            raise TokenFileError(f"{path}:{n}: the token must be at least {MIN_LENGTH} characters")
        return Tokens.single(secret)
    entries: list[Token] = []
    names: set[str] = set()
    secrets: set[str] = set()
    for n, line in meaningful:
        where = f"{path}:{n}"
        parts = line.split()
        if len(parts) != 3:
            raise TokenFileError(f"{where}: write NAME ROLE TOKEN (ROLE is read or operate), "
                                 f"separated by spaces; found {len(parts)} words")
        name, role, secret = parts
        if not _NAME.fullmatch(name):
            raise TokenFileError(f"{where}: the name must be 1 to 64 letters, digits, '.', '_', '@' or '-'")
        if role not in tuple(Role):
            raise TokenFileError(f"{where}: the role must be read or operate")
        if len(secret) < MIN_LENGTH:
            raise TokenFileError(f"{where}: the token of {name} must be at least {MIN_LENGTH} characters")
        if name in names:
            raise TokenFileError(f"{where}: the name {name} is given twice")
        if secret in secrets:
            raise TokenFileError(f"{where}: the token of {name} is also another name's token")
        names.add(name)
        secrets.add(secret)
        entries.append(Token(name, Role(role), secret.encode()))
    return Tokens(tuple(entries))


def read(path: str) -> Tokens:
    try:
        text = Path(path).read_text("utf-8")
    except OSError as e:
        raise TokenFileError(f"{path}: {e.strerror}") from e
    except UnicodeDecodeError:
        raise TokenFileError(f"{path}: not UTF-8 text") from None
    return parse(text, path)
