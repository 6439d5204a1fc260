"""Every rule of ../shared/billing.md, one by one, on the pure coding engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from server.billing import tariffs
from server.billing.nir import NirError, key_of, parse_nir
from server.billing.rules import (
    ChosenAct,
    Expertise,
    Pathway,
    Place,
    Professional,
    Situation,
    check,
    check_expertise,
    propose,
)

GP = Professional("doctor", "general_practice", "1")
GP_SECTOR_2 = Professional("doctor", "general_practice", "2")
GP_OPTAM = Professional("doctor", "general_practice", "optam")
CARDIO_2 = Professional("doctor", "cardiology", "2")
PSY = Professional("doctor", "psychiatry", "1")
NURSE = Professional("nurse")
DAY = date(2026, 11, 23)

ADULT = Situation(
    professional=GP,
    act_date=DAY,
    video_seconds=600,
    patient_birth_date=date(1985, 5, 1),
    pathway=Pathway.TREATING_DOCTOR,
    patient_postcode="75011",
    practice_postcode="75011",
)


def codes(*names: str) -> list[ChosenAct]:
    return [ChosenAct(n) for n in names]


def errors_of(outcome: object) -> list[str]:
    return [e.detail for e in outcome.errors]  # type: ignore[attr-defined]


# --- amounts at their dates -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "day", "overseas", "cents"),
    [
        ("TCG", date(2018, 9, 15), False, 2500),
        ("TCG", date(2024, 12, 22), False, 2500),  # unchanged when G went to 30 €
        ("TC", date(2023, 1, 1), False, 2300),
        ("TLS", date(2020, 1, 1), False, 1000),
        ("TLL", date(2025, 6, 1), False, 1200),
        ("TLD", date(2025, 6, 1), False, 1500),
        ("RQD", date(2022, 4, 1), False, 1000),
        ("RQD", date(2022, 4, 1), True, 1200),
        ("TE2", date(2022, 4, 1), False, 2000),
        ("TE2", date(2025, 12, 31), False, 2000),
        ("TE2", date(2026, 1, 1), False, 2300),
        ("TE2", date(2026, 1, 1), True, 2760),
        ("MEG", DAY, False, 500),
        ("MCG", DAY, False, 500),
        ("MCS", DAY, False, 500),
        ("MPC", DAY, False, 200),
    ],
)
def test_amount_in_force_on_each_date(code: str, day: date, overseas: bool, cents: int) -> None:
    tariff = tariffs.CODES[code].tariff_at(day)
    assert tariff is not None
    amount = tariff.overseas_cents if overseas and tariff.overseas_cents else tariff.amount_cents
    assert amount == cents


def test_codes_do_not_exist_before_their_start() -> None:
    assert tariffs.CODES["TCG"].tariff_at(date(2018, 9, 14)) is None
    assert tariffs.CODES["TE2"].tariff_at(date(2019, 2, 9)) is None
    assert tariffs.CODES["RQD"].tariff_at(date(2022, 3, 31)) is None
    outcome = check(replace(ADULT, act_date=date(2018, 9, 1)), codes("TCG"))
    assert "TCG n'existait pas encore le 01/09/2018." in errors_of(outcome)


def test_every_code_has_a_source() -> None:
    assert all(c.source for c in tariffs.CODES.values())


# --- doctors: TCG / TC ----------------------------------------------------------------------


def test_gp_sector_1_gets_tcg_at_25() -> None:
    outcome = propose(ADULT)
    assert [(a.code, a.amount_cents) for a in outcome.acts] == [("TCG", 2500)]
    assert outcome.total_cents == 2500
    assert not check(ADULT, codes("TCG")).errors


def test_gp_optam_gets_tcg() -> None:
    situation = replace(ADULT, professional=GP_OPTAM)
    assert [a.code for a in propose(situation).acts] == ["TCG"]


def test_tc_by_a_sector_1_gp_is_refused() -> None:
    assert "Un généraliste en secteur 1 ou OPTAM facture TCG, pas TC." in errors_of(
        check(ADULT, codes("TC"))
    )


def test_tcg_by_a_specialist_is_refused() -> None:
    situation = replace(ADULT, professional=CARDIO_2)
    assert "TCG est réservé au médecin généraliste ; un spécialiste code TC." in errors_of(
        check(situation, codes("TCG"))
    )


def test_specialist_gets_tc_and_mpc_with_doubts_flagged() -> None:
    situation = replace(ADULT, professional=CARDIO_2, pathway=Pathway.REFERRED)
    outcome = propose(situation)
    assert [a.code for a in outcome.acts] == ["TC", "MPC"]
    assert any(w.startswith("TC : à vérifier") for w in outcome.warnings)
    assert any(w.startswith("MPC : à vérifier") for w in outcome.warnings)


def test_gp_sector_2_gets_tc_with_a_hint_and_may_code_tcg_without_excess() -> None:
    situation = replace(ADULT, professional=GP_SECTOR_2)
    outcome = propose(situation)
    assert [a.code for a in outcome.acts] == ["TC"]
    assert any("vous pouvez coder TCG" in w for w in outcome.warnings)
    assert not check(situation, codes("TCG")).errors


def test_tcg_with_excess_fee_is_refused() -> None:
    situation = replace(ADULT, professional=GP_SECTOR_2)
    outcome = check(situation, [ChosenAct("TCG"), ChosenAct("DA", 1000)])
    assert any("sans dépassement" in e for e in errors_of(outcome))


def test_excess_fee_on_tc_in_sector_2_needs_an_amount() -> None:
    situation = replace(ADULT, professional=CARDIO_2)
    ok = check(situation, [ChosenAct("TC"), ChosenAct("DA", 1500)])
    assert not ok.errors
    assert ok.total_cents == 2300 + 1500
    missing = check(situation, codes("TC", "DA"))
    assert "DA : saisissez le montant du dépassement (amount_cents)." in errors_of(missing)


def test_excess_fee_in_sector_1_is_refused() -> None:
    situation = replace(ADULT, professional=Professional("doctor", "cardiology", "1"))
    outcome = check(situation, [ChosenAct("TC"), ChosenAct("DA", 1000)])
    assert "DA : le dépassement n'est permis qu'en secteur 2 (ou OPTAM)." in errors_of(outcome)


def test_no_video_both_ways_refuses_the_act() -> None:
    outcome = check(replace(ADULT, video_seconds=3), codes("TCG"))
    assert any("doit avoir lieu en vidéo" in e for e in errors_of(outcome))
    assert outcome.acts == []


def test_wrong_amount_is_refused_with_the_right_one() -> None:
    outcome = check(ADULT, [ChosenAct("TCG", 3000)])
    assert errors_of(outcome) == ["TCG : montant erroné (30,00 €) ; il vaut 25,00 € le 23/11/2026."]


def test_unknown_and_repeated_codes_are_refused() -> None:
    assert "XYZ : code inconnu." in errors_of(check(ADULT, codes("TCG", "XYZ")))
    assert any("une fois" in e for e in errors_of(check(ADULT, codes("TCG", "TCG"))))


def test_two_base_acts_or_none_are_refused() -> None:
    assert any("Un seul acte" in e for e in errors_of(check(ADULT, codes("TCG", "TC"))))
    assert any("Il manque" in e for e in errors_of(check(ADULT, codes("MEG"))))


def test_nurse_code_on_a_doctors_act_is_refused() -> None:
    outcome = check(ADULT, codes("TCG", "TLD"))
    assert "TLD est un acte infirmier : un médecin ne peut pas le facturer." in errors_of(outcome)


def test_expertise_code_on_a_teleconsultation_is_refused() -> None:
    assert any("se facture seule" in e for e in errors_of(check(ADULT, codes("TCG", "TE2"))))


# --- majorations ----------------------------------------------------------------------------


def test_meg_for_a_child_under_6_with_a_gp() -> None:
    child = replace(ADULT, patient_birth_date=date(2021, 11, 24))  # 4 years old
    assert [a.code for a in propose(child).acts] == ["TCG", "MEG"]
    assert check(child, codes("TCG", "MEG")).total_cents == 3000


def test_meg_refused_from_the_sixth_birthday() -> None:
    six = replace(ADULT, patient_birth_date=date(2020, 11, 23))
    assert "MEG : le patient a 6 ans ; MEG est pour un enfant de moins de 6 ans." in errors_of(
        check(six, codes("TCG", "MEG"))
    )


def test_meg_refused_for_a_specialist() -> None:
    child = replace(ADULT, professional=CARDIO_2, patient_birth_date=date(2022, 1, 1))
    assert "MEG est une majoration du médecin généraliste." in errors_of(
        check(child, codes("TC", "MEG"))
    )


def test_mcg_needs_referral_and_report_sent_back() -> None:
    referred = replace(ADULT, pathway=Pathway.REFERRED, report_sent=True)
    assert not check(referred, codes("TCG", "MCG")).errors
    assert [a.code for a in propose(referred).acts] == ["TCG", "MCG"]
    no_report = replace(referred, report_sent=False)
    assert any("compte rendu" in e for e in errors_of(check(no_report, codes("TCG", "MCG"))))
    treating = replace(referred, pathway=Pathway.TREATING_DOCTOR)
    assert any("adressé" in e for e in errors_of(check(treating, codes("TCG", "MCG"))))


def test_mcg_refused_for_a_child_under_16_without_treating_doctor_but_mcs_allowed() -> None:
    child = replace(
        ADULT,
        patient_birth_date=date(2015, 1, 1),
        pathway=Pathway.REFERRED,
        report_sent=True,
        has_treating_doctor=False,
    )
    assert "MCG : pas pour un enfant de moins de 16 ans sans médecin traitant." in errors_of(
        check(child, codes("TCG", "MCG"))
    )
    specialist = replace(child, professional=CARDIO_2)
    assert not check(specialist, codes("TC", "MCS")).errors


def test_coordination_majoration_not_with_an_excess_fee() -> None:
    situation = replace(ADULT, professional=CARDIO_2, pathway=Pathway.REFERRED, report_sent=True)
    outcome = check(situation, [ChosenAct("TC"), ChosenAct("MCS"), ChosenAct("DA", 1000)])
    assert any("ne se cumule pas avec un dépassement" in e for e in errors_of(outcome))


def test_mcg_and_mcs_belong_to_their_own_profession() -> None:
    referred = replace(ADULT, pathway=Pathway.REFERRED, report_sent=True)
    assert any("codez MCG" in e for e in errors_of(check(referred, codes("TCG", "MCS"))))
    specialist = replace(referred, professional=CARDIO_2)
    assert any("codez MCS" in e for e in errors_of(check(specialist, codes("TC", "MCG"))))


def test_mpc_refused_for_a_gp() -> None:
    situation = replace(ADULT, professional=GP_SECTOR_2)
    assert "MPC est une majoration du spécialiste." in errors_of(
        check(situation, codes("TC", "MPC"))
    )


@pytest.mark.parametrize("code", ["F", "MN", "MM"])
def test_night_and_sunday_majorations_accepted_only_with_the_doubt_and_never_proposed(
    code: str,
) -> None:
    outcome = check(ADULT, codes("TCG", code))
    assert not outcome.errors
    assert any(w.startswith(f"{code} : à vérifier") and "22/12/2024" in w for w in outcome.warnings)
    assert all(a.code not in ("F", "MN", "MM") for a in propose(ADULT).acts)


def test_two_time_majorations_refused() -> None:
    assert any(
        "une seule majoration horaire" in e
        for e in errors_of(check(ADULT, codes("TCG", "MN", "F")))
    )


@pytest.mark.parametrize("code", ["MU", "MPA"])
def test_mu_and_mpa_never_with_a_teleconsultation(code: str) -> None:
    assert f"{code} ne se cumule jamais avec TCG/TC." in errors_of(check(ADULT, codes("TCG", code)))


# --- conditions that warn -------------------------------------------------------------------


def test_unknown_pathway_warns_and_does_not_block() -> None:
    outcome = check(replace(ADULT, pathway=None), codes("TCG"))
    assert not outcome.errors
    assert any(w.startswith("Parcours de soins non précisé") for w in outcome.warnings)


def test_out_of_pathway_warns_except_for_a_child_under_16() -> None:
    adult = check(replace(ADULT, pathway=Pathway.OUT_OF_PATHWAY), codes("TCG"))
    assert any(w.startswith("Hors parcours") for w in adult.warnings)
    child = check(
        replace(ADULT, pathway=Pathway.OUT_OF_PATHWAY, patient_birth_date=date(2014, 1, 1)),
        codes("TCG"),
    )
    assert not any(w.startswith("Hors parcours") for w in child.warnings)


def test_direct_access_warns_outside_direct_access_specialties() -> None:
    cardio = check(
        replace(ADULT, professional=CARDIO_2, pathway=Pathway.DIRECT_ACCESS), codes("TC")
    )
    assert any(w.startswith("Accès direct indiqué") for w in cardio.warnings)
    psy = check(replace(ADULT, professional=PSY, pathway=Pathway.DIRECT_ACCESS), codes("TC"))
    assert not any(w.startswith("Accès direct indiqué") for w in psy.warnings)


def test_no_rule_of_an_in_person_visit_in_the_last_12_months() -> None:
    # Removed by avenant 9 (upheld 2022-10-14): nothing in the situation asks for it.
    outcome = check(ADULT, codes("TCG"))
    assert not outcome.errors
    assert not any("12 mois" in w for w in outcome.warnings)


def test_territoriality_warns_when_unknown_or_far() -> None:
    unknown = check(replace(ADULT, patient_postcode=None), codes("TCG"))
    assert any(w.startswith("Code postal du patient inconnu") for w in unknown.warnings)
    far = check(replace(ADULT, patient_postcode="13001"), codes("TCG"))
    assert any("hors de votre département (13, vous : 75)" in w for w in far.warnings)
    corsica = check(
        replace(ADULT, patient_postcode="20000", practice_postcode="20200"), codes("TCG")
    )
    assert any("(2A, vous : 2B)" in w for w in corsica.warnings)
    near = check(ADULT, codes("TCG"))
    assert not any("département" in w or "Code postal" in w for w in near.warnings)


def test_yearly_cap_counts_and_warns_above_20_percent() -> None:
    base = replace(ADULT, pathway=Pathway.REFERRED, yearly_acts=1000)
    under = check(replace(base, counted_teleconsultations=199), codes("TCG"))
    assert not any("Plafond annuel dépassé" in w for w in under.warnings)
    over = check(replace(base, counted_teleconsultations=200), codes("TCG"))
    assert any("Plafond annuel dépassé : 201" in w and "20 %" in w for w in over.warnings)
    own_patient = check(
        replace(base, pathway=Pathway.TREATING_DOCTOR, counted_teleconsultations=900),
        codes("TCG"),
    )
    assert not any("Plafond" in w for w in own_patient.warnings)


def test_psychiatrists_cap_is_40_percent_since_december_2024() -> None:
    base = replace(
        ADULT,
        professional=PSY,
        pathway=Pathway.DIRECT_ACCESS,
        yearly_acts=1000,
        counted_teleconsultations=300,
    )
    assert not any("dépassé" in w for w in check(base, codes("TC")).warnings)
    before = replace(base, act_date=date(2024, 11, 30))
    assert any("dépassé" in w and "20 %" in w for w in check(before, codes("TC")).warnings)


def test_unknown_activity_says_the_cap_cannot_be_checked() -> None:
    outcome = check(replace(ADULT, pathway=Pathway.REFERRED), codes("TCG"))
    assert any(w.startswith("Plafond annuel (20 %") for w in outcome.warnings)


# --- nurses ---------------------------------------------------------------------------------


NURSE_HOME = Situation(
    professional=NURSE,
    act_date=DAY,
    video_seconds=300,
    nurse_assistance="in_room",
    place=Place.HOME,
)


@pytest.mark.parametrize(
    ("place", "code", "cents"),
    [
        (Place.PLANNED_VISIT, "TLS", 1000),
        (Place.DEDICATED_PLACE, "TLL", 1200),
        (Place.HOME, "TLD", 1500),
    ],
)
def test_nurse_code_follows_the_place(place: Place, code: str, cents: int) -> None:
    situation = replace(NURSE_HOME, place=place)
    assert [(a.code, a.amount_cents) for a in propose(situation).acts] == [(code, cents)]
    assert not check(situation, codes(code)).errors


def test_nurse_code_not_matching_the_place_is_refused() -> None:
    outcome = check(NURSE_HOME, codes("TLS"))
    assert errors_of(outcome) == [
        "TLS ne correspond pas au lieu de l'accompagnement (organisé au domicile) : codez TLD."
    ]


def test_nurse_bills_exactly_one_of_tls_tll_tld() -> None:
    assert any("un seul des actes" in e for e in errors_of(check(NURSE_HOME, codes("TLD", "TLS"))))


def test_doctor_code_or_majoration_on_a_nurse_act_is_refused() -> None:
    assert "TCG est un acte de médecin : un infirmier ne peut pas le facturer." in errors_of(
        check(NURSE_HOME, codes("TLD", "TCG"))
    )
    assert any("majorations" in e for e in errors_of(check(NURSE_HOME, codes("TLD", "MEG"))))


def test_nurse_travel_fees_accepted_with_amount_to_complete() -> None:
    outcome = check(NURSE_HOME, [ChosenAct("TLD"), ChosenAct("IFD", 275)])
    assert not outcome.errors
    assert outcome.total_cents == 1775


def test_remote_nurse_warns() -> None:
    outcome = check(replace(NURSE_HOME, nurse_assistance="remote"), codes("TLD"))
    assert any("à distance" in w for w in outcome.warnings)


def test_unknown_place_proposes_nothing_and_says_why() -> None:
    outcome = propose(replace(NURSE_HOME, place=None))
    assert outcome.acts == []
    assert any("TLS (soin déjà prévu)" in w for w in outcome.warnings)


# --- tele-expertise -------------------------------------------------------------------------


EXPERT = Expertise(
    role="expert",
    professional=CARDIO_2,
    act_date=date(2026, 2, 1),
    report_written=True,
    requester_identifier="10101010104",
)


def test_te2_at_23_euros_in_2026_and_rqd_at_10() -> None:
    assert check_expertise(EXPERT, codes("TE2")).total_cents == 2300
    assert (
        check_expertise(replace(EXPERT, act_date=date(2025, 6, 1)), codes("TE2")).total_cents
        == 2000
    )
    requester = Expertise(role="requester", professional=NURSE, act_date=date(2026, 2, 1))
    assert check_expertise(requester, codes("RQD")).total_cents == 1000


def test_expertise_billed_alone() -> None:
    assert any(
        "se facture seul" in e for e in errors_of(check_expertise(EXPERT, codes("TE2", "MCS")))
    )
    assert any(
        "se facture seul" in e
        for e in errors_of(check_expertise(EXPERT, [ChosenAct("TE2"), ChosenAct("DA", 500)]))
    )


def test_te2_needs_report_requester_and_a_doctor_or_midwife() -> None:
    assert any(
        "compte rendu" in e
        for e in errors_of(check_expertise(replace(EXPERT, report_written=False), codes("TE2")))
    )
    assert any(
        "requérant" in e
        for e in errors_of(
            check_expertise(replace(EXPERT, requester_identifier=None), codes("TE2"))
        )
    )
    nurse = replace(EXPERT, professional=NURSE)
    assert any("sage-femme" in e for e in errors_of(check_expertise(nurse, codes("TE2"))))
    midwife = replace(EXPERT, professional=Professional("midwife"))
    assert not check_expertise(midwife, codes("TE2")).errors


def test_expertise_at_most_four_a_year_per_patient() -> None:
    assert not check_expertise(replace(EXPERT, this_year_for_patient=3), codes("TE2")).errors
    assert any(
        "au plus 4 par an" in e
        for e in errors_of(check_expertise(replace(EXPERT, this_year_for_patient=4), codes("TE2")))
    )


def test_rejected_request_is_not_billed() -> None:
    assert errors_of(check_expertise(replace(EXPERT, rejected=True), codes("TE2"))) == [
        "Une demande de téléexpertise refusée ne se facture pas."
    ]


# --- NIR ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "key"),
    [
        ("1850578006084", 91),
        ("2690299341732", 85),
        ("185052A006084", 35),
        ("185052B006084", 62),
        ("2550814168025", 38),
        ("284052A321025", 52),
        ("2940375120005", 91),
        ("1531245007231", 60),
        ("2951099126111", 93),
        ("253072B073004", 70),
        ("253072A073004", 43),
    ],
)
def test_nir_key_worked_examples(number: str, key: int) -> None:
    assert key_of(number) == key
    parsed = parse_nir(f"{number}{key:02d}")
    assert parsed.full == f"{number}{key:02d}"


def test_nir_with_spaces_and_lower_case_corsica() -> None:
    assert parse_nir("1 85 05 2a 006 084 35").full == "185052A00608435"


def test_wrong_key_says_typo() -> None:
    with pytest.raises(NirError, match="la clé 90 ne correspond pas au numéro \\(faute de frappe"):
        parse_nir("185057800608490")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1850578006084", "la clé \\(2 derniers chiffres\\) manque"),
        ("18505780060", "15 caractères attendus"),
        ("385057800608491", "sexe"),
        ("185137800608400", "mois de naissance « 13 » impossible"),
        ("1850X7800608400", "seuls des chiffres"),
    ],
)
def test_malformed_nir_is_refused_clearly(raw: str, message: str) -> None:
    with pytest.raises(NirError, match=message):
        parse_nir(raw)


def test_births_in_former_territories_are_valid() -> None:
    """Departments 91–96 of births in Algeria, Morocco, Tunisia before independence: any two
    digits, like the Assurance Maladie's own validator (issue 21)."""
    for dept in ("96", "91", "95", "00"):
        number = f"18505{dept}006084"
        assert parse_nir(f"{number}{key_of(number):02d}").full == f"{number}{key_of(number):02d}"


