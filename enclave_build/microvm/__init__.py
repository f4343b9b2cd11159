"""The local enclave flavour (docs/spec/09-eif.md 9.11): boot an EIF in a QEMU microVM.

Nitro runs an EIF only on an AWS host. This package boots the very same file under QEMU's
``microvm`` machine, so the "verify, don't trust" walk runs on the real image end to end:

- :mod:`.blobs` makes the boot blobs of the flavour: Debian's cloud kernel (a pinned package) and
  the modules it needs, and our own bootstrap init (``init.c``, built static);
- :mod:`.launcher` parses the EIF, computes its PCRs as the hypervisor would, boots kernel +
  cmdline + ramdisks, acts as the enclave's NSM (documents made outside the VM with those PCRs)
  and as its KMS proxy (the mocked KMS, releasing only to that PCR0), and relays the enclave's
  framed link (a virtio-serial port standing in for vsock) to a TCP port.

It is a development stand-in, not an enclave: the host can read the guest's memory, and the
documents are signed by a development PKI the launcher makes for each run, so they are only as
true as the launcher.
"""
