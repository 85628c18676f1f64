"""Neon through its API v2: branches to rehearse on, branches as snapshots, point-in-time restore.

The API key comes from NEON_API_KEY and the project id from NEON_PROJECT_ID, each from
the environment, else from the `.env` in use. `NEON_API_URL` points the client at
another endpoint (the test suite runs it against a local server of its own that
implements these endpoints over real databases).

Endpoints used (https://api-docs.neon.tech): GET /projects/{id}, GET /projects/{id}/branches,
POST /projects/{id}/branches, GET /projects/{id}/operations/{op}, GET
/projects/{id}/connection_uri, DELETE /projects/{id}/branches/{branch},
POST /projects/{id}/branches/{branch}/restore.

Example:
    >>> from copythat_ops.recovery.neon import API_URL
    >>> API_URL
    'https://console.neon.tech/api/v2'
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import suppress
from datetime import UTC, datetime

import pandas as pd
from dotenv import dotenv_values
from sqlalchemy.engine import URL

from ..config import env_file, mask_text, mask_url, normalize_url
from ..engine import database_url, dispose_engines
from ..errors import ConfigError, CopythatError, InputError

API_URL = "https://console.neon.tech/api/v2"
API_KEY_VAR = "NEON_API_KEY"
PROJECT_VAR = "NEON_PROJECT_ID"
API_URL_VAR = "NEON_API_URL"
POLL_SECONDS = 0.5
DONE = {"finished", "skipped"}
FAILED = {"failed", "error", "cancelled"}


class NeonError(CopythatError):
    """The Neon API refused a request or an operation failed."""


def setting(name: str) -> str | None:
    """Return a Neon setting from the environment, else from the `.env` in use (None when neither has it).

    Example:
        >>> setting("NEON_NO_SUCH_SETTING") is None
        True
    """
    if os.environ.get(name):
        return os.environ[name]
    path = env_file()
    value = dotenv_values(path).get(name) if path else None
    return value or None


class Neon:
    """A small client of Neon's API v2 for one project.

    Example:
        >>> Neon(api_key="k", project_id="p").project_id
        'p'
    """

    def __init__(self, api_key: str | None = None, project_id: str | None = None, *, base_url: str | None = None, timeout: float = 30):
        self.api_key = api_key or setting(API_KEY_VAR)
        if not self.api_key:
            raise ConfigError(f"{API_KEY_VAR} is not set", fix=f"create an API key in the Neon console and set {API_KEY_VAR} in the environment or .env")
        self.project_id = project_id or setting(PROJECT_VAR)
        if not self.project_id:
            raise ConfigError(f"{PROJECT_VAR} is not set", fix=f"set {PROJECT_VAR} (the id in the console's URL, e.g. icy-lake-85661769) in the environment or .env")
        self.base_url = (base_url or setting(API_URL_VAR) or API_URL).rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Neon(project_id={self.project_id!r}, base_url={self.base_url!r})"

    # -- requests --------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, query: dict | None = None) -> dict:
        """Send one API request; return the JSON answer. Refusals become NeonError / ConfigError with the fix."""
        url = f"{self.base_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raise self._refused(exc, method, path) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NeonError(f"cannot reach the Neon API at {self.base_url} ({reason})", fix="check the network, or NEON_API_URL") from None
        return json.loads(raw) if raw else {}

    def _refused(self, exc: urllib.error.HTTPError, method: str, path: str) -> CopythatError:
        try:
            message = json.loads(exc.read() or b"{}").get("message", "")
        except (ValueError, AttributeError):
            message = ""
        said = mask_text(message or exc.reason or "")
        if exc.code == 401:
            return ConfigError(f"Neon rejected {API_KEY_VAR} ({exc.code} {said})", fix=f"create a new API key in the Neon console and set {API_KEY_VAR}")
        if exc.code == 404 and path.rstrip("/") == f"/projects/{self.project_id}":
            return ConfigError(f"Neon project {self.project_id} does not exist ({said})", fix=f"set {PROJECT_VAR} to the id in the console's URL (neon projects list)")
        if exc.code == 404:
            return NeonError(f"Neon has no {path.split('/')[-2] if path.count('/') > 2 else 'such object'} at {path} ({said})", fix="check NEON_PROJECT_ID and the branch id (the Neon console lists both)")
        if exc.code == 423:
            return NeonError(f"Neon says the project is busy with another operation ({said})", fix="wait a moment and run again")
        return NeonError(f"Neon refused {method} {path} ({exc.code} {said})", fix="see the message; the Neon console shows the project's state")

    # -- project and branches ------------------------------------------------------------
    def project(self) -> dict:
        """Return the project (checks the key and the project id).

        Example:
            >>> Neon().project()["id"]
            'icy-lake-85661769'
        """
        return self.request("GET", f"/projects/{self.project_id}")["project"]

    def branches(self) -> pd.DataFrame:
        """Return the project's branches: id, name, parent_id, default, current_state, created_at.

        Example:
            >>> Neon().branches()["name"].tolist()
            ['main']
        """
        found = self.request("GET", f"/projects/{self.project_id}/branches").get("branches", [])
        rows = [{k: b.get(k) for k in ("id", "name", "parent_id", "current_state", "created_at")} | {"default": bool(b.get("default") or b.get("primary"))} for b in found]
        return pd.DataFrame(rows, columns=["id", "name", "parent_id", "default", "current_state", "created_at"])

    def default_branch(self) -> str:
        """Return the id of the project's default branch (production's)."""
        frame = self.branches()
        chosen = frame[frame["default"]]
        if chosen.empty:
            raise NeonError(f"Neon project {self.project_id} has no default branch", fix="name the parent branch explicitly (parent_id=...)")
        return str(chosen["id"].iloc[0])

    def create_branch(self, name: str | None = None, *, parent_id: str | None = None, parent_lsn: str | None = None,
                      parent_timestamp: str | None = None, endpoint: bool = True, wait: bool = True) -> dict:
        """Create a branch of `parent_id` (default: the default branch) at its head, or at an LSN or time; return Neon's answer.

        With `endpoint=True` it gets a read-write compute, so it can be connected to.
        `wait=True` polls the branch's operations until they finish.
        """
        branch: dict = {"parent_id": parent_id or self.default_branch()}
        if name:
            branch["name"] = name
        if parent_lsn:
            branch["parent_lsn"] = parent_lsn
        if parent_timestamp:
            branch["parent_timestamp"] = parent_timestamp
        body = {"branch": branch, "endpoints": [{"type": "read_write"}] if endpoint else []}
        made = self.request("POST", f"/projects/{self.project_id}/branches", body)
        if wait:
            self.wait(made.get("operations", []))
        return made

    def wait(self, operations: list[dict], *, timeout: float = 600) -> None:
        """Poll each operation until it finishes; raise NeonError when one fails or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        for operation in operations:
            status = operation.get("status")
            while status not in DONE:
                if status in FAILED:
                    raise NeonError(f"Neon operation {operation.get('action')} {operation.get('id')} {status}: {operation.get('error', '')}", fix="see the project's operations in the Neon console")
                if time.monotonic() > deadline:
                    raise NeonError(f"Neon operation {operation.get('id')} did not finish in {timeout:.0f} s", fix="see the project's operations in the Neon console")
                time.sleep(POLL_SECONDS)
                operation = self.request("GET", f"/projects/{self.project_id}/operations/{operation['id']}")["operation"]
                status = operation.get("status")

    def connection_uri(self, branch_id: str, database: str, role: str) -> URL:
        """Return the connection URL of `database` as `role` on a branch (password inside: never print it unmasked)."""
        answer = self.request(
            "GET", f"/projects/{self.project_id}/connection_uri", query={"branch_id": branch_id, "database_name": database, "role_name": role}
        )
        return normalize_url(answer["uri"])

    def delete_branch(self, branch_id: str, *, wait: bool = True) -> None:
        """Delete a branch and its computes."""
        done = self.request("DELETE", f"/projects/{self.project_id}/branches/{branch_id}")
        if wait:
            self.wait(done.get("operations", []))

    def restore_branch(self, branch_id: str, *, source_branch_id: str, source_timestamp: str | None = None,
                       source_lsn: str | None = None, preserve_under_name: str | None = None) -> dict:
        """Restore `branch_id` to `source_branch_id` as it was at a time or LSN (Neon's point-in-time restore)."""
        body: dict = {"source_branch_id": source_branch_id}
        if source_timestamp:
            body["source_timestamp"] = source_timestamp
        if source_lsn:
            body["source_lsn"] = source_lsn
        if preserve_under_name:
            body["preserve_under_name"] = preserve_under_name
        done = self.request("POST", f"/projects/{self.project_id}/branches/{branch_id}/restore", body)
        self.wait(done.get("operations", []))
        return done


