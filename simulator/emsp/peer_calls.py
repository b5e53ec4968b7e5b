"""What the sandbox, as eMSP, sends to its paired CPO: token pushes and commands.

Why one class over the state and the client: every call needs the pairing (peer URL,
TOKEN_C, routing headers) from the state and goes out through the one logging client,
and the commands carry a ``response_url`` back to the sandbox's own command results.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

from simulator.emsp.client import OcpiClient, OcpiReply
from simulator.emsp.registration import RegistrationError
from simulator.emsp.state import CommandSent, SandboxState
from simulator.emsp.tables import TokenRecord
from simulator.emsp.wire import MODULE_BASE, join_url, now_iso


class PeerCalls:
    def __init__(self, state: SandboxState, client: OcpiClient) -> None:
        self.state = state
        self.client = client
        self._cmd_seq = itertools.count(1)

    def _routing(self) -> dict[str, str]:
        party, peer = self.state.party, self.state.peer
        headers = {
            "OCPI-from-country-code": party.country_code,
            "OCPI-from-party-id": party.party_id,
        }
        if peer.country_code and peer.party_id:
            headers["OCPI-to-country-code"] = str(peer.country_code)
            headers["OCPI-to-party-id"] = str(peer.party_id)
        return headers

    def _peer_url(self, module: str, role: str) -> str:
        peer = self.state.peer
        if not peer.registered:
            raise RegistrationError(2000, "not registered with a peer")
        url = peer.endpoint(module, role)
        if url is None:
            raise RegistrationError(3003, f"peer has no {module} {role} endpoint")
        return url

    async def call_peer(
        self, method: str, module: str, role: str, *segments: str, body: Any = None, query: str = ""
    ) -> OcpiReply:
        url = join_url(self._peer_url(module, role), *segments) + query
        return await self.client.call(
            method, url, token=self.state.peer.token_out, body=body, routing=self._routing()
        )

    # ------------------------------------------------------------------ tokens

    def _token_record(self, uid: str, type: str) -> TokenRecord:
        rec = self.state.tokens.get(uid, type)
        if rec is None:
            raise KeyError(f"unknown token {uid!r}/{type}")
        return rec

    async def _token_call(self, method: str, uid: str, type: str, body: Any = None) -> OcpiReply:
        party = self.state.party
        return await self.call_peer(
            method, "tokens", "RECEIVER", party.country_code, party.party_id, uid,
            body=body, query=f"?type={type}",
        )  # fmt: skip

    async def push_token(self, uid: str, type: str = "RFID") -> OcpiReply:
        """PUT one token of our table to the CPO's tokens RECEIVER."""
        tok = self._token_record(uid, type).token
        return await self._token_call("PUT", tok["uid"], tok.get("type", "RFID"), tok)

    async def push_tokens(self, concurrency: int = 16) -> list[OcpiReply]:
        """PUT every token of the table; returns the replies in table order."""
        sem = asyncio.Semaphore(concurrency)

        async def one(rec: TokenRecord) -> OcpiReply:
            async with sem:
                return await self.push_token(rec.uid, rec.type)

        return list(await asyncio.gather(*(one(r) for r in self.state.tokens.records())))

    async def patch_token(
        self, uid: str, changes: Mapping[str, Any], type: str = "RFID"
    ) -> OcpiReply:
        """Apply ``changes`` locally (new last_updated) and PATCH them to the CPO."""
        rec = self._token_record(uid, type)
        body = {**changes, "last_updated": now_iso()}
        rec.token.update(body)
        if "valid" in changes:
            rec.allowed = "ALLOWED" if changes["valid"] else "BLOCKED"
        return await self._token_call("PATCH", rec.uid, rec.type, body)

    async def block_token(self, uid: str, type: str = "RFID") -> OcpiReply:
        return await self.patch_token(uid, {"valid": False}, type)

    async def get_token_at_cpo(self, uid: str, type: str = "RFID") -> OcpiReply:
        return await self._token_call("GET", uid, type)

    # ------------------------------------------------------------------ commands

    async def send_command(self, command: str, body: Mapping[str, Any]) -> CommandSent:
        state = self.state
        ref = f"{command.lower()}-{next(self._cmd_seq)}-{state.rng.randrange(16**6):06x}"
        response_url = f"{state.party.base_url}{MODULE_BASE}/commands/{command}/{ref}"
        full = {"response_url": response_url, **body}
        answer = await self.call_peer("POST", "commands", "RECEIVER", command, body=full)
        sent = CommandSent(command, ref, response_url, full, answer)
        state.commands_sent.append(sent)
        state.say(f"command {command} {ref} -> HTTP {answer.http_status} {sent.result}")
        return sent

    def _command_token(self, uid: str | None, type: str) -> dict[str, Any]:
        """Our token ``uid`` if we own it, else an ad-hoc one (an app user when no uid)."""
        if uid is not None:
            rec = self.state.tokens.get(uid, type)
            if rec is not None:
                return rec.token
        if uid is None:
            uid, type = f"app-{self.state.rng.randrange(16**8):08x}", "APP_USER"
        party = self.state.party
        return {
            "country_code": party.country_code,
            "party_id": party.party_id,
            "uid": uid,
            "type": type,
            "contract_id": f"{party.country_code}-{party.party_id}-{uid}"[:36],
            "issuer": party.business_name,
            "valid": True,
            "whitelist": "NEVER" if type in ("APP_USER", "AD_HOC_USER") else "ALLOWED",
            "last_updated": now_iso(),
        }

    async def start_session(
        self,
        location_id: str,
        evse_uid: str | None = None,
        uid: str | None = None,
        authorization_reference: str | None = None,
        *,
        connector_id: str | None = None,
        token_type: str = "RFID",
    ) -> CommandSent:
        body = {
            "token": self._command_token(uid, token_type),
            "location_id": location_id,
            **_given(
                evse_uid=evse_uid,
                connector_id=connector_id,
                authorization_reference=authorization_reference,
            ),
        }
        return await self.send_command("START_SESSION", body)

    async def stop_session(self, session_id: str) -> CommandSent:
        return await self.send_command("STOP_SESSION", {"session_id": session_id})

    async def reserve_now(
        self,
        location_id: str,
        reservation_id: str,
        expiry_date: str,
        uid: str | None = None,
        evse_uid: str | None = None,
        authorization_reference: str | None = None,
        token_type: str = "RFID",
    ) -> CommandSent:
        body = {
            "token": self._command_token(uid, token_type),
            "expiry_date": expiry_date,
            "reservation_id": reservation_id,
            "location_id": location_id,
            **_given(evse_uid=evse_uid, authorization_reference=authorization_reference),
        }
        return await self.send_command("RESERVE_NOW", body)

    async def cancel_reservation(self, reservation_id: str) -> CommandSent:
        return await self.send_command("CANCEL_RESERVATION", {"reservation_id": reservation_id})

    async def unlock_connector(
        self, location_id: str, evse_uid: str, connector_id: str
    ) -> CommandSent:
        return await self.send_command(
            "UNLOCK_CONNECTOR",
            {"location_id": location_id, "evse_uid": evse_uid, "connector_id": connector_id},
        )


def _given(**fields: str | None) -> dict[str, str]:
    """The optional command fields that were given, in order (absent, not null, on the wire)."""
    return {k: v for k, v in fields.items() if v is not None}
