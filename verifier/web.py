"""``vrs-verify serve``: a checker's page on the checker's own device (localhost only).

The page takes the device camera (``getUserMedia``) or a photo the checker picks, sends the
frame to this local server, which runs :func:`verifier.decode` and :func:`verifier.verify`
against the trust bundle synced earlier, and shows a large verdict with the holder's name and
birth date only. Nothing is stored: no image, no result, no log line naming a person. The
server answers only loopback clients and only requests addressed to ``localhost`` or
``127.0.0.1`` (a web page elsewhere cannot reach it through DNS rebinding).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from verifier.decode import decode
from verifier.result import VerificationResult
from verifier.trust import TrustStore
from verifier.verify import verify

__all__ = ["CheckerServer", "verdict_document"]

#: A phone photo is a few MB; anything far larger is refused before it is read.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
_STATIC = {
    "/checker.js": "text/javascript; charset=utf-8",
    "/checker.css": "text/css; charset=utf-8",
}
_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_TEXT: dict[str, tuple[str, str]] = {
    "title": ("接種証明書の確認", "Check a vaccination certificate"),
    "intro": (
        "QRコードをカメラに向けるか、写真を選んでください。結果は保存されません。",
        "Point the camera at the QR code, or pick a photo. Nothing is stored.",
    ),
    "camera.start": ("カメラを開始", "Start the camera"),
    "camera.stop": ("カメラを停止", "Stop the camera"),
    "camera.video": ("カメラの映像", "Camera view"),
    "photo": ("証明書の写真・画像", "Photo or image of the certificate"),
    "check": ("確認する", "Check"),
    "valid": ("有効", "VALID"),
    "invalid": ("無効", "INVALID"),
    "error": ("判定できません", "CANNOT DECIDE"),
    "name": ("氏名", "Name"),
    "birth": ("生年月日", "Date of birth"),
    "reason": ("理由", "Reason"),
    "mode": ("確認モード", "Check mode"),
    "trust": ("信頼リスト", "Trust bundle"),
    "noqr": ("QRコードが見つかりません", "No QR code found"),
    "lang": ("English", "日本語"),
    "camera.denied": ("カメラを使えません", "The camera is not available"),
}
_LANGUAGES = ("ja", "en")


def verdict_document(result: VerificationResult) -> dict[str, Any]:
    """What the page shows: the verdict, the failed check's code, and name and birth date
    only (standardised names in border modes, for comparing with the passport)."""
    holder = result.holder
    return {
        "status": result.status.value,
        "code": result.code.value if result.code else None,
        "name": holder.display_name() if holder else None,
        "date_of_birth": holder.date_of_birth if holder else None,
        "name_standardised": " ".join(
            part
            for part in (
                (holder.family_name_standardised or "") if holder else "",
                (holder.given_name_standardised or "") if holder else "",
            )
            if part
        )
        or None,
    }


def _page(language: str, mode: str, trust: TrustStore) -> str:
    index = _LANGUAGES.index(language)
    text = {key: pair[index] for key, pair in _TEXT.items()}
    other = _LANGUAGES[1 - index]
    island = json.dumps(text, ensure_ascii=False).replace("</", "<\\/")
    esc = _escape
    return f"""<!doctype html>
<html lang="{language}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(text["title"])}</title>
<link rel="stylesheet" href="/checker.css">
<script type="application/json" id="messages">{island}</script>
<script src="/checker.js" defer></script></head>
<body><main>
<p class="top"><a href="/?lang={other}" lang="{other}" hreflang="{other}">
{esc(text["lang"])}</a></p>
<h1>{esc(text["title"])}</h1>
<p>{esc(text["intro"])}</p>
<p class="meta">{esc(text["mode"])}: <strong id="mode">{esc(mode)}</strong> ·
{esc(text["trust"])}: #{trust.sequence}, {esc(str(trust.valid_until))}</p>
<div id="verdict" class="verdict" role="status" aria-live="assertive" aria-atomic="true" hidden>
  <p id="verdict-word" class="word"></p>
  <dl><dt>{esc(text["name"])}</dt><dd id="verdict-name"></dd>
  <dt>{esc(text["birth"])}</dt><dd id="verdict-birth"></dd>
  <dt>{esc(text["reason"])}</dt><dd id="verdict-code"></dd></dl>
</div>
<section>
<button type="button" id="camera-start">{esc(text["camera.start"])}</button>
<button type="button" id="camera-stop" hidden>{esc(text["camera.stop"])}</button>
<video id="video" playsinline muted aria-label="{esc(text["camera.video"])}" hidden></video>
</section>
<form id="photo-form">
<label for="photo">{esc(text["photo"])}</label>
<input id="photo" name="photo" type="file" accept="image/*" capture="environment">
<button type="submit">{esc(text["check"])}</button>
</form>
</main></body></html>
"""


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


class CheckerServer:
    """The local checker page and its ``POST /verify``, on ``host:port`` (loopback)."""

    def __init__(
        self,
        trust: TrustStore,
        *,
        mode: str,
        clock: Callable[[], datetime],
        host: str = "127.0.0.1",
        port: int = 8080,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the checker page serves loopback only (127.0.0.1, localhost, ::1)")
        self.trust = trust
        self.mode = mode
        self.clock = clock
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def check(self, data: bytes) -> dict[str, Any]:
        """Decode and verify one upload (image bytes or ``HC1:`` text); nothing is kept."""
        text = data.strip()
        source: str | bytes = text.decode("ascii", "replace") if text[:4] == b"HC1:" else data
        result = verify(decode(source), trust=self.trust, now=self.clock(), mode=self.mode)
        return verdict_document(result)

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def start(self) -> CheckerServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "vrs-verify"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                pass  # stores nothing: not even an access log

            def _allowed(self) -> bool:
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
                return host in ("127.0.0.1", "localhost", "::1")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in _SECURITY.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc, ensure_ascii=False).encode()
                self._send(status, body, "application/json; charset=utf-8")

            def do_GET(self) -> None:
                if not self._allowed():
                    self._json(HTTPStatus.FORBIDDEN, {"code": "HOST_NOT_ALLOWED"})
                    return
                url = urlsplit(self.path)
                if url.path == "/":
                    lang = parse_qs(url.query).get("lang", [""])[0]
                    if lang not in _LANGUAGES:
                        accept = (self.headers.get("Accept-Language") or "").lower()
                        lang = "en" if accept.startswith("en") else "ja"
                    page = _page(lang, server.mode, server.trust).encode()
                    self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
                elif url.path in _STATIC:
                    data = (resources.files("verifier") / "web_static" / url.path[1:]).read_bytes()
                    self._send(HTTPStatus.OK, data, _STATIC[url.path])
                else:
                    self._json(HTTPStatus.NOT_FOUND, {"code": "NOT_FOUND"})

            def do_POST(self) -> None:
                if not self._allowed() or urlsplit(self.path).path != "/verify":
                    self._json(HTTPStatus.FORBIDDEN, {"code": "HOST_NOT_ALLOWED"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or "-1")
                except ValueError:
                    length = -1
                if length < 0:
                    self._json(HTTPStatus.LENGTH_REQUIRED, {"code": "LENGTH_REQUIRED"})
                    return
                if length > MAX_UPLOAD_BYTES:
                    self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"code": "TOO_LARGE"})
                    self.close_connection = True
                    return
                data = self.rfile.read(length)
                self._json(HTTPStatus.OK, server.check(data))

        return Handler
