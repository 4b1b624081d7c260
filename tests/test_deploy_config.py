"""docker-compose.yml cannot run here; at least it must parse and agree with settings.py."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml

from devstack.nginx import TEMPLATE, placeholders, render
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("app", "worker")
PUBLIC_ADDRESSES = {"CDN_BASE_URL", "PUBLIC_API_URL"}  # what clients reach, not a backend


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_app_environment_uses_only_real_settings() -> None:
    services = compose()["services"]
    for name in APP_SERVICES:
        unknown = set(services[name]["environment"]) - Settings.names()
        assert not unknown, f"{name} sets variables settings.py does not read: {unknown}"


def test_every_backend_the_settings_point_at_is_a_service() -> None:
    services = compose()["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        for key, value in env.items():
            if key.endswith(("_URL", "_URI")) and key not in PUBLIC_ADDRESSES:
                host = urlparse(value).hostname
                assert host in services, f"{name}: {key} points at {host}, not a service"
        assert env["GRAPH_BACKEND"] == "neo4j" and "neo4j" in services
        assert env["S3_ENDPOINT"].split(":")[0] in services
        for dependency in services[name].get("depends_on", {}):
            assert dependency in services


def test_production_stack_has_its_parts() -> None:
    services = compose()["services"]
    expected = {"neo4j", "redis", "redis-feeds", "minio", "minio-init", "nginx", "app", "worker"}
    assert expected <= set(services)
    assert services["app"]["deploy"]["replicas"] >= 2
    assert "noeviction" in services["redis"]["command"]


def test_nginx_gets_the_shipped_template_and_every_value_it_needs() -> None:
    """The image renders /etc/nginx/templates/*.template with envsubst, which leaves a
    placeholder it has no variable for as it is: every one must be set on the service."""
    nginx = compose()["services"]["nginx"]
    mount = f"./{TEMPLATE.relative_to(ROOT)}:/etc/nginx/templates/{TEMPLATE.name}:ro"
    assert mount in nginx["volumes"]
    needed = placeholders(TEMPLATE.read_text())
    assert needed == set(nginx["environment"]), needed ^ set(nginx["environment"])
    rendered = render(TEMPLATE.read_text(), nginx["environment"])
    assert "server app:8000 resolve;" in rendered and "${" not in rendered
