"""Personal data and its erasure (crypto-shredding), on SQLite and on PostgreSQL.

A small history names responsible persons (with a handover and one person holding two
links), a secretary, an instructor and a liaison. Then one person and the liaison are
erased over the API. Afterwards no byte of the database holds their names, phones or
keys; the hash chain still verifies, also against a checkpoint taken before; every
decision is still in history, state, responsibility, holders, views and exports, with
the erased marker where the name was; everybody else reads as before; a replay finds no
drift. Snapshots are taken every other event so that they are covered too.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from domain.actor import Role
from domain.persons import ERASED
from infra.audit import stream_envelopes
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.integrity import system_sealer
from infra.rebuild import drift
from infra.replay import run_replay
from infra.settings import Settings
from tests.conftest import POSTGRES_URL, SettingsFactory
from tests.integration.api_client import Api
from workers.cli import main as cli

S, A, OWN, TOWN = "secretariat", "auditor", "liaison-postal", "liaison-town"
LIAISON_NAME = "赵联络员"
ZHANG, ZHANG_PHONE = "张三丰", "13800138001"
LI, LI_PHONE = "李四光", "13900139002"
WANG = "王五常"
ZHOU, CHEN, CHEN_PHONE = "周书记", "陈指导员", "13700137003"


@dataclass
class World:
    api: Api
    system: System
    zhang: str
    li: str
    wang: str
    chen: str
    liaison: str
    task: str
    committee: str
    before_handover: str
    keys: dict[str, bytes]
    now: str


@pytest.fixture
def world(make_settings: SettingsFactory, clock: ManualClock) -> Iterator[World]:
    settings = make_settings()
    settings.snapshot_interval = 2  # snapshots hold persons too
    system = bootstrap(settings, clock=clock)
    try:
        yield _seed(system, clock)
    finally:
        system.close()


def _seed(system: System, clock: ManualClock) -> World:
    api = Api(system)
    api.principal(S, Role.SECRETARIAT)
    api.principal(A, Role.AUDITOR)
    for slug, kind in [("postal", "department"), ("town-a", "town")]:
        api.post(S, "/units", {"id": slug, "name": slug, "kind": kind}, expect=201)
    api.principal(OWN, Role.LIAISON, "postal")
    _, token = system.tokens.issue(role=Role.LIAISON, unit="town-a", name=LIAISON_NAME)
    api.tokens[TOWN] = token
    principal = system.tokens.resolve(token)
    assert principal is not None

    api.post(S, "/chains", {"industry": "express", "name": "快递"}, expect=201)
    link = "/chains/express/links"
    l1 = api.post(
        S,
        link,
        {
            "unit": "postal",
            "role": "industry-competent",
            "responsible_person": ZHANG,
            "phone": "138-0013-8001",
            "duties": ["行业监管"],
        },
        expect=201,
    )
    zhang = l1["responsible_person"]["person_id"]
    assert l1["responsible_person"] == {
        "person_id": zhang,
        "name": ZHANG,
        "phone": ZHANG_PHONE,
        "erased": False,
    }
    l2 = api.post(
        S,
        link,
        {"unit": "town-a", "role": "territorial", "responsible_person": WANG, "duties": ["属地"]},
        expect=201,
    )
    # The same person holds a second link: named by id, not by a new name.
    l3 = api.post(
        S,
        link,
        {
            "unit": "postal",
            "role": "supervisory",
            "responsible_person": ZHANG,
            "person_id": zhang,
            "duties": ["监管"],
        },
        expect=201,
    )
    assert l3["responsible_person"]["person_id"] == zhang
    task = api.post(
        S,
        "/tasks",
        {
            "title": "快递员入会",
            "industry": "express",
            "lead_unit": "postal",
            "towns": ["town-a"],
            "deadline": (clock.now() + timedelta(days=30)).isoformat(),
        },
        expect=201,
    )["id"]
    api.post(OWN, f"/tasks/{task}/sign")
    clock.advance(timedelta(days=2))
    before_handover = clock.now().isoformat()
    clock.advance(timedelta(days=1))
    handed = api.post(
        S,
        "/chains/express/links/L1/handover",
        {
            "responsible_person": LI,
            "phone": LI_PHONE,
            "effective_at": clock.now().isoformat(),
            "reason": "岗位调整",
        },
    )
    li = handed["responsible_person"]["person_id"]
    committee = api.post(
        S,
        "/committees",
        {"name": "快递行业党委", "industry": "express", "supervising_unit": "postal"},
        expect=201,
    )["id"]
    api.post(S, f"/committees/{committee}/secretary", {"name": ZHOU, "reason": "成立"})
    dispatched = api.post(
        S,
        f"/committees/{committee}/instructors",
        {"name": CHEN, "phone": CHEN_PHONE, "enterprise": "某站点", "enterprise_party_members": 1},
        expect=201,
    )
    chen = dispatched["committee"]["instructors"][0]["name"]["person_id"]
    clock.advance(timedelta(hours=1))
    persons = system.app.persons
    keys = {pid: persons.key_of(pid) for pid in (zhang, li, chen)}
    assert all(keys.values())
    return World(
        api=api,
        system=system,
        zhang=zhang,
        li=li,
        wang=l2["responsible_person"]["person_id"],
        chen=chen,
        liaison=principal.principal_id,
        task=task,
        committee=committee,
        before_handover=before_handover,
        keys={k: v for k, v in keys.items() if v is not None},
        now=clock.now().isoformat(),
    )


# ------------------------------------------------------------ the database bytes
def _needles(texts: list[str], blobs: list[bytes]) -> dict[str, list[bytes]]:
    """What to look for: each text as UTF-8 (and in hex, as bytea prints), each key."""
    found: dict[str, list[bytes]] = {}
    for text in texts:
        raw = text.encode()
        found[text] = [raw, raw.hex().encode()]
    for blob in blobs:
        found[f"key {blob.hex()[:8]}…"] = [blob, blob.hex().encode()]
    return found


def _table_bytes(system: System) -> dict[str, bytes]:
    """Every table's every row, as bytes, events and snapshots included."""
    out: dict[str, bytes] = {}
    if system.settings.store is None:
        with sqlite3.connect(system.settings.sqlite_path) as conn:
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            for name in names:
                chunks = []
                for row in conn.execute(f'SELECT * FROM "{name}"'):
                    for value in row:
                        if isinstance(value, bytes):
                            chunks += [value, value.hex().encode()]
                        elif value is not None:
                            chunks.append(str(value).encode())
                out[name] = b"\n".join(chunks)
        return out
    schema = system.settings.store_schema
    assert schema
    with psycopg.connect(POSTGRES_URL) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        ]
        for name in names:
            table = sql.Identifier(schema, name)
            rows = conn.execute(sql.SQL("SELECT t::text FROM {0} t").format(table)).fetchall()
            out[name] = "\n".join(r[0] for r in rows).encode()
    return out


