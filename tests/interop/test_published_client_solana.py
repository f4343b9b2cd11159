"""The published client @thirdweb-dev/vault-sdk@0.1.1, unmodified, drives every Solana function it
exports against the reference (docs/spec/14-solana.md): createSolanaAccount, listSolanaAccounts,
signSolanaMessage and signSolanaTransaction. (sdk.js also defines reconstructSolanaSignedTransaction,
but 0.1.1 does not export it; the signature is filled in here, with solders.)

published_client_solana_flow.mjs prints what it asked and what the client answered; this side
builds the transactions with solders once the flow names its key, and verifies every signature
with OpenSSL's ed25519 (pyca/cryptography) and every reconstructed transaction with solders.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from .test_published_client import require_node_modules

HERE = Path(__file__).resolve().parent


def _transactions(sender: str) -> list[str]:
    key, to = Pubkey.from_string(sender), Keypair().pubkey()
    ix = transfer(TransferParams(from_pubkey=key, to_pubkey=to, lamports=7))
    legacy = bytes(Transaction.new_unsigned(Message.new_with_blockhash([ix], key, Hash.new_unique())))
    table = AddressLookupTableAccount(key=Keypair().pubkey(), addresses=[to])
    v0_message = MessageV0.try_compile(key, [ix], [table], Hash.new_unique())
    v0 = bytes(VersionedTransaction.populate(v0_message, [Signature.default()]))
    return [base64.b64encode(raw).decode() for raw in (legacy, v0)]


def _verify(pubkey: str, signature: str, message: bytes) -> None:
    Ed25519PublicKey.from_public_bytes(bytes(Pubkey.from_string(pubkey))).verify(
        bytes(Signature.from_string(signature)), message)  # raises InvalidSignature


def test_every_solana_function_of_the_published_client(reference_server):
    require_node_modules()
    flow = subprocess.Popen(["node", "published_client_solana_flow.mjs", reference_server.url + "/"], cwd=HERE,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    steps = []
    for line in flow.stdout:
        if not line.startswith("{"):
            continue
        steps.append(json.loads(line))
        if steps[-1]["step"] == "need-transactions":
            sent = _transactions(steps[-1]["asked"]["from"])
            flow.stdin.write("\n".join(sent) + "\n\n")
            flow.stdin.flush()
    flow.wait(120)
    assert flow.returncode == 0, flow.stderr.read()
    by_step: dict[str, list] = {}
    for step in steps:
        by_step.setdefault(step["step"], []).append(step)
    created = [s["result"]["data"] for s in by_step["createSolanaAccount"]]
    assert [c["metadata"] for c in created] == [{"tier": "hot"}, {"tier": "cold", "n": 2}]
    listed = by_step["listSolanaAccounts"][0]["result"]["data"]
    assert [i["pubkey"] for i in listed["items"]] == [c["pubkey"] for c in created] and listed["totalCount"] == 2
    sender = created[0]["pubkey"]
    for step in by_step["signSolanaMessage"]:
        asked = step["asked"]
        signed = asked["message"].encode() if asked["format"] == "text" else bytes.fromhex(asked["message"][2:])
        _verify(sender, step["result"]["data"]["signature"], signed)
    signatures = by_step["signSolanaTransaction"]
    assert len(signatures) == 2, steps
    for step in signatures:
        assert step["result"]["success"] and step["result"]["data"]["signerPubkey"] == sender, step
        parsed = VersionedTransaction.from_bytes(base64.b64decode(step["asked"]["transaction"]))
        _verify(sender, step["result"]["data"]["signature"], bytes(to_bytes_versioned(parsed.message)))
        # The signature filled into the sender's slot: the transaction verifies as a whole.
        whole = VersionedTransaction.populate(parsed.message, [Signature.from_string(step["result"]["data"]["signature"])])
        assert all(whole.verify_with_results())
