"""An S3-compatible store on loopback: moto in server mode, optionally behind TLS.

moto keeps all state in process memory, shared by every server in the process; ``reset()`` wipes
it. ``require_auth(True)`` makes moto check every request's signature and IAM policy, so wrong
keys fail the way they do on AWS.
"""

from __future__ import annotations

import ssl
from typing import Any

import boto3
import requests
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from tests.peers.listener import StartedPeer
from tests.peers.tls import LocalCA

ACCESS_KEY = "AKIAWORKFLOWSTEST01"
SECRET_KEY = "workflows-test-secret-key/0123456789abcd"


class _TlsMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose werkzeug server wraps connections in TLS when given a context."""

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self._ssl_context = ssl_context

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address,
            self._port,
            app,
            threaded=True,
            request_handler=MotoRequestHandler,
            ssl_context=self._ssl_context,
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class S3Peer(StartedPeer):
    """moto's S3 on 127.0.0.1 (random port); ``endpoint_url`` uses the host name "localhost"."""

    def __init__(
        self, ca: LocalCA | None = None, hostnames: tuple[str, ...] = ("localhost", "127.0.0.1")
    ) -> None:
        self._server = _TlsMotoServer(ca.server_context(*hostnames) if ca is not None else None)
        self._scheme = "https" if ca is not None else "http"
        self._verify: str | bool = str(ca.ca_bundle) if ca is not None else True
        self.port = 0

    def start(self) -> None:
        self._server.start()
        self.port = self._server.get_host_and_port()[1]

    def stop(self) -> None:
        self._server.stop()

    @property
    def endpoint_url(self) -> str:
        return f"{self._scheme}://localhost:{self.port}"

    def client(self, service: str = "s3", access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        """A synchronous boto3 client (s3, iam...) for arranging and inspecting the store."""
        return boto3.client(
            service,
            endpoint_url=self._admin_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
            verify=self._verify,
        )

    def bucket(self, name: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        """A boto3 Bucket resource, for reading back what an action stored."""
        resource = boto3.resource(
            "s3",
            endpoint_url=self._admin_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
            verify=self._verify,
        )
        return resource.Bucket(name)

    def reset(self) -> None:
        """Forget every bucket, object and IAM user.

        moto builds its backend app lazily on the first request, and that build sometimes fails once
        under load (a werkzeug route-compile error); a retry succeeds.
        """
        for attempt in range(3):
            response = requests.post(f"{self._admin_url}/moto-api/reset", timeout=10, verify=self._verify)
            if response.status_code < 500 or attempt == 2:
                response.raise_for_status()
                return

    def require_auth(self, enabled: bool) -> None:
        """Check signatures and IAM policies from the next request on (moto's reset-auth switch)."""
        value = b"0" if enabled else b"inf"
        requests.post(
            f"{self._admin_url}/moto-api/reset-auth", data=value, timeout=10, verify=self._verify
        ).raise_for_status()

    @property
    def _admin_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def credential(self, bucket: str, **overrides: object) -> dict[str, object]:
        """Canonical AwsS3 credential data for ``bucket`` on this store."""
        data: dict[str, object] = {
            "accessKeyId": ACCESS_KEY,
            "secretAccessKey": SECRET_KEY,
            "region": "us-east-1",
            "bucketName": bucket,
            "endpointUrl": self.endpoint_url,
        }
        data.update(overrides)
        return {k: v for k, v in data.items() if v is not None}
