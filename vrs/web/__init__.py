"""The service's web pages: the resident's certificate page and the municipality console.

Server-rendered (Jinja2, autoescaped) in Japanese or English (``?lang=ja|en``, else the
browser's Accept-Language); the pages' scripts call the same ``/v1`` API as every other
client with the user's own bearer token, so roles and tenancy stay enforced in the domain
layer. A strict Content-Security-Policy allows only the service's own scripts.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from vrs.domain.errors import NotFound
from vrs.web.messages import LANGUAGES, messages, pick_language

__all__ = ["router"]

_PAGES = {"": "index.html", "resident": "resident.html", "municipality": "municipality.html"}
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_environment = Environment(
    loader=PackageLoader("vrs.web", "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)

router = APIRouter(include_in_schema=False)

LangQuery = Annotated[str | None, Query(max_length=5)]
AcceptLanguage = Annotated[str | None, Header(max_length=400)]


def render_page(name: str, lang: str | None, accept_language: str | None) -> HTMLResponse:
    """One page in the chosen language."""
    language = pick_language(lang, accept_language)
    text = messages(language)
    other = next(code for code in LANGUAGES if code != language)
    # The script reads the messages from a JSON island; "</" cannot end the element early.
    island = json.dumps(text, ensure_ascii=False).replace("</", "<\\/")
    html = _environment.get_template(name).render(
        lang=language, other_lang=other, t=text, messages_json=island
    )
    return HTMLResponse(html, headers={**_SECURITY, "Content-Language": language})


@router.get("/", response_class=HTMLResponse)
def home(lang: LangQuery = None, accept_language: AcceptLanguage = None) -> HTMLResponse:
    return render_page(_PAGES[""], lang, accept_language)


@router.get("/app/{page}", response_class=HTMLResponse)
def app_page(
    page: str, lang: LangQuery = None, accept_language: AcceptLanguage = None
) -> HTMLResponse:
    if page not in _PAGES or not page:
        raise NotFound("PAGE_NOT_FOUND", "no such page")
    return render_page(_PAGES[page], lang, accept_language)


@router.get("/app/static/{name}")
def static_file(name: str) -> Response:
    """The pages' stylesheet and scripts (a fixed set of files shipped with the package)."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    folder = resources.files("vrs.web") / "static"
    if suffix not in _STATIC_TYPES or "/" in name or name.startswith("."):
        raise NotFound("PAGE_NOT_FOUND", "no such file")
    item = folder / name
    if not item.is_file():
        raise NotFound("PAGE_NOT_FOUND", "no such file")
    return Response(
        item.read_bytes(),
        media_type=_STATIC_TYPES[suffix],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )
