"""The ``vrs-scan`` command: read coupons, record doses at a vaccination site, deliver them.

    vrs-scan coupon IMAGE...        print what each photo's coupon reads as
    vrs-scan camera [DEVICE|VIDEO]  the camera loop with guidance for staff (headless on a file)
    vrs-scan record (--coupon IMAGE... | --line 18DIGITS) (--lot IMAGE | --lot-number LOT)
                    [--product CODE] --site CODE [--date D]   confirm, queue, send one dose
    vrs-scan send [--loop]          deliver the outbox (once, or until stopped)
    vrs-scan status [--all|--json]  pending, sent, rejected and conflicts, with the codes
    vrs-scan retry CLIENT_ID...     send rejected or conflict records again (staff decision)

Settings: ``--outbox`` or ``VRS_SCAN_OUTBOX`` (default: the user's data directory),
``--api`` or ``VRS_SCAN_API``, the site token in ``VRS_SCAN_TOKEN`` or a file named by
``--token-file``/``VRS_SCAN_TOKEN_FILE`` (``--token`` works too, but shows in ``ps``),
``--site``/``VRS_SCAN_SITE``, ``--device``/``VRS_SCAN_DEVICE``.

Exit status of ``record``: 0 done (a record that could not be sent yet is safe in the
outbox), 1 the service rejected the record, 2 bad input or settings, 3 not confirmed (staff
said the preview is not this person, or a legacy OCR read could not be confirmed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from scanner.camera import Guidance, frames_from, watch
from scanner.client import ApiClient, CouponPreview, PreviewOutcome
from scanner.coupon import CouponConsensus, CouponRead, parse_coupon_line, read_coupon
from scanner.errors import ScanError
from scanner.lot import GtinTable, read_lot
from scanner.outbox import (
    Confirmation,
    Outbox,
    OutboxError,
    OutboxRecord,
    RecordDraft,
    RecordState,
    default_outbox_path,
)
from scanner.sender import LAST_CONTACT_NOTE, SENDER_NOTE, Backoff, Sender

__all__ = ["main"]

EXIT_OK, EXIT_REJECTED, EXIT_REFUSED, EXIT_NOT_CONFIRMED = 0, 1, 2, 3
JST = timezone(timedelta(hours=9), "JST")

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``vrs-scan`` command; return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_REFUSED
    logging.basicConfig(level=logging.WARNING, format="vrs-scan: %(message)s")
    try:
        return handler(args)
    except (ScanError, CliError) as exc:
        print(f"error: {exc.code}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return EXIT_REFUSED


# --- settings ----------------------------------------------------------------------------


def _outbox(args: argparse.Namespace) -> Outbox:
    path = Path(args.outbox).expanduser() if args.outbox else default_outbox_path()
    return Outbox(path)


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    token_file = args.token_file or os.environ.get("VRS_SCAN_TOKEN_FILE")
    if token_file:
        try:
            return Path(token_file).expanduser().read_text().strip()
        except OSError as exc:
            raise CliError("BAD_TOKEN_FILE", f"cannot read {token_file}: {exc}") from exc
    return os.environ.get("VRS_SCAN_TOKEN") or None


def _client(args: argparse.Namespace, *, required: bool) -> ApiClient | None:
    """The API client, or None when no API is configured (offline use) and none is needed."""
    url = args.api or os.environ.get("VRS_SCAN_API")
    token = _token(args)
    if not url or not token:
        if required:
            raise CliError(
                "NO_API", "set --api (or VRS_SCAN_API) and the site token (VRS_SCAN_TOKEN)"
            )
        return None
    return ApiClient(url, token, allow_insecure=args.insecure)


def _sender(outbox: Outbox, client: ApiClient, args: argparse.Namespace) -> Sender:
    return Sender(
        outbox,
        client,
        batch_size=getattr(args, "batch_size", 100),
        backoff=Backoff(base=1.0, cap=300.0),
    )


# --- record ------------------------------------------------------------------------------


def _record(args: argparse.Namespace) -> int:
    site = args.site or os.environ.get("VRS_SCAN_SITE")
    if not site:
        raise CliError("NO_SITE", "give --site (or VRS_SCAN_SITE): the 10-digit site code")
    vaccinated_on = _parse_date(args.date)
    read = _coupon_from_args(args)
    print(_read_text(read))
    coupon, source = read.line, ("manual" if args.line else read.method)
    lot, lot_source, product = _lot_from_args(args, vaccinated_on)
    client = _client(args, required=False)
    try:
        confirmation = _confirm(client, coupon, args)
        if confirmation is None:
            print("not recorded: the coupon was not confirmed as this person's", file=sys.stderr)
            return EXIT_NOT_CONFIRMED
        if read.legacy and source == "ocr" and confirmation is not Confirmation.CONFIRMED:
            print(
                "not recorded: an OCR read of a legacy coupon number must be confirmed against "
                "the masked preview; type the line with --line instead",
                file=sys.stderr,
            )
            return EXIT_NOT_CONFIRMED
        with _outbox(args) as outbox:
            record = outbox.enqueue(
                RecordDraft(
                    coupon=coupon,
                    vaccinated_on=vaccinated_on,
                    product=product,
                    lot=lot,
                    site_code=site,
                    source=source,
                    confirmation=confirmation,
                    device=args.device or os.environ.get("VRS_SCAN_DEVICE") or _hostname(),
                    lot_source=lot_source,
                    doctor_name=args.doctor,
                )
            )
            print(f"queued {record.client_record_id} ({confirmation.value}) in {outbox.path}")
            if client is None or args.no_send:
                print("not sent now: `vrs-scan send` delivers it")
                return EXIT_OK
            return _send_now(outbox, client, args, record.client_record_id)
    finally:
        if client is not None:
            client.close()


def _coupon_from_args(args: argparse.Namespace) -> CouponRead:
    """The coupon from photos (QR or OCR) or as typed by staff (source ``manual``)."""
    if args.line and args.coupon:
        raise CliError("TWO_COUPONS", "give either --coupon IMAGE or --line, not both")
    if args.line:
        typed = args.line.strip().replace(" ", "").replace("-", "")
        read = parse_coupon_line(typed)
        if read is None:
            raise CliError(
                "BAD_COUPON_LINE",
                "--line must be the coupon's 18 digits: ticket type 1, dose 1-9, a municipality "
                "code with its check digit, the 10-digit coupon number",
            )
    elif args.coupon:
        read = _read_photos(args.coupon)
    else:
        raise CliError("NO_COUPON", "give --coupon IMAGE (a photo) or --line 18DIGITS (typed)")
    if read.ticket_type != 1:
        raise CliError("TICKET_NOT_VACCINATION", "a screening-only ticket records no dose")
    return read


def _read_photos(paths: list[str]) -> CouponRead:
    # One photo is enough for a QR code or a number with its Damm digit; an OCR read of a
    # legacy number (no check digit) needs a second, agreeing photo.
    consensus = CouponConsensus(frames=1, legacy_frames=2)
    legacy_seen = False
    for path in paths:
        read = read_coupon(path)
        legacy_seen = legacy_seen or (read is not None and read.legacy and read.method == "ocr")
        accepted = consensus.feed_read(read)
        if accepted is not None:
            return accepted
    if legacy_seen:
        raise CliError(
            "LEGACY_NEEDS_MORE_PHOTOS",
            "an OCR read of a legacy coupon number (no check digit) needs two agreeing photos: "
            "give --coupon again with another photo, or type it with --line",
        )
    raise CliError("NO_COUPON_READ", "no coupon could be read with confidence from the photo")


def _lot_from_args(args: argparse.Namespace, on: date) -> tuple[str, str, str]:
    """``(lot, lot_source, product)`` from the vial's barcode or as typed."""
    if args.lot and args.lot_number:
        raise CliError("TWO_LOTS", "give either --lot IMAGE or --lot-number, not both")
    if args.lot_number:
        if not args.product:
            raise CliError("NO_PRODUCT", "give --product, the EU product code (EU/1/20/1528)")
        return args.lot_number, "manual", args.product
    if not args.lot:
        raise CliError("NO_LOT", "give --lot IMAGE (the vial's barcode) or --lot-number LOT")
    table_path = args.gtin_table or os.environ.get("VRS_SCAN_GTIN_TABLE")
    read = read_lot(args.lot, GtinTable.load(table_path) if table_path else None)
    if read is None:
        raise CliError("NO_LOT_READ", "no GS1 barcode with a valid GTIN in the lot photo")
    if not read.lot:
        raise CliError("NO_LOT_IN_CODE", f"the barcode (GTIN {read.gtin}) carries no lot (AI 10)")
    if args.product and read.product and args.product != read.product:
        raise CliError(
            "PRODUCT_MISMATCH",
            f"--product {args.product} but GTIN {read.gtin} is {read.product} in the table",
        )
    product = args.product or read.product
    if not product:
        raise CliError("NO_PRODUCT", f"GTIN {read.gtin} is not in the GTIN table: give --product")
    print(f"lot {read.lot} of {product} (GTIN {read.gtin}, expires {read.expiry or '?'})")
    if read.expiry is not None and read.expiry < on:
        print(f"warning: this lot expired on {read.expiry}", file=sys.stderr)
    return read.lot, "barcode", product


