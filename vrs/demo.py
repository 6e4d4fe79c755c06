"""``vrs demo``: the whole chain on the embedded default, narrated step by step.

A throwaway data directory (SQLite, development keys and card issuer) and a real service
(``vrs serve`` in a child process); a municipality imports residents and issues and prints
their coupons; a "camera" process photographs the printed tickets with the scanner's camera
effects; the site's ``vrs-scan`` reads them and delivers the doses through its outbox; a
resident signs in with a development card and gets a certificate; ``vrs-verify`` syncs the
trust bundle and checks it offline; a correction revokes it and the re-synced verifier
rejects it.

The scanner and the verifier run as their own processes and talk to the service over HTTP,
as the real devices do (``vrs`` never imports them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from vrs.db import migrate
from vrs.db.engine import make_engine
from vrs.devcard import dev_issuer, make_card
from vrs.domain import auth, lots, places
from vrs.domain.mynumber import is_valid_my_number
from vrs.domain.reference import seed_reference_data
from vrs.domain.rules import today_in_japan

__all__ = ["DemoError", "run_demo"]

MUNICIPALITY = ("131016", "千代田区")
SITE = ("1310000017", "Chiyoda mass vaccination site")
LOT = "FK1234"
PRODUCT = "EU/1/20/1528"  # Comirnaty
#: (local id, family, given, family kana, given kana, birth date, camera level of its tickets)
RESIDENTS = (
    ("D0001", "山田", "太郎", "ヤマダ", "タロウ", "1980-04-15", "clean"),
    ("D0002", "佐藤", "花子", "サトウ", "ハナコ", "1975-11-02", "mild"),
    ("D0003", "服部", "健一", "ハットリ", "ケンイチ", "1992-07-30", "mild"),
)
#: The scanner's camera effects, applied in a separate process (``scanner.synth``).
_CAMERA = """
import sys, cv2, numpy as np
from scanner.synth import photograph
for job in sys.argv[1:]:
    src, out, level, seed = job.split("|")
    printed = cv2.imdecode(np.fromfile(src, np.uint8), cv2.IMREAD_COLOR)
    for frame in range(2):
        image = photograph(
            printed, source_px_per_mm=300 / 25.4, level=level, seed=int(seed), frame=frame
        )
        cv2.imwrite(f"{out}-{frame}.jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
"""


class DemoError(RuntimeError):
    """A step of the demo did not do what it should."""


def _my_number(serial: int) -> str:
    body = f"{serial:011d}"
    for digit in "0123456789":
        if is_valid_my_number(body + digit):
            return body + digit
    raise DemoError("no check digit fits")  # pragma: no cover - one always does


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Demo:
    folder: Path
    say: Callable[[str], None]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    step_no: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def step(self, text: str) -> None:
        self.step_no += 1
        self.say(f"\n[{time.monotonic() - self.started:5.1f} s] {self.step_no}. {text}")

    def detail(self, text: str) -> None:
        self.say(f"      {text}")

    def run(self, *command: str, env: dict[str, str] | None = None, expect: int = 0) -> str:
        done = subprocess.run(  # noqa: S603 - our own interpreter and entry points
            [sys.executable, *command],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = (done.stdout + done.stderr).strip()
        if done.returncode != expect:
            raise DemoError(
                f"{' '.join(command[:3])} exited {done.returncode}, expected {expect}:\n{output}"
            )
        return output

    def api(self, method: str, path: str, who: str | None = None, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        answer = httpx.request(method, self.url + path, headers=headers, timeout=60, **kw)
        if answer.status_code >= 400:
            raise DemoError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer


def run_demo(
    *, keep: Path | None = None, port: int | None = None, say: Callable[[str], None] = print
) -> int:
    """Run the demo; returns 0 when every step did what it should (else raises DemoError)."""
    folder = keep or Path(tempfile.mkdtemp(prefix="vrs-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    demo = _Demo(folder=folder, say=say, port=port or _free_port())
    demo.env = {
        **os.environ,
        "VRS_ENV": "development",
        "VRS_DATA_DIR": str(folder / "service"),
        "VRS_DATABASE_URL": f"sqlite:///{folder / 'service' / 'vrs.db'}",
        "VRS_VERIFY_HOME": str(folder / "checker"),
        "VRS_SCAN_OUTBOX": str(folder / "tablet" / "outbox.db"),
        "PYTHONUNBUFFERED": "1",
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        _set_up(demo)
        server = _start_service(demo)
        _residents_and_coupons(demo)
        _scan_and_deliver(demo)
        hc1_png = _certificate(demo)
        _verify_offline(demo, hc1_png, expect_valid=True)
        _correct_and_revoke(demo)
        _verify_offline(demo, hc1_png, expect_valid=False)
        where = f"everything is kept in {folder}" if keep else "the temporary folder is removed"
        demo.step(f"Done in {time.monotonic() - demo.started:.1f} s; {where}")
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def _set_up(demo: _Demo) -> None:
    demo.step(f"A fresh service in {demo.folder} (SQLite, development keys)")
    data = demo.folder / "service"
    data.mkdir(parents=True, exist_ok=True)
    (demo.folder / "tablet").mkdir(exist_ok=True)
    now = datetime.now(UTC)
    engine = make_engine(demo.env["VRS_DATABASE_URL"])
    try:
        migrate.upgrade(engine)
        with Session(engine) as session:
            seed_reference_data(session)
            places.add_municipality(
                session, actor=auth.SYSTEM, code=MUNICIPALITY[0], name=MUNICIPALITY[1], now=now
            )
            places.add_site(
                session, actor=auth.SYSTEM, code=SITE[0], name=SITE[1], now=now,
                municipality_code=MUNICIPALITY[0],
            )  # fmt: skip
            expiry = (today_in_japan(now) + timedelta(days=365)).isoformat()
            lots.add_lot(
                session, actor=auth.SYSTEM, lot_number=LOT, product_code=PRODUCT,
                expires_on=expiry, now=now,
            )  # fmt: skip
            for who, role, extra in (
                ("municipality", auth.Role.MUNICIPALITY, {"municipality_code": MUNICIPALITY[0]}),
                ("site", auth.Role.SITE, {"site_code": SITE[0]}),
            ):
                demo.tokens[who] = auth.create_credential(
                    session, actor=auth.SYSTEM, role=role, name=f"demo {who}", now=now, **extra
                ).token
            session.commit()
    finally:
        engine.dispose()
    demo.detail(f"municipality {MUNICIPALITY[0]} {MUNICIPALITY[1]}, site {SITE[0]}, lot {LOT}")
    demo.detail("credentials for the municipality's staff and for one tablet (tokens hashed)")


def _start_service(demo: _Demo) -> subprocess.Popen[bytes]:
    demo.step(f"Starting `vrs serve` on {demo.url}")
    log = (demo.folder / "service.log").open("ab")
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "vrs", "serve", "--port", str(demo.port), "--no-access-log"],
        env=demo.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError(f"vrs serve exited; see {demo.folder / 'service.log'}")
        try:
            if httpx.get(demo.url + "/healthz", timeout=1).status_code == 200:
                demo.detail("the service answers /healthz")
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise DemoError("vrs serve did not answer within 60 s")


def _residents_and_coupons(demo: _Demo) -> None:
    code = MUNICIPALITY[0]
    demo.step("The municipality imports its residents (CSV, all or nothing)")
    header = "local_id,family_name,given_name,family_name_kana,given_name_kana,birth_date,sex,"
    header += "my_number,coupon_number,address,protected"
    rows = [
        f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{'MF'[i % 2]},{_my_number(1001 + i)},,"
        f"東京都千代田区千代田1-{i + 1},false"
        for i, r in enumerate(RESIDENTS)
    ]
    answer = demo.api(
        "POST", f"/v1/municipalities/{code}/residents/import", "municipality",
        content="\n".join([header, *rows]).encode(), headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    demo.detail(f"import: {answer.json()}")
    demo.step("It issues coupon numbers (9 digits + Damm check digit) and prints the tickets")
    issued = demo.api("POST", f"/v1/municipalities/{code}/coupons", "municipality", json={})
    for item in issued.json()["issued"]:
        demo.detail(f"{item['local_id']}: coupon number {item['coupon_number']}")
    for resident in RESIDENTS:
        for dose in (1, 2):
            png = demo.api(
                "POST", f"/v1/municipalities/{code}/coupons/print", "municipality",
                json={"dose": dose, "format": "png", "local_ids": [resident[0]]},
            ).content  # fmt: skip
            (demo.folder / "tablet" / f"{resident[0]}-dose{dose}.png").write_bytes(png)
    demo.detail(f"{len(RESIDENTS) * 2} tickets rendered as PNG (certs.coupon) in tablet/")


def _scan_and_deliver(demo: _Demo) -> None:
    demo.step("The site photographs each ticket (scanner.synth camera effects, own process)")
    tablet = demo.folder / "tablet"
    jobs = []
    for index, resident in enumerate(RESIDENTS):
        for dose in (1, 2):
            stem = tablet / f"{resident[0]}-dose{dose}"
            jobs.append(f"{stem}.png|{stem}-photo|{resident[6]}|{index * 10 + dose}")
        demo.detail(f"{resident[0]}: two camera frames per ticket at level '{resident[6]}'")
    demo.run("-c", _CAMERA, *jobs)
    demo.step("`vrs-scan record` reads each coupon and delivers it through the durable outbox")
    today = today_in_japan(datetime.now(UTC))
    site_env = {"VRS_SCAN_API": demo.url, "VRS_SCAN_TOKEN": demo.tokens["site"]}
    for resident in RESIDENTS:
        for dose, days_ago in ((1, 63), (2, 42)):
            stem = tablet / f"{resident[0]}-dose{dose}"
            output = demo.run(
                "-m", "scanner", "record",
                "--coupon", f"{stem}-photo-0.jpg", "--coupon", f"{stem}-photo-1.jpg",
                "--lot-number", LOT, "--product", PRODUCT, "--site", SITE[0],
                "--date", (today - timedelta(days=days_ago)).isoformat(), "--yes",
                env=site_env,
            )  # fmt: skip
            demo.detail(f"{resident[0]} dose {dose}: {_last_line(output)}")
    status = demo.run("-m", "scanner", "status", env=site_env)
    for line in status.splitlines()[:3]:
        demo.detail("outbox: " + line.strip())


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _certificate(demo: _Demo) -> Path:
    resident = RESIDENTS[0]
    demo.step(f"{resident[1]} {resident[2]} signs in with a development My Number card")
    now = datetime.now(UTC)
    issuer = dev_issuer(demo.folder / "service", production=False, now=now)
    card = make_card(
        issuer,
        my_number=_my_number(1001),
        name=f"{resident[1]} {resident[2]}",
        birth_date=date.fromisoformat(resident[5]),
        now=now,
    )
    card.save(demo.folder / "card.json")
    challenge = demo.api("POST", "/v1/auth/challenge").json()["challenge"]
    session = demo.api("POST", "/v1/auth/card", json=card.answer(challenge)).json()
    demo.tokens["resident"] = session["token"]
    me = demo.api("GET", "/v1/me", "resident").json()
    for dose in me["doses"]:
        demo.detail(f"dose {dose['dose_number']}: {dose['vaccinated_on']} {dose['product_name']}")
    demo.step("The resident gets an overseas certificate (passport spelling from the kana)")
    demo.detail(f"suggested spelling: {me['suggested_family']} {me['suggested_given']}")
    cert = demo.api(
        "POST", "/v1/certificates", "resident",
        json={"kind": "overseas",
              "passport_name": {"family": me["suggested_family"], "given": me["suggested_given"]}},
    ).json()  # fmt: skip
    png = demo.api("GET", cert["qr_png"], "resident").content
    path = demo.folder / "certificate-qr.png"
    path.write_bytes(png)
    demo.detail(f"UVCI {cert['uvci']}, expires {cert['expires_at']}; QR saved to {path.name}")
    return path


def _verify_offline(demo: _Demo, png: Path, *, expect_valid: bool) -> None:
    again = "again " if not expect_valid else ""
    demo.step(
        f"The checker syncs the signed trust bundle {again}(`vrs-verify sync`), then works offline"
    )
    pin = demo.folder / "bundle-key.pem"
    pin.write_bytes(demo.api("GET", "/v1/trust/bundle-key").content)
    synced = demo.run(
        "-m", "verifier.cli", "sync", "--url", demo.url + "/v1/trust/bundle", "--pin", str(pin)
    )
    demo.detail(_last_line(synced))
    verdict = "VALID" if expect_valid else "INVALID (revoked)"
    demo.step(f"`vrs-verify check` reads the QR image offline: expected {verdict}")
    expect = 0 if expect_valid else 1
    output = demo.run("-m", "verifier.cli", "check", str(png), "--mode", "border:DE", expect=expect)
    demo.detail(_last_line(output))


def _correct_and_revoke(demo: _Demo) -> None:
    code = MUNICIPALITY[0]
    demo.step("The municipality corrects the resident's dose 2 (its date was mis-keyed)")
    card_holder = RESIDENTS[0][0]
    resident = demo.api(
        "GET", f"/v1/municipalities/{code}/residents/{card_holder}", "municipality"
    ).json()
    records = demo.api(
        "GET",
        "/v1/dose-records",
        "municipality",
        params={"coupon": resident["coupon_number"], "municipality": code},
    ).json()["records"]
    second = next(r for r in records if r["dose_number"] == 2)
    changed = demo.api(
        "POST", f"/v1/municipalities/{code}/dose-records/{second['id']}/corrections",
        "municipality",
        json={"version": second["version"], "reason": "date re-read from the paper form",
              "changes": {"vaccinated_on": (date.fromisoformat(second["vaccinated_on"])
                                            + timedelta(days=1)).isoformat()}},
    ).json()  # fmt: skip
    demo.detail(
        f"record now version {changed['record']['version']}; "
        f"{changed['revoked_certificates']} certificate(s) revoked and listed in the trust bundle"
    )
