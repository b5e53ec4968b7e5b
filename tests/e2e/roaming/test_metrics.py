"""``GET /metrics`` scraped during a real session: the real CSMS, the simulator as the
charger and the eMSP sandbox as the partner. Every series checked here is compared with
what the other side saw (the simulator's own exchanges, the decision log, the outbox
rows), not with numbers typed into the test."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.csms import admin_session, admin_url, runtime_of
from tests.support.waiting import wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    """Every sample of one scrape, keyed by (name, labels); no token (loopback admin)."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


async def pending_by_partner(w: Any) -> Counter[str]:
    """Undelivered, not-dead pushes per partner, straight from the store."""
    return Counter(m.partner_key for m in await w.cpo.outbox.waiting() if m.status == "pending")


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def test_a_scrape_during_a_roaming_session_shows_decisions_messages_and_outbox(
    make_world: Any,
) -> None:
    async with make_world() as w:
        url = admin_url(w.app)
        emsp = w.emsp
        emsp.add_token("CACHE-1", whitelist="ALWAYS")  # decided from the token cache
        emsp.add_token("RT-1", whitelist="NEVER")  # always asks the eMSP in real time
        await emsp.push_tokens()
        await w.outbox_idle()
        async with w.charger() as cp:
            assert (await cp.authorize("CACHE-1"))["idTagInfo"]["status"] == "Accepted"
            assert (await cp.authorize("RT-1"))["idTagInfo"]["status"] == "Accepted"
            # A CALL the schema refuses: answered with a CALLERROR, counted by its code.
            reply = await cp.send_raw('[2,"bad-1","Authorize",{}]')
            assert reply is not None
            kind, _, code, *_ = json.loads(reply)
            assert kind == 4
            await cp.start_transaction(1, "CACHE-1", meter_start=0, meter_loop=False)
            await emsp.wait_until(lambda: len(emsp.sessions) == 1, timeout=5)
            await w.outbox_idle()
            await emsp.set_down("503")  # the CDR push now fails and waits in the outbox
            await cp.stop_transaction(1, meter_stop=4000, reason="EVDisconnected")

            async def cdr_failed_and_fanned_out() -> bool:
                # Pushes for every partner ("*", e.g. EVSE status) are fanned out to
                # NL-EMS by the worker; wait for that too, so rows stay put during the scrape.
                waiting = await w.cpo.outbox.waiting()
                return any(m.module == "cdrs" and m.attempts >= 1 for m in waiting) and all(
                    m.partner_key != "*" for m in waiting
                )

            await wait_until(cdr_failed_and_fanned_out, what="the CDR push refused and kept")
            before = await pending_by_partner(w)
            during = await scrape(url)
            pending = await pending_by_partner(w)
            assert before == pending  # nothing moved around the scrape

            # Connected chargers: the gateway's view, one simulator.
            assert value(during, "csms_chargers_connected") == 1

            # Messages by action: what the simulator sent and got answered.
            sent = Counter(s.action for s in cp.steps if s.error is None)
            for action, n in sent.items():
                assert value(during, "csms_ocpp_messages_total", action=action, result="ok") == n
            assert sent["Authorize"] == 2 and sent["StartTransaction"] == 1
            assert (
                value(during, "csms_ocpp_messages_total", action="Authorize", result="callerror")
                == 1
            )
            codes = series(during, "csms_ocpp_callerrors_total")
            assert codes == {frozenset({("code", code)}): 1}

        # Decisions by source and status: exactly the decision log's rows.
        async with admin_session(w.app) as http:
            doc = await (await http.get("/api/authorizations?limit=1000")).json()
        logged = Counter((r["source"], r["status"]) for r in doc["authorizations"])
        assert {"cache", "remote"} <= {source for source, _ in logged}
        counted = {
            (dict(k)["source"], dict(k)["status"]): v
            for k, v in series(during, "csms_authorization_decisions_total").items()
        }
        assert counted == dict(logged)
        per_source = Counter(source for source, _ in logged.elements())
        for source, n in per_source.items():
            assert value(during, "csms_authorization_decision_seconds_count", source=source) == n

        # Outbox depth and age for the partner: the store's pending rows at scrape time.
        assert pending["NL-EMS"] >= 1, "the refused CDR push is pending"
        shown: Counter[str] = Counter()
        for labels, n in series(during, "csms_ocpi_outbox_messages").items():
            if dict(labels)["status"] in ("pending", "held"):
                shown[dict(labels)["partner"]] += int(n)
        assert shown == pending
        assert value(during, "csms_ocpi_outbox_oldest_age_seconds", partner="NL-EMS") >= 0
        assert ("csms_ocpi_outbox_oldest_age_seconds", frozenset({("partner", "NL-EMS")})) in (
            during
        )

        # eMSP calls: the real-time authorize succeeded, the CDR POST met the 503.
        assert value(during, "csms_emsp_requests_total", partner="NL-EMS", method="POST", outcome="ok") >= 1  # fmt: skip
        failed = sum(
            v
            for k, v in series(during, "csms_emsp_requests_total").items()
            if dict(k)["partner"] == "NL-EMS" and dict(k)["outcome"] != "ok"
        )
        assert failed >= 1
        total = sum(series(during, "csms_emsp_requests_total").values())
        assert sum(series(during, "csms_emsp_request_seconds_count").values()) == total

        # Store writes and the process are measured too.
        assert value(during, "csms_store_write_seconds_count") > 0
        assert value(during, "process_cpu_seconds_total") > 0

        # After recovery the backlog drains and the gauge follows.
        await emsp.set_down("up")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1, timeout=5)
        await w.outbox_idle()
        after = await scrape(url)
        assert value(after, "csms_ocpi_outbox_messages", partner="NL-EMS", status="pending") == 0
        assert value(after, "csms_chargers_connected") == 0


async def test_token_sync_runs_are_counted_per_partner(make_world: Any) -> None:
    async with make_world() as w:
        w.emsp.add_token("SYNC-1", whitelist="ALWAYS")
        sync = runtime_of(w.app).sync
        partner = await runtime_of(w.app).store.partners.partner_by_key("NL-EMS")
        assert partner is not None
        await wait_until(lambda: not sync.running(partner), what="the first sync finished")
        runs = await runtime_of(w.app).store.token_syncs.sync_runs(partner.id, limit=100)
        await sync.run(partner)
        samples = await scrape(admin_url(w.app))
        counted = series(samples, "csms_ocpi_token_sync_runs_total")
        finished = [r for r in runs if r.status in ("complete", "failed")]
        assert sum(counted.values()) == len(finished) + 1
        assert value(
            samples, "csms_ocpi_token_sync_runs_total", partner="NL-EMS", kind="full",
            result="complete",
        ) >= 1  # fmt: skip
