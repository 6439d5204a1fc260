"""The teleconsult command: migrate, create-user, demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env={"TC_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(120)
def test_migrate_create_user_and_demo(tmp_path: Path) -> None:
    migrated = run(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "var" / "teleconsult.db").exists()
    created = run(
        tmp_path,
        "create-user",
        "--role",
        "doctor",
        "--email",
        "Dr@Example.fr",
        "--password",
        "un mot de passe",
        "--first-name",
        "Ana",
        "--last-name",
        "Lopez",
        "--rpps",
        "10100000016",
    )
    assert created.returncode == 0, created.stderr
    assert "created doctor dr@example.fr" in created.stdout
    duplicate = run(
        tmp_path,
        "create-user",
        "--role",
        "patient",
        "--email",
        "dr@example.fr",
        "--password",
        "un mot de passe",
        "--first-name",
        "A",
        "--last-name",
        "B",
    )
    assert duplicate.returncode != 0 and "existe déjà" in duplicate.stderr
    bad = run(
        tmp_path,
        "create-user",
        "--role",
        "doctor",
        "--email",
        "x@example.fr",
        "--password",
        "un mot de passe",
        "--first-name",
        "A",
        "--last-name",
        "B",
        "--rpps",
        "10003456787",
    )
    assert bad.returncode != 0 and "clé de contrôle" in bad.stderr
    demo = run(tmp_path, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "claire.martin@demo.teleconsult.fr" in demo.stdout and "secretary" in demo.stdout
    again = run(tmp_path, "demo")  # re-running resets the passwords, creates nothing twice
    assert again.returncode == 0, again.stderr


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "migrate"],
        env={"TC_DATA_DIR": str(tmp_path), "TC_SFU": "maybe", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "TC_SFU must be 'on' or 'off'" in result.stderr
