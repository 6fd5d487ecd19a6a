#!/usr/bin/env bash
# ensure-maildev.sh: make sure maildev (a local SMTP server with a REST API,
# from npm) is installed for the end-to-end e-mail test of alert sinks
# (internal/web/alertsinks_smtp_test.go).
#
# It installs maildev@2 into $CUSTOS_MAILDEV_DIR (default
# ~/.cache/custos/maildev) with npm, only when it is not there yet, and
# prints the path of the maildev executable on standard output. Running it
# again is harmless.
set -euo pipefail

log() { printf 'ensure-maildev: %s\n' "$*" >&2; }

dir="${CUSTOS_MAILDEV_DIR:-${HOME}/.cache/custos/maildev}"
bin="${dir}/node_modules/.bin/maildev"

if [[ -x "${bin}" ]]; then
	printf '%s\n' "${bin}"
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	log "npm is not available: install Node.js and npm (Debian: apt-get install nodejs npm), then run this again"
	exit 1
fi
log "installing maildev@2 into ${dir} with npm"
mkdir -p "${dir}"
npm install --silent --no-audit --no-fund --prefix "${dir}" maildev@2 >&2
if [[ ! -x "${bin}" ]]; then
	log "npm finished but ${bin} is missing"
	exit 1
fi
printf '%s\n' "${bin}"
