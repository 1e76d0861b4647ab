#!/usr/bin/env bash
# Builds upstream opentracker (https://erdgeist.org/gitweb/opentracker) for
# bench/run.sh --upstream, and prints the binary's path as the last line of
# stdout. The source is the snapshot Debian packages (its orig tarball from
# Debian's archive, which this machine can reach), built the way upstream's
# own Makefile builds its production binary: -O3, default features (open
# tracker, IPv4 and IPv6, full scrape, gzip), against libowfat 0.34, the
# version that snapshot asks for, built from its Debian orig tarball too.
# Both tarballs are checked against their SHA-256. A cached binary is reused
# as is; delete the directory (or pass another --cache) to rebuild.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: bench/upstream.sh [--cache DIR] [--mirror URL]

  --cache DIR   where it goes (/var/cache/opentracker-bench/upstream): the
                binary to DIR/bin/opentracker, sources and commands to
                DIR/BUILD-INFO
  --mirror URL  the Debian archive to fetch from (http://deb.debian.org/debian;
                once the snapshot leaves it,
                https://snapshot.debian.org/archive/debian/20250601T000000Z)
USAGE
}

CACHE=/var/cache/opentracker-bench/upstream
MIRROR=http://deb.debian.org/debian
while (($#)); do
    case $1 in
    --cache)
        [[ -n ${2:-} ]] || { usage >&2; exit 2; }
        CACHE=$(realpath -m "$2")
        shift
        ;;
    --mirror)
        [[ -n ${2:-} ]] || { usage >&2; exit 2; }
        MIRROR=${2%/}
        shift
        ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

# name, archive path and SHA-256 of each tarball (Debian's Sources index).
OPENTRACKER=opentracker_1.0+git20250425.b20b0b8.orig.tar.xz
OPENTRACKER_PATH=pool/main/o/opentracker
OPENTRACKER_SHA256=ebfc697143397d547776340124623ebb185b726c09130eaed98d8898777996d3
LIBOWFAT=libowfat_0.34.orig.tar.xz
LIBOWFAT_PATH=pool/main/libo/libowfat
LIBOWFAT_SHA256=d4330d373ac9581b397bc24a22ad1f7f5d58a7fe36d9d239fe352ceffc5d304b

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
quoted() { printf '%q ' "$@" | sed 's/ $//'; }

BIN=$CACHE/bin/opentracker
INFO=$CACHE/BUILD-INFO
if [[ -x $BIN && -f $INFO ]] && grep -qx "source: $OPENTRACKER" "$INFO"; then
    log "upstream opentracker already built"
    printf '%s\n' "$BIN"
    exit 0
fi
for tool in curl make cc sha256sum xz; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install curl build-essential xz-utils)"
done
[[ -f /usr/include/zlib.h ]] || die "zlib.h is missing (apt-get install zlib1g-dev)"

start=$SECONDS
COMMANDS=()
run() {
    COMMANDS+=("$(quoted "$@")")
    nice -n 10 "$@" >&2
}

# fetch TARBALL PATH SHA256 DIR: downloads, checks and unpacks into DIR.
fetch() {
    local tarball=$1 path=$2 sha256=$3 dir=$4
    mkdir -p "$CACHE/download"
    if ! echo "$sha256  $CACHE/download/$tarball" | sha256sum --check --status 2>/dev/null; then
        log "fetching $MIRROR/$path/$tarball"
        run curl --fail --silent --show-error --location -o "$CACHE/download/$tarball" \
            "$MIRROR/$path/$tarball" || die "cannot fetch $tarball (try --mirror)"
        echo "$sha256  $CACHE/download/$tarball" | sha256sum --check --status ||
            die "$tarball does not have the expected SHA-256"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    run tar -xJf "$CACHE/download/$tarball" -C "$dir" --strip-components=1
}

# Upstream's Makefile looks for libowfat in ../libowfat by default.
fetch "$LIBOWFAT" "$LIBOWFAT_PATH" "$LIBOWFAT_SHA256" "$CACHE/src/libowfat"
fetch "$OPENTRACKER" "$OPENTRACKER_PATH" "$OPENTRACKER_SHA256" "$CACHE/src/opentracker"
log "building libowfat"
run make -C "$CACHE/src/libowfat" libowfat.a
log "building opentracker"
run make -C "$CACHE/src/opentracker" opentracker
mkdir -p "$CACHE/bin"
cp "$CACHE/src/opentracker/opentracker" "$BIN"
{
    echo "source: $OPENTRACKER"
    echo "libowfat: $LIBOWFAT"
    echo "built: $(date -u '+%Y-%m-%d %H:%M UTC') in $((SECONDS - start)) s"
    echo "compiler: $(cc --version | head -n 1)"
    echo "build: upstream's Makefile, production target (-O3), its default features:" \
        "open (no access list), IPv4 and IPv6, full scrape, gzip"
    printf 'command: %s\n' "${COMMANDS[@]}"
} >"$INFO"
log "built $BIN in $((SECONDS - start)) s"
printf '%s\n' "$BIN"