def test_te2_and_te1_before_2022() -> None:
    """Tele-expertise began on 2019-02-10: TE2 at 20 € beside TE1 at 12 €, abolished on
    2022-03-31 (issue 21)."""
    te1, te2 = tariffs.CODES["TE1"], tariffs.CODES["TE2"]
    assert te2.tariff_at(date(2019, 2, 9)) is None
    assert te2.tariff_at(date(2019, 2, 10)).amount_cents == 2000  # type: ignore[union-attr]
    assert te1.tariff_at(date(2021, 6, 1)).amount_cents == 1200  # type: ignore[union-attr]
    assert te1.tariff_at(date(2022, 3, 31)) is not None
    assert te1.tariff_at(date(2022, 4, 1)) is None
    early = replace(EXPERT, act_date=date(2020, 5, 4))
    assert check_expertise(early, codes("TE2")).total_cents == 2000


def test_mcs_for_a_child_under_16_without_treating_doctor_needs_no_referral() -> None:
    """Convention 2024 art. 75 (issue 21): no treating doctor to be referred by, nor to report
    to."""
    child = replace(
        ADULT,
        professional=CARDIO_2,
        patient_birth_date=date(2015, 1, 1),
        pathway=Pathway.DIRECT_ACCESS,
        report_sent=False,
        has_treating_doctor=False,
    )
    assert not check(child, codes("TC", "MCS")).errors
    with_doctor = replace(child, has_treating_doctor=True)
    assert any("adressé" in e for e in errors_of(check(with_doctor, codes("TC", "MCS"))))
    gp_child = replace(child, professional=GP)
    assert errors_of(check(gp_child, codes("TCG", "MCG")))


def test_direct_access_to_a_psychiatrist_is_for_16_to_25_year_olds() -> None:
    young = replace(
        ADULT, professional=PSY, pathway=Pathway.DIRECT_ACCESS, patient_birth_date=date(2005, 1, 1)
    )
    assert not any("16 à 25 ans" in w for w in check(young, codes("TC")).warnings)
    older = replace(young, patient_birth_date=date(1980, 1, 1))
    warned = [w for w in check(older, codes("TC")).warnings if "16 à 25 ans" in w]
    assert warned and "le patient a 46 ans" in warned[0]
    unknown = replace(young, patient_birth_date=None)
    assert any("âge du patient inconnu" in w for w in check(unknown, codes("TC")).warnings)


def test_incomplete_civil_record_month_and_provisional_number_warn() -> None:
    month_30 = "1853078006084"
    parsed = parse_nir(f"{month_30}{key_of(month_30):02d}")
    assert parsed.warnings and "état civil incomplet" in parsed.warnings[0]
    provisional = "7850578006084"
    parsed = parse_nir(f"{provisional}{key_of(provisional):02d}")
    assert parsed.warnings and "provisoire" in parsed.warnings[0]
