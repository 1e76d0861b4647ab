# NixOS VM test (nix flake check on a machine with KVM and network).
{ module }:
{
  name = "opentracker";
  nodes.tracker = {
    imports = [ module ];
    services.opentracker = {
      enable = true;
      openFirewall = true;
    };
  };
  testScript = ''
    tracker.wait_for_unit("opentracker.socket")
    tracker.succeed("systemctl start opentracker.service")
    tracker.wait_for_unit("opentracker.service")
    tracker.succeed("opentracker --healthcheck 127.0.0.1:6969")
    tracker.succeed("systemctl reload opentracker.service")
    tracker.succeed("systemd-analyze security --threshold=10 opentracker.service")
    tracker.fail("test \"$(stat -c %u /proc/$(systemctl show -P MainPID opentracker.service))\" = 0")
  '';
}
