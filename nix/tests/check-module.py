#!/usr/bin/env python3
"""Checks the JSON of nix/tests/module-test.nix (stdin) against the unit
files in systemd/. usage: check-module.py SYSTEMD_DIR/opentracker.service"""
import json
import os
import sys


def section(path, name):
    keys, current = {}, None
    for line in open(path):
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif current == name and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in keys.items()}


def main():
    unit = sys.argv[1]
    socket_unit = os.path.join(os.path.dirname(unit), "opentracker.socket")
    data = json.load(sys.stdin)
    errors = []

    def expect(what, got, want):
        if got != want:
            errors.append("%s: got %r, want %r" % (what, got, want))

    expect("options", sorted(data["options"]), ["cluster", "enable", "keepSwarms", "openFirewall", "package", "passkeysFile", "settings"])
    expect("typed settings", sorted(data["settingsOptions"]), ["access", "listen", "tracker"])
    expect("mkIf on enable", data["condition"], True)
    svc = data["config"]["systemd"]["services"]["opentracker"]
    sc = svc["serviceConfig"]
    want = section(unit, "Service")
    for key in ("ExecStart", "ExecReload"):
        want.pop(key)
    got = {k: v for k, v in sc.items() if k not in ("ExecStart", "ExecReload")}
    expect("hardening and service settings equal systemd/opentracker.service", got, want)
    toml_arg = sc["ExecStart"].split(" -f ", 1)
    expect("ExecStart binary", toml_arg[0], "/stub/opentracker/bin/opentracker")
    rendered = json.loads(toml_arg[1].split(":", 1)[1])
    expect("settings rendered to TOML (nulls dropped)", rendered, {
        "access": {}, "listen": {"tcp": ["127.0.0.1:8080"], "tcp_udp": ["[::]:6969"], "udp": ["0.0.0.0:6881"], "udp_workers": 2},
        "tracker": {"interval": 900, "user": "nobody"}})
    expect("ExecReload", sc["ExecReload"], "/stub/coreutils/bin/kill -HUP $MAINPID")
    expect("service requires the socket, starts after it and after the clock is set",
           (svc["requires"], svc["after"]), (["opentracker.socket"], ["opentracker.socket", "time-sync.target"]))
    expect("a changed service is restarted, not stopped with its socket (stopIfChanged)", svc.get("stopIfChanged"), False)
    sock = data["config"]["systemd"]["sockets"]["opentracker"]
    expect("listenStreams from settings.listen", sock["listenStreams"], ["[::]:6969", "127.0.0.1:8080"])
    expect("listenDatagrams from settings.listen", sock["listenDatagrams"], ["[::]:6969", "0.0.0.0:6881"])
    want_sock = section(socket_unit, "Socket")
    for key in ("ListenStream", "ListenDatagram"):
        want_sock.pop(key)
    expect("socket options equal systemd/opentracker.socket", sock["socketConfig"], want_sock)
    fw = data["config"]["networking"]["firewall"]["content"]
    expect("openFirewall TCP", fw["allowedTCPPorts"], [6969, 8080])
    expect("openFirewall UDP", fw["allowedUDPPorts"], [6969, 6881])
    expect("no assertion fails for the custom settings", data["customFailures"], [])
    asock = data["addressesConfig"]["systemd"]["sockets"]["opentracker"]
    expect("bare addresses get port 6969, IPv6 brackets, % escaped as %%: ListenStream",
           asock["listenStreams"], ["192.0.2.1:6969", "[::1]:6969", "[fe80::1%%2]:6969", "[::]:6969", "127.0.0.1:80"])
    expect("... ListenDatagram", asock["listenDatagrams"], ["192.0.2.1:6969", "[::1]:6969", "[fe80::1%%2]:6881"])
    afw = data["addressesConfig"]["networking"]["firewall"]["content"]
    expect("openFirewall ports of bare and IPv6 addresses", (afw["allowedTCPPorts"], afw["allowedUDPPorts"]),
           ([6969, 6969, 6969, 6969, 80], [6969, 6969, 6881]))
    expect("no assertion fails for addresses systemd can take", data["addressesFailures"], [])
    bad = data["badAddressesFailures"]
    expect("an assertion for each address systemd cannot take",
           [m.split(" ", 2)[1] for m in bad], ["127.0.0.1:0", "fe80::1%2", "localhost:80", "192.0.2.1:65536"])
    expect("... saying why", [("port 0" in bad[0]), ("scope id" in bad[1]), ("not an address" in bad[2]), ("65535" in bad[3])],
           [True] * 4)
    expect("TasksMax holds 2 UDP sockets x 8 workers, the event loop, reload thread (and saver with keepSwarms)",
           data["tasksMax"], ["18", "19"])
    dsock = data["defaultsConfig"]["systemd"]["sockets"]["opentracker"]
    expect("default listeners", (dsock["listenStreams"], dsock["listenDatagrams"]), (["[::]:6969"], ["[::]:6969"]))
    kept = data["keptConfig"]["systemd"]["services"]["opentracker"]["serviceConfig"]
    state = section(os.path.join(os.path.dirname(unit), "opentracker-state.conf"), "Service")
    expect("keepSwarms adds systemd/opentracker-state.conf",
           {k: kept.get(k) for k in state}, state)
    expect("without keepSwarms, no state directory", "StateDirectory" in sc, False)
    kept_toml = json.loads(kept["ExecStart"].split(" -f ", 1)[1].split(":", 1)[1])
    expect("keepSwarms sets the state file, keeping the other tracker keys", kept_toml["tracker"], {
        "interval": 1800, "save_interval": 60, "save_state": True,
        "state_file": "/var/lib/opentracker/state"})
    own = json.loads(data["keptOwnExecStart"].split(" -f ", 1)[1].split(":", 1)[1])
    expect("keepSwarms keeps a state_file the user set in /var/lib/opentracker",
           (own["tracker"].get("state_file"), own["tracker"].get("save_state"), data["keptOwnFailures"]),
           ("/var/lib/opentracker/swarms", True, []))
    expect("keepSwarms with a state_file elsewhere fails an assertion",
           ["/srv/opentracker/state is outside" in m for m in data["keptElsewhereFailures"]], [True])
    expect("keepSwarms with settings.tracker.save_state = false fails an assertion",
           ["keepSwarms needs settings.tracker.save_state" in m for m in data["keptUnsavedFailures"]], [True])
    expect("without passkeysFile or cluster, no credential", "LoadCredential" in sc, False)
    csc = data["clusteredServiceConfig"]
    drop_in = section(os.path.join(os.path.dirname(unit), "opentracker-cluster.conf"), "Service")
    credential = drop_in.pop("LoadCredential")
    expect("settings.cluster adds systemd/opentracker-cluster.conf", {k: csc.get(k) for k in drop_in}, drop_in)
    expect("passkeysFile and cluster.keyFile as credentials, named as in the drop-in",
           csc["LoadCredential"], ["cluster.key:/etc/opentracker/cluster.key", "passkeys:/etc/opentracker/passkeys"])
    expect("... the drop-in's credential name", credential.split(":")[0], "cluster.key")
    ctoml = json.loads(csc["ExecStart"].split(" -f ", 1)[1].split(":", 1)[1])
    expect("settings point at the credentials",
           (ctoml["access"].get("passkeys"), ctoml["cluster"]),
           ("/run/credentials/opentracker.service/passkeys",
            {"listen": "0.0.0.0:6970", "peers": ["192.168.1.2:6970"],
             "key_file": "/run/credentials/opentracker.service/cluster.key"}))
    expect("no assertion fails for a cluster with its key", data["clusteredFailures"], [])
    expect("settings.cluster without cluster.keyFile fails an assertion",
           ["needs services.opentracker.cluster.keyFile" in m for m in data["clusterWithoutKeyFailures"]], [True])
    for e in errors:
        print("mismatch: " + e)
    if errors:
        return 1
    print("options: enable, package, settings (typed listen/access/tracker, freeform rest), keepSwarms, passkeysFile, cluster.keyFile, openFirewall")
    print("keepSwarms: %s from systemd/opentracker-state.conf, tracker.state_file (the user's if in /var/lib/opentracker) and save_state set"
          % ", ".join("%s=%s" % kv for kv in sorted(state.items())))
    print("service: %d settings identical to systemd/opentracker.service, ExecStart %s -f <generated toml>"
          % (len(want), toml_arg[0]))
    print("listen: ListenStream %s; assertions refuse %s" % (asock["listenStreams"], [m.split(" ", 2)[1] for m in bad]))
    print("TasksMax: 17 (18 with keepSwarms) by default; 2 UDP sockets x 8 workers: %s, with keepSwarms %s"
          % tuple(data["tasksMax"]))
    print("cluster: %s from systemd/opentracker-cluster.conf; LoadCredential %s"
          % (", ".join("%s=%s" % kv for kv in sorted(drop_in.items())), csc["LoadCredential"]))
    print("socket: ListenStream %s, ListenDatagram %s; firewall tcp %s udp %s"
          % (sock["listenStreams"], sock["listenDatagrams"], fw["allowedTCPPorts"], fw["allowedUDPPorts"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
