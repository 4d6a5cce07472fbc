"""The one function that builds a client TLS context: mutual TLS, TLS 1.2 or newer."""

from __future__ import annotations

import ssl
from pathlib import Path

from coldchain.core.errors import ConfigurationError


def client_context(ca: str | Path, cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """An SSL context that verifies the server against ``ca`` and presents ``cert``/``key``.

    Works for the local broker (our CA) and AWS IoT Core (Amazon Root CA 1) alike.

    Raises:
        ConfigurationError: a file is missing or unreadable, or the key does not match.
    """
    # PROTOCOL_TLS_CLIENT verifies the server and its hostname. Only ``ca`` is trusted: loading
    # the system store as well would cost ~0.5 MiB per context, per simulated device.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for label, path in (("CA certificate", ca), ("certificate", cert), ("private key", key)):
        if not Path(path).is_file():
            raise ConfigurationError(f"{label} not found: {path}")
    try:
        context.load_verify_locations(cafile=str(ca))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(f"CA certificate {ca} cannot be used: {exc}") from None
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"certificate {cert} with key {key} cannot be used: {exc}"
        ) from None
    return context
