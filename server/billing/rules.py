"""The coding engine: propose the acts of a teleconsultation, and check a chosen coding.

Pure functions of plain values (no database, no HTTP), so each rule of ``../shared/billing.md``
is tested on its own. A broken rule is an error (the coding is refused, each error saying which
rule and why); what the engine cannot know, or what our sources could not confirm, is a warning
(shown, never blocking).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date

from server.billing import tariffs
from server.billing.tariffs import CODES, Kind

GENERAL_PRACTICE = "general_practice"
# Video both ways for at least this long shows the teleconsultation took place by video (not a
# failed connection followed by a phone call). Samples arrive every 5 s.
MIN_VIDEO_SECONDS = 10.0


class Pathway(enum.StrEnum):
    """The care-pathway indicator of the FSE."""

    TREATING_DOCTOR = "treating_doctor"  # the teleconsulting doctor is the médecin traitant
    REFERRED = "referred"  # sent by the treating doctor (correspondent)
    DIRECT_ACCESS = "direct_access"  # direct-access specialty
    URGENCY = "urgency"
    OUT_OF_PATHWAY = "out_of_pathway"


class Place(enum.StrEnum):
    """Where a nurse accompanied the teleconsultation: it decides TLS, TLL or TLD."""

    PLANNED_VISIT = "planned_visit"  # during a nursing visit already planned → TLS
    DEDICATED_PLACE = "dedicated_place"  # a place set up for teleconsultations → TLL
    HOME = "home"  # organised specifically at the patient's home → TLD


NURSE_CODE_FOR_PLACE = {Place.PLANNED_VISIT: "TLS", Place.DEDICATED_PLACE: "TLL", Place.HOME: "TLD"}


@dataclass(frozen=True)
class Professional:
    role: str  # "doctor", "nurse", "midwife", "pharmacist", …
    specialty: str | None = None
    sector: str | None = None  # "1", "2", "optam"

    @property
    def is_general_practitioner(self) -> bool:
        return self.role == "doctor" and (self.specialty or GENERAL_PRACTICE) == GENERAL_PRACTICE


@dataclass(frozen=True)
class Situation:
    """What is known about one teleconsultation, from the call record and the form."""

    professional: Professional
    act_date: date
    video_seconds: float = 0.0
    # Why the video falls short, when it does, in words for the professional (from the call's
    # proof: the other side never came, their picture never reached you, yours never reached
    # them).
    video_shortfall: str | None = None
    patient_birth_date: date | None = None
    pathway: Pathway | None = None
    # Information sent back to the treating doctor (needed for a coordination majoration).
    report_sent: bool = False
    # None: not known. False matters for a child under 16 (MCG refused).
    has_treating_doctor: bool | None = None
    # Assisted teleconsultation.
    nurse_assistance: str | None = None  # "in_room" | "remote"
    place: Place | None = None
    overseas: bool = False
    patient_postcode: str | None = None
    practice_postcode: str | None = None
    # Yearly cap: this year's teleconsultations that count, and the doctor's conventioned acts.
    counted_teleconsultations: int | None = None
    yearly_acts: int | None = None


@dataclass(frozen=True)
class ChosenAct:
    code: str
    amount_cents: int | None = None  # required only where our table has no amount


@dataclass(frozen=True)
class Act:
    code: str
    amount_cents: int
    label: str


@dataclass(frozen=True)
class RuleError:
    detail: str
    code: str | None = None


@dataclass
class Outcome:
    acts: list[Act] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return sum(a.amount_cents for a in self.acts)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def refuse(self, detail: str, code: str | None = None) -> None:
        self.errors.append(RuleError(detail, code))


def euros(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d} €"


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _department(postcode: str | None) -> str | None:
    if postcode is None or not re.fullmatch(r"\d{5}", postcode):
        return None
    if postcode.startswith("97") or postcode.startswith("98"):
        return postcode[:3]
    if postcode.startswith("20"):
        return "2A" if int(postcode) < 20200 else "2B"
    return postcode[:2]


def _amount(code: str, day: date, overseas: bool, given: int | None, out: Outcome) -> int | None:
    """The amount of ``code`` on ``day``; a given amount must match the table, and is required
    where the table has none."""
    entry = CODES[code]
    tariff = entry.tariff_at(day)
    if tariff is None:
        if entry.until is not None and day > entry.until:
            out.refuse(f"{code} n'existe plus depuis le {entry.until:%d/%m/%Y}.", code)
        else:
            out.refuse(f"{code} n'existait pas encore le {day:%d/%m/%Y}.", code)
        return None
    table = tariff.overseas_cents if overseas and tariff.overseas_cents else tariff.amount_cents
    if table is None:
        if given is not None and given > 0:
            return given
        if code == "DA":
            out.refuse("DA : saisissez le montant du dépassement (amount_cents).", code)
            return None
        # Not confirmed: never block the coding; the practice completes it in its software.
        out.warn(
            f"{code} : montant inconnu de notre table, enregistré à 0 € ; "
            "complétez-le dans votre logiciel de facturation."
        )
        return 0
    if given is not None and given != table:
        out.refuse(
            f"{code} : montant erroné ({euros(given)}) ; il vaut {euros(table)} le {day:%d/%m/%Y}.",
            code,
        )
        return None
    return table


# --- proposal -------------------------------------------------------------------------------


def propose(s: Situation) -> Outcome:
    """The coding the server suggests from what happened; then checked like any other."""
    chosen: list[ChosenAct] = []
    pro = s.professional
    out = Outcome()
    if pro.role == "doctor":
        if pro.is_general_practitioner and pro.sector in (None, "1", "optam"):
            chosen.append(ChosenAct("TCG"))
        else:
            chosen.append(ChosenAct("TC"))
            if pro.is_general_practitioner:
                out.warn(
                    "Généraliste en secteur 2 : TC est proposé ; sans dépassement, "
                    "vous pouvez coder TCG."
                )
        age = age_on(s.patient_birth_date, s.act_date) if s.patient_birth_date else None
        if pro.is_general_practitioner and age is not None and age < 6:
            chosen.append(ChosenAct("MEG"))
        if s.pathway == Pathway.REFERRED and s.report_sent:
            chosen.append(ChosenAct("MCG" if pro.is_general_practitioner else "MCS"))
        if not pro.is_general_practitioner:
            chosen.append(ChosenAct("MPC"))
        if age is None:
            out.warn("Date de naissance du patient inconnue : MEG (moins de 6 ans) non évaluée.")
    elif pro.role == "nurse":
        if s.place is not None:
            chosen.append(ChosenAct(NURSE_CODE_FOR_PLACE[s.place]))
        else:
            out.warn(
                "Lieu de l'accompagnement non précisé : choisissez TLS (soin déjà prévu), "
                "TLL (lieu dédié) ou TLD (organisé au domicile)."
            )
    checked = check(s, chosen)
    # A proposal keeps the acts that pass; what fails becomes a warning to act on.
    out.acts = checked.acts
    for warning in checked.warnings:
        out.warn(warning)
    for error in checked.errors:
        out.warn(error.detail)
    return out


# --- checking -------------------------------------------------------------------------------


def check(s: Situation, chosen: list[ChosenAct]) -> Outcome:
    """Check a teleconsultation's coding against every rule; the acts with their amounts."""
    out = Outcome()
    codes = [c.code.strip().upper() for c in chosen]
    if not codes:
        out.refuse("Aucun acte choisi.")
        return out
    for code in codes:
        if code not in CODES:
            out.refuse(f"{code} : code inconnu.", code)
    for code in sorted({c for c in codes if codes.count(c) > 1}):
        out.refuse(f"{code} : un même code ne se facture qu'une fois par acte.", code)
    if out.errors:
        return out
    kinds = {code: CODES[code].kind for code in codes}
    expertise = [c for c in codes if kinds[c] == Kind.EXPERTISE_ACT]
    if expertise:
        out.refuse(
            f"{', '.join(expertise)} : la téléexpertise se facture seule, sur une demande "
            "d'avis, jamais sur une téléconsultation.",
            expertise[0],
        )
    for code in codes:
        if kinds[code] == Kind.TRACER:
            out.refuse(
                f"{code} : code traceur du pharmacien, payé par forfait ; il ne se facture pas "
                "sur une téléconsultation.",
                code,
            )
    role = s.professional.role
    if role == "doctor":
        _check_doctor(s, codes, kinds, out)
    elif role == "nurse":
        _check_nurse(s, codes, kinds, out)
    else:
        out.refuse("Seuls le médecin téléconsultant et l'infirmier accompagnant facturent ici.")
    if out.errors:
        return out
    given = {c.code.strip().upper(): c.amount_cents for c in chosen}
    for code in codes:
        amount = _amount(code, s.act_date, s.overseas, given.get(code), out)
        if amount is not None:
            out.acts.append(Act(code, amount, CODES[code].label))
        verify = CODES[code].verify
        if verify:
            out.warn(f"{code} : à vérifier — {verify}.")
    if out.errors:
        out.acts = []
    return out


