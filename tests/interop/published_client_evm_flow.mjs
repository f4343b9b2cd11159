// Drives the published client's EVM and access-token functions, unmodified, against a Vault:
//   node published_client_evm_flow.mjs BASE_URL
// Prints one JSON line per call, {step, asked, result}: what was passed to the client and what the
// client returned, untouched. It judges nothing; test_published_client_evm.py decodes and verifies
// every result with independent libraries. Exits non-zero only when the client itself throws.
import {
  createAccessToken,
  createEoa,
  createServiceAccount,
  createSignedAccessToken,
  createVaultClient,
  getServiceAccount,
  listAccessTokens,
  listEoas,
  parseTransaction,
  revokeAccessToken,
  signAuthorization,
  signMessage,
  signStructuredMessage,
  signTransaction,
  signTypedData,
} from "@thirdweb-dev/vault-sdk";

const baseUrl = process.argv[2];
const TO = "0x3535353535353535353535353535353535353535";

// BigInt inputs (parseTransaction's callers use them) are printed as decimal strings.
const json = (value) => JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));

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
const account = await record("serviceAccount:create", { metadata: { name: "evm-interop" } }, () =>
  createServiceAccount({ client, request: { options: { metadata: { name: "evm-interop" } } } }),
);
const admin = { adminKey: account.data.adminKey };

// ---- EOAs -------------------------------------------------------------------------------------
const eoaMetadata = [
  { team: "pay", n: 3, live: true },
  { team: "ops", n: 4, live: false },
  { team: "pay", n: 5, live: true },
];
const eoas = [];
for (const [i, metadata] of eoaMetadata.entries()) {
  const made = await record(`createEoa#${i}`, { metadata }, () =>
    createEoa({ client, request: { auth: admin, options: { metadata } } }),
  );
  eoas.push(made.data.address);
}
const [payEoa, opsEoa] = eoas;
for (const paging of [{ page: 1, pageSize: 2 }, { page: 2, pageSize: 2 }, { page: 3, pageSize: 2 }, {}]) {
  await record("listEoas", paging, () => listEoas({ client, request: { auth: admin, options: paging } }));
}

// ---- messages and typed data ----------------------------------------------------------------
const messages = [
  { from: payEoa, message: "hello ✓ vault", format: "text", chainId: 1 },
  { from: payEoa, message: "0xdeadbeef00ff", format: "hex", chainId: 137 },
  { from: payEoa, message: "no format, no chainId" },
];
for (const options of messages) {
  await record("signMessage", options, () => signMessage({ client, request: { auth: admin, options } }));
}

// EIP-712's own example (the "Mail" test case of the EIP).
const mail = {
  domain: {
    name: "Ether Mail",
    version: "1",
    chainId: 1,
    verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
  },
  types: {
    EIP712Domain: [
      { name: "name", type: "string" },
      { name: "version", type: "string" },
      { name: "chainId", type: "uint256" },
      { name: "verifyingContract", type: "address" },
    ],
    Person: [
      { name: "name", type: "string" },
      { name: "wallet", type: "address" },
    ],
    Mail: [
      { name: "from", type: "Person" },
      { name: "to", type: "Person" },
      { name: "contents", type: "string" },
    ],
  },
  primaryType: "Mail",
  message: {
    from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
    to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
    contents: "Hello, Bob!",
  },
};
await record("signTypedData", { from: payEoa, typedData: mail }, () =>
  signTypedData({ client, request: { auth: admin, options: { from: payEoa, typedData: mail } } }),
);
// viem-style typed data leaves EIP712Domain out of `types` (the client's type allows it); the domain's
// own members then give its type, in EIP-712's order, so the digest is the EIP's.
const { EIP712Domain, ...typesWithoutDomain } = mail.types;
const viemMail = { ...mail, types: typesWithoutDomain };
await record("signTypedData without EIP712Domain", { from: payEoa, typedData: viemMail }, () =>
  signTypedData({ client, request: { auth: admin, options: { from: payEoa, typedData: viemMail } } }),
);

