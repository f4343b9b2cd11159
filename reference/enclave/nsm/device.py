"""The real NSM: ``/dev/nsm`` inside a Nitro enclave (spec 8.4).

Same message layout as AWS's nsm-api driver: one ``ioctl(fd, _IOWR(0x0A, 0, 32), &msg)`` where
``msg`` is two ``struct iovec`` (request, response). The request is the CBOR map
``{"Attestation": {"user_data": ..., "nonce": ..., "public_key": ...}}`` (absent inputs as null),
at most 0x1000 bytes; the driver writes up to 0x3000 bytes of CBOR response and sets the response
iovec's length: ``{"Attestation": {"document": bstr}}`` or ``{"Error": "<ErrorCode>"}``.

The ioctl function and the file opener are injected so the marshalling is unit-tested with a fake
device; by default they are :func:`fcntl.ioctl` and :func:`os.open`.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import errno as _errno
import os
from collections.abc import Callable
from typing import Any

import cbor2

from .errors import NsmDeviceError, NsmInputTooLarge
from .limits import check_inputs

DEVICE_PATH = "/dev/nsm"
NSM_IOCTL_MAGIC = 0x0A
REQUEST_MAX = 0x1000
RESPONSE_MAX = 0x3000


class IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class NsmMessage(ctypes.Structure):
    _fields_ = [("request", IoVec), ("response", IoVec)]


def _iowr(magic: int, nr: int, size: int) -> int:
    """Linux ``_IOWR``: direction read|write (3) << 30 | size << 16 | type << 8 | nr."""
    return (3 << 30) | (size << 16) | (magic << 8) | nr


NSM_IOCTL_REQUEST = _iowr(NSM_IOCTL_MAGIC, 0, ctypes.sizeof(NsmMessage))

#: AWS's public root for Nitro documents (G1); DER SHA-256 641a0321...bb5b. Real NSM documents
#: chain to it, so it is what a verifier of this backend pins.
AWS_NITRO_ROOT_G1_PEM = b"""-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
"""


def _default_ioctl(fd: int, request: int, arg: Any, mutate: bool) -> int:
    import fcntl

    return fcntl.ioctl(fd, request, arg, mutate)


class DeviceNsm:
    """Attestation through ``/dev/nsm``; the same ``attest``/``root_pem`` interface as
    :class:`~reference.enclave.nsm.SimulatedNsm`."""

    def __init__(
        self,
        device_path: str = DEVICE_PATH,
        *,
        ioctl: Callable[[int, int, Any, bool], int] = _default_ioctl,
        opener: Callable[[str, int], int] = os.open,
        closer: Callable[[int], None] = os.close,
    ):
        self._path, self._ioctl, self._opener, self._closer = device_path, ioctl, opener, closer

    def root_pem(self) -> bytes:
        return AWS_NITRO_ROOT_G1_PEM

    def attest(
        self,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
        *,
        now: _dt.datetime | None = None,  # the NSM keeps its own clock; accepted for the interface
    ) -> bytes:
        check_inputs(user_data, nonce, public_key)
        request = cbor2.dumps(
            {
                "Attestation": {
                    "user_data": None if user_data is None else bytes(user_data),
                    "nonce": None if nonce is None else bytes(nonce),
                    "public_key": None if public_key is None else bytes(public_key),
                }
            }
        )
        answer = self._call(request)
        if not isinstance(answer, dict) or len(answer) != 1:
            raise NsmDeviceError("NSM answered with an unexpected CBOR value")
        (kind, body), = answer.items()
        if kind == "Error":
            if body == "InputTooLarge":
                raise NsmInputTooLarge("request", REQUEST_MAX, len(request))
            raise NsmDeviceError(f"NSM refused the request: {body}", nsm_error=str(body))
        if kind != "Attestation" or not isinstance(body, dict) or not isinstance(body.get("document"), bytes):
            raise NsmDeviceError(f"NSM answered {kind!r} to an attestation request")
        return body["document"]

    def _call(self, request: bytes) -> Any:
        if len(request) > REQUEST_MAX:
            raise NsmInputTooLarge("request", REQUEST_MAX, len(request))
        req_buf = ctypes.create_string_buffer(request, len(request))
        resp_buf = ctypes.create_string_buffer(RESPONSE_MAX)
        message = NsmMessage(
            IoVec(ctypes.addressof(req_buf), len(request)),
            IoVec(ctypes.addressof(resp_buf), RESPONSE_MAX),
        )
        try:
            fd = self._opener(self._path, os.O_RDWR)
        except OSError as exc:
            raise NsmDeviceError(f"cannot open {self._path}: {exc.strerror}", errno=exc.errno) from exc
        try:
            self._ioctl(fd, NSM_IOCTL_REQUEST, message, True)
        except OSError as exc:
            if exc.errno == _errno.EMSGSIZE:
                raise NsmInputTooLarge("request", REQUEST_MAX, len(request)) from exc
            raise NsmDeviceError(f"NSM ioctl failed: {exc.strerror}", errno=exc.errno) from exc
        finally:
            self._closer(fd)
        length = message.response.iov_len
        if not 0 < length <= RESPONSE_MAX:
            raise NsmDeviceError(f"NSM response length {length} out of range")
        try:
            return cbor2.loads(resp_buf.raw[:length])
        except (cbor2.CBORDecodeError, ValueError) as exc:
            raise NsmDeviceError(f"NSM response is not CBOR: {exc}") from exc
