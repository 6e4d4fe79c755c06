"""The ``vrs`` command: serve the API, migrate the database, manage places and credentials.

Every command reads its settings with :meth:`Settings.from_env` and builds its own engine;
nothing happens at import. Exit codes: 0 done, 1 the database failed, 2 the request or the
environment was refused (``error: CODE: message`` on stderr).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from vrs.db import migrate
from vrs.db.engine import make_engine
from vrs.db.models import Credential
from vrs.domain import auth, lots, places
from vrs.domain.errors import DomainError, Unprocessable
from vrs.domain.reference import seed_reference_data
from vrs.settings import Settings, SettingsError

#: Exit status for a refused request or environment (argparse uses it for bad usage too).
EXIT_REFUSED = 2
EXIT_DATABASE = 1

Handler = Callable[[argparse.Namespace, Settings], int]
if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``vrs`` command; return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        getattr(args, "help_parser", parser).print_help(sys.stderr)
        return EXIT_REFUSED
    try:
        settings = Settings.from_env()
        return handler(args, settings)
    except (SettingsError, DomainError) as exc:
        _print_error(exc)
        return EXIT_REFUSED
    except SQLAlchemyError as exc:
        print(f"error: DATABASE: {exc.__class__.__name__}: {_first_line(exc)}", file=sys.stderr)
        print("  (has the database been migrated? run `vrs db upgrade`)", file=sys.stderr)
        return EXIT_DATABASE


def _print_error(exc: SettingsError | DomainError) -> None:
    print(f"error: {exc.code}: {exc}", file=sys.stderr)
    details = getattr(exc, "details", {})
    for row in details.get("errors", []) if isinstance(details, dict) else []:
        print(f"  line {row['line']}: {row['code']}: {row['message']}", file=sys.stderr)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else ""


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """A session that commits when the command succeeds and rolls back otherwise."""
    with _engine(settings) as engine, Session(engine, expire_on_commit=False) as session:
        yield session
        session.commit()


# --- serve -----------------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    with _engine(settings) as engine:
        at = migrate.current(engine)
    if at != migrate.head():
        print(
            f"warning: the database is at revision {at or 'none'}, not {migrate.head()}; "
            "run `vrs db upgrade`",
            file=sys.stderr,
        )
    print(
        f"VRS ({settings.env}) on http://{args.host}:{args.port}  database: "
        f"{_safe_url(settings.database_url)}",
        file=sys.stderr,
    )
    uvicorn.run(
        "vrs.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=not args.no_access_log,
    )
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- demo and API document -------------------------------------------------------------


def _demo(args: argparse.Namespace, _settings: Settings) -> int:
    from vrs.demo import DemoError, run_demo

    try:
        return run_demo(keep=args.keep, port=args.port)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1


def _openapi(args: argparse.Namespace, _settings: Settings) -> int:
    from vrs.openapi import openapi_json

    text = openapi_json()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"OpenAPI document written to {args.out}", file=sys.stderr)
    return 0


# --- db --------------------------------------------------------------------------------


def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    with _engine(settings) as engine:
        migrate.upgrade(engine)
        with Session(engine) as session:
            seed_reference_data(session)
            session.commit()
        print(f"database at revision {migrate.current(engine)}; reference data seeded")
    return 0


def _db_current(_args: argparse.Namespace, settings: Settings) -> int:
    with _engine(settings) as engine:
        at = migrate.current(engine)
    head = migrate.head()
    if at is None:
        print(f"none (never migrated; head is {head})")
    else:
        print(at if at == head else f"{at} (head is {head}; run `vrs db upgrade`)")
    return 0


# --- municipalities and sites ----------------------------------------------------------


def _municipalities_add(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        row = places.add_municipality(
            session,
            actor=auth.SYSTEM,
            code=args.code,
            name=args.name,
            now=_now(),
            coupon_format=args.coupon_format,
        )
        print(f"{row.code}  {row.name}  coupon format {row.coupon_format}")
    return 0


def _municipalities_load(args: argparse.Namespace, settings: Settings) -> int:
    text = Path(args.file).read_text(encoding="utf-8-sig")
    with _session(settings) as session:
        rows = places.load_municipalities_csv(session, actor=auth.SYSTEM, text=text, now=_now())
        print(f"{len(rows)} municipalities loaded")
    return 0


def _municipalities_list(_args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        for row in places.iter_municipalities(session):
            print(f"{row.code}  {row.coupon_format:<6}  {row.name}")
    return 0


def _sites_add(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        row = places.add_site(
            session,
            actor=auth.SYSTEM,
            code=args.code,
            name=args.name,
            now=_now(),
            municipality_code=args.municipality,
        )
        print(f"{row.code}  {row.name}")
    return 0


def _lots_add(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        lot = lots.add_lot(
            session,
            actor=auth.SYSTEM,
            lot_number=args.lot,
            product_code=args.product,
            expires_on=args.expires,
            gtin=args.gtin,
            now=_now(),
        )
        print(f"{lot.lot_number}  {lot.product_code}  expires {lot.expires_on}")
    return 0


def _lots_load(args: argparse.Namespace, settings: Settings) -> int:
    text = Path(args.file).read_text(encoding="utf-8-sig")
    with _session(settings) as session:
        count = lots.load_lots_csv(session, actor=auth.SYSTEM, text=text, now=_now())
        print(f"{count} lots loaded")
    return 0


# --- coupons ---------------------------------------------------------------------------


def _coupons_print(args: argparse.Namespace, settings: Settings) -> int:
    from vrs.domain import coupon_sheets
    from vrs.domain.rules import today_in_japan

    now = _now()
    with _session(settings) as session:
        sheet = coupon_sheets.coupon_sheet(
            session,
            actor=auth.SYSTEM,
            municipality_code=args.municipality,
            dose=args.dose,
            local_ids=args.local_id or None,
            limit=args.limit,
            now=now,
        )
    out = Path(args.out)
    if out.suffix.lower() == ".png":
        data = coupon_sheets.ticket_png(sheet, issued_on=today_in_japan(now))
    else:
        data = coupon_sheets.sheet_pdf(sheet, issued_on=today_in_japan(now))
    out.write_bytes(data)
    print(f"{len(sheet.tickets)} ticket(s) for dose {sheet.dose} written to {out}")
    return 0


# --- statistics ------------------------------------------------------------------------


def _stats_compact(_args: argparse.Namespace, settings: Settings) -> int:
    from vrs.db import stats

    with _engine(settings) as engine, engine.begin() as conn:
        print(f"dose statistics folded into {stats.compact(conn)} rows")
    return 0


def _stats_rebuild(_args: argparse.Namespace, settings: Settings) -> int:
    from vrs.db import stats

    with _engine(settings) as engine, engine.begin() as conn:
        print(f"dose statistics rebuilt from the records: {stats.rebuild(conn)} rows")
    return 0


# --- credentials -----------------------------------------------------------------------


def _credentials_create(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        issued = auth.create_credential(
            session,
            actor=auth.SYSTEM,
            role=auth.Role(args.role),
            name=args.name,
            now=_now(),
            municipality_code=args.municipality,
            site_code=args.site,
        )
        credential_id = issued.credential.id
    # Only after the commit: a token printed for a credential that was never stored is useless.
    print(issued.token)
    print(
        f"credential {credential_id} ({args.role}) created; the token above is shown only "
        "once and cannot be recovered",
        file=sys.stderr,
    )
    return 0


def _credentials_list(_args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        rows = session.execute(
            select(Credential).order_by(Credential.created_at)  # type: ignore[arg-type]
        ).scalars()
        print("id                                    role          status   scope       name")
        for row in rows:
            scope = row.municipality_code or row.site_code or "-"
            status = "revoked" if row.revoked_at is not None else "active"
            print(f"{row.id}  {row.role:<12}  {status:<7}  {scope:<10}  {row.name}")
    return 0


def _credentials_revoke(args: argparse.Namespace, settings: Settings) -> int:
    try:
        credential_id = uuid.UUID(args.id)
    except ValueError:
        raise Unprocessable("BAD_CREDENTIAL_ID", f"{args.id!r} is not a credential id") from None
    with _session(settings) as session:
        row = auth.revoke_credential(
            session, actor=auth.SYSTEM, credential_id=credential_id, now=_now()
        )
        print(f"credential {row.id} revoked")
    return 0


# --- keys and the trust bundle --------------------------------------------------------


def _keys_init(_args: argparse.Namespace, settings: Settings) -> int:
    from vrs.domain import keyring

    with _session(settings) as session:
        ring = keyring.init_keys(session, settings=settings, actor=auth.SYSTEM, now=_now())
    print(f"key ring made in {ring.directory}")
    print(f"  CSCA          {ring.csca.subject}  until {ring.csca.not_after:%Y-%m-%d}")
    print(f"  active DSC    {ring.active.label}  kid {ring.active.kid.hex()}")
    print(
        f"  bundle key    kid {ring.bundle_kid.hex()}  (pin {ring.directory}/trust-bundle-key.pem)"
    )
    return 0


def _keys_rotate(_args: argparse.Namespace, settings: Settings) -> int:
    from vrs.domain import keyring

    with _session(settings) as session:
        retired, new = keyring.rotate_keys(
            session, settings=settings, actor=auth.SYSTEM, now=_now()
        )
    print(f"active DSC is now {new.label} (kid {new.kid.hex()})")
    print(
        f"{retired.label} retired; listed in the trust bundle until "
        f"{retired.listed_until:%Y-%m-%d %H:%M}Z"
    )
    return 0


def _keys_list(_args: argparse.Namespace, settings: Settings) -> int:
    from vrs.domain import keyring

    now = _now()
    with _session(settings) as session:
        ring = keyring.list_keys(session, settings=settings, actor=auth.SYSTEM, now=now)
    print("label                              kid               status    not after   listed until")
    for dsc in ring.dscs:
        print(
            f"{dsc.label:<34} {dsc.kid.hex()}  {dsc.status(now):<8}  "
            f"{dsc.not_after:%Y-%m-%d}  {dsc.listed_until:%Y-%m-%d}"
        )
    if ring.rotation_due(now):
        print(
            "rotation due: the active DSC cannot sign a certificate of full validity",
            file=sys.stderr,
        )
    return 0


def _trust_export(args: argparse.Namespace, settings: Settings) -> int:
    from vrs.domain.keyring import ServiceKeys
    from vrs.domain.trust import TrustPublisher

    with _session(settings) as session:
        bundle = TrustPublisher(ServiceKeys(settings)).current(session, _now())
    Path(args.file).write_bytes(bundle.data)
    print(
        f"trust bundle {bundle.sequence} ({len(bundle.data)} bytes, valid until "
        f"{bundle.valid_until:%Y-%m-%d %H:%M}Z) written to {args.file}",
        file=sys.stderr,
    )
    return 0


# --- development cards ---------------------------------------------------------------


def _dev_make_card(args: argparse.Namespace, settings: Settings) -> int:
    from vrs import devcard

    try:
        birth_date = date.fromisoformat(args.birth_date)
    except ValueError:
        raise Unprocessable("BAD_BIRTH_DATE", "--birth-date must be YYYY-MM-DD") from None
    now = _now()
    try:
        issuer = devcard.dev_issuer(settings.data_dir, production=settings.is_production, now=now)
        card = devcard.make_card(
            issuer, my_number=args.my_number, name=args.name, birth_date=birth_date, now=now
        )
    except devcard.DevCardError as exc:
        raise Unprocessable(exc.code, str(exc)) from None
    out = Path(args.out)
    card.save(out)
    print(
        f"development card written to {out}; the service trusts its issuer "
        f"({devcard.issuer_certificate_path(settings.data_dir)}) outside production",
        file=sys.stderr,
    )
    return 0


# --- the parser ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrs",
        description="Vaccination record service. Settings come from VRS_* environment "
        "variables (see README.md, 'Configuration').",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = _command(commands, "serve", _serve, "run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--no-access-log",
        action="store_true",
        help="no line per request (a reverse proxy in front usually keeps the access log)",
    )

    demo = _command(commands, "demo", _demo, "run the whole chain in a temporary folder")
    demo.add_argument("--keep", type=Path, help="work in this folder and keep it afterwards")
    demo.add_argument("--port", type=int, default=None, help="the service's port (default: free)")
    openapi = _command(commands, "openapi", _openapi, "write the HTTP API's OpenAPI document")
    openapi.add_argument("out", type=Path, nargs="?", help="file (default: standard output)")

    db = _group(commands, "db", "database schema")
    _command(db, "upgrade", _db_upgrade, "migrate to the newest schema and seed reference data")
    _command(db, "current", _db_current, "show the schema revision of the database")

    municipalities = _group(commands, "municipalities", "municipalities (tenants)")
    add = _command(municipalities, "add", _municipalities_add, "add or rename a municipality")
    add.add_argument("code", help="6-digit local-government code with its check digit")
    add.add_argument("name")
    add.add_argument("--coupon-format", choices=places.COUPON_FORMATS, default="damm")
    load = _command(
        municipalities, "load", _municipalities_load, "load code,name[,coupon_format] rows"
    )
    load.add_argument("file", help="CSV file (UTF-8); nothing is written if any row is bad")
    _command(municipalities, "list", _municipalities_list, "list municipalities")

    sites = _group(commands, "sites", "vaccination sites")
    site_add = _command(sites, "add", _sites_add, "add or rename a vaccination site")
    site_add.add_argument("code", help="10-digit medical-institution code")
    site_add.add_argument("name")
    site_add.add_argument("--municipality", help="code of the municipality the site is in")

    lot_group = _group(commands, "lots", "known vaccine lots (checked by the lot rules)")
    lot_add = _command(lot_group, "add", _lots_add, "add a lot or change its expiry")
    lot_add.add_argument("lot", help="lot number as printed on the vial or carton")
    lot_add.add_argument("product", help="product code, e.g. EU/1/20/1528")
    lot_add.add_argument("expires", help="expiry date YYYY-MM-DD")
    lot_add.add_argument("--gtin", help="14-digit GTIN of the carton")
    lot_load = _command(lot_group, "load", _lots_load, "load lot_number,product,expires_on[,gtin]")
    lot_load.add_argument("file", help="CSV file (UTF-8); nothing is written if any row is bad")

    coupons = _group(commands, "coupons", "coupon tickets")
    print_ = _command(coupons, "print", _coupons_print, "print coupon tickets (PDF, or one PNG)")
    print_.add_argument("--municipality", required=True, help="municipality code")
    print_.add_argument("--dose", required=True, type=int, help="dose number on the tickets (1-9)")
    print_.add_argument("--local-id", action="append", help="a resident to print (repeatable)")
    print_.add_argument("--limit", type=int, default=10_000, help="most tickets (default 10,000)")
    print_.add_argument("out", help="output file: .pdf (A4 sheets) or .png (one ticket)")

    stats_group = _group(commands, "stats", "the open-statistics summary")
    _command(stats_group, "compact", _stats_compact, "fold the summary into one row per key")
    _command(stats_group, "rebuild", _stats_rebuild, "recompute the summary from the records")

    credentials = _group(commands, "credentials", "API credentials (bearer tokens)")
    create = _command(
        credentials, "create", _credentials_create, "make a credential; prints its token once"
    )
    create.add_argument("--role", required=True, choices=["admin", "municipality", "site"])
    create.add_argument("--name", required=True, help="who or what holds it")
    create.add_argument("--municipality", help="municipality code (role municipality)")
    create.add_argument("--site", help="site code (role site: enrols one tablet)")
    _command(credentials, "list", _credentials_list, "list credentials (never their tokens)")
    revoke = _command(credentials, "revoke", _credentials_revoke, "revoke a credential")
    revoke.add_argument("id", help="credential id, as `vrs credentials list` shows it")

    keys_group = _group(commands, "keys", "signing keys (CSCA, document signers, trust bundle)")
    _command(keys_group, "init", _keys_init, "make the key ring (production: once, deliberately)")
    _command(keys_group, "rotate", _keys_rotate, "make a new document signer the active one")
    _command(keys_group, "list", _keys_list, "list the document signers and their status")

    trust = _group(commands, "trust", "the trust bundle verifiers sync")
    export = _command(trust, "export", _trust_export, "write the current signed trust bundle")
    export.add_argument("file", help="file to write (application/cose bytes)")

    dev = _group(commands, "dev", "development helpers (refused when VRS_ENV=production)")
    card = _command(
        dev, "make-card", _dev_make_card, "write a development resident card (JSON file)"
    )
    card.add_argument("--my-number", required=True, help="12-digit My Number (check digit valid)")
    card.add_argument("--name", required=True, help="holder name as on the card")
    card.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
    card.add_argument("out", help="card file to write (holds the card's private key)")
    return parser


def _group(commands: Commands, name: str, help_text: str) -> Commands:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=None, help_parser=parser)
    return parser.add_subparsers(title="commands", metavar="COMMAND")


def _command(
    commands: Commands, name: str, handler: Handler, help_text: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


if __name__ == "__main__":
    sys.exit(main())
