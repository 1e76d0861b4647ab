# Evaluates nix/module.nix against the stub lib, as NixOS would with these
# option values, and returns what the checks compare (check-module.py).
let
  lib = import ./stub-nixpkgs/lib.nix;
  pkgs = {
    coreutils = "/stub/coreutils";
    formats.toml = _: { type = { name = "toml"; }; generate = name: value: "/stub/${name}:${builtins.toJSON value}"; };
    callPackage = _: _: { outPath = "/stub/opentracker-default"; meta.mainProgram = "opentracker"; };
  };
  module = import ../module.nix;
  # extra: option values other than the defaults below.
  evaluateWith = extra: settings: module {
    inherit lib pkgs;
    config.services.opentracker = {
      enable = true;
      package = { outPath = "/stub/opentracker"; meta.mainProgram = "opentracker"; };
      inherit settings;
      keepSwarms = false;
      passkeysFile = null;
      cluster.keyFile = null;
      openFirewall = true;
    } // extra;
  };
  evaluate = evaluateWith { };
  # The messages of the assertions that fail.
  failures = evaluation: map (a: a.message)
    (builtins.filter (a: !a.assertion) evaluation.config.content.assertions);
  listenOnly = listen: { listen = { udp_workers = 0; } // listen; access.whitelist = null; tracker.interval = 1800; };
  # Forms the tracker reads that systemd does not, or not as they are.
  addresses = evaluate (listenOnly {
    tcp_udp = [ "192.0.2.1" "::1" ]; tcp = [ "[fe80::1%2]:6969" "[::]" "127.0.0.1:080" ]; udp = [ "[fe80::1%2]:6881" ];
  });
  badAddresses = evaluate (listenOnly {
    tcp_udp = [ "127.0.0.1:0" ]; tcp = [ "fe80::1%2" "localhost:80" ]; udp = [ "192.0.2.1:65536" ];
  });
  custom = (evaluate {
    listen = { tcp_udp = [ "[::]:6969" ]; tcp = [ "127.0.0.1:8080" ]; udp = [ "0.0.0.0:6881" ]; udp_workers = 2; };
    access.whitelist = null;
    tracker = { interval = 900; user = "nobody"; };
  });
  defaults = evaluate { listen = { tcp_udp = [ "[::]:6969" ]; tcp = [ ]; udp = [ ]; udp_workers = 0; }; access.whitelist = null; tracker.interval = 1800; };
  kept = evaluateWith { keepSwarms = true; } { listen = { tcp_udp = [ "[::]:6969" ]; tcp = [ ]; udp = [ ]; udp_workers = 0; }; access.whitelist = null; tracker = { interval = 1800; save_interval = 60; }; };
  # Two UDP sockets with 8 workers each: 16 threads and the event loop and
  # reload thread; one more for the saver with keepSwarms.
  manyWorkers = { tcp_udp = [ "[::]:6969" ]; tcp = [ ]; udp = [ "0.0.0.0:6881" ]; udp_workers = 8; };
  workers = evaluate (listenOnly manyWorkers);
  workersKept = evaluateWith { keepSwarms = true; } (listenOnly manyWorkers);
  keptWith = stateFile: evaluateWith { keepSwarms = true; }
    (listenOnly { tcp_udp = [ "[::]:6969" ]; tcp = [ ]; udp = [ ]; } // { tracker = { interval = 1800; state_file = stateFile; }; });
  keptOwn = keptWith "/var/lib/opentracker/swarms";
  keptElsewhere = keptWith "/srv/opentracker/state";
  keptUnsaved = evaluateWith { keepSwarms = true; }
    (listenOnly { tcp_udp = [ "[::]:6969" ]; tcp = [ ]; udp = [ ]; } // { tracker = { interval = 1800; save_state = false; }; });
  clusterSettings = listenOnly { tcp_udp = [ "[::]:6969" ]; tcp = [ ]; udp = [ ]; }
    // { cluster = { listen = "0.0.0.0:6970"; peers = [ "192.168.1.2:6970" ]; }; };
  clustered = evaluateWith { cluster.keyFile = "/etc/opentracker/cluster.key"; passkeysFile = "/etc/opentracker/passkeys"; } clusterSettings;
  clusterWithoutKey = evaluate clusterSettings;
  opts = custom.options.services.opentracker;
in
{
  options = builtins.attrNames opts;
  settingsOptions = builtins.attrNames opts.settings.type.module.options;
  packageDefault = "${opts.package.default}";
  condition = custom.config.condition;
  config = custom.config.content;
  defaultsConfig = defaults.config.content;
  keptConfig = kept.config.content;
  customFailures = failures custom;
  clusteredServiceConfig = clustered.config.content.systemd.services.opentracker.serviceConfig;
  clusteredFailures = failures clustered;
  clusterWithoutKeyFailures = failures clusterWithoutKey;
  keptOwnExecStart = keptOwn.config.content.systemd.services.opentracker.serviceConfig.ExecStart;
  keptOwnFailures = failures keptOwn;
  keptElsewhereFailures = failures keptElsewhere;
  keptUnsavedFailures = failures keptUnsaved;
  tasksMax = map (e: e.config.content.systemd.services.opentracker.serviceConfig.TasksMax) [ workers workersKept ];
  addressesConfig = addresses.config.content;
  addressesFailures = failures addresses;
  badAddressesFailures = failures badAddresses;
}
