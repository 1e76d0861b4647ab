{ lib, rustPlatform }:

let
  root = ../.;
  cargoToml = builtins.fromTOML (builtins.readFile ../Cargo.toml);
  # Everything cargo may read (any workspace member, benches, tests) but not
  # the other recipes, docs or build output, so editing those does not
  # rebuild the package.
  drop = [ ".git" ".ci" "target" "result" "debian" "docker" "docs" "freebsd" "nix" "systemd" "flake.nix" "flake.lock" ];
  prefix = toString root + "/";
  topLevel = path:
    builtins.head (builtins.split "/" (builtins.substring (builtins.stringLength prefix) 4096 (toString path)));
in
rustPlatform.buildRustPackage {
  pname = "opentracker";
  version = cargoToml.package.version;

  src = builtins.path {
    name = "opentracker-source";
    path = root;
    filter = path: _type: !(builtins.elem (topLevel path) drop);
  };

  cargoLock.lockFile = ../Cargo.lock;

  # The workspace also holds a load generator; only the tracker is packaged.
  cargoBuildFlags = [ "--package" "opentracker" ];
  cargoTestFlags = [ "--package" "opentracker" ];

  postInstall = ''
    install -Dm644 packaging/opentracker.1 $out/share/man/man1/opentracker.1
    install -Dm644 packaging/opentracker.toml.5 $out/share/man/man5/opentracker.toml.5
    install -Dm644 packaging/opentracker.toml $out/share/doc/opentracker/opentracker.toml.sample
  '';

  meta = {
    description = cargoToml.package.description;
    license = lib.licenses.beerware;
    mainProgram = "opentracker";
    platforms = lib.platforms.linux ++ lib.platforms.freebsd;
  };
}
