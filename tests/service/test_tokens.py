"""The token file: named tokens with roles, the older one-token file, and errors that name the file
and line but never a token."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.service.tokens import LEGACY_NAME, Role, TokenFileError, Tokens, parse, read
from tests.harness import Daemon, wait_for
from tests.service.test_http import get

OPS = "operate-token-0123456789"
VIEWER = "read-only-token-0123456789"


def test_a_file_of_named_tokens_gives_each_its_name_and_role() -> None:
    tokens = parse(f"# who may do what\n\ndana operate {OPS}\n  grafana read {VIEWER}  \n", "t")
    dana, grafana = tokens.match(OPS.encode()), tokens.match(VIEWER.encode())
    assert dana is not None
    assert grafana is not None
    assert (dana.name, dana.role, grafana.name, grafana.role) == ("dana", Role.OPERATE, "grafana", Role.READ)
    assert tokens.match(b"nobody-has-this-token-1234") is None
    assert tokens.match(OPS.encode()[:-1]) is None
    assert tokens.match(b"") is None


def test_the_older_one_token_file_is_one_operate_token() -> None:
    [token] = parse(f"\n{OPS}\n", "t").entries
    assert (token.name, token.role, token.secret) == (LEGACY_NAME, Role.OPERATE, OPS.encode())
    assert Tokens.single(OPS) == parse(OPS, "t")


@pytest.mark.parametrize(("text", "message"), [
    ("dana operate short\n", "t:1: the token of dana must be at least 16 characters"),
    ("short\n", "t:1: the token must be at least 16 characters"),
    (f"# c\ndana admin {OPS}\n", "t:2: the role must be read or operate"),
    (f"dana operate {OPS}\ndana read {VIEWER}\n", "t:2: the name dana is given twice"),
    (f"dana operate {OPS}\nbob read {OPS}\n", "t:2: the token of bob is also another name's token"),
    (f"dana operate {OPS}\nbob {VIEWER}\n", "t:2: write NAME ROLE TOKEN"),
    (f"<b>x</b> read {VIEWER}\n", "t:1: the name must be"),
    ("# only a comment\n\n", "t: no token in the file"),
])
def test_a_bad_token_file_is_refused_naming_the_file_and_line_but_never_a_token(text: str, message: str) -> None:
    with pytest.raises(TokenFileError) as caught:
        parse(text, "t")
    assert str(caught.value).startswith(message)
    for secret in (OPS, VIEWER, "short"):
        assert secret not in str(caught.value)


def test_a_token_never_shows_in_its_repr() -> None:
    [token] = parse(f"dana operate {OPS}", "t").entries
    assert OPS not in repr(token)
    assert OPS not in repr(parse(f"dana operate {OPS}", "t"))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=r"nope: No such file"):
        read(str(tmp_path / "nope"))


def test_run_refuses_a_too_short_token_before_starting(tmp_path: Path) -> None:
    from reconciler.commands.run import _token
    from reconciler.errors import UsageError

    path = tmp_path / "tokens"
    path.write_text("dana operate tooshort\n")
    with pytest.raises(UsageError, match=rf"--token-file {path}:1: the token of dana must be at least 16"):
        _token(str(path))


# ---- through the real `reconciler run` ---------------------------------------------------------------

def test_a_bad_token_file_stops_the_daemon_at_start_naming_the_line(
        reconciler: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    path = tmp_path / "tokens"
    path.write_text(f"dana operate {OPS}\ngrafana reader {VIEWER}\n")
    r = reconciler("run", "--dir", str(tmp_path / "s"), "--ledger", str(tmp_path / "l.db"), "--listen", "none",
                   "--token-file", str(path))
    assert r.returncode == 64
    assert f"{path}:2: the role must be read or operate" in r.stderr
    assert OPS not in r.stderr + r.stdout
    assert VIEWER not in r.stderr + r.stdout
    alone = reconciler("run", "--dir", str(tmp_path / "s"), "--ledger", str(tmp_path / "l.db"), "--listen", "none",
                       "--read-token-required")
    assert alone.returncode == 64
    assert "--read-token-required needs --token-file" in alone.stderr


def test_read_token_required_holds_on_the_real_server_and_the_probes_stay_open(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "s"
    sched.mkdir()
    (sched / "a.yaml").write_text("name: a\nschedule: {cron: '0 3 1 1 *'}\nrun: {command: [/bin/true]}\n")
    path = tmp_path / "tokens"
    path.write_text(f"dana operate {OPS}\ngrafana read {VIEWER}\n")
    d = Daemon(sched, tmp_path, "--token-file", str(path), "--read-token-required")
    started.append(d)
    base = f"http://{d.wait_event('http.listening')['address']}"
    wait_for(lambda: get(base + "/readyz")[0] == 200, what="ready")
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/api/v1/status")[0] == 401
    assert get(base + "/metrics")[0] == 401
    status, _, body = get(base + "/api/v1/status", Authorization=f"Bearer {VIEWER}")
    assert status == 200
    assert json.loads(body)["read_only"] is False
    assert get(base + "/metrics", Authorization=f"Bearer {OPS}")[0] == 200
    assert OPS not in d.log_path.read_text()
