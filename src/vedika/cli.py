"""`vedika serve | migrate | config`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from vedika import ask
from vedika.redact import mask_secrets, masked_settings
from vedika.settings import SettingsError, load_settings
from vedika.status import BANNER_ENV

if TYPE_CHECKING:
    from fastapi import FastAPI


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vedika.store.engine import migrate

    settings = load_settings()
    if not args.no_migrate:
        migrate(settings.effective_database_url)
    os.environ[BANNER_ENV] = f"http://{_host_for_url(args.host)}:{args.port}"
    uvicorn.run(
        "vedika.asgi:app" if args.workers > 1 else _factory(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        factory=args.workers == 1,
        log_level=settings.log_level,
        access_log=False,
        ws_max_size=1024 * 1024,
        timeout_graceful_shutdown=int(settings.drain_seconds) + 5,
        # X-Forwarded-For/-Proto only from the proxies the operator names: uvicorn's
        # own default believes 127.0.0.1, so any local process (or a proxy that does
        # not strip the header) could pick the address rate limits count by.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )
    return 0


def _host_for_url(host: str) -> str:
    """What to print for the address: a wildcard bind is reachable on localhost."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _factory() -> Callable[[], FastAPI]:
    from vedika.app import create_app

    return lambda: create_app(own_process=True)


def _migrate(_args: argparse.Namespace) -> int:
    from vedika.store.engine import migrate

    settings = load_settings()
    migrate(settings.effective_database_url)
    print(f"Database is up to date: {mask_secrets(settings.effective_database_url)}")
    return 0


def _config(_args: argparse.Namespace) -> int:
    settings = load_settings()
    shown = masked_settings(settings)
    sys.stdout.write(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vedika", description="Vedika AI answer engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API and pages")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="skip the schema upgrade")
    serve.set_defaults(func=_serve)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=_migrate
    )
    sub.add_parser("config", help="print the effective settings, secrets masked").set_defaults(
        func=_config
    )
    ask.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"vedika: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
