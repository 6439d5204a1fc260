"""Attachment storage: streamed to disk encrypted, typed by content, size-limited.

The type is read from the file's first bytes, never from its name or the browser's claim: a
``.pdf`` that is really an executable is refused. Each file is sealed with a key of its own
(``filecrypt``) and lives at ``uploads/ab/<random name>``: neither its name nor its bytes tell what
it holds, nor that two people hold the same file (content addressing did: the same SHA-256).
Files stored in clear by earlier versions (``uploads/ab/<sha256>``) are sealed at start-up
(``seal_plain_files``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from server import filecrypt
from server.errors import TooLarge, UnsupportedMediaType
from server.filecrypt import DataKeyError, KeyRing

log = logging.getLogger("teleconsult.storage")
KEY_CHECK = ".keycheck"
READ_CHUNKS_PER_TRIP = 4  # 1 MiB decrypted per thread hop when a file is read
WRITE_BYTES_PER_TRIP = 1024 * 1024
_KEY_CHECK_TEXT = b"teleconsult data key check"

ACCEPTED = "PDF, JPEG, PNG ou HEIC/HEIF"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/heic": ".heic",
    "image/heif": ".heif",
}
# What pages may offer: the types the server keeps (found from the content, not the name).
ACCEPTED_TYPES = frozenset(_EXTENSIONS)


def sniff(head: bytes) -> str | None:
    """The real type of a file from its first bytes, among those we accept."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "image/heic" if brand.startswith(b"he") else "image/heif"
    return None


def safe_filename(name: str | None, content_type: str) -> str:
    """Keep the name the person gave (it helps them), stripped of paths and control characters,
    with the extension of its real type."""
    # Some clients percent-encode the name in the multipart header; browsers send it raw.
    base = os.path.basename(unquote(name or "").replace("\\", "/")).strip()
    base = "".join(c for c in base if c.isprintable() and c not in '"<>|:*?')[:200]
    stem, _ = os.path.splitext(base)
    return (stem or "document") + _EXTENSIONS[content_type]


@dataclass(frozen=True)
class StoredFile:
    name: str  # random: the file's place under uploads/, telling nothing of its content
    size: int
    content_type: str


class FileMissing(Exception):
    pass