// ---- authorizations (EIP-7702 tuples) -------------------------------------------------------
const delegate = "0x1111111111111111111111111111111111111111";
const authorizations = [
  { chainId: "0x1", address: delegate, nonce: 7 },
  { chainId: "137", address: "0x2222222222222222222222222222222222222222", nonce: 0 },
];
const signedAuthorizations = [];
for (const authorization of authorizations) {
  const signed = await record("signAuthorization", { from: payEoa, authorization }, () =>
    signAuthorization({ client, request: { auth: admin, options: { from: payEoa, authorization } } }),
  );
  signedAuthorizations.push(signed.data?.signedAuthorization);
}

// ---- transactions, in the shapes of transaction-types.ts ------------------------------------
const accessList = [
  {
    address: "0x00000000000000000000000000000000000000aa",
    storageKeys: [
      "0x0000000000000000000000000000000000000000000000000000000000000001",
      "0x00000000000000000000000000000000000000000000000000000000000000ff",
    ],
  },
];
const fees = { maxFeePerGas: "0x6fc23ac00", maxPriorityFeePerGas: "0x3b9aca00" };
const transactions = {
  legacy: { type: "0x00", nonce: "0x9", gasPrice: "0x4a817c800", gasLimit: "0x5208", to: TO,
            value: "0xde0b6b3a7640000", input: "0x" },
  "legacy+chainId": { type: "0x00", chainId: "0x1", nonce: "0x9", gasPrice: "0x4a817c800",
                      gasLimit: "0x5208", to: TO, value: "0xde0b6b3a7640000", input: "0x" },
  "legacy create": { type: "0x00", chainId: "0x89", nonce: "0x0", gasPrice: "0x3b9aca00",
                     gasLimit: "0x30d40", to: null, value: "0x0", input: "0x6080604052348015600f57600080fd5b50" },
  eip2930: { type: "0x01", chainId: "0x89", nonce: "0x1", gasPrice: "0x3b9aca00", gasLimit: "0x186a0",
             to: TO, value: "0x1", accessList, input: "0xa9059cbb" },
  eip1559: { type: "0x02", chainId: "0x1", nonce: "0x2a", gasLimit: "0x186a0", ...fees, to: TO,
             value: "0x2386f26fc10000", accessList, input: "0xabcdef" },
  "eip1559 create": { type: "0x02", chainId: "0xaa36a7", nonce: "0x0", gasLimit: "0x30d40", ...fees,
                      to: null, value: "0x0", accessList: [], input: "0x6080604052" },
  eip4844: { type: "0x03", chainId: "0x1", nonce: "0x3", gasLimit: "0x5208", ...fees, to: TO, value: "0x0",
             accessList: [], maxFeePerBlobGas: "0x3b9aca00", input: "0x",
             blobVersionedHashes: [`0x01${"ab".repeat(31)}`, `0x01${"cd".repeat(31)}`] },
  // The client's type says 0x05 and its SignedAuthorization has no nonce; the entry here is the
  // answer of signAuthorization (types.ts's SignedAuthorization, nonce included), as a user would pass it.
  "eip7702 (0x05)": { type: "0x05", chainId: "0x1", nonce: "0x4", gasLimit: "0x186a0", ...fees, to: TO,
                      value: "0x0", accessList: [], input: "0x",
                      authorizationList: signedAuthorizations.filter(Boolean) },
};
for (const [name, transaction] of Object.entries(transactions)) {
  await record(`signTransaction ${name}`, { from: payEoa, transaction }, () =>
    signTransaction({ client, request: { auth: admin, options: { from: payEoa, transaction } } }),
  );
}

// Exactly transaction-types.ts's SignedAuthorization: no nonce (errata 12.5.2).
const strict7702 = {
  ...transactions["eip7702 (0x05)"],
  authorizationList: signedAuthorizations.filter(Boolean).map(({ nonce, ...rest }) => rest),
};
await record("signTransaction eip7702 without nonce", { from: payEoa, transaction: strict7702 }, () =>
  signTransaction({ client, request: { auth: admin, options: { from: payEoa, transaction: strict7702 } } }),
);
// transaction-types.ts's TxEip4844WithSidecar: a sidecar is not signed, so a Vault refuses it (12.5.6).
const withSidecar = { ...transactions.eip4844, blobs: ["0x00"], commitments: [`0x${"00".repeat(48)}`],
                      proofs: [`0x${"00".repeat(48)}`] };
