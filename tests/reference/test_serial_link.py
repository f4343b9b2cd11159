"""The enclave on a serial link (spec 9.11): ``serial:PORT`` answers frames on a character device.

A pseudo-terminal in raw mode stands in for the virtio-serial port: the enclave opens the
terminal's device like it opens ``/dev/vport0p1``, and the test speaks on the other end.
"""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path

import pytest

from reference import framing
from reference.enclave import server as enclave_server
from reference.host.transport import SocketTransport


class Echo:
    def handle_message(self, kind, body):
        return 200, kind.encode() + b":" + body


def _read_exactly(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _read_reply(fd: int) -> tuple[int, bytes]:
    status, length = framing._REPLY_HEAD.unpack(_read_exactly(fd, framing._REPLY_HEAD.size))
    return status, _read_exactly(fd, length)


def test_frames_on_a_serial_device_are_answered_in_order():
    controller, device = os.openpty()
    tty.setraw(device)  # no echo, no line editing: a byte stream like the virtio port
    path = os.ttyname(device)

    async def go():
        started = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(enclave_server.serve(Echo(), f"serial:{path}", ready=started.set_result))
        await started
        loop = asyncio.get_running_loop()
        try:
            # two frames in one write, then one split across writes: replies come whole and in order
            os.write(controller, framing.encode_request("envelope", b"one") + framing.encode_request("attest", b"2"))
            assert await loop.run_in_executor(None, _read_reply, controller) == (200, b"envelope:one")
            assert await loop.run_in_executor(None, _read_reply, controller) == (200, b"attest:2")
            frame = framing.encode_request("public-key", bytes(range(256)) * 4)
            os.write(controller, frame[:7])
            await asyncio.sleep(0.1)
            os.write(controller, frame[7:])
            assert await loop.run_in_executor(None, _read_reply, controller) == (200, b"public-key:" + bytes(range(256)) * 4)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    try:
        asyncio.run(go())
    finally:
        os.close(controller)
        os.close(device)


def test_a_named_port_is_found_through_sysfs(tmp_path: Path):
    ports, dev = tmp_path / "virtio-ports", tmp_path / "dev"
    for name, label in (("vport0p1", "org.example.other"), ("vport0p2", "org.nitro-vault.link")):
        (ports / name).mkdir(parents=True)
        (ports / name / "name").write_text(label + "\n")
    assert enclave_server.resolve_serial_port("org.nitro-vault.link", ports=ports, dev=dev) == dev / "vport0p2"
    assert enclave_server.resolve_serial_port("/dev/hvc1", ports=ports, dev=dev) == Path("/dev/hvc1")
    with pytest.raises(OSError, match="no virtio-serial port named 'absent'"):
        enclave_server.resolve_serial_port("absent", ports=ports, dev=dev, wait=0.2)


@pytest.mark.parametrize("address, expected", [
    ("serial:org.nitro-vault.link", ("serial", ("org.nitro-vault.link",))),
    ("serial:/dev/vport0p1", ("serial", ("/dev/vport0p1",))),
])
def test_serial_addresses(address, expected):
    assert framing.parse_address(address) == expected


@pytest.mark.parametrize("address", ["serial:", "serial:a b", "serial:../x", "serial:name;rm"])
def test_bad_serial_addresses(address):
    with pytest.raises(ValueError):
        framing.parse_address(address)


def test_the_host_never_connects_to_a_serial_address():
    """The host reaches a microVM's enclave through the launcher's TCP port, never the port itself."""
    with pytest.raises(ValueError, match="launcher"):
        SocketTransport("serial:org.nitro-vault.link")


# --- the launcher's NSM across the port (spec 9.11 item 7) ------------------------------------------


def _pcrs_of(document: bytes) -> dict[int, bytes]:
    import cbor2

    payload = cbor2.loads(cbor2.loads(document)[2])
    return payload["pcrs"]


def test_documents_come_from_the_nsm_outside_with_its_pcrs(tmp_path: Path):
    """The guest asks over the port; the host's NSM signs with the PCRs it holds. The guest's
    inputs are bound in the document; nothing it sends can set a PCR."""
    import threading

    from reference.enclave.nsm import NsmInputTooLarge, SimulatedNsm
    from reference.enclave.nsm.link import LinkNsm, answer

    host_pcrs = {0: b"\x11" * 48, 1: b"\x22" * 48, 2: b"\x33" * 48}
    host = SimulatedNsm(tmp_path / "host-nsm", pcrs=host_pcrs)
    controller, device = os.openpty()
    tty.setraw(device)
    stop = threading.Event()

    def serve():  # the launcher's side, on the terminal's other end
        while not stop.is_set():
            try:
                (n,) = framing._REQUEST_HEAD.unpack(_read_exactly(controller, 2))
                kind = _read_exactly(controller, n).decode()
                (length,) = framing._LENGTH.unpack(_read_exactly(controller, 4))
                status, reply = answer(host, kind, _read_exactly(controller, length))
                os.write(controller, framing.encode_reply(status, reply))
            except (EOFError, OSError):
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        guest = LinkNsm(os.ttyname(device))
        document = guest.attest(user_data=b"u", nonce=b"n" * 16, public_key=b"k" * 32)
        pcrs = _pcrs_of(document)
        assert {i: pcrs[i] for i in (0, 1, 2)} == host_pcrs
        import cbor2

        payload = cbor2.loads(cbor2.loads(document)[2])
        assert (payload["user_data"], payload["nonce"], payload["public_key"]) == (b"u", b"n" * 16, b"k" * 32)
        assert guest.root_pem() == host.root_pem()
        with pytest.raises(NsmInputTooLarge):  # refused before it is sent
            guest.attest(nonce=b"n" * 513)
        assert _pcrs_of(guest.attest()) == pcrs  # and the link is still in step
    finally:
        stop.set()
        os.close(device)
        os.close(controller)


@pytest.mark.parametrize("kind, body", [
    ("attest", b"\xff\xff"),                                   # not CBOR
    ("attest", bytes.fromhex("a16470637273a1004130")),         # {"pcrs": {0: h'30'}}: PCRs are not the guest's
    ("attest", bytes.fromhex("a0ff")),                         # {} and a trailing byte
    ("attest", bytes.fromhex("a1656e6f6e63656161")),           # {"nonce": "a"}: text, not bytes
    ("attest", b"\x5a\xff\xff\xff\xff"),                       # a byte string longer than the frame
    ("attest", bytes.fromhex("a1656e6f6e6365590201") + b"\0" * 513),  # a nonce over the 512-byte cap
    ("describe-pcr", b""),                                     # not an NSM request of this link
])
def test_the_nsm_outside_refuses_what_it_cannot_attest_with_a_400(tmp_path: Path, kind, body):
    from reference.enclave.nsm import SimulatedNsm
    from reference.enclave.nsm.link import answer

    status, reply = answer(SimulatedNsm(tmp_path / "nsm", pcrs={0: b"\x11" * 48}), kind, body)
    assert status == 400 and reply and b"Traceback" not in reply


@pytest.mark.parametrize("overrides, message", [
    ({"nsm": "serial:org.nitro-vault.nsm", "pcrs_file": Path("/etc/claimed.json")}, "do not apply"),
    ({"nsm": "serial:org.nitro-vault.nsm", "nsm_debug": True}, "do not apply"),
    ({"nsm": "serial:bad name"}, "serial:PORT"),
    ({"nsm": "tpm"}, "serial:PORT"),
])
def test_the_launchers_nsm_takes_no_pcrs_from_the_image(overrides, message):
    """With the NSM outside, PCRs are the launcher's: options that would set them are refused."""
    from reference.config import Config

    assert Config.from_env(nsm="serial:org.nitro-vault.nsm").nsm == "serial:org.nitro-vault.nsm"
    with pytest.raises(ValueError, match=message):
        Config.from_env(**overrides)


# --- KMS through the launcher's proxy (spec 9.11 item 8) -------------------------------------------


class FakeKms:
    """A KMS client double: records calls; denies when told to."""

    def __init__(self, deny: bool = False):
        self.deny, self.calls = deny, []

    def generate_data_key(self, key_id, recipient):
        from reference.enclave.kms import KmsDenied

        self.calls.append(("generate_data_key", key_id, recipient))
        if self.deny:
            raise KmsDenied("KMS refused GenerateDataKey (AccessDeniedException): PCR0 does not match")
        return key_id, b"blob", b"for-recipient"

    def decrypt(self, key_id, blob, recipient):
        self.calls.append(("decrypt", key_id, blob))
        return b"for-recipient-again"

    def get_key_policy(self, key_id):
        return '{"Version": "2012-10-17"}'


RECIPIENT = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": b"\x84doc"}


def test_the_enclave_reaches_kms_only_through_the_launchers_key(tmp_path: Path):
    import threading

    from reference.enclave.kms import KmsDenied
    from reference.enclave.kms_link import LinkKmsClient, answer

    kms = FakeKms()
    controller, device = os.openpty()
    tty.setraw(device)

    def serve():
        while True:
            try:
                (n,) = framing._REQUEST_HEAD.unpack(_read_exactly(controller, 2))
                kind = _read_exactly(controller, n).decode()
                (length,) = framing._LENGTH.unpack(_read_exactly(controller, 4))
                status, reply = answer(kms, "arn:aws:kms:us-east-1:111122223333:key/launchers", kind,
                                       _read_exactly(controller, length))
                os.write(controller, framing.encode_reply(status, reply))
            except (EOFError, OSError):
                return

    threading.Thread(target=serve, daemon=True).start()
    try:
        client = LinkKmsClient(os.ttyname(device))
        arn = client.key_arn()
        assert arn == "arn:aws:kms:us-east-1:111122223333:key/launchers"
        # whatever key the image names, the launcher's is used
        assert client.generate_data_key("arn:aws:kms:other", RECIPIENT) == (arn, b"blob", b"for-recipient")
        assert kms.calls[-1] == ("generate_data_key", arn, RECIPIENT)
        assert client.decrypt(None, b"blob", RECIPIENT) == b"for-recipient-again"
        assert client.get_key_policy(None) == '{"Version": "2012-10-17"}'
        kms.deny = True
        with pytest.raises(KmsDenied, match="PCR0 does not match"):
            client.generate_data_key(None, RECIPIENT)
    finally:
        os.close(device)
        os.close(controller)


@pytest.mark.parametrize("kind, request_", [
    ("generate-data-key", {}),                                               # no recipient
    ("generate-data-key", {"recipient": {"AttestationDocument": b"x"}}),     # no algorithm
    ("generate-data-key", {"recipient": RECIPIENT, "keyId": "arn:aws:kms:other"}),  # the image names no key
    ("decrypt", {"ciphertextBlob": "text", "recipient": RECIPIENT}),
    ("get-key-policy", {"keyId": "x"}),
    ("create-key", {}),                                                      # not forwarded
])
def test_the_kms_proxy_forwards_only_the_boot_flows_requests(kind, request_):
    import cbor2

    from reference.enclave.kms_link import answer

    kms = FakeKms()
    status, reply = answer(kms, "arn", kind, cbor2.dumps(request_))
    assert status == 400 and kms.calls == []


def test_the_kms_proxy_answers_403_on_a_denial_and_400_on_hostile_bytes():
    import cbor2

    from reference.enclave.kms_link import answer

    assert answer(FakeKms(deny=True), "arn", "generate-data-key", cbor2.dumps({"recipient": RECIPIENT}))[0] == 403
    for body in (b"\xff", b"\xa0\x00", b"\x5a\xff\xff\xff\xff", b""):
        assert answer(FakeKms(), "arn", "generate-data-key", body)[0] == 400


def test_a_pcr_in_an_nsm_request_is_refused_by_name_not_by_accident(tmp_path: Path):
    """A byte-string ``pcrs`` member is refused because it is not one of the three inputs, with a reason
    that says which members exist (not a TypeError that happened to stop it)."""
    import cbor2

    from reference.enclave.nsm import SimulatedNsm
    from reference.enclave.nsm.link import answer

    status, reply = answer(SimulatedNsm(tmp_path / "nsm", pcrs={0: b"\x11" * 48}), "attest",
                           cbor2.dumps({"pcrs": b"\x22" * 48}))
    assert status == 400 and b"user_data, nonce and public_key" in reply
