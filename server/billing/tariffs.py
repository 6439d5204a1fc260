"""The Assurance Maladie codes we bill, their amounts by start date, and where each comes from.

This table is the only place a tariff lives: a change of convention is a new ``Tariff`` line (and
a test of the new amount at its date), never a code change elsewhere. Entries whose figure could
not be confirmed from two sources carry ``verify``: the engine still codes them, and shows the
doubt as a warning (``../shared/billing.md``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date


class Kind(enum.StrEnum):
    DOCTOR_ACT = "doctor_act"  # TCG, TC: the teleconsultation itself
    NURSE_ACT = "nurse_act"  # TLS, TLL, TLD: accompanying a teleconsultation
    EXPERTISE_ACT = "expertise_act"  # RQD, TE2: tele-expertise, billed alone
    TRACER = "tracer"  # TLM: counted, never paid by the patient
    MAJORATION = "majoration"  # added to a doctor's act under conditions
    EXCESS_FEE = "excess_fee"  # DA: the authorised excess fee of sector 2
    TRAVEL = "travel"  # nurses' travel fees


@dataclass(frozen=True)
class Tariff:
    since: date
    amount_cents: int | None  # None: the amount is typed in by the professional
    overseas_cents: int | None = None


@dataclass(frozen=True)
class Code:
    code: str
    kind: Kind
    label: str
    tariffs: tuple[Tariff, ...]
    source: str
    # The doubt, in French, shown as a warning whenever the code is used.
    verify: str | None = None
    # Never with a teleconsultation (MU, MPA): refused outright.
    never_with_teleconsultation: bool = False
    # The last day the code existed (TE1, abolished by avenant 9); None: still in force.
    until: date | None = None

    def tariff_at(self, day: date) -> Tariff | None:
        """The tariff in force on ``day`` (None before the code existed or after it ended)."""
        if self.until is not None and day > self.until:
            return None
        current = None
        for tariff in sorted(self.tariffs, key=lambda t: t.since):
            if tariff.since <= day:
                current = tariff
        return current


TELECONSULTATION_START = date(2018, 9, 15)  # avenant 6 of the doctors' convention
NURSE_ASSISTANCE_START = date(2020, 1, 1)  # avenant 6 of the nurses' convention (2020-01)
TELEEXPERTISE_START = date(2022, 4, 1)  # avenant 9: RQD, TE2 for every patient
# Tele-expertise began on 2019-02-10 (avenant 6) with TE1 (12 €) and TE2 (20 €) for some
# patients; avenant 9 abolished TE1 on 2022-03-31 and opened TE2 (and RQD) to all.
TE2_START = date(2019, 2, 10)
TE1_END = date(2022, 3, 31)

_FLAT = (Tariff(TELECONSULTATION_START, 500),)
_NIGHT_DOUBT = (
    "majorations de nuit, dimanche et jour férié : depuis le 22/12/2024 elles seraient "
    "remplacées en téléconsultation par un supplément unique de 5 € dont le code n'a pas pu "
    "être confirmé ; vérifiez avant de transmettre"
)

CODES: dict[str, Code] = {
    c.code: c
    for c in (
        Code(
            "TCG",
            Kind.DOCTOR_ACT,
            "Téléconsultation du médecin généraliste",
            # Unchanged when the in-office G went to 26.50 € (11/2023) then 30 € (12/2024).
            (Tariff(TELECONSULTATION_START, 2500),),
            "previssima.fr ; praticien.qare.fr 2025 ; nomenclature-medecin-generaliste.fr",
        ),
        Code(
            "TC",
            Kind.DOCTOR_ACT,
            "Téléconsultation (autres médecins)",
            (Tariff(TELECONSULTATION_START, 2300),),
            "praticien.qare.fr ; lesml.org",
            verify="montant du TC non confirmé par deux sources (23,00 € de base historique "
            "pour les spécialistes, complété de MPC/MCS comme au cabinet)",
        ),
        Code(
            "TLS",
            Kind.NURSE_ACT,
            "Accompagnement d'une téléconsultation lors d'un soin infirmier déjà prévu",
            (Tariff(NURSE_ASSISTANCE_START, 1000),),
            "laboiteaidel.fr ; promotal-medconnect.com 2026",
        ),
        Code(
            "TLL",
            Kind.NURSE_ACT,
            "Accompagnement d'une téléconsultation dans un lieu dédié",
            (Tariff(NURSE_ASSISTANCE_START, 1200),),
            "laboiteaidel.fr ; promotal-medconnect.com 2026",
        ),
        Code(
            "TLD",
            Kind.NURSE_ACT,
            "Accompagnement d'une téléconsultation organisée au domicile du patient",
            (Tariff(NURSE_ASSISTANCE_START, 1500),),
            "laboiteaidel.fr ; promotal-medconnect.com 2026",
        ),
        Code(
            "RQD",
            Kind.EXPERTISE_ACT,
            "Demande de téléexpertise (professionnel requérant)",
            (Tariff(TELEEXPERTISE_START, 1000, overseas_cents=1200),),
            "omniprat.org ; omnidoc.fr",
        ),
        Code(
            "TE2",
            Kind.EXPERTISE_ACT,
            "Avis de téléexpertise (professionnel requis)",
            (
                Tariff(TE2_START, 2000),
                Tariff(date(2026, 1, 1), 2300, overseas_cents=2760),
            ),
            "omnidoc.fr (tarifs au 1er janvier 2026) ; rofim.fr 2026 ; telesante-bretagne.fr",
        ),
        Code(
            "TE1",
            Kind.EXPERTISE_ACT,
            "Avis de téléexpertise de niveau 1 (supprimé au 31/03/2022)",
            (Tariff(TE2_START, 1200),),
            "avenant 6 (2019-02-10) ; avenant 9 (suppression au 2022-03-31) ; omnidoc.fr",
            until=TE1_END,
        ),
        Code(
            "TLM",
            Kind.TRACER,
            "Assistance du pharmacien (code traceur, forfaits annuels)",
            (Tariff(date(2022, 1, 1), None),),
            "ameli pharmacien 2025-02-26",
            verify="code traceur du pharmacien : montant et conditions non confirmés ; "
            "jamais facturé au patient",
        ),
        Code(
            "MEG",
            Kind.MAJORATION,
            "Majoration enfant de moins de 6 ans (généraliste)",
            _FLAT,
            "nomenclature-medecin-generaliste.fr",
        ),
        Code(
            "MCG",
            Kind.MAJORATION,
            "Majoration de coordination du généraliste correspondant",
            _FLAT,
            "décision UNCAM du 29/10/2024 art. 2 bis ; fmfpro.org ; lesml.org",
        ),
        Code(
            "MCS",
            Kind.MAJORATION,
            "Majoration de coordination du spécialiste correspondant",
            _FLAT,
            "décision UNCAM du 29/10/2024 art. 2 bis ; lesml.org",
        ),
        Code(
            "MPC",
            Kind.MAJORATION,
            "Majoration pour consultation du spécialiste",
            (Tariff(TELECONSULTATION_START, 200),),
            "lesml.org",
            verify="MPC en téléconsultation non confirmée par une seconde source",
        ),
        Code(
            "F",
            Kind.MAJORATION,
            "Majoration dimanche et jour férié",
            (Tariff(TELECONSULTATION_START, None),),
            "medecin-expert-comptable.fr 2024-06-20 ; aide idomed",
            verify=_NIGHT_DOUBT,
        ),
        Code(
            "MN",
            Kind.MAJORATION,
            "Majoration de nuit (20 h–0 h, 6 h–8 h)",
            (Tariff(TELECONSULTATION_START, None),),
            "medecin-expert-comptable.fr 2024-06-20 ; aide idomed",
            verify=_NIGHT_DOUBT,
        ),
        Code(
            "MM",
            Kind.MAJORATION,
            "Majoration de milieu de nuit (0 h–6 h)",
            (Tariff(TELECONSULTATION_START, None),),
            "medecin-expert-comptable.fr 2024-06-20 ; aide idomed",
            verify=_NIGHT_DOUBT,
        ),
        Code(
            "MU",
            Kind.MAJORATION,
            "Majoration d'urgence (déplacement)",
            (),
            "NGAP art. 14-1",
            never_with_teleconsultation=True,
        ),
        Code(
            "MPA",
            Kind.MAJORATION,
            "Majoration personnes âgées (forfait annuel depuis 2018)",
            (),
            "SNJMG fiche 2022",
            never_with_teleconsultation=True,
        ),
        Code(
            "DA",
            Kind.EXCESS_FEE,
            "Dépassement autorisé (secteur 2, « avec tact et mesure »)",
            (Tariff(TELECONSULTATION_START, None),),
            "praticien.qare.fr",
        ),
        Code(
            "IFD",
            Kind.TRAVEL,
            "Indemnité forfaitaire de déplacement (infirmier)",
            (Tariff(NURSE_ASSISTANCE_START, None),),
            "laboiteaidel.fr",
            verify="montant des frais de déplacement à saisir : il n'est pas dans notre table",
        ),
        Code(
            "IK",
            Kind.TRAVEL,
            "Indemnités kilométriques (infirmier)",
            (Tariff(NURSE_ASSISTANCE_START, None),),
            "laboiteaidel.fr",
            verify="montant des indemnités kilométriques à saisir : il n'est pas dans notre table",
        ),
    )
}

# Specialties a patient may consult without going through their treating doctor.
DIRECT_ACCESS_SPECIALTIES = frozenset(
    {
        "gynecology",
        "ophthalmology",
        "stomatology",
        "oral_maxillofacial_surgery",
        "psychiatry",
        "pediatrics",
    }
)

# Share of a doctor's conventioned acts a year that may be teleconsultations (2024 convention).
YEARLY_CAP_SHARE = 0.20
YEARLY_CAP_SHARE_PSYCHIATRY = 0.40
PSYCHIATRY_CAP_SINCE = date(2024, 12, 1)
# Tele-expertise: at most this many a year per patient for each requester and each expert.
TELEEXPERTISE_PER_PATIENT_PER_YEAR = 4
# Sick leave prescribed in teleconsultation (LFSS 2024, applied from 2024-02-27).
SICK_LEAVE_MAX_DAYS = 3
SICK_LEAVE_LIMIT_SINCE = date(2024, 2, 27)
# What the patient pays towards each doctor's act, deducted from the reimbursement.
FLAT_CONTRIBUTION_CENTS = 200
FLAT_CONTRIBUTION_SINCE = date(2024, 5, 15)
