"""The resident CSV import and the audited resident read (issue: resident import).

Every test runs on SQLite and, with ``VRS_TEST_DATABASE_URL`` set, on PostgreSQL.
"""

from __future__ import annotations

import io
import logging
import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from tests.conftest import NOW, Clock, World
from vrs.app import create_app
from vrs.db.models import AuditLog, DoseRecord, DoseRecordEvent, Municipality, Resident
from vrs.domain.checkdigits import is_valid_damm, make_damm_coupon_number, my_number_check_digit
from vrs.domain.csvimport import BadLine, LineText, PhysicalLines
from vrs.domain.mynumber import my_number_hmac
from vrs.domain.reference import COMIRNATY
from vrs.domain.residents import RESIDENT_COLUMNS, is_valid_damm_coupon_number
from vrs.settings import Settings

HEADER = ",".join(RESIDENT_COLUMNS)
MY_NUMBER = "123456789018"  # DOMAIN.md's valid example


def my_number(serial: int) -> str:
    body = f"{serial:011d}"
    return body + str(my_number_check_digit(body))


def coupon(serial: int) -> str:
    return make_damm_coupon_number(serial)


def resident_row(n: int, **fields: str) -> str:
    """A valid CSV line for resident ``n``; keyword arguments replace fields."""
    values = {
        "local_id": f"L{n:06d}",
        "family_name": "山田",
        "given_name": f"太郎{n}",
        "family_name_kana": "ヤマダ",
        "given_name_kana": "タロウ",
        "birth_date": "1980-04-01",
        "sex": "M",
        "my_number": my_number(n),
        "coupon_number": coupon(n),
        "address": "東京都千代田区千代田1-1",
        "protected": "false",
    }
    values.update(fields)
    return ",".join(values[c] for c in RESIDENT_COLUMNS)


