"""Solana keys and signing (docs/spec/14-solana.md), sans-IO.

ed25519 signatures come from libsodium (PyNaCl, already the envelope's library); transactions are
parsed by ``solders`` (the Solana SDK's Rust types, as Python bindings), never by hand. Keys are
32-byte seeds made from the enclave's randomness; only public keys and signatures leave.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import nacl.signing

# The most a Solana transaction may take on the wire (PACKET_DATA_SIZE): a larger one could not be
# sent, so it is refused before it is parsed.
MAX_TRANSACTION_BYTES = 1232


class SolanaInputError(ValueError):
    """Input the operation refuses (answered ``invalid_input``)."""


def new_seed(random_bytes) -> bytes:
    return random_bytes(32)


def public_key(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def sign(seed: bytes, message: bytes) -> bytes:
    return nacl.signing.SigningKey(seed).sign(message).signature


def base58(raw: bytes) -> str:
    from solders.pubkey import Pubkey

    return str(Pubkey.from_bytes(raw)) if len(raw) == 32 else _signature_base58(raw)


def _signature_base58(raw: bytes) -> str:
    from solders.signature import Signature

    return str(Signature.from_bytes(raw))


def parse_pubkey(value: object, what: str) -> str:
    """A base58 public key, returned in its canonical spelling; anything else is refused."""
    from solders.pubkey import Pubkey

    if not isinstance(value, str) or not 32 <= len(value) <= 44:
        raise SolanaInputError(f"{what} must be a base58 public key")
    try:
        key = Pubkey.from_string(value)
    except ValueError:
        raise SolanaInputError(f"{what} must be a base58 public key") from None
    if str(key) != value:  # leading-zero and alphabet games: one spelling per key
        raise SolanaInputError(f"{what} must be a base58 public key")
    return value


def message_bytes(message: object, message_format: object) -> bytes:
    """``solana:signMessage``'s bytes: the UTF-8 of the text, or the decoded hex (``0x`` optional)."""
    if message_format not in ("text", "hex"):
        raise SolanaInputError("options.format must be 'text' or 'hex'")
    if not isinstance(message, str):
        raise SolanaInputError("options.message must be a string")
    if message_format == "text":
        try:
            return message.encode("utf-8")
        except UnicodeEncodeError:
            raise SolanaInputError("options.message is not valid Unicode") from None
    digits = message[2:] if message[:2] in ("0x", "0X") else message
    if len(digits) % 2 or any(c not in _HEX_DIGITS for c in digits):
        raise SolanaInputError("options.message must be even-length hex for format 'hex'")
    return bytes.fromhex(digits)


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Transaction:
    """What policies and signing need of a parsed transaction (14.3)."""

    message: bytes  # the bytes every signer signs
    version: str  # "legacy" or "v0"
    signers: tuple[str, ...]  # the required signers, in order (the first pays the fees)
    program_ids: tuple[str | None, ...]  # per instruction; None: loaded from a lookup table
    writable: tuple[str, ...]  # static accounts the message marks writable
    unresolved_writable: int  # writable accounts loaded from lookup tables (addresses unknown here)
    instruction_count: int

    @property
    def fee_payer(self) -> str:
        return self.signers[0]


def parse_transaction(value: object) -> Transaction:
    """A base64 wire transaction (legacy or v0), parsed and sanitised by solders."""
    from solders.message import MessageV0, to_bytes_versioned
    from solders.transaction import VersionedTransaction

    if not isinstance(value, str):
        raise SolanaInputError("options.transaction must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SolanaInputError("options.transaction is not base64") from None
    if not raw or len(raw) > MAX_TRANSACTION_BYTES:
        raise SolanaInputError(f"options.transaction must hold 1 to {MAX_TRANSACTION_BYTES} bytes")
    try:
        tx = VersionedTransaction.from_bytes(raw)
        tx.sanitize()
    except Exception:  # solders raises its own error types for every malformed or unsane input
        raise SolanaInputError("options.transaction is not a valid Solana transaction") from None
    if bytes(tx) != raw:  # trailing bytes, or another encoding of the same transaction
        raise SolanaInputError("options.transaction has bytes beyond the transaction")
    message = tx.message
    keys = [str(k) for k in message.account_keys]
    header = message.header
    signer_count = header.num_required_signatures
    # Writable as the header declares it (the runtime may still demote, e.g. an invoked program).
    writable_signed = signer_count - header.num_readonly_signed_accounts
    writable_unsigned_end = len(keys) - header.num_readonly_unsigned_accounts
    writable = tuple(k for i, k in enumerate(keys)
                     if (i < writable_signed) or (signer_count <= i < writable_unsigned_end))
    lookups = message.address_table_lookups if isinstance(message, MessageV0) else []
    programs = tuple(keys[ix.program_id_index] if ix.program_id_index < len(keys) else None
                     for ix in message.instructions)
    return Transaction(
        message=bytes(to_bytes_versioned(message)),
        version="v0" if isinstance(message, MessageV0) else "legacy",
        signers=tuple(keys[:signer_count]),
        program_ids=programs,
        writable=writable,
        unresolved_writable=sum(len(lookup.writable_indexes) for lookup in lookups),
        instruction_count=len(message.instructions),
    )