def _parse_date(text: str | None) -> date:
    if text is None:
        return datetime.now(UTC).astimezone(JST).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError("BAD_DATE", f"--date must be YYYY-MM-DD, not {text!r}") from None


def _hostname() -> str:
    return socket.gethostname()[:100] or "tablet"


def _confirm(client: ApiClient | None, line: str, args: argparse.Namespace) -> Confirmation | None:
    """Show the masked preview and ask staff; None when they say it is not this person."""
    if client is None:
        print("offline (no --api): the record is kept as unconfirmed")
        return Confirmation.UNCONFIRMED
    result = client.preview(line)
    if result.outcome is PreviewOutcome.REFUSED:
        raise CliError(
            result.code or "REFUSED", f"the service refuses this coupon: {result.detail}"
        )
    if result.outcome is PreviewOutcome.OFFLINE:
        print(f"no preview ({result.code}: {result.detail}); kept as unconfirmed")
        return Confirmation.UNCONFIRMED
    if result.outcome is PreviewOutcome.UNAVAILABLE:
        print("no preview for this coupon (holder not registered, or not shown at sites): ")
        print("  check the person's identity document before vaccinating")
        return Confirmation.NO_PREVIEW
    assert result.preview is not None
    print(_preview_text(result.preview))
    if args.yes:
        return Confirmation.CONFIRMED
    if not sys.stdin.isatty():
        print("no terminal to ask on (use --yes after checking): kept as unconfirmed")
        return Confirmation.UNCONFIRMED
    answer = input("Is this the person in front of you? [y/N] ").strip().lower()
    return Confirmation.CONFIRMED if answer in ("y", "yes") else None