await record("signTransaction eip4844 with sidecar", { from: payEoa, transaction: withSidecar }, () =>
  signTransaction({ client, request: { auth: admin, options: { from: payEoa, transaction: withSidecar } } }),
);

// The client's exported parseTransaction turns viem-style input into its wire shape.
const viemStyle = {
  "eip1559 from numbers": { chainId: 10, nonce: 5, gas: 21000n, maxFeePerGas: 30000000000n,
                            maxPriorityFeePerGas: 1000000000n, to: TO, value: 123456789n, data: "0x01" },
  "eip7702 from viem authorization": {
    chainId: 1, nonce: 6, gas: 100000n, maxFeePerGas: 30000000000n, maxPriorityFeePerGas: 1000000000n,
    to: TO, value: 0n, data: "0x",
    authorizationList: signedAuthorizations.filter(Boolean).slice(0, 1),
  },
};
for (const [name, clientTx] of Object.entries(viemStyle)) {
  let transaction;
  try {
    transaction = parseTransaction(clientTx);
  } catch (error) {
    transaction = { threw: String(error) };
  }
  await record(`parseTransaction+signTransaction ${name}`, { from: payEoa, clientTx, transaction }, () =>
    signTransaction({ client, request: { auth: admin, options: { from: payEoa, transaction } } }),
  );
}

// ---- ERC-4337 user operations ---------------------------------------------------------------
const userOps = {
  "useropV06 default entrypoint": {
    chainId: 137,
    structuredMessage: { useropV06: {
      sender: "0x9406Cc6185a346906296840746125a0E44976454", nonce: "0x1", initCode: "0x",
      callData: "0xb61d27f6", callGasLimit: "0x5208", verificationGasLimit: "0x186a0",
      preVerificationGas: "0xbb80", maxFeePerGas: "0x6fc23ac00", maxPriorityFeePerGas: "0x3b9aca00",
      paymasterAndData: "0x", signature: "0xdead",
    } },
  },
  "useropV06 own entrypoint": {
    chainId: 1,
    structuredMessage: { useropV06: {
      sender: "0x9406Cc6185a346906296840746125a0E44976454", nonce: "12",
      initCode: "0x9406cc6185a346906296840746125a0e449764545fbfb9cf", callData: "0x",
      callGasLimit: "1000", verificationGasLimit: "2000", preVerificationGas: "3000",
      maxFeePerGas: "4000", maxPriorityFeePerGas: "5000",
      paymasterAndData: "0x1234567890123456789012345678901234567890ff",
      entrypoint: "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108",
    } },
  },
  "useropV07 default entrypoint": {
    chainId: 137,
    structuredMessage: { useropV07: {
      sender: "0x9406Cc6185a346906296840746125a0E44976454", nonce: "0x2",
      factory: "0x91E60e0613810449d098b0b5Ec8b51A0FE8c8985", factoryData: "0x5fbfb9cf",
      callData: "0xb61d27f6", callGasLimit: "0x5208", verificationGasLimit: "0x186a0",
      preVerificationGas: "0xbb80", maxFeePerGas: "0x6fc23ac00", maxPriorityFeePerGas: "0x3b9aca00",
      paymaster: "0x0000000000325602a77416A16136FDafd04b299f", paymasterData: "0xbeef",
      paymasterVerificationGasLimit: "0x7530", paymasterPostOpGasLimit: "0x2710", signature: "0x",
    } },
  },
  "useropV07 no factory, no paymaster": {
    chainId: 8453,
    structuredMessage: { useropV07: {
      sender: "0x9406Cc6185a346906296840746125a0E44976454", nonce: "0",
      callData: "0x", callGasLimit: "1", verificationGasLimit: "2", preVerificationGas: "3",
      maxFeePerGas: "4", maxPriorityFeePerGas: "5",
    } },
  },
};
for (const [name, { chainId, structuredMessage }] of Object.entries(userOps)) {
  const options = { from: payEoa, structuredMessage, chainId };
  await record(`signStructuredMessage ${name}`, options, () =>
    signStructuredMessage({ client, request: { auth: admin, options } }),
  );
}

