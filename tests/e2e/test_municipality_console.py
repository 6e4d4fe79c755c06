"""The municipality console in a real browser: a resident CSV with a bad row is refused with
the row's error on the page, the fixed file imports, a dose CSV brings in a record that the
interval rule flags, and staff correct it from the review queue and see its history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import World
from tests.e2e.browser import Steps
from tests.vrs.dose_support import add_lots, coupon_number, line
from tests.vrs.test_resident_import import HEADER, my_number, resident_row

DOSE_HEADER = "coupon,vaccinated_on,product,lot,site_code,doctor_name"


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def sign_in(page: Any, live_url: str, world: World) -> None:
    page.goto(live_url + "/app/municipality?lang=en")
    page.get_by_label("Municipality code").fill(world.municipality)
    page.get_by_label("Access token").fill(world.tokens["municipality"])
    page.get_by_role("button", name="Sign in").click()
    page.locator("#console").wait_for(state="visible")


def upload(page: Any, kind: str, path: Path) -> None:
    page.get_by_label(kind).check()
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()


def test_staff_import_fix_a_bad_row_and_correct_a_flagged_record(
    page: Any, live_url: str, world: World, steps: Steps, tmp_path: Path
) -> None:
    add_lots(world)
    sign_in(page, live_url, world)
    steps.shot(page, "console")

    good = [
        resident_row(1, coupon_number=coupon_number(1), my_number=my_number(1)),
        resident_row(2, coupon_number=coupon_number(2), my_number=my_number(2)),
    ]
    bad_row = resident_row(3, birth_date="1980-13-01")
    upload(page, "Residents", write_csv(tmp_path / "bad.csv", HEADER, *good, bad_row))
    page.locator("#import-failed").wait_for()
    error = page.locator("tr.import-error")
    assert error.count() == 1
    cells = error.first.locator("td").all_inner_texts()
    assert cells[0] == "4" and cells[1] == "birth_date", cells
    steps.shot(page, "bad-row-refused")

    fixed = resident_row(3, birth_date="1980-12-01")
    upload(page, "Residents", write_csv(tmp_path / "fixed.csv", HEADER, *good, fixed))
    page.get_by_text("Imported", exact=True).wait_for()
    assert '"created": 3' in page.locator("#import-result pre").inner_text()
    steps.shot(page, "fixed-file-imported")

    doses = [
        f"{line(1, 1)},2023-04-01,EU/1/20/1528,FA1234,{world.site},",
        f"{line(1, 2)},2023-04-08,EU/1/20/1528,FA1234,{world.site},",  # 7 days: too short
    ]
    dose_file = write_csv(tmp_path / "doses.csv", DOSE_HEADER, *doses)
    upload(page, "Dose records (paper forms)", dose_file)
    page.get_by_text("Imported", exact=True).wait_for()
    assert '"flagged": 1' in page.locator("#import-result pre").inner_text()
    chart = page.get_by_role("img", name="Doses per day")
    chart.wait_for()  # redrawn after the import: one day, 1-9 doses, suppressed in open data
    assert "<10" in (chart.text_content() or "")

    page.get_by_label("Rule").fill("INTERVAL_TOO_SHORT")
    page.get_by_role("button", name="Filter").click()
    item = page.locator("tr.review-item[data-rule=INTERVAL_TOO_SHORT]")
    item.wait_for()
    assert item.count() == 1
    steps.shot(page, "review-queue")

    item.get_by_role("button", name="Correct", exact=False).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Field").select_option("vaccinated_on")
    dialog.get_by_label("New value").fill("2023-04-22")
    dialog.get_by_label("Reason").fill("paper form re-read: 22 April")
    steps.shot(page, "correction-form")
    dialog.get_by_role("button", name="Apply").click()

    page.locator("#history").wait_for(state="visible")
    history = page.locator("#history-list").inner_text()
    assert "corrected" in history and "paper form re-read: 22 April" in history
    page.get_by_text("Nothing to review.").wait_for()
    steps.shot(page, "corrected-with-history")

    page.get_by_label("Dose the tickets are for").fill("3")
    page.get_by_role("button", name="Print coupon sheets (PDF)").click()
    with page.expect_download() as sheet:
        page.get_by_role("link", name="Download the coupon sheets (PDF)").click()
    sheet_path = tmp_path / "coupons.pdf"
    sheet.value.save_as(sheet_path)
    assert sheet_path.read_bytes().startswith(b"%PDF-")
    steps.shot(page, "coupon-sheets")


def test_another_municipalitys_token_cannot_open_this_console(
    page: Any, live_url: str, world: World, steps: Steps
) -> None:
    page.goto(live_url + "/app/municipality?lang=en")
    page.get_by_label("Municipality code").fill(world.municipality)
    page.get_by_label("Access token").fill(world.tokens["other_municipality"])
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "OTHER_TENANT" in alert.inner_text()
    assert page.locator("#console").is_hidden()
    steps.shot(page, "refused")