def csv_body(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def post_csv(
    client: TestClient,
    world: World,
    body: bytes,
    *,
    who: str = "municipality",
    code: str | None = None,
    content_type: str = "text/csv",
) -> httpx.Response:
    return client.post(
        f"/v1/municipalities/{code or world.municipality}/residents/import",
        content=body,
        headers={**world.headers(who), "Content-Type": content_type},
    )


def residents(engine: Engine, municipality: str = "131016") -> dict[str, Resident]:
    with Session(engine) as s:
        rows = s.execute(select(Resident).where(Resident.municipality_code == municipality))
        return {r.local_id: r for r in rows.scalars()}


def problems(response: httpx.Response) -> list[tuple[int, str | None, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "INVALID_FILE"
    return [(e["line"], e["column"], e["code"]) for e in body["errors"]]


# --- the happy path and the upsert ------------------------------------------------------


def test_a_good_file_creates_residents(client: TestClient, world: World, engine: Engine) -> None:
    body = csv_body(
        resident_row(1),
        resident_row(2, given_name_kana="はなこ", sex="2", my_number="", protected="1"),
        resident_row(3, coupon_number="", sex="x", birth_date="2001/2/3"),
    )
    response = post_csv(client, world, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "rows": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "matched_pending_doses": 0,
    }
    stored = residents(engine)
    assert set(stored) == {"L000001", "L000002", "L000003"}
    assert stored["L000001"].my_number_hmac == my_number_hmac(
        Settings().my_number_hmac_key, my_number(1)
    )
    assert stored["L000002"].given_name_kana == "ハナコ"
    assert stored["L000002"].sex == "F"
    assert stored["L000002"].my_number_hmac is None
    assert stored["L000002"].protected is True
    assert stored["L000003"].coupon_number is None
    assert stored["L000003"].sex == "X"
    assert stored["L000003"].birth_date == date(2001, 2, 3)
    assert stored["L000001"].created_at == NOW


def test_a_utf8_bom_and_crlf_line_ends_are_accepted(
    client: TestClient, world: World, engine: Engine
) -> None:
    body = "\ufeff" + HEADER + "\r\n" + resident_row(1) + "\r\n" + resident_row(2)
    response = post_csv(client, world, body.encode(), content_type="text/csv; charset=utf-8")
    assert response.status_code == 200, response.text
    assert residents(engine)["L000002"].protected is False


def test_quoted_fields_may_hold_commas_and_quotes(
    client: TestClient, world: World, engine: Engine
) -> None:
    body = csv_body(resident_row(1, address='"東京都千代田区, ""本館"" 2階"'))
    assert post_csv(client, world, body).status_code == 200
    assert residents(engine)["L000001"].address == '東京都千代田区, "本館" 2階'


def test_a_second_import_updates_by_local_id(
    client: TestClient, world: World, engine: Engine, clock: Clock
) -> None:
    assert post_csv(client, world, csv_body(resident_row(1), resident_row(2))).status_code == 200
    clock.now = NOW + timedelta(days=1)
    body = csv_body(
        resident_row(1),  # unchanged
        resident_row(2, family_name="佐藤", my_number="", protected="true"),  # updated
        resident_row(3),  # created
    )
    response = post_csv(client, world, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "rows": 3,
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "matched_pending_doses": 0,
    }
    stored = residents(engine)
    assert stored["L000001"].updated_at == NOW
    assert stored["L000002"].family_name == "佐藤"
    assert stored["L000002"].my_number_hmac is None
    assert stored["L000002"].protected is True
    assert (stored["L000002"].created_at, stored["L000002"].updated_at) == (NOW, clock.now)
    assert stored["L000003"].created_at == clock.now


def test_residents_swap_coupon_numbers(client: TestClient, world: World, engine: Engine) -> None:
    first = csv_body(
        resident_row(1, coupon_number=coupon(1)), resident_row(2, coupon_number=coupon(2))
    )
    assert post_csv(client, world, first).status_code == 200
    swapped = csv_body(
        resident_row(1, coupon_number=coupon(2)), resident_row(2, coupon_number=coupon(1))
    )
    response = post_csv(client, world, swapped)
    assert response.status_code == 200, response.text
    assert response.json()["updated"] == 2
    stored = residents(engine)
    assert (stored["L000001"].coupon_number, stored["L000002"].coupon_number) == (
        coupon(2),
        coupon(1),
    )


def test_a_coupon_number_may_pass_to_a_new_resident(
    client: TestClient, world: World, engine: Engine
) -> None:
    assert (
        post_csv(client, world, csv_body(resident_row(1, coupon_number=coupon(1)))).status_code
        == 200
    )
    moved = csv_body(resident_row(1, coupon_number=""), resident_row(2, coupon_number=coupon(1)))
    assert post_csv(client, world, moved).status_code == 200
    stored = residents(engine)
    assert stored["L000001"].coupon_number is None
    assert stored["L000002"].coupon_number == coupon(1)


def test_a_coupon_number_may_pass_between_stored_residents(
    client: TestClient, world: World, engine: Engine
) -> None:
    first = csv_body(resident_row(1), resident_row(2, coupon_number=""), resident_row(3))
    assert post_csv(client, world, first).status_code == 200
    # 1 gives its number to 2 and keeps nothing else changed; 3 is unchanged.
    moved = csv_body(
        resident_row(2, coupon_number=coupon(1)), resident_row(1, coupon_number=""), resident_row(3)
    )
    response = post_csv(client, world, moved)
    assert response.status_code == 200, response.text
    assert response.json() | {"matched_pending_doses": 0} == {
        "rows": 3,
        "created": 0,
        "updated": 2,
        "unchanged": 1,
        "matched_pending_doses": 0,
    }
    stored = residents(engine)
    assert (stored["L000001"].coupon_number, stored["L000002"].coupon_number) == (None, coupon(1))


def test_the_same_local_id_in_two_municipalities_is_two_residents(
    client: TestClient, world: World, engine: Engine
) -> None:
    body = csv_body(resident_row(1))
    assert post_csv(client, world, body).status_code == 200
    other = post_csv(client, world, body, who="other_municipality", code=world.other_municipality)
    assert other.status_code == 200, other.text
    assert set(residents(engine, world.other_municipality)) == {"L000001"}


# --- every row error, with its line and column -------------------------------------------

ROW_ERRORS: list[tuple[dict[str, str], str | None, str]] = [
    ({"local_id": ""}, "local_id", "MISSING_VALUE"),
    ({"local_id": "L 1"}, "local_id", "BAD_LOCAL_ID"),
    ({"local_id": "Ｌ１"}, "local_id", "BAD_LOCAL_ID"),
    ({"local_id": "L" * 21}, "local_id", "FIELD_TOO_LONG"),
    ({"family_name": ""}, "family_name", "MISSING_VALUE"),
    ({"given_name": "  "}, "given_name", "MISSING_VALUE"),
    ({"family_name": "山" * 101}, "family_name", "FIELD_TOO_LONG"),
    ({"family_name_kana": "Yamada"}, "family_name_kana", "BAD_KANA"),
    ({"given_name_kana": "太郎"}, "given_name_kana", "BAD_KANA"),
    ({"given_name_kana": ""}, "given_name_kana", "MISSING_VALUE"),
    ({"family_name_kana": "ヤ" * 101}, "family_name_kana", "FIELD_TOO_LONG"),
    ({"birth_date": ""}, "birth_date", "MISSING_VALUE"),
    ({"birth_date": "1980-02-30"}, "birth_date", "BAD_DATE"),
    ({"birth_date": "01/04/1980"}, "birth_date", "BAD_DATE"),
    ({"birth_date": "1980-4-1x"}, "birth_date", "BAD_DATE"),
    ({"birth_date": "1899-12-31"}, "birth_date", "DATE_OUT_OF_RANGE"),
    ({"birth_date": "2023-06-02"}, "birth_date", "DATE_OUT_OF_RANGE"),
    ({"sex": ""}, "sex", "MISSING_VALUE"),
    ({"sex": "male"}, "sex", "BAD_SEX"),
    ({"sex": "3"}, "sex", "BAD_SEX"),
    ({"my_number": "123456789019"}, "my_number", "BAD_MY_NUMBER"),
    ({"my_number": "12345678901"}, "my_number", "BAD_MY_NUMBER"),
    ({"my_number": "１２３４５６７８９０１８"}, "my_number", "BAD_MY_NUMBER"),
    ({"coupon_number": "123456789"}, "coupon_number", "BAD_COUPON_NUMBER"),
    ({"coupon_number": "12345678AB"}, "coupon_number", "BAD_COUPON_NUMBER"),
    ({"coupon_number": "0000000011"}, "coupon_number", "BAD_COUPON_CHECK_DIGIT"),
    ({"address": "千" * 301}, "address", "FIELD_TOO_LONG"),
    ({"protected": "yes"}, "protected", "BAD_PROTECTED"),
    ({"family_name": "=cmd|' /C calc'!A0"}, "family_name", "FORMULA_INJECTION"),
    ({"address": "+81 3 1234"}, "address", "FORMULA_INJECTION"),
    ({"given_name": "-1+1"}, "given_name", "FORMULA_INJECTION"),
    ({"given_name": "@SUM(A1)"}, "given_name", "FORMULA_INJECTION"),
    ({"address": "  =1+1"}, "address", "FORMULA_INJECTION"),
    ({"address": '"=HYPERLINK(""http://x"")"'}, "address", "FORMULA_INJECTION"),
    ({"address": "\t=1+1"}, "address", "FORMULA_INJECTION"),
    ({"address": "\r=1+1"}, "address", "FORMULA_INJECTION"),
    ({"family_name": "山\x00田"}, "family_name", "BAD_CHARACTER"),
    ({"address": "a\x1bb"}, "address", "BAD_CHARACTER"),
    ({"address": '"unclosed'}, None, "BAD_QUOTING"),
    ({"address": "a,b"}, None, "WRONG_FIELD_COUNT"),
]


@pytest.mark.parametrize(
    ("fields", "column", "code"),
    ROW_ERRORS,
    ids=[f"{c}-{i}" for i, (_, _, c) in enumerate(ROW_ERRORS)],
)
def test_each_bad_row_is_reported_with_line_column_and_code(
    client: TestClient,
    world: World,
    engine: Engine,
    fields: dict[str, str],
    column: str | None,
    code: str,
) -> None:
    body = csv_body(resident_row(1), resident_row(2, **fields), resident_row(3))
    response = post_csv(client, world, body)
    assert problems(response) == [(3, column, code)]
    assert response.json()["error_count"] == 1
    assert response.json()["truncated"] is False
    assert residents(engine) == {}


def test_a_municipality_with_legacy_coupons_skips_the_damm_check(
    client: TestClient, world: World, engine: Engine
) -> None:
    with Session(engine) as s:
        municipality = s.get(Municipality, world.municipality)
        assert municipality is not None
        municipality.coupon_format = "legacy"
        s.commit()
    body = csv_body(resident_row(1, coupon_number="0000000011"))
    assert post_csv(client, world, body).status_code == 200


def test_every_bad_row_is_listed_in_line_order_and_nothing_is_written(
    client: TestClient, world: World, engine: Engine
) -> None:
    rows = [resident_row(n) for n in range(1, 51)]
    rows[9] = resident_row(10, sex="Q", birth_date="1980-13-01")  # line 11
    rows[29] = resident_row(11)  # line 31: repeats line 12's local id and coupon
    rows[39] = "L000040,only,three"  # line 41
    response = post_csv(client, world, csv_body(*rows))
    assert problems(response) == [
        (11, "birth_date", "BAD_DATE"),
        (11, "sex", "BAD_SEX"),
        (31, "local_id", "DUPLICATE_LOCAL_ID"),
        (31, "coupon_number", "DUPLICATE_COUPON_NUMBER"),
        (41, None, "WRONG_FIELD_COUNT"),
    ]
    errors = response.json()["errors"]
    assert errors[2]["message"] == "already on line 12"
    assert residents(engine) == {}
    with Session(engine) as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditLog)
                .where(AuditLog.action == "residents.import")
            )
            == 0
        )