def _preview_text(preview: CouponPreview) -> str:
    doses = ", ".join(f"dose {n} on {d.isoformat()}" for n, d in preview.recorded_doses)
    return "\n".join(
        [
            f"coupon of municipality {preview.municipality_code}, "
            f"ticket for dose {preview.coupon_dose_number}",
            f"  kana initials:    {preview.kana_initials}",
            f"  born (year-month): {preview.birth_year_month}",
            f"  doses recorded:   {doses or 'none'}",
        ]
    )


def _send_now(outbox: Outbox, client: ApiClient, args: argparse.Namespace, cid: str) -> int:
    sender = _sender(outbox, client, args)
    try:
        sender.acquire()
    except OutboxError as exc:
        if exc.code != "SENDER_BUSY":
            raise
        print("a background sender is running: it will deliver the record")
        return EXIT_OK
    try:
        sender.send_due()
    finally:
        sender.release()
    record = outbox.get(cid)
    assert record is not None
    print(_outcome_text(record))
    return EXIT_REJECTED if record.state in (RecordState.REJECTED, RecordState.CONFLICT) else 0


def _outcome_text(record: OutboxRecord) -> str:
    if record.state is RecordState.SENT:
        flags = f"; flags: {', '.join(record.flags)}" if record.flags else ""
        return f"sent: stored as {record.server_record_id} ({record.server_status}){flags}"
    if record.state in (RecordState.REJECTED, RecordState.CONFLICT):
        return f"{record.state.value}: {record.error_code}: {record.last_error}"
    return f"not sent yet ({record.last_error}); it stays queued and is retried"


def _read_text(read: CouponRead) -> str:
    kind = "vaccination" if read.ticket_type == 1 else "screening only"
    number = "legacy number, no check digit" if read.legacy else "Damm check digit ok"
    return (
        f"{read.line}  {kind} ticket, dose {read.dose_number}, municipality "
        f"{read.municipality_code}, coupon {read.coupon_number} ({number}); read by "
        f"{read.method}, confidence {read.confidence:.2f}"
    )


# --- coupon, camera ----------------------------------------------------------------------


def _coupon(args: argparse.Namespace) -> int:
    """Exit 0 when every image was read, 1 when some were not, 2 when one is not an image."""
    unread = failed = 0
    for path in args.images:
        try:
            read = read_coupon(path)
        except ScanError as exc:
            print(f"{path}: error: {exc.code}: {exc.message}")
            failed += 1
            continue
        if read is None:
            print(f"{path}: no coupon read (try a sharper, flatter, better-lit photo)")
            unread += 1
        else:
            print(f"{path}: {_read_text(read)}")
    return EXIT_REFUSED if failed else (EXIT_REJECTED if unread else EXIT_OK)


