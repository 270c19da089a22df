"""Secrets from files: with HOMECARE_SECRETS_DIR, each setting can come from a file named after
its variable (Docker secrets), and a variable that is set wins over its file. Read in a process
of its own, as a component reads its settings at start."""

from __future__ import annotations

import os
import subprocess
import sys

READ = "from homecare.settings import Settings; s = Settings(); print(s.secret_key); print(s.database_url)"


def _settings(env: dict[str, str]) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOMECARE_")}
    done = subprocess.run([sys.executable, "-c", READ], env={**clean, **env}, capture_output=True, text=True,
                          check=True)
    return done.stdout.splitlines()


def test_settings_come_from_files_in_the_secrets_folder(tmp_path):
    (tmp_path / "HOMECARE_SECRET_KEY").write_text("a key from a file\n")
    (tmp_path / "HOMECARE_DATABASE_URL").write_text("postgresql://homecare:s3cret@db:5432/homecare")
    assert _settings({"HOMECARE_SECRETS_DIR": str(tmp_path)}) == [
        "a key from a file", "postgresql://homecare:s3cret@db:5432/homecare"]


def test_a_variable_that_is_set_wins_over_its_file(tmp_path):
    (tmp_path / "HOMECARE_SECRET_KEY").write_text("from the file")
    assert _settings({"HOMECARE_SECRETS_DIR": str(tmp_path), "HOMECARE_SECRET_KEY": "from the environment"})[0] \
        == "from the environment"