def _video(s: Situation, out: Outcome, codes: list[str]) -> None:
    if s.video_seconds < MIN_VIDEO_SECONDS:
        out.refuse(
            f"{'/'.join(codes)} : la téléconsultation doit avoir lieu en vidéo ; le relevé de "
            f"l'appel ne montre pas de vidéo dans les deux sens (au moins "
            f"{int(MIN_VIDEO_SECONDS)} s, constaté : {int(s.video_seconds)} s)"
            + (f" : {s.video_shortfall}." if s.video_shortfall else "."),
            codes[0],
        )


def _check_doctor(s: Situation, codes: list[str], kinds: dict[str, Kind], out: Outcome) -> None:
    pro = s.professional
    for code in codes:
        if kinds[code] in (Kind.NURSE_ACT, Kind.TRAVEL):
            out.refuse(f"{code} est un acte infirmier : un médecin ne peut pas le facturer.", code)
    acts = [c for c in codes if kinds[c] == Kind.DOCTOR_ACT]
    if len(acts) != 1:
        out.refuse(
            "Un seul acte de téléconsultation par séance : TCG (généraliste au tarif "
            "conventionnel) ou TC (autres médecins)."
            if acts
            else "Il manque l'acte de téléconsultation (TCG ou TC)."
        )
        return
    act = acts[0]
    excess = "DA" in codes
    gp = pro.is_general_practitioner
    sector = pro.sector or "1"
    if act == "TCG":
        if not gp:
            out.refuse("TCG est réservé au médecin généraliste ; un spécialiste code TC.", "TCG")
        elif excess:
            out.refuse(
                "TCG se facture au tarif conventionnel, sans dépassement : codez TC pour "
                "appliquer un dépassement.",
                "DA",
            )
    elif act == "TC" and gp and sector in ("1", "optam"):
        out.refuse(
            "Un généraliste en secteur 1 ou OPTAM facture TCG, pas TC.",
            "TC",
        )
    _video(s, out, [act])
    age = age_on(s.patient_birth_date, s.act_date) if s.patient_birth_date else None
    for code in codes:
        entry = CODES[code]
        if kinds[code] == Kind.MAJORATION:
            if entry.never_with_teleconsultation:
                out.refuse(f"{code} ne se cumule jamais avec TCG/TC.", code)
                continue
            _check_majoration(s, code, age, excess, out)
    night = [c for c in codes if c in ("F", "MN", "MM")]
    if len(night) > 1:
        out.refuse(f"{' et '.join(night)} : une seule majoration horaire par acte.", night[1])
    if excess and sector not in ("2", "optam"):
        out.refuse("DA : le dépassement n'est permis qu'en secteur 2 (ou OPTAM).", "DA")
    _pathway_warnings(s, out)
    _territory_warnings(s, out)
    _cap_warnings(s, out)