def holders_of(system: System, needles: dict[str, list[bytes]]) -> dict[str, set[str]]:
    """Which needles appear in which tables (for SQLite, also in the raw file and WAL)."""
    hits: dict[str, set[str]] = {}
    stores = _table_bytes(system)
    stores.update(_raw_files(system))
    for label, forms in needles.items():
        for table, data in stores.items():
            if any(form in data for form in forms):
                hits.setdefault(label, set()).add(table)
    return hits


def _raw_files(system: System) -> dict[str, bytes]:
    """The SQLite file and its write-ahead log, byte for byte (nothing on PostgreSQL)."""
    if system.settings.store is not None:
        return {}
    path = system.settings.sqlite_path
    files = {"file": path, "file-wal": path.with_name(path.name + "-wal")}
    return {label: file.read_bytes() for label, file in files.items() if file.exists()}


def stored_states(system: System) -> list[tuple[int, bytes]]:
    return [
        (n.id, bytes(n.state))
        for n in system.app.recorder.select_notifications(start=1, limit=100_000)
    ]


# ---------------------------------------------------------------------- tests
def test_names_and_phones_are_never_stored_in_clear(world: World) -> None:
    needles = _needles([ZHANG, ZHANG_PHONE, LI, LI_PHONE, WANG, ZHOU, CHEN, CHEN_PHONE], [])
    assert holders_of(world.system, needles) == {}
    # The envelopes the relay publishes to Kafka carry person ids only.
    published = b"\n".join(e.to_json() for e in stream_envelopes(world.system))
    assert world.zhang.encode() in published
    for name in (ZHANG, ZHANG_PHONE, LI, WANG, ZHOU, CHEN, CHEN_PHONE):
        assert name.encode() not in published, name
    # Liaison names are in the token table only (they are not in events).
    expected = {"tiaokuai_tokens"}
    if world.system.settings.store is None:
        expected |= {"file", "file-wal"} & set(_raw_files(world.system))
    found = holders_of(world.system, _needles([LIAISON_NAME], []))
    assert found[LIAISON_NAME] <= expected and "tiaokuai_tokens" in found[LIAISON_NAME]


