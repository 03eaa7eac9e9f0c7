"""An OpenAI-compatible `/v1/embeddings` client, for hybrid retrieval.

The endpoint is the operator's (VEDIKA_EMBEDDINGS_URL), so it uses the ordinary
HTTP client, like the model providers. Vectors are normalised to unit length and
stored as float32 bytes: cosine similarity is then a dot product.
"""

from __future__ import annotations

import math
from array import array

import httpx


class EmbeddingsUnavailable(Exception):
    """The embeddings endpoint failed; retrieval carries on with full text alone."""


def endpoint_url(base: str) -> str:
    """`http://host:port` -> `.../v1/embeddings`; a URL with a path is completed, not guessed."""
    base = base.rstrip("/")
    if base.endswith("/embeddings"):
        return base
    if httpx.URL(base).path in ("", "/"):
        return base + "/v1/embeddings"
    return base + "/embeddings"


def normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def pack(vector: list[float]) -> bytes:
    return array("f", vector).tobytes()


def unpack(data: bytes) -> array[float]:
    out = array("f")
    out.frombytes(data)
    return out


def dot(a: array[float] | list[float], b: array[float] | list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=False))


class Embedder:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        model: str,
        api_key: str | None = None,
        *,
        batch: int = 64,
        timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.url = endpoint_url(url)
        self.model = model
        self.api_key = api_key
        self.batch = batch
        self.timeout = timeout

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit vector per text, in order. Raises EmbeddingsUnavailable."""
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            out.extend(await self._batch(texts[start : start + self.batch]))
        return out

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            resp = await self.client.post(
                self.url,
                json={"model": self.model, "input": [t[:8000] for t in texts]},
                headers=headers,
                timeout=self.timeout,
            )
            resp.raise_for_status()
            data = resp.json()["data"]
            ordered = sorted(data, key=lambda d: int(d.get("index", 0)))
            vectors = [normalise([float(x) for x in d["embedding"]]) for d in ordered]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise EmbeddingsUnavailable(f"embeddings endpoint failed: {exc!r}"[:300]) from None
        if len(vectors) != len(texts):
            raise EmbeddingsUnavailable("embeddings endpoint returned the wrong number of vectors")
        return vectors
