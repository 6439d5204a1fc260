"""What the professionals see of a participant's connection: their device check and a summary
of their latest quality samples, with the words to say what is wrong and what to do. Pure
functions over the call's events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["good", "weak", "bad"]
LEVELS: tuple[Level, ...] = ("good", "weak", "bad")

# Over the last two samples (5 s): share of packets lost, and round trip.
WEAK_LOSS, BAD_LOSS = 0.03, 0.10
WEAK_RTT_MS, BAD_RTT_MS = 300.0, 800.0


class NetworkCheck(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rtt_ms: float | None = Field(default=None, ge=0, le=60_000)
    relay: Literal["ok", "failed", "untested"] = "untested"


DeviceState = Literal["ok", "denied", "missing", "busy"]


class DeviceCheck(BaseModel):
    """``call:check``: what the page's device check found (contract: api.md)."""

    model_config = ConfigDict(extra="ignore")
    camera: DeviceState
    microphone: DeviceState
    network: NetworkCheck = Field(default_factory=NetworkCheck)
    browser: str = Field(default="", max_length=200)


_DEVICE = {"camera": "caméra", "microphone": "micro"}
_FIX = {
    "denied": "refusé{e} par le navigateur : cliquez sur le cadenas de la barre d'adresse et "
    "autorisez-l{a}, puis rechargez la page",
    "missing": "introuvable : branchez-l{a} ou utilisez un autre appareil",
    "busy": "déjà utilisé{e} par une autre application : fermez-la (Zoom, Teams…) puis rechargez",
}


def problems_of_check(check: Mapping[str, Any]) -> list[str]:
    """The device check's findings as sentences a doctor can read out to the patient."""
    out = []
    for key, noun in _DEVICE.items():
        state = check.get(key)
        if state in _FIX:
            feminine = key == "camera"
            fix = _FIX[state].format(e="e" if feminine else "", a="a" if feminine else "e")
            out.append(f"{noun[0].upper()}{noun[1:]} {fix}.")
    network = check.get("network") or {}
    if network.get("relay") == "failed":
        out.append(
            "Réseau bloquant : le relais TURN est injoignable, la vidéo risque de ne pas passer "
            "(réseau d'entreprise ou d'hôpital : essayer en 4G ou en Wi-Fi personnel)."
        )
    rtt = network.get("rtt_ms")
    if isinstance(rtt, int | float) and rtt >= BAD_RTT_MS:
        out.append(
            f"Connexion très lente ({int(rtt)} ms) : se rapprocher de la box ou passer en 4G."
        )
    return out


def latest_check(events: Sequence[Any]) -> dict[str, Any] | None:
    """The person's latest device check, with its findings in words; None if none came."""
    checks = [e for e in events if e.kind == "check" and e.data]
    if not checks:
        return None
    data = dict(checks[-1].data)
    return {**data, "at": checks[-1].at.isoformat(), "problems": problems_of_check(data)}


def _lost_ratio(before: Mapping[str, Any], after: Mapping[str, Any]) -> float | None:
    def count(sample: Mapping[str, Any], key: str) -> int:
        total = 0
        for section in ("audio_in", "video_in"):
            value = (sample.get(section) or {}).get(key)
            if isinstance(value, int | float):
                total += int(value)
        return total

    lost = count(after, "packets_lost") - count(before, "packets_lost")
    received = count(after, "packets") - count(before, "packets")
    if lost < 0 or received < 0 or lost + received == 0:
        return None
    return lost / (lost + received)


def level_of(rtt_ms: float | None, lost: float | None) -> Level:
    if (lost is not None and lost >= BAD_LOSS) or (rtt_ms is not None and rtt_ms >= BAD_RTT_MS):
        return "bad"
    if (lost is not None and lost >= WEAK_LOSS) or (rtt_ms is not None and rtt_ms >= WEAK_RTT_MS):
        return "weak"
    return "good"


LEVEL_WORDS = {
    "good": "Connexion bonne.",
    "weak": "Connexion faible : la vidéo est réduite pour garder le son.",
    "bad": "Connexion très faible : vidéo suspendue, le son est gardé.",
}


def quality(events: Sequence[Any]) -> dict[str, Any] | None:
    """A summary of the person's latest quality samples from their own page (what they receive):
    round trip, loss, picture, a level and its words; None before the first sample."""
    samples = [
        e
        for e in events
        if e.kind == "stats" and e.data and (e.data.get("source") or "page") == "page"
    ]
    if not samples:
        return None
    last = samples[-1]
    same = [e for e in samples if e.data.get("about") == last.data.get("about")]
    lost = _lost_ratio(same[-2].data, last.data) if len(same) >= 2 else None
    rtt = last.data.get("rtt_ms")
    rtt = float(rtt) if isinstance(rtt, int | float) else None
    video = last.data.get("video_in") or {}
    level = level_of(rtt, lost)
    # What the page found of its own sending (link.js): the worse of the two is shown.
    said = last.data.get("link")
    if said in LEVEL_WORDS and LEVELS.index(said) > LEVELS.index(level):
        level = said
    return {
        "at": last.at.isoformat(),
        "rtt_ms": rtt,
        "lost": round(lost, 3) if lost is not None else None,
        "fps": video.get("fps"),
        "height": video.get("height"),
        "video_paused": bool(last.data.get("video_paused")),
        "level": level,
        "words": LEVEL_WORDS[level],
    }
