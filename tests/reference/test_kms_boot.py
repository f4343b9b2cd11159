"""The master key from KMS, released only to the attested enclave (spec §11.1–§11.4).

The mocked KMS (harness/kms, the test side only: the reference never imports it) serves over
HTTP; the reference reaches it with boto3 through ``endpoint_url``, as it would reach AWS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.kms import cms as mock_cms
from harness.kms.server import make_server
from harness.kms.service import DEFAULT_PRINCIPAL, KmsConfig, MockKms
from reference.enclave import kms
from reference.enclave.kms_client import Boto3KmsClient
from reference.enclave.nsm import SimulatedNsm
from reference.enclave.operations.key_policy import user_data_commitment
from reference.enclave.service import Enclave, KeyPolicySource
from reference.enclave.store import SqliteStore
from tests.reference.test_service import call

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "kms"
PCR0 = bytes(range(48))
OTHER_PCR0 = bytes(48 * [0xAB])


def locked_policy(pcr0: bytes) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "EnclaveReadsPolicy", "Effect": "Allow", "Principal": {"AWS": DEFAULT_PRINCIPAL},
         "Action": ["kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "EnclaveOnly", "Effect": "Allow", "Principal": {"AWS": DEFAULT_PRINCIPAL},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": pcr0.hex(),
                                                  "kms:RecipientAttestation:ImageSha384": pcr0.hex()}}}]},
        indent=1)  # indented on purpose: the Vault must hand back these exact bytes


@pytest.fixture
def world(tmp_path):
    nsm_dir = tmp_path / "nsm"
    root = SimulatedNsm(nsm_dir).root_pem()
    mock = MockKms(KmsConfig(attestation_roots=[root]))
    server = make_server(mock)
    server.start_in_thread()
    client = Boto3KmsClient(region="us-east-1", endpoint_url=server.url, access_key_id="test", secret_access_key="test")
    policy = locked_policy(PCR0)
    arn = client.create_key(policy, "test master key")
    yield {"mock": mock, "client": client, "arn": arn, "policy": policy, "nsm_dir": nsm_dir, "tmp": tmp_path}
    server.shutdown()
    server.server_close()


def test_cms_from_kms_shape_opens_with_the_recipient_key_only():
    key = kms.RecipientKey()
    secret = os.urandom(32)
    assert key.open(mock_cms.build_enveloped_data(secret, key.spki_der())) == secret
    with pytest.raises(kms.CmsOpenError):
        kms.RecipientKey().open(mock_cms.build_enveloped_data(secret, key.spki_der()))
    with pytest.raises(kms.CmsOpenError):
        key.open(b"\x30\x03\x02\x01\x00")


@pytest.mark.parametrize("name", ["kms-recipient-1.ber", "kms-recipient-2.ber"])
def test_real_kms_answers_parse_and_refuse_a_foreign_key(name):
    # Real KMS answers (aws-nitro-enclaves-sdk-c): the shape checks pass, the RSA step fails
    # because the private key is not public; a clear CmsOpenError, never another exception.
    with pytest.raises(kms.CmsOpenError, match="not encrypted to this enclave's key"):
        kms.open_enveloped_data((VECTORS / name).read_bytes(), rsa.generate_private_key(65537, 2048))


def boot(world, data_dir: Path, pcr0: bytes, key_id=None):
    nsm = SimulatedNsm(world["nsm_dir"], pcrs={0: pcr0})
    return kms.release_master_key(world["client"], nsm, kms.DataKeyFile(data_dir / kms.DATA_KEY_FILE), key_id)


def test_first_boot_generates_later_boots_decrypt_the_same_key(world):
    data_dir = world["tmp"] / "data"
    key, arn = boot(world, data_dir, PCR0, world["arn"])
    again, arn2 = boot(world, data_dir, PCR0)
    assert key == again and len(key) == 32 and arn == arn2 == world["arn"]
    stored = (data_dir / kms.DATA_KEY_FILE).read_bytes()
    assert key not in stored and key.hex().encode() not in stored and base64.b64encode(key) not in stored
    ops = [(r.operation, r.decision, r.recipient) for r in world["mock"].audit]
    assert ("GenerateDataKey", "allow", True) in ops and ("Decrypt", "allow", True) in ops


def test_wrong_pcr0_is_denied_and_the_audit_names_the_statement(world):
    data_dir = world["tmp"] / "data"
    boot(world, data_dir, PCR0, world["arn"])
    with pytest.raises(kms.KmsDenied, match="AccessDeniedException"):
        boot(world, data_dir, OTHER_PCR0)
    denial = world["mock"].audit[-1]
    assert denial.operation == "Decrypt" and denial.decision == "deny"
    assert denial.pcrs and OTHER_PCR0.hex() in json.dumps(denial.pcrs)


def test_a_copied_data_dir_against_a_denying_kms_opens_nothing_and_holds_no_key(world):
    data_dir = world["tmp"] / "data"
    master, arn = boot(world, data_dir, PCR0, world["arn"])
    enclave = Enclave(kv=SqliteStore(data_dir / "vault.sqlite3"), master_key=master)
    account = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    copy = world["tmp"] / "copy"
    copy.mkdir()
    for f in data_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    with pytest.raises(kms.KmsDenied):
        boot(world, copy, OTHER_PCR0)
    raw = b"".join(f.read_bytes() for f in copy.iterdir())
    keyring = enclave.context.keyring
    needles = [master, keyring.record_key, keyring._identifier_key, keyring._secret_key, keyring.static_secret,
               account["adminKey"].encode(), account["rotationCode"].encode(), account["id"].encode()]
    for needle in needles:
        for form in (needle, needle.hex().encode(), base64.b64encode(needle)):
            assert form not in raw


def test_static_key_is_derived_from_master_key_and_epoch(tmp_path):
    master = os.urandom(32)
    a = Enclave(kv=SqliteStore(tmp_path / "a"), master_key=master)
    b = Enclave(kv=SqliteStore(tmp_path / "b"), master_key=master)  # another instance, another store
    c = Enclave(kv=SqliteStore(tmp_path / "c"), master_key=master, static_key_epoch=2)
    assert a.public_key == b.public_key != c.public_key


def test_key_policy_returns_the_exact_policy_bound_to_an_attestation(world):
    master, arn = boot(world, world["tmp"] / "data", PCR0, world["arn"])
    nsm = SimulatedNsm(world["nsm_dir"], pcrs={0: PCR0})
    enclave = Enclave(kv=SqliteStore(world["tmp"] / "db"), master_key=master, nsm=nsm,
                      key_policy_source=KeyPolicySource(arn, world["client"].get_key_policy))
    reply = call(enclave, {"operation": "enclave:keyPolicy", "options": {"nonce": "00ff"}})
    assert reply["success"], reply
    data = reply["data"]
    exact = world["client"]._client.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
    assert data["policy"] == exact == world["policy"]
    assert data["keyArn"] == arn
    assert data["policySha384"] == hashlib.sha384(exact.encode()).hexdigest()
    payload = cbor2.loads(cbor2.loads(base64.b64decode(data["attestationDocument"]))[2])
    assert payload["nonce"] == bytes.fromhex("00ff") and payload["public_key"] == enclave.public_key
    assert payload["user_data"] == user_data_commitment(arn, exact)
    plain = call(enclave, {"operation": "enclave:keyPolicy"})["data"]
    assert "attestationDocument" not in plain and plain["policy"] == exact
    bad = call(enclave, {"operation": "enclave:keyPolicy", "options": {"nonce": "xyz"}})
    assert bad["success"] is False and bad["error"]["code"] == "invalid_input"


@pytest.mark.server
def test_cli_embedded_default_boots_serves_and_refuses_a_wrong_pcr0(tmp_path):
    import subprocess
    import sys

    import httpx

    from tests.conftest import ROOT, start_reference

    data_dir = tmp_path / "data"
    server = start_reference(data_dir)
    try:
        public_key = bytes.fromhex(httpx.get(server.url + "/api/v1/enclave").json()["publicKey"])
        assert len(public_key) == 32
    finally:
        output = server.stop()
    assert "embedded mock KMS" in output and "Traceback" not in output
    kms_dir = tmp_path / "data.kms"
    assert (kms_dir / "embedded-key-arn").exists() and not (data_dir / "master.key").exists()
    pcrs = tmp_path / "pcrs.json"
    pcrs.write_text(json.dumps({"PCR0": OTHER_PCR0.hex()}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    refused = subprocess.run([sys.executable, "-m", "reference.cli", "serve", "--port", "1", "--data-dir",
                              str(data_dir), "--pcrs-file", str(pcrs)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "AccessDeniedException" in lines[0], refused.stderr
    audit = [json.loads(line) for path in kms_dir.rglob("*audit*") for line in path.read_text().splitlines()
             if line.strip()]
    denied = [r for r in audit if r["operation"] == "Decrypt" and r["decision"] == "deny"]
    assert denied and OTHER_PCR0.hex() in json.dumps(denied[-1]["pcrs"])
