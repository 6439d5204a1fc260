"""Prescription and sick-leave PDFs, made on the server from the doctor's lines (fpdf2).

A PDF rather than a page: it is what patients forward to a pharmacy or an employer, and it must
read the same everywhere. DejaVu Sans is embedded when the system has it (every character of
French and of drug names); otherwise the PDF core font is used and the few characters it lacks
are spelled in Latin-1.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from fpdf import FPDF

_FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
    Path("/usr/local/share/fonts/DejaVuSans.ttf"),
)
_LATIN1_SPELLING = str.maketrans(
    {
        "œ": "oe",
        "Œ": "OE",
        "€": "EUR",
        "’": "'",
        "‘": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "…": "...",
        "→": "->",
        "•": "-",
        "\u202f": " ",
        "\u2009": " ",
    }
)

TITLES = {
    "prescription": "Ordonnance",
    "sick_leave": "Avis d'arrêt de travail",
    "other": "Document",
}


@dataclass(frozen=True)
class Person:
    name: str
    birth_date: date | None = None


@dataclass(frozen=True)
class Author:
    name: str
    rpps: str | None
    specialty: str | None
    practice_name: str | None
    practice_address: str | None


@dataclass(frozen=True)
class DocumentContent:
    kind: str  # prescription | sick_leave | other
    author: Author
    patient: Person
    issued_at: datetime  # local time (Europe/Paris)
    lines: tuple[str, ...] = ()
    title: str | None = None
    sick_leave_from: date | None = None
    sick_leave_until: date | None = None
    replaces: str | None = None  # "Ordonnance du 20/11/2026", for a correction
    reference: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def _font_path() -> Path | None:
    return next((p for p in _FONT_CANDIDATES if p.is_file()), None)


class _Writer:
    def __init__(self) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_margins(20, 20, 20)
        self.pdf.set_auto_page_break(True, margin=22)
        font = _font_path()
        if font is not None:
            self.pdf.add_font("body", "", str(font))
            bold = font.with_name("DejaVuSans-Bold.ttf")
            self.pdf.add_font("body", "B", str(bold if bold.is_file() else font))
            self.family = "body"
            self.unicode = True
        else:
            self.family = "helvetica"
            self.unicode = False

    def text(self, value: str) -> str:
        if self.unicode:
            return value
        value = value.translate(_LATIN1_SPELLING)
        out = []
        for char in value:
            if ord(char) < 256:
                out.append(char)
            else:  # strip accents the core font lacks; drop what has no Latin form
                base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode()
                out.append(base or "?")
        return "".join(out)

    def line(self, value: str, *, size: float = 11, bold: bool = False, gap: float = 6) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)
        self.pdf.multi_cell(0, gap, self.text(value), new_x="LMARGIN", new_y="NEXT")


Writer = _Writer  # for the other PDFs of the app (the tele-expertise report)


def _fr(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def render(content: DocumentContent) -> bytes:
    """The PDF of one document."""
    w = _Writer()
    pdf = w.pdf
    title = content.title or TITLES[content.kind]
    pdf.set_title(w.text(f"{title} - {content.patient.name}"))
    pdf.set_author(w.text(content.author.name))
    pdf.set_creator("Téléconsult")
    pdf.set_creation_date(content.issued_at)
    pdf.add_page()
    author = content.author
    w.line(author.name, size=13, bold=True)
    if author.specialty:
        w.line(author.specialty)
    if author.rpps:
        w.line(f"RPPS : {author.rpps}")
    if author.practice_name:
        w.line(author.practice_name)
    if author.practice_address:
        w.line(author.practice_address)
    pdf.ln(4)
    w.line(f"Le {_fr(content.issued_at.date())}", gap=6)
    pdf.ln(6)
    w.line(title.upper(), size=15, bold=True, gap=8)
    pdf.ln(2)
    patient = content.patient
    born = (
        f", né(e) le {_fr(patient.birth_date)}"
        if patient.birth_date
        else " (date de naissance non renseignée)"
    )
    w.line(f"Patient : {patient.name}{born}", bold=True)
    pdf.ln(4)
    if content.kind == "sick_leave" and content.sick_leave_from and content.sick_leave_until:
        days = (content.sick_leave_until - content.sick_leave_from).days + 1
        w.line(
            f"Arrêt de travail du {_fr(content.sick_leave_from)} au "
            f"{_fr(content.sick_leave_until)} inclus ({days} jour{'s' if days > 1 else ''}).",
            bold=True,
        )
        pdf.ln(2)
    for index, text in enumerate(content.lines, start=1):
        prefix = f"{index}. " if content.kind == "prescription" else ""
        w.line(prefix + text)
        pdf.ln(1.5)
    pdf.ln(6)
    for note in content.notes:
        w.line(note, size=9, gap=5)
    w.line(
        f"Établi en téléconsultation le {_fr(content.issued_at.date())} à "
        f"{content.issued_at:%H:%M}.",
        size=9,
        gap=5,
    )
    if content.replaces:
        w.line(f"Ce document annule et remplace : {content.replaces}.", size=9, gap=5)
    if content.reference:
        w.line(f"Référence : {content.reference}", size=8, gap=5)
    return bytes(pdf.output())
