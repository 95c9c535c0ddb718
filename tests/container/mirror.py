"""The machine's own Debian mirror, read from its apt sources, as the one-line entries that
mmdebstrap takes for a base of another release: build machines may reach no other mirror.

    python3 tests/container/mirror.py bookworm
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

FALLBACK = "http://deb.debian.org/debian"


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs (sources.list.d/*.sources): `Key: value`, continuation lines, `#` comments."""
    fields: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif line[0] in " \t" and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()


def one_line(text: str) -> Iterator[dict[str, str]]:
    """sources.list: `deb [opt=value ...] URI SUITE COMPONENT...`, as the same fields."""
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        options: dict[str, str] = {}
        if len(words) > 1 and words[1].startswith("["):
            end = next((i for i, w in enumerate(words) if w.endswith("]")), len(words) - 1)
            for opt in " ".join(words[1:end + 1]).strip("[]").split():
                name, _, value = opt.partition("=")
                options[name.lower()] = value
            words = [words[0], *words[end + 1:]]
        if len(words) >= 4:
            yield {"types": words[0], "uris": words[1], "suites": words[2], "components": " ".join(words[3:]),
                   **({"signed-by": options["signed-by"]} if "signed-by" in options else {})}


def entries(sources: Iterable[dict[str, str]], host: str, target: str,
            is_file: Callable[[str], bool] = os.path.isfile) -> list[str]:
    """The host's Debian `main` mirrors, with the host's release (`host`, `host-updates`,
    `host-security`) renamed to the target's. Sources of other releases or vendors are left out."""
    out: list[str] = []
    for s in sources:
        if "deb" not in s.get("types", "").split() or s.get("enabled", "yes").lower() == "no":
            continue
        if "main" not in s.get("components", "").split():
            continue
        suites = [target + suite[len(host):] for suite in s.get("suites", "").split()
                  if suite == host or suite.startswith(host + "-")]
        if not suites:
            continue
        keyring = s.get("signed-by", "")
        option = f"[signed-by={keyring}] " if keyring.startswith("/") and is_file(keyring) else ""
        for uri in s.get("uris", "").split():
            line = f"deb {option}{uri} {' '.join(suites)} main"
            if line not in out:
                out.append(line)
    return out or [f"deb {FALLBACK} {target} {target}-updates main"]


def host_release(os_release: str) -> str:
    for line in os_release.splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def main(argv: list[str]) -> int:
    target = argv[0] if argv else "bookworm"
    apt = Path("/etc/apt")
    found: list[dict[str, str]] = []
    for f in sorted((apt / "sources.list.d").glob("*.sources")):
        found += stanzas(f.read_text())
    for f in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if f.is_file():
            found += one_line(f.read_text())
    release = Path("/etc/os-release")
    host = host_release(release.read_text()) if release.is_file() else ""
    print("\n".join(entries(found, host or target, target)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
