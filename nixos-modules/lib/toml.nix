# A TOML writer for the plain configs paramant services read, written with builtins only so
# that CI's Debian `nix-instantiate` and the NixOS modules render byte-identical files.
#
# Supported: strings, integers, booleans, lists of scalars, nested attrsets (tables) and
# non-empty lists of attrsets (arrays of tables). A `null` value leaves its key out, so optional
# settings can be passed through unchanged. Floats and mixed lists are refused: no paramant
# setting needs them, and a refusal is clearer than a subtly different rendering.
let
  inherit (builtins)
    all any attrNames concatStringsSep filter isAttrs isBool isFloat isInt isList isString
    map match toJSON;

  isTableArray = v: isList v && v != [ ] && all isAttrs v;
  isTable = v: isAttrs v;
  isScalarEntry = v: !(isTable v) && !(isTableArray v);

  # Bare keys when TOML allows them, quoted (JSON escaping is valid TOML) otherwise.
  key = k: if match "[A-Za-z0-9_-]+" k != null then k else toJSON k;

  scalar = where: v:
    if isString v then toJSON v
    else if isBool v then (if v then "true" else "false")
    else if isInt v then toString v
    else if isList v then
      (if any (x: isAttrs x || isList x) v
       then throw "toml: ${where}: lists may hold scalars only (or be a list of tables)"
       else "[" + concatStringsSep ", " (map (scalar where) v) + "]")
    else if isFloat v then throw "toml: ${where}: floats are not supported"
    else throw "toml: ${where}: cannot render a value of type ${builtins.typeOf v}";

  present = attrs: filter (k: attrs.${k} != null) (attrNames attrs);

  # The `k = v` lines of a table, then its sub-tables and arrays of tables under `path`.
  body = path: attrs:
    let
      names = present attrs;
      scalars = filter (k: isScalarEntry attrs.${k}) names;
      tables = filter (k: isTable attrs.${k}) names;
      arrays = filter (k: isTableArray attrs.${k}) names;
      dotted = k: concatStringsSep "." (map key (path ++ [ k ]));
      line = k: "${key k} = ${scalar (dotted k) attrs.${k}}\n";
      table = k: "\n[${dotted k}]\n" + body (path ++ [ k ]) attrs.${k};
      array = k: concatStringsSep "" (map (t: "\n[[${dotted k}]]\n" + body (path ++ [ k ]) t) attrs.${k});
    in
    concatStringsSep "" (map line scalars ++ map table tables ++ map array arrays);
in
{
  # toTOML :: attrset -> string
  toTOML = attrs: body [ ] attrs;
}
