#!/usr/bin/python3
"""Moves one random file between two libtorrent sessions through a tracker.

Usage: transfer.py TRACKER_URL [--size BYTES] [--timeout SECONDS] [--verbose]

The two sessions listen on the loopback address of the tracker URL's family
and have DHT, LSD, UPnP, NAT-PMP and PEX off, so the tracker is the only way
they can learn about each other. On success one JSON line goes to stdout:
info hash, sizes, SHA-256 of source and copy, timings, and the swarm counts
the tracker reported in its reply to the leecher's `completed` announce.

The process then leaves with os._exit, so that neither session sends
event=stopped: both peers stay in the swarm as seeders, which gives the
caller a deterministic state to scrape (complete=2, incomplete=0,
downloaded=1). Exit status 0 on success, 1 on failure (JSON has "error").
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.parse

try:
    import libtorrent as lt
except ImportError:
    # The Rust test looks for this exact line to report a skip.
    print("SKIPPED: python3-libtorrent not installed", file=sys.stderr)
    sys.exit(77)

# Announce event numbers in tracker_announce_alert.event.
EVENT_COMPLETED = 1

LOG_START = time.monotonic()
VERBOSE = False
# Sessions live here until os._exit: dropping one would make libtorrent send
# event=stopped on its way out.
KEEP_ALIVE = []


def log(message):
    if VERBOSE:
        print(f"[{time.monotonic() - LOG_START:7.3f}] {message}", file=sys.stderr)


class Failure(Exception):
    pass


def loopback_for(url):
    host = urllib.parse.urlsplit(url).hostname
    if host == "127.0.0.1":
        return "127.0.0.1:0"
    if host == "::1":
        return "[::1]:0"
    raise Failure(f"tracker host {host!r} is not 127.0.0.1 or ::1")


def make_session(listen):
    settings = {
        "listen_interfaces": listen,
        # Loopback only, and the tracker is the only source of peers.
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        # Both peers share one IP, and the tracker also hands each peer its
        # own address back; without this the self entry could block the
        # connection to the other peer.
        "allow_multiple_connections_per_ip": True,
        # TCP only: libtorrent's uTP once crashed the seeder (SIGSEGV, in a
        # whole-suite run) right after it opened a uTP connection to its own
        # address, which the tracker hands back as upstream does. The test
        # is about the tracker; uTP crashes are libtorrent's (a known class,
        # e.g. arvidn/libtorrent#7277).
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "alert_mask": (
            lt.alert.category_t.error_notification
            | lt.alert.category_t.status_notification
            | lt.alert.category_t.tracker_notification
            | lt.alert.category_t.connect_notification
            | lt.alert.category_t.peer_notification
            | lt.alert.category_t.storage_notification
        ),
        "user_agent": "opentracker-e2e/1.0 libtorrent/" + lt.__version__,
    }
    return lt.session(settings)


def make_torrent(source_dir, name, tracker_url):
    files = lt.file_storage()
    lt.add_files(files, os.path.join(source_dir, name))
    # v1 only: a hybrid torrent would also announce its truncated v2 hash,
    # putting every peer in two swarms on the tracker.
    creator = lt.create_torrent(files, 0, flags=lt.create_torrent.v1_only)
    creator.add_tracker(tracker_url)
    creator.set_creator("opentracker e2e test")
    lt.set_piece_hashes(creator, source_dir)
    return lt.bencode(creator.generate())


def add(session, torrent_data, save_path):
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent_data))
    params.save_path = save_path
    # PEX is a per-torrent extension; DHT and LSD are off session-wide too.
    params.flags |= lt.torrent_flags.disable_pex
    params.flags |= lt.torrent_flags.disable_dht
    params.flags |= lt.torrent_flags.disable_lsd
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    return session.add_torrent(params)


class Watcher:
    """Drains the alerts of several sessions and remembers what matters."""

    def __init__(self, sessions):
        self.sessions = sessions
        self.replies = {name: 0 for name in sessions}
        self.completed_sent = False
        self.completed_replied = False
        self.errors = []

    def poll(self, wait):
        for name, session in self.sessions.items():
            session.wait_for_alert(int(wait * 1000 / len(self.sessions)))
            for alert in session.pop_alerts():
                self.note(name, alert)

    def note(self, name, alert):
        log(f"{name}: {alert.what()}: {alert.message()}")
        if isinstance(alert, lt.tracker_announce_alert):
            if name == "leecher" and alert.event == EVENT_COMPLETED:
                self.completed_sent = True
        elif isinstance(alert, lt.tracker_reply_alert):
            self.replies[name] += 1
            # Announces to one tracker are serial, so the first reply after
            # the completed announce answers it.
            if name == "leecher" and self.completed_sent:
                self.completed_replied = True
        elif isinstance(alert, lt.tracker_error_alert):
            self.errors.append(f"{name}: {alert.message()}")
        elif isinstance(alert, (lt.file_error_alert, lt.torrent_error_alert)):
            raise Failure(f"{name}: {alert.message()}")

    def until(self, what, condition, deadline):
        while not condition():
            if time.monotonic() > deadline:
                detail = "; ".join(self.errors[-5:]) or "no tracker errors"
                raise Failure(f"timed out waiting for {what} ({detail})")
            self.poll(0.2)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def tracker_counts(handle):
    """complete/incomplete as the tracker's last announce reply gave them."""
    for entry in handle.trackers():
        for endpoint in entry.get("endpoints", []):
            for info in endpoint.get("info_hashes", [endpoint]):
                if info.get("scrape_complete", -1) >= 0:
                    return info["scrape_complete"], info["scrape_incomplete"]
    return None


