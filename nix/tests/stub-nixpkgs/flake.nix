# Stand-in for the nixpkgs input, for `nix flake check --override-input
# nixpkgs path:...` where nixpkgs cannot be fetched. buildRustPackage makes
# a tiny derivation whose bin/opentracker echoes its arguments, and keeps
# the arguments it was given (minus functions) for inspection.
{
  outputs = { self }:
    let
      lib = import ./lib.nix;
      mkPkgs = system: overlays:
        let
          pkgs = {
            inherit lib system;
            callPackage = fn: args:
              let f = if builtins.isFunction fn then fn else import fn; in
              f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // args);
            extend = overlay: mkPkgs system (overlays ++ [ overlay ]);
            coreutils = "/stub/coreutils";
            formats.toml = _: { type = { name = "toml"; }; generate = name: _value: "/stub/${name}"; };
            rustPlatform.buildRustPackage = args: derivation {
              name = "${args.pname}-${args.version}";
              inherit system;
              builder = "/bin/sh";
              args = [ "-c" "/bin/mkdir -p $out/bin && /bin/echo '#!/bin/sh' > $out/bin/opentracker && /bin/echo 'echo stub opentracker \"$@\"' >> $out/bin/opentracker && /bin/chmod +x $out/bin/opentracker" ];
              src = args.src;
            } // {
              inherit (args) meta;
              passthru.buildArgs = {
                inherit (args) pname version cargoBuildFlags postInstall;
                lockFile = "${args.cargoLock.lockFile}";
                srcFiles = builtins.attrNames (builtins.readDir args.src);
              };
            };
            testers.runNixOSTest = test: derivation {
              name = "vm-test-${test.name}";
              inherit system;
              builder = "/bin/sh";
              args = [ "-c" "/bin/echo ${builtins.toJSON (builtins.attrNames test.nodes)} > $out" ];
            };
          };
        in
        builtins.foldl' (acc: overlay: acc // overlay acc pkgs) pkgs overlays;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: mkPkgs system [ ]);
    };
}
