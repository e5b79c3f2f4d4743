"""One HTTP request through the egress guard, with transport failures mapped to permanent or transient
``ActionError``s."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from services.executor.egress import EgressBlocked, EgressGuard, HostUnresolvable
from shared.actions.outcomes import ActionError, permanent, transient
from shared.actions.replies import HttpReply, find_cause

# Enough for a 4000-character snippet of any UTF-8 text, without buffering arbitrarily large bodies.
MAX_BODY_BYTES = 64 * 1024
MAX_REDIRECTS = 5


def blocked_error(exc: BaseException, what: str) -> ActionError:
    if isinstance(exc, HostUnresolvable):
        return transient(f"{what} could not be reached: {exc}")
    return permanent(f"{what} blocked by the egress policy: {exc}")


async def http_request(
    egress: EgressGuard,
    method: str,
    url: str | httpx.URL,
    *,
    what: str,
    timeout: float,
    follow_redirects: bool,
    headers: Mapping[str, str] | None = None,
    content: str | bytes | None = None,
    data: Mapping[str, str] | None = None,
    json: Any = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    private_headers: Iterable[str] = (),
) -> HttpReply:
    """Send one request; egress refusals and TLS verification failures are permanent, timeouts and
    connection failures transient. ``what`` names the peer in messages ("Slack webhook").

    Redirects (when followed, at most MAX_REDIRECTS) that leave the request's origin drop the
    ``private_headers`` (credential and user-set headers): httpx itself strips only Authorization.
    """
    private = {name.lower() for name in private_headers} | {"authorization", "cookie"}
    try:
        async with egress.http_client(timeout=timeout, require_https=True, follow_redirects=False) as client:
            request = client.build_request(
                method, url, headers=headers, content=content, data=data, json=json
            )
            for hop in range(MAX_REDIRECTS + 1):
                response = await client.send(
                    request, auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT, stream=True
                )
                following = response.next_request if follow_redirects else None
                if following is None:
                    break
                await response.aclose()
                if hop == MAX_REDIRECTS:
                    raise httpx.TooManyRedirects("Exceeded maximum allowed redirects", request=request)
                if _origin(following.url) != _origin(request.url):
                    for name in private:
                        following.headers.pop(name, None)
                    auth = None  # an auth flow would add its header again at the new origin
                request = following
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= MAX_BODY_BYTES:
                        break
            finally:
                await response.aclose()
            text = bytes(body[:MAX_BODY_BYTES]).decode(response.encoding or "utf-8", errors="replace")
            return HttpReply(status=response.status_code, headers=response.headers, text=text)
    except EgressBlocked as exc:
        raise blocked_error(exc, what) from None
    except httpx.TimeoutException:
        raise transient(f"Request timed out after {timeout:g} s ({what})") from None
    except httpx.TooManyRedirects:
        raise permanent(f"{what}: too many redirects") from None
    except (httpx.HTTPError, OSError) as exc:
        blocked = find_cause(exc, EgressBlocked)
        if blocked is not None:
            raise blocked_error(blocked, what) from None
        if find_cause(exc, ssl.SSLCertVerificationError) is not None:
            raise permanent(f"{what}: the server's TLS certificate could not be verified") from None
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            raise permanent(f"{what}: invalid URL ({exc})") from None
        raise transient(f"{what}: connection failed ({type(exc).__name__}: {exc})") from None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)
