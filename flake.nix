{
  description = "opentracker: in-memory BitTorrent tracker (HTTP and UDP), Rust";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (_system: pkgs: rec {
        opentracker = pkgs.callPackage ./nix/package.nix { };
        default = opentracker;
      });

      # `nix run` starts the tracker in open mode on port 6969.
      apps = forAllSystems (system: _pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${system}.default}/bin/opentracker";
        };
      });

      # Replaces nixpkgs' C opentracker with this one.
      overlays.default = final: _prev: {
        opentracker = final.callPackage ./nix/package.nix { };
      };

      nixosModules.default = import ./nix/module.nix;

      checks = forAllSystems (system: pkgs: {
        package = self.packages.${system}.default;
        overlay = (pkgs.extend self.overlays.default).opentracker;
        # Boots a VM: needs KVM and the binary cache, so CI with network.
        nixos = pkgs.testers.runNixOSTest (import ./nix/tests/vm.nix { module = self.nixosModules.default; });
      });
    };
}
