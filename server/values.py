"""Checked value types for request bodies: email, phone, RPPS, names, passwords.

Each validator raises ``ValueError`` with a French sentence; the parsing layer shows it as is.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, StringConstraints
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as NumberError

from server import limits


def normalize_email(value: str) -> str:
    try:
        # No DNS look-up: the server may have no resolver, and a typo is caught by the user anyway.
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(
            "adresse e-mail invalide : elle s'écrit comme nom@exemple.fr, sans espace"
        ) from exc
    return result.normalized.lower()


def normalize_phone(value: str) -> str:
    """E.164 form; numbers typed the French way (``06 12 34 56 78``) are read as French."""
    try:
        number = phonenumbers.parse(value, "FR")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"numéro de téléphone illisible ({value!r})") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"numéro de téléphone invalide ({value!r})")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def is_mobile(phone_e164: str) -> bool:
    number = phonenumbers.parse(phone_e164, None)
    kind = phonenumbers.number_type(number)
    return kind in {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        n = int(char)
        if index % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def check_rpps(value: str) -> str:
    """RPPS: 11 digits whose last one is a Luhn key (ANS, "identifiant RPPS")."""
    digits = value.replace(" ", "")
    if len(digits) != 11 or not digits.isdigit():
        raise ValueError("le numéro RPPS compte 11 chiffres")
    if not luhn_ok(digits):
        raise ValueError(
            "numéro RPPS incorrect : la clé de contrôle ne correspond pas (faute de frappe ?)"
        )
    return digits


def check_password(value: str) -> str:
    if len(value) < limits.PASSWORD_MIN_LENGTH:
        raise ValueError(
            f"le mot de passe doit compter au moins {limits.PASSWORD_MIN_LENGTH} caractères"
        )
    if len(value) > limits.PASSWORD_MAX_LENGTH:
        raise ValueError(
            f"le mot de passe ne peut dépasser {limits.PASSWORD_MAX_LENGTH} caractères"
        )
    return value


def check_iban(value: str) -> str:
    """IBAN (ISO 13616): country, check digits (mod 97) and the country's length, compacted."""
    try:
        return str(stdnum_iban.validate(value))
    except NumberError as exc:
        raise ValueError(
            "IBAN incorrect : vérifiez-le sur votre RIB (FR76 suivi de 23 caractères)"
        ) from exc


def check_bic(value: str) -> str:
    try:
        return str(stdnum_bic.validate(value))
    except NumberError as exc:
        raise ValueError("BIC incorrect : 8 ou 11 caractères, comme AGRIFRPP") from exc


def check_name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("ne peut pas être vide")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise ValueError("contient des caractères non imprimables")
    return value


def search_key(*parts: str) -> str:
    """Lower-case, accent-free text, so "Éloïse" is found by typing "eloise"."""
    text = " ".join(parts).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(normalize_email)]
Phone = Annotated[str, StringConstraints(max_length=40), AfterValidator(normalize_phone)]
Rpps = Annotated[str, StringConstraints(max_length=20), AfterValidator(check_rpps)]
Password = Annotated[str, AfterValidator(check_password)]
PersonName = Annotated[str, StringConstraints(max_length=100), AfterValidator(check_name)]


def blank_to_none(value: object) -> object:
    """An empty optional field, as a form sends it, means "not given"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


MaybeEmail = Annotated[Email | None, BeforeValidator(blank_to_none)]
MaybePhone = Annotated[Phone | None, BeforeValidator(blank_to_none)]
Iban = Annotated[str, StringConstraints(max_length=50), AfterValidator(check_iban)]
Bic = Annotated[str, StringConstraints(max_length=20), AfterValidator(check_bic)]
MaybeIban = Annotated[Iban | None, BeforeValidator(blank_to_none)]
MaybeBic = Annotated[Bic | None, BeforeValidator(blank_to_none)]
