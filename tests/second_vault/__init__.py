"""The harness against a second, independent Vault written in Node from the spec."""