def snapshot(*, client: Neon | None = None, parent_id: str | None = None, name: str | None = None) -> dict:
    """Back up the way Neon documents: a branch of the parent (default: the default branch) at its current LSN.

    Returns id, name, parent_id, created_at. The branch has no compute (it costs storage only);
    `restore_to(snapshot_id)` brings the parent back to it.

    Example:
        >>> snapshot()["id"]
        'br-...'
    """
    client = client or Neon()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    made = client.create_branch(name or f"backup-{stamp}", parent_id=parent_id, endpoint=False)
    branch = made["branch"]
    return {k: branch.get(k) for k in ("id", "name", "parent_id", "created_at")}


def restore_to(*, client: Neon | None = None, branch_id: str | None = None, source_branch_id: str | None = None,
               timestamp: str | datetime | None = None, preserve_under_name: str | None = None) -> dict:
    """Point-in-time restore through the API: `branch_id` (default: the default branch) becomes
    `source_branch_id` (default: itself) as it was at `timestamp` (ISO 8601, UTC); the state before is kept
    as a branch named `preserve_under_name` (default: restore-backup-<time>).

    Example:
        >>> restore_to(timestamp="2026-11-25T12:00:00Z")["preserved_as"]
        'restore-backup-...'
    """
    client = client or Neon()
    target = branch_id or client.default_branch()
    when = timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(timestamp, datetime) else timestamp
    if when is None and source_branch_id is None:
        raise InputError("a restore needs a time (timestamp=) or a source branch (source_branch_id=)", fix="give one", params="timestamp")
    keep = preserve_under_name or f"restore-backup-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    done = client.restore_branch(target, source_branch_id=source_branch_id or target, source_timestamp=when, preserve_under_name=keep)
    return {"branch_id": target, "source_branch_id": source_branch_id or target, "timestamp": when, "preserved_as": keep, "operations": len(done.get("operations", []))}
