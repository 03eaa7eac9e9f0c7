"""Model providers. Importing this package registers the built-in kinds."""

from vedika.models.providers import anthropic, offline, openai_compat  # noqa: F401
from vedika.models.providers.base import (
    Delta,
    GenerationRequest,
    Provider,
    ToolCall,
    ToolSpec,
    build_provider,
    provider_kinds,
    register,
)

__all__ = [
    "Delta",
    "GenerationRequest",
    "Provider",
    "ToolCall",
    "ToolSpec",
    "build_provider",
    "provider_kinds",
    "register",
]
