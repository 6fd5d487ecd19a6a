#!/usr/bin/env bash
# ensure-chromium.sh: make sure a Chromium that the browser tests can drive
# (internal/web/passkey_browser_test.go, through the DevTools protocol) is
# installed.
#
# Only when no "chromium" is found in PATH (or at /usr/bin/chromium), or no
# font covers Chinese, does the script install Debian's chromium (and
# fonts-noto-cjk) with apt-get, using sudo when not run as root. It prints
# nothing when both are there, and running it again is harmless.
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }

have_chromium() {
	command -v chromium >/dev/null 2>&1 || [[ -x /usr/bin/chromium ]]
}

have_cjk_font() {
	command -v fc-list >/dev/null 2>&1 && [[ -n "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ]]
}

if have_chromium && have_cjk_font; then
	exit 0
fi

log "chromium or a Chinese font not found; installing them with apt-get"
if ! command -v apt-get >/dev/null 2>&1; then
	log "apt-get is not available: install Chromium yourself so that \"chromium\" is in PATH"
	exit 1
fi
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		log "not root and sudo is not available: run as root to install Chromium"
		exit 1
	fi
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# The pages speak Chinese: without a CJK font the browser tests' screenshots
# would show boxes instead of characters.
pkgs=()
have_chromium || pkgs+=(chromium)
have_cjk_font || pkgs+=(fonts-noto-cjk)
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
if ! have_chromium; then
	log "installed the chromium package but still cannot find chromium"
	exit 1
fi
log "installed $(chromium --version 2>/dev/null || echo chromium)"
