"""Files encrypted at rest: AES-256-GCM under a key of each file's own, wrapped by the install's
master key (domain.md §Confidentiality; issue 24).

A stolen disk or backup of ``uploads/`` holds nothing readable without the master key, which is
not in the database (``TC_DATA_KEY``, or ``data_key`` in the data directory, mode 0600). Each file
gets a random data key; only its wrapped form is stored, in the file's header, so rotating the
master key rewrites 76 bytes per file, not the files.

The body is cut in chunks of ``CHUNK`` bytes, each sealed with a nonce made of its index and a
"last chunk" flag (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár, as in Tink
and age): a chunk moved, dropped or a file cut short fails to open, and nothing is ever held
whole in memory. The primitives are the ``cryptography`` library's; nothing here is new
cryptography, only the file layout:

    "TCF1" | key id (8) | wrap nonce (12) | wrapped data key (32 + 16) | chunk size (4)
    then chunks of ciphertext (chunk size + 16), the last one flagged, possibly empty.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"TCF1"
CHUNK = 256 * 1024
TAG = 16
KEY_BYTES = 32
_ID = slice(4, 12)
HEADER_BYTES = 4 + 8 + 12 + KEY_BYTES + TAG + 4


class DataKeyError(Exception):
    """The master key is missing, malformed, or does not open this install's files."""


class FileDamaged(Exception):
    """A stored file does not open: altered, cut short, or not one of ours."""


def new_master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"teleconsult data key id\0" + key).digest()[:8]


class KeyRing:
    """The master keys: the first seals new files, every one opens (during a rotation the old
    key still opens the files not yet rewrapped)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise DataKeyError("no data key")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise DataKeyError("a data key is 32 bytes (44 characters of base64)")
        self.keys = list(keys)
        self._by_id = {key_id(k): AESGCM(k) for k in keys}
        self.current_id = key_id(keys[0])

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Keys in URL-safe base64, separated by commas or new lines; the first is current."""
        keys = []
        for part in text.replace(",", "\n").split():
            try:
                keys.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            except ValueError as exc:
                raise DataKeyError("a data key is not valid base64") from exc
        return cls(keys)

    def wrap(self, data_key: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        wrapped = self._by_id[self.current_id].encrypt(nonce, data_key, MAGIC + self.current_id)
        return self.current_id + nonce + wrapped

    def unwrap(self, header: bytes) -> bytes:
        if len(header) < HEADER_BYTES or header[:4] != MAGIC:
            raise FileDamaged("not an encrypted file of ours")
        ident = header[_ID]
        master = self._by_id.get(ident)
        if master is None:
            raise DataKeyError("this file was sealed with a master key that is not configured")
        try:
            return master.decrypt(header[12:24], header[24 : 24 + KEY_BYTES + TAG], MAGIC + ident)
        except InvalidTag as exc:
            raise FileDamaged("the file's key does not open") from exc


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class Sealer:
    """Encrypts one file as it comes: ``header()``, then ``update()`` for each piece, then
    ``finish()``. Holds at most one chunk."""

    def __init__(self, ring: KeyRing) -> None:
        data_key = AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(data_key)
        self._header = MAGIC + ring.wrap(data_key) + CHUNK.to_bytes(4, "big")
        self._pending = bytearray()
        self._index = 0

    def header(self) -> bytes:
        return self._header

    def update(self, data: bytes) -> bytes:
        self._pending += data
        out = bytearray()
        # The last full chunk waits: only the end of the input says whether it is the last.
        while len(self._pending) > CHUNK:
            out += self._seal(bytes(self._pending[:CHUNK]), last=False)
            del self._pending[:CHUNK]
        return bytes(out)

    def finish(self) -> bytes:
        return self._seal(bytes(self._pending), last=True)

    def _seal(self, chunk: bytes, *, last: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._index, last), chunk, MAGIC)
        self._index += 1
        return sealed


def read_header(f: BinaryIO) -> bytes:
    header = f.read(HEADER_BYTES)
    if len(header) != HEADER_BYTES:
        raise FileDamaged("the file is shorter than its header")
    return header


def opened(f: BinaryIO, ring: KeyRing) -> Iterator[bytes]:
    """The plaintext of an encrypted file, chunk by chunk (a generator: call ``next`` from a
    thread). Raises ``FileDamaged`` at the first chunk that does not open."""
    header = read_header(f)
    aead = AESGCM(ring.unwrap(header))
    size = int.from_bytes(header[-4:], "big") + TAG
    block = f.read(size)
    index = 0
    while True:
        following = f.read(size)
        last = not following
        try:
            yield aead.decrypt(_nonce(index, last), block, MAGIC)
        except InvalidTag as exc:
            raise FileDamaged(f"chunk {index} does not open") from exc
        if last:
            return
        block, index = following, index + 1


def sealed_with(path: os.PathLike[str] | str) -> bytes:
    """The id of the master key a file's data key is sealed with."""
    with open(path, "rb") as f:
        return read_header(f)[_ID]


def rewrap(path: os.PathLike[str] | str, ring: KeyRing) -> bool:
    """Seal the file's data key with the ring's current master key (a rotation); the body is
    untouched. False if it already was."""
    with open(path, "r+b") as f:
        header = read_header(f)
        if header[_ID] == ring.current_id:
            return False
        data_key = ring.unwrap(header)
        f.seek(0)
        f.write(MAGIC + ring.wrap(data_key) + header[-4:])
        f.flush()
        os.fsync(f.fileno())
    return True
