# The published Python SDK (paramant-sdk 3.0.0 from PyPI, unmodified) for the VM tests: its
# wheel and pqcrypto's (not in nixpkgs) pinned by hash, the rest from nixpkgs. Hashes are the
# SHA-256 of the files PyPI serves (checked with `pip download` on 2026-12-06).
{ pkgs }:
let
  python = pkgs.python3;
  pqcrypto = python.pkgs.buildPythonPackage rec {
    pname = "pqcrypto";
    version = "0.4.0";
    format = "wheel";
    src = python.pkgs.fetchPypi {
      inherit pname version format;
      dist = "cp313";
      python = "cp313";
      abi = "cp313";
      platform = "manylinux_2_26_x86_64.manylinux_2_28_x86_64";
      hash = "sha256-HuKVTsqEFJ4pBkufgvEwvRrF4NljsKNeSKfJc3wuOU4=";
    };
    nativeBuildInputs = [ pkgs.autoPatchelfHook ];
    dependencies = [ python.pkgs.cffi ];
  };
  paramant-sdk = python.pkgs.buildPythonPackage rec {
    pname = "paramant_sdk";
    version = "3.0.0";
    format = "wheel";
    src = python.pkgs.fetchPypi {
      inherit pname version format;
      dist = "py3";
      python = "py3";
      hash = "sha256-ZYv/bpeMz+bt6xTXBbdIqvQDF2tovNWEhJOjzCrEwko=";
    };
    dependencies = [ pqcrypto ] ++ (with python.pkgs; [ cryptography requests websockets ]);
  };
in
python.withPackages (ps: [ paramant-sdk ps.mnemonic ])
