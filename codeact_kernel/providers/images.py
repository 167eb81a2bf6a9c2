"""Images the agent passes along (base64 PNG or JPEG, as `Message.images` holds them)."""

from __future__ import annotations

import re

# Model families known to accept images, matched on the model part of `provider:model`
# (served by their makers, by Ollama or by any OpenAI-compatible server). `vision = auto`
# sends images only to these: a text-only server rejects a request that carries them.
_VISION_FAMILIES = re.compile(
    r"""(?ix)
    (?:^|[/:])(?:
        gpt-4o | chatgpt-4o | gpt-4\.1 | gpt-4-turbo | gpt-4-vision | gpt-5
      | o1(?!-mini) | o3(?!-mini) | o4
      | claude-3 | claude-(?:opus|sonnet|haiku)-4 | claude-[a-z]+-4 | claude-4
      | llava | bakllava | llama3\.2-vision | llama-3\.2-\d+b-vision | llama4 | llama-4
      | qwen2(?:\.5)?-?vl | qwen2(?:\.5)?-vl | qwen3-vl | qvq
      | gemma-?3 | minicpm-v | moondream | pixtral | mistral-small-?3\.[12]
      | granite3\.2-vision | gemini
    )""",
)


def media_type(data: str) -> str:
    """The MIME type of a base64 image: JPEG if it starts with JPEG's magic bytes, else PNG."""
    # Base64 of the JPEG magic bytes FF D8 FF begins "/9j/".
    return "image/jpeg" if data.startswith("/9j/") else "image/png"


def accepts_images(model: str) -> bool:
    """Whether `provider:model` belongs to a family known to read images."""
    name = model.partition(":")[2] or model
    return _VISION_FAMILIES.search(name) is not None
