"""The service's pages over HTTP (no browser): language choice, security headers, files."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from vrs.web.messages import _TEXT, messages, pick_language


@pytest.mark.parametrize("page", ["/", "/app/resident", "/app/municipality"])
def test_each_page_is_html_with_a_strict_policy(client: TestClient, page: str) -> None:
    answer = client.get(page + "?lang=en")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert answer.headers["cache-control"] == "no-store"
    assert '<html lang="en">' in answer.text
    assert "<script>" not in answer.text  # no inline script: only the JSON island and files


def test_the_language_follows_the_query_then_the_browser_then_japanese(
    client: TestClient,
) -> None:
    assert '<html lang="ja">' in client.get("/app/resident").text
    english = client.get("/app/resident", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.text and english.headers["content-language"] == "en"
    forced = client.get("/app/resident?lang=ja", headers={"Accept-Language": "en"})
    assert '<html lang="ja">' in forced.text
    assert pick_language("xx", "fr-FR, de") == "ja"


def test_every_message_exists_in_both_languages() -> None:
    assert all(ja.strip() and en.strip() for ja, en in _TEXT.values())
    assert messages("ja").keys() == messages("en").keys()


def test_a_message_cannot_close_the_json_island(client: TestClient) -> None:
    html = client.get("/app/resident?lang=en").text
    island = html.split('id="messages">', 1)[1].split("</script>", 1)[0]
    assert "</" not in island


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/app/static/resident.js", 200),
        ("/app/static/app.css", 200),
        ("/app/static/../__init__.py", 404),
        ("/app/static/messages.py", 404),
        ("/app/static/.hidden.js", 404),
        ("/app/static/missing.js", 404),
        ("/app/admin", 404),
    ],
)
def test_only_the_shipped_files_are_served(client: TestClient, path: str, status: int) -> None:
    answer = client.get(path)
    assert answer.status_code == status
    if status == 404:
        assert answer.json()["code"] == "PAGE_NOT_FOUND" or answer.status_code == 404