def _camera(args: argparse.Namespace) -> int:
    """Exit 0 when at least one coupon was accepted, 1 otherwise."""
    consensus = CouponConsensus(frames=args.frames, legacy_frames=args.legacy_frames)
    frames = frames_from(args.source)
    if args.max_frames:
        frames = itertools.islice(frames, args.max_frames)
    accepted = 0
    try:
        for event in watch(frames, consensus, once=args.once):
            if event.read is None:
                print(f"[frame {event.frame}] {event.guidance.value}", flush=True)
                continue
            label = "ACCEPTED" if event.guidance is Guidance.ACCEPTED else "REFUSED"
            print(f"[frame {event.frame}] {label}: {_read_text(event.read)}", flush=True)
            if event.guidance is Guidance.ACCEPTED:
                accepted += 1
            else:
                print(f"  {event.guidance.value}", flush=True)
    except KeyboardInterrupt:
        pass
    return EXIT_OK if accepted else EXIT_REJECTED


# --- send, status, retry -----------------------------------------------------------------


def _send(args: argparse.Namespace) -> int:
    client = _client(args, required=True)
    assert client is not None
    with client, _outbox(args) as outbox:
        sender = _sender(outbox, client, args)
        if args.loop:
            return _send_loop(sender)
        recovered = sender.acquire()
        try:
            if recovered:
                print(f"re-sending {recovered} record(s) a stopped sender left in flight")
            outbox.expedite()  # staff asked to send now: no record waits out its backoff
            report = sender.send_due()
        finally:
            sender.release()
        print(
            f"sent {report.sent}, rejected {report.rejected}, conflict {report.conflict}, "
            f"to retry {report.retried + report.held}"
        )
        for error in sorted(set(report.errors)):
            print(f"  {error}")
        return EXIT_OK


def _send_loop(sender: Sender) -> int:
    """The site's background sender: wait for the outbox (a `vrs-scan record` may hold it for
    a moment), then deliver until SIGINT or SIGTERM."""
    stop = threading.Event()
    _stop_on_signals(stop, sender.wake)
    said = False
    while not stop.is_set():
        try:
            recovered = sender.acquire()
            break
        except OutboxError as exc:
            if exc.code != "SENDER_BUSY":
                raise
            if not said:
                print("another sender holds the outbox; waiting for it", flush=True)
                said = True
            stop.wait(1.0)
    else:
        return EXIT_OK
    try:
        if recovered:
            print(f"re-sending {recovered} record(s) a stopped sender left in flight", flush=True)
        sender.run_forever(stop)
    finally:
        sender.release()
    return EXIT_OK


def _stop_on_signals(stop: threading.Event, wake: Callable[[], None]) -> None:
    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        wake()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def _status(args: argparse.Namespace) -> int:
    with _outbox(args) as outbox:
        counts = outbox.counts()
        listed = outbox.records(
            None
            if args.all
            else [
                RecordState.PENDING,
                RecordState.SENDING,
                RecordState.REJECTED,
                RecordState.CONFLICT,
            ]
        )
        if args.json:
            json.dump(_status_json(outbox, counts, listed), sys.stdout, indent=2)
            print()
            return EXIT_OK
        _print_status(outbox, counts, listed, sys.stdout)
    return EXIT_OK


def _status_json(
    outbox: Outbox, counts: dict[RecordState, int], listed: list[OutboxRecord]
) -> dict[str, Any]:
    return {
        "outbox": str(outbox.path),
        "counts": {state.value: n for state, n in counts.items()},
        "sender_error": outbox.note(SENDER_NOTE),
        "last_contact": outbox.note(LAST_CONTACT_NOTE),
        "records": [_record_json(r) for r in listed],
    }


def _record_json(record: OutboxRecord) -> dict[str, Any]:
    return {
        "client_record_id": record.client_record_id,
        "state": record.state.value,
        "coupon": record.coupon,
        "vaccinated_on": record.vaccinated_on.isoformat(),
        "product": record.product,
        "lot": record.lot,
        "site_code": record.site_code,
        "source": record.source,
        "confirmation": record.confirmation.value,
        "attempts": record.attempts,
        "code": record.error_code,
        "error": record.last_error,
        "http_status": record.http_status,
        "server_record_id": record.server_record_id,
        "server_status": record.server_status,
        "flags": list(record.flags),
        "created_at": record.created_at.isoformat(),
    }


