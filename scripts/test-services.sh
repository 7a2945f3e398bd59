#!/usr/bin/env bash
# Makes sure the tools and services the tests use are present: iproute2, chromium, and
# on loopback PostgreSQL (127.0.0.1:5432) with a test database and Redis
# (127.0.0.1:6379). Installs them with apt-get when missing and starts them
# when stopped, so `make test` works on a bare Debian machine as well as on
# one where they already run. Idempotent.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432
PGUSER=postgres
PGPASSWORD=postgres
PGDATABASE=${GRID4_TEST_PGDATABASE:-grid4_test}
export PGPASSWORD

log() { printf 'test-services: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
	if [ -z "$apt_updated" ]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		apt_updated=1
	fi
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # wait_for <description> <command...>
	local what=$1; shift
	for _ in $(seq 1 60); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.5
	done
	log "$what did not come up"
	return 1
}

pg_ready() { pg_isready -q -h "$PGHOST" -p "$PGPORT"; }
pg_login() { psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -Atqc 'select 1'; }

# --- Tools the tests run ------------------------------------------------
# iproute2: the node end-to-end tests build network namespaces with `ip`.
if ! command -v ip >/dev/null 2>&1; then
	apt_install iproute2
fi
# curl: the node walkthrough (docs/node.md) reaches a public address with it.
if ! command -v curl >/dev/null 2>&1; then
	apt_install curl
fi

# chromium: the registrar explorer's browser test drives it headless
# (chromedp), from /usr/bin/chromium.
if ! command -v chromium >/dev/null 2>&1; then
	apt_install chromium
fi

# Machines and containers (vmd, contd, flistd): QEMU (TCG where there is no
# KVM) with virtiofsd, an OCI runtime, FUSE, a static busybox for the
# images tests build, ext4 tools for disk images.
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_pkgs+=(qemu-system-x86)
[ -x /usr/lib/qemu/virtiofsd ] || command -v virtiofsd >/dev/null 2>&1 || need_pkgs+=(qemu-system-x86)
command -v runc >/dev/null 2>&1 || need_pkgs+=(runc)
command -v fusermount3 >/dev/null 2>&1 || need_pkgs+=(fuse3)
# (a static busybox: "not a dynamic executable" makes ldd fail)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need_pkgs+=(busybox-static)
command -v mkfs.ext4 >/dev/null 2>&1 || need_pkgs+=(e2fsprogs)
command -v blkid >/dev/null 2>&1 || need_pkgs+=(util-linux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	apt_install "${need_pkgs[@]}"
fi
# The kernel machines boot (Debian's cloud kernel, unpacked: see the script).
if [ ! -e "${GRID4_MACHINE_KERNEL:-/var/cache/grid4/kernel/current}/boot" ]; then
	as_root bash "$(dirname "$0")/machine-kernel.sh" >/dev/null
fi

# --- PostgreSQL ---------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
	apt_install postgresql postgresql-client
fi
if ! pg_ready; then
	versions=$(ls /etc/postgresql 2>/dev/null || true)
	if [ -z "$versions" ]; then
		apt_install postgresql
		versions=$(ls /etc/postgresql)
	fi
	for v in $versions; do
		log "starting PostgreSQL $v"
		as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
	done
	wait_for "PostgreSQL on $PGHOST:$PGPORT" pg_ready
fi
# A fresh Debian cluster asks for a password over TCP; give the postgres role
# the one the tests use (harmless where loopback is already trusted).
if ! pg_login >/dev/null 2>&1; then
	log "setting the password of role postgres for loopback logins"
	as_root runuser -u postgres -- psql -q -c "ALTER ROLE postgres PASSWORD '$PGPASSWORD'"
	pg_login >/dev/null
fi
if [ "$(psql -h "$PGHOST" -U "$PGUSER" -d postgres -Atqc "select 1 from pg_database where datname='$PGDATABASE'")" != 1 ]; then
	log "creating database $PGDATABASE"
	psql -h "$PGHOST" -U "$PGUSER" -d postgres -qc "CREATE DATABASE $PGDATABASE"
fi

# --- Redis --------------------------------------------------------------
redis_ready() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
	apt_install redis-server redis-tools
fi
if ! redis_ready; then
	log "starting Redis"
	mkdir -p /tmp/grid4-redis
	redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
		--dir /tmp/grid4-redis --logfile /tmp/grid4-redis/redis.log
	wait_for "Redis on 127.0.0.1:6379" redis_ready
fi

log "PostgreSQL postgres://$PGUSER:***@$PGHOST:$PGPORT/$PGDATABASE and Redis 127.0.0.1:6379 ready"
