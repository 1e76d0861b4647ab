#!/usr/bin/env python3
"""Announce to a tracker over HTTP and UDP (BEP 3 and BEP 15) and check the
replies. Used by packaging/test.sh and debian/tests.

usage: announce.py HOST PORT [--tries N] [--info-hash HEX] [--expect-refused]
Exit 0 when both protocols answered as expected: with a peer list, or with
--expect-refused, with a failure (HTTP "failure reason", UDP error action).
UDP replies must come from the address and port they were sent to."""
import argparse
import ipaddress
import os
import socket
import struct
import sys
import time
import urllib.parse


class Refused(Exception):
    """The tracker answered, with a failure."""


def http_announce(host, port, info_hash, peer_id):
    query = urllib.parse.urlencode(
        {"info_hash": info_hash, "peer_id": peer_id, "port": 51413,
         "uploaded": 0, "downloaded": 0, "left": 1000, "compact": 1,
         "event": "started"})
    request = ("GET /announce?%s HTTP/1.0\r\nHost: tracker\r\n\r\n" % query).encode()
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(request)
        reply = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b"14:failure reason" in body:
        raise Refused("HTTP %s: %r" % (status.decode(errors="replace"), body[:120]))
    if b" 200" not in status:
        raise RuntimeError("HTTP status %r" % status)
    # "peers" (IPv4, BEP 23) or "peers6" (IPv6, BEP 7), depending on the family.
    if not body.startswith(b"d") or b"8:interval" not in body or (
            b"5:peers" not in body and b"6:peers6" not in body):
        raise RuntimeError("HTTP body is no announce reply: %r" % body[:200])
    return "HTTP %s, %d bytes, has interval and peers" % (status.decode(errors="replace"), len(body))


def check_sender(source, host, port):
    """A reply must come from the address and port it was sent to: clients
    behind NAT or a firewall never see one from anywhere else."""
    try:
        expected = ipaddress.ip_address(host)
    except ValueError:
        return
    if ipaddress.ip_address(source[0].split("%")[0]) != expected or source[1] != port:
        raise RuntimeError("UDP reply came from %s port %d, not from %s port %d"
                           % (source[0], source[1], host, port))


def udp_announce(host, port, info_hash, peer_id):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        txid = struct.unpack("!I", os.urandom(4))[0]
        sock.sendto(struct.pack("!QII", 0x41727101980, 0, txid), (host, port))
        data, source = sock.recvfrom(2048)
        check_sender(source, host, port)
        action, rtx, conn_id = struct.unpack("!IIQ", data[:16])
        if action != 0 or rtx != txid:
            raise RuntimeError("UDP connect reply %r" % data)
        txid = (txid + 1) & 0xFFFFFFFF
        packet = struct.pack("!QII20s20sQQQIIIiH", conn_id, 1, txid, info_hash,
                             peer_id, 0, 1000, 0, 2, 0, 0, 50, 51413)
        sock.sendto(packet, (host, port))
        data, source = sock.recvfrom(4096)
        check_sender(source, host, port)
        action, rtx = struct.unpack("!II", data[:8])
        if action == 3 and rtx == txid:
            raise Refused("UDP error: %r" % data[8:120])
        # Upstream opentracker refuses a torrent outside its access list with
        # a bare 8-byte announce header.
        if action == 1 and rtx == txid and len(data) == 8:
            raise Refused("UDP 8-byte announce reply (upstream's refusal)")
        action, rtx, interval, leechers, seeders = struct.unpack("!IIIII", data[:20])
        if action != 1 or rtx != txid:
            raise RuntimeError("UDP announce reply %r" % data[:64])
    return "UDP connect+announce, interval %d, %d leechers, %d seeders" % (
        interval, leechers, seeders)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--info-hash", help="40 hex digits (default: random)")
    parser.add_argument("--expect-refused", action="store_true")
    args = parser.parse_args()
    info_hash = bytes.fromhex(args.info_hash) if args.info_hash else os.urandom(20)
    peer_id = b"-OT0001-" + os.urandom(6).hex().encode()
    ok = True
    for name, check in (("http", http_announce), ("udp", udp_announce)):
        where = "%s announce to %s:%d" % (name, args.host, args.port)
        for attempt in range(1, args.tries + 1):
            try:
                result = check(args.host, args.port, info_hash, peer_id)
                if args.expect_refused:
                    print("  FAIL %s: accepted, expected a refusal: %s" % (where, result))
                    ok = False
                else:
                    print("  ok   %s: %s" % (where, result))
                break
            except Refused as refusal:
                print("  %s %s: refused: %s" % ("ok  " if args.expect_refused else "FAIL", where, refusal))
                ok = ok and args.expect_refused
                break
            except (OSError, RuntimeError, struct.error) as err:
                if attempt == args.tries:
                    print("  FAIL %s: %s" % (where, err))
                    ok = False
                else:
                    time.sleep(0.5)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
