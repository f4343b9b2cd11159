"""The mocked KMS as a separate process (``python -m harness.kms.server``) on a loopback port,
driven by unmodified boto3 (``endpoint_url`` and ``AWS_ENDPOINT_URL_KMS``) and the AWS CLI;
keys and policies survive a restart; state files are private; the audit log is served and kept."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from harness.attestation.testpki import TestPki
from harness.kms.cms import open_enveloped_data

from .conftest import LOCKED_POLICY, WRONG_PCR0, Enclave, boto_client

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def live_pki():
    # A separate process reads the real clock, so documents are made now.
    return TestPki.generate(dt.datetime.now(dt.timezone.utc))


@pytest.fixture(scope="module")
def live_enclave(live_pki):
    return Enclave(live_pki)


def _doc(enclave: Enclave, **kw) -> bytes:
    return enclave.document(at=dt.datetime.now(dt.timezone.utc), **kw)


class Proc:
    def __init__(self, tmp_path, root_pem: bytes, state_dir):
        root = tmp_path / "root.pem"
        root.write_bytes(root_pem)
        self.cmd = [sys.executable, "-m", "harness.kms.server", "--host", "127.0.0.1", "--port", "0",
                    "--state-dir", str(state_dir), "--attestation-root", str(root),
                    "--principal", "AKIAADMIN=arn:aws:iam::111122223333:role/admin"]
        self.p = None

    def start(self) -> str:
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("mock KMS listening on http://127.0.0.1:"), (line, self.p.stderr.read())
        self.url = line.split()[4]
        return self.url

    def stop(self) -> None:
        if self.p and self.p.poll() is None:
            self.p.terminate()
            self.p.wait(10)


@pytest.fixture
def proc(tmp_path, live_pki):
    state = tmp_path / "kms-state"
    p = Proc(tmp_path, live_pki.root_pem, state)
    p.start()
    yield p
    p.stop()


def _aws(url: str, *args: str, access_key: str = "AKIAADMIN", check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": "dummy",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    env.pop("AWS_ENDPOINT_URL_KMS", None)
    r = subprocess.run([sys.executable, "-m", "awscli", "kms", *args, "--endpoint-url", url, "--output", "json"],
                       env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_boto3_round_trip_and_restart_keeps_keys_and_policies(proc, live_enclave):
    admin = boto_client(proc.url, "AKIAADMIN")
    arn = admin.create_key(Description="vault master")["KeyMetadata"]["Arn"]
    admin.put_key_policy(KeyId=arn, Policy=LOCKED_POLICY)
    admin.create_alias(AliasName="alias/vault-master", TargetKeyId=arn)
    disabled = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.disable_key(KeyId=disabled)
    enc = boto_client(proc.url)
    rec = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": _doc(live_enclave)}
    out = enc.generate_data_key(KeyId=arn, KeySpec="AES_256", Recipient=rec)
    assert "Plaintext" not in out
    data_key = open_enveloped_data(out["CiphertextForRecipient"], live_enclave.key)

    proc.stop()
    state = proc.cmd[proc.cmd.index("--state-dir") + 1]
    keys_file = os.path.join(state, "keys.json")
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(state, "audit.jsonl")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    proc.start()  # a new process, the same state directory

    admin, enc = boto_client(proc.url, "AKIAADMIN"), boto_client(proc.url)
    assert admin.get_key_policy(KeyId=arn)["Policy"] == LOCKED_POLICY
    assert admin.describe_key(KeyId=arn)["KeyMetadata"]["Description"] == "vault master"
    assert admin.describe_key(KeyId="alias/vault-master")["KeyMetadata"]["Arn"] == arn
    assert admin.describe_key(KeyId=disabled)["KeyMetadata"]["KeyState"] == "Disabled"
    rec = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": _doc(live_enclave)}
    again = enc.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=arn, Recipient=rec)
    assert open_enveloped_data(again["CiphertextForRecipient"], live_enclave.key) == data_key
    # wrong PCR0 after restart: denied, and the audit log (served and on disk) says so
    bad = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": _doc(live_enclave, pcr0=WRONG_PCR0)}
    with pytest.raises(ClientError) as e:
        enc.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=arn, Recipient=bad)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    with urllib.request.urlopen(proc.url + "/_mock/audit") as resp:
        served = [json.loads(line) for line in resp.read().decode().splitlines()]
    last = served[-1]
    assert (last["operation"], last["decision"], last["pcrs"]["0"]) == ("Decrypt", "deny", WRONG_PCR0.hex())
    assert last["near_misses"][0][0] == "EnclaveOnly"
    on_disk = [json.loads(line) for line in open(os.path.join(state, "audit.jsonl"))]
    assert on_disk[-1] == last and len(on_disk) > len(served)  # the file spans both runs
    assert [r["operation"] for r in on_disk[:6]] == ["CreateKey", "PutKeyPolicy", "CreateAlias", "CreateKey",
                                                     "DisableKey", "GenerateDataKey"]


def test_no_plaintext_key_in_state_other_than_the_kms_material(proc, live_enclave):
    admin = boto_client(proc.url, "AKIAADMIN")
    arn = admin.create_key()["KeyMetadata"]["Arn"]
    rec = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": _doc(live_enclave)}
    out = boto_client(proc.url).generate_data_key(KeyId=arn, KeySpec="AES_256", Recipient=rec)
    data_key = open_enveloped_data(out["CiphertextForRecipient"], live_enclave.key)
    state = proc.cmd[proc.cmd.index("--state-dir") + 1]
    for name in os.listdir(state):
        raw = open(os.path.join(state, name), "rb").read()
        assert data_key not in raw and base64.b64encode(data_key) not in raw and data_key.hex().encode() not in raw


def test_aws_endpoint_url_kms_environment_points_boto3_at_the_mock(proc, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", proc.url)
    client = boto3.client("kms", region_name="us-east-1", aws_access_key_id="AKIAADMIN",
                          aws_secret_access_key="dummy")
    arn = client.create_key()["KeyMetadata"]["Arn"]
    assert arn.startswith("arn:aws:kms:us-east-1:111122223333:key/")
    with urllib.request.urlopen(proc.url + "/_mock/audit") as resp:
        assert json.loads(resp.read().decode().splitlines()[-1])["key_arn"] is None


def test_aws_cli_round_trip(proc, tmp_path):
    """The AWS CLI (v1, from PyPI) drives the mock unmodified: keys, policies byte-exact through
    files, encrypt/decrypt, random, and AWS-shaped denials. CLI v1 sends a nested blob such as
    ``Recipient.AttestationDocument`` as the UTF-8 bytes of the text given (its ``fileb://`` works
    only for top-level parameters), so it cannot carry a binary attestation document; the mock then
    answers a typed ValidationException. boto3 covers Recipient end to end."""
    key = json.loads(_aws(proc.url, "create-key", "--description", "cli key").stdout)["KeyMetadata"]
    assert json.loads(_aws(proc.url, "describe-key", "--key-id", key["Arn"]).stdout)["KeyMetadata"]["Description"] == \
        "cli key"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"\x00\xffsecret")
    enc = json.loads(_aws(proc.url, "encrypt", "--key-id", key["KeyId"], "--plaintext", f"fileb://{plain}").stdout)
    blob_file = tmp_path / "blob.bin"
    blob_file.write_bytes(base64.b64decode(enc["CiphertextBlob"]))
    dec = json.loads(_aws(proc.url, "decrypt", "--ciphertext-blob", f"fileb://{blob_file}").stdout)
    assert base64.b64decode(dec["Plaintext"]) == b"\x00\xffsecret" and dec["KeyId"] == key["Arn"]
    rnd = json.loads(_aws(proc.url, "generate-random", "--number-of-bytes", "24").stdout)
    assert len(base64.b64decode(rnd["Plaintext"])) == 24

    policy_file = tmp_path / "policy.json"
    policy_file.write_text(LOCKED_POLICY)
    _aws(proc.url, "put-key-policy", "--key-id", key["KeyId"], "--policy-name", "default",
         "--policy", f"file://{policy_file}")
    got = json.loads(_aws(proc.url, "get-key-policy", "--key-id", key["KeyId"]).stdout)
    assert got["Policy"] == LOCKED_POLICY and got["PolicyName"] == "default"
    # the locked policy: the enclave role without attestation, and the admin, may not decrypt
    for who in ("AKIAENCLAVE", "AKIAADMIN"):
        denied = _aws(proc.url, "decrypt", "--ciphertext-blob", f"fileb://{blob_file}", access_key=who, check=False)
        assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr
        assert "is not authorized to perform: kms:Decrypt on resource: " + key["Arn"] in denied.stderr
    text_doc = _aws(proc.url, "generate-data-key", "--key-id", key["Arn"], "--key-spec", "AES_256", "--recipient",
                    "KeyEncryptionAlgorithm=RSAES_OAEP_SHA_256,AttestationDocument=notadocument",
                    access_key="AKIAENCLAVE", check=False)
    assert text_doc.returncode != 0 and "ValidationException" in text_doc.stderr
    with urllib.request.urlopen(proc.url + "/_mock/audit") as resp:
        ops = [json.loads(line)["operation"] for line in resp.read().decode().splitlines()]
    assert ops == ["CreateKey", "DescribeKey", "Encrypt", "Decrypt", "GenerateRandom", "PutKeyPolicy", "GetKeyPolicy",
                   "Decrypt", "Decrypt", "GenerateDataKey"]


def test_bad_command_lines_fail_with_one_clear_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "harness.kms.server", "--port", "0", *args],
                              capture_output=True, text=True, timeout=30)

    r = run("--state-dir", str(tmp_path / "s"), "--attestation-root", str(tmp_path / "missing.pem"))
    assert r.returncode == 2 and "error: --attestation-root" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "junk.pem").write_text("not a certificate")
    r = run("--state-dir", str(tmp_path / "s"), "--attestation-root", str(tmp_path / "junk.pem"))
    assert r.returncode == 2 and "error: --attestation-root" in r.stderr and "Traceback" not in r.stderr
    r = run("--state-dir", str(tmp_path / "s"), "--attestation-root", str(tmp_path / "junk.pem"), "--principal", "x")
    assert r.returncode == 2 and "AKID=ARN" in r.stderr


def test_http_edges(proc):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(proc.url + "/nothing")
    assert e.value.code == 404
    req = urllib.request.Request(proc.url + "/", data=b"{", method="POST",
                                 headers={"X-Amz-Target": "TrentService.CreateKey"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 400 and json.loads(e.value.read())["__type"] == "SerializationException"
    with urllib.request.urlopen(proc.url + "/_mock/health") as resp:
        assert resp.read() == b"ok\n"
