# The few nixpkgs lib functions flake.nix, nix/package.nix and nix/module.nix
# use, reimplemented with builtins so they evaluate with no nixpkgs (none can
# be downloaded on the test machine). mkOption and the types only record
# what they were given, for the checks to inspect.
rec {
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  mkOption = attrs: attrs // { _isOption = true; };
  mkEnableOption = name: { _isOption = true; type = types.bool; default = false; description = "Whether to enable ${name}."; };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkDefault = value: value;
  optionalAttrs = condition: set: if condition then set else { };
  mapAttrsToList = f: set: map (name: f name set.${name}) (builtins.attrNames set);
  recursiveUpdate = left: right:
    left // builtins.mapAttrs
      (name: value:
        if builtins.isAttrs value && builtins.isAttrs (left.${name} or null)
        then recursiveUpdate left.${name} value else value)
      right;
  literalExpression = text: { _type = "literalExpression"; inherit text; };
  getExe = pkg: "${pkg}/bin/${pkg.meta.mainProgram}";
  toInt = builtins.fromJSON;
  filterAttrsRecursive = pred: set:
    builtins.listToAttrs (builtins.concatMap
      (name:
        let v = set.${name}; in
        if pred name v then [{ inherit name; value = if builtins.isAttrs v then filterAttrsRecursive pred v else v; }] else [ ])
      (builtins.attrNames set));
  licenses.beerware = { shortName = "Beerware"; };
  platforms = { linux = [ "x86_64-linux" "aarch64-linux" ]; freebsd = [ "x86_64-freebsd" ]; };
  types = {
    bool = { name = "bool"; };
    str = { name = "str"; };
    package = { name = "package"; };
    listOf = t: { name = "listOf"; elemType = t; };
    nullOr = t: { name = "nullOr"; elemType = t; };
    ints.positive = { name = "positiveInt"; };
    ints.between = lowest: highest: { name = "intBetween"; inherit lowest highest; };
    submodule = m: { name = "submodule"; module = m; };
  };
}
