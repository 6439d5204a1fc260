"""What notifications say, in French, for a person who reads them on a phone's lock screen.

Never any health content (domain.md §7, "Confidentiality"): who wrote and a link, never what
was written, which document, which amount or why. The link opens the page after sign-in.
Short sentences; an SMS stays within one or two segments with its link.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from server.outbound.push import Push
from server.outbound.senders import Email, Sms

_AUTOMATIC = "Ce message est envoyé automatiquement par Téléconsult : n'y répondez pas."


@dataclass(frozen=True)
class Words:
    """One notice, said once and rendered for each channel."""

    subject: str  # the email's subject and the push's title
    lines: tuple[str, ...]  # the email's paragraphs; the first is the push's text
    link: str
    button: str  # the email's link text
    sms: str  # the whole SMS but the link
    tag: str  # pushes with one tag replace each other on the phone

    def email(self, to: str, greeting: str) -> Email:
        text = "\n\n".join((greeting, *self.lines, f"{self.button} :\n{self.link}", _AUTOMATIC))
        paragraphs = "".join(f"<p>{escape(line)}</p>" for line in self.lines)
        html = (
            f"<p>{escape(greeting)}</p>{paragraphs}"
            f'<p><a href="{escape(self.link)}" style="font-size:1.2em">{escape(self.button)}</a>'
            f"</p><p>Si le lien ne s'ouvre pas, copiez cette adresse dans votre navigateur :<br>"
            f"{escape(self.link)}</p><p>{escape(_AUTOMATIC)}</p>"
        )
        return Email(to=to, subject=self.subject, text=text + "\n", html=html)

    def sms_to(self, to: str) -> Sms:
        return Sms(to=to, text=f"{self.sms} {self.link}")

    def push(self) -> Push:
        return Push(title=self.subject, body=self.lines[0], url=self.link, tag=self.tag)


def greeting(first_name: str) -> str:
    return f"Bonjour {first_name},"


def call_started(caller: str, link: str, call_id: str) -> Words:
    return Words(
        subject=f"{caller} vous attend en vidéo",
        lines=(
            f"{caller} a ouvert votre téléconsultation vidéo et vous attend.",
            "Ouvrez le lien ci-dessous sur votre téléphone ou votre ordinateur : "
            "rien à installer. Autorisez la caméra et le micro quand la page vous le demande.",
        ),
        link=link,
        button="Rejoindre la téléconsultation",
        sms=f"Téléconsult : {caller} vous attend en vidéo. Pour rejoindre :",
        tag=f"call-{call_id}",
    )


def unread(author: str | None, link: str, conversation_id: str) -> Words:
    """``author``: a professional's name; None for a patient's message to a professional (a
    patient's name in a mail to the practice would say who consults)."""
    of_whom = f"de {author}" if author else "d'un patient"
    return Words(
        subject=f"Nouveau message {of_whom}",
        lines=(
            f"Vous avez un nouveau message {of_whom} sur Téléconsult.",
            "Pour le lire, ouvrez le lien ci-dessous et connectez-vous si on vous le demande.",
        ),
        link=link,
        button="Lire le message",
        sms=f"Téléconsult : vous avez un nouveau message {of_whom}. Pour le lire :",
        tag=f"conversation-{conversation_id}",
    )


def contact_request(link: str) -> Words:
    return Words(
        subject="Nouvelle demande de mise en relation",
        lines=(
            "Un patient demande à vous contacter sur Téléconsult.",
            "Vous pouvez accepter ou refuser sa demande depuis votre espace.",
        ),
        link=link,
        button="Voir la demande",
        sms="Téléconsult : un patient demande à vous contacter. Pour répondre :",
        tag="contact-requests",
    )


def expertise_request(line: str | None, link: str) -> Words:
    """No patient, no question: only that a colleague asks, and where."""
    where = f" sur la ligne « {line} »" if line else ""
    return Words(
        subject="Nouvelle demande de téléexpertise",
        lines=(
            f"Un confrère vous adresse une demande de téléexpertise{where}.",
            "Vous êtes le médecin d'avis du jour : la demande est visible par toute l'équipe.",
        ),
        link=link,
        button="Voir la demande",
        sms="Téléconsult : nouvelle demande de téléexpertise. Pour la voir :",
        tag="expertise",
    )


def expertise_late(line: str | None, link: str) -> Words:
    where = f" de la ligne « {line} »" if line else ""
    return Words(
        subject="Une demande de téléexpertise attend une réponse",
        lines=(
            f"Une demande de téléexpertise{where} a dépassé le délai de réponse promis.",
            "Un membre de l'équipe peut la prendre en charge ou la refuser en donnant la raison.",
        ),
        link=link,
        button="Voir la demande",
        sms="Téléconsult : une demande de téléexpertise a dépassé son délai. Pour la voir :",
        tag="expertise",
    )


def expertise_late_requester(line: str | None, link: str) -> Words:
    where = f" adressée à « {line} »" if line else ""
    return Words(
        subject="Votre demande de téléexpertise n'a pas encore de réponse",
        lines=(
            f"Votre demande de téléexpertise{where} n'a pas encore reçu de réponse dans le "
            "délai annoncé.",
            "Si la situation ne peut pas attendre, contactez le service par téléphone ou "
            "orientez le patient. En cas d'urgence, appelez le 15.",
        ),
        link=link,
        button="Voir la demande",
        sms="Téléconsult : votre demande de téléexpertise attend toujours une réponse :",
        tag="expertise",
    )


def password_link(link: str) -> Words:
    return Words(
        subject="Choisir un nouveau mot de passe",
        lines=(
            "Vous avez demandé à changer le mot de passe de votre compte Téléconsult.",
            "Ce lien est valable une heure et ne sert qu'une fois. Une fois le mot de passe "
            "changé, vos appareils connectés seront déconnectés.",
            "Si vous n'avez rien demandé, ignorez ce message : votre mot de passe ne change pas.",
        ),
        link=link,
        button="Choisir un nouveau mot de passe",
        sms="",
        tag="password",
    )


def email_confirmation(link: str) -> Words:
    return Words(
        subject="Confirmez votre adresse e-mail",
        lines=(
            "Vous venez de créer votre compte Téléconsult. Confirmez que cette adresse est "
            "bien la vôtre : c'est ici que nous vous préviendrons des messages de vos praticiens.",
            "Le lien est valable 7 jours.",
            "Si vous n'avez pas créé de compte, ignorez ce message.",
        ),
        link=link,
        button="Confirmer mon adresse",
        sms="",
        tag="verify",
    )


def password_code_sms(to: str, code: str) -> Sms:
    return Sms(
        to=to,
        text=(
            f"Téléconsult : votre code pour changer de mot de passe est {code}. "
            "Valable 1 heure. Ne le donnez à personne."
        ),
    )


def test_notice(link: str) -> Words:
    return Words(
        subject="Essai des notifications",
        lines=(
            "Ceci est un essai : les notifications de Téléconsult vous parviennent bien.",
            "Vous n'avez rien à faire.",
        ),
        link=link,
        button="Ouvrir Téléconsult",
        sms="Téléconsult : ceci est un essai, les SMS vous parviennent bien.",
        tag="test",
    )
