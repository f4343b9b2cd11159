"""A mocked AWS KMS with Nitro Enclaves ``Recipient`` support (spec KMS.md).

moto keeps the keys and serves the ordinary API; this package adds what moto lacks: attested
``Recipient`` requests answered with CMS ``CiphertextForRecipient`` (and no ``Plaintext``), real
key-policy evaluation with the ``kms:RecipientAttestation:*`` condition keys, and an audit log.
``policy`` is pure and usable alone. This package never imports the reference implementation.
"""
