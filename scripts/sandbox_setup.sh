#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (run as root, idempotent) for codeloop's sandbox:
#   1. apt packages: docker.io (engine + containerd + runc), bubblewrap, debootstrap
#   2. a Docker daemon: started in the background when none answers (no systemd needed)
#   3. the sandbox image and rootfs: `codeloop sandbox build-image` when missing
# With --bwrap-only (what `make demo` runs): only bubblewrap and the util-linux tools the bwrap backend
# uses (setpriv, prlimit), enough for the demo's checked suggestion and sandbox step; no Docker, no image.
# Environment: CODELOOP_PYTHON (python with codeloop installed, default .venv/bin/python),
# CODELOOP_DOCKERD_LOG (default /var/log/codeloop-dockerd.log), CODELOOP_SKIP_IMAGE=1 to skip step 3.
set -euo pipefail
BWRAP_ONLY=0
[ "${1:-}" = "--bwrap-only" ] && BWRAP_ONLY=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${CODELOOP_PYTHON:-$ROOT/.venv/bin/python}"
LOG="${CODELOOP_DOCKERD_LOG:-/var/log/codeloop-dockerd.log}"

log() { echo "[sandbox_setup] $*"; }

install_packages() {
    local missing=()
    command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
    { command -v setpriv && command -v prlimit; } >/dev/null 2>&1 || missing+=(util-linux)
    if [ "$BWRAP_ONLY" = 0 ]; then
        command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
        command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        log "apt packages present"
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        log "not root: cannot install ${missing[*]} (run: sudo apt-get install ${missing[*]}); going on without"
        return
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d 101: apt must not try to start services itself (no systemd here).
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$created" = 1 ] && rm -f "$policy"
    return 0
}

daemon_answers() { timeout 10 docker info >/dev/null 2>&1; }

start_dockerd() {
    if daemon_answers; then
        log "docker daemon answers"
        return
    fi
    log "starting dockerd (log: $LOG)"
    mkdir -p "$(dirname "$LOG")"
    nohup dockerd >"$LOG" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        daemon_answers && { log "docker daemon up"; return; }
        sleep 1
    done
    log "dockerd did not answer within 60 s; last log lines:"
    tail -n 20 "$LOG" >&2 || true
    exit 1
}

build_image() {
    if [ "${CODELOOP_SKIP_IMAGE:-0}" = 1 ]; then
        log "image build skipped (CODELOOP_SKIP_IMAGE=1)"
        return
    fi
    (cd "$ROOT" && "$PY" -m sandbox.image --if-missing)
}

install_packages
if [ "$BWRAP_ONLY" = 0 ]; then
    start_dockerd
    build_image
fi
log "done"