def test_only_the_secretariat_erases_and_reads_persons(world: World) -> None:
    api = world.api
    path = f"/persons/{world.zhang}"
    body = {"reason": "本人申请"}
    for who in (OWN, TOWN, A):
        refused = api.post(who, f"{path}/erasure", body, expect=403)
        assert refused["error"] == "forbidden"
    for who in (OWN, TOWN):
        api.get(who, path, expect=403)
    assert api.get(A, path)["name"] == ZHANG
    assert api.get(S, path)["phone"] == ZHANG_PHONE
    api.post(S, f"{path}/erasure", {}, expect=422)
    api.post(S, f"{path}/erasure", {"reason": " "}, expect=422)
    api.post(S, "/persons/p-0123456789abcdef0123456789abcdef/erasure", body, expect=404)
    api.get(A, "/persons/p-0123456789abcdef0123456789abcdef", expect=404)
    api.post(S, "/persons/NOT-an-id/erasure", body, expect=422)
    assert world.system.app.persons.key_of(world.zhang) is not None  # nothing erased yet

    erased = api.post(S, f"{path}/erasure", body)
    assert erased["erased"] is True and erased["name"] == ERASED and erased["phone"] is None
    again = api.post(S, f"{path}/erasure", body, expect=409)
    assert again["error"] == "invalid_state"
    # An erased person cannot be named again by id.
    reused = api.post(
        S,
        "/chains/express/links",
        {
            "unit": "town-a",
            "role": "grassroots",
            "responsible_person": ZHANG,
            "person_id": world.zhang,
            "duties": ["x"],
        },
        expect=409,
    )
    assert "erased" in reused["detail"]


def _erase_zhang_and_the_liaison(world: World) -> dict[str, Any]:
    api = world.api
    sealer = system_sealer(world.system)
    checkpoint = sealer.checkpoint()
    before = stored_states(world.system)
    erased = api.post(S, f"/persons/{world.zhang}/erasure", {"reason": "本人申请 #2026-17"})
    assert erased["erased"] is True and erased["position"] > before[-1][0]
    api.post(S, f"/persons/{world.liaison}/erasure", {"reason": "调离"})
    return {"checkpoint": checkpoint, "before": before}


def test_after_erasure_nothing_personal_remains_and_the_chain_holds(world: World) -> None:
    done = _erase_zhang_and_the_liaison(world)
    system = world.system
    # The stored events were not rewritten: every byte is as it was, two events added.
    after = stored_states(system)
    assert after[: len(done["before"])] == done["before"]
    assert len(after) == len(done["before"]) + 2
    # (b) The hash chain verifies, also against the checkpoint taken before the erasure.
    sealer = system_sealer(system)
    assert sealer.verify().ok
    assert sealer.verify(against=done["checkpoint"]).ok
    # (a) No plaintext and no key of the erased persons anywhere in the database.
    erased = _needles([ZHANG, ZHANG_PHONE, LIAISON_NAME], [world.keys[world.zhang]])
    assert holders_of(system, erased) == {}
    # The others' keys are still there.
    assert system.app.persons.key_of(world.li) == world.keys[world.li]
    assert system.app.persons.key_of(world.chen) == world.keys[world.chen]
    # (e) A replay from the store finds no drift, and neither does a rebuild.
    status = run_replay(system)
    assert status.state == "finished" and status.difference_count == 0, status.differences
    assert list(drift(system)) == []
    # The liaison still signs in; its name reads as erased.
    principal = system.tokens.resolve(world.api.tokens[TOWN])
    assert principal is not None and principal.name == ERASED
    shown = world.api.get(A, f"/persons/{world.liaison}")
    assert shown["principal"] is True and shown["erased"] is True and shown["name"] == ERASED


