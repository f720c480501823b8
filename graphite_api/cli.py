"""`plumbago serve [--config FILE] [--host H] [--port P] [--data-dir DIR] [--database-url URL]
[--carbon-port N] [--pickle-port N]`."""
from __future__ import annotations

import argparse
import logging
import sys

from . import settings as settings_mod


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plumbago", description="Graphite-first metrics platform with a Prometheus bridge")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", help="YAML config file (see conf/plumbago.yaml)")
    serve.add_argument("--host", help="HTTP listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8080)")
    serve.add_argument("--data-dir", help="data directory: WAL and the SQLite store (default ./data)")
    serve.add_argument("--database-url", help="SQLAlchemy URL (default sqlite:///<data-dir>/plumbago.db)")
    serve.add_argument("--carbon-port", type=int, help="carbon plaintext TCP port (default 2003, 0 disables)")
    serve.add_argument("--pickle-port", type=int, help="carbon pickle TCP port (default 0 = off)")
    serve.add_argument("--log-level", help="debug, info, warning, error")
    sub.add_parser("default-config", help="print the documented default config file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "default-config":
        sys.stdout.write(settings_mod.default_config_text())
        return 0
    try:
        settings = settings_mod.load(args.config, {
            "host": args.host, "port": args.port, "data_dir": args.data_dir, "database_url": args.database_url,
            "carbon_port": args.carbon_port, "pickle_port": args.pickle_port, "log_level": args.log_level})
        from .app import build_app, validate_settings
        validate_settings(settings)
    except ValueError as exc:
        print(f"plumbago: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=str(settings["log_level"]).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn
    app = build_app(settings)
    config = uvicorn.Config(app, host=settings["host"], port=int(settings["port"]),
                            log_level=str(settings["log_level"]).lower(), access_log=False,
                            timeout_graceful_shutdown=10, limit_concurrency=1000)
    server = _Server(config)
    server.run()
    return 0


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after a graceful shutdown; a clean stop should exit 0 instead."""

        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if captured is not None:
                captured.clear()
    return Server


def _Server(config):
    return _server_class()(config)


if __name__ == "__main__":
    sys.exit(main())
