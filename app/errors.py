"""The one place where failures become 4xx JSON answers: {"detail": "<a sentence a user can act on>"}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.preprocess import CorruptImage, EmptyImage, ImageTooLarge, NoDigitFound, PreprocessError, UnsupportedImage

logger = logging.getLogger("digitserve")


# nginx's status for a request the client abandoned before the answer; logged, never received.
CLIENT_CLOSED_REQUEST = 499


class RequestError(Exception):
    """A request the service refuses, with its status code and a sentence for the user."""

    status_code = 400

    def __init__(self, detail: str, status_code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code


class UploadTooLarge(RequestError):
    """The request body is larger than the configured limit."""

    status_code = 413


PREPROCESS_ANSWERS: dict[type[PreprocessError], tuple[int, str]] = {
    EmptyImage: (400, "The uploaded file is empty: send a PNG, JPEG, GIF, BMP, WebP or TIFF image of a digit."),
    UnsupportedImage: (415, "The upload is not a supported image: send a PNG, JPEG, GIF, BMP, WebP or TIFF file."),
    CorruptImage: (400, "The image is truncated or corrupt and could not be decoded: export it again and retry."),
    ImageTooLarge: (413, "The image has too many pixels ({reason}): scale it down and retry."),
    NoDigitFound: (422, "No digit found in the image ({reason}): draw or photograph a digit in dark or bright ink."),
}


def preprocess_answer(error: PreprocessError) -> tuple[int, str]:
    """The status code and user-facing sentence for a preprocessing failure."""
    for error_type, (status, template) in PREPROCESS_ANSWERS.items():
        if isinstance(error, error_type):
            return status, template.format(reason=str(error))
    return 400, f"The image could not be processed: {error}."


def error_body(detail: str) -> dict:
    """The JSON body of every error answer."""
    return {"detail": detail}


def validation_sentence(error: RequestValidationError) -> str:
    """Turn FastAPI's list of validation errors into one readable sentence."""
    parts = []
    for item in error.errors()[:3]:
        location = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query"))
        parts.append(f"{location or 'request'}: {item.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + "."


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into {"detail": ...} JSON."""

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, error: RequestError):
        return JSONResponse(error_body(error.detail), status_code=error.status_code)

    @app.exception_handler(PreprocessError)
    async def _preprocess_error(request: Request, error: PreprocessError):
        status, detail = preprocess_answer(error)
        return JSONResponse(error_body(detail), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError):
        return JSONResponse(error_body(validation_sentence(error)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse(error_body(str(error.detail)), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, error: ClientDisconnect):
        # The client hung up mid-upload: nobody reads this answer, and it is not a server fault.
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("The server failed on this request; it has been logged."), status_code=500)
