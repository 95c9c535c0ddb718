"""A small Language Server Protocol client over stdio: enough to see what an editor shows.

It starts one server process, says what a plain editor says (initialize, the `yaml` settings,
didOpen), and collects `textDocument/publishDiagnostics`. Every wait is bounded; `close()` ends
the process it started, and only that one.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SERVER_JS = HERE / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
INSTALL = "npm ci --prefix tests/editor"


def require_node_tool(path: Path) -> str:
    """The `node` to run `path` with; skips when either is missing, except in CI, where it fails."""
    node = shutil.which("node")
    missing = "node is not installed" if node is None else None
    if missing is None and not path.exists():
        missing = f"{path.relative_to(HERE.parent.parent)} is not installed (run: {INSTALL})"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {missing}")
        pytest.skip(missing)
    assert node is not None
    return node


@dataclass(frozen=True)
class Diagnostic:
    line: int  # 1-based, as `validate` counts
    column: int  # 1-based
    message: str
    severity: int  # 1 error, 2 warning, 3 information, 4 hint

    @classmethod
    def of(cls, d: dict[str, Any]) -> Diagnostic:
        start = d["range"]["start"]
        return cls(start["line"] + 1, start["character"] + 1, d["message"], d.get("severity", 1))


class LanguageServer:
    def __init__(self, argv: list[str], root: Path, settings: dict[str, Any], timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.settings = settings
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      cwd=root)
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[bytes] = []
        self._next_id = 0
        self._versions: dict[str, int] = {}
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.request("initialize", {
            "processId": os.getpid(),
            "rootUri": root.as_uri(),
            "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
            "capabilities": {"workspace": {"configuration": True}, "textDocument": {
                "publishDiagnostics": {"relatedInformation": False},
                "hover": {"contentFormat": ["markdown", "plaintext"]},
                "completion": {"completionItem": {"snippetSupport": True, "documentationFormat": ["markdown"]}},
            }},
        })
        self.notify("initialized", {})
        # The server pulls its settings (workspace/configuration) whenever told they changed; wait
        # for that pull, so that no document is checked with the defaults.
        self.notify("workspace/didChangeConfiguration", {"settings": settings})
        deadline = time.monotonic() + timeout
        while self._receive(deadline).get("method") != "workspace/configuration":
            pass

    # -- the wire ---------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self._proc.stdin is not None
        self._proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self._proc.stdin.flush()

    def _read(self) -> None:
        out = self._proc.stdout
        assert out is not None
        try:
            while True:
                length = None
                while (line := out.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("ascii").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if length is None:
                    break
                self._inbox.put(json.loads(out.read(length)))
        finally:
            self._inbox.put(None)

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)

    def _receive(self, deadline: float) -> dict[str, Any]:
        left = deadline - time.monotonic()
        try:
            message = self._inbox.get(timeout=max(left, 0.001))
        except queue.Empty:
            raise TimeoutError(f"no answer from the language server in {self.timeout} s") from None
        if message is None:
            raise RuntimeError("the language server exited: " + b"".join(self._stderr[-20:]).decode(errors="replace"))
        if "method" in message and "id" in message:  # a request from the server: answer it
            self._send({"id": message["id"], "result": self._answer(message)})
        return message

    def _answer(self, request: dict[str, Any]) -> Any:
        if request["method"] == "workspace/configuration":
            return [self.settings.get(item.get("section", "")) for item in request["params"]["items"]]
        return None

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self._next_id += 1
        ident = self._next_id
        self._send({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == ident and "method" not in message:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result")

    # -- what an editor does --------------------------------------------------------------------------
    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.resolve().as_uri()
        # The server caches parsed documents by URI and version: a reopened URI needs a new version.
        version = self._versions[uri] = self._versions.get(uri, 0) + 1
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": version,
            "text": path.read_text("utf-8") if text is None else text}})
        return uri

    def diagnostics(self, path: Path, text: str | None = None) -> list[Diagnostic]:
        """Open a document and return the diagnostics the server publishes for it."""
        uri = self.open(path, text)
        found = [Diagnostic.of(d) for d in self._published(uri)]
        # Closing clears the document's diagnostics with one more (empty) publication: wait for it,
        # so that it is not taken for the next opening's.
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        self._published(uri)
        return sorted(found, key=lambda d: (d.line, d.column, d.message))

    def _published(self, uri: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            params = message.get("params", {})
            if message.get("method") == "textDocument/publishDiagnostics" and params.get("uri") == uri:
                return list(params["diagnostics"])

    def hover(self, uri: str, line: int, column: int) -> str:
        result = self.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                      "position": {"line": line - 1, "character": column - 1}})
        if not result:
            return ""
        contents = result["contents"]
        return str(contents["value"] if isinstance(contents, dict) else contents)

    def completion(self, uri: str, line: int, column: int) -> list[dict[str, Any]]:
        result = self.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                           "position": {"line": line - 1, "character": column - 1}})
        items = result["items"] if isinstance(result, dict) else result
        return list(items or [])

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self._proc.wait(timeout=5)
        except (OSError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            pass
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(timeout=5)
            for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    pipe.close()


@contextmanager
def yaml_language_server(root: Path, settings: dict[str, Any]) -> Iterator[LanguageServer]:
    node = require_node_tool(SERVER_JS)
    server = LanguageServer([node, str(SERVER_JS), "--stdio"], root, settings)
    try:
        yield server
    finally:
        server.close()
