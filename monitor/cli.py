"""The ``qualmon`` command: run, worker, api, simulate, replay, detect."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.errors import QualmonError
from monitor.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        sys.exit("qualmon: invalid settings\n" + "\n".join(map(_describe, exc.errors())))


def _describe(error: Any) -> str:
    """One invalid setting, by its variable and where inside its value; the value is shown
    unless it could be a secret. A rule over several settings (an empty location) names them in
    its message, and its input is all the raw settings, secrets included: never shown."""
    loc = [str(p) for p in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return f"  {message}"
    name = f"QUALMON_{loc[0].upper()}"
    where = f" at {'.'.join(loc[1:])}" if len(loc) > 1 else ""
    secret = name.endswith(("SECRET", "_URL", "_URLS", "_KEY", "_KEYS", "TOKEN", "PASSWORD"))
    value = "" if secret else f" (value {error.get('input')!r})"
    return f"  {name}{where}: {message}{value}"


def _run(args: argparse.Namespace) -> int:
    from monitor.service import configure_logging, kafka, run_worker

    settings = _settings()
    configure_logging(settings.log_level)
    with kafka(settings) as bootstrap:
        run_worker(settings, bootstrap, with_api=args.command == "run")
    return 0


def _api(args: argparse.Namespace) -> int:
    from monitor.service import configure_logging, kafka, run_api

    settings = _settings()
    configure_logging(settings.log_level)
    with kafka(settings) as bootstrap:
        run_api(settings, bootstrap)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from monitor import simulate

    return simulate.run(args, _settings())


def _replay(args: argparse.Namespace) -> int:
    from monitor import replay

    return replay.run(args, _settings())


def _detect(args: argparse.Namespace) -> int:
    from monitor.detect import detect_file
    from streams.detectors import ALERT_THRESHOLD

    rows = detect_file(args.input, args.output)
    print(f"scored {rows} rows into {args.output} (alert threshold {ALERT_THRESHOLD})")
    return 0


def parser() -> argparse.ArgumentParser:
    from monitor import replay, simulate

    p = argparse.ArgumentParser(prog="qualmon", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="broker (if none configured), worker and API in one process")
    sub.add_parser("worker", help="the stream worker alone")
    sub.add_parser("api", help="the HTTP API alone")
    sim = sub.add_parser("simulate", help="send a realistic synthetic event stream")
    simulate.add_arguments(sim)
    rep = sub.add_parser("replay", help="send recorded events (JSON lines) in event-time order")
    replay.add_arguments(rep)
    det = sub.add_parser("detect", help="score a timestamp,value CSV with the production detector")
    det.add_argument("--input", type=Path, required=True, help="CSV with timestamp,value")
    det.add_argument("--output", type=Path, required=True, help="CSV to write")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler = {"run": _run, "worker": _run, "api": _api, "simulate": _simulate,
               "replay": _replay, "detect": _detect}[args.command]  # fmt: skip
    try:
        return handler(args)
    except (QualmonError, ValueError, OSError) as exc:
        print(f"qualmon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
