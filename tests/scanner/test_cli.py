"""``vrs-scan`` end to end: photos and typed lines in, records in the service's database out."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp
from fastapi import FastAPI
from sqlalchemy import text

from certs.coupon import CouponTicket, coupon_png
from scanner.cli import main
from scanner.client import ApiClient
from scanner.outbox import Outbox, RecordState
from scanner.sender import Sender
from tests.conftest import World
from tests.scanner.coupons import print_coupon
from tests.scanner.live import ThreadServer, drafts, wait_until
from tests.vrs.dose_support import GOOD_LOT, add_lots, add_resident, line
from vrs.domain.reference import COMIRNATY

GTIN = "04987123456784"  # a valid GTIN-14 (check digit 4), ours for the tests
TYPED = ["--lot-number", GOOD_LOT, "--product", COMIRNATY, "--date", "2023-05-01"]


@dataclass
class Site:
    outbox: Path
    url: str
    world: World


@pytest.fixture
def site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World, app: FastAPI
) -> Iterator[Site]:
    """The tablet's settings in the environment, as a site would configure them."""
    add_lots(world)
    outbox = tmp_path / "site" / "outbox.sqlite3"
    with ThreadServer(app) as server:
        monkeypatch.setenv("VRS_SCAN_OUTBOX", str(outbox))
        monkeypatch.setenv("VRS_SCAN_API", server.url)
        monkeypatch.setenv("VRS_SCAN_TOKEN", world.tokens["site"])
        monkeypatch.setenv("VRS_SCAN_SITE", world.site)
        monkeypatch.setenv("VRS_SCAN_DEVICE", "tablet 1")
        yield Site(outbox, server.url, world)


def stored(world: World) -> list[tuple[str, str, str]]:
    with world.session() as s:
        rows = s.execute(text("SELECT coupon_number, source, lot_number FROM dose_record")).all()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def outbox_records(path: Path) -> list[tuple[str, str, str]]:
    with Outbox(path) as box:
        return [(r.state.value, r.confirmation.value, r.source) for r in box.records()]


