"""Reading image uploads from requests, with the size limits enforced while the body streams in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import suppress

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import FormError, TooManyFiles, UnsupportedMediaType, UploadTooLarge

# Room for the multipart boundary and part headers around a file of the maximum size.
MULTIPART_OVERHEAD = 64 * 1024
# After a 413 the rest of an oversize body is read and dropped, this much at most, before the
# connection closes: closing on unread bytes makes the kernel send a reset, and a client still
# sending (most send the whole body before reading) then sees "connection reset", not the answer.
DRAIN_BYTES = 32 * 1024 * 1024
DRAIN_SECONDS = 3.0
IMAGE_MEDIA_HINT = "send the image as multipart/form-data field 'file' (curl -F file=@digit.png) or as a raw body with an image/* Content-Type"


class BodySizeLimit:
    """ASGI middleware: refuse bodies over the route's limit, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit_for_path: Callable[[str], tuple[int, int]]):
        """`limit_for_path(path)` gives (bytes enforced, bytes stated to the user)."""
        self.app = app
        self.limit_for_path = limit_for_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit, stated_limit = self.limit_for_path(scope["path"])
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Reading would send "100 Continue" after our answer; such a client sends nothing unasked.
            waits_to_send = headers.get(b"expect", b"").lower() == b"100-continue"
            await _send_too_large(send, stated_limit, receive=None if waits_to_send else receive)
            return
        received = 0
        unread = False

        async def limited_receive() -> Message:
            nonlocal received, unread
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    unread = message.get("more_body", False)
                    raise UploadTooLarge(too_large_sentence(stated_limit))
            return message

        async def draining_send(message: Message) -> None:
            nonlocal unread
            if not unread:
                await send(message)
            elif message["type"] == "http.response.start":
                await send({**message, "headers": [*message.get("headers", []), (b"connection", b"close")]})
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                unread = False
                await send({**message, "more_body": True})
                await drain_body(receive)
                await send({"type": "http.response.body", "body": b""})
            else:
                await send(message)

        await self.app(scope, limited_receive, draining_send)


def too_large_sentence(limit: int) -> str:
    """The user-facing sentence for a body over `limit` bytes."""
    return f"The upload is larger than the limit of {limit / (1024 * 1024):.1f} MB: send a smaller image."


async def drain_body(receive: Receive) -> None:
    """Read and drop the rest of the request body, up to DRAIN_BYTES and DRAIN_SECONDS."""
    drained = 0
    with suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while drained < DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def _send_too_large(send: Send, limit: int, receive: Receive | None) -> None:
    """Answer 413 with the sentence, then drain what `receive` still holds of the body, then close."""
    body = json.dumps({"detail": too_large_sentence(limit)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": receive is not None})
    if receive is not None:
        await drain_body(receive)
        await send({"type": "http.response.body", "body": b""})


def media_type(request: Request) -> str:
    """The request's media type, lower-cased, without parameters."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_image_upload(request: Request, max_bytes: int) -> bytes:
    """The image bytes of a /predict or /explain request: multipart field 'file' or a raw image body."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        one_image = FormError("Send one image in the field 'file'; use /predict/batch with field 'files' for several.")
        [(_, data)] = await read_form_files(request, "file", max_files=1, too_many=one_image)
    elif kind.startswith("image/") or kind == "application/octet-stream":
        data = await request.body()
    elif not kind:
        raise UnsupportedMediaType(f"The request has no Content-Type: {IMAGE_MEDIA_HINT}.")
    else:
        raise UnsupportedMediaType(f"Content-Type {kind} is not accepted: {IMAGE_MEDIA_HINT}.")
    if len(data) > max_bytes:
        raise UploadTooLarge(too_large_sentence(max_bytes))
    return data


async def read_batch_upload(request: Request, max_files: int, max_bytes: int) -> list[tuple[str | None, bytes]]:
    """(file name, bytes) of each file of a /predict/batch request, in order; each file at most `max_bytes`."""
    uploads = await read_form_files(request, "files", max_files, TooManyFiles(f"Too many files: at most {max_files} per request."))
    for name, data in uploads:
        if len(data) > max_bytes:
            raise UploadTooLarge(f"{name or 'a file'}: {too_large_sentence(max_bytes)}")
    return uploads


async def read_form_files(request: Request, field: str, max_files: int, too_many: Exception) -> list[tuple[str | None, bytes]]:
    """(file name, bytes) of each file in a multipart field; `too_many` when the form holds over `max_files` files."""
    try:
        form = await request.form(max_files=max_files, max_fields=32)
    except HTTPException as error:
        # Starlette's parser stops at `max_files` with a 400 that only its message tells apart;
        # the user gets the route's own sentence instead of the parser's count.
        if str(error.detail).startswith("Too many files"):
            raise too_many from None
        raise
    try:
        values = form.getlist(field)
        if not values:
            present = ", ".join(sorted(set(form.keys()))) or "none"
            raise FormError(f"The form has no field '{field}' (fields sent: {present}): send the image as multipart field '{field}'.")
        files = []
        for value in values:
            if not isinstance(value, UploadFile):
                raise FormError(f"The field '{field}' holds text, not a file: attach the image as a file.")
            files.append((value.filename, await value.read()))
        return files
    finally:
        await form.close()
