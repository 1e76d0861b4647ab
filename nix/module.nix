# NixOS module: services.opentracker. The unit settings (sandboxing,
# watchdog, restart policy, socket options) are read from systemd/, the
# files the Debian package installs, so every install path gets the same
# hardening; each can be overridden with the usual
# systemd.services.opentracker.serviceConfig.<Key>.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types;
  cfg = config.services.opentracker;
  settingsFormat = pkgs.formats.toml { };
  # keepSwarms: the state file in the directory the state drop-in gives,
  # unless the user names another file there.
  stateDirectory = "/var/lib/opentracker/";
  stateSettings = lib.optionalAttrs cfg.keepSwarms {
    tracker = { state_file = "${stateDirectory}state"; save_state = true; };
  };
  # Secrets reach the dynamic user as credentials (LoadCredential=), as in
  # systemd/opentracker-cluster.conf; the settings name their copies.
  credentials = "/run/credentials/opentracker.service/";
  clustered = cfg.settings ? cluster;
  credentialFiles = lib.optionalAttrs (cfg.passkeysFile != null) { passkeys = cfg.passkeysFile; }
    // lib.optionalAttrs (clustered && cfg.cluster.keyFile != null) { "cluster.key" = cfg.cluster.keyFile; };
  credentialSettings = lib.recursiveUpdate
    (lib.optionalAttrs (credentialFiles ? passkeys) { access.passkeys = "${credentials}passkeys"; })
    (lib.optionalAttrs (credentialFiles ? "cluster.key") { cluster.key_file = "${credentials}cluster.key"; });
  # TOML has no null: unset optional keys are left out.
  settings = lib.filterAttrsRecursive (_: v: v != null)
    (lib.recursiveUpdate (lib.recursiveUpdate stateSettings cfg.settings) credentialSettings);
  stateFile = settings.tracker.state_file or null;
  configFile = settingsFormat.generate "opentracker.toml" settings;

  # "[Section]" and "Key=Value" lines of a unit file -> { Key = value; },
  # a list when a key repeats (NixOS writes lists as repeated lines).
  unitSection = file: section:
    let
      lines = builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile file));
      step = acc: line:
        let
          header = builtins.match "[[]([A-Za-z0-9]+)[]]" line;
          kv = builtins.match "([A-Za-z0-9]+)=(.*)" line;
        in
        if header != null then acc // { current = builtins.head header; }
        else if kv != null && acc.current == section then
          let key = builtins.elemAt kv 0; value = builtins.elemAt kv 1; in
          acc // { keys = acc.keys // { ${key} = (acc.keys.${key} or [ ]) ++ [ value ]; }; }
        else acc;
      parsed = builtins.foldl' step { current = ""; keys = { }; } lines;
    in
    builtins.mapAttrs (_: values: if builtins.length values == 1 then builtins.head values else values) parsed.keys;

  # Paths and listeners come from this module, not from the unit files.
  unitDefaults = removeAttrs (unitSection ../systemd/opentracker.service "Service") [ "ExecStart" "ExecReload" ]
    // lib.optionalAttrs cfg.keepSwarms (unitSection ../systemd/opentracker-state.conf "Service")
    # Cluster sync binds a socket of its own and sends to the other
    # trackers; the key comes as the credential below.
    // lib.optionalAttrs clustered (removeAttrs (unitSection ../systemd/opentracker-cluster.conf "Service") [ "LoadCredential" ]);
  serviceDefaults = unitDefaults // { TasksMax = toString tasksMax; };
  # Every thread is a task (systemd/opentracker.service): the event loop,
  # the reload thread, the state saver and udp_workers threads for each UDP
  # socket. The unit's value (17, 18 with the state drop-in) unless the
  # workers need more.
  tasksMax =
    let
      udpSockets = builtins.length (listen.tcp_udp ++ listen.udp);
      saver = if (settings.tracker.save_state or false) == true then 1 else 0;
      needed = 2 + saver + listen.udp_workers * udpSockets;
      unit = lib.toInt unitDefaults.TasksMax;
    in
    if needed > unit then needed else unit;
  socketDefaults = removeAttrs (unitSection ../systemd/opentracker.socket "Socket") [ "ListenStream" "ListenDatagram" ];

  listen = cfg.settings.listen;
  # A listen address in the forms the tracker reads (opentracker.toml(5):
  # ip, ip:port, ipv6, [ipv6], [ipv6]:port, [ipv6%scope]:port; no port is
  # 6969) -> { host; port; }, an IPv6 host in brackets as systemd wants it,
  # or null for any other form.
  parseAddress = address:
    let
      number = digits:
        let m = builtins.match "0*([1-9][0-9]*)" digits; in
        if m == null then 0
        else if builtins.stringLength (builtins.head m) > 5 then 65536
        else lib.toInt (builtins.head m);
      portOr6969 = digits: if digits == null then 6969 else number digits;
      v4 = builtins.match "([0-9]+[.][0-9]+[.][0-9]+[.][0-9]+)(:([0-9]+))?" address;
      v6 = builtins.match "[[]([0-9A-Fa-f:.]+)(%[0-9]+)?[]](:([0-9]+))?" address;
      bare6 = builtins.match "([0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)" address;
      at = builtins.elemAt;
    in
    if v4 != null then { host = at v4 0; port = portOr6969 (at v4 2); }
    # The tracker takes a scope id only with a port.
    else if v6 != null && (at v6 1 == null || at v6 3 != null) then
      { host = "[${at v6 0}${if at v6 1 == null then "" else at v6 1}]"; port = portOr6969 (at v6 3); }
    else if bare6 != null then { host = "[${at bare6 0}]"; port = 6969; }
    else null;
  # Why systemd cannot listen on an address, or null when it can.
  addressProblem = address:
    let parsed = parseAddress address; in
    if parsed == null then
      "is not an address the tracker reads (ip, ip:port, [ipv6] or [ipv6]:port; a scope id only as [fe80::1%2]:port)"
    else if parsed.port == 0 then
      "has port 0 (any free port), which systemd's ListenStream=/ListenDatagram= cannot take: give the port"
    else if parsed.port > 65535 then "has a port above 65535"
    else null;
  # ListenStream=/ListenDatagram= value: the port made explicit, and "%"
  # (a scope id) escaped, as systemd reads it as a unit specifier.
  unitAddress = address:
    let parsed = parseAddress address; in
    if addressProblem address != null then address
    else builtins.replaceStrings [ "%" ] [ "%%" ] "${parsed.host}:${toString parsed.port}";
  portsOf = addresses:
    map (address: (parseAddress address).port)
      (builtins.filter (address: addressProblem address == null) addresses);
  tcpPorts = portsOf (listen.tcp_udp ++ listen.tcp);
  udpPorts = portsOf (listen.tcp_udp ++ listen.udp);
