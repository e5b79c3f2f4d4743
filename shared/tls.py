"""The one verifying TLS client context used by every outbound connection."""

from __future__ import annotations

import functools
import os
import ssl


def client_ssl_context() -> ssl.SSLContext:
    """A verifying client context (TLS 1.2+, hostname checked).

    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace the system trust store when set, as in OpenSSL;
    they are read on every call so a test or an operator can change them, and each distinct value
    gets its own cached context (building one parses the whole CA bundle).
    """
    return _context_for(os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=16)
def _context_for(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile or capath:
        context = ssl.create_default_context(cafile=cafile, capath=capath)
    else:
        context = ssl.create_default_context()
        if not context.get_ca_certs() and not _has_capath_certs():
            _load_certifi(context)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _has_capath_certs() -> bool:
    capath = ssl.get_default_verify_paths().capath
    return bool(capath and os.path.isdir(capath) and os.listdir(capath))


def _load_certifi(context: ssl.SSLContext) -> None:
    # Slim containers may lack a system CA store; certifi ships with httpx.
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi is a dependency of httpx
        return
    context.load_verify_locations(cafile=certifi.where())