def _check_majoration(s: Situation, code: str, age: int | None, excess: bool, out: Outcome) -> None:
    pro = s.professional
    gp = pro.is_general_practitioner
    if code == "MEG":
        if not gp:
            out.refuse("MEG est une majoration du médecin généraliste.", code)
        elif age is None:
            out.refuse("MEG : la date de naissance du patient est requise.", code)
        elif age >= 6:
            out.refuse(
                f"MEG : le patient a {age} ans ; MEG est pour un enfant de moins de 6 ans.", code
            )
    elif code in ("MCG", "MCS"):
        # A child under 16 with no treating doctor may see a specialist directly: MCS then needs
        # neither the "referred" pathway nor a report to a treating doctor (convention 2024
        # art. 75).
        child_alone = (
            code == "MCS" and age is not None and age < 16 and s.has_treating_doctor is False
        )
        if code == "MCG" and not gp:
            out.refuse("MCG est la majoration de coordination du généraliste ; codez MCS.", code)
        if code == "MCS" and gp:
            out.refuse("MCS est la majoration de coordination du spécialiste ; codez MCG.", code)
        if s.pathway != Pathway.REFERRED and not child_alone:
            out.refuse(
                f"{code} : le patient doit être adressé par son médecin traitant "
                "(parcours « adressé »).",
                code,
            )
        if not s.report_sent and not child_alone:
            out.refuse(
                f"{code} : le compte rendu doit être adressé au médecin traitant ; "
                "confirmez-le (report_sent).",
                code,
            )
        if excess:
            out.refuse(
                f"{code} : une majoration de coordination ne se cumule pas avec un "
                "dépassement (DA).",
                code,
            )
        if code == "MCG" and age is not None and age < 16 and s.has_treating_doctor is False:
            out.refuse("MCG : pas pour un enfant de moins de 16 ans sans médecin traitant.", code)
    elif code == "MPC":
        if gp:
            out.refuse("MPC est une majoration du spécialiste.", code)
    elif code in ("F", "MN", "MM"):
        pass  # accepted with the warning carried by the table entry