in
{
  options.services.opentracker = {
    enable = mkEnableOption "the opentracker BitTorrent tracker";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./nix/package.nix { }";
      description = "The opentracker package (the Rust one; nixpkgs' pkgs.opentracker is the C tracker).";
    };

    settings = mkOption {
      description = ''
        Written to opentracker.toml; see opentracker.toml(5). Keys left out
        keep their built-in defaults. The listen addresses become the
        ListenStream= and ListenDatagram= lines of opentracker.socket, an
        address without a port on 6969 as the tracker reads it (port 0 is
        refused: systemd cannot bind "any free port"); the tracker itself
        uses the sockets systemd passes.
        nixos-rebuild switch leaves a changed socket unit alone: restart
        opentracker.socket by hand for new addresses.
      '';
      default = { };
      example = lib.literalExpression ''
        {
          listen.tcp_udp = [ "[::]:6969" ];
          access.whitelist = "/etc/opentracker/whitelist.txt";
          tracker.interval = 900;
        }
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options.listen = {
          tcp_udp = mkOption {
            type = types.listOf types.str;
            default = [ "[::]:6969" ];
            description = "Addresses serving HTTP and UDP.";
          };
          tcp = mkOption {
            type = types.listOf types.str;
            default = [ ];
            description = "Addresses serving HTTP only.";
          };
          udp = mkOption {
            type = types.listOf types.str;
            default = [ ];
            description = "Addresses serving UDP only.";
          };
          udp_workers = mkOption {
            type = types.ints.between 0 256;
            default = 0;
            description = ''
              Threads serving each UDP socket, for hosts where one core cannot
              keep up; 0 serves UDP from the event loop. Every UDP socket gets
              its own. The unit's TasksMax is raised from 17 (18 with
              keepSwarms) when the workers of all UDP addresses, the event
              loop, the reload thread and the state saver need more.
            '';
          };
        };
        options.access.whitelist = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = ''
            File of info hashes that may be announced; reloaded on
            `systemctl reload opentracker`. The service runs as a transient
            (dynamic) user: the file must be readable by it, so
            world-readable, and not under /home, /root (ProtectHome=yes) or
            /tmp (PrivateTmp=yes gives the service a /tmp of its own).
          '';
        };
        options.tracker.interval = mkOption {
          type = types.ints.positive;
          default = 1800;
          description = "Announce interval in seconds.";
        };
      };
    };

    keepSwarms = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Keep the swarms across stops, reboots and crashes (a restart keeps
        them anyway, in systemd's descriptor store; so does
        nixos-rebuild switch, which restarts the changed service rather than
        stopping it with its socket): the tracker saves them
        to /var/lib/opentracker/state when it stops and every
        tracker.save_interval seconds (600), and loads them when it starts
        (tracker.save_state). The unit gets the state directory and stop
        timeout of systemd/opentracker-state.conf, the drop-in the Debian
        package ships for the same purpose. A settings.tracker.state_file of
        your own must be in /var/lib/opentracker, the only directory the
        service may write; settings.tracker.save_state must not be false.
      '';
    };

    passkeysFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/etc/opentracker/passkeys";
      description = ''
        File of passkeys (access.passkeys, see opentracker.toml(5)), handed
        to the service as a credential (LoadCredential=), so it may be
        readable by root alone; access.passkeys is set to the copy in
        /run/credentials/opentracker.service. systemd copies the file when
        the service starts: after changing it, restart opentracker (the
        swarms are kept), as a reload re-reads the old copy.
      '';
    };

    cluster.keyFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/etc/opentracker/cluster.key";
      description = ''
        The key of the cluster (settings.cluster, see opentracker.toml(5)),
        at least 16 bytes, e.g. from head -c 32 /dev/urandom | base64;
        needed with settings.cluster (listen and peers), whose key_file is
        set to the credential's copy. With settings.cluster the unit gets
        the directives of systemd/opentracker-cluster.conf: a network of
        its own (PrivateNetwork=no), AF_INET and AF_INET6, IPAddressAllow=
        for localhost, link-local and the private networks (override
        systemd.services.opentracker.serviceConfig.IPAddressAllow for
        others), and this file as a credential, readable by root alone.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the TCP and UDP ports of the listen addresses in the firewall.";
    };
  };

  config = mkIf cfg.enable {
    assertions = map
      (address: {
        assertion = addressProblem address == null;
        message = "services.opentracker.settings.listen: ${address} ${toString (addressProblem address)}.";
      })
      (listen.tcp_udp ++ listen.tcp ++ listen.udp)
    ++ [{
      assertion = !clustered || cfg.cluster.keyFile != null;
      message = "services.opentracker.settings.cluster needs services.opentracker.cluster.keyFile: "
        + "the service's dynamic user can read the key only as a credential.";
    }
    {
      assertion = clustered || cfg.cluster.keyFile == null;
      message = "services.opentracker.cluster.keyFile is set but settings.cluster (listen, peers) is not.";
    }
    {
      assertion = !(cfg.settings.cluster or { }) ? key_file;
      message = "services.opentracker: set cluster.keyFile, not settings.cluster.key_file (the module points it at the credential).";
    }
    {
      assertion = cfg.passkeysFile == null || (cfg.settings.access.passkeys or null) == null;
      message = "services.opentracker: set passkeysFile or settings.access.passkeys, not both.";
    }
    {
      assertion = !cfg.keepSwarms || stateFile == null
        || builtins.substring 0 (builtins.stringLength stateDirectory) stateFile == stateDirectory;
      message = "services.opentracker.keepSwarms: settings.tracker.state_file ${toString stateFile} "
        + "is outside ${stateDirectory}, the only directory the service may write.";
    }
    {
      # Otherwise the unit would get the state directory and the saver's
      # task for swarms that are never saved nor loaded.
      assertion = !cfg.keepSwarms || (settings.tracker.save_state or false) == true;
      message = "services.opentracker.keepSwarms needs settings.tracker.save_state, which it sets: "
        + "without it the swarms are neither saved nor loaded; drop one of the two settings.";
    }];

    environment.systemPackages = [ cfg.package ];

    systemd.sockets.opentracker = {
      description = "opentracker BitTorrent tracker sockets";
      wantedBy = [ "sockets.target" ];
      listenStreams = map unitAddress (listen.tcp_udp ++ listen.tcp);
      listenDatagrams = map unitAddress (listen.tcp_udp ++ listen.udp);
      socketConfig = socketDefaults;
    };

    systemd.services.opentracker = {
      description = "opentracker BitTorrent tracker";
      documentation = [ "man:opentracker(1)" "man:opentracker.toml(5)" ];
      requires = [ "opentracker.socket" ];
      # Saved peers' ages and cluster replay windows read the wall clock.
      after = [ "opentracker.socket" "time-sync.target" ];
      wantedBy = [ "multi-user.target" ];
      restartTriggers = [ configFile ];
      # A changed unit is restarted after the switch. With the default
      # (true), switch-to-configuration stops a socket-activated service
      # and its socket and starts the socket alone: systemd then empties
      # the descriptor store, and the swarms a restart keeps are lost.
      stopIfChanged = false;
      serviceConfig = builtins.mapAttrs (_: lib.mkDefault) serviceDefaults // {
        ExecStart = "${lib.getExe cfg.package} -f ${configFile}";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
      } // lib.optionalAttrs (credentialFiles != { }) {
        LoadCredential = lib.mapAttrsToList (name: file: "${name}:${file}") credentialFiles;
      };
    };

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts = tcpPorts;
      allowedUDPPorts = udpPorts;
    };
  };
}