def run(url, size, timeout, workdir):
    started = time.monotonic()
    deadline = started + timeout
    listen = loopback_for(url)
    source_dir = os.path.join(workdir, "seed")
    copy_dir = os.path.join(workdir, "leech")
    os.mkdir(source_dir)
    os.mkdir(copy_dir)
    name = "payload.bin"
    with open(os.path.join(source_dir, name), "wb") as file:
        file.write(os.urandom(size))
    torrent_data = make_torrent(source_dir, name, url)
    info_hash = str(lt.torrent_info(lt.bdecode(torrent_data)).info_hash())

    seeder_session = make_session(listen)
    leecher_session = make_session(listen)
    KEEP_ALIVE.extend([seeder_session, leecher_session])
    watcher = Watcher({"seeder": seeder_session, "leecher": leecher_session})

    seeder = add(seeder_session, torrent_data, source_dir)
    # The seeder is in the swarm before the leecher asks, so the leecher's
    # first reply already names it; this also proves the seeder announced.
    watcher.until("the seeder's first announce reply",
                  lambda: watcher.replies["seeder"] > 0, deadline)
    if not seeder.status().is_seeding:
        watcher.until("the seeder to verify its data",
                      lambda: seeder.status().is_seeding, deadline)
    seeded = time.monotonic()

    leecher = add(leecher_session, torrent_data, copy_dir)
    watcher.until("the download", lambda: leecher.status().is_seeding, deadline)
    downloaded = time.monotonic()

    # libtorrent announces `completed` at once on finishing; if it has not
    # within a few seconds, nudge it rather than wait for the interval.
    nudge = time.monotonic() + 5
    while not watcher.completed_replied:
        if time.monotonic() > nudge and not watcher.completed_sent:
            log("leecher: forcing a re-announce")
            leecher.force_reannounce()
            nudge = time.monotonic() + 5
        watcher.until("the completed announce's reply",
                      lambda: watcher.completed_replied or time.monotonic() > nudge,
                      deadline)
    announced = time.monotonic()

    source_hash = sha256_of(os.path.join(source_dir, name))
    copy_path = os.path.join(copy_dir, name)
    copy_hash = sha256_of(copy_path) if os.path.exists(copy_path) else None
    counts = tracker_counts(leecher)
    return {
        "url": url,
        "info_hash": info_hash,
        "size": size,
        "result": "ok" if source_hash == copy_hash else "hash mismatch",
        "source_sha256": source_hash,
        "copy_sha256": copy_hash,
        "tracker_complete": counts[0] if counts else None,
        "tracker_incomplete": counts[1] if counts else None,
        "seconds": {
            "seeder_ready": round(seeded - started, 3),
            "transfer": round(downloaded - seeded, 3),
            "completed_announce": round(announced - downloaded, 3),
            "total": round(announced - started, 3),
        },
    }


def main():
    global VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--size", type=int, default=3 * 1024 * 1024 + 12345)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    VERBOSE = args.verbose
    with tempfile.TemporaryDirectory(prefix="ot-e2e-") as workdir:
        try:
            report = run(args.url, args.size, args.timeout, workdir)
        except Failure as failure:
            report = {"url": args.url, "result": "error", "error": str(failure)}
    print(json.dumps(report), flush=True)
    sys.stderr.flush()
    # No graceful shutdown: see the module docstring.
    os._exit(0 if report["result"] == "ok" else 1)


if __name__ == "__main__":
    main()