// SignStructuredMessageOptions makes chainId optional, but the hash commits to it (12.3).
const noChainId = { from: payEoa, structuredMessage: userOps["useropV07 default entrypoint"].structuredMessage };
await record("signStructuredMessage without chainId", noChainId, () =>
  signStructuredMessage({ client, request: { auth: admin, options: noChainId } }),
);

// ---- access tokens --------------------------------------------------------------------------
const payTeam = { key: "team", rule: { pattern: "^pay$" } };
const policies = [
  { type: "eoa:signMessage", allowlist: [payEoa], messagePattern: "^allowed:", chainId: 1 },
  { type: "eoa:signTypedData", metadataPatterns: [payTeam] },
  { type: "eoa:signTransaction", allowlist: [payEoa.toLowerCase()],
    payloadPatterns: { value: [{ op: "lessThan", value: "1000000000000000000" }], to: [{ pattern: "^0x3535" }],
                       chainId: [{ op: "equalTo", value: 1 }] } },
  { type: "eoa:signAuthorization", payloadPatterns: { chainId: { op: "equalTo", value: 1 },
                                                      address: { pattern: "^0x1111" } } },
  { type: "eoa:signStructuredMessage", metadataPatterns: [{ key: "n", rule: { op: "lessThan", value: 10 } }],
    structuredPatterns: { useropV07: { chainId: { op: "equalTo", value: 137 } } } },
  { type: "eoa:read", metadataPatterns: [payTeam] },
  { type: "eoa:create", requiredMetadataPatterns: [payTeam],
    allowedMetadataPatterns: [{ key: "n", rule: { op: "greaterThan", value: 0 } }] },
  { type: "accessToken:read", metadataPatterns: [{ key: "purpose", rule: { pattern: "^interop" } }],
    revealSensitive: false },
];
const expiresAt = new Date(Date.now() + 3600_000).toISOString();
const tokenOptions = { policies, expiresAt, metadata: { purpose: "interop-base", tier: 2 } };
const base = await record("createAccessToken", tokenOptions, () =>
  createAccessToken({ client, request: { auth: admin, options: tokenOptions } }),
);
const otherTokenOptions = { policies: [{ type: "eoa:read" }], expiresAt, metadata: { purpose: "elsewhere" } };
await record("createAccessToken other", otherTokenOptions, () =>
  createAccessToken({ client, request: { auth: admin, options: otherTokenOptions } }),
);
const token = { accessToken: base.data.accessToken };

const mailFrom = (from) => ({ from, typedData: mail });
const tx = (value, chainId = "0x1") => ({ ...transactions.eip1559, chainId, value });
const v07 = userOps["useropV07 default entrypoint"].structuredMessage;
const asToken = [
  ["signMessage allowed", signMessage, { from: payEoa, message: "allowed: hi", chainId: 1 }],
  ["signMessage denied by messagePattern", signMessage, { from: payEoa, message: "hi", chainId: 1 }],
  ["signMessage denied by chainId", signMessage, { from: payEoa, message: "allowed: hi", chainId: 5 }],
  ["signMessage denied by allowlist", signMessage, { from: opsEoa, message: "allowed: hi", chainId: 1 }],
  ["signTypedData allowed", signTypedData, mailFrom(payEoa)],
  ["signTypedData denied by metadata", signTypedData, mailFrom(opsEoa)],
  ["signTransaction allowed", signTransaction, { from: payEoa, transaction: tx("0x1") }],
  ["signTransaction denied by value", signTransaction, { from: payEoa, transaction: tx("0xde0b6b3a7640000") }],
  ["signTransaction denied by chainId", signTransaction, { from: payEoa, transaction: tx("0x1", "0x89") }],
  ["signAuthorization allowed", signAuthorization, { from: payEoa, authorization: authorizations[0] }],
  ["signAuthorization denied", signAuthorization, { from: payEoa, authorization: authorizations[1] }],
  ["signStructuredMessage allowed", signStructuredMessage, { from: payEoa, structuredMessage: v07, chainId: 137 }],
  ["signStructuredMessage denied", signStructuredMessage, { from: payEoa, structuredMessage: v07, chainId: 1 }],
  ["listEoas", listEoas, { page: 1, pageSize: 10 }],
  ["createEoa allowed", createEoa, { metadata: { team: "pay", n: 9 } }],
  ["createEoa denied by required", createEoa, { metadata: { team: "ops" } }],
  ["createEoa denied by allowed", createEoa, { metadata: { team: "pay", colour: "red" } }],
  ["listAccessTokens", listAccessTokens, { page: 1, pageSize: 10 }],
  ["createAccessToken refused", createAccessToken, otherTokenOptions],
  ["revokeAccessToken refused", revokeAccessToken, { id: base.data.id }],
];
for (const [name, fn, options] of asToken) {
  await record(`token ${name}`, options, () => fn({ client, request: { auth: token, options } }));
}
await record("token getServiceAccount refused", {}, () => getServiceAccount({ client, request: { auth: token } }));
await record("admin listEoas after token create", { page: 1, pageSize: 10 }, () =>
  listEoas({ client, request: { auth: admin, options: { page: 1, pageSize: 10 } } }),
);

