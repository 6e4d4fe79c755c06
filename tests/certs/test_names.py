"""Names: ICAO 9303 form of a passport spelling; passport-Hepburn suggestions from kana."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certs import HolderName, PayloadError, TransliterationError, hepburn_from_kana, icao_name

# Every rule of DOMAIN.md with its examples, plus the ordinary cases around it.
HEPBURN = [
    # ん is M before B, M, P
    ("なんば", "NAMBA"),
    ("ほんま", "HOMMA"),
    ("さんぺい", "SAMPEI"),
    ("かんの", "KANNO"),
    ("しんいち", "SHINICHI"),
    ("けん", "KEN"),
    # っ doubles the next consonant, T before CH
    ("はっとり", "HATTORI"),
    ("ほっち", "HOTCHI"),
    ("いっしき", "ISSHIKI"),
    ("きっかわ", "KIKKAWA"),
    # long vowels are not written
    ("おおた", "OTA"),
    ("さいとう", "SAITO"),
    ("ようこ", "YOKO"),
    ("ゆうこ", "YUKO"),
    ("しゅうへい", "SHUHEI"),
    ("きょうこ", "KYOKO"),
    ("おおの", "ONO"),
    # ... but ei, ii, aa are written
    ("けいこ", "KEIKO"),
    ("にいがた", "NIIGATA"),
    # し SHI, ち CHI, つ TSU, ふ FU, じ JI (and ぢ JI, づ ZU)
    ("しげる", "SHIGERU"),
    ("ちあき", "CHIAKI"),
    ("まつもと", "MATSUMOTO"),
    ("ふじた", "FUJITA"),
    ("じろう", "JIRO"),
    ("ちぢわ", "CHIJIWA"),
    ("つづき", "TSUZUKI"),
    # yōon
    ("しょうた", "SHOTA"),
    ("ちゃこ", "CHAKO"),
    ("りょう", "RYO"),
    ("じゅん", "JUN"),
    # katakana, half-width katakana, long mark, spaces
    ("サイトウ", "SAITO"),
    ("ｻﾄｳ", "SATO"),
    ("ジョージ", "JOJI"),
    ("やまだ　はなこ", "YAMADA<HANAKO"),
    ("", ""),
]


@pytest.mark.parametrize(("kana", "expected"), HEPBURN)
def test_hepburn_suggestions_follow_the_passport_rules(kana: str, expected: str) -> None:
    assert hepburn_from_kana(kana) == expected


@pytest.mark.parametrize("text", ["山田", "Yamada", "やまだ1", "😀"])
def test_a_hepburn_suggestion_needs_kana(text: str) -> None:
    with pytest.raises(TransliterationError) as caught:
        hepburn_from_kana(text)
    assert caught.value.code == "NOT_KANA"


ICAO = [
    ("Sato", "SATO"),
    ("  yamada  ", "YAMADA"),
    ("Anne-Marie", "ANNE<MARIE"),
    ("Jiřina-Maria Alena", "JIRINA<MARIA<ALENA"),
    ("d'Červenková Panklová", "DCERVENKOVA<PANKLOVA"),
    ("Müller", "MUELLER"),
    ("Øster Ærø", "OESTER<AEROE"),
    ("Strauß", "STRAUSS"),
    ("Ōta", "OTA"),
    ("ＳＡＴＯ", "SATO"),
    ("O'Brien Jr.", "OBRIEN<JR"),
    ("van  der   Berg", "VAN<DER<BERG"),
    ("", ""),
]


@pytest.mark.parametrize(("spelling", "expected"), ICAO)
def test_passport_spellings_in_icao_form(spelling: str, expected: str) -> None:
    assert icao_name(spelling) == expected


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("山田", "NAME_NOT_LATIN"),
        ("SATO2", "NAME_NOT_LATIN"),
        ("SATO!", "NAME_NOT_LATIN"),
        ("A" * 81, "NAME_TOO_LONG"),
        ("A" * 201, "NAME_TOO_LONG"),
        (None, "BAD_NAME"),
        (b"SATO", "BAD_NAME"),
    ],
)
def test_bad_passport_spellings_are_refused(spelling: Any, code: str) -> None:
    with pytest.raises(TransliterationError) as caught:
        icao_name(spelling)
    assert caught.value.code == code


@given(st.text(max_size=250))
def test_any_text_gives_icao_or_a_transliteration_error(text: str) -> None:
    for function in (icao_name, hepburn_from_kana):
        try:
            result = function(text)
        except TransliterationError:
            continue
        assert all(ch == "<" or "A" <= ch <= "Z" for ch in result)
        assert len(result) <= 80


def test_a_holder_name_from_the_passport() -> None:
    name = HolderName.from_passport("大田", "陽子", passport_family="Ohta", passport_given="Yoko")
    assert name.to_json() == {"fn": "大田", "fnt": "OHTA", "gn": "陽子", "gnt": "YOKO"}


def test_a_holder_name_suggested_from_kana() -> None:
    name = HolderName.suggest_from_kana("服部", "", family_kana="ハットリ", given_kana="")
    assert name.to_json() == {"fn": "服部", "fnt": "HATTORI"}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("", "太郎", "YAMADA", "TARO"), "BAD_NAME"),
        (("山田", "太郎", "", "TARO"), "BAD_ICAO_NAME"),
        (("山田", "太郎", "yamada", "TARO"), "BAD_ICAO_NAME"),
        (("山田", "太郎", "YAMADA", ""), "BAD_ICAO_NAME"),
        (("山田", "", "YAMADA", "TARO"), "BAD_ICAO_NAME"),
        (("山" * 81, "", "YAMADA", ""), "NAME_TOO_LONG"),
        (("山\n田", "", "YAMADA", ""), "BAD_NAME"),
        (("山\x00田", "", "YAMADA", ""), "BAD_NAME"),
        (("山田", "", "Y" * 81, ""), "NAME_TOO_LONG"),
    ],
)
def test_bad_holder_names_are_refused(args: tuple[Any, ...], code: str) -> None:
    with pytest.raises(PayloadError) as caught:
        HolderName(*args)
    assert caught.value.code == code


def test_a_passport_name_that_is_not_latin_is_a_payload_error() -> None:
    with pytest.raises(PayloadError) as caught:
        HolderName.from_passport("山田", "", passport_family="山田", passport_given="")
    assert caught.value.code == "NAME_NOT_LATIN"
