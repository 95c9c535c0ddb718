"""The base image's mirror comes from the host's apt sources (tests/container/mirror.py)."""

from __future__ import annotations

from tests.container.mirror import FALLBACK, entries, host_release, one_line, stanzas

KEY = "/usr/share/keyrings/debian-archive-keyring.gpg"

DEB822 = f"""\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: trixie trixie-updates
Components: main contrib
Signed-By: {KEY}

Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: trixie-security
Components: main
Signed-By: {KEY}

Types: deb
URIs: https://deb.nodesource.example/node_20.x
Suites: nodistro
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: trixie-backports
Components: main
Enabled: no
"""


def is_key(path: str) -> bool:
    return path == KEY


def test_a_deb822_host_of_another_release_gives_its_mirrors_for_the_base_release() -> None:
    assert entries(stanzas(DEB822), "trixie", "bookworm", is_file=is_key) == [
        f"deb [signed-by={KEY}] http://mirror.example/debian bookworm bookworm-updates main",
        f"deb [signed-by={KEY}] http://mirror.example/debian-security bookworm-security main",
    ]


def test_one_line_sources_with_options_are_read_and_vendor_repositories_left_out() -> None:
    text = (f"deb [arch=amd64 signed-by={KEY}] http://mirror.example/debian bookworm main  # the archive\n"
            "# deb http://commented.example/debian bookworm main\n"
            "deb-src http://mirror.example/debian bookworm main\n"
            "deb [signed-by=/etc/apt/keyrings/docker.asc] https://download.example/linux/debian bookworm stable\n")
    assert entries(one_line(text), "bookworm", "bookworm", is_file=is_key) == [
        f"deb [signed-by={KEY}] http://mirror.example/debian bookworm main",
    ]


def test_a_keyring_missing_on_the_host_is_not_named() -> None:
    found = entries(stanzas(DEB822), "trixie", "bookworm", is_file=lambda path: False)
    assert found[0] == "deb http://mirror.example/debian bookworm bookworm-updates main"


def test_a_host_without_a_debian_source_falls_back_to_the_public_mirror() -> None:
    assert entries([], "", "bookworm") == [f"deb {FALLBACK} bookworm bookworm-updates main"]


def test_the_host_release_is_read_from_os_release() -> None:
    assert host_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n') == "bookworm"
    assert host_release("ID=alpine\n") == ""