def test_a_coupon_number_held_by_another_resident_is_refused(
    client: TestClient, world: World, engine: Engine
) -> None:
    assert post_csv(client, world, csv_body(resident_row(1))).status_code == 200
    response = post_csv(
        client, world, csv_body(resident_row(2), resident_row(3, coupon_number=coupon(1)))
    )
    assert problems(response) == [(3, "coupon_number", "COUPON_NUMBER_TAKEN")]
    assert set(residents(engine)) == {"L000001"}


def test_the_error_list_is_truncated_but_the_count_is_complete(
    engine: Engine, world: World, settings: Settings, clock: Clock
) -> None:
    small = Settings(
        database_url=settings.database_url, data_dir=settings.data_dir, max_reported_errors=5
    )
    rows = [resident_row(n, sex="?") for n in range(1, 9)]
    rows += [resident_row(100), resident_row(100)]  # a repeat, found later by SQL
    with TestClient(create_app(small, engine=engine, clock=clock)) as client:
        response = post_csv(client, world, csv_body(*rows))
    body = response.json()
    assert [e["line"] for e in body["errors"]] == [2, 3, 4, 5, 6]
    assert body["error_count"] == 8 + 2  # the repeated local id and coupon number
    assert body["truncated"] is True


# --- the file as a whole ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER.replace(",protected", ""), [(1, "protected", "MISSING_COLUMN")]),
        (HEADER + ",note", [(1, "note", "UNKNOWN_COLUMN")]),
        (HEADER + ",sex", [(1, "sex", "DUPLICATE_COLUMN")]),
        (
            HEADER.replace("local_id,family_name", "family_name,local_id"),
            [(1, None, "COLUMN_ORDER")],
        ),
        (
            HEADER.replace("my_number", "mynumber"),
            [(1, "mynumber", "UNKNOWN_COLUMN"), (1, "my_number", "MISSING_COLUMN")],
        ),
    ],
)
def test_the_header_must_name_exactly_the_columns(
    client: TestClient, world: World, header: str, expected: list[tuple[int, str | None, str]]
) -> None:
    response = post_csv(client, world, csv_body(resident_row(1), header=header))
    assert problems(response) == expected


