"""The models file: what operators write, and the errors they get when it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from vedika.models.catalogue import CatalogueError, load_models_file, v1_url


def test_a_full_models_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VLLM_KEY", "secret")
    path = tmp_path / "m.toml"
    path.write_text("""
[[endpoints]]
name = "vllm"
kind = "openai"
base_url = "http://gpu:8000"
api_key_env = "VLLM_KEY"

[[models]]
id = "qwen-coder"
endpoint = "vllm"
upstream_id = "Qwen/Qwen2.5-Coder-32B-Instruct"
name = "Qwen Coder"
description = "Fast code model on our GPU box."
speed = "fast"
cost = "low"
best_for = ["code"]
coins_per_message = 2
context_window = 32768
good_at = { code = 0.9, general = 0.5 }
""")
    endpoints, models = load_models_file(path)
    assert endpoints[0].base_url == "http://gpu:8000/v1" and endpoints[0].api_key == "secret"
    m = models[0]
    assert (m.id, m.upstream_id, m.coins_per_message, m.context_window) == (
        "qwen-coder",
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        2,
        32768,
    )
    assert m.good_at == {"code": 0.9, "general": 0.5}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("[[models]]\nname = 'x'\n", "needs a 'id'"),
        ("[[models]]\nid = 'x'\nendpoint = 'e'\ncoins_per_message = -3\n", "negative"),
        ("[[models]]\nid = 'x'\nendpoint = 'e'\ngood_at = ['juggling']\n", "unknown good_at"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, body: str, words: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(body)
    with pytest.raises(CatalogueError, match=words):
        load_models_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        load_models_file(tmp_path / "nope.toml")


def test_v1_url() -> None:
    assert v1_url("http://h:1") == "http://h:1/v1"
    assert v1_url("https://openrouter.ai/api/v1/") == "https://openrouter.ai/api/v1"
