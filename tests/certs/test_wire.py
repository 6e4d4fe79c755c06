"""Wire-format helpers: base45, capped zlib, the CBOR pre-scan, COSE_Sign1, revocation hashes."""

from __future__ import annotations

import contextlib
import hashlib
import zlib

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from certs import wire
from certs.wire import WireError

# RFC 9285 section 4.3 examples.
RFC_VECTORS = [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581")]


@pytest.mark.parametrize(("raw", "text"), RFC_VECTORS)
def test_base45_matches_the_rfc_examples(raw: bytes, text: str) -> None:
    assert wire.b45encode(raw) == text
    assert wire.b45decode(text) == raw


def test_base45_decodes_the_rfc_decoding_example() -> None:
    assert wire.b45decode("QED8WEX0") == b"ietf!"


@given(st.binary(max_size=600))
def test_base45_round_trips(data: bytes) -> None:
    text = wire.b45encode(data)
    assert len(text) == (len(data) // 2) * 3 + (len(data) % 2) * 2
    assert wire.b45decode(text) == data


@pytest.mark.parametrize(
    "bad",
    ["GGW", "A", "ABCD", "ab", "BB8=", "\u00e9\u00e9\u00e9", "::", "BB8\n"],
    ids=["group>65535", "one", "dangling", "lowercase", "padding", "non-ascii", "pair>255", "nl"],
)
def test_base45_refuses_invalid_text(bad: str) -> None:
    with pytest.raises(WireError) as caught:
        wire.b45decode(bad)
    assert caught.value.code == "BASE45_INVALID"


def test_base45_refuses_bytes_input() -> None:
    with pytest.raises(WireError):
        wire.b45decode(b"BB8")  # type: ignore[arg-type]


def test_zlib_round_trips_and_caps_the_output() -> None:
    data = b"vaccination " * 100
    assert wire.zlib_decompress(wire.zlib_compress(data)) == data
    assert wire.zlib_decompress(wire.zlib_compress(data), max_output=len(data)) == data
    with pytest.raises(WireError) as caught:
        wire.zlib_decompress(wire.zlib_compress(data), max_output=len(data) - 1)
    assert caught.value.code == "COMPRESSION_BOMB"


def test_a_compression_bomb_is_refused_without_inflating_it() -> None:
    bomb = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MiB of zeros in ~64 kB
    with pytest.raises(WireError) as caught:
        wire.zlib_decompress(bomb)
    assert caught.value.code == "COMPRESSION_BOMB"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not zlib at all", "ZLIB_INVALID"),
        (zlib.compress(b"hello world" * 10)[:-6], "ZLIB_TRUNCATED"),
        (zlib.compress(b"hello") + b"junk", "ZLIB_INVALID"),
        (b"", "ZLIB_TRUNCATED"),
    ],
)
def test_zlib_refuses_bad_streams(data: bytes, code: str) -> None:
    with pytest.raises(WireError) as caught:
        wire.zlib_decompress(data)
    assert caught.value.code == code


def test_cbor_pre_scan_accepts_what_cbor2_writes() -> None:
    value = {1: "JP", 4: 1_700_000_000, -260: {1: {"v": [{"dn": 1, "sd": 2}], "ver": "1.3.0"}}}
    data = cbor2.dumps(value)
    wire.cbor_check(data)
    assert wire.cbor_loads(data) == value


def test_cbor_pre_scan_accepts_indefinite_items() -> None:
    # [_ "a", {_ "k": (_ h'01', h'02')}, 1.5, true, null]
    data = bytes.fromhex("9f61 61bf 616b 5f41 0141 02ff ff f93e00 f5 f6 ff".replace(" ", ""))
    wire.cbor_check(data)
    assert wire.cbor_loads(data) == ["a", {"k": b"\x01\x02"}, 1.5, True, None]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x81" * 5000 + b"\x00", "CBOR_TOO_DEEP"),
        (b"\xd8\x12" * 5000 + b"\x00", "CBOR_TOO_DEEP"),
        (b"\x9f" * 5000, "CBOR_TOO_DEEP"),
        (b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00", "CBOR_TRUNCATED"),
        (b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00", "CBOR_TOO_LARGE"),
        (b"\x82\x01", "CBOR_TRUNCATED"),
        (b"\x01\x02", "CBOR_TRAILING"),
        (b"\xff", "CBOR_MALFORMED"),
        (b"\x1c", "CBOR_MALFORMED"),
        (b"\x5f\x61\x61\xff", "CBOR_MALFORMED"),
        (b"", "CBOR_TRUNCATED"),
    ],
    ids=[
        "deep-array",
        "deep-tags",
        "deep-indefinite",
        "huge-string",
        "huge-array",
        "short-array",
        "trailing",
        "stray-break",
        "reserved-info",
        "mixed-chunks",
        "empty",
    ],
)
def test_cbor_pre_scan_refuses_hostile_input(data: bytes, code: str) -> None:
    with pytest.raises(WireError) as caught:
        wire.cbor_loads(data)
    assert caught.value.code == code


def test_cbor_pre_scan_counts_items() -> None:
    data = cbor2.dumps(list(range(200)))
    with pytest.raises(WireError) as caught:
        wire.cbor_check(data, max_items=100)
    assert caught.value.code == "CBOR_TOO_LARGE"
    with pytest.raises(WireError):
        wire.cbor_check(data, max_bytes=10)


