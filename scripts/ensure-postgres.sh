#!/usr/bin/env bash
# ensure-postgres.sh: make sure the PostgreSQL server binaries (initdb,
# pg_ctl, postgres) that internal/pgtest needs are installed.
#
# initdb is looked for in PATH and in /usr/lib/postgresql/*/bin (Debian and
# Ubuntu install it there, not in PATH). Only when it is missing does the
# script install PostgreSQL with apt-get (postgresql-15, or the distribution's
# default "postgresql" if there is no postgresql-15 package), using sudo when
# not run as root. It prints nothing when everything is already there, and
# running it again is harmless.
#
# Tests that should use an existing server instead can set CUSTOS_TEST_PG to
# the postgres:// URL of a superuser connection; then nothing is needed here.
set -euo pipefail

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }

# find_initdb prints the path of an initdb, or fails.
find_initdb() {
	local p d
	if p="$(command -v initdb 2>/dev/null)" && [[ -x "$p" ]]; then
		printf '%s\n' "$p"
		return 0
	fi
	# Newest version first.
	while IFS= read -r d; do
		if [[ -x "$d/initdb" ]]; then
			printf '%s\n' "$d/initdb"
			return 0
		fi
	done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -t/ -k5,5 -V -r || true)
	return 1
}

if ! initdb="$(find_initdb)"; then
	log "initdb not found in PATH or /usr/lib/postgresql/*/bin; installing PostgreSQL with apt-get"
	if ! command -v apt-get >/dev/null 2>&1; then
		log "apt-get is not available: install the PostgreSQL server (initdb, pg_ctl, postgres) yourself,"
		log "or set CUSTOS_TEST_PG to the postgres:// URL of a superuser connection"
		exit 1
	fi
	sudo=()
	if [[ "$(id -u)" -ne 0 ]]; then
		if ! command -v sudo >/dev/null 2>&1; then
			log "not root and sudo is not available: run as root to install PostgreSQL"
			exit 1
		fi
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	pkg=postgresql-15
	if ! apt-cache show "$pkg" >/dev/null 2>&1; then
		log "no package $pkg; installing the distribution's default postgresql"
		pkg=postgresql
	fi
	"${sudo[@]}" apt-get install -y -qq "$pkg" >/dev/null
	if ! initdb="$(find_initdb)"; then
		log "installed $pkg but still cannot find initdb"
		exit 1
	fi
	log "installed $pkg: $("$initdb" --version)"
fi

# PostgreSQL refuses to run as root; internal/pgtest then runs it as the OS
# user "postgres" (which the Debian packages create).
if [[ "$(id -u)" -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
	log "running as root but there is no OS user \"postgres\" for internal/pgtest to run PostgreSQL as;"
	log "create one (useradd --system --user-group --home-dir /var/lib/postgresql postgres) or run the tests as another user"
	exit 1
fi