def test_sqlite_file_holds_no_trace_of_the_key_after_close(
    tmp_path: Path, clock: ManualClock
) -> None:
    # SQLite only: PostgreSQL's files are not the test's to read; its rows are scanned
    # above and the key table is vacuumed after each erasure.
    settings = Settings(data_dir=tmp_path / "data")
    system = bootstrap(settings, clock=clock)
    try:
        world = _seed(system, clock)
        _erase_zhang_and_the_liaison(world)
    finally:
        system.close()
    raw = settings.sqlite_path.read_bytes()
    wal = settings.sqlite_path.with_name(settings.sqlite_path.name + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert world.keys[world.zhang] not in raw
    assert world.keys[world.li] in raw  # the check can see a key that is there
    assert LIAISON_NAME.encode() not in raw
    assert ZHANG.encode() not in raw


def _erased(pid: str) -> dict[str, Any]:
    return {"person_id": pid, "name": ERASED, "phone": None, "erased": True}


def test_history_state_and_views_show_the_marker_and_every_decision(world: World) -> None:
    api, z = world.api, world.zhang
    history_before = api.get(A, "/audit/chains/express/history")
    _erase_zhang_and_the_liaison(world)
    li = {"person_id": world.li, "name": LI, "phone": LI_PHONE, "erased": False}

    # (c) History: every event still there, the name erased where it was.
    history = api.get(A, "/audit/chains/express/history")
    assert history["total"] == history_before["total"]
    assert [e["type"] for e in history["items"]] == [e["type"] for e in history_before["items"]]
    added = [e for e in history["items"] if e["type"] == "ChainLinkAdded"]
    assert added[0]["data"]["responsible_person"] == _erased(z)
    assert added[1]["data"]["responsible_person"]["name"] == WANG
    assert added[2]["data"]["responsible_person"] == _erased(z)
    handover = next(e for e in history["items"] if e["type"] == "ResponsiblePersonHandedOver")
    assert handover["data"]["previous_person"] == _erased(z)
    assert handover["data"]["responsible_person"] == li
    assert handover["reason"] == "岗位调整"
    # Exports: NDJSON and CSV, with the marker and without the name.
    ndjson = api.client.get(
        "/audit/chains/express/history?format=ndjson", headers=api.headers(A)
    ).text
    lines = [json.loads(line) for line in ndjson.splitlines()]
    assert len(lines) == history["total"]
    assert ZHANG not in ndjson and ERASED in ndjson and LI in ndjson
    text = api.client.get("/audit/chains/express/history?format=csv", headers=api.headers(A)).text
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == history["total"] + 1
    assert ZHANG not in text and ZHANG_PHONE not in text and ERASED in text
    # The erasure itself is in the audit history: who, when, why, and no name.
    erasure = api.get(A, f"/audit/erasures/{z}/history")["items"]
    assert [e["type"] for e in erasure] == ["PersonErased"]
    assert erasure[0]["actor"]["role"] == "secretariat"
    assert erasure[0]["reason"] == "本人申请 #2026-17"
    assert ZHANG not in json.dumps(erasure, ensure_ascii=False)

    # State at a version (from a snapshot, and folded from the first event) and now.
    state = api.get(A, "/audit/chains/express/state?version=2")["state"]
    assert state["links"][0]["responsible_person"] == _erased(z)
    chain = api.get(S, "/chains/express")
    assert [link["responsible_person"]["name"] for link in chain["links"]] == [LI, WANG, ERASED]
    assert chain["links"][0]["handovers"][0]["from"] == _erased(z)
    from infra.audit import state_at

    for version in range(1, chain["version"] + 1):
        with_snapshots = state_at(world.system, "chains", "express", version=version)
        folded = state_at(world.system, "chains", "express", version=version, use_snapshots=False)
        assert vars(with_snapshots) == vars(folded), version

    # Responsibility at an instant before the handover: the erased person held L1.
    then = api.get(A, f"/audit/responsibility?industry=express&at={quote(world.before_handover)}")
    assert then["links"][0]["responsible_person"] == _erased(z)
    assert then["links"][1]["responsible_person"]["name"] == WANG

    # Holders of the task: both persons of postal's links, the erased one marked.
    holders = api.get(A, f"/audit/tasks/{world.task}/holders")["holders"]
    people = [p["person"] for p in holders[0]["responsible_persons"]]
    assert _erased(z) in people and li in people

    # Views: resolved at read time, so the erasure shows without any rebuild.
    view = api.get(S, "/views/units/postal")
    assert ZHANG not in json.dumps(view, ensure_ascii=False)
    persons = {link["link_id"]: link["responsible_person"] for link in view["chain_links"]}
    assert persons == {"L1": li, "L3": _erased(z)}
    assert api.get(OWN, "/views/units/postal")["chain_links"] == view["chain_links"]
    ledger = api.get(A, f"/views/ledger/tasks/{world.task}")
    assert _erased(z) in [p["person"] for p in ledger["holders"][0]["responsible_persons"]]
    then_view = api.get(A, f"/audit/views/units/postal?at={quote(world.before_handover)}")
    assert {link["responsible_person"]["name"] for link in then_view["chain_links"]} == {ERASED}

    # (d) Everybody else is unaffected.
    coverage = api.get(A, "/views/coverage")["committees"][0]
    assert coverage["secretary"]["name"] == ZHOU
    instructor = coverage["instructor_list"][0]["person"]
    assert instructor == {
        "person_id": world.chen,
        "name": CHEN,
        "phone": CHEN_PHONE,
        "erased": False,
    }
    assert api.get(A, f"/persons/{world.li}")["name"] == LI
    town = api.get(S, "/views/towns/town-a")
    assert WANG in json.dumps(town, ensure_ascii=False)

    # The erased person's link can still be handed over; the event names them by id.
    handed = api.post(
        S,
        "/chains/express/links/L3/handover",
        {"responsible_person": "新负责人", "effective_at": world.now, "reason": "接任"},
    )
    assert handed["handovers"][0]["from"] == _erased(z)
    last = api.get(A, "/audit/chains/express/history?offset=0&limit=1000")["items"][-1]
    assert last["data"]["previous_person"] == _erased(z)
    assert last["data"]["responsible_person"]["name"] == "新负责人"


def test_a_later_erasure_of_an_instructor_shows_in_the_coverage_board(world: World) -> None:
    api = world.api
    api.post(S, f"/persons/{world.chen}/erasure", {"reason": "本人申请"})
    coverage = api.get(A, "/views/coverage")["committees"][0]
    assert coverage["instructor_list"][0]["person"] == _erased(world.chen)
    committee = api.get(S, f"/committees/{world.committee}")
    assert committee["instructors"][0]["name"] == _erased(world.chen)
    assert committee["secretary"]["name"] == ZHOU
    # Later commands on the committee (a snapshot of it re-encodes the marker) still work.
    api.post(S, f"/committees/{world.committee}/instructors/I1/recall", {"reason": "期满"})
    assert holders_of(world.system, _needles([CHEN, CHEN_PHONE], [world.keys[world.chen]])) == {}


def test_cli_erases_a_person(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = world.system.settings
    # The CLI reads the same settings from the environment (the schema has no option).
    monkeypatch.setenv("TIAOKUAI_DATA_DIR", str(settings.data_dir))
    if settings.store is not None:
        monkeypatch.setenv("TIAOKUAI_STORE", settings.store)
        monkeypatch.setenv("TIAOKUAI_STORE_SCHEMA", str(settings.store_schema))
    assert cli(["person", "erase", world.li, "--reason", "本人申请"]) == 0
    assert f"erased {world.li}" in capsys.readouterr().out
    assert cli(["person", "erase", world.li, "--reason", "再次"]) == 1
    assert "erased" in capsys.readouterr().err
    assert cli(["person", "show", world.li]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["erased"] is True and shown["name"] == ERASED
    # The API process sees it at once: no cache of keys to go stale.
    assert world.api.get(A, f"/persons/{world.li}")["erased"] is True
    erasure = world.api.get(A, f"/audit/erasures/{world.li}/history")["items"][0]
    assert erasure["actor"]["id"].startswith("cli:")
