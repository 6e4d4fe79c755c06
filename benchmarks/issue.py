"""Certificate issuance: HC1 issuance, its stages, ECDSA, QR PNG/SVG, PDF, and the libraries
they are compared with (pycose, segno, qrcode). No database, no server.

    .venv/bin/python benchmarks/issue.py [--rounds N] [--hsm]

Prints the median (and p90) of each operation in microseconds, with the load average before
and after, because the machine may be shared. ``--hsm`` adds signing through SoftHSM2
(needs ``apt-get install softhsm2``).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import cbor2
import qrcode
import segno
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.algorithms import Es256
from pycose.headers import KID, Algorithm
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message

from certs import issue
from certs.pdf import certificate_pdf
from certs.qr import qr_matrix, qr_png, qr_svg
from certs.testing import TEST_NOW, make_test_signer, sample_name, sample_vaccination
from certs.wire import b45encode, hc1_encode, zlib_compress
from keys import FileKeyStore, KeyRing


def measure(name: str, action: Callable[[], object], rounds: int) -> tuple[str, float, float]:
    for _ in range(max(3, rounds // 20)):
        action()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        action()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    return name, statistics.median(samples) / 1000, samples[int(len(samples) * 0.9)] / 1000


def _pycose(
    signer_key: ec.EllipticCurvePrivateKey, payload: bytes
) -> tuple[Callable[[], object], Callable[[], object]]:
    numbers = signer_key.private_numbers()
    public = numbers.public_numbers
    key = EC2Key(
        crv=P256,
        x=public.x.to_bytes(32, "big"),
        y=public.y.to_bytes(32, "big"),
        d=numbers.private_value.to_bytes(32, "big"),
    )

    def sign() -> bytes:
        message = Sign1Message(phdr={Algorithm: Es256, KID: b"12345678"}, payload=payload)
        message.key = key
        return bytes(message.encode())

    encoded = sign()

    def verify() -> bool:
        message = Sign1Message.decode(encoded)
        message.key = key
        return bool(message.verify_signature())

    return sign, verify


def _hsm_signer(folder: Path):  # type: ignore[no-untyped-def]
    from keys import Pkcs11KeyStore, find_softhsm_module

    module = find_softhsm_module()
    tool = shutil.which("softhsm2-util")
    if module is None or tool is None:
        raise SystemExit("--hsm needs SoftHSM2 (apt-get install softhsm2)")
    (folder / "tokens").mkdir(parents=True)
    config = folder / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(config)
    subprocess.run(  # noqa: S603 - fixed arguments
        [tool, "--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "5678"],
        check=True,
        capture_output=True,
    )
    store = Pkcs11KeyStore(module, "bench", "1234")
    return KeyRing.init(folder / "ring", store, now=TEST_NOW).signer()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--hsm", action="store_true", help="also sign through SoftHSM2")
    args = parser.parse_args()
    rounds = args.rounds
    load_before = os.getloadavg()

    signer = make_test_signer()
    name, vaccination, dob = sample_name(), sample_vaccination(), date(1980, 4, 1)
    issued = issue(name, dob, vaccination, signer=signer, now=TEST_NOW)
    hc1 = issued.hc1
    raw_key = ec.generate_private_key(ec.SECP256R1())
    claims = cbor2.loads(issued.cose).value[2]
    compressed = zlib_compress(issued.cose)
    pycose_sign, pycose_verify = _pycose(raw_key, claims)

    with tempfile.TemporaryDirectory() as folder:
        ring = KeyRing.init(
            Path(folder) / "ring",
            FileKeyStore(Path(folder) / "private", b"benchmark-passphrase-000"),
            now=TEST_NOW,
        )
        file_signer = ring.signer()
        hsm_signer = _hsm_signer(Path(folder) / "hsm") if args.hsm else None

        def issue_with(chosen: object) -> Callable[[], object]:
            return lambda: issue(name, dob, vaccination, signer=chosen, now=TEST_NOW)  # type: ignore[arg-type]

        heavy = max(50, rounds // 30)
        rows = [
            measure("HC1 issuance (certs.issue, in-memory key)", issue_with(signer), rounds),
            measure(
                "HC1 issuance (certs.issue, key ring, file store)", issue_with(file_signer), rounds
            ),
            measure(
                "ECDSA P-256 sign (cryptography, DER)",
                lambda: raw_key.sign(claims, ec.ECDSA(hashes.SHA256())),
                rounds,
            ),
            measure("CBOR of the CWT claims (cbor2)", lambda: cbor2.dumps(issued.payload), rounds),
            measure("zlib (certs.wire, level 9)", lambda: zlib_compress(issued.cose), rounds),
            measure("base45 (certs.wire)", lambda: b45encode(compressed), rounds),
            measure("zlib + base45 + prefix (hc1_encode)", lambda: hc1_encode(issued.cose), rounds),
            measure("pycose sign (pure-Python ecdsa)", pycose_sign, heavy),
            measure("pycose verify", pycose_verify, heavy),
            measure("QR matrix (zxing-cpp)", lambda: qr_matrix(hc1), heavy),
            measure("QR PNG (certs.qr_png, scale 4)", lambda: qr_png(hc1), heavy),
            measure("QR SVG (certs.qr_svg)", lambda: qr_svg(hc1), heavy),
            measure(
                "QR PNG (segno, alphanumeric, Q)",
                lambda: segno.make(hc1, mode="alphanumeric", error="Q", boost_error=False).save(
                    io.BytesIO(), kind="png", scale=4
                ),
                max(20, heavy // 5),
            ),
            measure(
                "QR PNG (qrcode, Q)",
                lambda: qrcode.make(hc1, error_correction=qrcode.constants.ERROR_CORRECT_Q).save(
                    io.BytesIO()
                ),
                max(20, heavy // 5),
            ),
            measure(
                "PDF certificate (certs.certificate_pdf)",
                lambda: certificate_pdf(
                    hc1=hc1,
                    payload=issued.payload,
                    issued_at=issued.issued_at,
                    expires_at=issued.expires_at,
                ),
                max(20, heavy // 3),
            ),
        ]
        if hsm_signer is not None:
            rows.append(
                measure("HC1 issuance (SoftHSM2 via PKCS#11)", issue_with(hsm_signer), heavy)
            )
            rows.append(measure("ECDSA sign in SoftHSM2", lambda: hsm_signer.sign(claims), heavy))

    load_after = os.getloadavg()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"HC1 length {len(hc1)} characters, COSE {len(issued.cose)} bytes")
    print(f"{'operation':<52} {'median µs':>10} {'p90 µs':>10}")
    for label, median, p90 in rows:
        print(f"{label:<52} {median:>10.1f} {p90:>10.1f}")


if __name__ == "__main__":
    main()
