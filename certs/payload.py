"""The DCC payload (schema 1.3.0) of a vaccination certificate, from small typed inputs.

``certs`` does not know the record service's models: the caller hands over a
:class:`HolderName`, a birth date and a :class:`Vaccination`, and gets the ``hcert`` JSON object
back. One certificate holds exactly one vaccination entry. ``dn`` is the cumulative dose
number; ``sd`` is the product's primary-series length while ``dn`` is within it, and boosters
are written ``n/n`` (3/3, 4/4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from certs.errors import PayloadError, TransliterationError
from certs.names import MAX_ICAO_LENGTH, hepburn_from_kana, icao_name

SCHEMA_VERSION = "1.3.0"
#: SNOMED CT code of COVID-19, the disease targeted (value set ``disease-agent-targeted``).
COVID_19 = "840539006"
COUNTRY = "JP"
#: The default certificate issuer (``is``).
DEFAULT_ISSUER = "Ministry of Health, Labour and Welfare, Japan"
#: The schema's limit for free-text fields (names, issuer, identifiers).
MAX_TEXT = 80
MAX_DOSE_NUMBER = 99
MAX_SERIES_LENGTH = 9

_ICAO = re.compile(r"^[A-Z<]*$")
_DOB = re.compile(r"^((19|20)\d\d(-\d\d){0,2}){0,1}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/._:-]{0,79}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _text(value: object, what: str, *, required: bool) -> str:
    if not isinstance(value, str):
        raise PayloadError("BAD_NAME", f"{what} must be text")
    value = value.strip()
    if required and not value:
        raise PayloadError("BAD_NAME", f"{what} is required")
    if len(value) > MAX_TEXT:
        raise PayloadError("NAME_TOO_LONG", f"{what} is longer than {MAX_TEXT} characters")
    if any(ch in value for ch in "\x00\r\n\t") or not value.isprintable():
        raise PayloadError("BAD_NAME", f"{what} has control characters")
    return value


@dataclass(frozen=True)
class HolderName:
    """The holder's name: ``family``/``given`` as registered, ``*_icao`` in ICAO 9303 form.

    ``given`` and ``given_icao`` are empty for a person with no given name. Build one with
    :meth:`from_passport` (the resident's passport spelling) or :meth:`suggest_from_kana`.
    """

    family: str
    given: str
    family_icao: str
    given_icao: str

    def __post_init__(self) -> None:
        _text(self.family, "the family name", required=True)
        _text(self.given, "the given name", required=False)
        for what, value in (("fnt", self.family_icao), ("gnt", self.given_icao)):
            if not isinstance(value, str) or not _ICAO.fullmatch(value):
                raise PayloadError("BAD_ICAO_NAME", f"{what} must match ^[A-Z<]*$")
            if len(value) > MAX_ICAO_LENGTH:
                raise PayloadError("NAME_TOO_LONG", f"{what} is longer than {MAX_ICAO_LENGTH}")
        if not self.family_icao.strip("<"):
            raise PayloadError("BAD_ICAO_NAME", "fnt must not be empty")
        if bool(self.given.strip()) != bool(self.given_icao):
            raise PayloadError(
                "BAD_ICAO_NAME", "gnt is given exactly when a given name is registered"
            )

    @classmethod
    def from_passport(
        cls, family: str, given: str, *, passport_family: str, passport_given: str
    ) -> HolderName:
        """Registered names plus the passport's Roman spelling, normalised to ICAO 9303."""
        try:
            return cls(family, given, icao_name(passport_family), icao_name(passport_given))
        except TransliterationError as exc:
            raise PayloadError(exc.code, f"passport name: {exc.message}") from exc

    @classmethod
    def suggest_from_kana(
        cls, family: str, given: str, *, family_kana: str, given_kana: str
    ) -> HolderName:
        """Registered names plus a passport-Hepburn suggestion from their kana readings."""
        try:
            return cls(family, given, hepburn_from_kana(family_kana), hepburn_from_kana(given_kana))
        except TransliterationError as exc:
            raise PayloadError(exc.code, f"kana name: {exc.message}") from exc

    def to_json(self) -> dict[str, str]:
        """The ``nam`` object; ``gn``/``gnt`` are left out when there is no given name."""
        nam = {"fn": self.family.strip(), "fnt": self.family_icao}
        if self.given.strip():
            nam["gn"] = self.given.strip()
            nam["gnt"] = self.given_icao
        return nam


def _code(value: object, what: str) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise PayloadError("BAD_CODE", f"{what} must be a value-set code")
    return value


@dataclass(frozen=True)
class Vaccination:
    """One dose: EU value-set codes of the product, its dose number and date.

    ``series_length`` is the product's primary series (2 for Comirnaty, 1 for Jcovden); it
    decides ``sd`` (:meth:`series_doses`).
    """

    product: str  # mp, e.g. "EU/1/20/1528"
    manufacturer: str  # ma, e.g. "ORG-100030215"
    prophylaxis: str  # vp, e.g. "1119349007"
    dose_number: int  # dn, cumulative over all COVID-19 vaccines
    series_length: int
    date: date  # dt
    country: str = COUNTRY
    disease: str = COVID_19

    def __post_init__(self) -> None:
        _code(self.product, "the product (mp)")
        _code(self.manufacturer, "the manufacturer (ma)")
        _code(self.prophylaxis, "the prophylaxis (vp)")
        _code(self.disease, "the disease (tg)")
        if (
            isinstance(self.dose_number, bool)
            or not isinstance(self.dose_number, int)
            or not 1 <= self.dose_number <= MAX_DOSE_NUMBER
        ):
            raise PayloadError("BAD_DOSE_NUMBER", f"dose number is 1..{MAX_DOSE_NUMBER}")
        if (
            isinstance(self.series_length, bool)
            or not isinstance(self.series_length, int)
            or not 1 <= self.series_length <= MAX_SERIES_LENGTH
        ):
            raise PayloadError("BAD_SERIES_LENGTH", f"series length is 1..{MAX_SERIES_LENGTH}")
        if not isinstance(self.date, date) or type(self.date) is not date:
            raise PayloadError("BAD_DATE", "the vaccination date is a datetime.date")
        if not isinstance(self.country, str) or not _COUNTRY.fullmatch(self.country):
            raise PayloadError("BAD_COUNTRY", "country is an ISO 3166 alpha-2 code")

    def series_doses(self) -> int:
        """``sd``: the primary series while ``dn`` is within it, else ``dn`` (boosters n/n)."""
        return max(self.series_length, self.dose_number)


def _dob(value: object) -> str:
    if type(value) is date:
        text = value.isoformat()
    elif isinstance(value, str):
        text = value
    else:
        raise PayloadError("BAD_DATE", "the birth date is a date or YYYY[-MM[-DD]] text")
    if not _DOB.fullmatch(text):
        raise PayloadError("BAD_DATE", "the birth date must be YYYY[-MM[-DD]] in 1900-2099")
    if len(text) == 10:
        try:
            date.fromisoformat(text)
        except ValueError as exc:
            raise PayloadError("BAD_DATE", f"no such birth date: {text}") from exc
    elif len(text) == 7 and not 1 <= int(text[5:]) <= 12:
        raise PayloadError("BAD_DATE", f"no such birth month: {text}")
    return text


def vaccination_payload(
    name: HolderName,
    date_of_birth: date | str,
    vaccination: Vaccination,
    *,
    uvci: str,
    issuer: str = DEFAULT_ISSUER,
) -> dict[str, Any]:
    """The ``hcert`` JSON object (schema 1.3.0) of one vaccination certificate."""
    if not isinstance(name, HolderName) or not isinstance(vaccination, Vaccination):
        raise PayloadError("BAD_INPUT", "a HolderName and a Vaccination are required")
    dob = _dob(date_of_birth)
    if len(dob) == 10 and date.fromisoformat(dob) > vaccination.date:
        raise PayloadError("BAD_DATE", "the vaccination date is before the birth date")
    if not isinstance(uvci, str) or not uvci or len(uvci) > MAX_TEXT:
        raise PayloadError("BAD_UVCI", f"the UVCI is 1..{MAX_TEXT} characters")
    issuer_text = _text(issuer, "the issuer", required=True)
    return {
        "ver": SCHEMA_VERSION,
        "nam": name.to_json(),
        "dob": dob,
        "v": [
            {
                "tg": vaccination.disease,
                "vp": vaccination.prophylaxis,
                "mp": vaccination.product,
                "ma": vaccination.manufacturer,
                "dn": vaccination.dose_number,
                "sd": vaccination.series_doses(),
                "dt": vaccination.date.isoformat(),
                "co": vaccination.country,
                "is": issuer_text,
                "ci": uvci,
            }
        ],
    }
