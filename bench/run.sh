#!/usr/bin/env bash
# Benchmarks this tracker against Debian's opentracker package (and any other
# tracker binary given with --tracker) in one sitting, over loopback only, and
# writes docs/benchmarks.md. The server runs pinned to core 0, the load
# generator (bench/loadgen) to core 1. Run as root: it installs packages,
# reads and resets the servers' memory counters in /proc.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [--quick] [--tracker NAME=PATH]... [--skip-ours] [--skip-debian]
                    [--no-install] [--wait-quiet SECS] [--output FILE]

  --quick              smoke run: 100k torrents, 200k peers, 3 s phases
  --tracker NAME=PATH  also measure this binary; it must take upstream's
                       flags (-i IP -p TCP_PORT -P UDP_PORT) and run open
                       (no whitelist)
  --skip-ours          do not build or measure this repository's tracker
  --skip-debian        do not measure Debian's opentracker package
  --no-install         do not apt-get install missing tools
  --wait-quiet SECS    wait up to SECS for other processes to use under 10 %
                       of the CPUs before measuring (shared machines)
  --output FILE        where the report goes (docs/benchmarks.md)
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
SKIP_OURS=0
SKIP_DEBIAN=0
INSTALL=1
WAIT_QUIET=0
OUTPUT=$ROOT/docs/benchmarks.md
EXTRA=()
while (($#)); do
    case $1 in
    --quick) QUICK=1 ;;
    --skip-ours) SKIP_OURS=1 ;;
    --skip-debian) SKIP_DEBIAN=1 ;;
    --no-install) INSTALL=0 ;;
    --tracker)
        [[ ${2:-} == ?*=?* ]] || { usage >&2; exit 2; }
        EXTRA+=("$2")
        shift
        ;;
    --wait-quiet)
        [[ ${2:-} =~ ^[0-9]+$ ]] || { usage >&2; exit 2; }
        WAIT_QUIET=$2
        shift
        ;;
    --output)
        [[ -n ${2:-} ]] || { usage >&2; exit 2; }
        OUTPUT=$(realpath -m "$2")
        shift
        ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

if ((QUICK)); then
    TORRENTS=100000 PEERS=200000 DURATION=3 STARTUP_RUNS=3
else
    TORRENTS=1000000 PEERS=2000000 DURATION=15 STARTUP_RUNS=5
fi
CLIENTS=64
SERVER_CORE=0
LOAD_CORE=1
BASE_PORT=17100
# Panics print backtraces only when asked; no tracker runs with it set.
unset RUST_BACKTRACE

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- setup

[[ $(id -u) == 0 ]] || die "run as root (apt-get, /proc/PID/clear_refs of a server that dropped privileges)"
(($(nproc) >= 2)) || die "needs two cores: one for the server, one for the load generator"

if ((INSTALL)); then
    missing=()
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v ss >/dev/null || missing+=(iproute2)
    ((SKIP_DEBIAN)) || [[ -x /usr/sbin/opentracker || -x /usr/bin/opentracker ]] || missing+=(opentracker)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi
# The package enables a service on port 6969; it must not compete for core 0.
if ((!SKIP_DEBIAN)) && [[ -d /run/systemd/system ]]; then
    systemctl disable --now opentracker.service >/dev/null 2>&1 || true
fi
DEBIAN_BIN=$(command -v opentracker || true)
((SKIP_DEBIAN)) || [[ -n $DEBIAN_BIN ]] || die "Debian's opentracker is not installed"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BUILD_PACKAGES=(-p opentracker-loadgen)
((SKIP_OURS)) || BUILD_PACKAGES+=(-p opentracker)
log "building ${BUILD_PACKAGES[*]} (release)"
(cd "$ROOT" && cargo build --release --quiet "${BUILD_PACKAGES[@]}")
COMMANDS=("$(printf '%q ' cargo build --release "${BUILD_PACKAGES[@]}")")
LOADGEN=$CARGO_TARGET_DIR/release/loadgen
OURS=$CARGO_TARGET_DIR/release/opentracker

WORK=$(mktemp -d /var/tmp/ot-bench.XXXXXX)
# Debian's tracker drops to `nobody` and chroots into its directory.
chmod 755 "$WORK"
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

SWARM=(--torrents "$TORRENTS" --peers "$PEERS" --clients "$CLIENTS")

# ---------------------------------------------------------------- trackers

