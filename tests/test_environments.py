"""Development and production: the published development secret only where APP_ENV says
development explicitly (the Docker image on its own refuses to start), and development limits
that do not get in a developer's way while production keeps strict ones."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devstack.servers import LOOPBACK, free_port
from settings import DEVELOPMENT_DEFAULTS, DEVELOPMENT_JWT_SECRET, Settings, SettingsError
from tests.gql import sign_up
from tests.servers import serve_api

ROOT = Path(__file__).resolve().parent.parent
SECRET = secrets.token_urlsafe(40)


def test_development_secret_only_with_app_env_development() -> None:
    for environ in ({}, {"APP_ENV": "production"}):
        with pytest.raises(SettingsError, match="JWT_SECRET"):
            Settings.from_env(environ)
    assert Settings.from_env({"APP_ENV": "development"}).jwt_secret == DEVELOPMENT_JWT_SECRET
    assert Settings.from_env({"JWT_SECRET": SECRET}).app_env == "production"


def image_command(port: int) -> tuple[list[str], dict[str, str]]:
    """The Docker image's CMD (exec form) and ENV, as `docker run <image>` would run them, but
    listening on a free loopback port."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    command: list[str] = []
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
        elif instruction == "CMD":
            command = json.loads(rest)
    local = {"0.0.0.0": LOOPBACK, "8000": str(port)}
    command = [local.get(arg, arg) for arg in command]
    env = {name: local.get(value, value) for name, value in env.items()}
    if command[0].startswith("python"):
        return [sys.executable, *command[1:]], env
    return [sys.executable, "-m", *command], env  # a console script: its module


def test_the_image_run_on_its_own_refuses_to_start() -> None:
    command, env = image_command(free_port())
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, "PATH": os.environ["PATH"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the image's command {command} started with the development secret")
    assert process.returncode != 0
    assert "JWT_SECRET" in output


def test_development_defaults_are_lenient_and_production_strict() -> None:
    assert set(DEVELOPMENT_DEFAULTS) <= Settings.names()
    development = Settings.from_env({"APP_ENV": "development"})
    production = Settings.from_env({"JWT_SECRET": SECRET})
    for name, value in DEVELOPMENT_DEFAULTS.items():
        field = name.lower()
        assert getattr(development, field) == value
        assert getattr(production, field) == getattr(Settings, field)  # the strict default
    assert production.rate_signups == "5/3600"
    explicit = Settings.from_env({"APP_ENV": "development", "RATE_SIGNUPS": "7/60"})
    assert explicit.rate_signups == "7/60"


async def test_a_developer_can_seed_many_accounts_from_one_machine(settings: Settings) -> None:
    environ = {k: v for k, v in settings.to_env().items() if not k.startswith("RATE_")}
    development = Settings.from_env({**environ, "APP_ENV": "development"})
    with serve_api(development) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for n in range(8):  # production allows 5 an hour from one address
                await sign_up(client, f"seed{n}")
