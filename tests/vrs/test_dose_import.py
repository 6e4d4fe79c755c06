"""Bulk dose import: the tablet's rules, all or nothing, never over a verified record."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, String, Uuid, bindparam, cast, func, select, text

from tests.conftest import NOW, Clock, World
from tests.vrs.dose_support import (
    EXPIRED_LOT,
    GOOD_LOT,
    MODERNA_LOT,
    add_lots,
    add_resident,
    body,
    coupon_number,
    line,
)
from vrs.db import dose_import as dose_import_sql
from vrs.db import stats as summary
from vrs.db.bulk import insert_rows
from vrs.db.models import AuditLog, DoseRecord, DoseRecordEvent
from vrs.db.types import UTCDateTime
from vrs.domain.reference import COMIRNATY, SPIKEVAX
from vrs.domain.rules import DOSE, EVENT, FLAG, add_months, reevaluate_series

M = "131016"
HEADER = "coupon,vaccinated_on,product,lot,site_code,doctor_name\n"
SITE = "1310000017"


@pytest.fixture(autouse=True)
def _lots(world: World) -> None:
    add_lots(world)


def row(
    serial: int,
    dose: int = 1,
    day: str = "2023-05-01",
    product: str = COMIRNATY,
    lot: str = GOOD_LOT,
    site: str = SITE,
    doctor: str = "",
    municipality: str = M,
) -> str:
    return f"{line(serial, dose, municipality)},{day},{product},{lot},{site},{doctor}\n"


def send(
    client: TestClient, world: World, text: str, who: str = "municipality", code: str = M
) -> httpx.Response:
    return client.post(
        f"/v1/municipalities/{code}/dose-records/import",
        content=text.encode(),
        headers={**world.headers(who), "Content-Type": "text/csv; charset=utf-8"},
    )


def stored(world: World) -> int:
    with world.session() as s:
        return int(s.execute(select(func.count()).select_from(DoseRecord)).scalar_one())


def errors(answer: httpx.Response) -> list[tuple[int, str | None, str]]:
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "INVALID_FILE"
    return [(e["line"], e["column"], e["code"]) for e in answer.json()["errors"]]


def test_a_good_file_is_recorded_matched_and_flagged_like_tablet_posts(
    client: TestClient, world: World
) -> None:
    holder = add_resident(world, 1)
    text = HEADER + row(1, 1, "2023-04-01") + row(1, 2, "2023-04-10", doctor="佐藤 一郎")
    text += row(2, 1, lot="NOPE01")

    answer = send(client, world, text)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"rows": 3, "created": 3, "unchanged": 0, "pending": 1, "flagged": 2}
    listed = client.get(
        "/v1/dose-records", params={"coupon": line(1)}, headers=world.headers("municipality")
    ).json()["records"]
    assert [(r["dose_number"], r["source"], r["resident_local_id"]) for r in listed] == [
        (1, "csv", holder), (2, "csv", holder),
    ]  # fmt: skip
    assert {f["rule_code"] for f in listed[1]["flags"]} == {"INTERVAL_TOO_SHORT"}
    with world.session() as s:
        created = s.execute(
            select(func.count())
            .select_from(DoseRecordEvent)
            .where(DoseRecordEvent.kind == "created")  # type: ignore[arg-type]
        ).scalar_one()
        logged = s.execute(
            select(AuditLog).where(AuditLog.action == "dose_records.import")  # type: ignore[arg-type]
        ).scalar_one()
    assert created == 3
    assert logged.count == 3


def test_the_same_file_again_changes_nothing(client: TestClient, world: World) -> None:
    text = HEADER + row(1) + row(2)
    assert send(client, world, text).status_code == 200

    again = send(client, world, text)

    assert again.json()["created"] == 0 and again.json()["unchanged"] == 2
    assert stored(world) == 2


def test_every_bad_row_is_reported_and_nothing_is_written(client: TestClient, world: World) -> None:
    bad_damm = f"11{M}0000000010,2023-05-01,{COMIRNATY},{GOOD_LOT},{SITE},\n"
    text = (
        HEADER
        + row(1)  # 2: good
        + row(2, municipality="131041")  # 3
        + bad_damm  # 4
        + row(3, day="2023-06-02")  # 5: future (today is 2023-06-01 in Japan)
        + row(4, day="2021-02-16")  # 6
        + row(5, day="2023-02-30")  # 7
        + row(6, product="EU/1/99/0000")  # 8
        + row(7, lot="")  # 9
        + row(8, site="9999999999")  # 10
        + row(9, site="12")  # 11
        + row(1)  # 12: dose 1 of coupon 1 again
        + row(10, doctor="x" * 101)  # 13
        + f"21{M}{coupon_number(11)},2023-05-01,{COMIRNATY},{GOOD_LOT},{SITE},\n"  # 14
        + row(12, lot="=cmd|' /C calc'!A0")  # 15
    )

    answer = send(client, world, text)

    assert errors(answer) == [
        (3, "coupon", "WRONG_MUNICIPALITY"),
        (4, "coupon", "BAD_COUPON_CHECK_DIGIT"),
        (5, "vaccinated_on", "DATE_IN_FUTURE"),
        (6, "vaccinated_on", "DATE_BEFORE_PROGRAMME"),
        (7, "vaccinated_on", "BAD_DATE"),
        (8, "product", "UNKNOWN_PRODUCT"),
        (9, "lot", "BAD_LOT"),
        (10, "site_code", "UNKNOWN_SITE"),
        (11, "site_code", "UNKNOWN_SITE"),
        (12, "coupon", "DUPLICATE_DOSE"),
        (13, "doctor_name", "FIELD_TOO_LONG"),
        (14, "coupon", "TICKET_NOT_VACCINATION"),
        (15, "lot", "FORMULA_INJECTION"),
    ]
    assert stored(world) == 0


def test_hostile_files_are_refused_cleanly(client: TestClient, world: World) -> None:
    assert send(client, world, "").json()["code"] == "EMPTY_FILE"
    assert errors(send(client, world, "coupon,lot\n" + row(1)))[0][2] == "MISSING_COLUMN"
    long_line = HEADER + row(1) + "9" * (70 * 1024) + "\n"
    assert errors(send(client, world, long_line)) == [(3, None, "LINE_TOO_LONG")]
    latin1 = (HEADER + row(1, doctor="Müller")).encode("latin-1")
    answer = client.post(
        f"/v1/municipalities/{M}/dose-records/import",
        content=latin1,
        headers={**world.headers("municipality"), "Content-Type": "text/csv"},
    )
    assert errors(answer) == [(2, None, "BAD_ENCODING")]
    json_body = client.post(
        f"/v1/municipalities/{M}/dose-records/import",
        json={"records": []},
        headers=world.headers("municipality"),
    )
    assert json_body.status_code == 415
    assert stored(world) == 0


def test_a_file_never_changes_a_stored_record(
    client: TestClient, world: World, clock: Clock
) -> None:
    """The 2021 overwrite bug through the bulk path: a verified record stays as it is."""
    posted = client.post("/v1/dose-records", json=body(1), headers=world.headers("site")).json()
    other = client.post("/v1/dose-records", json=body(2), headers=world.headers("site")).json()
    verified = client.post(
        f"/v1/municipalities/{M}/dose-records/{posted['id']}/verify",
        json={"version": 1},
        headers=world.headers("municipality"),
    )
    assert verified.status_code == 200
    clock.now += timedelta(hours=1)

    answer = send(
        client, world, HEADER + row(1, lot=MODERNA_LOT, product=SPIKEVAX) + row(2, day="2023-05-02")
    )

    assert [(ln, code) for ln, _, code in errors(answer)] == [
        (2, "RECORD_LOCKED"), (3, "CONFLICT"),
    ]  # fmt: skip
    assert other["id"] in answer.json()["errors"][1]["message"]
    with world.session() as s:
        rows = {r.coupon_number: r for r in s.execute(select(DoseRecord)).scalars()}
    assert (rows[coupon_number(1)].lot_number, rows[coupon_number(1)].version) == (GOOD_LOT, 1)
    assert rows[coupon_number(2)].vaccinated_on.isoformat() == "2023-05-01"


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("other_municipality", 403, "OTHER_TENANT"),
        ("admin", 403, "ROLE_NOT_ALLOWED"),
        ("site", 403, "ROLE_NOT_ALLOWED"),
    ],
)
def test_only_the_municipality_imports_its_doses(
    client: TestClient, world: World, who: str, status: int, code: str
) -> None:
    answer = send(client, world, HEADER + row(1), who=who)
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert stored(world) == 0


def _open_flags(world: World) -> set[tuple[str, str]]:
    with world.session() as s:
        rows = s.execute(
            select(DOSE.c.coupon_number, DOSE.c.dose_number, FLAG.c.rule_code)
            .join(FLAG, FLAG.c.dose_record_id == DOSE.c.id)
            .where(FLAG.c.resolved_at.is_(None))
        ).all()
    return {(f"{coupon}/{dose}", code) for coupon, dose, code in rows}


def _varied_file(rng: random.Random, serials: range, world: World, municipality: str = M) -> str:
    """Series meant to sit on every rule's edge: holes, dates out of order, intervals a day
    either side of day and month limits (month ends too), unknown, foreign and expired lots,
    ages a few days either side of the age limits, coupons without a resident."""
    text = HEADER
    for serial in serials:
        first = date(2021, 3, 1) + timedelta(days=rng.randrange(600))
        if rng.random() < 0.3:
            first = first.replace(day=28) + timedelta(days=rng.choice((0, 1, 2, 3)))
        if rng.random() < 0.8:
            months = rng.choice((5, 6, 7, 59, 60, 61, 143, 144, 145, 216, 600))
            born = add_months(first, -months) + timedelta(days=rng.randint(-3, 3))
            add_resident(world, serial, birth_date=born, municipality=municipality)
        product, lot = rng.choice(((COMIRNATY, GOOD_LOT), (SPIKEVAX, MODERNA_LOT)))
        day = first
        for dose in sorted(rng.sample(range(1, 6), rng.randint(1, 4))):
            if rng.random() < 0.1:
                lot = rng.choice((EXPIRED_LOT, "NOPE01", MODERNA_LOT, GOOD_LOT))
            text += row(serial, dose, day.isoformat(), product, lot, municipality=municipality)
            step = rng.choice((-3, 0, 18, 19, 20, 21, 27, 28, 29, 55, 56, 57))
            if rng.random() < 0.3:
                step = (add_months(day, rng.choice((3, 5, 6, 8))) - day).days + rng.randint(-1, 1)
            day = min(day + timedelta(days=step), date(2023, 5, 30))
    return text


def test_the_import_opens_the_flags_the_full_rules_give(client: TestClient, world: World) -> None:
    """The import leaves a new series it finds clean out of the Python rules (PostgreSQL):
    running the full rules over every series afterwards must change nothing, for series new
    in the file and for series with earlier doses."""
    rng = random.Random(6)
    assert send(client, world, _varied_file(rng, range(1, 301), world)).status_code == 200
    later = HEADER + "".join(
        row(serial, 6, (date(2023, 1, 2) + timedelta(days=serial % 60)).isoformat())
        for serial in range(1, 301, 7)
    )
    later += _varied_file(rng, range(301, 401), world).removeprefix(HEADER)
    answer = send(client, world, later)
    assert answer.status_code == 200, answer.text
    imported = _open_flags(world)
    assert {code for _, code in imported} >= {
        "DOSE_DATE_ORDER", "DOSE_NUMBER_GAP", "INTERVAL_TOO_SHORT", "LOT_UNKNOWN",
        "LOT_PRODUCT_MISMATCH", "LOT_EXPIRED", "AGE_OUT_OF_RANGE",
    }  # fmt: skip
    with world.session() as s:
        reevaluate_series(s, M, [coupon_number(n) for n in range(1, 401)], NOW)
        s.commit()
    assert _open_flags(world) == imported


@pytest.fixture(params=["bypassed", "fired"])
def triggers(request: pytest.FixtureRequest, backend: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """PostgreSQL imports with the row triggers off when its role may (the tests' role may);
    ``fired`` runs the portable path there too, the one SQLite always takes."""
    if request.param == "bypassed" and backend != "postgresql":
        pytest.skip("only PostgreSQL imports with the triggers off")
    if request.param == "fired":
        monkeypatch.setattr(dose_import_sql, "_may_bypass_triggers", lambda conn: False)
    return str(request.param)


def _summary(world: World, sql: str = summary.TOTALS_SQL) -> list[tuple[object, ...]]:
    with world.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(sql)).all())


def test_either_way_each_record_has_its_history_and_the_summary_counts_it(
    client: TestClient, world: World, triggers: str
) -> None:
    """With the triggers off or on: one ``created`` event per record as the history shows it,
    the summary equal to a count over ``dose_record``, the flags those of the full rules
    (the cross-check against the portable path)."""
    rng = random.Random(11)
    first = _varied_file(rng, range(1, 151), world)
    assert send(client, world, first).status_code == 200
    later = HEADER + row(1, 6, "2023-05-20") + row(151, 1, "2023-05-02", doctor="佐藤 一郎")
    answer = send(client, world, first + later.removeprefix(HEADER))
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 2

    with world.session() as s:
        records = {r.id: r for r in s.execute(select(DoseRecord)).scalars()}
        events = s.execute(select(DoseRecordEvent)).scalars().all()
    created = [e for e in events if e.kind == "created"]
    assert sorted(e.dose_record_id for e in created) == sorted(records)
    newest = next(r for r in records.values() if r.coupon_number == coupon_number(151))
    history = client.get(
        f"/v1/municipalities/{M}/dose-records/{newest.id}/history",
        headers=world.headers("municipality"),
    ).json()
    assert [(e["kind"], e["reason"]) for e in history["events"]] == [("created", "bulk import")]
    assert history["events"][0]["after"] == {
        "vaccinated_on": "2023-05-02", "product": COMIRNATY, "lot": GOOD_LOT,
        "site_code": SITE, "source": "csv", "doctor_name": "佐藤 一郎",
        "import_line": first.count("\n") + 2,
    }  # fmt: skip

    counted = _summary(world)
    assert counted == _summary(world, summary.recount_sql(world.engine.dialect.name))
    assert sum(int(str(r[-1])) for r in counted) == len(records)

    flags = _open_flags(world)
    with world.session() as s:
        reevaluate_series(s, M, [coupon_number(n) for n in range(1, 152)], NOW)
        s.commit()
    assert _open_flags(world) == flags


def test_a_dose_stored_during_the_import_fails_it_whole_as_a_race(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tablet's post of one of the file's doses lands after the checks: ``409
    IMPORT_RACE``, nothing of the file written (nor the summary), and the file goes in when
    sent again (here the racing post was in the import's transaction, so it went too)."""
    drop_stored = dose_import_sql.drop_stored

    def a_tablet_posts_meanwhile(conn: Connection, municipality_code: str) -> int:
        unchanged = drop_stored(conn, municipality_code)
        conn.execute(
            text(
                "INSERT INTO dose_record (municipality_code, id, coupon_number, dose_number, "
                "vaccinated_on, product_code, lot_number, site_code, source, status, locked, "
                "version, registered_at, updated_at) VALUES (:m, :id, :c, 1, :d, :p, :lot, "
                ":site, 'qr', 'pending', false, 1, :at, :at)"
            ).bindparams(bindparam("id", type_=Uuid()), bindparam("at", type_=UTCDateTime())),
            {"m": M, "id": uuid.uuid4(), "c": coupon_number(2), "d": date(2023, 4, 30),
             "p": COMIRNATY, "lot": GOOD_LOT, "site": SITE, "at": NOW},
        )  # fmt: skip
        return unchanged

    monkeypatch.setattr(dose_import_sql, "drop_stored", a_tablet_posts_meanwhile)
    text_ = HEADER + row(1) + row(2) + row(3)

    answer = send(client, world, text_)

    assert (answer.status_code, answer.json()["code"]) == (409, "IMPORT_RACE")
    assert stored(world) == 0
    with world.session() as s:
        assert s.execute(select(func.count()).select_from(DoseRecordEvent)).scalar_one() == 0
    assert _summary(world) == []
    monkeypatch.undo()
    assert send(client, world, text_).json()["created"] == 3


def test_the_import_knows_every_trigger_it_turns_off(backend: str, world: World) -> None:
    """PostgreSQL's import writes with ``dose_record``'s row triggers off, doing their work
    itself: the foreign keys (checked and locked set-based) and the statistics summary. A
    trigger added to either table it writes must be handled there, then listed here."""
    if backend != "postgresql":
        pytest.skip("SQLite's import fires the triggers")
    with world.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT c.relname, t.tgname LIKE 'RI_ConstraintTrigger%', t.tgname "
                "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relname IN ('dose_record', 'dose_record_event') "
                "AND NOT (t.tgisinternal AND t.tgfoid IN ("
                "'\"RI_FKey_noaction_del\"'::regproc, '\"RI_FKey_noaction_upd\"'::regproc))"
            )
        ).all()
        references = conn.execute(
            text(
                "SELECT confrelid::regclass::text FROM pg_constraint "
                "WHERE conrelid = 'dose_record'::regclass AND contype = 'f'"
            )
        ).scalars()
        assert sorted(references) == ["municipality", "site", "vaccine_product"]
    named = sorted(name for table, internal, name in found if not internal)
    assert named == ["dose_stats_delete", "dose_stats_insert", "dose_stats_update"]
    # Two internal triggers (insert, update) per foreign key of dose_record, none elsewhere.
    assert sorted(table for table, internal, _ in found if internal) == ["dose_record"] * 6


