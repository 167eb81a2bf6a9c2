"""Images the agent passes along (base64 PNG or JPEG, as `Message.images` holds them)."""

from __future__ import annotations


def media_type(data: str) -> str:
    """The MIME type of a base64 image: JPEG if it starts with JPEG's magic bytes, else PNG."""
    # Base64 of the JPEG magic bytes FF D8 FF begins "/9j/".
    return "image/jpeg" if data.startswith("/9j/") else "image/png"
