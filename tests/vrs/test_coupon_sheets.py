"""Printed coupon sheets, read back by the real scanner from the rasterised PDF and the PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pypdfium2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from scanner import read_coupon
from tests.conftest import World
from tests.vrs.test_coupon_issuance import add_residents
from vrs.cli import main
from vrs.db.models import Resident
from vrs.settings import Settings

M = "131016"
DPI = 300


def print_sheet(
    client: TestClient, world: World, who: str = "municipality", code: str = M, **payload: Any
) -> httpx.Response:
    payload.setdefault("dose", 3)
    return client.post(
        f"/v1/municipalities/{code}/coupons/print", json=payload, headers=world.headers(who)
    )


def issued(client: TestClient, world: World, count: int) -> dict[str, str]:
    add_residents(world, count)
    answer = client.post(
        f"/v1/municipalities/{M}/coupons", json={}, headers=world.headers("municipality")
    )
    return {c["local_id"]: c["coupon_number"] for c in answer.json()["issued"]}


def pages(pdf: bytes) -> list[np.ndarray]:
    """Each page as a BGR image at :data:`DPI`."""
    document = pypdfium2.PdfDocument(pdf)
    images = []
    for page in document:
        bitmap = page.render(scale=DPI / 72)
        rgb = np.asarray(bitmap.to_numpy())[:, :, :3]
        images.append(np.ascontiguousarray(rgb[:, :, ::-1]))
    return images


def ticket_crop(page: np.ndarray, slot: int) -> np.ndarray:
    """One 90 x 50 mm ticket of an A4 page (two columns of five, from the top left)."""
    k = DPI / 25.4
    left, top = (15.0 + (slot % 2) * 90.0) * k, (23.5 + (slot // 2) * 50.0) * k
    return page[round(top) : round(top + 50 * k), round(left) : round(left + 90 * k)].copy()


def test_every_ticket_of_the_pdf_reads_back_by_qr_and_by_its_ocr_b_line(
    client: TestClient, world: World
) -> None:
    numbers = issued(client, world, 12)

    answer = print_sheet(client, world)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    images = pages(answer.content)
    assert len(images) == 2  # ten tickets a page
    expected = [f"13{M}{numbers[lid]}" for lid in sorted(numbers)]
    crops = [ticket_crop(images[i // 10], i % 10) for i in range(12)]
    by_qr = [read_coupon(crop) for crop in crops]
    assert [r.line if r else None for r in by_qr] == expected
    assert {r.method for r in by_qr if r} == {"qr"}
    # Without its QR code, the OCR-B line printed from the shared glyph atlas reads alone.
    k = DPI / 25.4
    crop = crops[0]
    crop[
        round(17.0 * k) - 10 : round(27.0 * k) + 10, round(74.0 * k) - 10 : round(84.0 * k) + 10
    ] = 255
    by_ocr = read_coupon(crop)
    assert by_ocr is not None and (by_ocr.line, by_ocr.method) == (expected[0], "ocr")


def test_one_ticket_as_png_reads_back(client: TestClient, world: World) -> None:
    numbers = issued(client, world, 2)
    [first, _] = sorted(numbers)

    answer = print_sheet(client, world, local_ids=[first], format="png", dose=1)
    several = print_sheet(client, world, format="png")

    assert answer.headers["content-type"] == "image/png"
    read = read_coupon(answer.content)
    assert read is not None and read.line == f"11{M}{numbers[first]}"
    assert (several.status_code, several.json()["code"]) == (422, "ONE_TICKET_PER_PNG")


def test_protected_residents_are_printed_only_when_named(client: TestClient, world: World) -> None:
    numbers = issued(client, world, 11)
    protected = sorted(numbers)[0]
    with world.session() as s:
        s.execute(
            update(Resident).where(Resident.local_id == protected).values(protected=True)  # type: ignore[arg-type]
        )
        s.commit()

    batch = pages(print_sheet(client, world).content)
    named = print_sheet(client, world, local_ids=[protected], format="png")

    assert len(batch) == 1  # ten tickets: the protected resident is not among them
    lines = {r.line for i in range(10) if (r := read_coupon(ticket_crop(batch[0], i)))}
    assert f"13{M}{numbers[protected]}" not in lines and len(lines) == 10
    assert named.status_code == 200


@pytest.mark.parametrize(
    ("who", "code"), [("other_municipality", "OTHER_TENANT"), ("site", "ROLE_NOT_ALLOWED")]
)
def test_other_tenants_cannot_print(client: TestClient, world: World, who: str, code: str) -> None:
    issued(client, world, 1)
    answer = print_sheet(client, world, who=who)
    assert (answer.status_code, answer.json()["code"]) == (403, code)
    assert print_sheet(client, world, who="admin").status_code == 200


def test_bad_requests(client: TestClient, world: World) -> None:
    assert print_sheet(client, world).json()["code"] == "NOTHING_TO_PRINT"
    add_residents(world, 1)
    assert print_sheet(client, world, dose=0).json()["code"] == "BAD_DOSE"
    assert print_sheet(client, world, local_ids=["L000000"]).json()["code"] == "NO_COUPON_NUMBER"
    assert print_sheet(client, world, local_ids=["NOBODY"]).json()["code"] == "UNKNOWN_RESIDENT"


def test_the_cli_prints_the_same_sheet(
    client: TestClient,
    world: World,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    numbers = issued(client, world, 3)
    monkeypatch.setenv("VRS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VRS_DATA_DIR", str(tmp_path))
    out = tmp_path / "coupons.pdf"

    assert main(["coupons", "print", "--municipality", M, "--dose", "2", str(out)]) == 0

    [page] = pages(out.read_bytes())
    read = [read_coupon(ticket_crop(page, i)) for i in range(3)]
    assert [r.line if r else None for r in read] == [
        f"12{M}{numbers[lid]}" for lid in sorted(numbers)
    ]
