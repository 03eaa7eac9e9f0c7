"""Short-lived Deepgram keys for clients that stream audio to Deepgram themselves.

The original web client fetches `GET /deepgram/token` (no session) and opens
Deepgram's streaming socket with the `apiKey` it gets. The operator's own key never
leaves the server: each call creates a project key that expires after
`VEDIKA_DEEPGRAM_KEY_TTL` seconds with only the `usage:write` scope (Deepgram's
Keys API, `POST /v1/projects/{project_id}/keys`). Without a configured key the call
answers a clear 503, and it is rate-limited per address (it spends the operator's
Deepgram account).
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from vedika.errors import ServiceUnavailable, VedikaError
from vedika.settings import Settings

log = structlog.get_logger(__name__)

SCOPES = ["usage:write"]  # enough to transcribe, nothing to manage the project


class DeepgramKeys:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self._project: str | None = settings.deepgram_project_id

    @property
    def configured(self) -> bool:
        return self.settings.deepgram_api_key is not None

    def _headers(self) -> dict[str, str]:
        key = self.settings.deepgram_api_key
        assert key is not None
        return {"Authorization": f"Token {key.get_secret_value()}"}

    async def temporary_key(self) -> dict[str, Any]:
        """`{apiKey, expires_in}`: a key that works for `expires_in` seconds."""
        if not self.configured:
            raise ServiceUnavailable(
                "Dictation through Deepgram is not configured on this server "
                "(VEDIKA_DEEPGRAM_API_KEY).",
                code="dictation_unavailable",
                retryable=False,
            )
        ttl = self.settings.deepgram_key_ttl
        project = await self._project_id()
        body = {"comment": "vedika dictation", "scopes": SCOPES, "time_to_live_in_seconds": ttl}
        data = await self._call("POST", f"/v1/projects/{project}/keys", json=body)
        key = data.get("key")
        if not isinstance(key, str) or not key:
            raise _failed("answered without a key")
        return {"apiKey": key, "expires_in": ttl}

    async def _project_id(self) -> str:
        """VEDIKA_DEEPGRAM_PROJECT_ID, or the key's first project (looked up once)."""
        if self._project is None:
            data = await self._call("GET", "/v1/projects")
            projects = data.get("projects") or []
            first = projects[0].get("project_id") if projects else None
            if not isinstance(first, str):
                raise _failed("has no project for this key")
            self._project = first
        return self._project

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.settings.deepgram_url.rstrip("/") + path
        try:
            resp = await self.http.request(
                method,
                url,
                headers=self._headers(),
                timeout=self.settings.voice_timeout,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            log.warning("deepgram.unreachable", error=type(exc).__name__)
            raise _failed("did not answer") from None
        if resp.status_code != 200:
            log.warning("deepgram.refused", status=resp.status_code)
            raise _failed(f"answered {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            raise _failed("answered something that is not JSON") from None
        return data if isinstance(data, dict) else {}


def _failed(why: str) -> VedikaError:
    return VedikaError(
        f"Deepgram {why}; dictation is unavailable for now. Please try again later.",
        code="dictation_failed",
        status=502,
        retryable=True,
    )
