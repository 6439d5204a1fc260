"""The NIR (numéro de sécurité sociale) typed in for a SESAM-sans-Vitale act, and its key.

Without the Vitale card the number is typed by hand, so the check key is what catches a typo
before the Assurance Maladie rejects the act weeks later. Numbers from incomplete civil records
(months 20–42 or 50 and over) and provisional numbers (starting with 7 or 8) are real: they pass,
with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Nir:
    number: str  # the 13 characters
    key: str  # the 2-digit key
    warnings: tuple[str, ...]

    @property
    def full(self) -> str:
        return self.number + self.key

    @property
    def sex(self) -> str:
        return self.number[0]

    @property
    def birth_year_2(self) -> str:
        return self.number[1:3]

    @property
    def birth_month(self) -> int:
        return int(self.number[3:5])


class NirError(ValueError):
    """A NIR that cannot be right; the message says what to fix, in French."""


def key_of(number: str) -> int:
    """97 − (N mod 97); Corsica's 2A counts as 19 and 2B as 18."""
    digits = number.upper()
    if digits[5:7] == "2A":
        value = int(digits[:5] + "19" + digits[7:])
    elif digits[5:7] == "2B":
        value = int(digits[:5] + "18" + digits[7:])
    else:
        value = int(digits)
    return 97 - value % 97


def _department_ok(dept: str) -> bool:
    """Any two digits, or 2A/2B: births in former territories carry codes such as 91–94
    (Algeria), 95 (Morocco) or 96 (Tunisia, before 1956), and the Assurance Maladie's own
    validator accepts any two digits (service-public.fr F33078)."""
    return dept in {"2A", "2B"} or (len(dept) == 2 and dept.isdigit())


def parse_nir(raw: str) -> Nir:
    """Check a NIR typed as 15 characters (spaces allowed). Raise ``NirError`` with a message
    that tells a wrong key (a typo) apart from a malformed number."""
    text = "".join(raw.split()).upper()
    if len(text) == 13:
        raise NirError(
            "NIR : la clé (2 derniers chiffres) manque ; saisissez les 15 caractères de la carte"
        )
    if len(text) != 15:
        raise NirError(f"NIR : 15 caractères attendus (13 + clé), {len(text)} reçus")
    number, key = text[:13], text[13:]
    dept = number[5:7]
    if not (number[:5].isdigit() and number[7:].isdigit() and key.isdigit()):
        raise NirError("NIR : seuls des chiffres sont permis, sauf 2A ou 2B pour la Corse")
    if not _department_ok(dept):
        raise NirError(f"NIR : département de naissance « {dept} » inconnu")
    warnings: list[str] = []
    sex = number[0]
    if sex in {"7", "8"}:
        warnings.append("NIR provisoire (commence par 7 ou 8) : à remplacer par le définitif")
    elif sex not in {"1", "2"}:
        raise NirError(f"NIR : le premier chiffre (sexe) doit être 1 ou 2, pas {sex}")
    month = int(number[3:5])
    if 20 <= month <= 42 or month >= 50:
        warnings.append(
            f"NIR : mois de naissance « {month:02d} » (état civil incomplet) ; "
            "vérifiez-le sur l'attestation"
        )
    elif not 1 <= month <= 12:
        raise NirError(f"NIR : mois de naissance « {month:02d} » impossible")
    expected = key_of(number)
    if int(key) != expected:
        raise NirError(
            f"NIR : la clé {key} ne correspond pas au numéro (faute de frappe ?) ; "
            "vérifiez les 13 chiffres et la clé sur la carte Vitale ou l'attestation"
        )
    return Nir(number, key, tuple(warnings))
