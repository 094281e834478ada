"""The 2026-04-01 protocol (protocol-2026.md): an adapter next to the REST one, over the same
operations. ``protocol`` parses and writes envelopes, ``dispatch`` routes `POST /` by kind, and
each family of kinds has its module (``promises``)."""

from resonate.server.envelope.dispatch import handle_envelope

__all__ = ["handle_envelope"]
