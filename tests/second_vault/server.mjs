// A second, independent, minimal Vault: the `core` and `accounts` profiles of docs/spec, written
// from the specification alone (not from reference/), in Node with the published client's own
// @noble libraries. Its purpose is to keep the harness honest: a check that passes the Python
// reference but fails this server leans either on a quirk of ours or on a defect here.
//
// Usage: node server.mjs --port N [--host 127.0.0.1]
// Prints one line `listening http://HOST:PORT` on stdout once it accepts connections.
// Everything is in memory and lost when the process exits.

import { createRequire } from "node:module";
import { createServer } from "node:http";
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { fileURLToPath } from "node:url";

// The @noble packages are those that tests/interop/package-lock.json installs for the published
// client; resolving from that directory adds no dependency of our own.
const interop = createRequire(fileURLToPath(new URL("../interop/package.json", import.meta.url)));
const { x25519 } = interop("@noble/curves/ed25519");
const { hkdf } = interop("@noble/hashes/hkdf");
const { hmac } = interop("@noble/hashes/hmac");
const { sha256 } = interop("@noble/hashes/sha256");
const { xchacha20poly1305 } = interop("@noble/ciphers/chacha");

const BODY_LIMIT = 1024 * 1024; // 3.5 step 1: 1 MiB
const DRAIN_LIMIT = 64 * BODY_LIMIT; // an oversized body is read (and dropped) up to this, then cut
const INFO = new TextEncoder().encode("encryption"); // 3.2 step 3
const JSON_TYPE = "application/json";

// ---------------------------------------------------------------------------------------------
// Keys

const staticSecret = x25519.utils.randomPrivateKey();
const staticPublic = x25519.getPublicKey(staticSecret);
const staticPublicHex = toHex(staticPublic);
// Secrets at rest (6.5): only keyed digests are kept; this key lives only in this process.
const secretKey = randomBytes(32);

function toHex(bytes) {
  return Buffer.from(bytes).toString("hex"); // lowercase (3.1)
}

// 3.5 step 4: an even number of digits 0-9, a-f, A-F, nothing else. (JavaScript's `$` without the
// m flag matches only at the very end, so a trailing newline is not let through.)
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function deriveKey(shared) {
  return hkdf(sha256, shared, undefined, INFO, 32); // salt absent = 32 zero bytes (RFC 5869)
}

// ---------------------------------------------------------------------------------------------
// Strict JSON: RFC 8259 via JSON.parse (iterative in V8, so deep nesting is an error, not a
// crash), plus the one rule JSON.parse does not enforce: no member name twice in one object.