def _print_status(
    outbox: Outbox, counts: dict[RecordState, int], listed: list[OutboxRecord], out: TextIO
) -> None:
    print(f"outbox {outbox.path}", file=out)
    print("  " + "  ".join(f"{state.value} {n}" for state, n in counts.items()), file=out)
    note = outbox.note(SENDER_NOTE)
    if note:
        print(f"  sending is held: {note}", file=out)
    contact = outbox.note(LAST_CONTACT_NOTE)
    print(f"  last answer from the service: {contact or 'never'}", file=out)
    needs_staff = [r for r in listed if r.state in (RecordState.REJECTED, RecordState.CONFLICT)]
    if needs_staff:
        print("needs staff attention (fix the cause, then `vrs-scan retry ID`):", file=out)
    for record in listed:
        line = (
            f"  {record.state.value:<9} {record.client_record_id}  coupon {record.coupon}  "
            f"{record.vaccinated_on}  lot {record.lot}  {record.confirmation.value}"
        )
        if record.state in (RecordState.REJECTED, RecordState.CONFLICT):
            line += f"\n            {record.error_code}: {record.last_error}"
        elif record.state in (RecordState.PENDING, RecordState.SENDING) and record.attempts:
            line += f"\n            {record.attempts} attempt(s); last: {record.last_error}"
        elif record.state is RecordState.SENT:
            line += f"  -> {record.server_record_id} ({record.server_status})"
        print(line, file=out)


def _retry(args: argparse.Namespace) -> int:
    with _outbox(args) as outbox:
        for cid in args.client_record_ids:
            outbox.requeue(cid)
            print(f"{cid}: queued again")
    return EXIT_OK


# --- parser ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrs-scan",
        description="Record vaccine doses at a site: read the coupon, confirm the holder, "
        "queue the record in a durable outbox, deliver it to the record service exactly once.",
    )
    parser.add_argument("--outbox", help="outbox file (VRS_SCAN_OUTBOX; default in user data)")
    parser.add_argument("--api", help="service URL, e.g. https://vrs.example.jp (VRS_SCAN_API)")
    parser.add_argument("--token", help="site token (prefer VRS_SCAN_TOKEN or --token-file)")
    parser.add_argument("--token-file", help="file holding the site token")
    parser.add_argument(
        "--insecure", action="store_true", help="allow http:// to a non-loopback host"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    coupon = _command(commands, "coupon", _coupon, "print what each photo's coupon reads as")
    coupon.add_argument("images", nargs="+", metavar="IMAGE")

    camera = _command(commands, "camera", _camera, "read coupons from a camera or video file")
    camera.add_argument(
        "source", nargs="?", default="0", help="camera index, /dev/videoN or a video file"
    )
    camera.add_argument("--once", action="store_true", help="stop at the first accepted coupon")
    camera.add_argument("--frames", type=int, default=2, help="agreeing OCR frames (new numbers)")
    camera.add_argument("--legacy-frames", type=int, default=3, help="... for legacy numbers")
    camera.add_argument("--max-frames", type=int, default=0, help="stop after N frames")

    record = _command(commands, "record", _record, "record one dose: confirm, queue, send")
    record.add_argument(
        "--coupon", action="append", metavar="IMAGE", help="photo of the coupon (repeatable)"
    )
    record.add_argument("--line", help="the coupon's 18 digits, typed (source: manual)")
    record.add_argument("--lot", metavar="IMAGE", help="photo of the vial or carton barcode")
    record.add_argument("--gtin-table", help="GTIN to product table (VRS_SCAN_GTIN_TABLE)")
    record.add_argument("--lot-number", help="lot number as printed (typed)")
    record.add_argument("--product", help="EU product code, e.g. EU/1/20/1528")
    record.add_argument("--date", help="date of vaccination YYYY-MM-DD (default: today, Japan)")
    record.add_argument("--site", help="10-digit site code (VRS_SCAN_SITE)")
    record.add_argument("--device", help="this tablet's name (VRS_SCAN_DEVICE; default hostname)")
    record.add_argument("--doctor", help="doctor's name (optional, at most 100 characters)")
    record.add_argument("--yes", action="store_true", help="staff checked the preview: do not ask")
    record.add_argument("--no-send", action="store_true", help="only queue it")

    send = _command(commands, "send", _send, "deliver the outbox to the service")
    send.add_argument("--loop", action="store_true", help="keep delivering until stopped")
    send.add_argument("--batch-size", type=int, default=100, help="records per batch post")

    status = _command(commands, "status", _status, "what is pending, sent, rejected")
    status.add_argument("--all", action="store_true", help="list sent records too")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    retry = _command(commands, "retry", _retry, "send rejected/conflict records again")
    retry.add_argument("client_record_ids", nargs="+", metavar="CLIENT_RECORD_ID")
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help_text: str,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser
