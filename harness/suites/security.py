"""What the protocol does not guarantee (spec §10): reported, never failed."""

from __future__ import annotations

from ._util import request_bytes
from .registry import Context, Level, Observation, check


@check("security/replay", section="10.3", level=Level.INFO,
       requirement="The protocol has no replay protection: a captured request may be posted again. "
                   "A Vault MAY refuse a reused ephemeralPublicKey.")
def replay(ctx: Context):
    plaintext = request_bytes("serviceAccount:create", {"metadata": {"probe": "replay"}})
    secret, sealed = ctx.client.seal(plaintext)
    first = ctx.client.read_reply(plaintext, secret, sealed, ctx.client.post_raw(sealed.to_bytes()))
    second = ctx.client.read_reply(plaintext, secret, sealed, ctx.client.post_raw(sealed.to_bytes()))
    if first.ok and second.ok:
        raise Observation(
            f"replayed serviceAccount:create ran twice (ids {first.data.get('id')} and {second.data.get('id')})")
    raise Observation(f"the replay was refused (HTTP {second.status}, {second.error_code or second.unencrypted_error})")
