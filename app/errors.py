"""The service's refusals, and the one place where each becomes an answer: a status and a sentence.

Preprocessing raises its own errors (`app/preprocess.py`); the rest of the service raises the
`RequestError` family below. Neither knows about HTTP: `STATUS` gives each its status code here.
Answers are {"detail": "<a sentence a user can act on>"}; the protocol routes' errors also carry
it as "error", the field their specifications name. An upload refused because it is not one digit
also names what was seen, in "reason": "blank", "several_digits" or "not_a_digit".
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.preprocess import CorruptImage, EmptyImage, ImageTooLarge, NoDigitFound, OnlyNoise, PreprocessError, SeveralDigitsFound, UnsupportedImage
from app.segmentation import MAX_DIGITS, TooManyDigits

logger = logging.getLogger("digitserve")

# nginx's status for a request the client abandoned before the answer; logged, never received.
CLIENT_CLOSED_REQUEST = 499


class RequestError(Exception):
    """Base of the service's own refusals; the message is the sentence the user reads."""


class UnsupportedMediaType(RequestError):
    """The request's Content-Type is not one the route reads."""


class FormError(RequestError):
    """The multipart form lacks the file field, holds text in it, or more files than the route takes."""


class UploadTooLarge(RequestError):
    """The request body, or a file in it, is larger than the configured limit."""


class TooManyFiles(RequestError):
    """A batch holds more files than the configured limit."""


class ExplanationsUnavailable(RequestError):
    """The Keras model that explanations need could not be loaded."""


class NotADigit(RequestError):
    """The image holds something, but the model's features say it is not a digit it knows."""


class SeveralDigits(NotADigit):
    """The image holds several digits side by side, not one."""


class ProtocolError(RequestError):
    """A protocol (TF Serving, Open Inference Protocol) request with the wrong form, shape, type or values."""


class UnknownModel(ProtocolError):
    """The URL names a model this server does not serve."""


class TooManyInstances(ProtocolError):
    """A protocol request holds more images than the configured limit."""


# The most specific class of an error that is listed here gives its status.
STATUS: dict[type[Exception], int] = {
    UnsupportedMediaType: 415,
    FormError: 422,
    UploadTooLarge: 413,
    TooManyFiles: 413,
    ExplanationsUnavailable: 503,
    NotADigit: 422,
    SeveralDigits: 422,
    ProtocolError: 400,
    UnknownModel: 404,
    TooManyInstances: 413,
    EmptyImage: 400,
    UnsupportedImage: 415,
    CorruptImage: 400,
    ImageTooLarge: 413,
    NoDigitFound: 422,
    OnlyNoise: 422,
    SeveralDigitsFound: 422,
    TooManyDigits: 422,
}
NOT_A_DIGIT_SENTENCE = (
    "This doesn't look like a digit: draw or photograph one digit 0-9, large and alone in the picture "
    "(add ?accept_uncertain=true to get the best guess anyway)."
)
SEVERAL_DIGITS_SENTENCE = (
    "This looks like several digits: send it to /read to read the whole number, or send one digit per image "
    "(add ?accept_uncertain=true to get the best guess anyway)."
)


# Preprocessing's messages say what is wrong with the image; the answer adds what to do about it.
PREPROCESS_SENTENCES: dict[type[PreprocessError], str] = {
    EmptyImage: "The uploaded file is empty: send a PNG, JPEG, GIF, BMP, WebP or TIFF image of a digit.",
    UnsupportedImage: "The upload is not a supported image: send a PNG, JPEG, GIF, BMP, WebP or TIFF file.",
    CorruptImage: "The image is truncated or corrupt and could not be decoded: export it again and retry.",
    ImageTooLarge: "The image has too many pixels ({reason}): scale it down and retry.",
    NoDigitFound: "No digit found in the image ({reason}): draw or photograph a digit in dark or bright ink.",
    TooManyDigits: f"Too many digits to read ({{reason}}): crop the picture to one number of at most {MAX_DIGITS} digits.",
    SeveralDigitsFound: SEVERAL_DIGITS_SENTENCE,
}
# What a refused upload was seen to hold, for clients that act on it (the page words it for people).
REASONS: dict[type[Exception], str] = {
    OnlyNoise: "not_a_digit",
    NoDigitFound: "blank",
    SeveralDigitsFound: "several_digits",
    SeveralDigits: "several_digits",
    NotADigit: "not_a_digit",
    TooManyDigits: "too_many_digits",
}


def error_answer(error: RequestError | PreprocessError) -> tuple[int, str]:
    """The status code and the user-facing sentence for one of the service's errors."""
    status = next((STATUS[kind] for kind in type(error).__mro__ if kind in STATUS), 400)
    template = next((PREPROCESS_SENTENCES[kind] for kind in type(error).__mro__ if kind in PREPROCESS_SENTENCES), None)
    if template is not None:
        return status, template.format(reason=str(error))
    if isinstance(error, PreprocessError):
        return status, f"The image could not be processed: {error}."
    return status, str(error)


def error_reason(error: Exception) -> str | None:
    """What a refused upload was seen to hold ("blank", "several_digits", "not_a_digit"), or None for other errors."""
    return next((REASONS[kind] for kind in type(error).__mro__ if kind in REASONS), None)


def error_body(detail: str, reason: str | None = None) -> dict:
    """The JSON body of every error answer."""
    return {"detail": detail} if reason is None else {"detail": detail, "reason": reason}


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
    @app.exception_handler(PreprocessError)
    async def _domain_error(request: Request, error: RequestError | PreprocessError):
        status, detail = error_answer(error)
        body = {"error": detail, **error_body(detail)} if isinstance(error, ProtocolError) else error_body(detail, error_reason(error))
        return JSONResponse(body, status_code=status)

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