// ---- signed access tokens (the client's own construction) -----------------------------------
const satPolicies = [{ type: "eoa:signMessage", messagePattern: "^allowed: sat" }];
const exp = Math.floor(Date.now() / 1000) + 600;
const sat = await record("createSignedAccessToken", { additionalPolicies: satPolicies, expiryTimestamp: exp }, () =>
  createSignedAccessToken({ vaultClient: client, baseAccessToken: token.accessToken,
                            additionalPolicies: satPolicies, expiryTimestamp: exp }),
);
const expiredAsk = { additionalPolicies: satPolicies, expiryTimestamp: 1 };
const expiredSat = await record("createSignedAccessToken expired", expiredAsk, () =>
  createSignedAccessToken({ vaultClient: client, baseAccessToken: token.accessToken,
                            additionalPolicies: satPolicies, expiryTimestamp: 1 }),
);
const asSat = [
  ["signMessage allowed", sat, signMessage, { from: payEoa, message: "allowed: sat ✓", chainId: 1 }],
  ["signMessage narrowed by its policies", sat, signMessage, { from: payEoa, message: "allowed: other", chainId: 1 }],
  ["signMessage still bound by the base", sat, signMessage, { from: payEoa, message: "allowed: sat", chainId: 5 }],
  ["signTypedData not in its policies", sat, signTypedData, mailFrom(payEoa)],
  ["signMessage expired", expiredSat, signMessage, { from: payEoa, message: "allowed: sat ✓", chainId: 1 }],
];
for (const [name, accessToken, fn, options] of asSat) {
  await record(`sat ${name}`, options, () => fn({ client, request: { auth: { accessToken }, options } }));
}

// ---- listing and revocation -----------------------------------------------------------------
await record("listAccessTokens", { page: 1, pageSize: 10 }, () =>
  listAccessTokens({ client, request: { auth: admin, options: { page: 1, pageSize: 10 } } }),
);
await record("revokeAccessToken", { id: base.data.id }, () =>
  revokeAccessToken({ client, request: { auth: admin, options: { id: base.data.id } } }),
);
const afterRevoke = { from: payEoa, message: "allowed: sat ✓", chainId: 1 };
await record("revoked token refused", afterRevoke, () =>
  signMessage({ client, request: { auth: token, options: afterRevoke } }),
);
await record("revoked base kills its signed token", afterRevoke, () =>
  signMessage({ client, request: { auth: { accessToken: sat }, options: afterRevoke } }),
);
await record("revokeAccessToken again", { id: base.data.id }, () =>
  revokeAccessToken({ client, request: { auth: admin, options: { id: base.data.id } } }),
);
await record("listAccessTokens after revoke", { page: 1, pageSize: 1 }, () =>
  listAccessTokens({ client, request: { auth: admin, options: { page: 1, pageSize: 1 } } }),
);
