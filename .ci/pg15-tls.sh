#!/usr/bin/env bash
# Provision a local PostgreSQL 15 cluster ("15 main") for CI:
#   - self-signed TLS cert/key, ssl=on, listen on 127.0.0.1:5432, scram-sha-256
#   - pg_hba: role copythat_ci must use TLS + scram from 127.0.0.1, non-TLS rejected
#   - role copythat_ci (LOGIN CREATEDB CREATEROLE BYPASSRLS NOSUPERUSER, as a Neon owner
#     role; member of pg_monitor) with a
#     fresh random password each run, database copythat_ci owned by it
#   - writes postgresql+asyncpg://copythat_ci:PASSWORD@127.0.0.1:5432/copythat_ci?ssl=require
#     to the file given as $1 (mode 0600). The password is never printed.
#
# Usage (as root, Debian 12, no systemd):  .ci/pg15-tls.sh /path/to/url-file
# Idempotent: safe to run repeatedly, whether the cluster is stopped, running,
# already configured, or does not exist yet.
#
# NOTE: never enable `set -x` in this script, it would leak the password.
set -euo pipefail
set +x
umask 077

PG_VERSION=15
PG_CLUSTER=main
PG_HOST=127.0.0.1
PG_PORT=5432
CI_ROLE=copythat_ci
CI_DB=copythat_ci

CONF_DIR="/etc/postgresql/${PG_VERSION}/${PG_CLUSTER}"
DATA_DIR="/var/lib/postgresql/${PG_VERSION}/${PG_CLUSTER}"
TLS_DIR="/var/lib/postgresql/${PG_VERSION}/ci-tls"
TLS_CERT="${TLS_DIR}/server.crt"
TLS_KEY="${TLS_DIR}/server.key"
DROPIN="${CONF_DIR}/conf.d/90-copythat-ci-tls.conf"
HBA="${CONF_DIR}/pg_hba.conf"
LOG_FILE="/var/log/postgresql/postgresql-${PG_VERSION}-${PG_CLUSTER}.log"
SOCKET_DIR=/var/run/postgresql
WAIT_SECONDS=30
HBA_BEGIN="# BEGIN copythat-ci-tls (managed by .ci/pg15-tls.sh, do not edit)"
HBA_END="# END copythat-ci-tls"

log() { printf '[pg15-tls] %s\n' "$*" >&2; }
die() { printf '[pg15-tls] ERROR: %s\n' "$*" >&2; exit 1; }
show_log_tail() {
  if [ -r "$LOG_FILE" ]; then
    printf '[pg15-tls] ---- last 40 lines of %s ----\n' "$LOG_FILE" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    printf '[pg15-tls] ---- end of log ----\n' >&2
  else
    printf '[pg15-tls] (server log %s not readable)\n' "$LOG_FILE" >&2
  fi
}
trap 'rc=$?; printf "[pg15-tls] ERROR: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit $rc' ERR