def test_only_a_role_allowed_to_set_the_replication_role_turns_the_triggers_off(
    backend: str, world: World
) -> None:
    """Without the right to set ``session_replication_role`` the import fires the triggers."""
    if backend != "postgresql":
        pytest.skip("SQLite's import fires the triggers")
    may_bypass = dose_import_sql._may_bypass_triggers
    with world.engine.connect() as conn:
        assert may_bypass(conn)  # the tests connect as a superuser
        conn.exec_driver_sql("CREATE ROLE vrs_import_clerk NOLOGIN")
        conn.exec_driver_sql("SET LOCAL ROLE vrs_import_clerk")
        assert not may_bypass(conn)
        conn.exec_driver_sql("RESET ROLE")
        conn.exec_driver_sql("GRANT SET ON PARAMETER session_replication_role TO vrs_import_clerk")
        conn.exec_driver_sql("SET LOCAL ROLE vrs_import_clerk")
        assert may_bypass(conn)
        conn.rollback()  # the role and the grant go with the transaction


def _outcome(world: World, municipality: str) -> dict[str, list[tuple[object, ...]]]:
    """What an import left in one municipality, without ids, times and the code itself."""
    with world.session() as s:
        records = {
            r.id: r
            for r in s.execute(
                select(DoseRecord).where(DoseRecord.municipality_code == municipality)  # type: ignore[arg-type]
            ).scalars()
        }
        events = (
            s.execute(
                select(DoseRecordEvent).where(DoseRecordEvent.municipality_code == municipality)  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
        flags = s.execute(
            select(DOSE.c.coupon_number, DOSE.c.dose_number, FLAG.c.rule_code, FLAG.c.message)
            .join(FLAG, FLAG.c.dose_record_id == DOSE.c.id)
            .where(FLAG.c.resolved_at.is_(None), DOSE.c.municipality_code == municipality)
        ).all()
        counted = s.execute(text(summary.TOTALS_SQL)).all()

    def key(record_id: uuid.UUID) -> tuple[str, int]:
        return records[record_id].coupon_number, records[record_id].dose_number

    return {
        "records": sorted(
            (r.coupon_number, r.dose_number, r.resident_local_id, r.vaccinated_on,
             r.product_code, r.lot_number, r.site_code, r.source, r.doctor_name, r.status,
             r.locked, r.version)
            for r in records.values()
        ),
        "events": sorted(
            (*key(e.dose_record_id), e.kind, e.reason, repr(e.after))
            for e in events
            if e.kind != "flagged"  # its document names the flag's id
        ),
        "flags": sorted(tuple(f) for f in flags),
        "summary": sorted(tuple(c)[1:] for c in counted if c[0] == municipality),
    }  # fmt: skip


def test_with_the_triggers_off_the_import_stores_what_the_portable_path_stores(
    client: TestClient, world: World, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same two files into two municipalities, the first with the triggers off, the
    second on the path SQLite takes: the same records, history, flags and summary."""
    if backend != "postgresql":
        pytest.skip("only PostgreSQL imports with the triggers off")
    other = world.other_municipality

    def files(municipality: str) -> tuple[str, str]:
        rng = random.Random(12)
        first = _varied_file(rng, range(1, 121), world, municipality)
        later = row(3, 6, "2023-05-20", municipality=municipality) + _varied_file(
            rng, range(121, 161), world, municipality
        ).removeprefix(HEADER)
        return first, first + later

    for municipality, who in ((M, "municipality"), (other, "other_municipality")):
        if municipality == other:
            monkeypatch.setattr(dose_import_sql, "_may_bypass_triggers", lambda conn: False)
        for file in files(municipality):
            answer = send(client, world, file, who=who, code=municipality)
            assert answer.status_code == 200, answer.text

    bypassed, fired = _outcome(world, M), _outcome(world, other)
    assert len(bypassed["records"]) > 300 and bypassed["flags"] and bypassed["summary"]
    assert bypassed == fired


def test_many_rows_are_copied_as_the_insert_would_store_them(world: World) -> None:
    """``insert_rows`` copies many rows on PostgreSQL (a bulk import's flags and their
    events): what it stores must be what the ``INSERT`` stores, JSON ``null`` included."""
    documents = [{"rule_code": "LOT_UNKNOWN", "n": n, "名": "値 \\ \t"} for n in range(3)]

    def rows() -> list[dict[str, object]]:
        return [
            {"municipality_code": M, "id": uuid.uuid4(), "dose_record_id": uuid.uuid4(),
             "kind": "flagged", "actor_credential_id": None, "at": NOW, "reason": "why",
             "before": None, "after": document}
            for document in documents
        ]  # fmt: skip

    copied, inserted = rows(), rows()
    with world.engine.begin() as conn:
        insert_rows(conn, EVENT, copied, copy_from=1)
        insert_rows(conn, EVENT, inserted, copy_from=len(inserted) + 1)
    with world.engine.connect() as conn:
        stored = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                select(
                    EVENT.c.id, EVENT.c.at, EVENT.c.reason, EVENT.c.actor_credential_id,
                    EVENT.c.before.is_(None), cast(EVENT.c.before, String),
                    cast(EVENT.c.after, String),
                )
            )
        }  # fmt: skip
    assert len(stored) == 6
    assert [stored[r["id"]] for r in copied] == [stored[r["id"]] for r in inserted]
    assert stored[copied[0]["id"]][3:5] == (False, "null")
