"""The mocked KMS in-process (boto3 against a loopback server thread, and ``MockKms.call``):
Recipient handling, attestation and SPKI checks, the attestation condition keys, policy decisions
with AWS-shaped errors, GetKeyPolicy, caller identity and the audit log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness.attestation.testpki import TestPki
from harness.kms.cms import open_enveloped_data, parse_enveloped_data
from harness.kms.service import KmsError

from .conftest import (ADMIN, ENCLAVE, GOOD_PCR0, LOCKED_POLICY, NOW, OUTSIDER, PCR1, WRONG_PCR0, Enclave,
                       boto_client, make_kms)


def _code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


@pytest.fixture
def locked_key(server):
    admin = boto_client(server.url, "AKIAADMIN")
    key_id = admin.create_key(Description="vault master key")["KeyMetadata"]["KeyId"]
    admin.put_key_policy(KeyId=key_id, Policy=LOCKED_POLICY)
    return admin.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]


@pytest.fixture
def enc(server):
    return boto_client(server.url, "AKIAENCLAVE")


def test_moto_alone_returns_plaintext_and_our_layer_removes_it(enclave, server, enc, locked_key):
    from moto import mock_aws

    with mock_aws():  # moto by itself: Recipient is ignored and the data key comes back in clear
        plain = boto3.client("kms", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
        key_id = plain.create_key()["KeyMetadata"]["KeyId"]
        bare = plain.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=enclave.recipient())
        assert "Plaintext" in bare and "CiphertextForRecipient" not in bare
        bare = plain.decrypt(CiphertextBlob=bare["CiphertextBlob"], Recipient=enclave.recipient())
        assert "Plaintext" in bare
    ours = enc.generate_data_key(KeyId=locked_key, KeySpec="AES_256", Recipient=enclave.recipient())
    assert "Plaintext" not in ours and set(ours) - {"ResponseMetadata"} == {"CiphertextBlob", "KeyId",
                                                                             "CiphertextForRecipient"}
    data_key = open_enveloped_data(ours["CiphertextForRecipient"], enclave.key)
    assert len(data_key) == 32 and ours["KeyId"] == locked_key
    again = enc.decrypt(CiphertextBlob=ours["CiphertextBlob"], KeyId=locked_key, Recipient=enclave.recipient())
    assert "Plaintext" not in again and again["KeyId"] == locked_key
    assert open_enveloped_data(again["CiphertextForRecipient"], enclave.key) == data_key
    rnd = enc.generate_random(NumberOfBytes=48, Recipient=enclave.recipient())
    assert "Plaintext" not in rnd and len(open_enveloped_data(rnd["CiphertextForRecipient"], enclave.key)) == 48


def test_number_of_bytes_and_aes_128(enclave, enc, locked_key):
    for kw, size in (({"NumberOfBytes": 64}, 64), ({"KeySpec": "AES_128"}, 16)):
        r = enc.generate_data_key(KeyId=locked_key, Recipient=enclave.recipient(), **kw)
        assert len(open_enveloped_data(r["CiphertextForRecipient"], enclave.key)) == size
    for kw in ({}, {"KeySpec": "AES_256", "NumberOfBytes": 32}, {"KeySpec": "RSA_2048"}):
        with pytest.raises(ClientError) as e:
            enc.generate_data_key(KeyId=locked_key, Recipient=enclave.recipient(), **kw)
        assert _code(e.value) == "ValidationException"


def test_wrong_pcr0_is_denied_with_the_aws_message_and_audited(kms, enclave, enc, locked_key, server):
    blob = enc.generate_data_key(KeyId=locked_key, KeySpec="AES_256", Recipient=enclave.recipient())["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        enc.decrypt(CiphertextBlob=blob, KeyId=locked_key, Recipient=enclave.recipient(pcr0=WRONG_PCR0))
    assert _code(e.value) == "AccessDeniedException"
    assert e.value.response["Error"]["Message"] == (
        f"User: {ENCLAVE} is not authorized to perform: kms:Decrypt on resource: {locked_key} "
        "because no resource-based policy allows the kms:Decrypt action")
    rec = kms.audit[-1]
    assert (rec.operation, rec.decision, rec.principal, rec.key_arn) == ("Decrypt", "deny", ENCLAVE, locked_key)
    assert rec.pcrs["0"] == WRONG_PCR0.hex() == rec.image_sha384 and rec.attestation_verified is True
    assert rec.statement is None and rec.near_misses == [
        ["EnclaveOnly", "condition StringEqualsIgnoreCase kms:RecipientAttestation:PCR0 is not met"]]
    # the same record over HTTP, as JSON lines
    with urllib.request.urlopen(server.url + "/_mock/audit") as resp:
        lines = [json.loads(line) for line in resp.read().decode().splitlines()]
    assert lines[-1]["decision"] == "deny" and lines[-1]["pcrs"]["0"] == WRONG_PCR0.hex()
    assert lines[-2]["operation"] == "GenerateDataKey" and lines[-2]["statement"] == "EnclaveOnly"
    assert len(lines) == len(kms.audit)


def test_decrypt_without_recipient_is_denied_by_the_locked_policy(enclave, enc, locked_key):
    blob = enc.generate_data_key(KeyId=locked_key, KeySpec="AES_256", Recipient=enclave.recipient())["CiphertextBlob"]
    with pytest.raises(ClientError) as e:  # no Recipient: PCR0 is missing, StringEqualsIgnoreCase is false
        enc.decrypt(CiphertextBlob=blob)
    assert _code(e.value) == "AccessDeniedException"


def test_explicit_deny_decides_and_is_named(kms, pki, enclave, server, locked_key):
    admin = boto_client(server.url, "AKIAADMIN")
    policy = json.loads(LOCKED_POLICY)
    policy["Statement"][1]["Action"] = "kms:*"
    policy["Statement"][1].pop("Condition")
    policy["Statement"].append({"Sid": "DenyOtherImages", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
                                "Resource": "*", "Condition": {"StringNotEqualsIgnoreCase": {
                                    "kms:RecipientAttestation:ImageSha384": GOOD_PCR0.hex()}}})
    admin.put_key_policy(KeyId=locked_key, PolicyName="default", Policy=json.dumps(policy))
    enc = boto_client(server.url)
    blob = enc.generate_data_key(KeyId=locked_key, KeySpec="AES_256")["CiphertextBlob"]  # allowed: no condition
    assert kms.audit[-1].statement == "EnclaveOnly"
    with pytest.raises(ClientError) as e:
        enc.decrypt(CiphertextBlob=blob, Recipient=enclave.recipient(pcr0=WRONG_PCR0))
    assert e.value.response["Error"]["Message"].endswith("with an explicit deny in a resource-based policy")
    assert (kms.audit[-1].decision, kms.audit[-1].statement) == ("deny", "DenyOtherImages")
    with pytest.raises(ClientError):  # no Recipient at all: the negated operator is true on a missing key
        enc.decrypt(CiphertextBlob=blob)
    assert kms.audit[-1].statement == "DenyOtherImages"
    assert enc.decrypt(CiphertextBlob=blob, Recipient=enclave.recipient())["CiphertextForRecipient"]


def test_every_attested_pcr_is_a_condition_key(kms, enclave):
    key_arn = kms.call("CreateKey", {}, access_key_id="AKIAADMIN")["KeyMetadata"]["Arn"]
    pcr4 = bytes(range(48))
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Pcrs", "Effect": "Allow", "Principal": {"AWS": ENCLAVE}, "Action": "kms:GenerateDataKey",
         "Resource": "*", "Condition": {"StringEqualsIgnoreCase": {
             "kms:RecipientAttestation:ImageSha384": GOOD_PCR0.hex(),
             "kms:RecipientAttestation:PCR1": PCR1.hex(), "kms:RecipientAttestation:PCR4": pcr4.hex()}}}]}
    kms.call("PutKeyPolicy", {"KeyId": key_arn, "Policy": json.dumps(policy)}, access_key_id="AKIAADMIN")

    def gdk(**doc_kw):
        rec = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
               "AttestationDocument": base64.b64encode(enclave.document(**doc_kw)).decode()}
        return kms.call("GenerateDataKey", {"KeyId": key_arn, "KeySpec": "AES_256", "Recipient": rec},
                        access_key_id="AKIAENCLAVE")

    assert "CiphertextForRecipient" in gdk(extra_pcrs={4: pcr4})
    for kw in ({}, {"extra_pcrs": {4: bytes(48)}}, {"extra_pcrs": {4: pcr4, 1: bytes(48)}}):
        with pytest.raises(KmsError) as e:
            gdk(**kw)
        assert e.value.code == "AccessDeniedException"


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_1", "SYMMETRIC_DEFAULT", "", None])
def test_only_rsaes_oaep_sha_256(enclave, enc, locked_key, algorithm):
    rec = {"AttestationDocument": enclave.document()}
    if algorithm is not None:
        rec["KeyEncryptionAlgorithm"] = algorithm
    kms_call = enc.generate_data_key
    try:
        kms_call(KeyId=locked_key, KeySpec="AES_256", Recipient=rec)
    except ClientError as e:
        assert _code(e) == "ValidationException"
        assert "keyEncryptionAlgorithm" in e.response["Error"]["Message"] or algorithm is None
    except Exception as e:  # botocore refuses some values before sending: also a typed refusal
        assert type(e).__name__ == "ParamValidationError"
    else:
        pytest.fail("a Recipient with another algorithm was accepted")


def test_only_rsaes_oaep_sha_256_at_the_core(kms, enclave):
    key_arn = kms.call("CreateKey", {}, access_key_id="AKIAADMIN")["KeyMetadata"]["Arn"]
    doc = base64.b64encode(enclave.document()).decode()
    for alg in ("RSAES_OAEP_SHA_1", None, 7):
        with pytest.raises(KmsError) as e:
            kms.call("GenerateRandom", {"NumberOfBytes": 8, "Recipient": {"KeyEncryptionAlgorithm": alg,
                                                                         "AttestationDocument": doc}})
        assert e.value.code == "ValidationException"
    with pytest.raises(KmsError) as e:
        kms.call("Encrypt", {"KeyId": key_arn, "Plaintext": "AA==", "Recipient": {}})
    assert e.value.code == "ValidationException"


def test_attestation_is_verified_with_the_configured_root_and_clock(pki, enclave):
    other = Enclave(TestPki.generate(NOW))  # signed by a root the mock does not trust
    cases = [
        (make_kms(pki), other.document(), "[chain-root-mismatch]"),
        (make_kms(pki, clock=lambda: NOW + dt.timedelta(hours=4)), enclave.document(), "[cert-expired]"),
        (make_kms(pki), enclave.document(at=NOW - dt.timedelta(minutes=6)), "[policy-stale]"),
        (make_kms(pki), enclave.document()[:-1] + b"\x00", "[cose-signature]"),
        (make_kms(pki), b"not cbor", "["),
    ]
    for kms, doc, code in cases:
        with pytest.raises(KmsError) as e:
            kms.call("GenerateRandom", {"NumberOfBytes": 8, "Recipient": {
                "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": base64.b64encode(doc).decode()}})
        assert e.value.code == "ValidationException"
        rec = kms.audit[-1]
        assert rec.attestation_verified is False and rec.recipient and rec.error_code == "ValidationException"
        assert rec.attestation_error.startswith(code)
    # the same document passes with the right root at the right time
    ok = make_kms(pki)
    ok.call("GenerateRandom", {"NumberOfBytes": 8, "Recipient": {
        "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": base64.b64encode(enclave.document()).decode()}})
    assert ok.audit[-1].attestation_verified is True


def test_public_key_must_be_an_rsa_spki_of_2048_bits_or_more(kms, enclave):
    def spki(key):
        return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    bad = [None, b"\x30\x03\x02\x01\x01", spki(ec.generate_private_key(ec.SECP384R1())),
           spki(rsa.generate_private_key(public_exponent=65537, key_size=1024))]
    for public_key in bad:
        doc = base64.b64encode(enclave.document(public_key=public_key)).decode()
        with pytest.raises(KmsError) as e:
            kms.call("GenerateRandom", {"NumberOfBytes": 8, "Recipient": {
                "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": doc}})
        assert e.value.code == "ValidationException" and "public_key" in e.value.message
    big = Enclave(enclave.pki, bits=3072)
    out = kms.call("GenerateRandom", {"NumberOfBytes": 8, "Recipient": {
        "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": base64.b64encode(big.document()).decode()}})
    ber = base64.b64decode(out["CiphertextForRecipient"])
    assert len(bytes.fromhex(parse_enveloped_data(ber).encrypted_key_hex)) == 384
    assert len(open_enveloped_data(ber, big.key)) == 8


def test_get_key_policy_defaults_the_name_and_returns_the_policy_byte_exact(server):
    admin = boto_client(server.url, "AKIAADMIN")
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    odd = ('{ "Statement" : [ {"Effect":"Allow", "Sid":"caf\u00e9 \\u00e9",\n\t"Principal":{"AWS":"%s"},'
           '"Action":"kms:*","Resource":"*"} ],"Version":"2012-10-17"}  ') % ADMIN
    admin.put_key_policy(KeyId=key_id, Policy=odd)
    assert admin.get_key_policy(KeyId=key_id)["Policy"] == odd
    got = admin.get_key_policy(KeyId=key_id, PolicyName="default")
    assert (got["Policy"], got["PolicyName"]) == (odd, "default")
    with pytest.raises(ClientError) as e:
        admin.get_key_policy(KeyId=key_id, PolicyName="other")
    assert _code(e.value) == "NotFoundException"


def test_malformed_policy_is_refused_and_the_old_one_kept(server, locked_key):
    admin = boto_client(server.url, "AKIAADMIN")
    for bad in ("{", '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*",'
                     '"Condition":{"StringEqualz":{"a":"b"}}}]}'):
        with pytest.raises(ClientError) as e:
            admin.put_key_policy(KeyId=locked_key, Policy=bad)
        assert _code(e.value) == "MalformedPolicyDocumentException"
        with pytest.raises(ClientError) as e:
            admin.create_key(Policy=bad)
        assert _code(e.value) == "MalformedPolicyDocumentException"
    assert admin.get_key_policy(KeyId=locked_key)["Policy"] == LOCKED_POLICY


def test_the_caller_comes_from_the_access_key_id(pki, server, kms, locked_key):
    key_id = boto_client(server.url, "AKIAADMIN").create_key()["KeyMetadata"]["KeyId"]  # default policy: account root
    assert boto_client(server.url, "AKIAANYTHINGELSE").describe_key(KeyId=key_id)
    assert kms.audit[-1].principal == ENCLAVE  # unmapped key ids are the default principal
    with pytest.raises(ClientError) as e:
        boto_client(server.url, "AKIAOUTSIDER").describe_key(KeyId=key_id)
    assert _code(e.value) == "AccessDeniedException" and OUTSIDER in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError):  # the locked policy gives the enclave role no DescribeKey
        boto_client(server.url).describe_key(KeyId=locked_key)
    strict = make_kms(pki, default_principal=None)
    with pytest.raises(KmsError) as e2:
        strict.call("CreateKey", {}, access_key_id="AKIAUNKNOWN")
    assert e2.value.code == "UnrecognizedClientException"


def test_moto_serves_the_ordinary_api_under_the_policy(server, locked_key):
    admin = boto_client(server.url, "AKIAADMIN")
    admin.create_alias(AliasName="alias/vault", TargetKeyId=locked_key)
    assert admin.describe_key(KeyId="alias/vault")["KeyMetadata"]["Arn"] == locked_key
    assert any(a["AliasName"] == "alias/vault" for a in admin.list_aliases()["Aliases"])
    with pytest.raises(ClientError) as e:  # admin may not Encrypt under the locked policy
        admin.encrypt(KeyId=locked_key, Plaintext=b"x")
    assert _code(e.value) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        admin.describe_key(KeyId="alias/missing")
    assert _code(e.value) == "NotFoundException"


def test_disabled_key_refuses_crypto(server, enclave):
    admin = boto_client(server.url, "AKIAADMIN")
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as e:
        boto_client(server.url).generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=enclave.recipient())
    assert _code(e.value) == "DisabledException"


@pytest.mark.parametrize("target,body,code", [
    ("TrentService.CreateKey", b"{", "SerializationException"),
    ("TrentService.CreateKey", b"[]", "SerializationException"),
    (None, b"{}", "UnknownOperationException"),
    ("TrentService.NoSuchThing", b"{}", "UnknownOperationException"),
    ("TrentService.Decrypt", b'{"CiphertextBlob":"***"}', "SerializationException"),
    ("TrentService.Decrypt", b'{"CiphertextBlob":"AAAA"}', "InvalidCiphertextException"),
    ("TrentService.DescribeKey", b'{"KeyId":5}', "ValidationException"),
])
def test_bad_requests_are_typed_400s(kms, target, body, code):
    status, headers, out = kms.handle(target, body, {})
    assert status == 400 and json.loads(out)["__type"] == code == headers["x-amzn-ErrorType"]


def test_decrypt_is_authorized_by_the_key_the_ciphertext_names(server, enclave, locked_key):
    # An open key must not lend its policy to a ciphertext of the locked key.
    admin = boto_client(server.url, "AKIAADMIN")
    open_key = admin.create_key()["KeyMetadata"]["KeyId"]  # default policy: the whole account, kms:*
    enc = boto_client(server.url)
    blob = enc.generate_data_key(KeyId=locked_key, KeySpec="AES_256", Recipient=enclave.recipient())["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        enc.decrypt(CiphertextBlob=blob, KeyId=open_key)
    assert _code(e.value) == "IncorrectKeyException"
    with pytest.raises(ClientError) as e:
        enc.decrypt(CiphertextBlob=blob)
    assert _code(e.value) == "AccessDeniedException"


def test_re_encrypt_needs_both_keys_policies(kms, server, enclave, locked_key):
    # Without this, ReEncrypt from the locked key to an open key would hand the data key out.
    admin = boto_client(server.url, "AKIAADMIN")
    open_key = admin.create_key()["KeyMetadata"]["Arn"]
    enc = boto_client(server.url)
    blob = enc.generate_data_key(KeyId=locked_key, KeySpec="AES_256", Recipient=enclave.recipient())["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        enc.re_encrypt(CiphertextBlob=blob, DestinationKeyId=open_key)
    assert _code(e.value) == "AccessDeniedException" and "kms:ReEncryptFrom" in e.value.response["Error"]["Message"]
    assert (kms.audit[-1].operation, kms.audit[-1].decision, kms.audit[-1].key_arn) == ("ReEncrypt", "deny", locked_key)
    # the open key's own ciphertexts re-encrypt fine, and into the locked key only if it allows ReEncryptTo
    own = enc.encrypt(KeyId=open_key, Plaintext=b"x")["CiphertextBlob"]
    assert enc.decrypt(CiphertextBlob=enc.re_encrypt(CiphertextBlob=own, DestinationKeyId=open_key)["CiphertextBlob"])
    with pytest.raises(ClientError) as e:
        enc.re_encrypt(CiphertextBlob=own, DestinationKeyId=locked_key)
    assert "kms:ReEncryptTo" in e.value.response["Error"]["Message"]


def test_alias_operations_are_authorized_by_the_target_key(server, locked_key):
    enc = boto_client(server.url)  # the locked policy gives the enclave role no alias rights
    with pytest.raises(ClientError) as e:
        enc.create_alias(AliasName="alias/mine", TargetKeyId=locked_key)
    assert "kms:CreateAlias" in e.value.response["Error"]["Message"]
    boto_client(server.url, "AKIAADMIN").create_alias(AliasName="alias/vault", TargetKeyId=locked_key)
    with pytest.raises(ClientError) as e:
        enc.delete_alias(AliasName="alias/vault")
    assert "kms:DeleteAlias" in e.value.response["Error"]["Message"]
