"""`gatewayserver healthcheck`: ask a running daemon's `/healthz`, wherever its configuration puts the HTTP port.

For container HEALTHCHECKs and scripts. A fixed URL in the Containerfile breaks as soon as an operator moves the
HTTP listener (`GS_HTTP_LISTEN=0.0.0.0:8080`): the container turns unhealthy although the daemon is fine. This
command resolves the configuration exactly as `run` does (flags, `GS_*` environment, `--config`/`GS_CONFIG`
YAML, defaults), so it asks the port the daemon listens on, over TLS when the listener has a certificate.

It asks `/healthz` (liveness: the process serves requests), not `/readyz`: an orchestrator restarts an unhealthy
container, and restarting the Gateway Server does not mend a Network Server that is down.

Standard library only (http.client), so the image needs nothing else. Exit 0 on 200, 1 otherwise with one line
on stderr naming the URL and the cause, 2 for a configuration error (via the CLI).
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import sys
from typing import Any

from .config import Config, add_arguments, resolve

PATH = "/healthz"
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}


def target(config: Config) -> tuple[str, int, bool]:
    """(host to connect to, port, TLS) for the configured HTTP listener; a wildcard listener is asked on loopback."""
    host, _, port = str(config.http_listen).rpartition(":")
    host = _WILDCARDS.get(host, host).strip("[]")
    return host, int(port), bool(config.http_tls_cert)


def url(host: str, port: int, tls: bool) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}{PATH}"


def check(host: str, port: int, tls: bool, timeout: float) -> tuple[bool, str]:
    """(healthy, reason). TLS is not verified: this is the daemon's own listener, asked for liveness, not trust."""
    connection: http.client.HTTPConnection
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", PATH, headers={"User-Agent": "gatewayserver-healthcheck"})
        response = connection.getresponse()
        response.read(4096)
        if response.status == 200:
            return True, "200"
        return False, f"answered {response.status} {response.reason}"
    except TimeoutError:
        return False, f"no answer within {timeout:g}s"
    except (OSError, http.client.HTTPException) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc) or type(exc).__name__)
        return False, cause
    finally:
        connection.close()


def _healthcheck(args: argparse.Namespace) -> int:
    flags = {key: value for key, value in vars(args).items() if key not in ("func", "timeout", "quiet")}
    config = resolve(flags)
    host, port, tls = target(config)
    healthy, reason = check(host, port, tls, args.timeout)
    if healthy:
        if not args.quiet:
            print(f"healthy: {url(host, port, tls)} answered 200")
        return 0
    sys.stderr.write(f"gatewayserver: unhealthy: {url(host, port, tls)}: {reason}\n")
    return 1


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "healthcheck",
        help="exit 0 if the running daemon's /healthz answers 200 (takes the same options as run)",
        description="Ask the daemon's /healthz at the HTTP address its configuration gives (same flags, GS_* "
                    "environment and --config as `run`). Exit 0 when healthy, 1 when not, 2 for a configuration "
                    "error. Made for container HEALTHCHECKs.",
    )
    parser.add_argument("--timeout", type=float, default=4.0, metavar="SECONDS",
                        help="give up after this long (default 4)")
    parser.add_argument("--quiet", action="store_true", help="print nothing when healthy")
    add_arguments(parser)
    parser.set_defaults(func=_healthcheck)
    return parser