@pytest.mark.parametrize(
    "body", [b"", b"\n\n", b"\xef\xbb\xbf", csv_body(), b"\xef\xbb\xbf" + csv_body() + b"\n\n"]
)
def test_an_empty_file_is_refused(client: TestClient, world: World, body: bytes) -> None:
    response = post_csv(client, world, body)
    assert response.status_code == 422
    assert response.json()["code"] == "EMPTY_FILE"


def test_shift_jis_bytes_are_reported_by_line(client: TestClient, world: World) -> None:
    body = csv_body(resident_row(1)) + resident_row(2).encode("shift_jis") + b"\n"
    assert problems(post_csv(client, world, body)) == [(3, None, "BAD_ENCODING")]


def test_a_shift_jis_header_is_reported(client: TestClient, world: World) -> None:
    body = ("氏名," + HEADER + "\n").encode("shift_jis") + resident_row(1).encode()
    assert problems(post_csv(client, world, body)) == [(1, None, "BAD_ENCODING")]


def test_a_10_mb_line_is_refused_and_the_rest_still_checked(
    client: TestClient, world: World
) -> None:
    huge = resident_row(2, address="A" * (10 * 1024 * 1024)).encode()
    body = csv_body(resident_row(1)) + huge + b"\n" + resident_row(3, sex="?").encode() + b"\n"
    assert problems(post_csv(client, world, body)) == [
        (3, None, "LINE_TOO_LONG"),
        (4, "sex", "BAD_SEX"),
    ]


