#!/usr/bin/env bash
# One command for the whole benchmark: installs the tools it needs, builds BustAPI in
# release mode into its own venv, then runs bench/bench.py, which starts every server,
# checks each one answers correctly, measures interleaved rounds with wrk (h2load for
# HTTP/2) and writes BENCHMARKS.md (and bench/ratios.png); then bench/tus_upload.py and
# bench/heavy.py, which add their sections.
#
#   bench/run.sh                         # everything, ~20 minutes on 2 cores (+ first build)
#   BENCH_DURATION=3 BENCH_ROUNDS=1 bench/run.sh          # a quick smoke run
#   BENCH_WORKLOADS=hello BENCH_SERVERS=bustapi,granian,robyn bench/run.sh
#   BENCH_WORKLOADS=tls BENCH_WRITE=0 bench/run.sh         # the four HTTPS workloads
#   BENCH_WORKLOADS=idle_10k BENCH_WRITE=0 bench/run.sh    # 10,000 idle connections
#   BENCH_WORKLOADS=tus_upload BENCH_WRITE=0 bench/run.sh  # tus: 1 GiB in 8 MiB PATCHes
#
# Workloads (BENCH_WORKLOADS, comma-separated; groups: tls, heavy):
#   bench.py     hello, logged_in_page, static_small, range_probe, range_1mib_static,
#                range_1mib_send_file, upload_1gib, and over HTTPS: tls_static_small,
#                tls_range_1mib (wrk, HTTP/1.1), h2_static_small, h2_range_1mib (h2load)
#   heavy.py     download_2gib (curl and a raw socket), slow_10k, idle_10k
#   tus_upload.py  tus_upload
# Servers (BENCH_SERVERS): bustapi, bustapi_copy (run(sendfile=False)), bustapi_tls,
#   granian, uvicorn, gunicorn, robyn, nginx, nginx_tls. Each runs the workloads it has
#   the feature for; only the servers the selected workloads use are started.
#
# Environment (all optional):
#   BENCH_DURATION   seconds per wrk run (default 5)       BENCH_ROUNDS   rounds (default 5;
#                    3 for tus_upload.py and heavy.py)
#   BENCH_WARMUP     warmup seconds per server (default 2)
#   BENCH_SERVER_CPUS  CPUs the servers are pinned to (default 0)
#   BENCH_WRK_CPUS     CPUs wrk is pinned to (default 1)
#   BENCH_WORKLOADS / BENCH_SERVERS  comma-separated subsets (see above)
#   BENCH_PORT_BASE  first loopback port (default 18001; servers use +0..+8, tus +10)
#   BENCH_H2_STREAMS concurrent streams per h2load connection (default 1, like wrk)
#   BENCH_SLOW_CLIENTS / BENCH_IDLE_CLIENTS  connections of slow_10k / idle_10k
#                    (default 10000 each; the open-files hard limit must allow them)
#   BENCH_FIXTURES   fixture directory (default /tmp/bustapi-bench), never inside the repo
#   BENCH_IDLE_WAIT  seconds to wait for other processes to go quiet first (default 60)
#   BENCH_MAX_OTHER  re-run a wrk run if other processes took more than this share of the
#                    CPU meanwhile (default 0.10); BENCH_RETRIES  how often per run (default
#                    2); BENCH_RETRY_BUDGET  seconds of re-runs in all (default 60)
#   BENCH_WRITE=0|1  rewrite BENCHMARKS.md and bench/ratios.png (default: 1 unless a subset
#                    is selected; otherwise they go to bench/out/)
#   PYTHON           interpreter for bench/.venv (default python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
VENV="$BENCH/.venv"
PYTHON="${PYTHON:-python3}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- system tools: wrk (load generator) and nginx (native static-file reference) ----------
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)  # HTTP/2 load generator
command -v curl >/dev/null 2>&1 || missing+=(curl)  # HTTP/2 checks, 2 GiB download
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)  # the linker rustc needs
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from apt"
    # The bench runs its own nginx on a loopback port; keep apt from starting the system
    # service on port 80 (policy-rc.d exit 101 = "do not start", see invoke-rc.d(8)).
    policy=/usr/sbin/policy-rc.d
    made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod +x "$policy"
        made_policy=1
        trap '$SUDO rm -f "$policy"' EXIT
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ -n "$made_policy" ]; then
        $SUDO rm -f "$policy"
        trap - EXIT
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "bench/run.sh: cargo not found; install Rust >= 1.80 (https://rustup.rs) and rerun" >&2
    exit 1
fi

# --- the bench venv: peers, plotting, and BustAPI built in release mode ------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
# cryptography makes the self-signed certificate of the HTTPS workloads.
REQS="granian starlette uvicorn[standard] flask gunicorn robyn==0.88.0 cryptography matplotlib maturin>=1.5,<2"
STAMP="$VENV/.bench-requirements"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$REQS" ]; then
    log "installing peers into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    # shellcheck disable=SC2086  # word splitting of the requirement list is intended
    "$VENV/bin/pip" install -q $REQS
    echo "$REQS" >"$STAMP"
fi

# A wheel (not `maturin develop`) so the bench never touches python/bustapi/_core*.so,
# which belongs to the developers' debug build. The shared target dir keeps rebuilds
# incremental: a release build takes minutes on 2 cores the first time, seconds after.
log "building BustAPI (release) -> $VENV"
WHEELS="$ROOT/target/bench-wheels"
rm -rf "$WHEELS"
(cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target" "$VENV/bin/maturin" build --release \
    --interpreter "$VENV/bin/python" --out "$WHEELS" --quiet >&2)
"$VENV/bin/pip" install -q --no-deps --force-reinstall "$WHEELS"/bustapi-*.whl

log "running bench/bench.py"
"$VENV/bin/python" "$BENCH/bench.py" "$@"
# The tus upload workload has its own client: run when everything or it is selected.
if [ -z "${BENCH_WORKLOADS:-}" ] || [[ ",$BENCH_WORKLOADS," == *,tus_upload,* ]]; then
    log "running bench/tus_upload.py"
    (cd "$BENCH" && "$VENV/bin/python" tus_upload.py)
fi
# The 2 GiB download and the 10,000 slow or idle clients have their own clients;
# heavy.py returns at once when BENCH_WORKLOADS selects none of them.
log "running bench/heavy.py"
(cd "$BENCH" && "$VENV/bin/python" heavy.py)
# Sendfile path, copy path and nginx by range size, with CPU per request (issue 13's
# "why does sendfile lose at 1 MiB"); part of a full run only.
if [ -z "${BENCH_WORKLOADS:-}${BENCH_SERVERS:-}" ]; then
    log "running bench/file_paths.py"
    (cd "$BENCH" && "$VENV/bin/python" file_paths.py)
fi
# The hand-written reading of the figures (targets, and why one is missed), after a
# full run that rewrote BENCHMARKS.md.
if [ -z "${BENCH_WORKLOADS:-}${BENCH_SERVERS:-}" ] && [ "${BENCH_WRITE:-1}" = 1 ] \
    && [ "${BENCH_NO_WRITE:-0}" != 1 ]; then
    cat "$BENCH/analysis.md" >> "$ROOT/BENCHMARKS.md"
fi
