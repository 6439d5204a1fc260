"""Rotating the master key that seals stored files (``teleconsult rotate-data-key``).

Each file's data key is rewrapped with the new master key (76 bytes rewritten per file, the body
untouched). Two ways, as the key is kept:

- in ``data_key`` in the data directory (the default): the command makes the new key, keeps the
  old one beside it while it rewraps, then keeps only the new one. Stop the server first: a
  running server still seals new uploads with the key it read at start-up.
- in ``TC_DATA_KEY``: set ``TC_DATA_KEY=<new>,<old>`` and restart (new uploads are sealed with
  the new key, the old still opens the rest), run the command, then set ``TC_DATA_KEY=<new>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.filecrypt import KeyRing, new_master_key
from server.settings import Settings
from server.storage import AttachmentStore


class RotationRefused(Exception):
    pass


@dataclass(frozen=True)
class Rotation:
    rewrapped: int
    already_current: int
    message: str


def _write_key_file(settings: Settings, text: str) -> None:
    path = settings.data_dir / "data_key"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def rotate(settings: Settings, *, from_env: bool) -> Rotation:
    """``settings`` with their data key loaded (``with_secret``)."""
    ring = KeyRing.parse(settings.data_key)
    if from_env:
        if len(ring.keys) < 2:
            raise RotationRefused(
                "TC_DATA_KEY holds one key: set TC_DATA_KEY=<new key>,<current key> and restart "
                f"the server first. A new key you may use: {new_master_key()}"
            )
        store = AttachmentStore(settings.uploads_dir, settings.upload_max_bytes, ring)
        store.check_key()
        done, current = store.rewrap_all()
        return Rotation(
            done,
            current,
            "every file is sealed with the first key of TC_DATA_KEY: set TC_DATA_KEY to it "
            "alone, restart, and keep the old key out of reach",
        )
    old = settings.data_key.replace(",", "\n").split()
    new = new_master_key()
    # The old key stays beside the new one until every file is rewrapped: an interrupted
    # rotation is run again and finishes.
    _write_key_file(settings, ",".join([new, *old]))
    store = AttachmentStore(
        settings.uploads_dir, settings.upload_max_bytes, KeyRing.parse(",".join([new, *old]))
    )
    store.check_key()
    done, current = store.rewrap_all()
    _write_key_file(settings, new)
    return Rotation(
        done,
        current,
        f"the new key is in {settings.data_dir / 'data_key'}: back it up now, in place of the "
        "old one",
    )
