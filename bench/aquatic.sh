#!/usr/bin/env bash
# Builds aquatic_udp (https://github.com/greatest-ape/aquatic) and its load
# generator, aquatic_udp_load_test, from crates.io into a cache directory for
# bench/run.sh --aquatic, and prints aquatic_udp's path as the last line of
# stdout; the load generator goes next to it, where run.sh finds it for its
# cross-check. Cached binaries are reused as they are; delete the directory
# (or pass another --cache) to rebuild.
#
# The builds are the crates' plain ones: default features (aquatic_udp:
# mimalloc, prometheus; no io-uring), each locked to the Cargo.lock published
# with it, with one exception: aquatic_udp 0.9.0 locks metrics 0.22.3, which current compilers
# reject (E0521, rust-lang/rust#141402: a raw pointer cast may no longer
# extend a trait object's lifetime); metrics 0.22.4 is the same API with that
# cast fixed, so the lock is moved to it and to nothing else. Cargo runs
# niced with one job, into its own target directory, so a shared machine
# stays usable.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/aquatic.sh [--version VERSION] [--cache DIR]

  --version VERSION  aquatic_udp and aquatic_udp_load_test version from
                     crates.io (0.9.0)
  --cache DIR        where they go (/var/cache/opentracker-bench/aquatic):
                     the binaries to DIR/bin/, the builds' version, lock
                     changes and commands to DIR/BUILD-INFO
EOF
}

VERSION=0.9.0
CACHE=/var/cache/opentracker-bench/aquatic
while (($#)); do
    case $1 in
    --version)
        [[ -n ${2:-} ]] || { usage >&2; exit 2; }
        VERSION=$2
        shift
        ;;
    --cache)
        [[ -n ${2:-} ]] || { usage >&2; exit 2; }
        CACHE=$(realpath -m "$2")
        shift
        ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
quoted() { printf '%q ' "$@" | sed 's/ $//'; }

CRATES=(aquatic_udp aquatic_udp_load_test)
BIN=$CACHE/bin/aquatic_udp
INFO=$CACHE/BUILD-INFO
if [[ -x $BIN && -x $CACHE/bin/aquatic_udp_load_test && -f $INFO ]] &&
    grep -qx "version: $VERSION" "$INFO"; then
    log "aquatic_udp and aquatic_udp_load_test $VERSION already built"
    printf '%s\n' "$BIN"
    exit 0
fi

# Outside the repository's target directory: other builds use that one.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(dirname "$CACHE")/aquatic-target}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
start=$SECONDS
COMMANDS=()
run() {
    COMMANDS+=("$(quoted "$@")")
    nice -n 10 "$@" >&2
}

# The crates' sources, with their Cargo.lock files, through cargo: a scratch
# package that depends on exactly this version of each.
FETCH=$CACHE/fetch
mkdir -p "$FETCH/src"
{
    printf '[package]\nname = "fetch-aquatic"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n'
    for crate in "${CRATES[@]}"; do printf '%s = "=%s"\n' "$crate" "$VERSION"; done
} >"$FETCH/Cargo.toml"
: >"$FETCH/src/lib.rs"
log "fetching ${CRATES[*]} $VERSION"
metadata=$(cargo metadata --quiet --format-version 1 --manifest-path "$FETCH/Cargo.toml") ||
    die "${CRATES[*]} $VERSION are not on crates.io (or cargo cannot reach it)"

# Lock changes: "package@locked=wanted", each applied only where a lock has
# the locked version.
LOCK_CHANGES=(metrics@0.22.3=0.22.4)
changed=()
for crate in "${CRATES[@]}"; do
    manifest=$(grep -o "\"manifest_path\":\"[^\"]*/$crate-$VERSION/Cargo.toml\"" <<<"$metadata" |
        head -n 1 | cut -d'"' -f4)
    [[ -n $manifest ]] || die "$crate $VERSION is not on crates.io"
    [[ -f $(dirname "$manifest")/Cargo.lock ]] || die "$crate $VERSION is published without a Cargo.lock"
    SRC=$CACHE/src/$crate-$VERSION
    rm -rf "$SRC"
    mkdir -p "$(dirname "$SRC")"
    cp -r "$(dirname "$manifest")" "$SRC"
    COMMANDS+=("# the source of $crate $VERSION from crates.io, with its Cargo.lock, in $SRC")
    for change in "${LOCK_CHANGES[@]}"; do
        package=${change%@*} locked=${change#*@} locked=${locked%=*} wanted=${change#*=}
        if grep -A1 -x "name = \"$package\"" "$SRC/Cargo.lock" | grep -qx "version = \"$locked\""; then
            run cargo update --quiet --manifest-path "$SRC/Cargo.toml" -p "$package@$locked" --precise "$wanted"
            changed+=("$crate: $package $locked -> $wanted")
        fi
    done
    log "building $crate $VERSION (CARGO_TARGET_DIR=$CARGO_TARGET_DIR, CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS)"
    run cargo install --locked --force --root "$CACHE" --path "$SRC"
done
{
    echo "version: $VERSION"
    echo "built: $(date -u '+%Y-%m-%d %H:%M UTC') in $((SECONDS - start)) s"
    echo "rustc: $(rustc --version)"
    echo "crates: ${CRATES[*]}"
    echo "features: default (aquatic_udp: mimalloc, prometheus; no io-uring)"
    joined=$(printf '%s; ' "${changed[@]}")
    joined=${joined%; }
    echo "lock changes: ${joined:-none}"
    if ((${#changed[@]})); then
        echo "  (the published lock's metrics 0.22.3 does not compile with this rustc: E0521, rust-lang/rust#141402)"
    fi
    echo "environment: CARGO_TARGET_DIR=$CARGO_TARGET_DIR CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS, niced by 10"
    printf 'command: %s\n' "${COMMANDS[@]}"
} >"$INFO"
log "built $BIN in $((SECONDS - start)) s"
printf '%s\n' "$BIN"
