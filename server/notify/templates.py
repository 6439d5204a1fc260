"""The invitation messages (French). Plain text and HTML carry the same words and link."""

from __future__ import annotations

from datetime import datetime
from html import escape

from server.clock import PARIS
from server.outbound.senders import Email, Sms


def _date_fr(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%d/%m/%Y")


def invitation_email(
    *, to: str, patient_first_name: str, doctor_name: str, link: str, expires_at: datetime
) -> Email:
    until = _date_fr(expires_at)
    subject = f"{doctor_name} vous invite à la téléconsultation"
    text = (
        f"Bonjour {patient_first_name},\n\n"
        f"{doctor_name} vous invite sur Téléconsult, pour échanger par messages sécurisés "
        "et vous retrouver en téléconsultation vidéo, sans rien installer.\n\n"
        f"Pour accepter l'invitation, ouvrez ce lien (valable jusqu'au {until}) :\n{link}\n\n"
        "Vous pourrez y créer votre compte si vous n'en avez pas encore.\n"
        "Si vous ne connaissez pas ce praticien, ignorez ce message.\n"
    )
    html = (
        f"<p>Bonjour {escape(patient_first_name)},</p>"
        f"<p>{escape(doctor_name)} vous invite sur Téléconsult, pour échanger par messages "
        "sécurisés et vous retrouver en téléconsultation vidéo, sans rien installer.</p>"
        f'<p><a href="{escape(link)}">Accepter l\'invitation</a> '
        f"(lien valable jusqu'au {until})</p>"
        f"<p>Si le bouton ne fonctionne pas, copiez cette adresse dans votre navigateur :<br>"
        f"{escape(link)}</p>"
        "<p>Vous pourrez y créer votre compte si vous n'en avez pas encore. "
        "Si vous ne connaissez pas ce praticien, ignorez ce message.</p>"
    )
    return Email(to=to, subject=subject, text=text, html=html)


def invitation_sms(*, to: str, doctor_name: str, link: str, expires_at: datetime) -> Sms:
    # One SMS segment is 160 GSM characters; the link alone is ~70, so the text stays short.
    text = (
        f"{doctor_name} vous invite sur Téléconsult. "
        f"Lien valable jusqu'au {_date_fr(expires_at)} : {link}"
    )
    return Sms(to=to, text=text)
