// Drives the published client, unmodified, against a Vault: node published_client_flow.mjs BASE_URL
// Prints one JSON line per step and exits non-zero when any step does not behave as specified.
import {
  createVaultClient,
  ping,
  createServiceAccount,
  getServiceAccount,
  rotateServiceAccount,
} from "@thirdweb-dev/vault-sdk";

const baseUrl = process.argv[2];
let failures = 0;

function step(name, condition, detail) {
  console.log(JSON.stringify({ step: name, ok: Boolean(condition), detail }));
  if (!condition) failures += 1;
}

const client = await createVaultClient({ baseUrl });
step("publicKey", client.publicKey.length === 32, { length: client.publicKey.length });

const pong = await ping({ client, request: { options: { message: "interop ✓" } } });
step("ping", pong.success && pong.data.pong === "interop ✓" && typeof pong.data.timestamp === "number", pong);

// Spec 10.7.2: the caller's responseBinding passes through the unmodified client and comes back
// echoed inside the encrypted reply (the client returns the decrypted reply whole).
const binding = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
const bound = await ping({ client, request: { options: { message: "bound" }, responseBinding: binding } });
step("responseBinding echoed", bound.success && bound.responseBinding === binding, bound);

const metadata = { name: "interop", team: "conformance" };
const created = await createServiceAccount({ client, request: { options: { metadata } } });
step("serviceAccount:create", created.success && created.data.adminKey && created.data.rotationCode, created);
const { id, adminKey, rotationCode } = created.data;

const got = await getServiceAccount({ client, request: { auth: { adminKey } } });
step("serviceAccount:get", got.success && got.data.id === id && got.data.metadata.team === "conformance", got);

const rotated = await rotateServiceAccount({ client, request: { auth: { rotationCode } } });
step("serviceAccount:rotate", rotated.success && rotated.data.newAdminKey && rotated.data.newRotationCode, rotated);

const oldKey = await getServiceAccount({ client, request: { auth: { adminKey } } });
step("old admin key refused", !oldKey.success && oldKey.error.code === "auth_invalid_admin_key", oldKey);

const oldCode = await rotateServiceAccount({ client, request: { auth: { rotationCode } } });
step("old rotation code refused", !oldCode.success && typeof oldCode.error.code === "string", oldCode);

const fresh = await getServiceAccount({ client, request: { auth: { adminKey: rotated.data.newAdminKey } } });
step("new admin key works", fresh.success && fresh.data.id === id, fresh);

process.exit(failures === 0 ? 0 : 1);
