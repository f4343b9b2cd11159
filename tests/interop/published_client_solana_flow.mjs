// Drives the published client's Solana functions, unmodified, against a Vault:
//   node published_client_solana_flow.mjs BASE_URL
// The flow makes the key, prints it (step "need-transactions"), and reads on stdin the base64
// transactions the test built for it with solders, one a line, an empty line to end. Prints one
// JSON line per call, {step, asked, result}; judges nothing. (sdk.js has a
// reconstructSolanaSignedTransaction helper, but 0.1.1 does not export it: the test fills the
// signature in itself.)
import {
  createServiceAccount,
  createSolanaAccount,
  createVaultClient,
  listSolanaAccounts,
  signSolanaMessage,
  signSolanaTransaction,
} from "@thirdweb-dev/vault-sdk";
import { createInterface } from "node:readline";

const baseUrl = process.argv[2];
const json = (value) =>
  JSON.stringify(value, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v));

async function record(step, asked, call) {
  let result;
  try {
    result = await call();
  } catch (error) {
    result = { threw: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
  console.log(json({ step, asked, result }));
  return result;
}

const client = await createVaultClient({ baseUrl });
const account = await record("serviceAccount:create", {}, () =>
  createServiceAccount({ client, request: { options: { metadata: { name: "solana-interop" } } } }),
);
const admin = { adminKey: account.data.adminKey };
const made = [];
for (const metadata of [{ tier: "hot" }, { tier: "cold", n: 2 }]) {
  const created = await record("createSolanaAccount", { metadata }, () =>
    createSolanaAccount({ client, request: { auth: admin, options: { metadata } } }),
  );
  made.push(created.data.pubkey);
}
await record("listSolanaAccounts", { page: 1, pageSize: 10 }, () =>
  listSolanaAccounts({ client, request: { auth: admin, options: { page: 1, pageSize: 10 } } }),
);
const from = made[0];
for (const [message, format] of [["hello from the published client ✓", "text"], ["0xdeadbeef", "hex"]]) {
  await record("signSolanaMessage", { from, message, format }, () =>
    signSolanaMessage({ client, request: { auth: admin, options: { from, message, format } } }),
  );
}
// The test needs the key to build transactions it signs: it answers on stdin with base64 lines.
console.log(json({ step: "need-transactions", asked: { from }, result: null }));
const lines = createInterface({ input: process.stdin });
for await (const transaction of lines) {
  if (!transaction) break;
  await record("signSolanaTransaction", { from, transaction }, () =>
    signSolanaTransaction({ client, request: { auth: admin, options: { from, transaction } } }),
  );
}
process.exit(0);
