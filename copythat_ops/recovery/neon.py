"""Neon through its API v2: branches to rehearse on, snapshots, point-in-time restore, the backup schedule.

The API key comes from NEON_API_KEY and the project id from NEON_PROJECT_ID, each from
the environment, else from the `.env` in use. `NEON_API_URL` points the client at
another endpoint (the test suite runs it against a local server of its own that
implements these endpoints over real databases). The key is sent in the Authorization
header only: no message, repr or traceback of the client carries it.

Endpoints used (https://api-docs.neon.tech): GET /projects/{id}, GET /projects/{id}/branches,
POST /projects/{id}/branches, GET /projects/{id}/operations/{op}, GET
/projects/{id}/connection_uri, DELETE /projects/{id}/branches/{branch},
POST /projects/{id}/branches/{branch}/restore; snapshots (beta): POST
/projects/{id}/branches/{branch}/snapshot, GET /projects/{id}/snapshots, DELETE
/projects/{id}/snapshots/{snapshot}, POST /projects/{id}/snapshots/{snapshot}/restore, POST
/projects/{id}/branches/{branch}/finalize_restore, GET | PUT /projects/{id}/branches/{branch}/backup_schedule;
compute endpoints (a branch is connected to through one): GET /projects/{id}/branches/{branch}/endpoints,
POST /projects/{id}/endpoints, DELETE /projects/{id}/endpoints/{endpoint}.

A request answered 429 is sent again after the `retry-after` the answer gives (at most
`MAX_RETRY_AFTER` seconds); one answered 503 too, and one answered 500, 502 or 504 when
repeating it cannot do a thing twice (GET, PUT, DELETE), after 0.5, 1, 2... s (at most
`MAX_BACKOFF`), `retries` times in all. A POST answered 500, 502 or 504 may have been
applied, so it is not repeated: the error says to look before trying again.

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
POLL_SECONDS = 2.0  # the longest pause between two polls of an operation (the first is 0.1 s, then doubling)
DONE = {"finished", "skipped"}
FAILED = {"failed", "error", "cancelled"}  # "scheduling", "running", "cancelling": still going
RETRIES = 4
BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0
SAFE_TO_REPEAT = {"GET", "PUT", "DELETE"}
FREQUENCIES = ("daily", "weekly", "monthly")
SNAPSHOT_COLUMNS = ["id", "name", "source_branch_id", "created_at", "expires_at", "manual", "timestamp", "lsn"]
SCHEDULE_COLUMNS = ["frequency", "day", "hour", "month", "retention_seconds", "retention"]
BRANCH_COLUMNS = ["id", "name", "parent_id", "default", "current_state", "created_at", "parent_lsn", "parent_timestamp"]
ENDPOINT_COLUMNS = ["id", "branch_id", "type", "current_state", "host", "created_at"]
ENDPOINT_TYPES = ("read_write", "read_only")
BACKUP_PREFIX = "backup-"  # the name snapshot() gives a backup branch: what backup_branches() lists


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

    def __init__(self, api_key: str | None = None, project_id: str | None = None, *, base_url: str | None = None, timeout: float = 30,
                 retries: int = RETRIES, backoff: float = BACKOFF):
        self.api_key = api_key or setting(API_KEY_VAR)
        if not self.api_key:
            raise ConfigError(f"{API_KEY_VAR} is not set", fix=f"create an API key in the Neon console and set {API_KEY_VAR} in the environment or .env")
        self.project_id = project_id or setting(PROJECT_VAR)
        if not self.project_id:
            raise ConfigError(f"{PROJECT_VAR} is not set", fix=f"set {PROJECT_VAR} (the id in the console's URL, e.g. icy-lake-85661769) in the environment or .env")
        self.base_url = (base_url or setting(API_URL_VAR) or API_URL).rstrip("/")
        self.timeout = timeout
        self.retries, self.backoff = retries, backoff
        self.retried: list[tuple[str, str, int, float]] = []  # (method, path, status, seconds waited) of each request sent again

    def __repr__(self) -> str:
        return f"Neon(project_id={self.project_id!r}, base_url={self.base_url!r})"

    # -- requests --------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, query: dict | None = None) -> dict:
        """Send one API request; return the JSON answer. 429 and 5xx are retried (see the module); refusals become NeonError / ConfigError with the fix."""
        query = {k: v for k, v in (query or {}).items() if v is not None}
        url = f"{self.base_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as answer:
                    raw = answer.read()
                return json.loads(raw) if raw else {}
            except urllib.error.HTTPError as exc:
                pause, status = self._pause(exc, method, attempt), exc.code
                if pause is None:
                    raise self._refused(exc, method, path, attempt) from None
                exc.close()
            except (urllib.error.URLError, OSError) as exc:
                reason = self._scrub(str(getattr(exc, "reason", exc)))
                raise NeonError(f"cannot reach the Neon API at {self.base_url} ({reason})", fix="check the network, or NEON_API_URL") from None
            self.retried.append((method, path, status, pause))
            time.sleep(pause)

    def _pause(self, exc: urllib.error.HTTPError, method: str, attempt: int) -> float | None:
        """How long to wait before sending a refused request again; None when it is not to be sent again."""
        if attempt > self.retries:
            return None
        backoff = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
        if exc.code == 429:
            asked = retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            if asked is not None and asked > MAX_RETRY_AFTER:
                return None
            return max(asked if asked is not None else backoff, 0.0)
        if exc.code == 503 or (exc.code in (500, 502, 504) and method in SAFE_TO_REPEAT):
            return backoff
        return None

    def _scrub(self, text: str) -> str:
        """`text` without the API key (were an answer to echo it) and without URL passwords."""
        text = mask_text(text or "")
        return text.replace(self.api_key, "***") if self.api_key else text

    def _refused(self, exc: urllib.error.HTTPError, method: str, path: str, attempts: int = 1) -> CopythatError:
        try:
            answer = json.loads(exc.read() or b"{}")
            message, code = answer.get("message", ""), answer.get("code", "")
        except (ValueError, AttributeError):
            message, code = "", ""
        said = self._scrub(message or exc.reason or "")
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if exc.code == 401:
            return ConfigError(f"Neon rejected {API_KEY_VAR} ({exc.code} {said})", fix=f"create a new API key in the Neon console and set {API_KEY_VAR}")
        if exc.code == 404 and path.rstrip("/") == f"/projects/{self.project_id}":
            return ConfigError(f"Neon project {self.project_id} does not exist ({said})", fix=f"set {PROJECT_VAR} to the id in the console's URL (neon projects list)")
        if exc.code == 404 and path.endswith("/connection_uri"):
            return NeonError(f"Neon cannot give a connection string for that branch ({said}): a branch is connected to through a compute endpoint",
                             fix="create one: Neon().create_endpoint(branch_id), or read_write_endpoint(branch_id)")
        if exc.code == 404 and "/snapshots/" in path:
            return NeonError(f"Neon has no snapshot {path.split('/snapshots/')[1].split('/')[0]} ({said})", fix="list the snapshots: `copythat-ops db snapshot list` (snapshots())")
        if exc.code == 404:
            return NeonError(f"Neon has no {path.split('/')[-2] if path.count('/') > 2 else 'such object'} at {path} ({said})", fix="check NEON_PROJECT_ID and the branch id (the Neon console lists both)")
        if exc.code == 423:
            return NeonError(f"Neon says the project is busy with another operation ({said})", fix="wait a moment and run again")
        if exc.code == 429:
            asked = retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            wait = f"; it asks to wait {asked:.0f} s" if asked is not None else ""
            return NeonError(f"Neon is rate-limiting this API key (429{tries}{wait})", fix="wait that long and run again; fewer requests at once help")
        if exc.code >= 500 and method not in SAFE_TO_REPEAT and exc.code != 503:
            return NeonError(
                f"Neon answered {method} {path} with {exc.code} {said}; the request may or may not have been applied, so it was not sent again",
                fix="look at the project's branches and snapshots (copythat-ops db snapshot list, the Neon console) before running it again",
            )
        if exc.code >= 500:
            return NeonError(f"Neon answered {method} {path} with {exc.code} {said}{tries}", fix="Neon is having trouble (https://neonstatus.com); run again later")
        shown = f"{exc.code} {code}: {said}" if code else f"{exc.code} {said}"
        return NeonError(f"Neon refused {method} {path} ({shown})", fix="see the message; the Neon console shows the project's state")

    # -- project and branches ------------------------------------------------------------
    def project(self) -> dict:
        """Return the project (checks the key and the project id).

        Example:
            >>> Neon().project()["id"]
            'icy-lake-85661769'
        """
        return self.request("GET", f"/projects/{self.project_id}")["project"]

    def branches(self) -> pd.DataFrame:
        """Return the project's branches: id, name, parent_id, default, current_state, created_at, parent_lsn,
        parent_timestamp (the point of the parent a branch was made at; None for the root branch).

        Example:
            >>> Neon().branches()["name"].tolist()
            ['main']
        """
        found = self.request("GET", f"/projects/{self.project_id}/branches").get("branches", [])
        rows = [{k: b.get(k) for k in BRANCH_COLUMNS} | {"default": bool(b.get("default") or b.get("primary"))} for b in found]
        return pd.DataFrame(rows, columns=BRANCH_COLUMNS)

    def backup_branches(self) -> pd.DataFrame:
        """Return the backup branches `snapshot()` made (named backup-...), newest first, with the columns of `branches()`
        and taken_at (the parent's point in time it holds: parent_timestamp, else created_at).

        Example:
            >>> made = snapshot()
            >>> Neon().backup_branches()[["id", "parent_id"]].values.tolist() == [[made["id"], "br-main"]]
            True
        """
        frame = self.branches()
        frame = frame[frame["name"].astype(str).str.startswith(BACKUP_PREFIX) & frame["parent_id"].notna() & ~frame["default"]].copy()
        taken = frame["parent_timestamp"].where(frame["parent_timestamp"].notna() & (frame["parent_timestamp"] != ""), frame["created_at"])
        frame["taken_at"] = pd.to_datetime(taken, utc=True, format="ISO8601")
        return frame.sort_values(["taken_at", "id"], ascending=[False, True], ignore_index=True)

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
        """Poll each operation until it finishes; raise NeonError when one fails or `timeout` seconds pass.

        Statuses: scheduling, running, cancelling (still going); finished, skipped (done);
        failed, error, cancelled (failed).
        """
        deadline = time.monotonic() + timeout
        for operation in operations:
            status, pause = operation.get("status"), 0.1
            while status not in DONE:
                if status in FAILED:
                    said = self._scrub(str(operation.get("error", "")))
                    raise NeonError(f"Neon operation {operation.get('action')} {operation.get('id')} {status}: {said}", fix="see the project's operations in the Neon console")
                if time.monotonic() > deadline:
                    raise NeonError(f"Neon operation {operation.get('action')} {operation.get('id')} did not finish in {timeout:.0f} s (still {status})",
                                    fix="see the project's operations in the Neon console")
                time.sleep(pause)
                pause = min(pause * 2, POLL_SECONDS)
                operation = self.request("GET", f"/projects/{self.project_id}/operations/{operation['id']}")["operation"]
                status = operation.get("status")

    # -- compute endpoints: a branch is connected to through one ------------------------------
    def endpoints(self, branch_id: str | None = None) -> pd.DataFrame:
        """Return the compute endpoints of a branch (default: of the whole project): id, branch_id, type, current_state, host, created_at.

        Example:
            >>> Neon().endpoints("br-main")[["branch_id", "type"]].values.tolist()
            [['br-main', 'read_write']]
        """
        path = f"/projects/{self.project_id}/branches/{branch_id}/endpoints" if branch_id else f"/projects/{self.project_id}/endpoints"
        found = self.request("GET", path).get("endpoints", [])
        return pd.DataFrame([{k: e.get(k) for k in ENDPOINT_COLUMNS} for e in found], columns=ENDPOINT_COLUMNS).sort_values("id", ignore_index=True)

    def create_endpoint(self, branch_id: str, type: str = "read_write", *, wait: bool = True) -> dict:
        """Give a branch a compute endpoint (`read_write`, at most one per branch; or `read_only`); return it once its
        operations finished (id, branch_id, type, current_state, host, created_at).

        Example:
            >>> client = Neon()
            >>> backup = snapshot(client=client)  # a backup branch has no compute
            >>> made = client.create_endpoint(backup["id"])
            >>> made["branch_id"] == backup["id"], made["type"]
            (True, 'read_write')
            >>> client.delete_endpoint(made["id"])
        """
        if type not in ENDPOINT_TYPES:
            raise InputError(f"an endpoint's type is read_write or read_only (got {type!r})", fix="type='read_write' (one per branch) or type='read_only'", params="type")
        done = self.request("POST", f"/projects/{self.project_id}/endpoints", {"endpoint": {"branch_id": branch_id, "type": type}})
        if wait:
            self.wait(done.get("operations", []))
        made = done.get("endpoint", {})
        return {k: made.get(k) for k in ENDPOINT_COLUMNS}

    def delete_endpoint(self, endpoint_id: str, *, wait: bool = True) -> None:
        """Delete a compute endpoint (its sessions end; the branch and its data stay).

        Example:
            >>> client = Neon()
            >>> made = client.create_endpoint(snapshot(client=client)["id"])
            >>> client.delete_endpoint(made["id"])
            >>> made["id"] in set(client.endpoints()["id"])
            False
        """
        done = self.request("DELETE", f"/projects/{self.project_id}/endpoints/{endpoint_id}")
        if wait:
            self.wait(done.get("operations", []))

    def read_write_endpoint(self, branch_id: str, *, create: bool = True) -> dict:
        """Return a branch's read-write compute endpoint, creating one when it has none (`create=False`: raise instead);
        the dict's `created` says which (whoever created it deletes it, or deletes the branch).

        Example:
            >>> client = Neon()
            >>> client.read_write_endpoint("br-main")["created"]
            False
            >>> client.read_write_endpoint(snapshot(client=client)["id"])["created"]
            True
        """
        found = self.endpoints(branch_id)
        found = found[found["type"] == "read_write"]
        if not found.empty:
            return found.iloc[0].to_dict() | {"created": False}
        if not create:
            raise NeonError(f"Neon branch {branch_id} has no read-write compute endpoint to connect to", fix="create one: create_endpoint(branch_id)")
        return self.create_endpoint(branch_id, "read_write") | {"created": True}

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
        dispose_engines()  # the branch's computes restart: let go of its sessions
        done = self.request("POST", f"/projects/{self.project_id}/branches/{branch_id}/restore", body)
        self.wait(done.get("operations", []))
        return done


    # -- snapshots and the backup schedule (Neon's beta endpoints) ---------------------------------
    def create_snapshot(self, branch_id: str | None = None, *, lsn: str | None = None, timestamp: str | datetime | None = None,
                        name: str | None = None, expires_at: str | datetime | None = None, wait: bool = True) -> dict:
        """Take a snapshot of a branch (default: the default branch) now, or as it was at an LSN or a time; return it.

        Keys: id, name, source_branch_id, created_at, expires_at, manual (and timestamp / lsn when
        given). `expires_at`: when Neon deletes it (ISO 8601, UTC; default never). Waits for the
        operation it starts unless `wait=False`.

        Example:
            >>> taken = Neon().create_snapshot(name="before-upgrade")
            >>> taken["id"], taken["name"], taken["source_branch_id"]
            ('snap-...', 'before-upgrade', 'br-main')
        """
        if lsn and timestamp:
            raise InputError("give lsn or timestamp, not both", fix="a snapshot is taken at one point: an LSN (e.g. 0/1A2B3C4) or a time", params=("lsn", "timestamp"))
        branch = branch_id or self.default_branch()
        query = {"lsn": lsn, "timestamp": iso_time(timestamp, "timestamp"), "name": name, "expires_at": iso_time(expires_at, "expires_at")}
        dispose_engines()  # hold no idle connection to the branch while Neon copies it
        made = self.request("POST", f"/projects/{self.project_id}/branches/{branch}/snapshot", query=query)
        if wait:
            self.wait(made.get("operations", []))
        taken = made.get("snapshot", {})
        return {k: taken.get(k) for k in SNAPSHOT_COLUMNS[:6]} | {k: taken[k] for k in ("timestamp", "lsn") if taken.get(k)}

    def snapshots(self) -> pd.DataFrame:
        """Return the project's snapshots, newest first: id, name, source_branch_id, created_at, expires_at, manual, timestamp, lsn.

        Example:
            >>> Neon().snapshots().columns.tolist()[:4]
            ['id', 'name', 'source_branch_id', 'created_at']
        """
        found = self.request("GET", f"/projects/{self.project_id}/snapshots").get("snapshots", [])
        frame = pd.DataFrame([{k: s.get(k) for k in SNAPSHOT_COLUMNS} for s in found], columns=SNAPSHOT_COLUMNS)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        frame["expires_at"] = pd.to_datetime(frame["expires_at"], utc=True)
        return frame.sort_values(["created_at", "id"], ascending=[False, True], ignore_index=True)

    def restore_snapshot(self, snapshot_id: str, *, target_branch_id: str | None = None, name: str | None = None, finalize: bool = False,
                         wait: bool = True) -> dict:
        """Restore a snapshot into a NEW branch; return that branch (id, name, parent_id, ...).

        Without `finalize` nothing existing changes: look at the new branch, then
        `finalize_restore(branch_id)` makes it take the place of `target_branch_id` (default: the
        branch the snapshot was taken of): its computes (so its connection string) and its name.
        `finalize=True` does both at once. `wait=False` returns at once, the operations to wait on
        under the key `operations` (`wait(...)` them).

        Example:
            >>> client = Neon()
            >>> taken = client.create_snapshot()
            >>> restored = client.restore_snapshot(taken["id"], name="preview")
            >>> restored["id"], restored["name"]
            ('br-...', 'preview')
        """
        body: dict = {"finalize_restore": bool(finalize)}
        if target_branch_id:
            body["target_branch_id"] = target_branch_id
        if name:
            body["name"] = name
        dispose_engines()  # finalizing restarts the target's computes: let go of its sessions
        done = self.request("POST", f"/projects/{self.project_id}/snapshots/{snapshot_id}/restore", body)
        if not wait:
            return done.get("branch", {}) | {"operations": done.get("operations", [])}
        self.wait(done.get("operations", []))
        return done.get("branch", {})

    def finalize_restore(self, branch_id: str, *, name: str | None = None) -> dict:
        """Make a branch restored from a snapshot take the place of the branch it was restored for; the replaced branch
        is kept under `name` (default: one Neon makes up). Returns the operations' count and the branch id.

        Example:
            >>> client = Neon()
            >>> restored = client.restore_snapshot(client.create_snapshot()["id"])
            >>> client.finalize_restore(restored["id"])["branch_id"] == restored["id"]
            True
        """
        dispose_engines()  # the computes restart: sessions on the replaced branch end
        done = self.request("POST", f"/projects/{self.project_id}/branches/{branch_id}/finalize_restore", {"name": name} if name else {})
        self.wait(done.get("operations", []))
        return {"branch_id": branch_id, "operations": len(done.get("operations", []))}

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Delete a snapshot (it cannot be restored afterwards).

        Example:
            >>> client = Neon()
            >>> client.delete_snapshot(client.create_snapshot()["id"])
            >>> len(client.snapshots())
            0
        """
        done = self.request("DELETE", f"/projects/{self.project_id}/snapshots/{snapshot_id}")
        self.wait(done.get("operations", []))

    def backup_schedule(self, branch_id: str | None = None) -> pd.DataFrame:
        """Return a branch's (default: the default branch's) automatic snapshot schedule: frequency, day, hour, month,
        retention_seconds, retention (readable). Empty when none is set.

        Example:
            >>> Neon().backup_schedule().empty
            True
        """
        branch = branch_id or self.default_branch()
        found = self.request("GET", f"/projects/{self.project_id}/branches/{branch}/backup_schedule").get("schedule") or []
        rows = [{k: s.get(k) for k in SCHEDULE_COLUMNS[:5]} | {"retention": _readable(s.get("retention_seconds"))} for s in found]
        frame = pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)
        for column in ("day", "hour", "month", "retention_seconds"):
            frame[column] = frame[column].astype("Int64")
        return frame

    def set_backup_schedule(self, schedule: list[dict | str], branch_id: str | None = None) -> pd.DataFrame:
        """Replace a branch's automatic snapshot schedule (an empty list: none); return it as `backup_schedule()` does.

        Each entry is a dict (frequency daily | weekly | monthly; hour 0-23; day: 0-6 of the week or
        1-31 of the month; month; retention_seconds or retention, a duration) or the same as text,
        e.g. "daily hour=4 retention=7 days" or "weekly day=1 hour=4 retention=28 days".

        Example:
            >>> Neon().set_backup_schedule(["daily hour=4 retention=7 days", "monthly day=1 hour=4 retention=180 days"])[["frequency", "hour", "retention"]]
              frequency  hour retention
            0     daily     4    7 days
            1   monthly     4  180 days
        """
        entries = [schedule_entry(item) for item in schedule]
        branch = branch_id or self.default_branch()
        self.request("PUT", f"/projects/{self.project_id}/branches/{branch}/backup_schedule", {"schedule": entries})
        return self.backup_schedule(branch)


def retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for (a number of seconds or an HTTP date); None when absent or unreadable.

    Example:
        >>> retry_after("3"), retry_after(None), retry_after("soon")
        (3.0, None, None)
    """
    if not value:
        return None
    with suppress(ValueError):
        return max(float(value), 0.0)
    with suppress(TypeError, ValueError, IndexError):
        from email.utils import parsedate_to_datetime

        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    return None


def iso_time(value: str | datetime | None, name: str = "timestamp") -> str | None:
    """A time as Neon takes it (ISO 8601, UTC, e.g. 2026-11-25T12:00:00Z, fractions of a second kept); a naive datetime or text is taken as UTC.

    Example:
        >>> iso_time("2026-11-25 13:00+01:00")
        '2026-11-25T12:00:00Z'
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"{name} is not a time ({value!r})", fix=f"give {name} in ISO 8601, e.g. 2026-11-25T12:00:00Z", params=name) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"


def schedule_entry(item: dict | str) -> dict:
    """One entry of a backup schedule as Neon takes it, from a dict or text like "weekly day=1 hour=4 retention=28 days".

    Example:
        >>> schedule_entry("daily hour=4 retention=7 days")
        {'frequency': 'daily', 'hour': 4, 'retention_seconds': 604800}
    """
    from ..validate import duration

    if isinstance(item, str):
        words = item.replace(",", " ").split()
        fields: dict = {"frequency": words[0] if words else ""}
        key = None
        for word in words[1:]:
            if "=" in word:
                key, _, value = word.partition("=")
                fields[key] = value
            elif key:  # "retention=7 days"
                fields[key] = f"{fields[key]} {word}"
        item = fields
    entry = dict(item)
    if entry.get("frequency") not in FREQUENCIES:
        raise InputError(f"a backup schedule entry needs frequency daily, weekly or monthly (got {entry.get('frequency')!r})",
                         fix='write it like "daily hour=4 retention=7 days"', params="schedule")
    if "retention" in entry:
        entry["retention_seconds"] = int(duration(str(entry.pop("retention")), name="retention", positive=True).total_seconds())
    unknown = set(entry) - {"frequency", "hour", "day", "month", "retention_seconds"}
    if unknown:
        raise InputError(f"a backup schedule entry has no {', '.join(sorted(unknown))}", fix="use frequency, hour, day, month, retention", params="schedule")
    limits = {"hour": (0, 23), "day": (0, 31), "month": (1, 12), "retention_seconds": (1, None)}
    for key, (low, high) in limits.items():
        if key in entry:
            try:
                entry[key] = int(entry[key])
            except (TypeError, ValueError):
                raise InputError(f"backup schedule {key} must be a whole number (got {entry[key]!r})", fix=f"e.g. {key}=4", params="schedule") from None
            if entry[key] < low or (high is not None and entry[key] > high):
                raise InputError(f"backup schedule {key} {entry[key]} is out of range", fix=f"give {low}-{high}" if high else f"give at least {low}", params="schedule")
    return {k: entry[k] for k in ("frequency", "day", "hour", "month", "retention_seconds") if k in entry}


def _readable(seconds) -> str | None:
    if seconds is None or pd.isna(seconds):
        return None
    seconds = int(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}{'' if seconds == size else 's'}"
    return f"{seconds} seconds"


def snapshot(*, client: Neon | None = None, parent_id: str | None = None, name: str | None = None) -> dict:
    """Back up the way Neon documents: a branch of the parent (default: the default branch) at its current LSN.

    Returns id, name, parent_id, created_at, parent_lsn, parent_timestamp (the parent's point it holds).
    The branch has no compute (it costs storage only); `Neon().backup_branches()` lists these (the name
    starts with backup-), `drill("neon_branch")` restores the newest into a scratch branch and checks it,
    and `restore_to(source_branch_id=...)` brings the parent back to it.

    Example:
        >>> snapshot()["id"]
        'br-...'
    """
    client = client or Neon()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    dispose_engines()  # hold no idle connection to the parent while Neon branches it
    made = client.create_branch(name or f"{BACKUP_PREFIX}{stamp}", parent_id=parent_id, endpoint=False)
    branch = made["branch"]
    return {k: branch.get(k) for k in ("id", "name", "parent_id", "created_at", "parent_lsn", "parent_timestamp")}


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
