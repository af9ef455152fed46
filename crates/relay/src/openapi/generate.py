"""Writes openapi.json, the OpenAPI 3.1 document of the relay's public API: python3 generate.py > openapi.json"""
import json
H = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
def obj(props, required=(), extra=True):
    o = {"type": "object", "properties": props}
    if required: o["required"] = list(required)
    return o
ERR = {"$ref": "#/components/schemas/Error"}
def err(): return {"description": "Error (API reference error codes)", "content": {"application/json": {"schema": ERR}}}
def ok(schema, desc="OK"): return {"200": {"description": desc, "content": {"application/json": {"schema": schema}}}, "default": err()}
def q(name, schema, desc, required=False): return {"name": name, "in": "query", "required": required, "schema": schema, "description": desc}
def p(name, schema, desc): return {"name": name, "in": "path", "required": True, "schema": schema, "description": desc}
KEY = [{"apiKey": []}]
INT = {"type": "integer", "minimum": 0}
STH = {"$ref": "#/components/schemas/SignedSth"}
body = lambda schema: {"required": True, "content": {"application/json": {"schema": schema}}}

doc = {
 "openapi": "3.1.0",
 "info": {"title": "paramant relay public API", "version": "2", "license": {"name": "BUSL-1.1", "identifier": "BUSL-1.1"},
   "description": "The public API of a paramant sector relay (Ghost Pipe): burn-after-read blob transfer, device keys and DIDs, and the sector's transparency log (served by the log, forwarded on the relay's origin). The contract is the API reference; this document is checked against the running relay with schemathesis in CI. Errors are JSON {ok:false, error, detail}."},
 "servers": [{"url": "/"}],
 "components": {
  "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "pgp_ (developer) or plk_ (operator) key. Never in the URL."}},
  "schemas": {
   "Error": obj({"ok": {"const": False}, "error": {"type": "string"}, "detail": {"type": "string"}}, ["ok", "error"]),
   "Hash": H,
   "SignedSth": obj({"relay_id": {"type": "string"}, "sha3_root": H, "timestamp": INT, "tree_size": INT, "version": {"const": 1},
      "signature": {"type": "string", "contentEncoding": "base64"}, "pk_hash": H}, ["relay_id", "sha3_root", "timestamp", "tree_size", "version", "signature", "pk_hash"]),
   "AuditStep": obj({"hash": H, "position": {"enum": ["left", "right"]}}, ["hash", "position"]),
   "MerkleProof": obj({"leaf_hash": H, "leaf_index": INT, "tree_size": INT, "audit_path": {"type": "array", "items": {"$ref": "#/components/schemas/AuditStep"}}, "root": H, "sth": STH, "sth_signature": {"type": "string"}}, ["leaf_hash", "leaf_index", "tree_size", "audit_path", "root"]),
  }},
 "paths": {
  "/health": {"get": {"summary": "Relay health", "responses": ok(obj({"ok": {"const": True}, "service": {"type": "string"}, "version": {"type": "string"}, "sector": {"type": "string"}, "edition": {"type": "string"}, "draining": {"type": "boolean"}, "sandbox": {"type": "object"}}, ["ok", "version", "sector"]))}},
  "/v2/capabilities": {"get": {"summary": "Wire format and algorithms (SDK)", "responses": ok(obj({"wire_version": {"type": "integer"}, "kem": {"type": "array"}, "sig": {"type": "array"}}, ["wire_version", "kem", "sig"]))}},
  "/v2/auth/capabilities": {"get": {"summary": "Authentication modes of this relay", "responses": ok(obj({"user_totp_available": {"type": "boolean"}}, ["user_totp_available"]))}},
  "/v2/check-key": {"get": {"summary": "Whether the presented key is valid", "security": [{"apiKey": []}, {}], "responses": ok(obj({"valid": {"type": "boolean"}, "plan": {"type": ["string", "null"]}}, ["valid"]))}},
  "/v2/inbound": {"post": {"summary": "Upload a blob (burn-after-read)", "security": KEY,
     "requestBody": body(obj({"hash": H, "payload": {"type": "string", "contentEncoding": "base64"}, "ttl_ms": INT, "meta": {"type": "object"}, "drop": {"type": "boolean"}}, ["hash", "payload"])),
     "responses": ok(obj({"ok": {"const": True}, "hash": {"type": "string"}, "ttl_ms": INT, "size": INT, "download_token": {"type": "string"}, "merkle_proof": {"$ref": "#/components/schemas/MerkleProof"}}, ["ok", "hash", "merkle_proof"]))}},
  "/v2/outbound/{hash}": {"get": {"summary": "Download a blob; burned once completely sent", "security": KEY, "parameters": [p("hash", {"type": "string"}, "blob hash (or drop lookup id)")],
     "responses": {"200": {"description": "The blob bytes; receipt in X-Paramant-Receipt", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {"X-Paramant-Burned": {"schema": {"enum": ["true", "false"]}}, "X-Paramant-Receipt": {"schema": {"type": "string"}}}}, "default": err()}}},
  "/v2/status/{hash}": {"get": {"summary": "Whether a blob is still available", "security": KEY, "parameters": [p("hash", {"type": "string"}, "blob hash")],
     "responses": ok(obj({"available": {"type": "boolean"}}, ["available"]))}},
  "/v2/stream-next": {"get": {"summary": "Next blob queued for a device", "security": KEY,
     "parameters": [q("device", {"type": "string"}, "device id (SDK style: always 200)"), {"name": "X-Device-Id", "in": "header", "schema": {"type": "string"}, "description": "device id (API reference style: 204 when nothing is pending)"}],
     "responses": {"200": {"description": "A pending blob, or (SDK style) available=false", "content": {"application/json": {"schema": obj({"ok": {"const": True}, "available": {"type": "boolean"}}, ["ok"])}}}, "204": {"description": "Nothing pending"}, "default": err()}}},
  "/v2/audit": {"get": {"summary": "The caller's uploads and downloads", "security": KEY, "parameters": [q("limit", {"type": "integer", "minimum": 1}, "entries, newest first")],
     "responses": ok(obj({"ok": {"const": True}, "count": INT, "entries": {"type": "array"}}, ["ok", "count", "entries"]))}},
  "/v2/pubkey": {
     "get": {"summary": "The log's ML-DSA-65 public key (and its C2SP checkpoint note key)", "responses": ok(obj({"ok": {"const": True}, "alg": {"const": "ML-DSA-65"}, "public_key": {"type": "string"}, "pk_hash": H, "checkpoint_origin": {"type": "string"}, "checkpoint_key": {"type": "string"}}, ["ok", "alg", "public_key", "pk_hash"]))},
     "post": {"summary": "Register a device's public keys", "security": KEY, "requestBody": body(obj({"device_id": {"type": "string"}, "ecdh_pub": {"type": "string"}, "kyber_pub": {"type": "string"}}, ["device_id"])),
        "responses": ok(obj({"ok": {"const": True}}, ["ok"]))}},
  "/v2/pubkey/{device}": {"get": {"summary": "A device's registered public keys", "security": KEY, "parameters": [p("device", {"type": "string"}, "device id")],
     "responses": ok(obj({"device_id": {"type": "string"}}, ["device_id"]))}},
  "/v2/did": {"get": {"summary": "DIDs registered with the caller's key", "security": KEY, "responses": ok(obj({"ok": {"const": True}, "count": INT, "dids": {"type": "array"}}, ["ok", "count", "dids"]))}},
  "/v2/did/register": {"post": {"summary": "Register a device DID (did:paramant:)", "security": [{"apiKey": []}, {}],
     "requestBody": body(obj({"device_id": {"type": "string"}, "ecdh_pub": {"type": "string"}, "dsa_pub": {"type": "string"}}, ["device_id", "ecdh_pub"])),
     "responses": ok(obj({"ok": {"const": True}, "did": {"type": "string"}, "document": {"type": "object"}, "ct_index": INT}, ["ok", "did", "document"]))}},
  "/v2/did/{did}": {"get": {"summary": "Resolve a DID document", "parameters": [p("did", {"type": "string"}, "did:paramant:…")], "responses": ok({"type": "object"})}},
  "/v2/attest": {"post": {"summary": "Check that a device holds its registered key", "security": [{"apiKey": []}, {}],
     "requestBody": body(obj({"device_id": {"type": "string"}, "attestation": {"type": "object"}}, ["device_id", "attestation"])),
     "responses": ok(obj({"ok": {"type": "boolean"}, "valid": {"type": "boolean"}}, ["valid"]))}},
  "/v2/relays": {"get": {"summary": "Known relays", "responses": ok(obj({"total": INT, "relays": {"type": "array"}}, ["relays"]))}},
  "/v2/sth": {"get": {"summary": "Newest signed tree head", "responses": ok(obj({"ok": {"const": True}, "sth": STH}, ["ok", "sth"]))}},
  "/v2/sth/history": {"get": {"summary": "Newest signed tree heads", "parameters": [q("limit", {"type": "integer", "minimum": 1}, "at most 100")],
     "responses": ok(obj({"ok": {"const": True}, "count": INT, "total": INT, "sths": {"type": "array", "items": STH}}, ["ok", "count", "total", "sths"]))}},
  "/v2/sth/consistency": {"get": {"summary": "RFC 9162 consistency proof", "parameters": [q("from", {"type": "integer", "minimum": 1}, "older size", True), q("to", {"type": "integer", "minimum": 1}, "newer size (default: current)")],
     "responses": ok(obj({"ok": {"const": True}, "from": INT, "to": INT, "proof": {"type": "array", "items": H}, "root_from": H, "root_to": H}, ["ok", "from", "to", "proof"]))}},
  "/v2/sth/peers": {"get": {"summary": "Peers whose STHs this log archives", "responses": ok(obj({"ok": {"const": True}, "count": INT, "peers": {"type": "array"}}, ["ok", "count", "peers"]))}},
  "/v2/sth/peers/{pk_hash}": {"get": {"summary": "A peer's archived STHs", "parameters": [p("pk_hash", {"type": "string"}, "peer key fingerprint"), q("limit", {"type": "integer", "minimum": 1}, "page size"), q("offset", INT, "first STH")],
     "responses": ok(obj({"ok": {"const": True}, "relay_pk_hash": H, "sths": {"type": "array"}, "limit": INT, "offset": INT}, ["ok", "sths"]))}},
  "/v2/sth/forks": {"get": {"summary": "Fork evidence seen in gossip", "parameters": [q("limit", {"type": "integer", "minimum": 1}, "at most 100")], "responses": ok(obj({"ok": {"const": True}, "count": INT, "forks": {"type": "array"}}, ["ok", "forks"]))}},
  "/v2/sth/{timestamp}": {"get": {"summary": "First STH at or after a Unix-ms timestamp", "parameters": [p("timestamp", {"type": "string", "pattern": "^[0-9]+$"}, "Unix milliseconds")],
     "responses": ok(obj({"ok": {"const": True}, "sth": STH}, ["ok", "sth"]))}},
  "/v2/ct/log": {"get": {"summary": "Log entries", "parameters": [q("from", INT, "first index"), q("limit", {"type": "integer", "minimum": 1}, "at most 100")],
     "responses": ok(obj({"ok": {"const": True}, "entries": {"type": "array"}, "tree_size": INT, "root": H}, ["ok", "entries", "tree_size", "root"]))}},
  "/v2/ct/proof": {"get": {"summary": "Inclusion proof of a leaf", "parameters": [q("index", INT, "leaf index"), q("leaf_hash", H, "or the leaf hash"), q("tree_size", {"type": "integer", "minimum": 1}, "tree size (default: newest STH)")],
     "responses": ok(obj({"ok": {"const": True}, "leaf_index": INT, "leaf_hash": H, "audit_path": {"type": "array", "items": {"$ref": "#/components/schemas/AuditStep"}}, "root": H, "tree_size": INT}, ["ok", "leaf_index", "leaf_hash", "audit_path", "root", "tree_size"]))}},
  "/v2/verify-receipt": {"post": {"summary": "Verify a delivery receipt", "requestBody": body(obj({"receipt": {"type": ["string", "object"]}}, ["receipt"])),
     "responses": ok(obj({"valid": {"type": "boolean"}}, ["valid"]))}},
  "/ct/feed": {"get": {"summary": "JSON feed of the /ct/ page", "responses": ok(obj({"ok": {"const": True}, "tree_size": INT, "root": H, "sth": STH}, ["ok", "tree_size", "root", "sth"]))}},
  "/ct/feed.xml": {"get": {"summary": "RSS 2.0 feed of the last 20 STHs", "responses": {"200": {"description": "RSS", "content": {"application/rss+xml": {"schema": {"type": "string"}}}}, "default": err()}}},
  "/checkpoint": {"get": {"summary": "C2SP tlog-checkpoint (Ed25519 signed note, RFC 6962 SHA-256 tree over the log entries)", "responses": {"200": {"description": "signed note", "content": {"text/plain": {"schema": {"type": "string"}}}}, "default": err()}}},
  "/v2/sth/ingest": {"post": {"summary": "Gossip: a peer's signed tree head, verified before it is archived", "requestBody": body(obj({"relay_id": {"type": "string"}, "sha3_root": H, "timestamp": INT, "tree_size": INT, "version": {"type": "integer"}, "signature": {"type": "string"}, "public_key": {"type": "string"}}, ["relay_id", "sha3_root", "timestamp", "tree_size", "version", "signature", "public_key"])),
     "responses": ok(obj({"ok": {"const": True}, "relay_pk_hash": H}, ["ok", "relay_pk_hash"]))}},
  "/v2/request-trial": {"post": {"summary": "Request a trial key by email", "requestBody": body(obj({"name": {"type": "string"}, "email": {"type": "string"}, "use_case": {"type": "string"}}, ["email"])),
     "responses": ok(obj({"ok": {"const": True}}, ["ok"]))}},
  "/v2/webhook": {"post": {"summary": "Register a webhook for a device (SSRF-checked)", "security": KEY, "requestBody": body(obj({"device_id": {"type": "string"}, "url": {"type": "string"}}, ["url"])),
     "responses": ok(obj({"ok": {"const": True}}, ["ok"]))}},
  "/v2/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
 }}
print(json.dumps(doc, indent=1, ensure_ascii=False))
