"""The /dev/nsm backend (spec 8.4), driven through a fake device: a fake ioctl that reads the
request through the iovec pointers and writes the answer back, as the kernel driver does."""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import os

import cbor2
import pytest

from harness.attestation import AWS_NITRO_ROOT_G1_PEM, Expectations, verify
from reference.enclave.nsm import AWS_NITRO_ROOT_G1_PEM as REFERENCE_AWS_ROOT
from reference.enclave.nsm import DeviceNsm, NsmDeviceError, NsmInputTooLarge, SimulatedNsm
from reference.enclave.nsm.device import NsmMessage

NOW = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.timezone.utc)


class FakeDevice:
    """Answers like the NSM: ``respond(request_value) -> bytes`` produces the CBOR answer."""

    def __init__(self, respond):
        self.respond = respond
        self.calls: list[tuple[int, object]] = []
        self.opened: list[tuple[str, int]] = []
        self.closed: list[int] = []

    def open(self, path, flags):
        self.opened.append((path, flags))
        return 42

    def close(self, fd):
        self.closed.append(fd)

    def ioctl(self, fd, request, arg, mutate):
        assert fd == 42 and mutate is True
        msg = NsmMessage.from_buffer(arg)
        raw = ctypes.string_at(msg.request.iov_base, msg.request.iov_len)
        value = cbor2.loads(raw)
        self.calls.append((request, value))
        answer = self.respond(value)
        assert len(answer) <= msg.response.iov_len
        ctypes.memmove(msg.response.iov_base, answer, len(answer))
        msg.response.iov_len = len(answer)
        return 0

    def nsm(self) -> DeviceNsm:
        return DeviceNsm("/dev/nsm", ioctl=self.ioctl, opener=self.open, closer=self.close)


def test_attestation_round_trip_through_the_ioctl(tmp_path):
    sim = SimulatedNsm(tmp_path, pcrs={0: bytes([9]) * 48}, clock=lambda: NOW)

    def respond(req):
        a = req["Attestation"]
        return cbor2.dumps({"Attestation": {"document": sim.attest(a["user_data"], a["nonce"], a["public_key"])}})

    dev = FakeDevice(respond)
    doc = dev.nsm().attest(user_data=b"u", nonce=b"n")
    request_code, request = dev.calls[0]
    assert request_code == 0xC0200A00  # _IOWR(0x0A, 0, sizeof(struct { iovec; iovec; }) == 32)
    assert request == {"Attestation": {"user_data": b"u", "nonce": b"n", "public_key": None}}
    assert dev.opened == [("/dev/nsm", os.O_RDWR)] and dev.closed == [42]
    v = verify(doc, roots=[sim.root_pem()], at=NOW, expect=Expectations(nonce=b"n", user_data=b"u"))
    assert v.pcrs[0] == bytes([9]) * 48


def test_root_to_pin_is_the_aws_root():
    assert DeviceNsm().root_pem() == REFERENCE_AWS_ROOT == AWS_NITRO_ROOT_G1_PEM


def test_nsm_error_answer_is_a_typed_error():
    dev = FakeDevice(lambda req: cbor2.dumps({"Error": "InternalError"}))
    with pytest.raises(NsmDeviceError) as err:
        dev.nsm().attest()
    assert err.value.nsm_error == "InternalError"


def test_nsm_input_too_large_answer():
    dev = FakeDevice(lambda req: cbor2.dumps({"Error": "InputTooLarge"}))
    with pytest.raises(NsmInputTooLarge):
        dev.nsm().attest(nonce=b"n")


@pytest.mark.parametrize("answer", [b"", b"\xff\xff", cbor2.dumps([1, 2]), cbor2.dumps({"GetRandom": {"random": b"x"}}),
                                    cbor2.dumps({"Attestation": {"document": "text"}})])
def test_bad_answers_are_device_errors(answer):
    dev = FakeDevice(lambda req: answer)
    with pytest.raises(NsmDeviceError):
        dev.nsm().attest()


def test_ioctl_errno():
    def failing(code):
        def ioctl(fd, request, arg, mutate):
            raise OSError(code, "fake")
        return ioctl

    closed = []
    nsm = DeviceNsm(ioctl=failing(errno.EMSGSIZE), opener=lambda p, f: 3, closer=closed.append)
    with pytest.raises(NsmInputTooLarge):
        nsm.attest()
    nsm = DeviceNsm(ioctl=failing(errno.EIO), opener=lambda p, f: 3, closer=closed.append)
    with pytest.raises(NsmDeviceError) as err:
        nsm.attest()
    assert err.value.errno == errno.EIO and closed == [3, 3]


def test_missing_device_is_a_device_error(tmp_path):
    with pytest.raises(NsmDeviceError) as err:
        DeviceNsm(str(tmp_path / "no-nsm")).attest()
    assert err.value.errno == errno.ENOENT


def test_caps_are_enforced_before_the_device_is_touched():
    dev = FakeDevice(lambda req: pytest.fail("device must not be called"))
    with pytest.raises(NsmInputTooLarge):
        dev.nsm().attest(user_data=b"x" * 513)
    assert dev.opened == []


def test_default_ioctl_marshals_the_message_to_the_kernel():
    """The real fcntl.ioctl path: a device that is not the NSM refuses the request (ENOTTY)."""
    with pytest.raises(NsmDeviceError) as err:
        DeviceNsm(os.devnull).attest(nonce=b"n")
    assert err.value.errno == errno.ENOTTY
