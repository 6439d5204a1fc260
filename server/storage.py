"""Attachment storage: streamed to disk, typed by content, size-limited, content-addressed.

The type is read from the file's first bytes, never from its name or the browser's claim: a
``.pdf`` that is really an executable is refused. Files live at ``uploads/ab/<sha256>``; the same
content uploaded twice is stored once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from server.errors import TooLarge, UnsupportedMediaType

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
    sha256: str
    size: int
    content_type: str


class AttachmentStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    async def save(self, chunks: AsyncIterator[bytes]) -> StoredFile:
        """Write the stream to a temporary file, checking type and size as it comes; move it into
        place only when complete, so a refused or broken upload leaves nothing behind."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        size = 0
        head = b""
        content_type: str | None = None
        try:
            with os.fdopen(fd, "wb") as out:
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
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            if content_type is None:
                content_type = self._check_type(head)
            sha = digest.hexdigest()
            final = self.path_of(sha)
            await asyncio.to_thread(_move_into_place, tmp, final)
            return StoredFile(sha, size, content_type)
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

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


def _move_into_place(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        return  # same content already stored; the temporary copy is removed by the caller
    os.replace(tmp, final)
