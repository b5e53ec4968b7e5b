"""Token sets: generation, files, the paginated Sender list, lazy lists, pushes to a CPO."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from simulator.emsp import EmspSandbox, TokenSpec
from simulator.emsp.tokens import TokenFileError, parse_mix
from tests.simulator.emsp.conftest import call


def test_generation_is_deterministic_and_follows_the_mix():
    a = TokenSpec(count=400, seed=7, whitelist_mix={"ALWAYS": 3, "NEVER": 1})
    b = TokenSpec(count=400, seed=7, whitelist_mix={"ALWAYS": 3, "NEVER": 1})
    c = TokenSpec(count=400, seed=8, whitelist_mix={"ALWAYS": 3, "NEVER": 1})
    ta, tb, tc = list(a.generate()), list(b.generate()), list(c.generate())
    assert ta == tb and ta != tc
    counts = Counter(t["whitelist"] for t in ta)
    assert set(counts) == {"ALWAYS", "NEVER"}
    assert 240 < counts["ALWAYS"] < 360  # about 3:1
    assert len({t["uid"] for t in ta}) == 400
    assert ta[10]["uid"] == "04000000000A"


def test_uid_pattern_invalid_every_and_mix_parsing():
    spec = TokenSpec(count=10, uid_pattern="EMS-{n:04d}-{r}", invalid_every=5)
    toks = list(spec.generate())
    assert toks[3]["uid"].startswith("EMS-0003-") and len(toks[3]["uid"]) == 17
    assert [t["valid"] for t in toks].count(False) == 2 and toks[4]["valid"] is False
    assert parse_mix("always=2, never=1") == {"ALWAYS": 2, "NEVER": 1}
    with pytest.raises(ValueError, match="unknown whitelist"):
        parse_mix("SOMETIMES=1")


def test_token_files_json_and_csv(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(
        "uid,whitelist,valid,allowed\nAA01,NEVER,true,\nAA02,ALWAYS,false,NO_CREDIT\n"
    )
    json_path = tmp_path / "t.json"
    json_path.write_text(json.dumps([{"uid": "BB01", "type": "APP_USER", "whitelist": "NEVER"}]))
    sb = EmspSandbox()
    assert sb.load_tokens(csv_path) == 2 and sb.load_tokens(json_path) == 1
    assert sb.tokens.get("aa01").token["whitelist"] == "NEVER"
    assert sb.tokens.get("AA02").allowed == "NO_CREDIT"
    assert sb.tokens.get("AA02").token["valid"] is False
    assert sb.tokens.get("BB01", "APP_USER") is not None
    bad = tmp_path / "bad.csv"
    bad.write_text("uid,whitelist\n,NEVER\n")
    with pytest.raises(TokenFileError, match="row 1"):
        sb.load_tokens(bad)
    assert len(sb.tokens) == 3  # nothing half-loaded


async def test_sender_list_paginates_with_link_total_and_limit(paired, http):
    emsp, cpo = paired
    made = emsp.generate_tokens(25, seed=3)
    url = emsp.base_url + "/ocpi/emsp/2.2.1/tokens?limit=50"
    got, pages = [], 0
    while url:
        status, body, headers = await call(http, "GET", url, cpo.token_out)
        assert status == 200 and body["status_code"] == 1000
        assert headers["X-Total-Count"] == "25" and headers["X-Limit"] == "10"
        got += body["data"]
        pages += 1
        link = headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert pages == 3
    assert got == made
    last = emsp.requests_to("/tokens", "GET")[-1]
    assert last.query["offset"] == "20" and last.query["limit"] == "10"


async def test_sender_list_date_window_and_bad_params(paired, http):
    emsp, cpo = paired
    emsp.generate_tokens(30)  # last_updated = 2024-01-01T00:00:00Z + n seconds
    base = emsp.base_url + "/ocpi/emsp/2.2.1/tokens"
    status, body, headers = await call(
        http,
        "GET",
        base + "?date_from=2024-01-01T00:00:05Z&date_to=2024-01-01T00:00:08Z",
        cpo.token_out,
    )
    assert [t["uid"] for t in body["data"]] == ["040000000005", "040000000006", "040000000007"]
    assert headers["X-Total-Count"] == "3" and "Link" not in headers
    status, body, _ = await call(http, "GET", base + "?offset=-1", cpo.token_out)
    assert body["status_code"] == 2001
    status, body, _ = await call(
        http, "GET", base + "?date_from=2024-01-01T00:00:00%2B00:00", cpo.token_out
    )
    assert status == 200
    assert body["status_code"] == 2001


async def test_fail_page_k_then_recover(paired, http):
    emsp, cpo = paired
    emsp.generate_tokens(30)
    emsp.fail_tokens_page(2, times=1)
    base = emsp.base_url + "/ocpi/emsp/2.2.1/tokens"
    status, _, _ = await call(http, "GET", base + "?offset=0&limit=10", cpo.token_out)
    assert status == 200
    status, _, _ = await call(http, "GET", base + "?offset=10&limit=10", cpo.token_out)
    assert status == 500
    status, body, _ = await call(http, "GET", base + "?offset=10&limit=10", cpo.token_out)
    assert status == 200 and body["data"][0]["uid"] == "04000000000A"


async def test_lazy_million_token_list_serves_any_page_without_holding_it(paired, http):
    emsp, cpo = paired
    spec = emsp.serve_generated_tokens(1_000_000, seed=9, whitelist_mix={"ALWAYS": 1, "NEVER": 1})
    assert len(emsp.tokens) == 0
    status, body, headers = await call(
        http, "GET", emsp.base_url + "/ocpi/emsp/2.2.1/tokens?offset=999995&limit=10", cpo.token_out
    )
    assert status == 200
    assert headers["X-Total-Count"] == "1000000" and "Link" not in headers
    assert body["data"] == [spec.token(n) for n in range(999_995, 1_000_000)]


async def test_push_and_patch_tokens_to_the_cpo(paired):
    emsp, cpo = paired
    emsp.generate_tokens(5)
    emsp.add_token("aB12cd", whitelist="NEVER")
    replies = await emsp.push_tokens()
    assert len(replies) == 6 and all(r.ok for r in replies)
    assert len(cpo.tokens) == 6
    assert cpo.tokens[("AB12CD", "RFID")]["uid"] == "aB12cd"
    put = next(c for c in emsp.sent if c.method == "PUT" and "aB12cd" in c.url)
    assert put.url.endswith("/tokens/NL/EMS/aB12cd?type=RFID")
    assert put.headers["OCPI-from-party-id"] == "EMS" and put.headers["OCPI-to-party-id"] == "CPO"
    r = await emsp.block_token("ab12CD")
    assert r.ok
    method, _, body = cpo.token_calls[-1]
    assert method == "PATCH" and body["valid"] is False and "last_updated" in body
    assert cpo.tokens[("AB12CD", "RFID")]["valid"] is False
    assert emsp.tokens.get("AB12CD").allowed == "BLOCKED"
    got = await emsp.get_token_at_cpo("AB12CD")
    assert got.data["valid"] is False
