"""A local fake of the Hugging Face Hub's HTTP API, on 127.0.0.1, for `avuie push` tests (nothing leaves the machine).

It answers the calls `huggingface_hub.HfApi.create_repo` and `upload_folder` make: `POST /api/repos/create`,
`POST /api/validate-yaml` (the dataset card's metadata: YAML that parses, configs with a name and data files),
`POST /api/{type}s/{repo}/preupload/{revision}` (every file goes inline: "regular") and
`POST /api/{type}s/{repo}/commit/{revision}` (NDJSON: a header, then one base64 file a line). Requests need
`Authorization: Bearer <token>` with the token it was made with. It keeps what it received: `repos`
({repo id: {"private": bool}}), `files` ({repo id: {path: bytes}}) and `commits` (their messages).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

_PRE = re.compile(r"^/api/(model|dataset|space)s/([^/]+/[^/]+)/(preupload|commit)/([^/?]+)")


class FakeHub:
    """The fake Hub server: `with FakeHub(token) as hub:` serves on hub.url until the block ends."""

    def __init__(self, token: str = "hf_test_token"):
        self.token = token
        self.repos: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, bytes]] = {}
        self.commits: list[str] = []
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                hub.requests.append(("GET", self.path))
                self._send(404, {"error": "not served by the fake Hub"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub.requests.append(("POST", self.path))
                if self.headers.get("Authorization") != f"Bearer {hub.token}":
                    return self._send(401, {"error": "Invalid credentials in Authorization header"})
                code, answer = hub.answer(self.path, body)
                self._send(code, answer)

            def _send(self, code: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """(status, JSON answer) of one authenticated POST."""
        request = json.loads(body) if body and "/commit/" not in path else {}  # a commit is NDJSON
        if path == "/api/repos/create":
            repo = f"{request['organization']}/{request['name']}"
            self.repos.setdefault(
                repo, {"private": request.get("visibility") == "private", "type": request["type"]}
            )
            return 200, {"url": f"{self.url}/datasets/{repo}", "name": repo}
        if path == "/api/validate-yaml":
            errors = card_errors(request["content"])
            return (400 if errors else 200), {"errors": [{"message": e} for e in errors], "warnings": []}
        match = _PRE.match(path)
        if match is None or match.group(2) not in self.repos:
            return 404, {"error": f"no such route or repository: {path}"}
        repo, step = match.group(2), match.group(3)
        if step == "preupload":
            files = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in request["files"]
            ]
            return 200, {"files": files, "commitOid": "0" * 40}
        return self._commit(repo, body)

    def _commit(self, repo: str, body: bytes) -> tuple[int, dict[str, Any]]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        for line in lines:
            if line["key"] == "file":
                value = line["value"]
                if value.get("encoding") != "base64":
                    return 400, {"error": f"unsupported file encoding {value.get('encoding')!r}"}
                self.files.setdefault(repo, {})[value["path"]] = base64.b64decode(value["content"])
        self.commits.append(header["summary"])
        oid = hashlib.sha1(body).hexdigest()
        return 200, {
            "commitUrl": f"{self.url}/datasets/{repo}/commit/{oid}",
            "commitOid": oid,
            "pullRequestUrl": None,
        }


def card_errors(content: str) -> list[str]:
    """What the Hub would refuse in a dataset card's metadata (a few of its checks)."""
    if not content.startswith("---\n") or "\n---" not in content[4:]:
        return ["the card has no YAML metadata block"]
    try:
        meta = yaml.safe_load(content[4 : content.index("\n---", 4)])
    except yaml.YAMLError as error:
        return [f"YAML does not parse: {error}"]
    errors = []
    for config in meta.get("configs", []):
        if not config.get("config_name") or not config.get("data_files"):
            errors.append(f"config without a name or data files: {config}")
        for files in config.get("data_files", []):
            if not re.fullmatch(r"\w+(\.\w+)*", str(files.get("split", ""))):
                errors.append(f"bad split name {files.get('split')!r}")
    return errors
