"""A local stand-in for Neon's API v2, backed by real databases on the test server.

It implements the endpoints the toolkit uses, with Neon's shapes: a bearer key
(401 otherwise), projects (404 for an unknown id), branches (the default one is
the given database; a new branch is a new database made with CREATE DATABASE
... TEMPLATE of its parent, as a branch is a copy-on-write copy), operations that
report "running" once and then "finished", connection URIs that point at the
branch's database, deletion (DROP DATABASE), and restore (the branch's database
made again from its source branch; the time given is recorded, as one database
has no history to go back to).
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from sqlalchemy import text
from sqlalchemy.engine import URL


class FakeNeon:
    def __init__(self, server, main: URL, *, api_key: str = "neon-test-key", project_id: str = "icy-lake-00000000") -> None:
        self.server, self.main, self.api_key, self.project_id = server, main, api_key, project_id
        self.branches: dict[str, dict] = {"br-main": {"id": "br-main", "name": "main", "parent_id": None, "default": True, "current_state": "ready", "database": main.database}}
        self.operations: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.restores: list[dict] = []
        self.fail_operations = False  # True: operations report "failed" when polled
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v2"

    def __enter__(self) -> FakeNeon:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def branch_databases(self) -> list[str]:
        return [b["database"] for b in self.branches.values() if b["id"] != "br-main"]

    # -- the API -------------------------------------------------------------------------
    def _operation(self, action: str, branch_id: str) -> dict:
        op = {"id": str(uuid.uuid4()), "action": action, "branch_id": branch_id, "status": "running", "polls": 0}
        self.operations[op["id"]] = op
        return self._shown(op)

    @staticmethod
    def _shown(op: dict) -> dict:
        return {k: v for k, v in op.items() if k != "polls"}

    def _sql(self, statement: str) -> None:
        with self.server.engine.connect() as conn:
            conn.execute(text(statement))

    def handle(self, method: str, path: str, query: dict, body: dict | None, auth: str | None) -> tuple[int, dict]:
        self.requests.append((method, path, body))
        if auth != f"Bearer {self.api_key}":
            return 401, {"code": "", "message": "authentication required"}
        parts = path.removeprefix("/api/v2").strip("/").split("/")
        if parts[0] != "projects" or len(parts) < 2:
            return 404, {"message": "not found"}
        if parts[1] != self.project_id:
            return 404, {"code": "", "message": "project not found"}
        rest = parts[2:]
        if not rest and method == "GET":
            return 200, {"project": {"id": self.project_id, "name": "copythat", "pg_version": 17}}
        if rest == ["branches"] and method == "GET":
            return 200, {"branches": [{k: v for k, v in b.items() if k != "database"} for b in self.branches.values()]}
        if rest == ["branches"] and method == "POST":
            spec = (body or {}).get("branch", {})
            parent = self.branches.get(spec.get("parent_id") or "br-main")
            if parent is None:
                return 404, {"message": "parent branch not found"}
            branch_id = f"br-{uuid.uuid4().hex[:8]}"
            database = f"{self.main.database}_{branch_id.replace('-', '_')}"
            self._sql(f'CREATE DATABASE "{database}" TEMPLATE "{parent["database"]}"')
            branch = {"id": branch_id, "name": spec.get("name") or branch_id, "parent_id": parent["id"], "default": False, "current_state": "init", "database": database}
            self.branches[branch_id] = branch
            shown = {k: v for k, v in branch.items() if k != "database"}
            endpoints = [{"id": f"ep-{branch_id[3:]}", "type": "read_write", "host": "127.0.0.1"}] if (body or {}).get("endpoints") else []
            return 201, {"branch": shown, "endpoints": endpoints, "operations": [self._operation("create_branch", branch_id)]}
        if rest[:1] == ["operations"] and len(rest) == 2 and method == "GET":
            op = self.operations.get(rest[1])
            if op is None:
                return 404, {"message": "operation not found"}
            op["polls"] += 1
            op["status"] = "failed" if self.fail_operations else "finished"
            return 200, {"operation": self._shown(op)}
        if rest == ["connection_uri"] and method == "GET":
            branch = self.branches.get(query.get("branch_id", [""])[0])
            if branch is None:
                return 404, {"message": "branch not found"}
            uri = self.main.set(database=branch["database"], drivername="postgresql")
            return 200, {"uri": uri.render_as_string(hide_password=False)}
        if rest[:1] == ["branches"] and len(rest) == 2 and method == "DELETE":
            branch = self.branches.pop(rest[1], None)
            if branch is None or branch["id"] == "br-main":
                return 404 if branch is None else 400, {"message": "branch not found" if branch is None else "cannot delete the default branch"}
            self._sql(f'DROP DATABASE IF EXISTS "{branch["database"]}" WITH (FORCE)')
            return 200, {"branch": {k: v for k, v in branch.items() if k != "database"}, "operations": [self._operation("delete_timeline", branch["id"])]}
        if rest[:1] == ["branches"] and len(rest) == 3 and rest[2] == "restore" and method == "POST":
            target, source = self.branches.get(rest[1]), self.branches.get((body or {}).get("source_branch_id", ""))
            if target is None or source is None:
                return 404, {"message": "branch not found"}
            self.restores.append(dict(body or {}))
            if body.get("preserve_under_name"):
                kept = f"br-{uuid.uuid4().hex[:8]}"
                kept_db = f"{self.main.database}_{kept.replace('-', '_')}"
                self._sql(f'CREATE DATABASE "{kept_db}" TEMPLATE "{target["database"]}"')
                self.branches[kept] = {"id": kept, "name": body["preserve_under_name"], "parent_id": None, "default": False, "current_state": "ready", "database": kept_db}
            return 200, {"branch": {k: v for k, v in target.items() if k != "database"}, "operations": [self._operation("restore", target["id"])]}
        return 404, {"message": f"no endpoint {method} {path}"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, answer = fake.handle(self.command, parsed.path, parse_qs(parsed.query), body, self.headers.get("Authorization"))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args) -> None:
                pass

        return Handler
