"""Fixtures for the browser tests: the app on a loopback port, Chromium, a page, screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from tests.e2e.browser import Steps, launch_browser, steps_for
from tests.scanner.live import ThreadServer


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    """The test's app (frozen clock, its database) served by uvicorn on a free loopback port."""
    with ThreadServer(app) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_browser()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def steps(request: pytest.FixtureRequest) -> Steps:
    return steps_for(request)