NAMES=()
declare -A BINARY=() FLAGS=()
add_tracker() { NAMES+=("$1"); BINARY[$1]=$2; FLAGS[$1]=${3:-}; }

((SKIP_OURS)) || add_tracker ours "$OURS"
if ((!SKIP_DEBIAN)); then
    # Debian builds opentracker in whitelist mode: allow the load's torrents.
    mkdir -p "$WORK/debian"
    "$LOADGEN" hashes "${SWARM[@]}" >"$WORK/debian/whitelist.txt"
    COMMANDS+=("loadgen hashes ${SWARM[*]} > $WORK/debian/whitelist.txt")
    # The whitelist is read after chroot, so its path is relative to rootdir.
    printf 'access.whitelist whitelist.txt\ntracker.rootdir %s\n' "$WORK/debian" \
        >"$WORK/debian/opentracker.conf"
    chmod -R a+rX "$WORK/debian"
    add_tracker debian "$DEBIAN_BIN" "-f $WORK/debian/opentracker.conf"
fi
for spec in "${EXTRA[@]}"; do
    name=${spec%%=*} path=${spec#*=}
    [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || die "tracker name $name: letters, digits, - and _ only"
    [[ -x $path ]] || die "$path is not executable"
    add_tracker "$name" "$(realpath "$path")"
done
((${#NAMES[@]})) || die "no tracker to measure"

# ---------------------------------------------------------------- measuring

declare -A R=() # R[tracker.scenario.key] = value

# Prints a command as it could be typed again.
quoted() { printf '%q ' "$@" | sed 's/ $//'; }

# Runs the load generator on its core and files its RESULT lines under
# R[tracker.scenario.key]. Returns non-zero if it failed, with its message
# in LOAD_ERROR.
LOAD_ERROR=
load() {
    local tracker=$1 output line key value scenario pair
    local -a pairs
    shift
    COMMANDS+=("$(quoted taskset -c "$LOAD_CORE" loadgen "$@")")
    if ! output=$(taskset -c "$LOAD_CORE" "$LOADGEN" "$@" 2>&1); then
        LOAD_ERROR=${output//$'\n'/ }
        log "$tracker: loadgen $1 failed: $LOAD_ERROR"
        return 1
    fi
    while read -r line; do
        [[ $line == RESULT\ * ]] || continue
        scenario=${line#*scenario=}
        scenario=${scenario%% *}
        read -r -a pairs <<<"${line#RESULT }"
        for pair in "${pairs[@]}"; do
            key=${pair%%=*} value=${pair#*=}
            R[$tracker.$scenario.$key]=$value
        done
    done <<<"$output"
    { grep -v '^RESULT' <<<"$output" || true; } | sed "s/^/  [$tracker] /" >&2
}

# kill -0 also succeeds on a zombie, which a crashed server is until reaped.
server_alive() {
    [[ -n $SERVER_PID ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$SERVER_PID/status" 2>/dev/null &&
        [[ -e /proc/$SERVER_PID/status ]]
}

memory_kb() { awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status"; }

port_free() { [[ -z $(ss -Hlntu "sport = :$1") ]]; }

# The tracker's command line, bound to 127.0.0.1:PORT for TCP and UDP.
server_command() {
    local tracker=$1 port=$2
    local -a flags=()
    read -r -a flags <<<"${FLAGS[$tracker]}"
    printf '%s\0' "${BINARY[$tracker]}" "${flags[@]}" -i 127.0.0.1 -p "$port" -P "$port"
}

stop_server() {
    local waited=0
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    while kill -0 "$SERVER_PID" 2>/dev/null && ((waited < 100)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

measure() {
    local tracker=$1 index=$2 port startup_port target
    local -a command=()
    port=$((BASE_PORT + 2 * index))
    startup_port=$((port + 1))
    if ! port_free "$port" || ! port_free "$startup_port"; then
        die "port $port or $startup_port is in use"
    fi
    target=127.0.0.1:$port
    mapfile -d '' -t command < <(server_command "$tracker" "$startup_port")
    R[$tracker.binary.bytes]=$(stat -L -c %s "${BINARY[$tracker]}")

    log "$tracker: start-up time"
    load "$tracker" startup --udp "127.0.0.1:$startup_port" --tcp "127.0.0.1:$startup_port" \
        --repeat "$STARTUP_RUNS" -- taskset -c "$SERVER_CORE" "${command[@]}" || true

    mapfile -d '' -t command < <(server_command "$tracker" "$port")
    log "$tracker: $(quoted "${command[@]}")"
    COMMANDS+=("$(quoted taskset -c "$SERVER_CORE" "${command[@]}")")
    taskset -c "$SERVER_CORE" "${command[@]}" >"$WORK/$tracker.log" 2>&1 &
    SERVER_PID=$!
    # --announce: Debian's tracker refuses every torrent until its whitelist,
    # read in the background, is loaded.
    if ! load "$tracker" wait --udp "$target" --tcp "$target" --timeout 60 --announce "${SWARM[@]}"; then
        log "$tracker: did not come up; its output:"
        sed 's/^/    /' "$WORK/$tracker.log" >&2
        stop_server
        return
    fi
    sleep 1
    R[$tracker.idle.rss_kb]=$(memory_kb "$SERVER_PID" VmRSS)

    # Each step runs while the server lives; a crash goes on record with its
    # exit status and last line of output. Full scrapes come last: Debian's
    # build crashes on them (gzip or plain) with a million torrents.
    local step status
    for step in udp http http-keepalive fullscrape-gzip fullscrape; do
        LOAD_ERROR=
        case $step in
        udp)
            log "$tracker: UDP prefill of $PEERS peers, then ${DURATION}s of announces"
            load "$tracker" udp --target "$target" "${SWARM[@]}" --prefill \
                --duration "$DURATION" --server-pid "$SERVER_PID" || true
            R[$tracker.full.hwm_kb]=$(memory_kb "$SERVER_PID" VmHWM 2>/dev/null || true)
            ;;
        http)
            log "$tracker: HTTP, one request per connection"
            load "$tracker" http --target "$target" "${SWARM[@]}" --duration "$DURATION" \
                --server-pid "$SERVER_PID" || true
            ;;
        http-keepalive)
            log "$tracker: HTTP keep-alive"
            load "$tracker" http --keep-alive --target "$target" "${SWARM[@]}" \
                --duration "$DURATION" --server-pid "$SERVER_PID" || true
            ;;
        fullscrape-gzip)
            log "$tracker: full scrape, gzip"
            load "$tracker" fullscrape --gzip --target "$target" --server-pid "$SERVER_PID" || true
            ;;
        fullscrape)
            log "$tracker: full scrape, plain"
            load "$tracker" fullscrape --target "$target" --server-pid "$SERVER_PID" || true
            ;;
        esac
        if [[ -n $LOAD_ERROR ]]; then
            R[$tracker.$step.failed]=$LOAD_ERROR
            # A server that broke the exchange may take a moment to die.
            sleep 1
        fi
        if ! server_alive; then
            status=0
            wait "$SERVER_PID" || status=$?
            SERVER_PID=
            R[$tracker.died]=$step
            local how="exit status $status" last
            if ((status > 128)); then how+=" (signal $((status - 128)))"; fi
            last=$(tail -n 1 "$WORK/$tracker.log")
            if [[ -n $last ]]; then how+=": $last"; fi
            R[$tracker.$step.crashed]=$how
            log "$tracker: the server died during $step (${R[$tracker.$step.crashed]}); its output:"
            sed 's/^/    /' "$WORK/$tracker.log" >&2
            break
        fi
    done
    stop_server
}

# Share of both cores that other processes used over two seconds: the report
# says how quiet the machine was.
background_load() {
    local -a before after
    read -r -a before < <(head -1 /proc/stat)
    sleep 2
    read -r -a after < <(head -1 /proc/stat)
    local total=0 idle=0 i
    for i in 1 2 3 4 5 6 7 8; do
        total=$((total + after[i] - before[i]))
    done
    idle=$((after[4] + after[5] - before[4] - before[5]))
    awk -v total="$total" -v idle="$idle" \
        'BEGIN { printf "%.0f", total ? 100 * (total - idle) / total : 0 }'
}

BACKGROUND=$(background_load)
quiet_deadline=$((SECONDS + WAIT_QUIET))
while ((BACKGROUND >= 10 && SECONDS < quiet_deadline)); do
    log "other processes use $BACKGROUND % of the CPUs; waiting for a quieter moment"
    sleep 8
    BACKGROUND=$(background_load)
done
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
log "other processes used $BACKGROUND % of the CPUs just before the run"
for i in "${!NAMES[@]}"; do
    measure "${NAMES[$i]}" "$i"
done

# ---------------------------------------------------------------- report

# R value or "n/a".
v() { printf '%s' "${R[$1]:-n/a}"; }
# awk arithmetic on R values; n/a if any is missing or a divisor is zero.
calc() {
    local expr=$1 a=${R[$2]:-} b=1
    [[ -z ${3:-} ]] || b=${R[$3]:-}
    [[ -n $a && -n $b && $b != 0 ]] || { printf 'n/a'; return; }
    awk -v a="$a" -v b="$b" "BEGIN { printf $expr }"
}
mb() { calc '"%.1f MB", a / 1024' "$1"; }
ratio() { calc '"%.2f", a / b' "$1" "$2"; }

load_rows() {
    local scenario=$1 t
    echo "| tracker | responses/s | server CPU µs/response | server busy % | loadgen busy % | others busy % | p50 µs | p99 µs | p99.9 µs | errors | timeouts | reconnects |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${NAMES[@]}"; do
        echo "| $t | $(v "$t.$scenario.rps") | $(v "$t.$scenario.cpu_us_per_response") |" \
            "$(v "$t.$scenario.server_busy_pct") | $(v "$t.$scenario.loadgen_busy_pct") |" \
            "$(v "$t.$scenario.others_busy_pct") |" \
            "$(v "$t.$scenario.p50_us") | $(v "$t.$scenario.p99_us") | $(v "$t.$scenario.p999_us") |" \
            "$(v "$t.$scenario.errors") | $(v "$t.$scenario.timeouts") | $(v "$t.$scenario.reconnects") |"
    done
}

ratio_rows() {
    local i j a b
    echo "| A / B | UDP µs/resp | HTTP µs/resp | keep-alive µs/resp | UDP resp/s | peak RSS | idle RSS | full scrape gzip time |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        for ((j = i + 1; j < ${#NAMES[@]}; j++)); do
            a=${NAMES[$i]} b=${NAMES[$j]}
            echo "| $a / $b | $(ratio "$a.udp.cpu_us_per_response" "$b.udp.cpu_us_per_response") |" \
                "$(ratio "$a.http.cpu_us_per_response" "$b.http.cpu_us_per_response") |" \
                "$(ratio "$a.http-keepalive.cpu_us_per_response" "$b.http-keepalive.cpu_us_per_response") |" \
                "$(ratio "$a.udp.rps" "$b.udp.rps") | $(ratio "$a.full.hwm_kb" "$b.full.hwm_kb") |" \
                "$(ratio "$a.idle.rss_kb" "$b.idle.rss_kb") |" \
                "$(ratio "$a.fullscrape-gzip.ttlb_ms" "$b.fullscrape-gzip.ttlb_ms") |"
        done
    done
}

scrape_cell() {
    local t=$1 s=$2 cell
    if [[ -n ${R[$t.$s.crashed]+set} ]]; then
        printf '**the server crashed**: %s' "${R[$t.$s.crashed]}"
        return
    fi
    if [[ -n ${R[$t.$s.failed]+set} ]]; then
        printf '**failed**: %s' "${R[$t.$s.failed]#loadgen: }"
        return
    fi
    [[ -n ${R[$t.$s.status]:-} ]] || { printf 'n/a'; return; }
    cell="$(v "$t.$s.ttlb_ms") ms, $(calc '"%.1f", a / 1048576' "$t.$s.wire_bytes") MB"
    [[ ${R[$t.$s.entries]:-} ]] && cell+=", ${R[$t.$s.entries]} torrents"
    [[ ${R[$t.$s.status]} == 200 ]] || cell+=", HTTP ${R[$t.$s.status]}"
    [[ ${R[$t.$s.complete]:-1} == 1 ]] || cell+=", **truncated**"
    printf '%s' "$cell"
}

footprint_rows() {
    local t
    echo "| tracker | binary | start-up (median) | idle RSS | peak RSS after prefill | full scrape plain | extra RSS | full scrape gzip | extra RSS |"
    echo "|---|---:|---:|---:|---:|---|---:|---|---:|"
    for t in "${NAMES[@]}"; do
        echo "| $t | $(calc '"%.2f MB", a / 1048576' "$t.binary.bytes") |" \
            "$(v "$t.startup.median_ms") ms | $(mb "$t.idle.rss_kb") | $(mb "$t.full.hwm_kb") |" \
            "$(scrape_cell "$t" fullscrape) | $(mb "$t.fullscrape.extra_rss_kb") |" \
            "$(scrape_cell "$t" fullscrape-gzip) | $(mb "$t.fullscrape-gzip.extra_rss_kb") |"
    done
}

tracker_rows() {
    local t
    for t in "${NAMES[@]}"; do
        case $t in
        ours) echo "- **ours**: \`${BINARY[$t]#"$ROOT"/}\` of this repository ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo 'no commit')), defaults." ;;
        debian) echo "- **debian**: \`${BINARY[$t]}\` from the package $(dpkg-query -W -f='${Version}' opentracker 2>/dev/null) (upstream 2021, IPv4-only, whitelist mode), with a whitelist of the load's $TORRENTS info hashes." ;;
        *) echo "- **$t**: \`${BINARY[$t]}\`." ;;
        esac
        [[ -z ${R[$t.died]:-} ]] ||
            echo "  **It died during the ${R[$t.died]} step**: \`${R[$t.${R[$t.died]}.crashed]:-}\`"
    done
}

mkdir -p "$(dirname "$OUTPUT")"
{
    echo "# Benchmarks"
    echo
    echo "Generated by \`bench/run.sh$( ((QUICK)) && echo ' --quick')\` on $STARTED."
    echo "Figures swing ±25–30 % between sittings on shared machines: compare only"
    echo "the ratios within one report."
    echo
    echo "## Machine"
    echo
    echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
    echo "- memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- kernel: $(uname -r); Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
    echo "- rustc: $(rustc --version 2>/dev/null || echo '?')"
    echo "- server pinned to core $SERVER_CORE, load generator to core $LOAD_CORE (taskset); loopback only"
    echo "- other processes used $BACKGROUND % of the CPUs in the two seconds before the run"
    echo
    echo "## Trackers"
    echo
    tracker_rows
    echo
    echo "## Workload"
    echo
    echo "$TORRENTS torrents with Zipf-like popularity (exponent 1; every torrent has at"
    echo "least one peer), $PEERS peers with distinct (address, port), 75 % seeders,"
    echo "numwant 30, 1 % scrapes. $CLIENTS virtual clients, each on its own 127.77.x.y source"
    echo "address with one request in flight (closed loop). Every tracker first gets a UDP"
    echo "prefill in which each peer announces once; the timed phases ($DURATION s each) then"
    echo "re-announce random peers. UDP clients reuse a connection id for 4 requests (at most"
    echo "60 s), so about one packet in five is a connect. Server CPU is utime + stime of all"
    echo "its threads from /proc/PID/stat across the timed phase, divided by all responses"
    echo "(connects included). Peak RSS is VmHWM after the UDP phase; a full scrape's extra"
    echo "RSS is VmHWM during it (reset through /proc/PID/clear_refs) minus VmRSS before."
    echo "Busy percentages are CPU time over wall time, of one core: the server, the load"
    echo "generator, and every other process on the machine (from /proc/stat)."
    echo
    echo "## Ratios"
    echo
    echo "Each row divides the first tracker's figure by the second's. Lower is better"
    echo "for µs/response, RSS and time; higher for responses/s."
    echo
    ratio_rows
    echo
    echo "## UDP announce (BEP 15), after the prefill"
    echo
    load_rows udp
    echo
    echo "## HTTP announce, one request per connection"
    echo
    load_rows http
    echo
    echo "## HTTP announce, keep-alive"
    echo
    echo "A tracker that closes after each answer shows one reconnect per request here."
    echo
    load_rows http-keepalive
    echo
    echo "## Footprint and full scrape"
    echo
    echo "Full scrape: time to the last byte and bytes on the wire, with all $TORRENTS torrents"
    echo "in the tracker."
    echo
    footprint_rows
    echo
    echo "## Caveats"
    echo
    echo "- On loopback the TCP handshake is processed in the connecting process, so part of"
    echo "  the kernel's cost of accepting a connection is charged to the load generator, not"
    echo "  to the server's µs/response."
    echo "- The load generator has one core too. Where the server is not near 100 % busy,"
    echo "  responses/s measure the pair, and µs/response includes the server's idle wake-ups."
    echo "  Where other processes were busy, both were slowed by them."
    echo "- A whitelist-mode tracker holds the whitelist (here $TORRENTS hashes) in its idle"
    echo "  and peak RSS."
    echo
    echo "## Commands"
    echo
    echo "The load generator is \`target/release/loadgen\`; \`$WORK\` was a temporary"
    echo "directory."
    echo
    echo '```'
    printf '%s\n' "${COMMANDS[@]}"
    echo '```'
} >"$OUTPUT"
log "wrote $OUTPUT"
