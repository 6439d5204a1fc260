"""Billing records as the practice's billing software imports them: JSON, or CSV with one row
per act. Every FSE field is its own column, named plainly; no wire format is invented (real
télétransmission goes through the practice's certified SESAM-Vitale software)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from server.http.serialize import iso
from server.models import BillingRecord, User

# Headers in French, as the practice reads them in a spreadsheet or maps them in its software
# (issue 26, item 10); one column per FSE field.
CSV_COLUMNS = (
    "Identifiant cotation",
    "Date de l'acte",
    "Téléconsultation",
    "Profession",
    "Nom du praticien",
    "Prénom du praticien",
    "RPPS du praticien",
    "N° Assurance Maladie du cabinet",
    "RPPS du prescripteur",
    "Nom du patient",
    "Prénom du patient",
    "NIR du patient",
    "Date de naissance du patient",
    "Rang de naissance",
    "Régime",
    "Caisse",
    "Parcours de soins",
    "Exonération",
    "Code acte",
    "Libellé de l'acte",
    "Montant (centimes)",
    "Montant (€)",
    "Total de la consultation (centimes)",
    "Identifiant de l'appel ou de la téléexpertise",
)

PROFESSIONS = {"doctor": "médecin", "nurse": "infirmier"}
PATHWAYS = {
    "treating_doctor": "médecin traitant",
    "referred": "orienté par le médecin traitant",
    "direct_access": "accès direct",
    "urgency": "urgence",
    "out_of_pathway": "hors parcours",
}


@dataclass(frozen=True)
class Patient:
    """Whom a record is about: a patient's account, or, for a tele-expertise, the names the
    requester gave (that patient has no account)."""

    id: str | None
    first_name: str
    last_name: str


def patient_of(row: BillingRecord, account: User | None) -> Patient:
    if account is not None:
        return Patient(account.id, account.first_name, account.last_name)
    return Patient(None, row.patient_first_name or "", row.patient_last_name or "")


def record_json(row: BillingRecord, professional: User, patient: Patient) -> dict[str, Any]:
    return {
        "id": row.id,
        "call_id": row.call_id,
        "expertise_request_id": row.expertise_request_id,
        "act_date": row.act_date.isoformat(),
        "teleconsultation": row.teleconsultation,
        "professional": {
            "id": professional.id,
            "role": row.professional_role,
            "first_name": professional.first_name,
            "last_name": professional.last_name,
            "rpps": row.professional_rpps,
            "am_number": row.professional_am_number,
            "specialty": professional.specialty,
        },
        "prescriber_rpps": row.prescriber_rpps,
        "patient": {
            "id": patient.id,
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "nir": row.patient_nir,
            "birth_date": row.patient_birth_date.isoformat(),
            "birth_rank": row.birth_rank,
            "insurance_scheme": row.insurance_scheme,
            "insurance_fund": row.insurance_fund,
        },
        "pathway": row.pathway,
        "exemption": row.exemption,
        "acts": row.acts,
        "total_cents": row.total_cents,
        "currency": row.currency,
        "warnings": row.warnings,
        "created_at": iso(row.created_at),
    }


def _text(value: str) -> str:
    """A name typed by a person must not become a spreadsheet formula when the CSV is opened."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def to_csv(rows: list[tuple[BillingRecord, User, Patient]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row, professional, patient in rows:
        for act in row.acts:
            cents = int(act["amount_cents"])
            writer.writerow(
                (
                    row.id,
                    _date(row.act_date),
                    "oui" if row.teleconsultation else "non",
                    PROFESSIONS.get(row.professional_role, row.professional_role),
                    _text(professional.last_name),
                    _text(professional.first_name),
                    row.professional_rpps or "",
                    row.professional_am_number or "",
                    row.prescriber_rpps or "",
                    _text(patient.last_name),
                    _text(patient.first_name),
                    row.patient_nir,
                    _date(row.patient_birth_date),
                    row.birth_rank,
                    row.insurance_scheme or "",
                    row.insurance_fund or "",
                    PATHWAYS.get(row.pathway, row.pathway) if row.pathway else "",
                    row.exemption or "",
                    act["code"],
                    act.get("label", ""),
                    cents,
                    f"{cents // 100},{cents % 100:02d}",
                    row.total_cents,
                    row.call_id or row.expertise_request_id or "",
                )
            )
    return out.getvalue()
