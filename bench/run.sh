#!/usr/bin/env bash
# Benchmarks this tracker against Debian's opentracker package, aquatic_udp
# (--aquatic), the stateless floor (`loadgen floor`) and any other tracker
# binary given with --tracker, in one sitting, over loopback only, and writes
# docs/benchmarks.md. The server runs pinned to core 0, the load generator
# (bench/loadgen) to core 1. Run as root: it installs packages, reads and
# resets the servers' memory counters in /proc.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [--quick | --scale PEERS] [--tracker NAME=PATH]... [--upstream PATH] [--aquatic PATH]
                    [--aquatic-load PATH] [--no-cross-check] [--udp-pairs N]
                    [--skip-ours] [--skip-debian] [--skip-floor]
                    [--no-ipv6] [--no-install] [--wait-quiet SECS] [--output FILE]
                    [--host-network]

  --quick              smoke run: 100k torrents, 200k peers, 3 s phases
  --scale PEERS        memory at scale only: each tracker takes a UDP prefill
                       of PEERS peers on PEERS/2 torrents, and its peak RSS is
                       read; no timed phases, floor or cross-checks; the report
                       goes to docs/benchmarks-scale.md
  --tracker NAME=PATH  also measure this binary; it must take upstream's
                       flags (-i IP -p TCP_PORT -P UDP_PORT) and run open
                       (no whitelist)
  --upstream PATH      also measure this upstream opentracker binary
                       (bench/upstream.sh builds one), open, as `upstream`:
                       the targets are then read against it directly
  --aquatic PATH       also measure this aquatic_udp binary (bench/aquatic.sh
                       builds one), with 1 socket worker; UDP only
  --aquatic-load PATH  cross-check every tracker's UDP figures under
                       aquatic_udp_load_test, an independent load generator
                       (default: the one next to --aquatic's binary, where
                       bench/aquatic.sh puts it)
  --no-cross-check     skip that cross-check, and the HTTP one under wrk
  --udp-pairs N        with --upstream: measure ours' and upstream's UDP phase
                       in N alternating pairs, each tracker restarted and
                       prefilled every time (3; --quick 2; 1: the main phase
                       only), and their cross-check under aquatic_udp_load_test
                       in as many, each tracker restarted every time; report
                       each set's ratios' median. Each cross-check pair after
                       the first adds two runs of 60 s (10 s with --quick)
                       plus the trackers' start-up: about 4 minutes for 3
                       pairs, 20 s for --quick's 2
  --skip-ours          do not build or measure this repository's tracker
  --skip-debian        do not measure Debian's opentracker package
  --skip-floor         do not measure the floors: `loadgen floor`, a stateless
                       BEP 15 responder, one datagram per system call, and
                       `loadgen floor --batched`, the same in batches: the
                       cheapest possible UDP server
  --no-ipv6            skip the phases over IPv6 (UDP, then HTTP, on [::1],
                       clients from fd77::/64, which the namespace routes to
                       loopback)
  --no-install         do not apt-get install missing tools
  --wait-quiet SECS    wait up to SECS for other processes to use under 10 %
                       of the CPUs before measuring (shared machines)
  --output FILE        where the report goes (docs/benchmarks.md)
  --host-network       measure in the host's network namespace, with its
                       firewall rules and connection tracking, instead of a
                       fresh namespace with only a loopback interface
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
SCALE=0
SKIP_OURS=0
SKIP_DEBIAN=0
SKIP_FLOOR=0
AQUATIC=
UPSTREAM=
AQUATIC_LOAD=
CROSS_CHECK=1
INSTALL=1
HOST_NETWORK=0
IPV6=1
WAIT_QUIET=0
PAIRS_ASKED=
OUTPUT=
EXTRA=()
# As given, for the report's header.
INVOCATION=("$@")
while (($#)); do
    case $1 in
    --quick) QUICK=1 ;;
    --scale)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
        SCALE=$2
        shift
        ;;
    --skip-ours) SKIP_OURS=1 ;;
    --skip-debian) SKIP_DEBIAN=1 ;;
    --skip-floor) SKIP_FLOOR=1 ;;
    --no-install) INSTALL=0 ;;
    --host-network) HOST_NETWORK=1 ;;
    --no-ipv6) IPV6=0 ;;
    --tracker)
        [[ ${2:-} == ?*=?* ]] || { usage >&2; exit 2; }
        EXTRA+=("$2")
        shift
        ;;
    --aquatic)
        [[ -n ${2:-} ]] || { usage >&2; exit 2; }
        AQUATIC=$2
        shift
        ;;
    --upstream)
        [[ -n ${2:-} ]] || { usage >&2; exit 2; }
        UPSTREAM=$2
        shift
        ;;
    --aquatic-load)
        [[ -n ${2:-} ]] || { usage >&2; exit 2; }
        AQUATIC_LOAD=$2
        shift
        ;;
    --no-cross-check) CROSS_CHECK=0 ;;
    --udp-pairs)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
        PAIRS_ASKED=$2
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

# CROSS_WARM and CROSS_SPAN: seconds of the cross-check's load before and
# during its measured window, in its load generator's 5 s reports. The warm-up
# lets the fastest trackers announce most peers once, so that the window
# measures re-announces, as the main UDP phase does.
if ((QUICK && SCALE)); then
    usage >&2
    exit 2
elif ((QUICK)); then
    TORRENTS=100000 PEERS=200000 DURATION=3 STARTUP_RUNS=3 CROSS_WARM=5 CROSS_SPAN=5
    UDP_PAIRS=2
elif ((SCALE)); then
    # The prefill is what is measured; the phase after it is a formality.
    TORRENTS=$((SCALE / 2 > 0 ? SCALE / 2 : 1)) PEERS=$SCALE DURATION=1 STARTUP_RUNS=0
    CROSS_CHECK=0 SKIP_FLOOR=1 UDP_PAIRS=1 IPV6=0
else
    TORRENTS=1000000 PEERS=2000000 DURATION=15 STARTUP_RUNS=5 CROSS_WARM=30 CROSS_SPAN=30
    UDP_PAIRS=3
fi
((SCALE)) || UDP_PAIRS=${PAIRS_ASKED:-$UDP_PAIRS}
# loadgen gives each client address at most 64000 peers (ports).
CLIENTS=$(((PEERS + 63999) / 64000 > 64 ? (PEERS + 63999) / 64000 : 64))
if ((SCALE)); then
    OUTPUT=${OUTPUT:-$ROOT/docs/benchmarks-scale.md}
else
    OUTPUT=${OUTPUT:-$ROOT/docs/benchmarks.md}
fi
# UDP requests each client keeps outstanding: enough that the server, not
# the load generator, is what saturates.
UDP_IN_FLIGHT=4
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
    ((!CROSS_CHECK)) || command -v wrk >/dev/null || missing+=(wrk)
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
NETNS=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    [[ -z $NETNS ]] || ip netns delete "$NETNS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Servers and load run in a network namespace of their own: only a loopback
# interface, no firewall rules, so no connection tracking (a host with Docker,
# say, tracks every loopback datagram) and nothing else listening.
IN_NET=()
if ((!HOST_NETWORK)); then
    NETNS=ot-bench-$$
    ip netns add "$NETNS" || die "cannot create network namespace $NETNS (--host-network to skip)"
    ip -n "$NETNS" link set lo up
    IN_NET=(ip netns exec "$NETNS")
    COMMANDS+=("ip netns add $NETNS && ip -n $NETNS link set lo up  # the servers and loadgen below run under: ip netns exec $NETNS")
fi
# Over IPv6 loadgen's clients send from fd77::/64 (::1 is a single address,
# where 127.0.0.0/8 has room for every client): the prefix must be local.
IPV6_SKIPPED=
if ((!IPV6)); then
    IPV6_SKIPPED='--no-ipv6'
elif ((HOST_NETWORK)); then
    [[ -n $(ip -6 route show table local fd77::/64 2>/dev/null) ]] ||
        IPV6_SKIPPED='host network without a local route for fd77::/64'
elif ip -n "$NETNS" -6 route add local fd77::/64 dev lo; then
    COMMANDS+=("ip -n $NETNS -6 route add local fd77::/64 dev lo  # loadgen's IPv6 clients")
else
    IPV6_SKIPPED='no IPv6 in the network namespace'
fi

SWARM=(--torrents "$TORRENTS" --peers "$PEERS" --clients "$CLIENTS")

# ---------------------------------------------------------------- trackers

# add_tracker NAME KIND BINARY [CAPABILITIES] [FLAGS]
#   KIND, how it is launched on an address and port (server_command):
#     opentracker  upstream's flags, -i IP -p TCP_PORT -P UDP_PORT, plus FLAGS
#     aquatic      aquatic_udp -c FILE, a TOML file from aquatic_config
#     floor        loadgen floor --listen ADDR
#   CAPABILITIES, words:
#     udp-only     no HTTP: only the UDP phase; HTTP and full-scrape cells
#                  and ratios read "n/a (UDP only)"
#     ipv4-only    no IPv6: no UDP phase over IPv6
#     stateless    keeps no swarm (the floor): no start-up, binary size or
#                  full scrape, and no memory ratios against it
NAMES=()
declare -A BINARY=() KIND=() CAPS=() FLAGS=()
add_tracker() {
    NAMES+=("$1")
    KIND[$1]=$2 BINARY[$1]=$3 CAPS[$1]=${4:-} FLAGS[$1]=${5:-}
}
# has TRACKER CAPABILITY
has() { [[ " ${CAPS[$1]} " == *" $2 "* ]]; }

