#!/usr/bin/env bash
# ensure-minio.sh: make sure a MinIO server binary (an S3-compatible object
# store) is there for the tests of S3 backup destinations
# (internal/miniotest, internal/backup).
#
# It builds MinIO from source with "go install github.com/minio/minio@latest"
# into $CUSTOS_MINIO_DIR (default ~/.cache/custos/minio), only when it is not
# there yet, and prints the path of the minio executable on standard output.
# The build takes several minutes, once. Running it again is harmless, and
# two runs at the same time build only once (they take a lock).
set -euo pipefail

log() { printf 'ensure-minio: %s\n' "$*" >&2; }

dir="${CUSTOS_MINIO_DIR:-${HOME}/.cache/custos/minio}"
bin="${dir}/minio"

if [[ -x "${bin}" ]]; then
	printf '%s\n' "${bin}"
	exit 0
fi
if ! command -v go >/dev/null 2>&1; then
	log "go is not available: install Go, then run this again"
	exit 1
fi
mkdir -p "${dir}"
# Another run may be building right now: wait for it, then look again.
exec 9>"${dir}/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if [[ ! -x "${bin}" ]]; then
	log "building MinIO into ${dir} with go install (takes about 4 minutes, once)"
	# Outside any module, so that this repository's go.mod plays no part.
	(cd / && GOBIN="${dir}" go install github.com/minio/minio@latest) >&2
fi
if [[ ! -x "${bin}" ]]; then
	log "go install finished but ${bin} is missing"
	exit 1
fi
printf '%s\n' "${bin}"