def test_a_line_of_exactly_the_limit_is_accepted(
    engine: Engine, world: World, settings: Settings, clock: Clock
) -> None:
    limit = len(HEADER)
    tight = Settings(
        database_url=settings.database_url, data_dir=settings.data_dir, max_csv_line_bytes=limit
    )

    def line_of(n: int, size: int) -> str:
        line = resident_row(n, address="x" * (size - len(resident_row(n, address="").encode())))
        assert len(line.encode()) == size
        return line

    with TestClient(create_app(tight, engine=engine, clock=clock)) as client:
        exact = csv_body(line_of(1, limit)).replace(b"\n", b"\r\n")
        assert post_csv(client, world, exact).status_code == 200
        too_long = csv_body(line_of(2, limit + 1))
        assert problems(post_csv(client, world, too_long)) == [(2, None, "LINE_TOO_LONG")]


def test_nul_bytes_are_refused(client: TestClient, world: World) -> None:
    body = csv_body(resident_row(1)) + b"\x00\x00\x00\n" + csv_body(resident_row(3), header="")[1:]
    assert problems(post_csv(client, world, body)) == [(3, None, "WRONG_FIELD_COUNT")]


@pytest.fixture
def small_limit_client(engine: Engine, settings: Settings, clock: Clock) -> Iterator[TestClient]:
    small = Settings(
        database_url=settings.database_url, data_dir=settings.data_dir, max_import_bytes=2000
    )
    with TestClient(create_app(small, engine=engine, clock=clock)) as client:
        yield client


def test_a_body_over_the_limit_is_413(
    small_limit_client: TestClient, world: World, engine: Engine, settings: Settings
) -> None:
    body = csv_body(*(resident_row(n) for n in range(1, 40)))
    assert len(body) > 2000
    response = post_csv(small_limit_client, world, body)
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert residents(engine) == {}