def _pathway_warnings(s: Situation, out: Outcome) -> None:
    age = age_on(s.patient_birth_date, s.act_date) if s.patient_birth_date else None
    if s.pathway is None:
        out.warn(
            "Parcours de soins non précisé (médecin traitant, adressé, accès direct, urgence, "
            "hors parcours) : il figure sur la feuille de soins."
        )
    elif s.pathway == Pathway.OUT_OF_PATHWAY and (age is None or age >= 16):
        out.warn(
            "Hors parcours de soins : la téléconsultation est remboursée si le médecin est le "
            "médecin traitant ou un correspondant, sauf exceptions (moins de 16 ans, urgence, "
            "pas de médecin traitant disponible, détenus, résidents d'EHPAD ou d'établissements "
            "pour personnes handicapées)."
        )
    elif (
        s.pathway == Pathway.DIRECT_ACCESS
        and s.professional.specialty == "psychiatry"
        and (age is None or not 16 <= age <= 25)
    ):
        shown = "âge du patient inconnu" if age is None else f"le patient a {age} ans"
        out.warn(
            "Accès direct au psychiatre : il ne vaut que pour un patient de 16 à 25 ans "
            f"({shown}) ; sinon la téléconsultation est hors parcours de soins."
        )
    elif (
        s.pathway == Pathway.DIRECT_ACCESS
        and (s.professional.specialty or GENERAL_PRACTICE) not in tariffs.DIRECT_ACCESS_SPECIALTIES
    ):
        out.warn(
            "Accès direct indiqué, mais votre spécialité n'est pas en accès direct "
            "(gynécologie, ophtalmologie, stomatologie, chirurgie orale et maxillo-faciale, "
            "psychiatrie, pédiatrie)."
        )


def _territory_warnings(s: Situation, out: Outcome) -> None:
    patient = _department(s.patient_postcode)
    practice = _department(s.practice_postcode)
    if patient is None:
        out.warn(
            "Code postal du patient inconnu : la téléconsultation doit en principe se faire "
            "près de chez lui (convention 2024, art. 87 à 90)."
        )
    elif practice is not None and patient != practice:
        out.warn(
            f"Patient domicilié hors de votre département ({patient}, vous : {practice}) : "
            "hors territoire, réservé aux habitants des zones sous-denses."
        )


def _cap_warnings(s: Situation, out: Outcome) -> None:
    if s.pathway == Pathway.TREATING_DOCTOR:
        return  # a treating doctor's teleconsultations of their own patients do not count
    psychiatry = (
        s.professional.specialty == "psychiatry" and s.act_date >= tariffs.PSYCHIATRY_CAP_SINCE
    )
    share = tariffs.YEARLY_CAP_SHARE_PSYCHIATRY if psychiatry else tariffs.YEARLY_CAP_SHARE
    if s.counted_teleconsultations is None or not s.yearly_acts:
        out.warn(
            f"Plafond annuel ({int(share * 100)} % de vos actes en téléconsultation) non "
            "vérifiable : indiquez votre nombre annuel d'actes conventionnés dans votre profil."
        )
        return
    with_this = s.counted_teleconsultations + 1
    if with_this > share * s.yearly_acts:
        out.warn(
            f"Plafond annuel dépassé : {with_this} téléconsultations comptées cette année pour "
            f"{s.yearly_acts} actes conventionnés (au plus {int(share * 100)} %)."
        )


