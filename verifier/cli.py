"""``vrs-verify``: sync the trust bundle, check certificates, run the camera loop.

    vrs-verify sync --url URL [--pin KEYFILE]
    vrs-verify check (FILE|HC1)... [--mode venue|border:DE] [--now ISO] [--json]
    vrs-verify camera [DEVICE|VIDEO-FILE] [--mode ...]
    vrs-verify serve [--port 8080] [--mode ...]   the checker's page on http://127.0.0.1:PORT/

Exit status of ``check``: 0 every certificate valid, 1 one is invalid, 2 could not decide (an
ERROR result, no usable trust, bad arguments). Trust lives in ``--dir`` (default
``$VRS_VERIFY_HOME``, else ``$XDG_DATA_HOME/vrs-verify``, else ``~/.local/share/vrs-verify``):
the bundle, its ETag and the pinned key. ``--dsc FILE`` (repeatable) checks against bare
document signer certificates instead (no value sets, rules or revocations: those checks then
say ERROR).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from verifier import camera
from verifier.certlogic import CertLogicError, parse_datetime
from verifier.decode import decode
from verifier.errors import VerifierError
from verifier.result import Status
from verifier.sync import PIN_FILE, load_cached, sync
from verifier.trust import TrustStore, load_pinned_key, trust_from_certificates
from verifier.verify import verify

__all__ = ["main"]

EXIT = {Status.VALID: 0, Status.INVALID: 1, Status.ERROR: 2}


def _default_dir() -> Path:
    if os.environ.get("VRS_VERIFY_HOME"):
        return Path(os.environ["VRS_VERIFY_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vrs-verify"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vrs-verify", description="Offline DCC/HC1 verifier")
    parser.add_argument("--dir", type=Path, default=None, help="trust folder")
    commands = parser.add_subparsers(dest="command", required=True)
    sync_cmd = commands.add_parser("sync", help="download the signed trust bundle")
    sync_cmd.add_argument("--url", required=True)
    sync_cmd.add_argument("--pin", type=Path, help="the bundle key (PEM); kept for later runs")
    for name, helptext in (
        ("check", "verify certificates"),
        ("camera", "verify from a camera"),
        ("serve", "the checker's page on localhost (camera or photo)"),
    ):
        cmd = commands.add_parser(name, help=helptext)
        cmd.add_argument("--mode", default="venue", help="venue or border:XX")
        cmd.add_argument("--now", help="verification time, ISO 8601 (default: the clock)")
        cmd.add_argument("--dsc", type=Path, action="append", help="trust a bare DSC file")
    check = commands.choices["check"]
    check.add_argument("inputs", nargs="+", metavar="FILE|HC1")
    check.add_argument("--json", action="store_true", help="one JSON object per input")
    cam = commands.choices["camera"]
    cam.add_argument("source", nargs="?", default="0", metavar="DEVICE|VIDEO-FILE")
    cam.add_argument("--max-frames", type=int, default=None)
    serve = commands.choices["serve"]
    serve.add_argument("--host", default="127.0.0.1", help="loopback only")
    serve.add_argument("--port", type=int, default=8080)
    return parser


def _say(text: str) -> None:
    print(text, flush=True)


def _fail(text: str) -> int:
    print(f"vrs-verify: {text}", file=sys.stderr)
    return 2


def _certificate_der(path: Path) -> bytes:
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return data


def _trust(args: argparse.Namespace, folder: Path) -> TrustStore:
    if args.dsc:
        return trust_from_certificates([_certificate_der(path) for path in args.dsc])
    pin = folder / PIN_FILE
    if not pin.exists():
        raise VerifierError("NO_PIN", f"no pinned key in {folder}: run sync with --pin first")
    return load_cached(folder, pin.read_bytes())


def _now(args: argparse.Namespace) -> datetime:
    if args.now:
        try:
            return parse_datetime(args.now)
        except CertLogicError:
            raise VerifierError("BAD_NOW", f"--now {args.now!r} is not an ISO 8601 time") from None
    return datetime.now(UTC)


def _sync(args: argparse.Namespace, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    pin_path = folder / PIN_FILE
    if args.pin:
        pem = args.pin.read_bytes()
        load_pinned_key(pem)  # refuse a bad key before keeping it
        pin_path.write_bytes(pem)
    if not pin_path.exists():
        return _fail("no pinned key: pass --pin KEYFILE (the bundle key, obtained out of band)")
    result = sync(args.url, pinned_key=pin_path.read_bytes(), directory=folder)
    store = result.store
    state = "updated" if result.changed else "unchanged"
    _say(
        f"trust bundle {state}: sequence {store.sequence}, {sum(map(len, store.signers.values()))}"
        f" DSCs, modes {', '.join(store.modes) or 'none'}, valid until {store.valid_until}"
    )
    return 0


def _check(args: argparse.Namespace, trust: TrustStore) -> int:
    now = _now(args)
    worst = 0
    for item in args.inputs:
        result = verify(decode(item), trust=trust, now=now, mode=args.mode)
        worst = max(worst, EXIT[result.status])
        if args.json:
            _say(json.dumps({"input": _label(item), **result.to_json()}, ensure_ascii=False))
        else:
            _say(f"{_label(item)}: {camera.verdict_line(result)}")
    return worst


def _label(item: str) -> str:
    return item if not item.startswith("HC1:") else item[:16] + "…"


def _camera(args: argparse.Namespace, trust: TrustStore) -> int:
    def clock() -> datetime:
        return _now(args)

    camera.run(
        args.source,
        trust=trust,
        mode=args.mode,
        clock=clock,
        show=_say,
        max_frames=args.max_frames,
    )
    return 0


def _serve(args: argparse.Namespace, trust: TrustStore) -> int:
    from verifier.web import CheckerServer

    def clock() -> datetime:
        return _now(args)

    server = CheckerServer(trust, mode=args.mode, clock=clock, host=args.host, port=args.port)
    _say(f"checker page on {server.url} (mode {args.mode}; Ctrl+C stops; nothing is stored)")
    server.serve_forever()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    folder = args.dir or _default_dir()
    try:
        if args.command == "sync":
            return _sync(args, folder)
        trust = _trust(args, folder)
        if args.command == "check":
            return _check(args, trust)
        if args.command == "serve":
            return _serve(args, trust)
        return _camera(args, trust)
    except VerifierError as exc:
        return _fail(f"{exc.code}: {exc.message}")
    except (OSError, ValueError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