def test_a_chunked_body_over_the_limit_is_413_and_leaves_no_file(
    small_limit_client: TestClient, world: World, engine: Engine, settings: Settings
) -> None:
    def chunks() -> Iterator[bytes]:
        yield csv_body()
        for n in range(1, 40):
            yield resident_row(n).encode() + b"\n"

    response = small_limit_client.post(
        f"/v1/municipalities/{world.municipality}/residents/import",
        content=chunks(),
        headers={**world.headers("municipality"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 413
    assert residents(engine) == {}
    assert list((settings.data_dir / "tmp").iterdir()) == []


def test_no_temporary_file_is_left_behind(
    client: TestClient, world: World, settings: Settings
) -> None:
    assert post_csv(client, world, csv_body(resident_row(1))).status_code == 200
    assert post_csv(client, world, csv_body(resident_row(1, sex="?"))).status_code == 422
    assert list((settings.data_dir / "tmp").iterdir()) == []


def test_a_body_that_is_not_csv_is_415(client: TestClient, world: World) -> None:
    for content_type in ("application/json", "text/csv; charset=shift_jis"):
        response = post_csv(client, world, csv_body(resident_row(1)), content_type=content_type)
        assert response.status_code == 415
        assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


# --- tenancy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("other_municipality", 403, "OTHER_TENANT"),
        ("site", 403, "OTHER_TENANT"),
        ("admin", 200, None),
    ],
)
def test_only_admin_or_the_municipality_may_import(
    client: TestClient, world: World, who: str, status: int, code: str | None
) -> None:
    response = post_csv(client, world, csv_body(resident_row(1)), who=who)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["code"] == code


def test_an_unknown_municipality_is_404(client: TestClient, world: World) -> None:
    response = post_csv(client, world, csv_body(resident_row(1)), who="admin", code="271004")
    assert response.status_code == 404
    assert response.json()["code"] == "UNKNOWN_MUNICIPALITY"


def test_an_import_without_a_token_is_401(client: TestClient, world: World) -> None:
    response = client.post(
        f"/v1/municipalities/{world.municipality}/residents/import",
        content=csv_body(resident_row(1)),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 401


# --- reading one resident -----------------------------------------------------------------


def test_a_resident_is_read_without_their_my_number_and_the_read_is_audited(
    client: TestClient, world: World, engine: Engine
) -> None:
    assert (
        post_csv(
            client, world, csv_body(resident_row(1), resident_row(2, my_number=""))
        ).status_code
        == 200
    )
    url = f"/v1/municipalities/{world.municipality}/residents/"
    one = client.get(url + "L000001", headers=world.headers("municipality"))
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["has_my_number"] is True
    assert body["given_name_kana"] == "タロウ"
    assert body["birth_date"] == "1980-04-01"
    assert not any("my_number" in key and key != "has_my_number" for key in body)
    assert (
        client.get(url + "L000002", headers=world.headers("admin")).json()["has_my_number"] is False
    )
    with Session(engine) as s:
        reads = (
            s.execute(select(AuditLog).where(AuditLog.action == "resident.read")).scalars().all()
        )
    assert sorted((r.subject, r.actor_role) for r in reads) == [
        ("L000001", "municipality"),
        ("L000002", "admin"),
    ]


@pytest.mark.parametrize(
    ("who", "local_id", "status", "code"),
    [
        ("other_municipality", "L000001", 403, "OTHER_TENANT"),
        ("site", "L000001", 403, "OTHER_TENANT"),
        ("municipality", "L999999", 404, "RESIDENT_NOT_FOUND"),
    ],
)
def test_reading_a_resident_needs_the_tenant(
    client: TestClient, world: World, who: str, local_id: str, status: int, code: str
) -> None:
    assert post_csv(client, world, csv_body(resident_row(1))).status_code == 200
    response = client.get(
        f"/v1/municipalities/{world.municipality}/residents/{local_id}", headers=world.headers(who)
    )
    assert response.status_code == status
    assert response.json()["code"] == code


# --- My Number privacy -----------------------------------------------------------------------


def test_a_my_number_never_leaves_the_service(
    client: TestClient, world: World, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_check_digit = MY_NUMBER[:-1] + "9"
    bodies = [
        csv_body(resident_row(1, my_number=MY_NUMBER)),
        csv_body(resident_row(2, my_number=bad_check_digit)),
        csv_body(resident_row(3, my_number=bad_check_digit, sex="?"), resident_row(3)),
    ]
    responses = [post_csv(client, world, b) for b in bodies]
    assert [r.status_code for r in responses] == [200, 422, 422]
    responses.append(
        client.get(
            f"/v1/municipalities/{world.municipality}/residents/L000001",
            headers=world.headers("municipality"),
        )
    )
    for response in responses:
        assert MY_NUMBER not in response.text
        assert bad_check_digit not in response.text
        assert MY_NUMBER[:11] not in response.text
    with Session(engine) as s:
        audit_rows = s.execute(select(AuditLog)).scalars().all()
    assert any(r.action == "residents.import" and r.count == 1 for r in audit_rows)
    for row in audit_rows:
        assert MY_NUMBER not in repr(row.model_dump())
    assert MY_NUMBER not in caplog.text
    assert bad_check_digit not in caplog.text
    hashed = residents(engine)["L000001"].my_number_hmac
    assert hashed is not None and len(hashed) == 64 and MY_NUMBER not in hashed


def test_my_number_hmac_is_keyed() -> None:
    assert my_number_hmac(b"key one", MY_NUMBER) != my_number_hmac(b"key two", MY_NUMBER)
    assert my_number_hmac(b"key one", MY_NUMBER) == my_number_hmac(b"key one", MY_NUMBER)


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.sampled_from("0123456789"))
def test_the_fast_my_number_check_agrees_with_the_reference(body: str, last: str) -> None:
    from vrs.domain import checkdigits, mynumber

    assert mynumber.is_valid_my_number(body + last) == checkdigits.is_valid_my_number(body + last)


# --- pending dose records ------------------------------------------------------------------


def _pending_dose(
    session: Session, world: World, coupon_number: str, dose_number: int
) -> uuid.UUID:
    record = DoseRecord(
        municipality_code=world.municipality,
        coupon_number=coupon_number,
        dose_number=dose_number,
        vaccinated_on=date(2022, 1, 10) + timedelta(days=30 * (dose_number - 1)),
        product_code=COMIRNATY,
        lot_number="FF0001",
        site_code=world.site,
        source="qr",
        status="pending",
        registered_at=NOW,
        updated_at=NOW,
    )
    session.add(record)
    return record.id


def test_pending_dose_records_are_matched_by_coupon_number(
    client: TestClient, world: World, engine: Engine
) -> None:
    pytest.importorskip(
        "vrs.domain.rules", reason="the rules engine (reevaluate_series) is not in yet"
    )
    with Session(engine) as s:
        first = _pending_dose(s, world, coupon(1), 1)
        second = _pending_dose(s, world, coupon(1), 2)
        other = _pending_dose(s, world, coupon(7), 1)
        s.commit()
    response = post_csv(client, world, csv_body(resident_row(1), resident_row(2)))
    assert response.status_code == 200, response.text
    assert response.json()["matched_pending_doses"] == 2
    with Session(engine) as s:
        for record_id in (first, second):
            record = s.get(DoseRecord, (world.municipality, record_id))
            assert record is not None
            assert (record.status, record.resident_local_id) == ("recorded", "L000001")
        pending = s.get(DoseRecord, (world.municipality, other))
        assert pending is not None and pending.status == "pending"
        events = (
            s.execute(select(DoseRecordEvent).where(DoseRecordEvent.kind == "matched"))
            .scalars()
            .all()
        )
    assert sorted(e.dose_record_id for e in events) == sorted([first, second])


def test_matched_records_keep_their_resident_when_the_coupon_changes(
    client: TestClient, world: World, engine: Engine
) -> None:
    pytest.importorskip(
        "vrs.domain.rules", reason="the rules engine (reevaluate_series) is not in yet"
    )
    with Session(engine) as s:
        record_id = _pending_dose(s, world, coupon(1), 1)
        s.commit()
    assert post_csv(client, world, csv_body(resident_row(1))).status_code == 200
    response = post_csv(client, world, csv_body(resident_row(1, coupon_number=coupon(5))))
    assert response.json()["matched_pending_doses"] == 0
    with Session(engine) as s:
        record = s.get(DoseRecord, (world.municipality, record_id))
        assert record is not None
        assert (record.resident_local_id, record.coupon_number) == ("L000001", coupon(1))


# --- scale and hostile input ------------------------------------------------------------------


@pytest.mark.slow
def test_a_100k_row_file_imports(client: TestClient, world: World, engine: Engine) -> None:
    rng = random.Random(7)
    rows = [
        resident_row(n, birth_date=f"{rng.randint(1920, 2022)}-{rng.randint(1, 12):02d}-15")
        for n in range(1, 100_001)
    ]
    response = post_csv(client, world, csv_body(*rows))
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 100_000
    again = post_csv(client, world, csv_body(*rows))
    assert again.json()["unchanged"] == 100_000
    with Session(engine) as s:
        count = s.scalar(select(func.count()).select_from(Resident))
    assert count == 100_000


_LINES = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda n, f, v: resident_row(n, **{f: v}).encode(),
        st.integers(1, 5),
        st.sampled_from(RESIDENT_COLUMNS),
        st.text(max_size=12),
    ),
)


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    header=st.sampled_from([HEADER.encode(), b"\xef\xbb\xbf" + HEADER.encode(), b""]),
    lines=st.lists(_LINES, max_size=6),
    separator=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_any_bytes_give_a_result_or_a_problem_never_a_500(
    client: TestClient, world: World, header: bytes, lines: list[bytes], separator: bytes
) -> None:
    response = post_csv(client, world, separator.join([header, *lines]))
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.headers["content-type"].startswith("application/problem+json")
        body: dict[str, Any] = response.json()
        assert body["code"] in ("INVALID_FILE", "EMPTY_FILE")