def _check_nurse(s: Situation, codes: list[str], kinds: dict[str, Kind], out: Outcome) -> None:
    for code in codes:
        kind = kinds[code]
        if kind == Kind.DOCTOR_ACT:
            out.refuse(
                f"{code} est un acte de médecin : un infirmier ne peut pas le facturer.", code
            )
        elif kind in (Kind.MAJORATION, Kind.EXCESS_FEE):
            out.refuse(
                f"{code} : les majorations et dépassements des médecins ne s'appliquent pas à "
                "l'acte infirmier.",
                code,
            )
    acts = [c for c in codes if kinds[c] == Kind.NURSE_ACT]
    if len(acts) != 1:
        out.refuse(
            f"{' et '.join(acts)} : un seul des actes TLS, TLL, TLD selon le lieu de "
            "l'accompagnement."
            if acts
            else "Il manque l'acte d'accompagnement : TLS, TLL ou TLD."
        )
        return
    act = acts[0]
    if s.place is not None and NURSE_CODE_FOR_PLACE[s.place] != act:
        expected = NURSE_CODE_FOR_PLACE[s.place]
        out.refuse(
            f"{act} ne correspond pas au lieu de l'accompagnement ({_PLACE_FR[s.place]}) : "
            f"codez {expected}.",
            act,
        )
    if s.place is None:
        out.warn("Lieu de l'accompagnement non précisé : vérifiez que le code choisi y correspond.")
    if s.nurse_assistance == "remote":
        out.warn(
            "L'infirmier a rejoint l'appel à distance : TLS/TLL/TLD supposent d'être auprès "
            "du patient pendant la téléconsultation."
        )
    _video(s, out, [act])


_PLACE_FR = {
    Place.PLANNED_VISIT: "lors d'un soin déjà prévu",
    Place.DEDICATED_PLACE: "dans un lieu dédié",
    Place.HOME: "organisé au domicile",
}


# --- tele-expertise (asynchronous requests; billed on the request, not on a call) -----------


@dataclass(frozen=True)
class Expertise:
    role: str  # "requester" (RQD) or "expert" (TE2)
    professional: Professional
    act_date: date
    rejected: bool = False
    report_written: bool = False
    requester_identifier: str | None = None  # goes in the TE2's prescriber field
    this_year_for_patient: int = 0  # earlier ones by the same professional for this patient
    overseas: bool = False


def check_expertise(e: Expertise, chosen: list[ChosenAct]) -> Outcome:
    """RQD and TE2: billed alone, no majoration nor excess fee, four a year per patient per
    professional; TE2 needs the report and the requester's identifier."""
    out = Outcome()
    codes = [c.code.strip().upper() for c in chosen]
    expected = "RQD" if e.role == "requester" else "TE2"
    if e.rejected:
        out.refuse("Une demande de téléexpertise refusée ne se facture pas.")
        return out
    if codes != [expected]:
        others = [c for c in codes if c != expected]
        out.refuse(
            f"{expected} se facture seul : ni autre acte, ni majoration, ni dépassement "
            f"({', '.join(others) or 'acte manquant'}).",
            others[0] if others else expected,
        )
        return out
    if expected == "TE2" and e.professional.role not in ("doctor", "midwife"):
        out.refuse("TE2 : seuls un médecin ou une sage-femme donnent l'avis.", "TE2")
    if expected == "TE2" and not e.report_written:
        out.refuse("TE2 : le compte rendu de l'avis est obligatoire pour facturer.", "TE2")
    if expected == "TE2" and not e.requester_identifier:
        out.refuse("TE2 : l'identifiant du requérant doit figurer comme prescripteur.", "TE2")
    if e.this_year_for_patient >= tariffs.TELEEXPERTISE_PER_PATIENT_PER_YEAR:
        out.refuse(
            f"{expected} : déjà {e.this_year_for_patient} cette année pour ce patient "
            f"(au plus {tariffs.TELEEXPERTISE_PER_PATIENT_PER_YEAR} par an et par professionnel).",
            expected,
        )
    if out.errors:
        return out
    given = chosen[0].amount_cents
    amount = _amount(expected, e.act_date, e.overseas, given, out)
    if amount is not None:
        out.acts.append(Act(expected, amount, CODES[expected].label))
    return out
