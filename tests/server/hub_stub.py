"""A loopback stand-in for the Hugging Face Hub: the HTTP API that `HfApi.create_repo` and `upload_folder`
use on the LFS path (huggingface_hub with HF_HUB_DISABLE_XET=1), as tests/generate/stub_server.py stands in
for OpenAI. It keeps dataset repositories in memory and checks what a client sends as the Hub would:
a bearer token, valid README YAML, LFS objects whose SHA-256 matches, commits that name uploaded objects.

Endpoints: POST /api/repos/create, POST /api/validate-yaml, GET /api/datasets/{repo}/tree/main,
POST /api/datasets/{repo}/preupload/main, POST /datasets/{repo}.git/info/lfs/objects/batch,
PUT /lfs/{oid}, POST /api/datasets/{repo}/commit/main.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

TOKEN = "hf_stub_write_token"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)  # path -> content
    lfs: set[str] = field(default_factory=set)  # paths stored as LFS pointers
    commits: list[dict[str, Any]] = field(default_factory=list)


class HubStub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.lfs_uploads: list[str] = []  # oids PUT, in order
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status: int, doc: Any) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"error": "Invalid credentials in Authorization header"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                match = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/main(?:\?.*)?", self.path)
                if not match or match.group(1) not in hub.repos:
                    self._send(404, {"error": "Repository not found"})
                    return
                repo = hub.repos[match.group(1)]
                self._send(
                    200,
                    [
                        {"type": "file", "path": p, "size": len(c), "oid": git_blob_sha1(c)}
                        for p, c in sorted(repo.files.items())
                    ],
                )

            def do_PUT(self) -> None:
                match = re.fullmatch(r"/lfs/([0-9a-f]{64})", self.path)
                data = self._body()
                if not match or hashlib.sha256(data).hexdigest() != match.group(1):
                    self._send(400, {"error": "LFS object does not match its oid"})
                    return
                with hub.lock:
                    hub.lfs_objects[match.group(1)] = data
                    hub.lfs_uploads.append(match.group(1))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = self._body()
                if not self._authorised():
                    return
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    self._create(json.loads(body))
                elif path == "/api/validate-yaml":
                    self._validate_yaml(json.loads(body))
                elif m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/preupload/main", path):
                    self._preupload(m.group(1), json.loads(body))
                elif m := re.fullmatch(r"/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path):
                    self._batch(json.loads(body))
                elif m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/main", path):
                    self._commit(m.group(1), body)
                else:
                    self._send(404, {"error": f"no such endpoint {path}"})

            def _create(self, doc: dict[str, Any]) -> None:
                repo_id = f"{doc['organization']}/{doc['name']}"
                url = f"{hub.url}/datasets/{repo_id}"
                if doc.get("type") != "dataset":
                    self._send(400, {"error": "this stand-in holds dataset repositories only"})
                elif repo_id in hub.repos:
                    self._send(409, {"error": "You already created this dataset repo", "url": url})
                else:
                    hub.repos[repo_id] = Repo(private=doc.get("visibility") == "private")
                    self._send(200, {"url": url, "name": repo_id})

            def _validate_yaml(self, doc: dict[str, Any]) -> None:
                content = doc["content"]
                errors = []
                if not content.startswith("---\n"):
                    errors.append({"message": "README.md has no YAML metadata block"})
                else:
                    meta = yaml.safe_load(content.split("---\n")[1])
                    for key in ("license", "configs"):
                        if key not in meta:
                            errors.append({"message": f"missing {key}"})
                    for config in meta.get("configs", []):
                        if not config.get("config_name") or not config.get("data_files"):
                            errors.append({"message": f"config {config} needs config_name and data_files"})
                self._send(400 if errors else 200, {"errors": errors, "warnings": []})

            def _preupload(self, repo_id: str, doc: dict[str, Any]) -> None:
                repo = hub.repos[repo_id]
                files = []
                for f in doc["files"]:
                    lfs = f["path"].endswith(".parquet")
                    existing = repo.files.get(f["path"])
                    oid = None
                    if existing is not None:
                        oid = hashlib.sha256(existing).hexdigest() if lfs else git_blob_sha1(existing)
                    files.append(
                        {
                            "path": f["path"],
                            "uploadMode": "lfs" if lfs else "regular",
                            "shouldIgnore": False,
                            "oid": oid,
                        }
                    )
                self._send(200, {"files": files, "commitOid": "0" * 40})

            def _batch(self, doc: dict[str, Any]) -> None:
                objects = []
                for obj in doc["objects"]:
                    entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
                    if obj["oid"] not in hub.lfs_objects:
                        entry["actions"] = {"upload": {"href": f"{hub.url}/lfs/{obj['oid']}", "header": {}}}
                    objects.append(entry)
                self._send(200, {"transfer": "basic", "objects": objects})

            def _commit(self, repo_id: str, body: bytes) -> None:
                repo = hub.repos[repo_id]
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                with hub.lock:
                    for line in lines:
                        key, value = line["key"], line["value"]
                        if key == "file":
                            repo.files[value["path"]] = base64.b64decode(value["content"])
                            repo.lfs.discard(value["path"])
                        elif key == "lfsFile":
                            if value["oid"] not in hub.lfs_objects:
                                self._send(400, {"error": f"LFS object {value['oid']} was never uploaded"})
                                return
                            repo.files[value["path"]] = hub.lfs_objects[value["oid"]]
                            repo.lfs.add(value["path"])
                        elif key == "deletedFile":
                            repo.files.pop(value["path"], None)
                            repo.lfs.discard(value["path"])
                    repo.commits.append(lines[0]["value"])
                oid = hashlib.sha1(body).hexdigest()
                self._send(
                    200,
                    {
                        "commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{oid}",
                        "commitOid": oid,
                        "pullRequestUrl": None,
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
