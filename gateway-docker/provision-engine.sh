#!/usr/bin/env bash
# Provision a Docker engine and the harness's images on a machine without Docker
# (CI, a fresh Debian box). Idempotent: every step is skipped when already done.
#
#   gateway-docker/provision-engine.sh start   # engine + base image + mock images
#   gateway-docker/provision-engine.sh stop    # stop the dockerd this script started
#
# - installs Debian's docker.io (and debootstrap) when dockerd is absent;
# - starts dockerd with no bridge and no iptables (containers use host
#   networking or network mode none, so all traffic stays on 127.0.0.1), and
#   records its PID in $STATE_DIR/dockerd.pid so `stop` (the caller's trap) ends it;
# - builds a local base image with python3 from the machine's configured Debian
#   mirror with debootstrap (no image registry is reachable here), cached as a
#   tarball under $STATE_DIR so a second provisioning imports it in seconds;
# - builds the mock images (one per Gateway version) and the gnzsnz-shaped
#   stand-in through docker-py (python -m harness.targets.images).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE_DIR="${IBGW_DOCKER_STATE:-/var/lib/ibgw-docker}"
RUN_DIR="${IBGW_DOCKER_RUN:-/run/ibgw-docker}"
PIDFILE="$RUN_DIR/dockerd.pid"
BASE_IMAGE="${IBGW_BASE_IMAGE:-ibgw-base:py3}"
BASE_TAR="$STATE_DIR/base-py3.tar"
PY="${PY:-$ROOT/.venv/bin/python}"

log() { printf 'provision: %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

engine_up() { docker info >/dev/null 2>&1; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        log "$1 needs root; run this as root, or start Docker yourself and set DOCKER_HOST"
        exit 1
    fi
}

install_engine() {
    if command -v dockerd >/dev/null && command -v debootstrap >/dev/null && command -v docker >/dev/null; then
        return
    fi
    need_root "installing docker.io"
    local t0; t0=$(now)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
    log "installed docker.io and debootstrap in $(since "$t0") s"
}

start_engine() {
    if engine_up; then
        log "a Docker engine already answers (${DOCKER_HOST:-unix:///var/run/docker.sock}); not starting one"
        return
    fi
    need_root "starting dockerd"
    local t0; t0=$(now)
    mkdir -p "$STATE_DIR/data" "$RUN_DIR"
    # No bridge, no iptables: the engine needs neither for host networking or
    # network mode none, and neither may exist in a CI sandbox.
    setsid dockerd --data-root "$STATE_DIR/data" --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/dockerd.real.pid" \
        --iptables=false --ip6tables=false --bridge=none \
        >"$RUN_DIR/dockerd.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    # Bounded polling: dockerd offers no readiness event to a shell.
    for _ in $(seq 1 150); do
        if engine_up; then
            log "dockerd (pid $(cat "$PIDFILE")) ready in $(since "$t0") s; log $RUN_DIR/dockerd.log"
            return
        fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then break; fi
        sleep 0.2
    done
    log "dockerd did not come up; last log lines:"
    tail -n 15 "$RUN_DIR/dockerd.log" >&2 || true
    exit 1
}

debian_mirror() {
    local uri
    uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
          | grep -v security | sed -E 's/^URIs:[[:space:]]*//; s/^deb (\[[^]]*\] )?//' | awk '{print $1}' | head -n 1)
    echo "${uri:-http://deb.debian.org/debian}"
}

base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE present"
        return
    fi
    local t0; t0=$(now)
    if [ ! -s "$BASE_TAR" ]; then
        need_root "debootstrap"
        local suite mirror dir
        suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
        mirror=$(debian_mirror)
        dir=$(mktemp -d "$STATE_DIR/rootfs.XXXXXX")
        log "debootstrap $suite from $mirror (minbase + python3) ..."
        debootstrap --variant=minbase --include=python3 "$suite" "$dir" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1 \
            || { tail -n 20 "$STATE_DIR/debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
        tar -C "$dir" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
        rm -rf "$dir"
    fi
    docker import "$BASE_TAR" "$BASE_IMAGE" >/dev/null
    log "base image $BASE_IMAGE ready in $(since "$t0") s"
}

mock_images() {
    local t0; t0=$(now)
    "$PY" -m harness.targets.images --base-image "$BASE_IMAGE" >&2
    log "mock and stand-in images ready in $(since "$t0") s"
}

stop_engine() {
    [ -s "$PIDFILE" ] || return 0
    local pid; pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        # Bounded wait for dockerd to stop its containers and exit.
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        log "stopped dockerd (pid $pid)"
    fi
    rm -f "$PIDFILE"
}

case "${1:-start}" in
    start)
        t_all=$(now)
        install_engine
        start_engine
        base_image
        mock_images
        log "engine provisioned in $(since "$t_all") s"
        ;;
    stop) stop_engine ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