((SKIP_OURS)) || add_tracker ours opentracker "$OURS"
if [[ -n $UPSTREAM ]]; then
    [[ -x $UPSTREAM ]] || die "$UPSTREAM is not executable"
    add_tracker upstream opentracker "$(realpath "$UPSTREAM")"
    # bench/upstream.sh's build, when it is one: BUILD-INFO next to bin/.
    UPSTREAM_INFO=$(dirname "$(dirname "${BINARY[upstream]}")")/BUILD-INFO
    if [[ -f $UPSTREAM_INFO ]]; then
        mapfile -t lines < <(sed -n 's/^command: //p' "$UPSTREAM_INFO")
        COMMANDS+=("# bench/upstream.sh (${UPSTREAM_INFO%/BUILD-INFO}):" "${lines[@]}")
    fi
fi
if ((!SKIP_DEBIAN)); then
    # Debian builds opentracker in whitelist mode: allow the load's torrents.
    mkdir -p "$WORK/debian"
    "$LOADGEN" hashes "${SWARM[@]}" >"$WORK/debian/whitelist.txt"
    COMMANDS+=("loadgen hashes ${SWARM[*]} > $WORK/debian/whitelist.txt")
    # The whitelist is read after chroot, so its path is relative to rootdir.
    printf 'access.whitelist whitelist.txt\ntracker.rootdir %s\n' "$WORK/debian" \
        >"$WORK/debian/opentracker.conf"
    # For the cross-check, the torrents aquatic_udp_load_test announces, and
    # last our swarm's first, which `loadgen wait --announce` asks about.
    "$LOADGEN" aquatic-hashes --torrents "$TORRENTS" >"$WORK/debian/cross-check.txt"
    head -n 1 "$WORK/debian/whitelist.txt" >>"$WORK/debian/cross-check.txt"
    COMMANDS+=("(loadgen aquatic-hashes --torrents $TORRENTS; head -n 1 $WORK/debian/whitelist.txt) > $WORK/debian/cross-check.txt")
    printf 'access.whitelist cross-check.txt\ntracker.rootdir %s\n' "$WORK/debian" \
        >"$WORK/debian/cross-check.conf"
    chmod -R a+rX "$WORK/debian"
    add_tracker debian opentracker "$DEBIAN_BIN" ipv4-only "-f $WORK/debian/opentracker.conf"
fi
if [[ -n $AQUATIC ]]; then
    [[ -x $AQUATIC ]] || die "$AQUATIC is not executable"
    add_tracker aquatic aquatic "$(realpath "$AQUATIC")" udp-only
    # bench/aquatic.sh's build, when it is one: BUILD-INFO next to bin/.
    AQUATIC_INFO=$(dirname "$(dirname "${BINARY[aquatic]}")")/BUILD-INFO
    if [[ -f $AQUATIC_INFO ]]; then
        mapfile -t lines < <(sed -n 's/^command: //p' "$AQUATIC_INFO")
        COMMANDS+=("# bench/aquatic.sh (${AQUATIC_INFO%/BUILD-INFO}):" "${lines[@]}")
    fi
fi
# The HTTP cross-check's load generator, wrk, replays a pool of announces of
# the swarm's torrents, picked uniformly (where loadgen's are Zipf-skewed),
# from 127.0.0.1 with random ports, 75 % seeders.
WRK=
WRK_REQUESTS=100000
if ((CROSS_CHECK)) && command -v wrk >/dev/null; then
    WRK=$(command -v wrk)
    mkdir -p "$WORK/wrk"
    "$LOADGEN" hashes "${SWARM[@]}" | awk -v n="$WRK_REQUESTS" '
        BEGIN { srand(1) }
        { hex[NR] = $1 }
        END {
            for (k = 0; k < n; k++) {
                h = hex[int(rand() * NR) + 1]
                encoded = ""
                for (j = 1; j <= 40; j += 2) encoded = encoded "%" substr(h, j, 2)
                printf "/announce?info_hash=%s&peer_id=-WK0001-%012d&port=%d&left=%d&numwant=30&compact=1\n",
                    encoded, k, 1024 + int(rand() * 64000), (rand() < 0.75 ? 0 : 1000)
            }
        }' >"$WORK/wrk/paths.txt"
    COMMANDS+=("loadgen hashes ${SWARM[*]} | awk … > $WORK/wrk/paths.txt  # $WRK_REQUESTS announce paths of random torrents (bench/run.sh)")
fi

# The cross-check's load generator: given, or the one bench/aquatic.sh built
# next to aquatic_udp.
if ((CROSS_CHECK)) && [[ -z $AQUATIC_LOAD && -n $AQUATIC ]] &&
    [[ -x $(dirname "$AQUATIC")/aquatic_udp_load_test ]]; then
    AQUATIC_LOAD=$(dirname "$AQUATIC")/aquatic_udp_load_test
fi
((CROSS_CHECK)) || AQUATIC_LOAD=
if [[ -n $AQUATIC_LOAD ]]; then
    [[ -x $AQUATIC_LOAD ]] || die "$AQUATIC_LOAD is not executable"
    AQUATIC_LOAD=$(realpath "$AQUATIC_LOAD")
fi
for spec in "${EXTRA[@]}"; do
    name=${spec%%=*} path=${spec#*=}
    [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || die "tracker name $name: letters, digits, - and _ only"
    [[ -z ${KIND[$name]:-} && $name != floor ]] || die "tracker name $name is taken"
    [[ -x $path ]] || die "$path is not executable"
    add_tracker "$name" opentracker "$(realpath "$path")"
done
if ((!SKIP_FLOOR)); then
    add_tracker floor floor "$LOADGEN" stateless
    # The same responder moving UDP in batches: the network stack's own
    # cost per response, which no tracker can beat (UDP only: its HTTP
    # side is the floor's).
    add_tracker floor-batched floor "$LOADGEN" "stateless udp-only" --batched
fi
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
    if ! output=$("${IN_NET[@]}" taskset -c "$LOAD_CORE" "$LOADGEN" "$@" 2>&1); then
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

port_free() { [[ -z $("${IN_NET[@]}" ss -Hlntu "sport = :$1") ]]; }

# HOST:PORT as a socket address: [::1]:PORT for an IPv6 host.
socket_address() { [[ $1 == *:* ]] && echo "[$1]:$2" || echo "$1:$2"; }

# aquatic_udp's configuration for HOST:PORT (aquatic_udp -p prints all
# keys with their defaults): one socket worker, and one swarm worker where the
# version has them (0.9 has not: its socket workers share the swarm), so that
# it compares per core; open, no privilege dropping, no statistics; our
# tracker's timeouts where they map: announce interval 30 min, peers expire
# after 45 min, sweeps every minute, connection ids accepted for 2 minutes.
aquatic_config() {
    local tracker=$1 port=$2 host=$3
    echo "socket_workers = 1"
    if "${BINARY[$tracker]}" -p 2>/dev/null | grep -q '^swarm_workers'; then
        echo "swarm_workers = 1"
    fi
    cat <<EOF

[network]
address = "$(socket_address "$host" "$port")"

[protocol]
peer_announce_interval = 1800

[statistics]
interval = 0

[cleaning]
torrent_cleaning_interval = 60
max_connection_age = 120
max_peer_age = 2700

[privileges]
drop_privileges = false

[access_list]
mode = "off"
EOF
}

# Writes what the tracker needs to run on PORT of HOST (127.0.0.1 unless
# given): aquatic's configuration. CONFIG[tracker] = the last configuration
# file written on 127.0.0.1, for the report.
declare -A CONFIG=()
prepare_server() {
    local tracker=$1 port=$2 host=${3:-127.0.0.1} file
    case ${KIND[$tracker]} in
    aquatic)
        file=$WORK/$tracker.$port.toml
        [[ $host == 127.0.0.1 ]] || file=$WORK/$tracker.$port.ipv6.toml
        [[ $host != 127.0.0.1 ]] || CONFIG[$tracker]=$file
        aquatic_config "$tracker" "$port" "$host" >"$file"
        ;;
    esac
}

# The tracker's command line, bound to HOST:PORT (HOST 127.0.0.1 unless
# given) for TCP and UDP (UDP only for udp-only trackers); prepare_server
# comes first.
server_command() {
    local tracker=$1 port=$2 host=${3:-127.0.0.1}
    local -a flags=()
    case ${KIND[$tracker]} in
    opentracker)
        read -r -a flags <<<"${FLAGS[$tracker]}"
        printf '%s\0' "${BINARY[$tracker]}" "${flags[@]}" -i "$host" -p "$port" -P "$port"
        ;;
    aquatic)
        local file=$WORK/$tracker.$port.toml
        [[ $host == 127.0.0.1 ]] || file=$WORK/$tracker.$port.ipv6.toml
        printf '%s\0' "${BINARY[$tracker]}" -c "$file"
        ;;
    floor)
        read -r -a flags <<<"${FLAGS[$tracker]}"
        printf '%s\0' "${BINARY[$tracker]}" floor --listen "$(socket_address "$host" "$port")" "${flags[@]}"
        ;;
    *) die "$tracker: unknown kind ${KIND[$tracker]}" ;;
    esac
}

# Load generator options that probe the tracker on ADDR: UDP, and TCP
# unless it is udp-only.
probes() {
    local tracker=$1 address=$2
    printf '%s\0' --udp "$address"
    has "$tracker" udp-only || printf '%s\0' --tcp "$address"
}