def test_record_a_typed_line_confirmed_by_staff(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    add_resident(site.world, 1)
    assert main(["record", "--line", line(1), *TYPED, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "kana initials:    ヤ・タ" in out
    assert "born (year-month): 1980-04" in out
    assert "sent: stored as" in out and "(recorded)" in out
    assert stored(site.world) == [(line(1)[8:], "manual", GOOD_LOT)]
    assert outbox_records(site.outbox) == [("sent", "confirmed", "manual")]


def test_without_a_terminal_or_yes_the_record_is_kept_unconfirmed(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    add_resident(site.world, 1)
    assert main(["record", "--line", line(1), *TYPED]) == 0
    assert "kept as unconfirmed" in capsys.readouterr().out
    assert outbox_records(site.outbox) == [("sent", "unconfirmed", "manual")]


def test_no_preview_for_an_unregistered_holder(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", "--line", line(3), *TYPED]) == 0
    assert "check the person's identity document" in capsys.readouterr().out
    assert outbox_records(site.outbox) == [("sent", "no_preview", "manual")]


def test_staff_saying_no_records_nothing(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    add_resident(site.world, 1)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    assert main(["record", "--line", line(1), *TYPED]) == 3
    assert stored(site.world) == []
    assert outbox_records(site.outbox) == []


def test_offline_record_is_queued_then_sent(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VRS_SCAN_API")
    assert main(["record", "--line", line(2), *TYPED]) == 0
    assert "offline" in capsys.readouterr().out
    assert main(["status"]) == 0
    assert "pending 1" in capsys.readouterr().out
    assert stored(site.world) == []
    assert main(["--api", site.url, "send"]) == 0
    assert "sent 1, rejected 0, conflict 0, to retry 0" in capsys.readouterr().out
    assert stored(site.world) == [(line(2)[8:], "manual", GOOD_LOT)]
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "rejected": 0,
        "conflict": 0,
    }
    assert outbox_records(site.outbox) == [("sent", "unconfirmed", "manual")]


def test_a_service_that_cannot_be_reached_leaves_the_record_queued(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--api", "http://127.0.0.1:9", "record", "--line", line(2), *TYPED]) == 0
    out = capsys.readouterr().out
    assert "kept as unconfirmed" in out
    assert "not sent yet (NETWORK: ConnectError" in out
    assert outbox_records(site.outbox) == [("pending", "unconfirmed", "manual")]
    # The network is back; staff send now rather than wait out the backoff.
    assert main(["send"]) == 0
    assert "sent 1, rejected 0, conflict 0, to retry 0" in capsys.readouterr().out
    assert outbox_records(site.outbox) == [("sent", "unconfirmed", "manual")]


def test_the_background_sender_waits_for_the_outbox_and_stops_on_sigterm(site: Site) -> None:
    with Outbox(site.outbox) as box:
        holder = Sender(box, ApiClient(site.url, site.world.tokens["site"]))
        holder.acquire()  # a `vrs-scan record` in the middle of its own send
        child = subprocess.Popen(
            [sys.executable, "-m", "scanner", "send", "--loop"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "another sender holds the outbox; waiting for it\n"
            for draft in drafts(3):
                box.enqueue(draft)
            holder.release()
            holder.client.close()
            wait_until(lambda: box.counts()[RecordState.SENT] == 3, "the child to deliver")
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()
    assert len(stored(site.world)) == 3


def test_a_rejection_is_shown_with_its_code_and_can_be_queued_again(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = ["--lot-number", GOOD_LOT, "--product", "EU/9/99/9999", "--date", "2023-05-01"]
    assert main(["record", "--line", line(4), *bad]) == 1
    assert "rejected: UNKNOWN_PRODUCT" in capsys.readouterr().out
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "needs staff attention" in out and "UNKNOWN_PRODUCT" in out
    with Outbox(site.outbox) as box:
        cid = box.records()[0].client_record_id
    assert main(["retry", cid]) == 0
    assert outbox_records(site.outbox) == [("pending", "no_preview", "manual")]
    assert main(["retry", cid]) == 2  # pending now: nothing to queue again


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--line", "1213101612345"], "BAD_COUPON_LINE"),
        (["--line", "111310171234567894"], "BAD_COUPON_LINE"),  # municipality check digit
        (["--line", "211310161234567894"], "TICKET_NOT_VACCINATION"),
        (["--line", line(1), "--date", "2023-02-30"], "BAD_DATE"),
        (["--line", line(1)[:-1] + "0"], "BAD_COUPON_CHECK_DIGIT"),  # the service says so
        ([], "NO_COUPON"),
    ],
)
def test_bad_input_is_refused_before_anything_is_queued(
    site: Site, capsys: pytest.CaptureFixture[str], args: list[str], code: str
) -> None:
    lot = ["--lot-number", GOOD_LOT, "--product", COMIRNATY]
    assert main(["record", *lot, *args]) == 2
    assert f"error: {code}:" in capsys.readouterr().err
    assert not site.outbox.exists() or outbox_records(site.outbox) == []


def lot_png(tmp_path: Path, lot: str = GOOD_LOT) -> Path:
    barcode = zxingcpp.create_barcode(
        f"01{GTIN}17301231\x1d10{lot}", zxingcpp.BarcodeFormat.DataMatrix
    )
    image = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=8))
    path = tmp_path / "vial.png"
    cv2.imwrite(str(path), cv2.copyMakeBorder(image, 40, 40, 40, 40, cv2.BORDER_CONSTANT, 255))
    return path


def test_record_from_photos_of_the_coupon_and_the_vial(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coupon = tmp_path / "coupon.png"
    coupon.write_bytes(coupon_png(CouponTicket(line(5))))
    table = tmp_path / "gtins.csv"
    table.write_text(f"gtin,product\n{GTIN},{COMIRNATY}\n")
    args = ["--coupon", str(coupon), "--lot", str(lot_png(tmp_path)), "--gtin-table", str(table)]
    assert main(["record", *args, "--date", "2023-05-01"]) == 0
    out = capsys.readouterr().out
    assert f"{line(5)}  vaccination ticket, dose 1" in out
    assert f"lot {GOOD_LOT} of {COMIRNATY} (GTIN {GTIN}, expires 2030-12-31)" in out
    assert stored(site.world) == [(line(5)[8:], "qr", GOOD_LOT)]
    with sqlite3.connect(site.outbox) as db:
        assert db.execute("SELECT lot_source FROM outbox_record").fetchone() == ("barcode",)


def test_a_vial_whose_gtin_is_unknown_needs_the_product(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--line", line(5), "--lot", str(lot_png(tmp_path)), "--date", "2023-05-01"]
    assert main(["record", *args]) == 2
    assert "error: NO_PRODUCT: GTIN 04987123456784 is not in the GTIN table" in (
        capsys.readouterr().err
    )
    assert main(["record", *args, "--product", COMIRNATY]) == 0


def test_coupon_command_prints_each_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = print_coupon(random.Random(77), legacy=False)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), printed.frame("mild", seed=1))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((400, 600), 200, np.uint8))
    assert main(["coupon", str(photo)]) == 0
    assert f"photo.jpg: {printed.line}" in capsys.readouterr().out
    assert main(["coupon", str(photo), str(blank)]) == 1
    assert "blank.png: no coupon read" in capsys.readouterr().out
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not an image")
    assert main(["coupon", str(garbage)]) == 2
    assert "notes.txt: error: UNDECODABLE_IMAGE" in capsys.readouterr().out


def test_camera_loop_on_a_video_file_guides_then_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = print_coupon(random.Random(5), legacy=True)  # no QR: the OCR line, 3 frames
    video = tmp_path / "desk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (1280, 720))
    assert writer.isOpened()
    for _ in range(2):
        writer.write(np.full((720, 1280, 3), 10, np.uint8))  # lens covered
    for frame in range(5):
        writer.write(printed.frame("mild", seed=7, frame=frame))
    writer.release()
    assert main(["camera", str(video), "--once"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[frame 0] too dark: add light or move away from the shadow"
    assert "reading: hold still while the frames agree" in out[1]
    assert f"ACCEPTED: {printed.line}  vaccination ticket" in out[-1]
    assert "(legacy number, no check digit); read by ocr" in out[-1]
    assert main(["camera", str(tmp_path / "missing.avi")]) == 2
    assert "CAMERA_UNAVAILABLE" in capsys.readouterr().err
