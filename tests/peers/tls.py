"""A throw-away certificate authority for TLS test peers (HTTPS, SMTPS/STARTTLS, FTPS...)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

import trustme


@dataclass
class LocalCA:
    """A trustme CA whose PEM bundle is on disk, so clients can trust it through SSL_CERT_FILE."""

    ca: trustme.CA
    ca_bundle: Path
    _contexts: dict[tuple[str, ...], ssl.SSLContext] = field(default_factory=dict, repr=False)

    def server_context(self, *hostnames: str) -> ssl.SSLContext:
        """A server-side context presenting a certificate for ``hostnames`` (DNS names or IP literals)."""
        names = hostnames or ("localhost", "127.0.0.1")
        context = self._contexts.get(names)
        if context is None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert(*names).configure_cert(context)
            self._contexts[names] = context
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA (for tests that bypass SSL_CERT_FILE)."""
        return ssl.create_default_context(cafile=str(self.ca_bundle))


def make_local_ca(directory: Path) -> LocalCA:
    """Create a CA and write its certificate to ``directory/local-ca.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    bundle = directory / "local-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return LocalCA(ca=ca, ca_bundle=bundle)
