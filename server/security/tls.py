"""The server's TLS context, built once from ``--tls-cert`` / ``--tls-key``.

The server starts only if the files load (``Engine`` builds the context at
start-up), so a bad certificate fails loudly instead of on every SSLRequest.
"""

from __future__ import annotations

import ssl
from functools import lru_cache

from server.settings import Settings


@lru_cache(maxsize=4)
def _context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The context to answer SSLRequest with, or None when TLS is not configured."""
    if not (settings.tls_cert and settings.tls_key):
        if settings.tls_cert or settings.tls_key:
            raise SystemExit("quackml: --tls-cert and --tls-key go together")
        return None
    try:
        return _context(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SystemExit(f"quackml: cannot load --tls-cert/--tls-key: {exc}") from exc