# --- the line reader, across block boundaries ------------------------------------------------


def _reference_lines(data: bytes, limit: int) -> list[LineText]:
    """What PhysicalLines must produce, computed the obvious (whole-file) way."""
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    out: list[LineText] = []
    for raw in raw_lines:
        raw = raw.removesuffix(b"\r")
        if len(raw) > limit:
            out.append(BadLine.TOO_LONG)
            continue
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(BadLine.NOT_UTF8)
    return out


@hypothesis_settings(max_examples=300)
@given(
    lines=st.lists(
        st.one_of(
            st.text(alphabet="aあ,\r", max_size=12).map(str.encode),
            st.binary(max_size=12).filter(lambda b: b"\n" not in b),
        ),
        max_size=12,
    ),
    final_newline=st.booleans(),
    block=st.integers(1, 20),
    limit=st.integers(1, 16),
)
def test_physical_lines_do_not_depend_on_block_size(
    lines: list[bytes], final_newline: bool, block: int, limit: int
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    reader = PhysicalLines(io.BytesIO(data), max_line_bytes=limit, block_bytes=block)
    read = [line for chunk in reader.blocks() for line in chunk]
    expected = _reference_lines(data, limit)
    # A final empty line may or may not come out: it is blank either way.
    assert [x for x in read if x != ""] == [x for x in expected if x != ""]


@given(st.text(alphabet="0123456789", min_size=9, max_size=9), st.sampled_from("0123456789"))
def test_the_fast_damm_check_agrees_with_the_reference(body: str, last: str) -> None:
    assert is_valid_damm_coupon_number(body + last) == is_valid_damm(body + last)


@pytest.mark.parametrize(
    "text", ["", "123456789", "12345678901", "１２３４５６７８９０", "12345a7890"]
)
def test_the_fast_damm_check_refuses_what_is_not_ten_digits(text: str) -> None:
    assert not is_valid_damm_coupon_number(text)
