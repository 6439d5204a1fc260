"""Billing over HTTP: the proposal read from the call record, the validated record with each
broken rule listed, who may code, and the export for the billing software."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from typing import Any

from server.models import User
from tests.calls import both_ways, in_call, report
from tests.helpers import Client, connect, make_secretary, valid_rpps

MakeClient = Callable[[], Client]
NIR = "185057800608491"  # 1850578006084, key 91
ADULT_BIRTH = "1985-05-12"


async def video_call(
    doctor: Client, patient: Client, cid: str, seconds: int = 60, *, end: bool = True
) -> str:
    """A call in which doctor and patient each received the other's video for ``seconds``, as
    their pages report it over socket.io."""
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    d, p = await in_call(doctor, call["id"]), await in_call(patient, call["id"])
    try:
        await report(call["id"], both_ways(d, p), seconds)
    finally:
        if end:
            await doctor.post(f"/api/calls/{call['id']}/end")
        await d.close()
        await p.close()
    return str(call["id"])


async def set_birth_date(client: Client, user_id: str, born: date) -> None:
    async with client.services.sessionmaker() as db:
        user = await db.get(User, user_id)
        assert user is not None
        user.birth_date = born
        await db.commit()


def record_body(*codes: str, **extra: Any) -> dict[str, Any]:
    return {
        "acts": [{"code": c} for c in codes],
        "patient": {"nir": NIR, "birth_date": ADULT_BIRTH},
        **extra,
    }


async def test_gp_teleconsultation_proposed_recorded_and_exported(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    call_id = await video_call(doctor, patient, cid)
    proposal = await doctor.get(f"/api/calls/{call_id}/billing")
    assert proposal.status == 200, proposal
    body = proposal.body
    assert [(a["code"], a["amount_cents"]) for a in body["acts"]] == [("TCG", 2500)]
    assert body["total_cents"] == 2500 and body["video_both_ways_seconds"] >= 55
    assert any(w.startswith("Parcours de soins non précisé") for w in body["warnings"])
    assert body["record"] is None

    saved = await doctor.post(
        f"/api/calls/{call_id}/billing",
        record_body(
            "TCG",
            pathway="treating_doctor",
            exemption="none",
            patient={"nir": "1 85 05 78 006 084 91", "birth_date": ADULT_BIRTH, "fund": "751"},
        ),
    )
    assert saved.status == 201, saved
    record = saved.body
    assert record["acts"] == [
        {"code": "TCG", "amount_cents": 2500, "label": "Téléconsultation du médecin généraliste"}
    ]
    assert record["teleconsultation"] is True and record["total_cents"] == 2500
    assert record["patient"]["nir"] == NIR and record["patient"]["birth_rank"] == 1
    assert record["professional"]["rpps"] == doctor.user["rpps"]  # type: ignore[index]
    assert record["pathway"] == "treating_doctor" and record["act_date"] == "2026-11-23"
    again = await doctor.post(f"/api/calls/{call_id}/billing", record_body("TCG"))
    assert again.status == 409 and again.body["record_id"] == record["id"]
    shown = await doctor.get(f"/api/calls/{call_id}/billing")
    assert shown.body["record"]["id"] == record["id"]

    exported = await doctor.get("/api/billing/records?from=2026-11-01&to=2026-11-30")
    assert [r["id"] for r in exported.body["items"]] == [record["id"]]
    async with doctor.session.get(
        doctor.server.make_url("/api/billing/records?from=2026-11-01&to=2026-11-30&format=csv")
    ) as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        assert "attachment" in resp.headers["Content-Disposition"]
        text = (await resp.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert len(rows) == 1
    row = rows[0]
    # Headers and values in French (issue 26, item 10): a practice reads them in a spreadsheet.
    assert row["Code acte"] == "TCG" and row["Montant (centimes)"] == "2500"
    assert row["Montant (€)"] == "25,00"
    assert row["NIR du patient"] == NIR and row["Nom du patient"] == "Durand"
    assert row["Téléconsultation"] == "oui" and row["Parcours de soins"] == "médecin traitant"
    assert row["Caisse"] == "751" and row["Date de l'acte"] == "23/11/2026"
    assert row["Profession"] == "médecin"
    outside = await doctor.get("/api/billing/records?from=2026-12-01&to=2026-12-31")
    assert outside.body["items"] == []

    # A coding made in error is withdrawn (the audit log keeps it), then coded again.
    assert (await patient.request("DELETE", f"/api/billing/records/{record['id']}")).status == 403
    withdrawn = await doctor.request("DELETE", f"/api/billing/records/{record['id']}")
    assert withdrawn.status == 204
    assert (await doctor.request("DELETE", f"/api/billing/records/{record['id']}")).status == 404
    redone = await doctor.post(
        f"/api/calls/{call_id}/billing", record_body("TCG", pathway="referred")
    )
    assert redone.status == 201 and redone.body["pathway"] == "referred"
    async with doctor.services.sessionmaker() as db:
        from sqlalchemy import select

        from server.models import AuditEvent

        kinds = list(await db.scalars(select(AuditEvent.action)))
    assert "billing.cancelled" in kinds


async def test_each_broken_rule_is_listed(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    call_id = await video_call(doctor, patient, cid)
    refused = await doctor.post(
        f"/api/calls/{call_id}/billing",
        {"acts": [{"code": "TCG"}, {"code": "TLD"}, {"code": "MEG"}], "patient": {}},
    )
    assert refused.status == 422
    details = [e["detail"] for e in refused.body["errors"]]
    assert "TLD est un acte infirmier : un médecin ne peut pas le facturer." in details
    assert any(d.startswith("MEG : le patient") or "date de naissance" in d for d in details)
    assert any(d.startswith("NIR du patient manquant") for d in details)
    assert any(d.startswith("Date de naissance du patient manquante") for d in details)
    assert refused.body["detail"].startswith("Cotation refusée (")
    assert {e["code"] for e in refused.body["errors"]} >= {"TLD"}
    typo = await doctor.post(
        f"/api/calls/{call_id}/billing",
        record_body("TCG", patient={"nir": "185057800608490", "birth_date": ADULT_BIRTH}),
    )
    assert typo.status == 422 and "faute de frappe" in typo.body["detail"]
    wrong_amount = await doctor.post(
        f"/api/calls/{call_id}/billing",
        {**record_body(), "acts": [{"code": "TCG", "amount_cents": 3000}]},
    )
    assert wrong_amount.status == 422 and "il vaut 25,00 €" in wrong_amount.body["detail"]
    mu = await doctor.post(f"/api/calls/{call_id}/billing", record_body("TCG", "MU"))
    assert mu.status == 422 and "MU ne se cumule jamais avec TCG/TC." in mu.body["detail"]
    # Nothing was kept by the refusals.
    assert (await doctor.get("/api/billing/records")).body["items"] == []


async def test_no_video_no_teleconsultation_act(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    call_id = await video_call(doctor, patient, cid, seconds=5)
    proposal = await doctor.get(f"/api/calls/{call_id}/billing")
    assert proposal.body["acts"] == []
    assert any("doit avoir lieu en vidéo" in w for w in proposal.body["warnings"])
    refused = await doctor.post(f"/api/calls/{call_id}/billing", record_body("TCG"))
    assert refused.status == 422 and "vidéo" in refused.body["detail"]


async def test_child_under_six_gets_meg(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    assert patient.user
    await set_birth_date(doctor, patient.user["id"], date(2022, 3, 1))
    call_id = await video_call(doctor, patient, cid)
    proposal = await doctor.get(f"/api/calls/{call_id}/billing")
    assert [a["code"] for a in proposal.body["acts"]] == ["TCG", "MEG"]
    assert proposal.body["total_cents"] == 3000
    child_nir = "2220375120005"
    from server.billing.nir import key_of

    saved = await doctor.post(
        f"/api/calls/{call_id}/billing",
        {
            "acts": [{"code": "TCG"}, {"code": "MEG"}],
            "patient": {"nir": f"{child_nir}{key_of(child_nir):02d}", "birth_date": "2022-03-01"},
        },
    )
    assert saved.status == 201 and saved.body["total_cents"] == 3000


async def test_nurse_codes_by_place_with_the_doctor_as_prescriber(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    nurse = make_client()
    await nurse.register(
        email="n@example.fr", first_name="Nina", last_name="Nurse", role="nurse", rpps=valid_rpps(5)
    )
    call_id = await video_call(doctor, patient, cid, end=False)
    # During the call the doctor adds the nurse, who is at the patient's home for it.
    invited = await doctor.post(
        f"/api/calls/{call_id}/invite-nurse",
        {"nurse_id": nurse.user["id"], "assistance": "in_room", "place": "home"},  # type: ignore[index]
    )
    assert invited.status == 200 and invited.body["assistance_place"] == "home", invited
    await doctor.post(f"/api/calls/{call_id}/end")
    proposal = await nurse.get(f"/api/calls/{call_id}/billing")
    assert proposal.status == 200, proposal
    assert [(a["code"], a["amount_cents"]) for a in proposal.body["acts"]] == [("TLD", 1500)]
    mismatch = await nurse.post(f"/api/calls/{call_id}/billing", record_body("TLS"))
    assert mismatch.status == 422 and "codez TLD" in mismatch.body["detail"]
    # The nurse may correct the place on the form: a planned nursing visit is TLS.
    other_place = await nurse.get(f"/api/calls/{call_id}/billing?place=planned_visit")
    assert [a["code"] for a in other_place.body["acts"]] == ["TLS"]
    doctor_code = await nurse.post(f"/api/calls/{call_id}/billing", record_body("TCG"))
    assert doctor_code.status == 422 and "acte de médecin" in doctor_code.body["detail"]
    saved = await nurse.post(f"/api/calls/{call_id}/billing", record_body("TLD"))
    assert saved.status == 201, saved
    assert saved.body["prescriber_rpps"] == doctor.user["rpps"]  # type: ignore[index]
    assert saved.body["professional"]["role"] == "nurse"
    # The doctor's own act is a separate record of the same call.
    doctor_saved = await doctor.post(f"/api/calls/{call_id}/billing", record_body("TCG"))
    assert doctor_saved.status == 201 and doctor_saved.body["prescriber_rpps"] is None
    assert [
        r["acts"][0]["code"] for r in (await nurse.get("/api/billing/records")).body["items"]
    ] == ["TLD"]


async def test_who_may_code(doctor: Client, patient: Client, make_client: MakeClient) -> None:
    cid = await connect(doctor, patient)
    call_id = await video_call(doctor, patient, cid)
    assert (await patient.get(f"/api/calls/{call_id}/billing")).status == 403
    assert (await patient.post(f"/api/calls/{call_id}/billing", record_body("TCG"))).status == 403
    other = make_client()
    await other.register(
        email="o@example.fr", first_name="O", last_name="D", role="doctor", rpps=valid_rpps(9)
    )
    assert (await other.get(f"/api/calls/{call_id}/billing")).status == 404
    assert doctor.user
    secretary = make_client()
    await make_secretary(secretary, doctor.user["id"])
    proposal = await secretary.get(f"/api/calls/{call_id}/billing")
    assert proposal.status == 200 and proposal.body["professional"]["id"] == doctor.user["id"]
    saved = await secretary.post(f"/api/calls/{call_id}/billing", record_body("TCG"))
    assert saved.status == 201 and saved.body["professional"]["id"] == doctor.user["id"]
    assert len((await secretary.get("/api/billing/records")).body["items"]) == 1
    assert (await patient.get("/api/billing/records")).status == 403


async def test_billing_profile_feeds_the_record_and_the_checks(
    doctor: Client, patient: Client
) -> None:
    bad = await doctor.request("PUT", "/api/me/billing-profile", {"am_number": "12"})
    assert bad.status == 422 and "9 chiffres" in bad.body["detail"]
    put = await doctor.request(
        "PUT",
        "/api/me/billing-profile",
        {"am_number": "751234567", "practice_postcode": "75011", "yearly_acts": 4000},
    )
    assert put.status == 200 and put.body["am_number"] == "751234567"
    cid = await connect(doctor, patient)
    call_id = await video_call(doctor, patient, cid)
    far = await doctor.get(f"/api/calls/{call_id}/billing?pathway=referred")
    assert not any(w.startswith("Plafond annuel (20 %") for w in far.body["warnings"])
    saved = await doctor.post(
        f"/api/calls/{call_id}/billing",
        record_body(
            "TCG",
            pathway="referred",
            patient={"nir": NIR, "birth_date": ADULT_BIRTH, "postcode": "13001"},
        ),
    )
    assert saved.status == 201
    assert saved.body["professional"]["am_number"] == "751234567"
    assert any("hors de votre département (13, vous : 75)" in w for w in saved.body["warnings"])
