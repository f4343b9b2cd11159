// Independent check of vectors/envelope_kat.json (PROTOCOL.md section 2) with the very
// libraries the published client @thirdweb-dev/vault-sdk 0.1.1 uses (src/sdk.ts):
// x25519 from @noble/curves/ed25519, hkdf + sha256 from @noble/hashes,
// xchacha20poly1305 from @noble/ciphers/chacha. The vectors were written with libsodium and
// pyca/cryptography (vectors/_generate/envelope.py); nothing here shares code with them.
//
// Also replays the "open" stage of vectors/envelope_invalid.json: every low-order key must make
// x25519 throw, every forged ciphertext must fail the tag check, the control must open.
//
// Usage: node tests/interop/verify_envelope_kats.mjs   (after `npm ci` in tests/interop)
// Exits 1 on any mismatch and prints one line per failure.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

import { xchacha20poly1305 } from "@noble/ciphers/chacha";
import { x25519 } from "@noble/curves/ed25519";
import { hkdf } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils";

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "vectors");
const load = (name) => JSON.parse(readFileSync(join(VECTORS, name), "utf8"));

let checks = 0;
const failures = [];

function expectEqual(what, actual, expected) {
  checks += 1;
  if (actual !== expected) failures.push(`${what}: expected ${expected.slice(0, 80)}, got ${String(actual).slice(0, 80)}`);
}

function expectThrow(what, fn) {
  checks += 1;
  try {
    fn();
  } catch {
    return;
  }
  failures.push(`${what}: expected an exception, none was thrown`);
}

const P = (1n << 255n) - 19n;

// RFC 7748 section 5 clamping, as a number.
function clampedScalar(secret) {
  const k = Uint8Array.from(secret);
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
  return BigInt("0x" + bytesToHex(k.reverse()));
}

// The client's derivation, as in sdk.ts encryptForEnclave / decryptFromEnclave.
function deriveKey(secret, peerPublic, info) {
  const shared = x25519.getSharedSecret(secret, peerPublic);
  return { shared, key: hkdf(sha256, shared, undefined, info, 32) };
}

function checkKats() {
  const file = load("envelope_kat.json");
  let count = 0;
  for (const group of file.testGroups) {
    const info = new TextDecoder().decode(hexToBytes(group.hkdfInfo));
    expectEqual("hkdfInfo", info, "encryption");
    const enclaveSecret = hexToBytes(group.enclaveSecret);
    expectEqual("enclavePublicKey", bytesToHex(x25519.getPublicKey(enclaveSecret)), group.enclavePublicKey);
    for (const test of group.tests) {
      count += 1;
      const clientPublic = hexToBytes(test.request.envelope.ephemeralPublicKey);
      const directions = [
        // [name, side, recipient public (for sealing), recipient secret (for opening)]
        ["request", test.request, hexToBytes(group.enclavePublicKey), enclaveSecret],
        ["response", test.response, clientPublic, hexToBytes(test.request.ephemeralSecret)],
      ];
      for (const [name, side, recipientPublic, recipientSecret] of directions) {
        const where = `tcId ${test.tcId} ${name}`;
        const secret = hexToBytes(side.ephemeralSecret);
        const nonce = hexToBytes(side.nonce);
        const msg = hexToBytes(side.msg);
        expectEqual(`${where} envelope nonce`, side.envelope.nonce, side.nonce);
        if (clampedScalar(secret) >= P) {
          // @noble/curves 1.8.2 refuses scalars above p (see the ScalarAboveP note); the
          // opening below still checks this side's envelope from the recipient's secret.
          expectEqual(`${where} flagged ScalarAboveP`, String(test.flags.includes("ScalarAboveP")), "true");
          expectThrow(`${where} noble refuses a scalar above p`, () => x25519.getPublicKey(secret));
        } else {
          expectEqual(`${where} ephemeralPublicKey`, bytesToHex(x25519.getPublicKey(secret)), side.envelope.ephemeralPublicKey);
          // Seal as the sender does.
          const { shared, key } = deriveKey(secret, recipientPublic, info);
          expectEqual(`${where} sharedSecret`, bytesToHex(shared), side.sharedSecret);
          expectEqual(`${where} key`, bytesToHex(key), side.key);
          const sealed = xchacha20poly1305(key, nonce).encrypt(msg);
          expectEqual(`${where} ciphertext`, bytesToHex(sealed), side.envelope.ciphertext);
        }
        // Open as the recipient does, from the envelope alone.
        const opened = deriveKey(recipientSecret, hexToBytes(side.envelope.ephemeralPublicKey), info);
        expectEqual(`${where} recipient sharedSecret`, bytesToHex(opened.shared), side.sharedSecret);
        expectEqual(`${where} recipient key`, bytesToHex(opened.key), side.key);
        let plain = "(threw)";
        try {
          plain = bytesToHex(xchacha20poly1305(opened.key, hexToBytes(side.envelope.nonce)).decrypt(hexToBytes(side.envelope.ciphertext)));
        } catch (error) {
          plain = `(threw ${error.message})`;
        }
        expectEqual(`${where} opened plaintext`, plain, side.msg);
      }
      if (test.flags.includes("Operation")) {
        // The request plaintext is what the client's JSON.stringify would send.
        const text = new TextDecoder("utf-8", { fatal: true }).decode(hexToBytes(test.request.msg));
        expectEqual(`tcId ${test.tcId} request is compact JSON`, JSON.stringify(JSON.parse(text)), text);
      }
    }
  }
  expectEqual("envelope_kat numberOfTests", String(count), String(file.numberOfTests));
}

function checkInvalidOpenStage(enclaveSecret) {
  const file = load("envelope_invalid.json");
  const info = "encryption";
  for (const group of file.testGroups) {
    if (group.stage !== "open") continue;
    for (const test of group.tests) {
      const where = `envelope_invalid tcId ${test.tcId}`;
      const envelope = JSON.parse(test.body);
      const peer = hexToBytes(envelope.ephemeralPublicKey);
      const open = () => {
        const { key } = deriveKey(enclaveSecret, peer, info);
        return xchacha20poly1305(key, hexToBytes(envelope.nonce)).decrypt(hexToBytes(envelope.ciphertext));
      };
      if (test.result === "valid") {
        let ok = "opened";
        try {
          open();
        } catch (error) {
          ok = `threw ${error.message}`;
        }
        expectEqual(where, ok, "opened");
      } else if (test.type === "low_order_public_key") {
        expectThrow(`${where} x25519 with a low-order key`, () => x25519.getSharedSecret(enclaveSecret, peer));
      } else if (test.type === "decryption_failed") {
        expectThrow(`${where} decrypt`, open);
      } else {
        failures.push(`${where}: no rule for result ${test.result} type ${test.type}`);
      }
    }
  }
}

const kat = load("envelope_kat.json");
checkKats();
checkInvalidOpenStage(hexToBytes(kat.testGroups[0].enclaveSecret));

for (const failure of failures) console.error(`FAIL ${failure}`);
console.log(`envelope vectors under @noble: ${checks - failures.length} passed, ${failures.length} failed`);
process.exit(failures.length === 0 ? 0 : 1);