# ---------------------------------------------------------------- arguments
[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 URL_OUTPUT_FILE"
URL_FILE="$1"
URL_DIR="$(dirname -- "$URL_FILE")"
[ -d "$URL_DIR" ] || die "directory for URL file does not exist: $URL_DIR"
[ ! -d "$URL_FILE" ] || die "URL file path is a directory: $URL_FILE"

# ---------------------------------------------------------------- prerequisites
[ "$(id -u)" -eq 0 ] || die "must run as root"
for cmd in openssl pg_ctlcluster pg_createcluster pg_isready psql runuser awk; do
  command -v "$cmd" >/dev/null 2>&1 || die "required command not found: $cmd"
done
[ -x "/usr/lib/postgresql/${PG_VERSION}/bin/postgres" ] \
  || die "PostgreSQL ${PG_VERSION} server binaries not found (install postgresql-${PG_VERSION})"
id postgres >/dev/null 2>&1 || die "system user 'postgres' does not exist"

# psql as the postgres superuser over the unix socket (peer auth).
# SQL is always passed on stdin so nothing secret shows up in argv / ps.
pg_admin() {
  (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 \
      -h "$SOCKET_DIR" -p "$PG_PORT" -d postgres "$@")
}

cluster_running() {
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1
}

# ---------------------------------------------------------------- 0. cluster exists?
if [ ! -f "${CONF_DIR}/postgresql.conf" ]; then
  log "cluster ${PG_VERSION}/${PG_CLUSTER} not found; creating it"
  pg_createcluster "$PG_VERSION" "$PG_CLUSTER" >/dev/null \
    || die "pg_createcluster ${PG_VERSION} ${PG_CLUSTER} failed"
fi
[ -f "${DATA_DIR}/PG_VERSION" ] \
  || die "config exists in ${CONF_DIR} but data directory ${DATA_DIR} is missing/uninitialised"
[ -f "$HBA" ] || die "pg_hba.conf not found at $HBA"

# Debian's postgresql.conf includes conf.d at its end; make sure it still does.
install -d -o postgres -g postgres -m 0755 "${CONF_DIR}/conf.d"
if ! grep -Eq "^[[:space:]]*include_dir[[:space:]]*=?[[:space:]]*'conf\.d'" "${CONF_DIR}/postgresql.conf"; then
  log "postgresql.conf does not include conf.d; appending include_dir = 'conf.d'"
  printf "\ninclude_dir = 'conf.d'\t# added by .ci/pg15-tls.sh\n" >> "${CONF_DIR}/postgresql.conf"
fi

# ---------------------------------------------------------------- 1. TLS cert + key
install -d -o postgres -g postgres -m 0700 "$TLS_DIR"
tmp_tls="$(mktemp -d "${TLS_DIR}/.gen.XXXXXX")"
if ! openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
      -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "${tmp_tls}/server.key" -out "${tmp_tls}/server.crt" >/dev/null 2>"${tmp_tls}/openssl.err"; then
  cat "${tmp_tls}/openssl.err" >&2
  rm -rf -- "$tmp_tls"
  die "openssl failed to generate the self-signed certificate"
fi
chown postgres:postgres "${tmp_tls}/server.key" "${tmp_tls}/server.crt"
chmod 0600 "${tmp_tls}/server.key"
chmod 0644 "${tmp_tls}/server.crt"
mv -f -- "${tmp_tls}/server.key" "$TLS_KEY"
mv -f -- "${tmp_tls}/server.crt" "$TLS_CERT"
rm -rf -- "$tmp_tls"

# ---------------------------------------------------------------- 2. server config drop-in
tmp_conf="$(mktemp "${CONF_DIR}/conf.d/.90-copythat-ci-tls.XXXXXX")"
cat > "$tmp_conf" <<EOF
# Managed by .ci/pg15-tls.sh -- rewritten on every run.
listen_addresses = '${PG_HOST}'
port = ${PG_PORT}
ssl = on
ssl_cert_file = '${TLS_CERT}'
ssl_key_file = '${TLS_KEY}'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
EOF
chown postgres:postgres "$tmp_conf"
chmod 0644 "$tmp_conf"
mv -f -- "$tmp_conf" "$DROPIN"   # must end in .conf to be picked up; temp name does not

# ---------------------------------------------------------------- 3. pg_hba.conf block
n_begin="$(grep -cFx -- "$HBA_BEGIN" "$HBA" || true)"
n_end="$(grep -cFx -- "$HBA_END" "$HBA" || true)"
[ "$n_begin" = "$n_end" ] && [ "$n_begin" -le 1 ] \
  || die "$HBA has unbalanced/duplicated managed-block markers (begin=$n_begin end=$n_end); fix it by hand"
tmp_hba="$(mktemp)"
{
  printf '%s\n' "$HBA_BEGIN"
  printf 'hostssl   all  %s  127.0.0.1/32  scram-sha-256\n' "$CI_ROLE"
  printf 'hostnossl all  %s  127.0.0.1/32  reject\n' "$CI_ROLE"
  printf '%s\n' "$HBA_END"
  awk -v b="$HBA_BEGIN" -v e="$HBA_END" '
    $0 == b { skip = 1; next }
    $0 == e { skip = 0; next }
    !skip   { print }' "$HBA"
} > "$tmp_hba"
cat "$tmp_hba" > "$HBA"      # keep owner/mode/inode of the original file
rm -f -- "$tmp_hba"

# ---------------------------------------------------------------- 4. (re)start + wait
if cluster_running; then
  log "restarting cluster ${PG_VERSION}/${PG_CLUSTER} to apply configuration"
  action=restart
else
  log "starting cluster ${PG_VERSION}/${PG_CLUSTER}"
  action=start
fi
if ! pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" "$action" >&2; then
  show_log_tail
  die "pg_ctlcluster ${action} ${PG_VERSION} ${PG_CLUSTER} failed"
fi

ready=0
for _ in $(seq 1 "$WAIT_SECONDS"); do
  if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; then ready=1; break; fi
  sleep 1
done
if [ "$ready" -ne 1 ]; then
  show_log_tail
  die "PostgreSQL did not become ready on ${PG_HOST}:${PG_PORT} within ${WAIT_SECONDS}s"
fi

# Make sure nothing (e.g. postgresql.auto.conf / ALTER SYSTEM) overrides our settings.
effective="$(printf '%s\n' \
  "SELECT current_setting('ssl') || '|' || current_setting('listen_addresses') || '|' ||" \
  "       current_setting('port') || '|' || current_setting('password_encryption');" \
  | pg_admin -At)" || { show_log_tail; die "cannot connect as postgres over the unix socket (peer auth)"; }
expected="on|${PG_HOST}|${PG_PORT}|scram-sha-256"
[ "$effective" = "$expected" ] \
  || die "effective settings are '$effective', expected '$expected' (check postgresql.auto.conf / other conf.d files)"

# ---------------------------------------------------------------- 5. role + database
CI_PASSWORD="$(openssl rand -hex 16)"
[ "${#CI_PASSWORD}" -eq 32 ] || die "could not generate a random password"

# Heredoc -> stdin: the password never appears on any command line.
# Statement logging is disabled for this session so the password cannot end
# up in the server log even if a statement fails.
pg_admin <<SQL || die "failed to create/update role ${CI_ROLE} / database ${CI_DB}"
SET client_min_messages = 'warning';
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET log_min_duration_statement = -1;
\set ci_password '${CI_PASSWORD}'
SELECT format('CREATE ROLE %I', '${CI_ROLE}')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${CI_ROLE}') \gexec
ALTER ROLE ${CI_ROLE} WITH LOGIN CREATEDB NOSUPERUSER CREATEROLE NOREPLICATION BYPASSRLS
  PASSWORD :'ci_password';
\unset ci_password
GRANT pg_monitor TO ${CI_ROLE};
SELECT format('CREATE DATABASE %I OWNER %I', '${CI_DB}', '${CI_ROLE}')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '${CI_DB}') \gexec
ALTER DATABASE ${CI_DB} OWNER TO ${CI_ROLE};
SQL

