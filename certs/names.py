"""Names on a certificate: the ICAO 9303 form of a passport spelling, and a Hepburn suggestion.

``fn``/``gn`` carry the name as registered (kanji); ``fnt``/``gnt`` carry the ICAO 9303
machine-readable form ``^[A-Z<]*$``. For travel that form must match the passport, so the
resident supplies the Roman spelling and :func:`icao_name` only normalises it. For a resident
who has none, :func:`hepburn_from_kana` *suggests* one from the registered kana by the passport
Hepburn rules (外務省ヘボン式): ん is M before B, M, P; っ doubles the next consonant (T before
CH); long vowels OU, OO and UU are not written; し SHI, ち CHI, つ TSU, ふ FU, じ/ぢ JI.
"""

from __future__ import annotations

import re
import unicodedata

from certs.errors import TransliterationError

#: Longest ``fnt``/``gnt`` (the schema's ``maxLength``).
MAX_ICAO_LENGTH = 80
#: Longest input either function looks at (anything longer is refused before any work).
MAX_INPUT_LENGTH = 200

_ICAO = re.compile(r"^[A-Z<]*$")
# ICAO 9303 part 3 transliterations of Latin letters that are not simply an accented letter.
_LATIN_SPECIAL = {
    "Ä": "AE",
    "Ö": "OE",
    "Ü": "UE",
    "ß": "SS",
    "ẞ": "SS",
    "Æ": "AE",
    "Ø": "OE",
    "Å": "AA",
    "Œ": "OE",
    "Þ": "TH",
    "Ð": "D",
    "Đ": "D",
    "Ħ": "H",
    "Ĳ": "IJ",
    "Ł": "L",
    "Ŀ": "L",
    "Ŋ": "N",
    "Ŧ": "T",
}
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—]+")
_DROPPED = re.compile(r"[.'’‘`,]")