class AttachmentStore:
    def __init__(self, root: Path, max_bytes: int, ring: KeyRing) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.ring = ring

    def path_of(self, name: str) -> Path:
        if not name.isalnum():
            raise ValueError("a stored file's name is letters and digits")
        return self.root / name[:2] / name

    def check_key(self) -> None:
        """At start-up: the master key opens this install's files, or a clear error. The first
        start writes a small sealed file that later starts open."""
        self.root.mkdir(parents=True, exist_ok=True)
        check = self.root / KEY_CHECK
        if check.exists():
            try:
                with check.open("rb") as f:
                    text = b"".join(filecrypt.opened(f, self.ring))
            except (DataKeyError, filecrypt.FileDamaged) as exc:
                raise DataKeyError(
                    f"the data key (TC_DATA_KEY or data_key in the data directory) does not "
                    f"open the files in {self.root}: it is not the key they were sealed with"
                ) from exc
            if text != _KEY_CHECK_TEXT:
                raise DataKeyError(f"{check} is not this install's key check")
            if filecrypt.sealed_with(check) != self.ring.current_id:
                self._write_key_check(check)  # after a rotation: sealed with the new key
            return
        self._write_key_check(check)

    def _write_key_check(self, check: Path) -> None:
        sealer = filecrypt.Sealer(self.ring)
        tmp = check.with_suffix(".tmp")
        tmp.write_bytes(sealer.header() + sealer.update(_KEY_CHECK_TEXT) + sealer.finish())
        tmp.replace(check)

    async def save(self, chunks: AsyncIterator[bytes]) -> StoredFile:
        """Seal the stream into a temporary file, checking type and size as it comes; move it
        into place only when complete, so a refused or broken upload leaves nothing behind."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        tmp = Path(tmp_name)
        sealer = filecrypt.Sealer(self.ring)
        size = 0
        head = b""
        content_type: str | None = None
        pending = bytearray()
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(sealer.header())
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(
                            f"Le fichier dépasse la taille maximale de "
                            f"{self.max_bytes // (1024 * 1024)} Mo."
                        )
                    if content_type is None:
                        head += chunk[: 64 - len(head)]
                        if len(head) >= 12 or size >= 64:
                            content_type = self._check_type(head)
                    pending += sealer.update(chunk)
                    if len(pending) >= WRITE_BYTES_PER_TRIP:
                        await asyncio.to_thread(out.write, bytes(pending))
                        pending.clear()
                if content_type is None:
                    content_type = self._check_type(head)
                pending += sealer.finish()
                await asyncio.to_thread(out.write, bytes(pending))
            name = secrets.token_hex(16)
            await asyncio.to_thread(_move_into_place, tmp, self.path_of(name))
            return StoredFile(name, size, content_type)
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def chunks(self, name: str) -> AsyncGenerator[bytes, None]:
        """The file's plaintext, a chunk at a time, opened and decrypted in a thread."""
        try:
            f = await asyncio.to_thread(self.path_of(name).open, "rb")
        except FileNotFoundError:
            raise FileMissing(name) from None
        try:
            pieces = filecrypt.opened(f, self.ring)
            # A few chunks per trip to the thread pool: fewer hops, still a bounded memory.
            while piece := await asyncio.to_thread(_next_many, pieces, READ_CHUNKS_PER_TRIP):
                yield piece
        finally:
            await asyncio.to_thread(f.close)

    async def read(self, name: str) -> bytes:
        """A whole file (small ones: a generated PDF read back)."""
        return b"".join([piece async for piece in self.chunks(name)])

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self.path_of(name).unlink, missing_ok=True)

    def stored_names(self) -> Iterator[str]:
        for folder in sorted(self.root.iterdir()) if self.root.exists() else ():
            if folder.is_dir() and len(folder.name) == 2:
                for path in sorted(folder.iterdir()):
                    if not path.name.startswith("."):
                        yield path.name

    def rewrap_all(self) -> tuple[int, int]:
        """Rotation: every file's data key sealed with the current master key. Returns (files
        rewrapped, files already current); synchronous, for the command line."""
        done = current = 0
        for name in self.stored_names():
            path = self.path_of(name)
            with path.open("rb") as f:
                is_ours = f.read(4) == filecrypt.MAGIC
            if not is_ours:
                continue  # a file still in clear: sealed at the next start
            if filecrypt.rewrap(path, self.ring):
                done += 1
            else:
                current += 1
        self._write_key_check(self.root / KEY_CHECK)
        return done, current

    def seal_plain(self, sha256: str) -> StoredFile | None:
        """An earlier version's clear file (``ab/<sha256>``) sealed under a new name; None if it
        is gone. The clear file is left for the caller to remove once the rows point to the
        new one. Synchronous: run it in a thread."""
        plain = self.root / sha256[:2] / sha256
        try:
            f: BinaryIO = plain.open("rb")
        except FileNotFoundError:
            return None
        name = secrets.token_hex(16)
        final = self.path_of(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name("." + name)
        sealer = filecrypt.Sealer(self.ring)
        size = 0
        head = b""
        with f, tmp.open("wb") as out:
            out.write(sealer.header())
            while piece := f.read(filecrypt.CHUNK):
                size += len(piece)
                head += piece[: 64 - len(head)]
                out.write(sealer.update(piece))
            out.write(sealer.finish())
        os.replace(tmp, final)
        return StoredFile(name, size, sniff(head) or "application/octet-stream")

    def remove_plain(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / sha256[:2] / sha256).unlink()

    @staticmethod
    def _check_type(head: bytes) -> str:
        if not head:
            raise UnsupportedMediaType("Le fichier est vide.")
        found = sniff(head)
        if found is None:
            raise UnsupportedMediaType(
                f"Ce type de fichier n'est pas accepté : envoyez un {ACCEPTED}."
            )
        return found


def _next_many(pieces: Iterator[bytes], count: int) -> bytes:
    return b"".join(piece for _, piece in zip(range(count), pieces, strict=False))


def _move_into_place(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
