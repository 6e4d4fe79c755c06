"""Regenerate tests/verifier/fuzz_corpus/: hostile inputs made from our own test certificates.

    .venv/bin/python -m tests.verifier.make_fuzz_corpus

Every file is an input to ``verifier.decode`` (text as .txt, bytes as .bin); its name says what it
is. Mutations use a fixed seed, but the test signer's key is fresh on each run, so regenerating
rewrites the signed files: the committed files are the corpus the tests read.
"""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2

from certs import wire
from verifier.testing import make_signer, sample_vaccination, sign_cose

CORPUS = Path(__file__).parent / "fuzz_corpus"
NOW = datetime(2021, 9, 1, tzinfo=UTC)


def _deep_array(depth: int) -> bytes:
    return b"\x81" * depth + b"\x00"


def _deep_map(depth: int) -> bytes:
    return b"\xa1\x01" * depth + b"\x00"


def corpus() -> dict[str, bytes | str]:
    rng = random.Random(20211123)
    signer = make_signer()
    cose = sign_cose(signer, sample_vaccination(), issued_at=NOW, expires=NOW + timedelta(days=365))
    hc1 = wire.hc1_encode(cose)
    bomb = zlib.compress(b"\x00" * (4 * 1024 * 1024), 9)  # fits a QR code
    sign1 = wire.parse_sign1(cose)
    items: dict[str, bytes | str] = {
        "truncated-half.txt": hc1[: len(hc1) // 2],
        "truncated-one-char.txt": hc1[:-1],
        "prefix-lowercase.txt": "hc1:" + hc1[4:],
        "prefix-only.txt": "HC1:",
        "base45-bad-char.txt": hc1[:20] + "~" + hc1[21:],
        "base45-group-overflow.txt": "HC1:" + "ZZZ" * 10,
        "zlib-bomb-4MiB.txt": wire.HC1_PREFIX + wire.b45encode(bomb),
        "zlib-garbage.txt": wire.HC1_PREFIX + wire.b45encode(b"\x78\x9c" + bytes(40)),
        "zlib-trailing.txt": wire.HC1_PREFIX + wire.b45encode(zlib.compress(cose) + b"xx"),
        "cose-deep-array.txt": wire.hc1_encode(_deep_array(5000)),
        "cose-deep-map.txt": wire.hc1_encode(_deep_map(5000)),
        "cose-huge-declared-string.bin": b"\xd2\x84\x5b\xff\xff\xff\xff\xff\xff\xff\xff",
        "cose-huge-declared-array.bin": b"\xd2\x9b\x00\x00\x00\xff\xff\xff\xff\xff",
        "cose-wrong-tag.bin": cbor2.dumps(cbor2.CBORTag(98, [b"", {}, b"", b""])),
        "cose-61-without-18.bin": cbor2.dumps(cbor2.CBORTag(61, [b"", {}, b"", b""])),
        "cose-three-items.bin": cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b""])),
        "cose-detached.bin": cbor2.dumps(cbor2.CBORTag(18, [b"", {}, None, b""])),
        "payload-deep.bin": wire.encode_sign1(
            {1: -7, 4: signer.kid}, {}, _deep_array(3000), sign1.signature
        ),
        "payload-not-a-map.bin": wire.encode_sign1(
            {1: -7, 4: signer.kid}, {}, cbor2.dumps([1, 2]), sign1.signature
        ),
        "protected-not-a-map.bin": cbor2.dumps(
            cbor2.CBORTag(18, [cbor2.dumps([1]), {}, sign1.payload, sign1.signature])
        ),
        "kid-not-bytes.bin": wire.encode_sign1({1: -7, 4: "kid"}, {}, sign1.payload, b"x"),
        "alg-not-int.bin": wire.encode_sign1({1: "ES256", 4: signer.kid}, {}, sign1.payload, b"x"),
        "signature-short.bin": wire.encode_sign1(
            {1: -7, 4: signer.kid}, {}, sign1.payload, sign1.signature[:10]
        ),
        "indefinite-nesting.bin": b"\x9f" * 2000 + b"\xff" * 2000,
        "empty.bin": b"",
        # a PNG whose header declares 65,536 x 65,536 pixels
        "png-header-huge.bin": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        + (65536).to_bytes(4, "big") * 2
        + bytes(20),
        "png-garbage.bin": b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(200)),
        "jpeg-garbage.bin": b"\xff\xd8\xff" + bytes(rng.randrange(256) for _ in range(200)),
    }
    for n in range(6):
        data = bytearray(hc1.encode())
        for _ in range(rng.randrange(1, 6)):
            position = rng.randrange(4, len(data))
            data[position] = ord(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"))
        items[f"mutated-hc1-{n}.txt"] = data.decode()
    for n in range(4):
        items[f"random-bytes-{n}.bin"] = bytes(
            rng.randrange(256) for _ in range(rng.randrange(1, 600))
        )
    for n in range(4):
        data = bytearray(cose)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        items[f"mutated-cose-{n}.bin"] = bytes(data)
    return items


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.glob("*.*"):
        if old.suffix in (".txt", ".bin"):
            old.unlink()
    for name, content in corpus().items():
        path = CORPUS / name
        if isinstance(content, str):
            path.write_text(content, encoding="ascii")
        else:
            path.write_bytes(content)


if __name__ == "__main__":
    main()
