"""Response models of the prediction API (the protocol endpoints follow their own specs)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelInfo(BaseModel):
    name: str = Field(examples=["digitserve"])
    version: str = Field(description="first 12 hex digits of the model file's sha256", examples=["3f2a9c01b7de"])


class Prediction(BaseModel):
    digit: int = Field(ge=0, le=9, examples=[7], description="the most likely digit (a best guess when is_digit is false)")
    confidence: float = Field(ge=0, le=1, examples=[0.998], description="the calibrated probability that the digit is right")
    is_digit: bool = Field(
        examples=[True], description="whether the image looks like one digit; false only with ?accept_uncertain=true, which answers anyway"
    )
    reason: str | None = Field(None, description='why is_digit is false: "several_digits" or "not_a_digit"')
    probabilities: list[float] = Field(min_length=10, max_length=10, description="one per digit 0-9, summing to 1")
    model: ModelInfo
    input_image: str | None = Field(None, description="the 28x28 image the model saw, as a PNG data URL (with ?include_image=true)")


class BatchError(BaseModel):
    status: int = Field(examples=[415])
    detail: str
    reason: str | None = Field(None, description='for an image that is not one digit: "blank", "several_digits" or "not_a_digit"')


class BatchItem(BaseModel):
    filename: str | None
    prediction: Prediction | None = None
    error: BatchError | None = None


class BatchPrediction(BaseModel):
    results: list[BatchItem]


class ReadDigit(BaseModel):
    digit: int = Field(ge=0, le=9, examples=[2])
    confidence: float = Field(ge=0, le=1, examples=[0.99], description="the calibrated probability that the digit is right")
    is_digit: bool = Field(examples=[True], description="whether this part looks like a digit; the number holds it either way")
    probabilities: list[float] = Field(min_length=10, max_length=10, description="one per digit 0-9, summing to 1")
    box: list[int] = Field(
        min_length=4, max_length=4, examples=[[40, 22, 180, 260]], description="x, y, width, height in the uploaded image's pixels, upright"
    )


class NumberReading(BaseModel):
    number: str = Field(examples=["2026"], description="the digits read, left to right")
    digits: list[ReadDigit]
    model: ModelInfo


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Explanation(BaseModel):
    method: str = Field(examples=["gradcam"])
    digit: int = Field(ge=0, le=9, description="the digit explained (the predicted one)")
    heatmap: list[list[float]] = Field(description="28x28 values in [0, 1]: how much each pixel drove the digit")
    overlay: str = Field(description="the heatmap over the 28x28 input, as a PNG data URL")


class ExplainedPrediction(Prediction):
    explanation: Explanation


class ErrorBody(BaseModel):
    detail: str = Field(description="a sentence saying what is wrong and what to do")
    reason: str | None = Field(None, description='for an image that is not one digit: "blank", "several_digits" or "not_a_digit"')


class ProtocolErrorBody(BaseModel):
    error: str | None = Field(None, description="the message, where the protocol's own error format names it")
    detail: str