function decodeUtf8(bytes) {
  try {
    // fatal: invalid UTF-8 is an error; ignoreBOM: a BOM stays a character, which JSON refuses.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

function hasDuplicateName(text) {
  // Runs only on text JSON.parse accepted, so a plain scan can tell names from values.
  const stack = []; // per open container: null for arrays, {names, expectName} for objects
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{") stack.push({ names: new Set(), expectName: true });
    else if (c === "[") stack.push(null);
    else if (c === "}" || c === "]") stack.pop();
    else if (c === ",") {
      const top = stack[stack.length - 1];
      if (top) top.expectName = true;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top && top.expectName) {
        const name = JSON.parse(text.slice(i, j + 1)); // "\u0061" and "a" are one name
        if (top.names.has(name)) return true;
        top.names.add(name);
        top.expectName = false;
      }
      i = j;
    }
  }
  return false;
}

// Returns the parsed value, or undefined for anything that is not one strict JSON text.
function parseStrictJson(bytes) {
  const text = decodeUtf8(bytes);
  if (text === null) return undefined;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return hasDuplicateName(text) ? undefined : value;
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function own(object, name) {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}

// ---------------------------------------------------------------------------------------------
// HTTP answers

class Unencrypted {
  // An unencrypted error (4.1). Messages are fixed texts: they never carry request bytes.
  constructor(status, type, message) {
    this.status = status;
    this.type = type;
    this.message = message;
  }
}

const ERR = {
  notFound: new Unencrypted(404, "not_found", "no such path"),
  methodNotAllowed: new Unencrypted(405, "method_not_allowed", "method not allowed on this path"),
  tooLarge: new Unencrypted(413, "payload_too_large", "the body exceeds 1 MiB"),
  invalidJson: new Unencrypted(400, "invalid_json", "the body is not one UTF-8 JSON object"),
  invalidEnvelope: new Unencrypted(400, "invalid_envelope", "ephemeralPublicKey, nonce and ciphertext must be strings"),
  invalidHex: new Unencrypted(400, "invalid_hex", "an envelope member is not an even number of hex digits"),
  invalidLength: new Unencrypted(400, "invalid_length", "an envelope member has the wrong length"),
  lowOrder: new Unencrypted(400, "low_order_public_key", "the ephemeral public key has small order"),
  decryptionFailed: new Unencrypted(400, "decryption_failed", "decryption failed"),
};

function send(res, status, body, extraHeaders = {}) {
  const bytes = Buffer.from(JSON.stringify(body), "utf8");
  res.writeHead(status, { "Content-Type": JSON_TYPE, "Content-Length": bytes.length, ...extraHeaders });
  res.end(res.req.method === "HEAD" ? undefined : bytes);
}

function sendError(res, err, extraHeaders) {
  send(res, err.status, { error: { message: err.message, status: err.status, type: err.type } }, extraHeaders);
}

// ---------------------------------------------------------------------------------------------
// The envelope (3.5 validation order, 3.2 opening, 3.3 sealing)

function openRequest(body) {
  if (body.length > BODY_LIMIT) return { error: ERR.tooLarge };
  const envelope = parseStrictJson(body);
  if (!isObject(envelope)) return { error: ERR.invalidJson };
  const members = ["ephemeralPublicKey", "nonce", "ciphertext"].map((name) => own(envelope, name));
  if (!members.every((m) => typeof m === "string")) return { error: ERR.invalidEnvelope };
  if (!members.every((m) => HEX.test(m))) return { error: ERR.invalidHex };
  const [clientKey, nonce, ciphertext] = members.map((m) => Uint8Array.from(Buffer.from(m, "hex")));
  if (clientKey.length !== 32 || nonce.length !== 24 || ciphertext.length < 16) return { error: ERR.invalidLength };
  let shared;
  try {
    shared = x25519.getSharedSecret(staticSecret, clientKey);
  } catch {
    return { error: ERR.lowOrder }; // @noble throws on an all-zero result
  }
  if (shared.every((b) => b === 0)) return { error: ERR.lowOrder }; // 3.6, should noble ever not throw
  let plaintext;
  try {
    plaintext = xchacha20poly1305(deriveKey(shared), nonce).decrypt(ciphertext);
  } catch {
    return { error: ERR.decryptionFailed };
  }
  return { clientKey, plaintext };
}

function sealReply(clientKey, reply) {
  const ephemeralSecret = x25519.utils.randomPrivateKey(); // fresh per response (3.4)
  const ephemeralPublic = x25519.getPublicKey(ephemeralSecret);
  const key = deriveKey(x25519.getSharedSecret(ephemeralSecret, clientKey));
  const nonce = randomBytes(24);
  const ciphertext = xchacha20poly1305(key, nonce).encrypt(new TextEncoder().encode(JSON.stringify(reply)));
  ephemeralSecret.fill(0);
  key.fill(0);
  return { ephemeralPublicKey: toHex(ephemeralPublic), nonce: toHex(nonce), ciphertext: toHex(ciphertext) };
}

// ---------------------------------------------------------------------------------------------
// Operations (5, 6). Each returns data or throws a Refusal, answered as an encrypted error (4.2).

class Refusal extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const accounts = new Map(); // id -> {id, metadata, createdAt, updatedAt, adminDigest, rotationDigest}
const bySecret = new Map(); // hex digest -> id, for both kinds (the kind is inside the digest)

function digest(kind, secret) {
  // 6.5: HMAC(K, kind || 0x00 || secret); the kind keeps an admin key from matching a rotation code.
  return hmac(sha256, secretKey, Buffer.concat([Buffer.from(kind), Buffer.from([0]), Buffer.from(secret, "utf8")]));
}

function findAccount(kind, secret) {
  const computed = digest(kind, secret);
  const account = accounts.get(bySecret.get(toHex(computed)));
  if (!account) return undefined;
  const current = kind === "admin-key" ? account.adminDigest : account.rotationDigest;
  return timingSafeEqual(Buffer.from(current), Buffer.from(computed)) ? account : undefined;
}

function newSecret(prefix) {
  return prefix + randomBytes(32).toString("hex"); // 256 bits from the CSPRNG (6.1)
}

function issueSecrets(account) {
  const adminKey = newSecret("sa_adm_");
  const rotationCode = newSecret("sa_rot_");
  account.adminDigest = digest("admin-key", adminKey);
  account.rotationDigest = digest("rotation-code", rotationCode);
  bySecret.set(toHex(account.adminDigest), account.id);
  bySecret.set(toHex(account.rotationDigest), account.id);
  return { adminKey, rotationCode };
}

function ping(options) {
  const message = Object.hasOwn(options, "message") ? options.message : ""; // null is not a string
  if (typeof message !== "string") throw new Refusal("invalid_input", "options.message must be a string");
  return { timestamp: Date.now(), pong: message };
}

function createAccount(options) {
  const metadata = Object.hasOwn(options, "metadata") ? options.metadata : {};
  if (!isObject(metadata) || !Object.values(metadata).every((v) => typeof v === "string")) {
    throw new Refusal("invalid_input", "options.metadata must map strings to strings");
  }
  const now = new Date().toISOString(); // UTC, milliseconds, Z
  const account = { id: randomUUID(), metadata, createdAt: now, updatedAt: now };
  const { adminKey, rotationCode } = issueSecrets(account);
  accounts.set(account.id, account);
  return { id: account.id, adminKey, rotationCode, createdAt: now, updatedAt: now };
}

// 6.2: the regular auth union; the first member present in this order decides.
function authenticate(auth) {
  if (auth === undefined) throw new Refusal("auth_missing", "this operation needs auth");
  if (Object.hasOwn(auth, "adminKey")) {
    const account = typeof auth.adminKey === "string" ? findAccount("admin-key", auth.adminKey) : undefined;
    if (!account) throw new Refusal("auth_invalid_admin_key", "the admin key is not valid");
    return account;
  }
  if (Object.hasOwn(auth, "accessToken")) throw new Refusal("auth_invalid_access_token", "access tokens are not supported by this Vault");
  if (Object.hasOwn(auth, "sessionToken")) throw new Refusal("auth_unsupported_method", "session tokens are not supported");
  if (Object.hasOwn(auth, "rotationCode")) throw new Refusal("auth_unsupported_method", "a rotation code only authorises serviceAccount:rotate");
  throw new Refusal("auth_missing", "this operation needs auth");
}

function getAccount(auth) {
  const { id, metadata, createdAt, updatedAt } = authenticate(auth);
  return { id, metadata, createdAt, updatedAt };
}

function rotateAccount(auth) {
  const code = auth === undefined ? undefined : own(auth, "rotationCode");
  const account = typeof code === "string" ? findAccount("rotation-code", code) : undefined;
  if (!account) throw new Refusal("auth_invalid_rotation_code", "the rotation code is not valid");
  // One synchronous block: no other request can observe a partial change (6.4).
  bySecret.delete(toHex(account.adminDigest));
  bySecret.delete(toHex(account.rotationDigest));
  const { adminKey, rotationCode } = issueSecrets(account);
  account.updatedAt = new Date().toISOString();
  return { newAdminKey: adminKey, newRotationCode: rotationCode };
}

const OPERATIONS = {
  ping: (auth, options) => ping(options),
  "serviceAccount:create": (auth, options) => createAccount(options),
  "serviceAccount:get": (auth) => getAccount(auth),
  "serviceAccount:rotate": (auth) => rotateAccount(auth),
};

function runPlaintext(plaintext) {
  const request = parseStrictJson(plaintext);
  if (!isObject(request) || typeof own(request, "operation") !== "string") {
    throw new Refusal("serialization_error", "the request must be a JSON object with a string operation");
  }
  const auth = own(request, "auth");
  const options = own(request, "options") ?? {}; // absent or null means {} (5.2)
  if ((auth !== undefined && !isObject(auth)) || !isObject(options)) {
    throw new Refusal("serialization_error", "auth and options must be objects");
  }
  const operation = Object.hasOwn(OPERATIONS, request.operation) ? OPERATIONS[request.operation] : undefined;
  if (!operation) throw new Refusal("unknown_operation", "this Vault does not implement the operation");
  return operation(auth, options);
}

function reply(plaintext) {
  try {
    return { success: true, data: runPlaintext(plaintext), error: null };
  } catch (err) {
    if (err instanceof Refusal) return { success: false, data: null, error: { code: err.code, message: err.message } };
    return { success: false, data: null, error: { code: "internal_server_error", message: "internal error" } };
  }
}

function handleEnvelope(res, body) {
  const opened = openRequest(body);
  if (opened.error) return sendError(res, opened.error);
  send(res, 200, sealReply(opened.clientKey, reply(opened.plaintext)));
}

// ---------------------------------------------------------------------------------------------
// Routing (2): exact paths; unknown path 404, disallowed method 405.

const ROUTES = {
  "/health": { GET: (req, res) => send(res, 200, { status: "ok" }) },
  "/api/v1/enclave": {
    GET: (req, res) => send(res, 200, { publicKey: staticPublicHex }),
    POST: readBodyThen(handleEnvelope),
  },
  "/v1/enclave/post": { POST: readBodyThen(handleEnvelope) },
};

function readBodyThen(handler) {
  return (req, res) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > BODY_LIMIT) {
      // Refused by its declared length, before reading; the connection is not reused.
      req.resume();
      return sendError(res, ERR.tooLarge, { Connection: "close" });
    }
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size <= BODY_LIMIT) chunks.push(chunk);
      else chunks.length = 0; // over the limit: keep counting, stop keeping
      if (size > DRAIN_LIMIT) req.destroy();
    });
    req.on("end", () => {
      if (size > BODY_LIMIT) return sendError(res, ERR.tooLarge, { Connection: "close" });
      try {
        handler(res, Buffer.concat(chunks));
      } catch {
        // Outside the router's try (this runs later, on 'end'); a defect must not end the process.
        if (!res.headersSent) send(res, 500, { error: { message: "internal error", status: 500, type: "internal_server_error" } });
      }
    });
    req.on("error", () => {}); // a client that goes away gets no answer
  };
}

function route(req, res) {
  let path;
  try {
    path = new URL(req.url, "http://vault.invalid").pathname;
  } catch {
    return sendError(res, ERR.notFound);
  }
  if (!req.url.startsWith("/")) return sendError(res, ERR.notFound); // absolute-form or '*'
  const methods = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
  if (!methods) return sendError(res, ERR.notFound);
  const method = req.method === "HEAD" && methods.GET ? "GET" : req.method; // HEAD where GET (2)
  if (!Object.hasOwn(methods, method)) {
    const allow = Object.keys(methods).flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m])).join(", ");
    req.resume();
    return sendError(res, ERR.methodNotAllowed, { Allow: allow });
  }
  methods[method](req, res);
}

function main() {
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
  };
  const host = option("--host", "127.0.0.1");
  const port = Number(option("--port", "8080"));
  const server = createServer((req, res) => {
    try {
      route(req, res);
    } catch {
      // A defect here must still not leak a trace (4.4); 500 is honest about it.
      if (!res.headersSent) send(res, 500, { error: { message: "internal error", status: 500, type: "internal_server_error" } });
    }
  });
  server.listen(port, host, () => console.log(`listening http://${host}:${server.address().port}`));
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // keep-alive sockets would otherwise hold the exit for seconds
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
