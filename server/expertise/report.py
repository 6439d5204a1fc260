"""The tele-expertise report (PDF), made when the expert answers: the patient, the requester,
the experts, the dates, the consent, the questionnaire, every exchange and the list of files. It
is a legal condition of billing (TE2) and goes back to the requester, in the thread, for the
patient's record in their software."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from server.documents.pdf import Writer


@dataclass(frozen=True)
class Exchange:
    at: datetime
    author: str
    text: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class ReportContent:
    line: str | None
    requester: str
    experts: tuple[str, ...]
    patient: str
    patient_birth_date: date
    patient_nir: str | None
    requested_at: datetime
    consent_at: datetime
    answered_at: datetime
    answers: tuple[tuple[str, str], ...]
    exchanges: tuple[Exchange, ...]
    reference: str


def _when(at: datetime) -> str:
    return f"{at:%d/%m/%Y} à {at:%H:%M}"


def render(content: ReportContent) -> bytes:
    w = Writer()
    w.pdf.add_page()
    w.line("Compte rendu de téléexpertise", size=16, bold=True, gap=9)
    if content.line:
        w.line(f"Ligne d'avis : {content.line}", size=10)
    w.line(f"Demandée par : {content.requester}", size=10)
    w.line(f"Expert(s) : {', '.join(content.experts) or '—'}", size=10)
    w.line(
        f"Patient : {content.patient}, né(e) le {content.patient_birth_date:%d/%m/%Y}"
        + (f" — NIR {content.patient_nir}" if content.patient_nir else ""),
        size=10,
    )
    w.line(
        f"Demande du {_when(content.requested_at)} ; accord du patient confirmé par le "
        f"demandeur le {_when(content.consent_at)} ; avis rendu le {_when(content.answered_at)}.",
        size=10,
    )
    if content.answers:
        w.line("Questionnaire de la ligne", size=12, bold=True, gap=8)
        for label, value in content.answers:
            w.line(f"{label} : {value}", size=10)
    w.line("Échanges", size=12, bold=True, gap=8)
    for exchange in content.exchanges:
        w.line(f"{_when(exchange.at)} — {exchange.author}", size=10, bold=True)
        w.line(exchange.text or "(fichier seul)", size=10)
        for name in exchange.files:
            w.line(f"Pièce jointe : {name}", size=9, gap=5)
    w.line(f"Référence : {content.reference}", size=8, gap=5)
    return bytes(w.pdf.output())