# Starts TRACKER on HOST:PORT (HOST 127.0.0.1 unless given), pinned to the
# server core, its output in LOG_FILE; SERVER_PID is then its PID. Fails,
# with nothing left running, when it does not answer within a minute.
start_server() {
    local tracker=$1 port=$2 log_file=$3 host=${4:-127.0.0.1}
    local -a command=() probe=()
    prepare_server "$tracker" "$port" "$host"
    mapfile -d '' -t command < <(server_command "$tracker" "$port" "$host")
    mapfile -d '' -t probe < <(probes "$tracker" "$(socket_address "$host" "$port")")
    # ip netns exec and taskset exec, so $! is the server's own PID.
    "${IN_NET[@]}" taskset -c "$SERVER_CORE" "${command[@]}" >"$log_file" 2>&1 &
    SERVER_PID=$!
    # --announce: Debian's tracker refuses every torrent until its whitelist,
    # read in the background, is loaded.
    if ! load "$tracker" wait "${probe[@]}" --timeout 60 --announce "${SWARM[@]}"; then
        stop_server
        return 1
    fi
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

# The steps measure runs on a tracker, in order. `skipped TRACKER STEP` says
# why the tracker skips STEP, or fails if it does not: udp-only trackers skip
# the TCP steps (their figures, memory included, come from the UDP step), and
# stateless ones have no torrents to scrape.
STEPS=(udp http http-keepalive wrk wrk-keepalive fullscrape-gzip fullscrape)
((!SCALE)) || STEPS=(udp)
skipped() {
    local tracker=$1 step=$2
    case $step in
    http | http-keepalive)
        has "$tracker" udp-only && printf 'UDP only'
        ;;
    wrk | wrk-keepalive)
        if has "$tracker" udp-only; then
            printf 'UDP only'
        elif [[ -z $WRK ]]; then
            printf 'no wrk'
        else
            return 1
        fi
        ;;
    udp6 | http6 | http-keepalive6)
        if [[ $step != udp6 ]] && has "$tracker" udp-only; then
            printf 'UDP only'
        elif has "$tracker" ipv4-only; then
            printf 'IPv4 only'
        elif [[ -n $IPV6_SKIPPED ]]; then
            printf '%s' "$IPV6_SKIPPED"
        else
            return 1
        fi
        ;;
    fullscrape | fullscrape-gzip)
        if has "$tracker" udp-only; then
            printf 'UDP only'
        elif has "$tracker" stateless; then
            printf 'stateless'
        else
            return 1
        fi
        ;;
    *) return 1 ;;
    esac
}

measure() {
    local tracker=$1 index=$2 port startup_port target
    local -a command=() probe=()
    port=$((BASE_PORT + 2 * index))
    startup_port=$((port + 1))
    if ! port_free "$port" || ! port_free "$startup_port"; then
        die "port $port or $startup_port is in use"
    fi
    target=127.0.0.1:$port

    if ! has "$tracker" stateless; then
        R[$tracker.binary.bytes]=$(stat -L -c %s "${BINARY[$tracker]}")
    fi
    if ! has "$tracker" stateless && ((!SCALE)); then
        log "$tracker: start-up time"
        prepare_server "$tracker" "$startup_port"
        mapfile -d '' -t command < <(server_command "$tracker" "$startup_port")
        mapfile -d '' -t probe < <(probes "$tracker" "127.0.0.1:$startup_port")
        load "$tracker" startup "${probe[@]}" --repeat "$STARTUP_RUNS" \
            -- taskset -c "$SERVER_CORE" "${command[@]}" || true
    fi

    prepare_server "$tracker" "$port"
    mapfile -d '' -t command < <(server_command "$tracker" "$port")
    log "$tracker: $(quoted "${command[@]}")"
    local -a shown=("${command[@]}")
    [[ ${shown[0]} != "$LOADGEN" ]] || shown[0]=loadgen
    COMMANDS+=("$(quoted taskset -c "$SERVER_CORE" "${shown[@]}")")
    if ! start_server "$tracker" "$port" "$WORK/$tracker.log"; then
        log "$tracker: did not come up; its output:"
        sed 's/^/    /' "$WORK/$tracker.log" >&2
        return
    fi
    sleep 1
    R[$tracker.idle.rss_kb]=$(memory_kb "$SERVER_PID" VmRSS)

    # Each step runs while the server lives; a crash goes on record with its
    # exit status and last line of output. Full scrapes come last: Debian's
    # build crashes on them (gzip or plain) with a million torrents.
    local step status
    for step in "${STEPS[@]}"; do
        skipped "$tracker" "$step" >/dev/null && continue
        LOAD_ERROR=
        case $step in
        udp)
            log "$tracker: UDP prefill of $PEERS peers, then ${DURATION}s of announces"
            load "$tracker" udp --target "$target" "${SWARM[@]}" --prefill \
                --in-flight "$UDP_IN_FLIGHT" --duration "$DURATION" \
                --server-pid "$SERVER_PID" || true
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
        wrk | wrk-keepalive)
            log "$tracker: HTTP under wrk, $([[ $step == wrk ]] && echo 'Connection: close' || echo 'keep-alive')"
            wrk_load "$tracker" "$step" "$target"
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

# Runs wrk against the server on TARGET for the phase's duration and files
# its figures under R[tracker.SCENARIO.*]: wrk for one request per
# connection (each request says Connection: close), wrk-keepalive for
# connections kept open where the server allows. Server CPU is read from
# /proc across the run and divided by wrk's count of responses; the server
# core's busy % is read across the same window (window_mark).
wrk_load() {
    local tracker=$1 scenario=$2 target=$3 output from to figures pair
    local -a window=()
    local -a command=("$WRK" -t1 -c"$CLIENTS" -d"${DURATION}s" --timeout 5s --latency
        -s "$ROOT/bench/wrk-announce.lua")
    [[ $scenario == wrk ]] && command+=(-H 'Connection: close')
    command+=("http://$target/" -- "$WORK/wrk/paths.txt")
    COMMANDS+=("$(quoted taskset -c "$LOAD_CORE" wrk "${command[@]:1}")")
    from=$(window_mark)
    if ! output=$("${IN_NET[@]}" taskset -c "$LOAD_CORE" "${command[@]}" 2>&1); then
        LOAD_ERROR="wrk failed: ${output//$'\n'/ }"
        return
    fi
    to=$(window_mark)
    printf '%s\n' "$output" | sed "s/^/  [$tracker] /" >&2
    # Latencies come as 1.23us, 4.56ms or 1.20s. Errors are non-2xx answers
    # and failed connects, writes and timeouts. wrk counts a read that finds
    # the connection closed as an error too, after counting the answer
    # before it: that is a tracker closing without saying so, as upstream
    # does after each answer, filed apart as closes.
    mapfile -t window < <(window_vars "$from" "$to")
    figures=$(awk "${window[@]}" '
        function us(text) {
            if (text ~ /us$/) return text + 0
            if (text ~ /ms$/) return 1000 * text
            return 1e6 * text
        }
        / requests in / { responses = $1; seconds = $4 + 0 }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        /Non-2xx or 3xx responses:/ { errors += $NF }
        /Socket errors:/ { gsub(",", ""); errors += $4 + $8 + $10; closes = $6 }
        END {
            if (!responses || !seconds) exit 1
            printf "rps=%.0f cpu_us_per_response=%.2f server_busy_pct=%.0f core_busy_pct=%.0f p50_us=%.1f p99_us=%.1f errors=%d closes=%d",
                responses / seconds, 1e6 * cpu / responses, 100 * cpu / wall, core_busy_pct, p50, p99, errors, closes
        }' <<<"$output") || { LOAD_ERROR="no figures in wrk's output"; return; }
    for pair in $figures; do
        R[$tracker.$scenario.${pair%%=*}]=${pair#*=}
    done
}

# aquatic_udp_load_test's configuration against 127.0.0.1:PORT: its defaults
# (`aquatic_udp_load_test -p` prints them) written out, one worker on its one
# core, this sitting's swarm size, and long enough for the window.
aquatic_load_config() {
    local port=$1
    cat <<EOF
server_address = "127.0.0.1:$port"
log_level = "error"
workers = 1
duration = $((CROSS_WARM + CROSS_SPAN + 30))
summarize_last = 0
extra_statistics = false

[network]
multiple_client_ipv4s = true
sockets_per_worker = 4
recv_buffer = 8000000

[requests]
number_of_torrents = $TORRENTS
number_of_peers = $PEERS
scrape_max_torrents = 10
announce_peers_wanted = 30
weight_connect = 50
weight_announce = 50
weight_scrape = 1
peer_seeder_probability = 0.75
EOF
}

# CPU time of a process and all its threads, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Busy and total clock ticks, "BUSY TOTAL", of /proc/stat's line NAME: cpu,
# every core added up, or cpuN, core N alone. Busy is every column but idle
# and iowait (guest time is in user and nice already).
stat_ticks() {
    awk -v name="$1" '$1 == name {
        for (i = 2; i <= 9; i++) total += $i
        print total - $5 - $6, total
        exit
    }' /proc/stat
}

# One end of a window measured in bash, on one line: the server's CPU ticks,
# its core's busy and total ticks (stat_ticks cpu$SERVER_CORE) and the time,
# read one after the other: two files, no polling.
window_mark() {
    echo "$(cpu_ticks "$SERVER_PID") $(stat_ticks "cpu$SERVER_CORE") ${EPOCHREALTIME/,/.}"
}

# awk options, one a line, that give the window between window_marks FROM
# and TO as cpu (the server's CPU seconds), wall (seconds) and core_busy_pct
# (how busy the server's core was, with whatever else ran on it).
window_vars() {
    awk -v from="$1" -v to="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        split(from, a, " "); split(to, b, " ")
        total = b[3] - a[3]
        printf "-v\ncpu=%.6f\n-v\nwall=%.6f\n-v\ncore_busy_pct=%.4f\n",
            (b[1] - a[1]) / hz, b[4] - a[4], total ? 100 * (b[2] - a[2]) / total : 0
    }'
}

