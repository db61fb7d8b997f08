"""Request bodies: JSON only (415 otherwise) and bounded in size (413), read before parsing."""

from __future__ import annotations

from fastapi import Request

from webapi.deadline import REQUEST_BODY, waiting_on
from webapi.errors import BodyTooLargeError, NotJSONError


def is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def json_body(request: Request, *, limit: int) -> bytes:
    """The raw body of a JSON request; the caller validates it."""
    content_type = request.headers.get("content-type", "")
    if not is_json(content_type):
        raise NotJSONError(content_type)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    body = bytearray()
    with waiting_on(REQUEST_BODY):
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyTooLargeError(limit)
    return bytes(body)
