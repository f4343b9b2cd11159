"""An NSM on the other side of a serial link (spec 9.11): the local microVM's stand-in for /dev/nsm.

On Nitro the hypervisor makes attestation documents: the enclave asks, and cannot choose the PCRs
nor reach the signing key. The local microVM keeps that division. The launcher, outside the VM,
computed the PCRs from the EIF and holds the NSM's signing key. The enclave asks it over the
virtio-serial port ``org.nitro-vault.nsm`` with the framing of 2.4:

    request  "attest", CBOR map {"user_data"?: bytes, "nonce"?: bytes, "public_key"?: bytes}
    reply    200 + the COSE_Sign1 document | 400 + a one-line reason (the input was refused)
    request  "root"  ->  200 + the PEM root of the launcher's development PKI

So code in the image, changed or not, gets documents only with the PCRs of the EIF that booted.
"""

from __future__ import annotations

import datetime as _dt

import cbor2

from .errors import NsmDeviceError, NsmInvalidInput
from .limits import check_inputs

PORT_NAME = "org.nitro-vault.nsm"


class LinkNsm:
    """The :class:`~reference.enclave.nsm.Nsm` interface over a serial port, one request at a time."""

    development_root = True  # the launcher's root is a development root (served for dev verifiers)

    def __init__(self, port: str = PORT_NAME):
        from ..serial_link import SerialLink

        self._link = SerialLink(port)
        self._root: bytes | None = None

    def _exchange(self, kind: str, body: bytes) -> tuple[int, bytes]:
        from ..serial_link import SerialLinkError

        try:
            return self._link.exchange(kind, body)
        except SerialLinkError as error:
            raise NsmDeviceError(f"the NSM link failed: {error}") from None

    def attest(self, user_data: bytes | None = None, nonce: bytes | None = None, public_key: bytes | None = None,
               *, now: _dt.datetime | None = None) -> bytes:
        """A document from the launcher's NSM. ``now`` is not honoured: the time is the NSM's."""
        check_inputs(user_data, nonce, public_key)
        request = {k: bytes(v) for k, v in (("user_data", user_data), ("nonce", nonce), ("public_key", public_key))
                   if v is not None}
        status, body = self._exchange("attest", cbor2.dumps(request))
        if status == 400:
            raise NsmInvalidInput("request", body.decode(errors="replace"))
        if status != 200:
            raise NsmDeviceError(f"the NSM link answered {status}: {body[:200]!r}")
        return body

    def root_pem(self) -> bytes:
        if self._root is None:
            status, body = self._exchange("root", b"")
            if status != 200:
                raise NsmDeviceError(f"the NSM link answered {status} for its root")
            self._root = body
        return self._root


# The launcher's side: one answer per request, from an NSM it holds (spec 9.11 item 7).

_FIELDS = {"user_data", "nonce", "public_key"}


def answer(nsm, kind: str, body: bytes) -> tuple[int, bytes]:
    """What the host-side NSM answers to one request; never raises on what the guest sends."""
    if kind == "root":
        return 200, nsm.root_pem()
    if kind != "attest":
        return 400, f"unknown NSM request {kind!r}".encode()
    from ..serial_link import decode_request_map

    try:
        request = decode_request_map(body)
    except ValueError as error:
        return 400, str(error).encode()
    if not set(request) <= _FIELDS or not all(isinstance(v, bytes) for v in request.values()):
        return 400, b"the request must map user_data, nonce and public_key to byte strings"
    try:
        return 200, nsm.attest(**request)
    except NsmInvalidInput as error:
        return 400, str(error).encode()
    except Exception as error:  # NsmInputTooLarge and the like: a refusal, never a crash of the host
        return 400, f"{type(error).__name__}: {error}".encode()


__all__ = ["LinkNsm", "PORT_NAME", "answer"]
