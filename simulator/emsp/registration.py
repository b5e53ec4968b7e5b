"""Credentials handshake in both directions (OCPI 2.2.1, credentials module).

Initiator (the sandbox POSTs): versions + details with TOKEN_A, then POST its fresh
TOKEN_B; it must already accept TOKEN_B while the POST is in flight because the
Responder calls back with it. Responder (the CPO POSTs): fetch the caller's versions
with the TOKEN_B it sent, issue TOKEN_C, and retire the TOKEN_A that was used.

Errors: :class:`RegistrationError` carries the OCPI status code (3001/3002/3003 or the
peer's answer) so tests can assert on why a handshake failed.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from simulator.emsp.client import OcpiClient, OcpiReply
from simulator.emsp.state import Peer, SandboxState
from simulator.emsp.wire import (
    CLIENT_ERROR,
    INVALID_PARAMS,
    VERSION,
    new_credentials_token,
    reply,
)

log = structlog.get_logger("simulator.emsp")

# What a handshake fails with (OCPI status codes 3xxx: the peer's API is the problem).
CLIENT_API_UNUSABLE = 3001
UNSUPPORTED_VERSION = 3002
NO_MATCHING_ENDPOINTS = 3003


class RegistrationError(Exception):
    """The handshake failed; ``status_code`` is an OCPI code, ``reply`` the peer's answer."""

    def __init__(self, status_code: int, message: str, reply: OcpiReply | None = None) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.reply = reply


async def fetch_peer(client: OcpiClient, versions_url: str, token: str) -> Peer:
    """GET the peer's versions and 2.2.1 details with ``token``; raises RegistrationError."""
    versions = await client.call("GET", versions_url, token=token)
    if versions.http_status == 401:
        other = "raw" if client.auth_encoding == "base64" else "base64"
        retry = await client.call("GET", versions_url, token=token, encoding=other)
        if retry.ok:
            client.auth_encoding = other
            versions = retry
    if not versions.ok or not isinstance(versions.data, list):
        raise RegistrationError(
            CLIENT_API_UNUSABLE, f"GET versions failed: HTTP {versions.http_status}", versions
        )
    match = next(
        (v for v in versions.data if isinstance(v, dict) and v.get("version") == VERSION), None
    )
    if match is None or not isinstance(match.get("url"), str):
        raise RegistrationError(
            UNSUPPORTED_VERSION, f"peer does not offer OCPI {VERSION}", versions
        )
    details = await client.call("GET", match["url"], token=token)
    data = details.data
    if not details.ok or not isinstance(data, dict) or not isinstance(data.get("endpoints"), list):
        raise RegistrationError(
            CLIENT_API_UNUSABLE, f"GET version details failed: HTTP {details.http_status}", details
        )
    endpoints: dict[tuple[str, str], str] = {}
    for ep in data["endpoints"]:
        if isinstance(ep, dict) and isinstance(ep.get("identifier"), str) and ep.get("url"):
            endpoints[(ep["identifier"], str(ep.get("role", "SENDER")))] = str(ep["url"])
    if not any(m == "credentials" for m, _ in endpoints):
        raise RegistrationError(NO_MATCHING_ENDPOINTS, "peer has no credentials endpoint", details)
    return Peer(versions_url=versions_url, version=VERSION, endpoints=endpoints)


def _validate_credentials(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RegistrationError(INVALID_PARAMS, "credentials body must be a JSON object")
    token, url, roles = body.get("token"), body.get("url"), body.get("roles")
    if not isinstance(token, str) or not token or len(token) > 64:
        raise RegistrationError(INVALID_PARAMS, "credentials.token must be a 1..64 char string")
    if any(not 0x21 <= ord(c) <= 0x7E for c in token):
        raise RegistrationError(INVALID_PARAMS, "credentials.token has non-printable characters")
    if not isinstance(url, str) or not url:
        raise RegistrationError(INVALID_PARAMS, "credentials.url is required")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, dict) for r in roles):
        raise RegistrationError(INVALID_PARAMS, "credentials.roles must be a non-empty list")
    for r in roles:
        for f in ("role", "party_id", "country_code", "business_details"):
            if f not in r:
                raise RegistrationError(INVALID_PARAMS, f"credentials.roles[].{f} is required")
    return body


# --------------------------------------------------------------------------- Responder


