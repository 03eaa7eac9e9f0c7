"""Model calls honour HTTP(S)_PROXY and NO_PROXY, read once per host."""

from __future__ import annotations

import pytest

from vedika.models.transport import proxy_for


@pytest.fixture(autouse=True)
def fresh() -> None:
    proxy_for.cache_clear()


def test_the_proxy_of_the_scheme_unless_no_proxy_covers_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.lan")
    assert proxy_for("https", "api.openai.com") == "http://proxy.internal:3128"
    assert proxy_for("http", "api.openai.com") is None  # no HTTP_PROXY
    assert proxy_for("https", "vllm.lan") is None
    assert proxy_for("https", "localhost") is None


def test_no_proxy_set_means_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https", "api.openai.com") is None
