"""Server: version and uptime, checkpoints, replication and its slots.

Checkpoint counters moved from pg_stat_bgwriter to pg_stat_checkpointer in
PostgreSQL 17; `checkpoints()` reads whichever the server has and names the
columns the same way.

Example:
    >>> from copythat_ops import monitor
    >>> int(monitor.server_info()["major"][0]) >= 14
    True
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from .snapshot import query, snapshot

# The WAL position a server is at: its own on a primary, the last received on a replica.
_WAL_POSITION = "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END"


def server_info(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the server's version, major version, whether it is a replica, when it started and its uptime.

    Example:
        >>> server_info().columns.tolist()
        ['version', 'major', 'in_recovery', 'started_at', 'uptime']
    """
    return query(
        """
        SELECT current_setting('server_version') AS version,
               current_setting('server_version_num')::int / 10000 AS major,
               pg_is_in_recovery() AS in_recovery,
               pg_postmaster_start_time() AS started_at,
               date_trunc('second', now() - pg_postmaster_start_time()) AS uptime
        ORDER BY version
        """,
        name="server_info",
        engine=engine,
    )


def checkpoints(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return checkpoints timed and requested since the statistics reset, % requested, write and sync time, buffers written, and the settings that drive them.

    Many requested checkpoints mean max_wal_size is too small for the write load.

    Example:
        >>> checkpoints().columns.tolist()[:3]
        ['timed', 'requested', 'requested_percent']
    """
    with snapshot(engine) as snap:
        if snap.major >= 17:
            source = "num_timed AS timed, num_requested AS requested, write_time, sync_time, buffers_written, stats_reset FROM pg_stat_checkpointer"
        else:
            source = (
                "checkpoints_timed AS timed, checkpoints_req AS requested, checkpoint_write_time AS write_time, "
                "checkpoint_sync_time AS sync_time, buffers_checkpoint AS buffers_written, stats_reset FROM pg_stat_bgwriter"
            )
        return query(
            f"""
            SELECT timed,
                   requested,
                   round(100.0 * requested / nullif(timed + requested, 0), 1)::float8 AS requested_percent,
                   write_time::float8 AS write_ms,
                   sync_time::float8 AS sync_ms,
                   buffers_written,
                   stats_reset,
                   current_setting('checkpoint_timeout') AS checkpoint_timeout,
                   current_setting('max_wal_size') AS max_wal_size
            FROM (SELECT {source}) AS counters
            ORDER BY stats_reset
            """,
            name="checkpoints",
        )


def replication(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the standbys streaming from this server: pid, state, sync mode, positions, and lag in bytes and seconds (empty on a server without standbys).

    A role without pg_monitor (or pg_read_all_stats) sees each standby's pid only: its other
    columns are None (health() then says replication_lag UNKNOWN and names the grant).

    Example:
        >>> replication().columns.tolist()[:4]
        ['pid', 'application_name', 'client_addr', 'state']
    """
    return query(
        """
        SELECT pid,
               application_name,
               host(client_addr) AS client_addr,
               state,
               sync_state,
               sent_lsn::text AS sent_lsn,
               replay_lsn::text AS replay_lsn,
               pg_wal_lsn_diff(sent_lsn, replay_lsn)::bigint AS replay_lag_bytes,
               extract(epoch FROM write_lag)::float8 AS write_lag_seconds,
               extract(epoch FROM flush_lag)::float8 AS flush_lag_seconds,
               extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds
        FROM pg_stat_replication
        ORDER BY application_name, client_addr, pid
        """,
        name="replication",
        engine=engine,
    )


def replica_lag(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return whether this server is a replica and, if so, how far behind its primary it is (0 when it has replayed all it received).

    Example:
        >>> bool(replica_lag()["in_recovery"][0])
        False
    """
    return query(
        """
        SELECT pg_is_in_recovery() AS in_recovery,
               CASE
                   WHEN NOT pg_is_in_recovery() THEN NULL
                   WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                   ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
               END AS lag_seconds,
               pg_last_xact_replay_timestamp() AS last_replayed_at
        ORDER BY in_recovery
        """,
        name="replica_lag",
        engine=engine,
    )


def replication_slots(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the replication slots, whether each is in use and the WAL it keeps on disk; an inactive slot keeps WAL forever.

    Example:
        >>> replication_slots().columns.tolist()[:4]
        ['slot_name', 'slot_type', 'database', 'active']
    """
    return query(
        f"""
        SELECT slot_name,
               slot_type,
               database,
               active,
               wal_status,
               pg_wal_lsn_diff({_WAL_POSITION}, restart_lsn)::bigint AS retained_bytes,
               pg_size_pretty(pg_wal_lsn_diff({_WAL_POSITION}, restart_lsn)) AS retained
        FROM pg_replication_slots
        ORDER BY slot_name
        """,
        name="replication_slots",
        engine=engine,
    )