def _check_input(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise TransliterationError("BAD_NAME", f"{what} must be text")
    if len(text) > MAX_INPUT_LENGTH:
        raise TransliterationError(
            "NAME_TOO_LONG", f"{what} is longer than {MAX_INPUT_LENGTH} characters"
        )
    return text


def _finish(result: str, what: str) -> str:
    result = re.sub(r"<+", "<", result).strip("<")
    if not _ICAO.fullmatch(result):
        raise TransliterationError(
            "NAME_NOT_LATIN", f"{what} has characters with no ICAO 9303 form"
        )
    if len(result) > MAX_ICAO_LENGTH:
        raise TransliterationError(
            "NAME_TOO_LONG", f"{what} is longer than {MAX_ICAO_LENGTH} characters in ICAO form"
        )
    return result


def icao_name(spelling: str) -> str:
    """The ICAO 9303 form of a Latin (passport) spelling: ``"Ōta-Sato"`` → ``"OTA<SATO"``.

    Upper case; full-width letters folded; ß, Æ, Ø, Ä… by the ICAO table, other accents
    dropped; spaces and hyphens become ``<``; apostrophes and full stops vanish. Anything
    else (kanji, kana, digits) is ``NAME_NOT_LATIN``.
    """
    text = unicodedata.normalize("NFKC", _check_input(spelling, "the name")).strip()
    text = _DROPPED.sub("", text)
    text = _SEPARATORS.sub("<", text)
    text = "".join(_LATIN_SPECIAL.get(ch, ch) for ch in text.upper())
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    text = "".join(_LATIN_SPECIAL.get(ch, ch) for ch in text.upper())
    return _finish(text, "the name")


# --- kana → passport Hepburn ----------------------------------------------------------------

_MORAE = {
    **dict(zip("あいうえお", ["A", "I", "U", "E", "O"], strict=True)),
    **dict(zip("かきくけこ", ["KA", "KI", "KU", "KE", "KO"], strict=True)),
    **dict(zip("さしすせそ", ["SA", "SHI", "SU", "SE", "SO"], strict=True)),
    **dict(zip("たちつてと", ["TA", "CHI", "TSU", "TE", "TO"], strict=True)),
    **dict(zip("なにぬねの", ["NA", "NI", "NU", "NE", "NO"], strict=True)),
    **dict(zip("はひふへほ", ["HA", "HI", "FU", "HE", "HO"], strict=True)),
    **dict(zip("まみむめも", ["MA", "MI", "MU", "ME", "MO"], strict=True)),
    **dict(zip("やゆよ", ["YA", "YU", "YO"], strict=True)),
    **dict(zip("らりるれろ", ["RA", "RI", "RU", "RE", "RO"], strict=True)),
    **dict(zip("わゐゑを", ["WA", "I", "E", "O"], strict=True)),
    **dict(zip("がぎぐげご", ["GA", "GI", "GU", "GE", "GO"], strict=True)),
    **dict(zip("ざじずぜぞ", ["ZA", "JI", "ZU", "ZE", "ZO"], strict=True)),
    **dict(zip("だぢづでど", ["DA", "JI", "ZU", "DE", "DO"], strict=True)),
    **dict(zip("ばびぶべぼ", ["BA", "BI", "BU", "BE", "BO"], strict=True)),
    **dict(zip("ぱぴぷぺぽ", ["PA", "PI", "PU", "PE", "PO"], strict=True)),
    # Sounds outside the passport table are written kana by kana (ヴ as BU, ファ as FUA),
    # as the passport office does; small kana standing alone read as their full size.
    "ゔ": "BU",
    **dict(
        zip("ぁぃぅぇぉゃゅょゎ", ["A", "I", "U", "E", "O", "YA", "YU", "YO", "WA"], strict=True)
    ),
}
_YOON_BASE = {
    "き": "K",
    "し": "SH",
    "ち": "CH",
    "に": "N",
    "ひ": "H",
    "み": "M",
    "り": "R",
    "ぎ": "G",
    "じ": "J",
    "ぢ": "J",
    "び": "B",
    "ぴ": "P",
}
_YOON_VOWEL = {"ゃ": "A", "ゅ": "U", "ょ": "O"}
_NEEDS_Y = {"K", "N", "H", "M", "R", "G", "B", "P"}  # KYA, but SHA, CHA, JA
_SOKUON = "っ"
_N = "ん"
_LONG_MARK = "ー"
_WORD_BREAKS = {" ", "　", "・", "=", "＝"}


def _to_hiragana(text: str) -> str:
    out = []
    for ch in unicodedata.normalize("NFKC", text):
        code = ord(ch)
        if 0x30A1 <= code <= 0x30F6:  # katakana ァ..ヶ → hiragana ぁ..ゖ
            ch = chr(code - 0x60)
        out.append(ch)
    return "".join(out)


def _morae(text: str) -> list[str]:
    """Split hiragana into morae: yōon pairs, single kana, っ, ん, ー and word breaks."""
    morae: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        nxt = text[index + 1] if index + 1 < len(text) else ""
        if ch in _YOON_BASE and nxt in _YOON_VOWEL:
            morae.append(ch + nxt)
            index += 2
            continue
        if ch in _MORAE or ch in (_SOKUON, _N, _LONG_MARK) or ch in _WORD_BREAKS:
            morae.append(ch)
            index += 1
            continue
        raise TransliterationError(
            "NOT_KANA", f"{ch!r} is not kana: a Hepburn suggestion needs the kana reading"
        )
    return morae


def _romaji(mora: str) -> str:
    if len(mora) == 2:
        base = _YOON_BASE[mora[0]]
        return base + ("Y" if base in _NEEDS_Y else "") + _YOON_VOWEL[mora[1]]
    return _MORAE[mora]


def hepburn_from_kana(kana: str) -> str:
    """A passport-Hepburn suggestion for a kana name: ``"さいとう"`` → ``"SAITO"``.

    Katakana, hiragana and half-width katakana are accepted; a space or ・ becomes ``<``.
    Only a suggestion: the resident confirms it against the passport.
    """
    text = _to_hiragana(_check_input(kana, "the kana name").strip())
    if not text:
        return ""
    morae = _morae(text)
    out: list[str] = []
    double_next = False
    for index, mora in enumerate(morae):
        if mora in _WORD_BREAKS:
            out.append("<")
            double_next = False
            continue
        if mora == _LONG_MARK:
            continue
        if mora == _SOKUON:
            double_next = True
            continue
        if mora == _N:
            following = _romaji_at(morae, index + 1)
            out.append("M" if following[:1] in ("B", "M", "P") else "N")
            continue
        roman = _romaji(mora)
        previous = out[-1] if out else ""
        if roman in ("O", "U") and previous.endswith("O") and not double_next:
            continue  # OU, OO: long O is not written (SAITO, OTA, YOKO)
        if roman == "U" and previous.endswith("U") and not double_next:
            continue  # UU: long U (YUKO, SHUHEI)
        if double_next and roman[0] not in "AIUEO":
            roman = ("T" if roman.startswith("CH") else roman[0]) + roman
        double_next = False
        out.append(roman)
    return _finish("".join(out), "the kana name")


def _romaji_at(morae: list[str], index: int) -> str:
    while index < len(morae) and morae[index] in (_LONG_MARK,):
        index += 1
    if index >= len(morae) or morae[index] in _WORD_BREAKS:
        return ""
    mora = morae[index]
    if mora in (_SOKUON, _N):
        return ""
    return _romaji(mora)