@given(st.binary(max_size=200))
def test_cbor_loads_never_raises_anything_but_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.cbor_loads(data)


def _signed(tagging: str = "18") -> tuple[bytes, ec.EllipticCurvePublicKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    kid = b"12345678"
    header = {wire.HEADER_ALG: wire.ALG_ES256, wire.HEADER_KID: kid}
    payload = cbor2.dumps({wire.CWT_ISS: "JP"})
    to_sign = wire.sig_structure(wire.protected_bytes(header), payload)
    signature = wire.es256_der_to_raw(key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
    data = wire.encode_sign1(header, {}, payload, signature)
    if tagging == "61+18":
        data = b"\xd8\x3d" + data
    elif tagging == "untagged":
        data = data[1:]  # drop the one-byte tag 18 head (0xd2)
    return data, key.public_key(), kid


@pytest.mark.parametrize("tagging", ["18", "61+18", "untagged"])
def test_sign1_round_trips_in_every_tagging(tagging: str) -> None:
    data, public, kid = _signed(tagging)
    sign1 = wire.parse_sign1(data)
    assert sign1.tagging == tagging
    assert wire.header_kid(sign1) == kid
    assert wire.header_alg(sign1) == wire.ALG_ES256
    assert cbor2.loads(sign1.payload) == {1: "JP"}
    der = wire.es256_raw_to_der(sign1.signature)
    signed = wire.sig_structure(sign1.protected, sign1.payload)
    public.verify(der, signed, ec.ECDSA(hashes.SHA256()))


def test_a_changed_payload_fails_the_signature() -> None:
    data, public, _ = _signed()
    sign1 = wire.parse_sign1(data)
    der = wire.es256_raw_to_der(sign1.signature)
    with pytest.raises(InvalidSignature):
        public.verify(der, wire.sig_structure(sign1.protected, b"other"), ec.ECDSA(hashes.SHA256()))


def test_kid_falls_back_to_the_unprotected_header() -> None:
    data = wire.encode_sign1({wire.HEADER_ALG: wire.ALG_ES256}, {4: b"abcdefgh"}, b"p", b"s" * 64)
    sign1 = wire.parse_sign1(data)
    assert wire.header_kid(sign1) == b"abcdefgh"
    assert wire.header_kid(wire.parse_sign1(wire.encode_sign1({}, {}, b"p", b"s"))) is None


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (cbor2.CBORTag(17, [b"", {}, b"", b""]), "COSE_TAG"),
        (cbor2.CBORTag(61, [b"", {}, b"", b""]), "COSE_TAG"),
        ([b"", {}, b""], "COSE_STRUCTURE"),
        (["", {}, b"", b""], "COSE_STRUCTURE"),
        ([b"", [], b"", b""], "COSE_STRUCTURE"),
        ([b"", {}, None, b""], "COSE_STRUCTURE"),
        ([b"", {}, "x", b""], "COSE_STRUCTURE"),
        ([b"", {}, b"", 5], "COSE_STRUCTURE"),
        ([cbor2.dumps([1]), {}, b"", b""], "COSE_HEADER"),
        ([b"\xff", {}, b"", b""], "CBOR_MALFORMED"),
        ({"not": "cose"}, "COSE_STRUCTURE"),
    ],
)
def test_malformed_sign1_is_refused_with_a_code(item: object, code: str) -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_sign1(cbor2.dumps(item))
    assert caught.value.code == code


def test_non_bytes_headers_are_refused() -> None:
    sign1 = wire.parse_sign1(wire.encode_sign1({1: "ES256", 4: "kid"}, {}, b"", b""))
    with pytest.raises(WireError):
        wire.header_kid(sign1)
    with pytest.raises(WireError):
        wire.header_alg(sign1)


def test_hc1_round_trip_and_prefix() -> None:
    data, _, _ = _signed()
    text = wire.hc1_encode(data)
    assert text.startswith("HC1:")
    assert wire.zlib_decompress(wire.b45decode(wire.hc1_strip(text))) == data
    for bad in ["HC2:ABC", "hc1:ABC", "", "ABC"]:
        with pytest.raises(WireError) as caught:
            wire.hc1_strip(bad)
        assert caught.value.code == "PREFIX_INVALID"


def test_revocation_hashes_follow_the_eu_definitions() -> None:
    signature = bytes(range(64))
    assert wire.signature_hash(signature) == hashlib.sha256(signature[:32]).digest()[:16]
    rsa = b"x" * 256
    assert wire.signature_hash(rsa, wire.ALG_PS256) == hashlib.sha256(rsa).digest()[:16]
    uvci = "URN:UVCI:01:JP:ABC123#X"
    assert wire.uci_hash(uvci) == hashlib.sha256(uvci.encode()).digest()[:16]
    expected = hashlib.sha256(b"JP" + uvci.encode()).digest()[:16]
    assert wire.countrycode_uci_hash("JP", uvci) == expected
    with pytest.raises(WireError):
        wire.signature_hash(b"short")


def test_es256_signature_forms_refuse_bad_input() -> None:
    for bad in [b"", b"x" * 63, b"x" * 65]:
        with pytest.raises(WireError):
            wire.es256_raw_to_der(bad)
    with pytest.raises(WireError):
        wire.es256_der_to_raw(b"not der")