async def handle_credentials(
    state: SandboxState,
    client: OcpiClient,
    method: str,
    kind: str | None,
    token: str | None,
    body: Any,
) -> web.Response:
    peer = state.peer
    if method == "GET":
        return reply(state.party.own_credentials(token or ""))
    if method == "POST":
        if peer.registered:
            return reply(None, CLIENT_ERROR, "already registered", http_status=405)
        if kind != "token_a" or token is None:
            return reply(None, CLIENT_ERROR, "POST credentials needs a TOKEN_A", http_status=405)
    elif not peer.registered or kind != "token_in":
        return reply(None, CLIENT_ERROR, "not registered", http_status=405)
    if method == "DELETE":
        state.peer = Peer()
        state.changed("credentials", "DELETE", "peer", None)
        log.info("emsp_unregistered_by_peer")
        return reply(None)
    try:
        creds = _validate_credentials(body)
        fetched = await fetch_peer(client, creds["url"], creds["token"])
    except RegistrationError as exc:
        return reply(None, exc.status_code, exc.message)
    token_c = new_credentials_token("emsp-c")
    fetched.token_out = creds["token"]
    fetched.token_in = token_c
    fetched.roles = list(creds["roles"])
    fetched.registered = True
    fetched.initiator = False
    state.peer = fetched
    if method == "POST" and token is not None:
        state.token_as.discard(token)
    state.changed("credentials", method, "peer", {"url": creds["url"], "roles": creds["roles"]})
    log.info("emsp_registered_by_peer", method=method, peer_versions=creds["url"])
    return reply(state.party.own_credentials(token_c))


# --------------------------------------------------------------------------- Initiator


async def _offer_credentials(
    state: SandboxState, client: OcpiClient, method: str, url: str, token: str | None
) -> tuple[str, dict[str, Any]]:
    """Send our credentials with a fresh TOKEN_B; (that token, the peer's credentials).

    The new token is accepted while the call is in flight: the peer calls back with it
    before answering.
    """
    token_b = new_credentials_token("emsp-b")
    state.pending_tokens.add(token_b)
    try:
        answer = await client.call(
            method, url, token=token, body=state.party.own_credentials(token_b)
        )
    finally:
        state.pending_tokens.discard(token_b)
    data = answer.data
    if not answer.ok or not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise RegistrationError(
            answer.status_code or CLIENT_API_UNUSABLE,
            f"{method} credentials failed: HTTP {answer.http_status}",
            answer,
        )
    return token_b, data


async def register_with(
    state: SandboxState, client: OcpiClient, versions_url: str, token_a: str
) -> Peer:
    """The sandbox as Initiator: POST its credentials to the peer found at ``versions_url``."""
    if state.peer.registered:
        raise RegistrationError(CLIENT_ERROR, "already registered; unregister first")
    fetched = await fetch_peer(client, versions_url, token_a)
    creds_url = fetched.endpoint("credentials", "SENDER")
    assert creds_url is not None
    token_b, data = await _offer_credentials(state, client, "POST", creds_url, token_a)
    fetched.token_in = token_b
    fetched.token_out = data["token"]
    fetched.roles = list(data.get("roles") or [])
    fetched.registered = True
    fetched.initiator = True
    state.peer = fetched
    state.changed("credentials", "registered", "peer", {"url": versions_url})
    log.info("emsp_registered_with_peer", peer_versions=versions_url)
    return fetched


async def update_credentials(state: SandboxState, client: OcpiClient) -> Peer:
    """PUT fresh credentials (token rotation / endpoint refresh) to the registered peer."""
    peer = state.peer
    if not peer.registered or peer.token_out is None:
        raise RegistrationError(CLIENT_ERROR, "not registered")
    creds_url = peer.endpoint("credentials", "SENDER")
    assert creds_url is not None
    token_b, data = await _offer_credentials(state, client, "PUT", creds_url, peer.token_out)
    peer.token_in = token_b
    peer.token_out = data["token"]
    peer.roles = list(data.get("roles") or peer.roles)
    state.changed("credentials", "PUT", "peer", None)
    return peer


async def unregister(state: SandboxState, client: OcpiClient) -> OcpiReply:
    """DELETE our credentials at the peer; the local pairing is dropped either way."""
    peer = state.peer
    if not peer.registered:
        raise RegistrationError(CLIENT_ERROR, "not registered")
    creds_url = peer.endpoint("credentials", "SENDER")
    assert creds_url is not None
    answer = await client.call("DELETE", creds_url, token=peer.token_out)
    state.peer = Peer()
    state.changed("credentials", "DELETE", "peer", None)
    return answer
