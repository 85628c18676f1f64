"""A local stand-in for Neon's API v2, backed by real databases on the test server.

It implements the endpoints the toolkit uses, with the published paths, bodies and answers:

- a bearer key (401 otherwise), projects (404 for an unknown id);
- branches: the default one is the given database; a new branch is a new database made
  with CREATE DATABASE ... TEMPLATE (a branch is a copy-on-write copy); deletion is DROP DATABASE;
- snapshots (`POST /branches/{id}/snapshot` with `lsn` / `timestamp` / `name` / `expires_at` as query
  parameters, `GET /snapshots`, `DELETE /snapshots/{id}`, `POST /snapshots/{id}/restore` with
  `name`, `target_branch_id`, `finalize_restore`, `POST /branches/{id}/finalize_restore`): each
  snapshot is a database of its own, and a restore makes a new branch from it. Finalizing moves the
  target's "computes" to the restored branch as Neon does: the two databases swap names, after the
  sessions on both are ended (Neon restarts the computes), so the URL that reached the target now
  reaches the restored data, and the target is kept under another name;
- the branch backup schedule (`GET` / `PUT /branches/{id}/backup_schedule`), stored as given;
- compute endpoints (`POST /endpoints` with `{"endpoint": {"branch_id", "type"}}`, `GET /endpoints`,
  `GET | DELETE /endpoints/{id}`, `GET /branches/{id}/endpoints`): at most one `read_write` per branch
  (a second is refused with 400, as Neon refuses it); a branch made with `"endpoints": []`, restored
  from a snapshot, or kept by a restore (`preserve_under_name`) has none, and `connection_uri` of a
  branch without one is refused (a branch needs a compute to be connected to); deleting a branch
  deletes its endpoints; finalizing a restore moves the target's endpoints to the restored branch (in
  place of any it had);
- operations that go through "scheduling", "running" and "finished", one state per poll
  (`fail_operations = True`: "failed"); errors as `{"code": ..., "message": ...}`;
- `answer_next(status, times, retry_after=...)`: the next requests get that status (429 with a
  `retry-after` header, a 5xx) before any work is done, so a test can count the client's retries.

Point in time (a branch's `parent_timestamp` / `parent_lsn`, a snapshot's `timestamp` / `lsn`, a
restore's `source_timestamp` / `source_lsn`): one database has no history to go back to, so the fake
keeps one. `checkpoint()` copies a branch's database as it is now, with the time and
`pg_current_wal_lsn()`; taking a snapshot, or making a branch at its parent's head, records one of the
parent too (the new branch is made from that copy, and its `parent_lsn` / `parent_timestamp` are the
point's, as Neon reports the point a branch was made at). A time or
LSN is served from the newest point recorded at or before it: exact for what happened before that
point, and missing whatever was written between that point and the time asked for (real Neon has every
LSN). A time or LSN before the first recorded point cannot be served from history: the fake serves the
branch as it is now and appends the request to `unrecorded`, so a test that cares can assert it did not
happen. Only the API's shapes are faithful there, not the data.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

STATES = ("scheduling", "running", "finished")


def lsn_number(lsn: str) -> int:
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeNeon:
    def __init__(self, server, main: URL, *, api_key: str = "neon-test-key", project_id: str = "icy-lake-00000000") -> None:
        self.server, self.main, self.api_key, self.project_id = server, main, api_key, project_id
        self.branches: dict[str, dict] = {
            "br-main": {"id": "br-main", "name": "main", "parent_id": None, "default": True, "current_state": "ready",
                        "created_at": stamp(), "database": main.database}
        }
        self.endpoints: dict[str, dict] = {"ep-main": self._new_endpoint("br-main", "read_write", endpoint_id="ep-main")}
        self.snapshots: dict[str, dict] = {}
        self.schedules: dict[str, list] = {}
        self.history: dict[str, list[dict]] = {}  # branch id -> points: at, lsn, database
        self.unrecorded: list[dict] = []
        self.operations: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.queries: list[tuple[str, str, dict]] = []  # method, path, query parameters of each request
        self.restores: list[dict] = []
        self.fail_operations = False  # True: operations report "failed" when polled
        self.forced: list[tuple[int, str | None]] = []  # answers given before any work: (status, retry-after)
        self.lock = threading.Lock()
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
        """Every database the fake made (branches, snapshots, history points): what a test drops afterwards."""
        made = [b["database"] for b in self.branches.values()] + [s["database"] for s in self.snapshots.values()]
        made += [p["database"] for points in self.history.values() for p in points]
        return [name for name in made if name != self.main.database]

    def answer_next(self, status: int, times: int = 1, *, retry_after: str | None = None) -> None:
        """The next `times` requests are answered `status` (with a `retry-after` header when given), doing nothing."""
        self.forced.extend([(status, retry_after)] * times)

    def default_branch(self) -> dict:
        return next(b for b in self.branches.values() if b["default"])

    def database_of(self, branch_id: str) -> str:
        return self.branches[branch_id]["database"]

    def endpoints_of(self, branch_id: str) -> list[dict]:
        return [e for e in self.endpoints.values() if e["branch_id"] == branch_id]

    def _new_endpoint(self, branch_id: str, kind: str, *, endpoint_id: str | None = None) -> dict:
        endpoint_id = endpoint_id or f"ep-{uuid.uuid4().hex[:8]}"
        host = f"{endpoint_id}.local.neon.test"
        return {"id": endpoint_id, "host": host, "project_id": self.project_id, "branch_id": branch_id, "type": kind, "current_state": "active",
                "region_id": "aws-us-east-2", "autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 1, "pooler_enabled": False,
                "pooler_mode": "transaction", "disabled": False, "created_at": stamp(), "updated_at": stamp()}

    # -- real databases ----------------------------------------------------------------------
    def _sql(self, statement: str, params: dict | None = None):
        with self.server.engine.connect() as conn:
            return conn.execute(text(statement), params or {}).all() if statement.lstrip().upper().startswith("SELECT") else conn.execute(text(statement), params or {})

    def _end_sessions(self, database: str) -> None:
        self._sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()", {"db": database})

    def _copy(self, template: str, name: str, *, end_sessions: bool = False) -> None:
        """CREATE DATABASE name TEMPLATE template; a template in use is waited for a moment (its sessions ending)."""
        for attempt in range(40):
            try:
                self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except DBAPIError as exc:
                if "is being accessed by other users" not in str(exc) or attempt == 39:
                    raise
                if end_sessions:
                    self._end_sessions(template)
                time.sleep(0.05)

    def _rename(self, database: str, name: str) -> None:
        """ALTER DATABASE ... RENAME, its sessions ended first; a server process this login may not end (autovacuum) is waited for a moment."""
        for attempt in range(60):
            self._end_sessions(database)
            try:
                self._sql(f'ALTER DATABASE "{database}" RENAME TO "{name}"')
                return
            except DBAPIError as exc:
                if "is being accessed by other users" not in str(exc) or attempt == 59:
                    raise
                time.sleep(0.1)

    def _new_database(self, prefix: str) -> str:
        return f"{self.main.database}_{prefix}_{uuid.uuid4().hex[:8]}"

    def checkpoint(self, branch_id: str | None = None) -> dict:
        """Record a branch's state now (a copy of its database, the time and the WAL position) for point-in-time requests."""
        branch = self.branches[branch_id] if branch_id else self.default_branch()
        database = self._new_database("pt")
        lsn = self._sql("SELECT pg_current_wal_lsn()::text AS lsn")[0][0]
        at = datetime.now(UTC)
        self._copy(branch["database"], database)
        point = {"at": at, "lsn": lsn, "database": database}
        self.history.setdefault(branch["id"], []).append(point)
        time.sleep(0.01)  # a later write is at a later time
        return point

    def _as_of(self, branch: dict, timestamp: str | None, lsn: str | None) -> str:
        """The database holding `branch` as of a time or LSN (see the module's docstring), else now."""
        if not timestamp and not lsn:
            return branch["database"]
        points = self.history.get(branch["id"], [])
        if timestamp:
            before = [p for p in points if p["at"] <= parse_time(timestamp)]
        else:
            before = [p for p in points if lsn_number(p["lsn"]) <= lsn_number(lsn)]
        if not before:
            self.unrecorded.append({"branch_id": branch["id"], "timestamp": timestamp, "lsn": lsn})
            return branch["database"]
        return before[-1]["database"]

    # -- the API -----------------------------------------------------------------------------
    def _operation(self, action: str, branch_id: str, *, endpoint_id: str | None = None) -> dict:
        now = stamp()
        op = {"id": str(uuid.uuid4()), "project_id": self.project_id, "branch_id": branch_id, "action": action, "status": "scheduling",
              "failures_count": 0, "created_at": now, "updated_at": now, "polls": 0}
        if endpoint_id:
            op["endpoint_id"] = endpoint_id
        self.operations[op["id"]] = op
        return self._shown(op)

    @staticmethod
    def _shown(op: dict) -> dict:
        return {k: v for k, v in op.items() if k != "polls"}

    @staticmethod
    def _branch(branch: dict) -> dict:
        return {k: v for k, v in branch.items() if k not in ("database", "restore_target")}

    @staticmethod
    def _snapshot(snap: dict) -> dict:
        return {k: v for k, v in snap.items() if k != "database"}

    @staticmethod
    def _error(status: int, message: str, code: str = "") -> tuple[int, dict]:
        return status, {"code": code, "message": message, "request_id": str(uuid.uuid4())}

    def handle(self, method: str, path: str, query: dict, body: dict | None, auth: str | None) -> tuple[int, dict, dict]:
        """One request: (status, JSON answer, extra headers)."""
        self.requests.append((method, path, body))
        self.queries.append((method, path, {k: v[0] for k, v in query.items()}))
        if self.forced:
            status, retry_after = self.forced.pop(0)
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            message = "too many requests" if status == 429 else "internal server error" if status == 500 else "service unavailable"
            return (*self._error(status, message), headers)
        if auth != f"Bearer {self.api_key}":
            return (*self._error(401, "authentication required"), {})
        with self.lock:
            status, answer = self._route(method, path.removeprefix("/api/v2").strip("/").split("/"), query, body or {})
        return status, answer, {}

    def _route(self, method: str, parts: list[str], query: dict, body: dict) -> tuple[int, dict]:
        if parts[0] != "projects" or len(parts) < 2:
            return self._error(404, "not found")
        if parts[1] != self.project_id:
            return self._error(404, "project not found")
        rest = parts[2:]
        arg = lambda name: query.get(name, [None])[0]
        if not rest and method == "GET":
            return 200, {"project": {"id": self.project_id, "name": "copythat", "pg_version": 17}}
        if rest == ["branches"] and method == "GET":
            return 200, {"branches": [self._branch(b) for b in self.branches.values()]}
        if rest == ["branches"] and method == "POST":
            return self._create_branch(body)
        if rest[:1] == ["operations"] and len(rest) == 2 and method == "GET":
            op = self.operations.get(rest[1])
            if op is None:
                return self._error(404, "operation not found")
            op["polls"] += 1
            op["status"] = "failed" if self.fail_operations else STATES[min(op["polls"], len(STATES) - 1)]
            op["updated_at"] = stamp()
            if op["status"] == "failed":
                op["error"] = "the operation failed"
            return 200, {"operation": self._shown(op)}
        if rest == ["connection_uri"] and method == "GET":
            branch = self.branches.get(arg("branch_id") or "")
            if branch is None:
                return self._error(404, "branch not found")
            if not [e for e in self.endpoints_of(branch["id"]) if e["type"] == "read_write"]:
                return self._error(404, f"read_write endpoint not found for branch {branch['id']}")
            uri = self.main.set(database=branch["database"], drivername="postgresql")
            return 200, {"uri": uri.render_as_string(hide_password=False)}
        if rest == ["snapshots"] and method == "GET":
            return 200, {"snapshots": [self._snapshot(s) for s in self.snapshots.values()]}
        if rest == ["endpoints"] and method == "GET":
            return 200, {"endpoints": list(self.endpoints.values())}
        if rest == ["endpoints"] and method == "POST":
            return self._create_endpoint(body)
        if rest[:1] == ["endpoints"] and len(rest) == 2 and method in ("GET", "DELETE"):
            endpoint = self.endpoints.get(rest[1])
            if endpoint is None:
                return self._error(404, f"endpoint {rest[1]} not found")
            if method == "GET":
                return 200, {"endpoint": endpoint}
            del self.endpoints[endpoint["id"]]
            return 200, {"endpoint": endpoint, "operations": [self._operation("suspend_compute", endpoint["branch_id"], endpoint_id=endpoint["id"])]}
        if rest[:1] == ["snapshots"] and len(rest) == 2 and method == "DELETE":
            snap = self.snapshots.get(rest[1])
            if snap is None:
                return self._error(404, f"snapshot {rest[1]} not found")
            self._sql(f'DROP DATABASE IF EXISTS "{snap["database"]}" WITH (FORCE)')
            del self.snapshots[rest[1]]
            return 200, {"operations": [self._operation("delete_snapshot", snap["source_branch_id"])]}
        if rest[:1] == ["snapshots"] and len(rest) == 3 and rest[2] == "restore" and method == "POST":
            return self._restore_snapshot(rest[1], body)
        if rest[:1] != ["branches"] or len(rest) < 2:
            return self._error(404, f"no endpoint {method} /{'/'.join(parts)}")
        branch = self.branches.get(rest[1])
        if branch is None:
            return self._error(404, f"branch {rest[1]} not found")
        if len(rest) == 2 and method == "DELETE":
            if branch["default"]:
                return self._error(400, "cannot delete the default branch")
            del self.branches[branch["id"]]
            gone = [self._operation("suspend_compute", branch["id"], endpoint_id=e["id"]) for e in self.endpoints_of(branch["id"])]
            for endpoint in self.endpoints_of(branch["id"]):
                del self.endpoints[endpoint["id"]]
            self._sql(f'DROP DATABASE IF EXISTS "{branch["database"]}" WITH (FORCE)')
            return 200, {"branch": self._branch(branch), "operations": [*gone, self._operation("delete_timeline", branch["id"])]}
        if rest[2:] == ["endpoints"] and method == "GET":
            return 200, {"endpoints": self.endpoints_of(branch["id"])}
        if rest[2:] == ["snapshot"] and method == "POST":
            return self._create_snapshot(branch, arg)
        if rest[2:] == ["backup_schedule"] and method == "GET":
            return 200, {"schedule": self.schedules.get(branch["id"], [])}
        if rest[2:] == ["backup_schedule"] and method == "PUT":
            schedule = body.get("schedule")
            bad = [s for s in schedule or [] if s.get("frequency") not in ("daily", "weekly", "monthly")] if isinstance(schedule, list) else [schedule]
            if bad:
                return self._error(400, "schedule must be a list of {frequency: daily|weekly|monthly, hour, day, month, retention_seconds}")
            self.schedules[branch["id"]] = schedule
            return 200, {}
        if rest[2:] == ["finalize_restore"] and method == "POST":
            if not branch.get("restore_target"):
                return self._error(400, f"branch {branch['id']} was not restored from a snapshot, or its restore is already finalized")
            return 200, {"operations": [self._finalize(branch, body.get("name"))]}
        if rest[2:] == ["restore"] and method == "POST":
            return self._restore_branch(branch, body)
        return self._error(404, f"no endpoint {method} /{'/'.join(parts)}")

    def _create_branch(self, body: dict) -> tuple[int, dict]:
        spec = body.get("branch", {})
        parent = self.branches.get(spec.get("parent_id")) if spec.get("parent_id") else self.default_branch()
        if parent is None:
            return self._error(404, "parent branch not found")
        asked = [e for e in body.get("endpoints") or []]
        if [e for e in asked if e.get("type") not in ("read_write", "read_only")] or sum(e.get("type") == "read_write" for e in asked) > 1:
            return self._error(400, "endpoints: each needs type read_write or read_only, and a branch has at most one read_write endpoint")
        if spec.get("parent_timestamp") or spec.get("parent_lsn"):
            source = self._as_of(parent, spec.get("parent_timestamp"), spec.get("parent_lsn"))
            point = {k: spec[k] for k in ("parent_timestamp", "parent_lsn") if spec.get(k)}
        else:  # at the parent's head: that point is recorded, and the branch made from it
            at = self.checkpoint(parent["id"])
            source, point = at["database"], {"parent_lsn": at["lsn"], "parent_timestamp": stamp(at["at"])}  # Neon's times are whole seconds
        branch_id = f"br-{uuid.uuid4().hex[:8]}"
        database = f"{self.main.database}_{branch_id.replace('-', '_')}"
        self._copy(source, database)
        branch = {"id": branch_id, "name": spec.get("name") or branch_id, "parent_id": parent["id"], "default": False, "current_state": "init",
                  "created_at": stamp(), "database": database} | point
        self.branches[branch_id] = branch
        endpoints = [self._new_endpoint(branch_id, e["type"]) for e in asked]
        for endpoint in endpoints:
            self.endpoints[endpoint["id"]] = endpoint
        operations = [self._operation("create_branch", branch_id)] + [self._operation("start_compute", branch_id, endpoint_id=e["id"]) for e in endpoints]
        return 201, {"branch": self._branch(branch), "endpoints": endpoints, "operations": operations}

    def _create_endpoint(self, body: dict) -> tuple[int, dict]:
        spec = body.get("endpoint") if isinstance(body.get("endpoint"), dict) else None
        if spec is None or not spec.get("branch_id") or not spec.get("type"):
            return self._error(400, "request body: endpoint.branch_id and endpoint.type are required")
        if spec["type"] not in ("read_write", "read_only"):
            return self._error(400, f"endpoint.type must be read_write or read_only (got {spec['type']!r})")
        branch = self.branches.get(spec["branch_id"])
        if branch is None:
            return self._error(404, f"branch {spec['branch_id']} not found")
        if spec["type"] == "read_write" and [e for e in self.endpoints_of(branch["id"]) if e["type"] == "read_write"]:
            return self._error(400, f"branch {branch['id']} already has a read_write endpoint: a branch can have only one")
        endpoint = self._new_endpoint(branch["id"], spec["type"])
        self.endpoints[endpoint["id"]] = endpoint
        return 201, {"endpoint": endpoint, "operations": [self._operation("start_compute", branch["id"], endpoint_id=endpoint["id"])]}

    def _create_snapshot(self, branch: dict, arg) -> tuple[int, dict]:
        timestamp, lsn, expires_at = arg("timestamp"), arg("lsn"), arg("expires_at")
        if timestamp and lsn:
            return self._error(400, "lsn and timestamp cannot be used together")
        for name, value in (("timestamp", timestamp), ("expires_at", expires_at)):
            if value:
                try:
                    parse_time(value)
                except ValueError:
                    return self._error(400, f"{name} must be an ISO 8601 time, e.g. 2025-08-05T22:00:00Z (got {value!r})")
        if not timestamp and not lsn:
            self.checkpoint(branch["id"])  # a snapshot now is a point of the branch's history too
        source = self._as_of(branch, timestamp, lsn)
        snapshot_id = f"snap-{uuid.uuid4().hex[:8]}"
        database = self._new_database("snap")
        self._copy(source, database)
        snap = {"id": snapshot_id, "name": arg("name") or f"{branch['name']}-{stamp().replace(':', '')}", "source_branch_id": branch["id"],
                "created_at": stamp(), "expires_at": expires_at, "manual": True, "database": database}
        if timestamp:
            snap["timestamp"] = timestamp
        if lsn:
            snap["lsn"] = lsn
        self.snapshots[snapshot_id] = snap
        return 200, {"snapshot": self._snapshot(snap), "operations": [self._operation("create_snapshot", branch["id"])]}

    def _restore_snapshot(self, snapshot_id: str, body: dict) -> tuple[int, dict]:
        snap = self.snapshots.get(snapshot_id)
        if snap is None:
            return self._error(404, f"snapshot {snapshot_id} not found")
        target = self.branches.get(body.get("target_branch_id") or snap["source_branch_id"])
        if target is None:
            return self._error(404, f"branch {body.get('target_branch_id') or snap['source_branch_id']} not found")
        branch_id = f"br-{uuid.uuid4().hex[:8]}"
        database = f"{self.main.database}_{branch_id.replace('-', '_')}"
        self._copy(snap["database"], database)
        branch = {"id": branch_id, "name": body.get("name") or f"{target['name']}_from_{snap['name']}", "parent_id": target["id"], "default": False,
                  "current_state": "ready", "created_at": stamp(), "restored_from": snapshot_id, "database": database, "restore_target": target["id"]}
        self.branches[branch_id] = branch
        operations = [self._operation("restore_snapshot", branch_id)]
        if body.get("finalize_restore"):
            operations.append(self._finalize(branch, None))
        return 200, {"branch": self._branch(branch), "operations": operations}

    def _finalize(self, branch: dict, old_name: str | None) -> dict:
        """The restored branch takes the target's place: its computes (here: its database name), its name, its default flag."""
        target = self.branches[branch.pop("restore_target")]
        kept = self._new_database("old")
        self._rename(target["database"], kept)
        self._rename(branch["database"], target["database"])
        branch["database"], target["database"] = target["database"], kept
        branch["name"], target["name"] = target["name"], old_name or f"{target['name']}_old_{stamp().replace(':', '')}"
        branch["default"], target["default"] = target["default"], False
        for endpoint in self.endpoints_of(branch["id"]):  # the target's computes replace the restored branch's own
            del self.endpoints[endpoint["id"]]
        for endpoint in self.endpoints_of(target["id"]):  # and now serve the restored branch
            endpoint["branch_id"] = branch["id"]
        return self._operation("finalize_restore", branch["id"])

    def _restore_branch(self, target: dict, body: dict) -> tuple[int, dict]:
        source = self.branches.get(body.get("source_branch_id", ""))
        if source is None:
            return self._error(404, "source branch not found")
        self.restores.append(dict(body))
        if body.get("preserve_under_name"):
            kept = f"br-{uuid.uuid4().hex[:8]}"
            kept_db = f"{self.main.database}_{kept.replace('-', '_')}"
            self._copy(target["database"], kept_db, end_sessions=True)
            self.branches[kept] = {"id": kept, "name": body["preserve_under_name"], "parent_id": None, "default": False, "current_state": "ready",
                                   "created_at": stamp(), "database": kept_db}
        state = self._as_of(source, body.get("source_timestamp"), body.get("source_lsn"))
        if state != target["database"]:  # the target's database made again from the source's state (its computes restart)
            self._end_sessions(target["database"])
            self._sql(f'DROP DATABASE "{target["database"]}" WITH (FORCE)')
            self._copy(state, target["database"], end_sessions=True)
        return 200, {"branch": self._branch(target), "operations": [self._operation("restore", target["id"])]}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, answer, headers = fake.handle(self.command, parsed.path, parse_qs(parsed.query), body, self.headers.get("Authorization"))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

            def log_message(self, *args) -> None:
                pass

        return Handler
