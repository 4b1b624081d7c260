"""nginx in front of local API processes, configured from the template docker compose uses.

deploy/nginx/default.conf.template holds the public server (balancer, GraphQL micro-cache, media
cache). In compose the nginx image fills its `${NAME}` placeholders from the environment with
envsubst; here `render` fills the same ones (a regular expression rather than string.Template,
whose `$name` would also take nginx's own variables), so tests run the configuration that
ships. The template is included by a minimal main configuration written next to it that keeps
everything nginx writes (pid, logs, temporary files, caches) under one directory, and nginx runs
in the foreground as a ManagedProcess on a loopback port.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.servers import LOOPBACK, ManagedProcess, ServerFailedToStart

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "default.conf.template"
# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


# What the nginx image's envsubst replaces of ours: `${NAME}`, upper case (it replaces the
# variables its environment defines). nginx's own variables (`$host`, ...) are left alone.
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def placeholders(template: str) -> set[str]:
    """The names a template needs filled in."""
    return set(PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with its placeholders filled in; KeyError names those without a value
    (envsubst would leave them as they are, and nginx would refuse the file)."""
    missing = placeholders(template) - set(values)
    if missing:
        raise KeyError(f"no value for {', '.join(sorted(missing))}")
    return PLACEHOLDER.sub(lambda found: values[found.group(1)], template)


def site_values(
    *,
    listen: str,
    api_addresses: Sequence[str],
    media_origin: str,
    cache_dir: Path,
    resolver: str = LOOPBACK,
) -> dict[str, str]:
    """The template's values for local processes (`api_addresses`: host:port of each)."""
    return {
        "NGINX_LISTEN": listen,
        "NGINX_RESOLVER": resolver,  # consulted for host names only; local addresses are IPs
        "NGINX_CACHE_DIR": str(cache_dir),
        "API_SERVERS": " ".join(f"server {address};" for address in api_addresses),
        "MEDIA_ORIGIN": media_origin,
    }


def main_config(directory: Path, site: Path) -> str:
    """A main nginx.conf that writes only under `directory` and includes `site`. As root, the
    workers run as the current user (nginx's default, nobody, could not write here)."""
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
    paths = "\n".join(
        f'  {kind}_temp_path "{directory / (kind + "_temp")}";'
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# Written by devstack/nginx.py: everything this nginx writes stays in this directory.
daemon off;
master_process on;
worker_processes 1;
pid "{directory / "nginx.pid"}";
lock_file "{directory / "nginx.lock"}";
error_log "{directory / "error.log"}" warn;
{user}
events {{
  worker_connections 1024;
}}

http {{
  access_log "{directory / "access.log"}";
{paths}
  include "{site}";
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx", path=SEARCH_PATH)


def start_nginx(
    directory: Path,
    *,
    port: int,
    api_addresses: Sequence[str],
    media_origin: str,
    timeout: float = 10.0,
) -> ManagedProcess:
    """Render the template for these addresses, start nginx on 127.0.0.1:`port` in the
    foreground, and return once it accepts connections."""
    binary = nginx_binary()
    if binary is None:
        raise ServerFailedToStart("nginx is not installed (apt-get install nginx)")
    cache_dir = directory / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    values = site_values(
        listen=f"{LOOPBACK}:{port}",
        api_addresses=api_addresses,
        media_origin=media_origin,
        cache_dir=cache_dir,
    )
    site = directory / "default.conf"
    site.write_text(render(TEMPLATE.read_text(), values))
    conf = directory / "nginx.conf"
    conf.write_text(main_config(directory, site))
    error_log = directory / "error.log"
    # -e: nginx opens its compiled-in error log before it reads the configuration.
    argv = [binary, "-p", str(directory), "-e", str(error_log), "-c", str(conf)]
    process = ManagedProcess("nginx", argv, log_path=error_log)
    _wait_for_port(process, port, timeout)
    return process


def _wait_for_port(process: ManagedProcess, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not process.running():
            raise ServerFailedToStart(
                f"nginx {process.exit_status()}; it said:\n{process.log_tail()}"
            )
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise ServerFailedToStart(f"nginx did not listen on {port} within {timeout} s")
        time.sleep(0.05)