# Runs TRACKER (NAMES' INDEX) afresh under aquatic_udp_load_test and files
# its figures under R[KEY.xudp.*], KEY being TRACKER unless given (a pair's,
# ours@2 say). The load generator reports the mean rate of each 5 s; the
# server's CPU time, and its core's busy and total time, are read when the
# report that ends the warm-up appears and when the last one of the window
# does, and the server's is divided by the responses of the reports between.
cross_check() {
    local tracker=$1 index=$2 key=${3:-$1} port config output load_pid reports=0
    local from='' to='' deadline
    local first=$((CROSS_WARM / 5)) last=$(((CROSS_WARM + CROSS_SPAN) / 5))
    port=$((BASE_PORT + 2 * index))
    port_free "$port" || die "port $port is in use"
    log "$key: cross-check under aquatic_udp_load_test, ${CROSS_WARM}s warm-up, ${CROSS_SPAN}s measured"
    if ! start_server "$tracker" "$port" "$WORK/$key.cross-check.log"; then
        R[$key.xudp.failed]="did not come up"
        return
    fi
    config=$WORK/aquatic-load.$port.toml
    output=$WORK/aquatic-load.$key.out
    aquatic_load_config "$port" >"$config"
    COMMANDS+=("$(quoted taskset -c "$LOAD_CORE" aquatic_udp_load_test -c "$config")  # $key")
    # Its output is read as it comes, line by line: polling would take CPU
    # time, and some of it on the server's core.
    local line fd
    exec {fd}< <("${IN_NET[@]}" taskset -c "$LOAD_CORE" "$AQUATIC_LOAD" -c "$config" 2>&1)
    load_pid=$!
    : >"$output"
    deadline=$((SECONDS + CROSS_WARM + CROSS_SPAN + 60))
    while ((SECONDS < deadline)) && read -r -t 30 -u "$fd" line; do
        printf '%s\n' "$line" >>"$output"
        [[ $line == 'Responses in:'* ]] || continue
        reports=$((reports + 1))
        server_alive || break
        if ((reports == first)); then
            from=$(window_mark)
        elif ((reports == last)); then
            to=$(window_mark)
            break
        fi
    done
    kill "$load_pid" 2>/dev/null || true
    exec {fd}<&-
    if [[ -z $to ]]; then
        R[$key.xudp.failed]="stopped after $reports of $last reports"
        server_alive || R[$key.xudp.failed]+="; the server died: $(tail -n 1 "$WORK/$key.cross-check.log")"
        log "$key: cross-check failed: ${R[$key.xudp.failed]}"
        stop_server
        return
    fi
    local figures pair
    local -a window=()
    mapfile -t window < <(window_vars "$from" "$to")
    figures=$(awk -v first="$first" -v last="$last" "${window[@]}" '
        /^Requests out:/ { n++; if (n > first && n <= last) requests += $3 }
        /^Responses in:/ { m++; if (m > first && m <= last) responses += $3 }
        /- Error responses:/ { e++; if (e > first && e <= last) errors += $4 }
        END {
            reports = last - first
            rate = responses / reports
            printf "rps=%.0f cpu_us_per_response=%.2f server_busy_pct=%.1f core_busy_pct=%.1f answered_pct=%.1f errors_per_s=%.0f",
                rate, 1e6 * cpu / (rate * wall), 100 * cpu / wall, core_busy_pct,
                100 * responses / requests, errors / reports
        }' "$output")
    for pair in $figures; do
        R[$key.xudp.${pair%%=*}]=${pair#*=}
    done
    log "$key: cross-check $figures"
    stop_server
}

# The UDP phase alone on TRACKER (NAMES' INDEX), started afresh and
# prefilled, its figures filed under R[KEY.udp.*].
udp_phase() {
    local tracker=$1 index=$2 key=$3 port
    port=$((BASE_PORT + 2 * index))
    port_free "$port" || die "port $port is in use"
    start_server "$tracker" "$port" "$WORK/$key.log" || return 0
    load "$key" udp --target "127.0.0.1:$port" "${SWARM[@]}" --prefill \
        --in-flight "$UDP_IN_FLIGHT" --duration "$DURATION" \
        --server-pid "$SERVER_PID" || true
    stop_server
}

# The phases over IPv6 on TRACKER (NAMES' INDEX), on [::1] with clients in
# fd77::/64, started afresh: UDP, prefilled, then HTTP one request per
# connection and keep-alive on the same swarms. Each scenario's figures go
# under R[TRACKER.SCENARIO6.*] (udp6 with idle and peak RSS, http6,
# http-keepalive6).
ipv6_phase() {
    local tracker=$1 index=$2 port key
    port=$((BASE_PORT + 2 * index))
    port_free "$port" || die "port $port is in use"
    log "$tracker: UDP over IPv6, prefill of $PEERS peers, then ${DURATION}s of announces"
    if ! start_server "$tracker" "$port" "$WORK/$tracker.ipv6.log" ::1; then
        R[$tracker.udp6.failed]="did not come up: $LOAD_ERROR"
        return 0
    fi
    sleep 1
    R[$tracker.udp6.idle_rss_kb]=$(memory_kb "$SERVER_PID" VmRSS)
    load "$tracker@ipv6" udp --target "[::1]:$port" "${SWARM[@]}" --prefill \
        --in-flight "$UDP_IN_FLIGHT" --duration "$DURATION" \
        --server-pid "$SERVER_PID" || R[$tracker.udp6.failed]=$LOAD_ERROR
    R[$tracker.udp6.hwm_kb]=$(memory_kb "$SERVER_PID" VmHWM 2>/dev/null || true)
    if ! skipped "$tracker" http6 >/dev/null && server_alive; then
        log "$tracker: HTTP over IPv6, one request per connection, then keep-alive"
        load "$tracker@ipv6" http --target "[::1]:$port" "${SWARM[@]}" --duration "$DURATION" \
            --server-pid "$SERVER_PID" || R[$tracker.http6.failed]=$LOAD_ERROR
        load "$tracker@ipv6" http --keep-alive --target "[::1]:$port" "${SWARM[@]}" \
            --duration "$DURATION" --server-pid "$SERVER_PID" ||
            R[$tracker.http-keepalive6.failed]=$LOAD_ERROR
    fi
    server_alive || R[$tracker.udp6.failed]="the server died: $(tail -n 1 "$WORK/$tracker.ipv6.log")"
    local rest
    for key in "${!R[@]}"; do
        [[ $key == "$tracker@ipv6."* ]] || continue
        rest=${key#"$tracker@ipv6."}
        R[$tracker.${rest%%.*}6.${rest#*.}]=${R[$key]}
    done
    stop_server
}

# Whether ours and upstream run in alternating pairs: both measured, and
# more than one pair asked for.
paired() { ((UDP_PAIRS > 1)) && [[ -n ${KIND[ours]:-} && -n ${KIND[upstream]:-} ]]; }

# SCENARIO again for ours and upstream, alternately, each restarted every
# time: pairs 2 to UDP_PAIRS, filed under R[ours@N.SCENARIO.*] and
# R[upstream@N.SCENARIO.*] (pair 1 is the run with the other trackers).
# SCENARIO is udp, the UDP phase with its prefill (udp_phase), or xudp, the
# cross-check under aquatic_udp_load_test (cross_check). The machine drifts
# over minutes, and so does a ratio of two runs minutes apart; the pairs show
# how far within one sitting, and their median is steadier than any one of
# them.
udp_pairs() {
    local scenario=$1 pair tracker run=udp_phase what='UDP phase'
    [[ $scenario == udp ]] || run=cross_check what=cross-check
    for ((pair = 2; pair <= UDP_PAIRS; pair++)); do
        for tracker in ours upstream; do
            log "$tracker: $what again, pair $pair of $UDP_PAIRS"
            "$run" "$tracker" "$(index_of "$tracker")" "$tracker@$pair"
        done
    done
}

# NAMES' index of TRACKER.
index_of() {
    local i
    for i in "${!NAMES[@]}"; do
        [[ ${NAMES[$i]} != "$1" ]] || echo "$i"
    done
}

# Share of both cores that other processes used over two seconds: the report
# says how quiet the machine was.
background_load() {
    local busy0 total0 busy1 total1
    read -r busy0 total0 < <(stat_ticks cpu)
    sleep 2
    read -r busy1 total1 < <(stat_ticks cpu)
    awk -v busy="$((busy1 - busy0))" -v total="$((total1 - total0))" \
        'BEGIN { printf "%.0f", total ? 100 * busy / total : 0 }'
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
if paired; then
    udp_pairs udp
fi
for i in "${!NAMES[@]}"; do
    skipped "${NAMES[$i]}" udp6 >/dev/null || ipv6_phase "${NAMES[$i]}" "$i"
done
if [[ -n $AQUATIC_LOAD ]]; then
    # Debian's tracker allows the cross-check's torrents instead.
    [[ -z ${KIND[debian]:-} ]] || FLAGS[debian]="-f $WORK/debian/cross-check.conf"
    for i in "${!NAMES[@]}"; do
        cross_check "${NAMES[$i]}" "$i"
    done
    if paired; then
        udp_pairs xudp
    fi
fi

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

# Points of a core that something besides the server and the load may take
# before a run is marked disturbed.
DISTURBED_POINTS=10
# Whether the run RUN (its key prefix, TRACKER.SCENARIO) was disturbed: its
# server's core busier than the server by over DISTURBED_POINTS, or other
# processes that busy, where the phase measured only those.
disturbed() {
    local run=$1 gap
    if [[ -n ${R[$run.core_busy_pct]:-} ]]; then
        gap=$(calc '"%.1f", a - b' "$run.core_busy_pct" "$run.server_busy_pct")
    else
        gap=${R[$run.others_busy_pct]:-0}
    fi
    awk -v gap="$gap" -v most="$DISTURBED_POINTS" 'BEGIN { exit !(gap + 0 > most) }'
}
# RUN's server's core busy %, marked when the run was disturbed.
core_busy_cell() {
    printf '%s' "$(v "$1.core_busy_pct")"
    if disturbed "$1"; then printf ' (disturbed)'; fi
}

# A row or cell for a step the tracker skips: the reason, then EMPTY blank
# cells.
skipped_cells() {
    local reason=$1 empty=${2:-0}
    printf 'n/a (%s) |' "$reason"
    for ((; empty > 0; empty--)); do printf ' |'; done
}

load_rows() {
    local scenario=$1 t reason
    echo "| tracker | responses/s | server CPU µs/response | server busy % | loadgen busy % | others busy % | p50 µs | p99 µs | p99.9 µs | errors | timeouts | reconnects |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${NAMES[@]}"; do
        if reason=$(skipped "$t" "$scenario"); then
            echo "| $t | $(skipped_cells "$reason" 10)"
            continue
        fi
        if [[ -n ${R[$t.$scenario.failed]:-} && -z ${R[$t.$scenario.rps]:-} ]]; then
            echo "| $t | failed: ${R[$t.$scenario.failed]//|/\\|} | | | | | | | | | | |"
            continue
        fi
        echo "| $t | $(v "$t.$scenario.rps") | $(v "$t.$scenario.cpu_us_per_response") |" \
            "$(v "$t.$scenario.server_busy_pct") | $(v "$t.$scenario.loadgen_busy_pct") |" \
            "$(v "$t.$scenario.others_busy_pct") |" \
            "$(v "$t.$scenario.p50_us") | $(v "$t.$scenario.p99_us") | $(v "$t.$scenario.p999_us") |" \
            "$(v "$t.$scenario.errors") | $(v "$t.$scenario.timeouts") | $(v "$t.$scenario.reconnects") |"
    done
}

# The pairs worth a ratio, "A B" a line: ours against every other tracker,
# and every other tracker against the stateless floor; without ours, every
# pair. Nothing is divided by a stateless tracker's figures but the floors'
# (the batched floor's by ours only).
ratio_pairs() {
    local i j a b
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        for ((j = 0; j < ${#NAMES[@]}; j++)); do
            a=${NAMES[$i]} b=${NAMES[$j]}
            if ((i == j)) || has "$a" stateless; then continue; fi
            if [[ $a == ours ]] || [[ $b == floor ]] ||
                { [[ -z ${KIND[ours]:-} ]] && ((i < j)); }; then
                echo "$a $b"
            fi
        done
    done
}

# A's figure for STEP.KEY over B's, or why there is none: the step is one
# either skips, or memory against a tracker that keeps none.
ratio_cell() {
    local a=$1 b=$2 step=$3 key=$4 reason
    if reason=$(skipped "$a" "$step") || reason=$(skipped "$b" "$step"); then
        printf 'n/a (%s)' "$reason"
    elif [[ $key == *_kb ]] && has "$b" stateless; then
        printf 'n/a (stateless)'
    else
        ratio "$a.$step.$key" "$b.$step.$key"
    fi
}

# The issue's targets read from this sitting: against upstream as measured
# (--upstream, built by bench/upstream.sh), and, for a sitting without it or
# as a cross-check, against upstream estimated from the trackers that were
# measured, by the issue's own anchors: upstream is 1.55 times cheaper per
# UDP request than Debian's build, aquatic_udp 7.7 µs where upstream is 8.5,
# "0.65 times upstream" is "about 1.2 times the floor", and upstream's peak
# RSS at 1M torrents / 2M peers is 104 MB (the issue's table; upstream as
# built here takes more, see the footprint table).
UPSTREAM_PER_DEBIAN=1.55
UPSTREAM_PER_AQUATIC=$(awk 'BEGIN { printf "%.4f", 8.5 / 7.7 }')
UPSTREAM_PEAK_RSS_MB=104

# One target row: what, the bound, the figure (awk expression over a and b,
# the R values named by KEY_A and KEY_B), and whether it must be at most
# (le) or at least (ge) the bound.
target_row() {
    local what=$1 bound=$2 expr=$3 key_a=$4 key_b=$5 sense=$6 exact figure met
    # Judged unrounded: 0.654 misses a 0.65 bound even though it prints as
    # 0.65, so a figure that rounds onto its bound gets a third decimal.
    exact=$(calc "\"%.4f\", $expr" "$key_a" "$key_b")
    if [[ $exact == n/a ]]; then
        figure=n/a
        met='not measured'
    else
        figure=$(awk -v f="$exact" -v b="$bound" 'BEGIN {
            r = sprintf("%.2f", f); printf (r + 0 == b + 0 ? "%.3f" : "%.2f"), f }')
        if awk -v f="$exact" -v b="$bound" -v s="$sense" \
            'BEGIN { exit !((s == "le" && f <= b) || (s == "ge" && f >= b)) }'; then
            met=yes
        else
            met=no
        fi
    fi
    echo "| $what | $([[ $sense == le ]] && printf '≤' || printf '≥') $bound | $figure | $met |"
}

# The UDP targets' rows, from SCENARIO's figures (udp, or xudp: the
# cross-check's), and from its alternating pairs' median, where there is
# one, named after SOURCE.
udp_target_rows() {
    local scenario=$1 source=$2 u=$UPSTREAM_PER_DEBIAN q=$UPSTREAM_PER_AQUATIC
    if [[ -n ${KIND[upstream]:-} ]]; then
        target_row "UDP µs/response, ours / upstream (measured)" 0.65 \
            "a / b" "ours.$scenario.cpu_us_per_response" "upstream.$scenario.cpu_us_per_response" le
    fi
    target_row "UDP µs/response, ours / upstream, upstream = debian / $u" 0.65 \
        "a / (b / $u)" "ours.$scenario.cpu_us_per_response" "debian.$scenario.cpu_us_per_response" le
    target_row "UDP µs/response, ours / upstream, upstream = aquatic × $q" 0.65 \
        "a / (b * $q)" "ours.$scenario.cpu_us_per_response" "aquatic.$scenario.cpu_us_per_response" le
    target_row "UDP µs/response, ours / floor" 1.2 \
        "a / b" "ours.$scenario.cpu_us_per_response" "floor.$scenario.cpu_us_per_response" le
    if [[ -n ${R[$scenario.pairs.median]:-} ]]; then
        target_row "UDP µs/response, ours / upstream ($source, median of ${R[$scenario.pairs.count]} alternating pairs)" 0.65 \
            "a" "$scenario.pairs.median" "" le
    fi
}

# The HTTP targets' rows, from the figures of the scenarios CLOSE (one
# request per connection) and KEEP (keep-alive): loadgen's or wrk's.
http_target_rows() {
    local close=$1 keep=$2 u=$UPSTREAM_PER_DEBIAN
    if [[ -n ${KIND[upstream]:-} ]]; then
        target_row "HTTP µs/response, one request per connection, ours / upstream (measured)" 0.7 \
            "a / b" "ours.$close.cpu_us_per_response" "upstream.$close.cpu_us_per_response" le
        target_row "HTTP responses per core-second, ours with keep-alive / upstream (measured, one per connection)" 3 \
            "b / a" "ours.$keep.cpu_us_per_response" "upstream.$close.cpu_us_per_response" ge
    fi
    # Debian's build is IPv4 only: over IPv6 there is nothing to scale.
    [[ -n ${KIND[debian]:-} ]] && skipped debian "$close" >/dev/null && return 0
    target_row "HTTP µs/response, one request per connection, ours / upstream, upstream = debian / $u" 0.7 \
        "a / (b / $u)" "ours.$close.cpu_us_per_response" "debian.$close.cpu_us_per_response" le
    target_row "HTTP responses per core-second, ours with keep-alive / upstream (one per connection), upstream = debian / $u" 3 \
        "(b / $u) / a" "ours.$keep.cpu_us_per_response" "debian.$close.cpu_us_per_response" ge
}

# How far the UDP bound can be reached under SCENARIO's load: the stateless
# floors' own cost against upstream's. The issue's anchors put the floor at
# 4.5 / 8.5 = 0.53 of upstream; where the kernel's share per datagram is
# larger, even a responder that keeps no state sits closer to upstream, and
# no tracker costs less than the batched floor, which does nothing but move
# datagrams.
udp_bound_reach() {
    local scenario=$1 plain batched
    plain=$(ratio "floor.$scenario.cpu_us_per_response" "upstream.$scenario.cpu_us_per_response")
    batched=$(ratio "floor-batched.$scenario.cpu_us_per_response" "upstream.$scenario.cpu_us_per_response")
    [[ $plain != n/a || $batched != n/a ]] || return 0
    echo
    echo "Reach of the UDP bound (0.65 × upstream) under this load: against upstream's"
    echo "µs per response, the floor costs $plain and the batched floor $batched (the"
    echo "issue's anchors: floor 4.5 / 8.5 = 0.53); ours costs"
    echo "$(ratio "ours.$scenario.cpu_us_per_response" "floor.$scenario.cpu_us_per_response") × the floor and" \
        "$(ratio "ours.$scenario.cpu_us_per_response" "floor-batched.$scenario.cpu_us_per_response") × the batched floor."
    if [[ $batched != n/a ]] && awk -v r="$batched" 'BEGIN { exit !(r > 0.65) }'; then
        echo "The batched floor is above 0.65 here: no responder on this machine's"
        echo "network stack meets the bound under this load, however little it does."
    fi
}

# Pair N's R key prefix for TRACKER: the main phase is pair 1.
pair_key() { [[ $2 == 1 ]] && echo "$1" || echo "$1@$2"; }

# Files the median of SCENARIO's alternating pairs' ratios (udp_pairs), ours
# / upstream µs per response, under R[SCENARIO.pairs.median] (and how many
# pairs had both figures under R[SCENARIO.pairs.count]).
udp_pairs_median() {
    local scenario=$1 pair figure
    local -a ratios=()
    for ((pair = 1; pair <= UDP_PAIRS; pair++)); do
        figure=$(calc '"%.4f", a / b' "$(pair_key ours "$pair").$scenario.cpu_us_per_response" \
            "$(pair_key upstream "$pair").$scenario.cpu_us_per_response")
        [[ $figure == n/a ]] || ratios+=("$figure")
    done
    ((${#ratios[@]} > 1)) || return 0
    R[$scenario.pairs.count]=${#ratios[@]}
    R[$scenario.pairs.median]=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '
        { v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
}

# SCENARIO's alternating pairs' table: each pair's µs per response and
# ratio, pair 1 said to be FIRST; then their median.
udp_pair_rows() {
    local scenario=$1 first=$2 pair ours upstream
    local -a marks
    echo "| pair | ours µs/response | upstream µs/response | ours / upstream | disturbed runs |"
    echo "|---|---:|---:|---:|---|"
    for ((pair = 1; pair <= UDP_PAIRS; pair++)); do
        ours=$(pair_key ours "$pair").$scenario
        upstream=$(pair_key upstream "$pair").$scenario
        marks=()
        if disturbed "$ours"; then marks+=(ours); fi
        if disturbed "$upstream"; then marks+=(upstream); fi
        echo "| $pair$([[ $pair == 1 ]] && echo " ($first)") | $(v "$ours.cpu_us_per_response") |" \
            "$(v "$upstream.cpu_us_per_response") |" \
            "$(ratio "$ours.cpu_us_per_response" "$upstream.cpu_us_per_response") | ${marks[*]:-none} |"
    done
    if [[ -n ${R[$scenario.pairs.median]:-} ]]; then
        echo
        echo "Median of the ${R[$scenario.pairs.count]} ratios: $(calc '"%.2f", a' "$scenario.pairs.median")" \
            "(disturbed runs included; a run is disturbed when something besides the server" \
            "and the load took over $DISTURBED_POINTS points of a core)."
    fi
}

target_rows() {
    if [[ -z ${KIND[ours]:-} ]]; then
        echo "Ours was not measured: no targets to read."
        return
    fi
    echo "| target | bound | this sitting | met |"
    echo "|---|---:|---:|---|"
    udp_target_rows udp measured
    http_target_rows http http-keepalive
    if [[ -n ${KIND[upstream]:-} ]]; then
        target_row "peak RSS after $TORRENTS torrents / $PEERS peers, ours / upstream (measured)" 0.6 \
            "a / b" ours.full.hwm_kb upstream.full.hwm_kb le
    fi
    # The anchor holds at the issue's size only: a smaller sitting (--quick)
    # would meet it whatever the tracker took.
    if ((TORRENTS == 1000000 && PEERS == 2000000)); then
        target_row "peak RSS after $TORRENTS torrents / $PEERS peers, MB (0.6 × the issue's anchor for upstream, $UPSTREAM_PEAK_RSS_MB MB)" \
            "$(awk -v r="$UPSTREAM_PEAK_RSS_MB" 'BEGIN { printf "%.1f", 0.6 * r }')" \
            "a / 1024" ours.full.hwm_kb "" le
    fi
    # A heap on huge pages grows by 2 MB at a time, so the fixed buffer
    # (about 0.5 MB with gzip's state) can show as one more huge page.
    target_row "full scrape of every torrent, gzip: extra RSS, MB (a fixed buffer, plus at most one 2 MB huge page of heap)" 2.5 \
        "a / 1024" ours.fullscrape-gzip.extra_rss_kb "" le
    target_row "full scrape of every torrent, plain: extra RSS, MB (a fixed buffer, plus at most one 2 MB huge page of heap)" 2.5 \
        "a / 1024" ours.fullscrape.extra_rss_kb "" le
    udp_bound_reach udp
}

# A table of ratios over ratio_pairs, one column per TITLE=STEP:KEY.
ratio_table() {
    local a b column spec titles='| A / B |' rule='|---|' row
    for column in "$@"; do
        titles+=" ${column%%=*} |" rule+='---:|'
    done
    echo "$titles"
    echo "$rule"
    while read -r a b; do
        row="| $a / $b |"
        for column in "$@"; do
            spec=${column#*=}
            row+=" $(ratio_cell "$a" "$b" "${spec%%:*}" "${spec#*:}") |"
        done
        echo "$row"
    done < <(ratio_pairs)
}

ratio_rows() {
    if [[ -z $(ratio_pairs) ]]; then
        echo "One tracker only: nothing to compare."
        return
    fi
    ratio_table "UDP µs/resp=udp:cpu_us_per_response" "HTTP µs/resp=http:cpu_us_per_response" \
        "keep-alive µs/resp=http-keepalive:cpu_us_per_response" "UDP resp/s=udp:rps" \
        "peak RSS=full:hwm_kb" "idle RSS=idle:rss_kb" "full scrape gzip time=fullscrape-gzip:ttlb_ms"
}

# What the tables of the phases timed in bash (window_mark) say in their
# column *server's core busy %*.
core_busy_note() {
    echo "*Server's core busy %* is how busy core $SERVER_CORE, the server's, was across the same"
    echo "window, from its line of /proc/stat (every column but idle and iowait). Less the"
    echo "server's own busy %, it is time that other processes, or interrupts not charged"
    echo "to the server, took on the server's core: where the gap is over $DISTURBED_POINTS points,"
    echo "something else held the core, and the row is marked *disturbed*: not to be trusted."
}

cross_check_rows() {
    local t
    echo "| tracker | responses/s | server CPU µs/response | server busy % | server's core busy % | answered % | error responses/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for t in "${NAMES[@]}"; do
        if [[ -n ${R[$t.xudp.failed]:-} ]]; then
            echo "| $t | failed: ${R[$t.xudp.failed]} | | | | | |"
            continue
        fi
        echo "| $t | $(v "$t.xudp.rps") | $(v "$t.xudp.cpu_us_per_response") |" \
            "$(v "$t.xudp.server_busy_pct") | $(core_busy_cell "$t.xudp") |" \
            "$(v "$t.xudp.answered_pct") | $(v "$t.xudp.errors_per_s") |"
    done
    echo
    ratio_table "UDP µs/resp=xudp:cpu_us_per_response" "UDP resp/s=xudp:rps"
    if paired; then
        echo
        echo "Ours and upstream again under this load, alternately, each tracker restarted"
        echo "every time, $UDP_PAIRS pairs in all (the first is the run in the table above):"
        echo
        udp_pair_rows xudp "the run above"
    fi
    if [[ -n ${KIND[ours]:-} ]]; then
        echo
        echo "| target | bound | cross-check | met |"
        echo "|---|---:|---:|---|"
        udp_target_rows xudp cross-check
        udp_bound_reach xudp
    fi
}

# The HTTP cross-check's tables: each tracker under wrk, one request per
# connection and keep-alive; the ratios; the HTTP targets read from them.
wrk_rows() {
    local scenario t reason
    for scenario in wrk wrk-keepalive; do
        if [[ $scenario == wrk ]]; then
            echo "One request per connection (\`Connection: close\`):"
        else
            echo "Keep-alive, where the tracker keeps connections open:"
        fi
        echo
        echo "| tracker | responses/s | server CPU µs/response | server busy % | server's core busy % | p50 µs | p99 µs | errors | unannounced closes |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        for t in "${NAMES[@]}"; do
            if reason=$(skipped "$t" "$scenario"); then
                echo "| $t | $(skipped_cells "$reason" 7)"
            elif [[ -n ${R[$t.$scenario.failed]:-} ]]; then
                echo "| $t | failed: ${R[$t.$scenario.failed]} | | | | | | | |"
            else
                echo "| $t | $(v "$t.$scenario.rps") | $(v "$t.$scenario.cpu_us_per_response") |" \
                    "$(v "$t.$scenario.server_busy_pct") | $(core_busy_cell "$t.$scenario") |" \
                    "$(v "$t.$scenario.p50_us") | $(v "$t.$scenario.p99_us") |" \
                    "$(v "$t.$scenario.errors") | $(v "$t.$scenario.closes") |"
            fi
        done
        echo
    done
    ratio_table "HTTP µs/resp=wrk:cpu_us_per_response" \
        "keep-alive µs/resp=wrk-keepalive:cpu_us_per_response" \
        "HTTP resp/s=wrk:rps" "keep-alive resp/s=wrk-keepalive:rps"
    if [[ -n ${KIND[ours]:-} ]]; then
        echo
        echo "| target | bound | cross-check | met |"
        echo "|---|---:|---:|---|"
        http_target_rows wrk wrk-keepalive
    fi
}

scrape_cell() {
    local t=$1 s=$2 cell reason
    if reason=$(skipped "$t" "$s"); then
        printf 'n/a (%s)' "$reason"
        return
    fi
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

# A full scrape's extra RSS; blank where the tracker skips it.
extra_rss_cell() {
    skipped "$1" "$2" >/dev/null || mb "$1.$2.extra_rss_kb"
}

# What a tracker holds for the prefill's swarms: peak RSS less idle RSS,
# per peer and per torrent (the same bytes divided two ways); over IPv4
# unless R keys of the peak and idle RSS are given.
state_cell() {
    local t=$1 peak=${2:-$1.full.hwm_kb} idle=${3:-$1.idle.rss_kb}
    if has "$t" stateless; then
        printf 'n/a (stateless)'
        return
    fi
    calc "\"%.0f B / %.0f B\", (a - b) * 1024 / $PEERS, (a - b) * 1024 / $TORRENTS" \
        "$peak" "$idle"
}

# The phases over IPv6: each tracker's figures, the ratios, the memory its
# swarms take (an IPv6 peer's address is 16 bytes where an IPv4 one's is 4),
# and the targets read from them.
ipv6_rows() {
    local t reason scenario
    local -A title=([udp6]='UDP announce' [http6]='HTTP announce, one request per connection'
        [http-keepalive6]='HTTP announce, keep-alive')
    for scenario in udp6 http6 http-keepalive6; do
        echo "### ${title[$scenario]} over IPv6"
        echo
        load_rows "$scenario"
        echo
    done
    echo "### Ratios, memory and targets over IPv6"
    echo
    ratio_table "UDP µs/resp=udp6:cpu_us_per_response" "UDP resp/s=udp6:rps" \
        "HTTP µs/resp=http6:cpu_us_per_response" \
        "keep-alive µs/resp=http-keepalive6:cpu_us_per_response" "peak RSS=udp6:hwm_kb"
    echo
    echo "| tracker | idle RSS | peak RSS after prefill | state per peer / per torrent | peak RSS, IPv6 / IPv4 |"
    echo "|---|---:|---:|---:|---:|"
    for t in "${NAMES[@]}"; do
        if reason=$(skipped "$t" udp6); then
            echo "| $t | $(skipped_cells "$reason" 3)"
        elif has "$t" stateless; then
            echo "| $t | n/a (stateless) | | | |"
        else
            echo "| $t | $(mb "$t.udp6.idle_rss_kb") | $(mb "$t.udp6.hwm_kb") |" \
                "$(state_cell "$t" "$t.udp6.hwm_kb" "$t.udp6.idle_rss_kb") |" \
                "$(ratio "$t.udp6.hwm_kb" "$t.full.hwm_kb") |"
        fi
    done
    [[ -n ${KIND[ours]:-} ]] || return 0
    echo
    echo "| target (read over IPv6) | bound | this sitting | met |"
    echo "|---|---:|---:|---|"
    if [[ -n ${KIND[upstream]:-} ]]; then
        target_row "UDP µs/response, ours / upstream (measured)" 0.65 \
            "a / b" ours.udp6.cpu_us_per_response upstream.udp6.cpu_us_per_response le
    fi
    target_row "UDP µs/response, ours / floor" 1.2 \
        "a / b" ours.udp6.cpu_us_per_response floor.udp6.cpu_us_per_response le
    if [[ -n ${KIND[upstream]:-} ]]; then
        target_row "peak RSS after $TORRENTS torrents / $PEERS peers, ours / upstream (measured)" 0.6 \
            "a / b" ours.udp6.hwm_kb upstream.udp6.hwm_kb le
    fi
    http_target_rows http6 http-keepalive6
    udp_bound_reach udp6
}

footprint_rows() {
    local t binary startup
    echo "| tracker | binary | start-up (median) | idle RSS | peak RSS after prefill | state per peer / per torrent | full scrape plain | extra RSS | full scrape gzip | extra RSS |"
    echo "|---|---:|---:|---:|---:|---:|---|---:|---|---:|"
    for t in "${NAMES[@]}"; do
        binary=$(calc '"%.2f MB", a / 1048576' "$t.binary.bytes")
        startup="$(v "$t.startup.median_ms") ms"
        if has "$t" stateless; then
            binary='n/a (stateless)' startup='n/a (stateless)'
        fi
        echo "| $t | $binary | $startup | $(mb "$t.idle.rss_kb") | $(mb "$t.full.hwm_kb") | $(state_cell "$t") |" \
            "$(scrape_cell "$t" fullscrape) | $(extra_rss_cell "$t" fullscrape) |" \
            "$(scrape_cell "$t" fullscrape-gzip) | $(extra_rss_cell "$t" fullscrape-gzip) |"
    done
}

# How bench/aquatic.sh built the binary, from its BUILD-INFO, if it did.
aquatic_build() {
    [[ -f ${AQUATIC_INFO:-} ]] || return 0
    local features lock
    features=$(sed -n 's/^features: //p' "$AQUATIC_INFO")
    lock=$(sed -n 's/^lock changes: //p; s/^  (\(.*\))$/(\1)/p' "$AQUATIC_INFO" | paste -sd ' ')
    printf ", built by \`bench/aquatic.sh\` (commands below); features: %s; lock changes: %s" \
        "$features" "$lock"
}

tracker_rows() {
    local t
    for t in "${NAMES[@]}"; do
        case ${KIND[$t]}:$t in
        opentracker:ours) echo "- **ours**: \`${BINARY[$t]#"$ROOT"/}\` of this repository ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo 'no commit')), defaults." ;;
        opentracker:upstream)
            if [[ -f ${UPSTREAM_INFO:-} ]]; then
                echo "- **upstream**: \`${BINARY[$t]}\`, upstream opentracker from \`$(sed -n 's/^source: //p' "$UPSTREAM_INFO")\` (Debian's orig tarball of upstream's git b20b0b8, 2025-04) with \`$(sed -n 's/^libowfat: //p' "$UPSTREAM_INFO")\`, built by \`bench/upstream.sh\` (commands below): $(sed -n 's/^build: //p' "$UPSTREAM_INFO"); $(sed -n 's/^compiler: //p' "$UPSTREAM_INFO")."
            else
                echo "- **upstream**: \`${BINARY[$t]}\`, given with --upstream, run open."
            fi
            ;;
        opentracker:debian) echo "- **debian**: \`${BINARY[$t]}\` from the package $(dpkg-query -W -f='${Version}' opentracker 2>/dev/null) (upstream 2021, IPv4-only, whitelist mode), with a whitelist of the load's $TORRENTS info hashes." ;;
        aquatic:*)
            echo "- **$t**: \`${BINARY[$t]}\`, aquatic_udp $("${BINARY[$t]}" -v 2>/dev/null | head -n 1 || true)$(aquatic_build),"
            echo "  UDP only, one socket worker, with this configuration (all other keys at"
            echo "  their defaults, which \`aquatic_udp -p\` prints; the address is the measured run's):"
            echo
            echo '  ```toml'
            sed 's/^./  &/' "${CONFIG[$t]:-/dev/null}"
            echo '  ```'
            echo
            ;;
        floor:floor-batched) echo "- **$t**: \`loadgen floor --batched\`, the same stateless responder moving UDP in batches: one \`recvmmsg\` takes up to 32 requests, one \`sendmmsg\` sends their replies, as trackers that batch do (ours does). This is what this machine's network stack alone costs per response, so no tracker's µs/response can be lower; measured on UDP only." ;;
        floor:*) echo "- **$t**: \`loadgen floor\`, the load generator's stateless responder. UDP: one blocking \`recv_from\`/\`send_to\` loop that answers connects, announces (30 made-up peers, as many as the load asks for) and scrapes with fixed replies. HTTP: one blocking accept/read/write/close loop that answers every request head with one fixed announce reply (HTTP/1.0, so keep-alive clients reconnect). It keeps no state: no tracker that moves one datagram per system call does less per response on this machine's network stack, and the trackers' µs/response are read against it (the issue's floor)." ;;
        *) echo "- **$t**: \`${BINARY[$t]}\`." ;;
        esac
        [[ -z ${R[$t.died]:-} ]] ||
            echo "  **It died during the ${R[$t.died]} step**: \`${R[$t.${R[$t.died]}.crashed]:-}\`"
    done
}

machine_rows() {
    echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
    echo "- memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- kernel: $(uname -r); Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
    echo "- rustc: $(rustc --version 2>/dev/null || echo '?')"
    echo "- transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')" \
        "(in madvise mode this tracker puts its heap on them; README, Running as a service)"
    echo "- UDP receive buffers: net.core.rmem_default $(cat /proc/sys/net/core/rmem_default), rmem_max $(cat /proc/sys/net/core/rmem_max)"
    echo "- server pinned to core $SERVER_CORE, load generator to core $LOAD_CORE (taskset); loopback only"
    if ((HOST_NETWORK)); then
        echo "- in the host's network namespace, with its firewall rules and connection tracking"
    else
        echo "- in a fresh network namespace: loopback only, no firewall rules, no connection tracking"
    fi
    echo "- other processes used $BACKGROUND % of the CPUs in the two seconds before the run"
}

# The sections every report opens with.
machine_and_trackers() {
    echo "## Machine"
    echo
    machine_rows
    echo
    echo "## Trackers"
    echo
    tracker_rows
    echo
}

# The section every report ends with: the commands, to repeat the sitting.
commands_section() {
    echo "## Commands"
    echo
    echo "The load generator is \`${LOADGEN#"$ROOT"/}\`; \`$WORK\` was a temporary"
    echo "directory."
    echo
    echo '```'
    printf '%s\n' "${COMMANDS[@]}"
    echo '```'
}

# The report of a --scale run: what memory the prefill's swarms take.
scale_report() {
    local t
    echo "# Benchmarks at scale: memory"
    echo
    echo "Generated by \`$(quoted bench/run.sh "${INVOCATION[@]}")\` on $STARTED. The main report,"
    echo "\`docs/benchmarks.md\`, measures speed and memory at 1000000 torrents / 2000000 peers;"
    echo "this one measures memory alone, at a size a big public tracker reaches."
    echo
    machine_and_trackers
    echo "## Workload"
    echo
    echo "$TORRENTS torrents with Zipf-like popularity (exponent 1; every torrent has at"
    echo "least one peer), $PEERS peers with distinct (address, port) from $CLIENTS loopback"
    echo "source addresses, 75 % seeders. Each tracker, started afresh, takes a UDP prefill in"
    echo "which every peer announces once (at most $UDP_IN_FLIGHT requests in flight per client),"
    echo "then one second of re-announces. Peak RSS is VmHWM after that; the state per peer"
    echo "and per torrent is peak RSS less idle RSS, divided by the peers and by the torrents:"
    echo "the same bytes, two ways. *Not stored* counts prefill announces left unanswered,"
    echo "whose peers the tracker may not hold."
    echo
    echo "| tracker | idle RSS | peak RSS after prefill | state per peer / per torrent | prefill announces/s | not stored |"
    echo "|---|---:|---:|---:|---:|---:|"
    for t in "${NAMES[@]}"; do
        echo "| $t | $(mb "$t.idle.rss_kb") | $(mb "$t.full.hwm_kb") | $(state_cell "$t") |" \
            "$(v "$t.udp-prefill.rps") | $(v "$t.udp-prefill.abandoned") |"
    done
    echo
    if [[ -n $(ratio_pairs) ]]; then
        for t in "${NAMES[@]}"; do
            R[$t.full.state_kb]=$(calc '"%.0f", a - b' "$t.full.hwm_kb" "$t.idle.rss_kb")
        done
        ratio_table "peak RSS=full:hwm_kb" "state per peer=full:state_kb"
        echo
    fi
    commands_section
}

mkdir -p "$(dirname "$OUTPUT")"
udp_pairs_median udp
udp_pairs_median xudp
if ((SCALE)); then
    scale_report >"$OUTPUT"
    log "wrote $OUTPUT"
    exit 0
fi
{
    echo "# Benchmarks"
    echo
    echo "Generated by \`$(quoted bench/run.sh "${INVOCATION[@]}")\` on $STARTED."
    echo "Figures swing ±25–30 % between sittings on shared machines: compare only"
    echo "the ratios within one report."
    echo
    machine_and_trackers
    echo "## Workload"
    echo
    echo "$TORRENTS torrents with Zipf-like popularity (exponent 1; every torrent has at"
    echo "least one peer), $PEERS peers with distinct (address, port), 75 % seeders,"
    echo "numwant 30, 1 % scrapes. $CLIENTS virtual clients, each on its own 127.77.x.y source"
    echo "address, in a closed loop: over UDP each keeps $UDP_IN_FLIGHT requests in flight and the"
    echo "load generator moves datagrams in batches (sendmmsg/recvmmsg), so the server is"
    echo "what saturates; over HTTP each has one request in flight. Every tracker first gets a UDP"
    echo "prefill in which each peer announces once; the timed phases ($DURATION s each) then"
    echo "re-announce random peers. UDP clients reuse a connection id for 4 requests (at most"
    echo "60 s), so about one packet in five is a connect. Server CPU is utime + stime of all"
    echo "its threads from /proc/PID/stat across the timed phase, divided by all responses"
    echo "(connects included). Peak RSS is VmHWM after the UDP phase; a full scrape's extra"
    echo "RSS is VmHWM during it (reset through /proc/PID/clear_refs) minus VmRSS before."
    echo "Busy percentages are CPU time over wall time, of one core: the server, the load"
    echo "generator, and every other process on the machine (from /proc/stat). UDP-only"
    echo "trackers take the prefill, the UDP phase and the memory readings only."
    echo
    echo "## Ratios"
    echo
    echo "Each row divides the first tracker's figure by the second's: ours against each"
    echo "other tracker, and each tracker against the floor where it was measured (every"
    echo "pair when ours was not). Lower is better for µs/response, RSS and time; higher"
    echo "for responses/s."
    echo
    ratio_rows
    echo
    echo "## Against the targets"
    echo
    echo "The performance issue's targets, read from this sitting."
    if [[ -n ${KIND[upstream]:-} ]]; then
        echo "Rows marked *measured* divide by upstream opentracker itself, measured"
        echo "above; the others estimate upstream, as the issue's anchors do:"
    else
        echo "Upstream opentracker was not measured (\`--upstream\`), so its figures"
        echo "are estimated by the issue's anchors:"
    fi
    echo "upstream is $UPSTREAM_PER_DEBIAN times cheaper"
    echo "per UDP request than Debian's build, and aquatic_udp's 7.7 µs stand to"
    echo "upstream's 8.5. The estimated HTTP rows carry that UDP factor over, which"
    echo "flatters upstream where the kernel's share is larger."
    echo
    target_rows
    echo
    if paired; then
        echo "## UDP: ours and upstream in alternating pairs"
        echo
        echo "The UDP phase of ours and of upstream again, alternately, each tracker"
        echo "restarted and prefilled every time, $UDP_PAIRS pairs in all (the first is the"
        echo "phase measured with the others). Machines drift over minutes, and a ratio of"
        echo "two runs minutes apart with them; the pairs show how far within one sitting."
        echo
        udp_pair_rows udp "the UDP phase, in *UDP announce* below"
        echo
    fi
    echo "## Over IPv6"
    echo
    if [[ -n $IPV6_SKIPPED ]]; then
        echo "Not measured: $IPV6_SKIPPED."
    else
        echo "The UDP phase again over IPv6, each tracker started afresh on [::1] and"
        echo "prefilled: the same workload, its $CLIENTS clients sending from fd77::1 upwards"
        echo "(a prefix the namespace routes to loopback, as 127.0.0.0/8 is), so every reply"
        echo "carries 18-byte peers where IPv4's carry 6. Then, on the same swarms, the HTTP"
        echo "phases (one request per connection, and keep-alive) over IPv6 as well, their"
        echo "replies' peers in \`peers6\`. Trackers built for IPv4 only are skipped. The"
        echo "issue's targets are set over IPv4; they are read here as well."
        echo
        ipv6_rows
    fi
    echo
    if [[ -n $AQUATIC_LOAD ]]; then
        echo "## Cross-check: UDP under aquatic_udp_load_test"
        echo
        echo "The same trackers, each started afresh, under an independent load generator:"
        echo "\`${AQUATIC_LOAD}\` ($("$AQUATIC_LOAD" -v 2>/dev/null | head -n 1 || echo '?')), with its default"
        echo "workload at this sitting's size: $TORRENTS torrents, $PEERS peers announcing in turn, half"
        echo "the packets connects, 1 % scrapes, numwant 30, one worker on core $LOAD_CORE with 4"
        echo "connected sockets on 127.0.0.1 that send without waiting for answers (so a"
        echo "saturated server drops some: *answered %*). Its own 5 s reports give"
        echo "responses/s; server CPU is read across ${CROSS_SPAN} s of them, after a ${CROSS_WARM} s"
        echo "warm-up. Debian's tracker gets a whitelist of that load's hashes (\`loadgen aquatic-hashes\`)."
        echo
        core_busy_note
        echo
        cross_check_rows
        echo
    fi
    if [[ -n $WRK ]]; then
        echo "## Cross-check: HTTP under wrk"
        echo
        echo "The HTTP phases again, under an independent load generator: \`$WRK\`"
        echo "($("$WRK" --version 2>&1 | head -n 1 | awk '{ print $1, $2 }')), one thread on core $LOAD_CORE with $CLIENTS connections, for"
        echo "$DURATION s each, on the same server after its loadgen phases. Each request is the next of"
        echo "$WRK_REQUESTS announces (\`bench/wrk-announce.lua\`) of torrents of the swarm picked uniformly"
        echo "(loadgen's are Zipf-skewed), from 127.0.0.1 with random ports, 75 % seeders, numwant 30."
        echo "For one request per connection each request says \`Connection: close\`; wrk"
        echo "reconnects whenever a tracker closes, so a tracker without keep-alive answers"
        echo "one request per connection in both tables. Server CPU is read from /proc across"
        echo "each run and divided by wrk's count of responses. *Errors* are non-2xx answers and"
        echo "failed connects, writes and timeouts; *unannounced closes* are answers after which"
        echo "the tracker closed the connection without a \`Connection: close\` header (wrk calls"
        echo "them read errors, after counting the answer), as upstream's HTTP/1.1 replies do."
        echo
        core_busy_note
        echo
        wrk_rows
        echo
    fi
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
    echo "State per peer / per torrent: peak RSS after the prefill less idle RSS, divided"
    echo "by the $PEERS peers and by the $TORRENTS torrents: the same bytes, two ways."
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
    if [[ -n ${KIND[floor]:-} ]]; then
        echo "- The floor is a floor when it is busy: its blocking loop wakes up for each packet,"
        echo "  and where the load leaves it idle part of the time, those wake-ups can cost it"
        echo "  more per response than a tracker that batches. Read the ratios to it where"
        echo "  the server busy % are alike."
    fi
    echo
    commands_section
} >"$OUTPUT"
log "wrote $OUTPUT"