# ---------------------------------------------------------------- self-check over TLS
# PGPASSWORD lives only in psql's environment (not its argv).
ssl_used="$(cd / && PGPASSWORD="$CI_PASSWORD" PGCONNECT_TIMEOUT=10 psql -X -At \
  "host=${PG_HOST} port=${PG_PORT} user=${CI_ROLE} dbname=${CI_DB} sslmode=require" \
  -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)" \
  || { printf '%s\n' "$ssl_used" >&2; show_log_tail; die "self-check: ${CI_ROLE} could not log in over TLS"; }
[ "$ssl_used" = "t" ] || die "self-check: connection as ${CI_ROLE} is not using TLS (got '$ssl_used')"

# ---------------------------------------------------------------- 6. URL file
tmp_url="$(mktemp "${URL_DIR}/.pg-url.XXXXXX")"
printf 'postgresql+asyncpg://%s:%s@%s:%s/%s?ssl=require\n' \
  "$CI_ROLE" "$CI_PASSWORD" "$PG_HOST" "$PG_PORT" "$CI_DB" > "$tmp_url"
chmod 0600 "$tmp_url"
mv -f -- "$tmp_url" "$URL_FILE"
unset CI_PASSWORD

echo "PostgreSQL ${PG_VERSION} ready on ${PG_HOST}:${PG_PORT} (TLS, scram) as ${CI_ROLE}; URL written to ${URL_FILE}"
