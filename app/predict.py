"""Command-line predictor: python -m app.predict IMAGE... [--json] [--steps] [--number]

Each file goes through the same preprocessing and model as the service; with --number each is
read as a whole number, as `POST /read` reads it. Unreadable files get
a one-line error; the others are still answered; the exit status is 1 if any file failed.
With --steps, each image also gets IMAGE.steps.png beside it: what every preprocessing stage
made of it, side by side, so a misread upload shows where it went wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from app.classifier import Classifier, ModelLoadError
from app.config import get_settings
from app.errors import error_answer
from app.inference import Predictor
from app.logs import quiet_tensorflow
from app.observability import Metrics
from app.preprocess import PreprocessError, SeveralDigitsFound, preprocess


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.predict", description="Read the handwritten digit in each image.")
    parser.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, GIF, BMP, WebP, TIFF)")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: DIGITSERVE_MODEL_PATH or the shipped model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--steps", action="store_true", help="also write IMAGE.steps.png: the preprocessing stages side by side")
    parser.add_argument("--number", action="store_true", help="read each image as a number of up to 16 digits, as POST /read does")
    return parser.parse_args(argv)


def describe(path: Path, probabilities: np.ndarray) -> dict:
    """The answer for one file: digit, confidence and the three likeliest digits."""
    order = np.argsort(probabilities)[::-1][:3]
    return {
        "file": str(path),
        "digit": int(order[0]),
        "confidence": round(float(probabilities[order[0]]), 6),
        "top3": [{"digit": int(digit), "probability": round(float(probabilities[digit]), 6)} for digit in order],
    }


def file_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None after saying why it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        print(f"{path}: error: cannot read the file ({error.strerror or error})", file=sys.stderr)
        return None


def write_steps(path: Path, steps: dict[str, np.ndarray], caption: str) -> None:
    """Write the stages' picture beside the image and say where."""
    from app.steps import steps_image

    target = path.with_name(path.name + ".steps.png")
    steps_image(steps, f"{path.name}: {caption}").save(target)
    print(f"{path}: stages written to {target}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    settings = get_settings()
    try:
        classifier = Classifier.load(
            args.model or settings.model_path, settings.model_name, settings.backend, settings.model_threads, cache_dir=settings.cache_dir or None
        )
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.number:
        return read_numbers(args.images, Predictor(classifier, Metrics(), settings.max_pixels), args.json)
    failures = 0
    for path in args.images:
        steps = {} if args.steps else None
        if (data := file_bytes(path)) is None:
            failures += 1
            continue
        several = False
        try:
            digit = preprocess(data, settings.max_pixels, steps)
        except SeveralDigitsFound as found:
            # Answered like the service's ?accept_uncertain=true: the best guess, marked as no single digit.
            digit, several = found.digit, True
        except PreprocessError as error:
            failures += 1
            sentence = error_answer(error)[1]
            print(f"{path}: error: {sentence}", file=sys.stderr)
            if steps:
                write_steps(path, steps, sentence)
            continue
        probabilities, is_digit = classifier.read(digit[np.newaxis])
        answer = {**describe(path, probabilities[0]), "is_digit": bool(is_digit[0]) and not several}
        verdict = "several digits (read them with --number); best guess " if several else "" if answer["is_digit"] else "not a digit; best guess "
        if steps is not None:
            write_steps(path, steps, f"{verdict or 'read as '}{answer['digit']} ({answer['confidence']:.1%})")
        if args.json:
            print(json.dumps(answer))
        else:
            others = ", ".join(f"{item['digit']} {item['probability']:.1%}" for item in answer["top3"][1:])
            print(f"{path}: {verdict}{answer['digit']} ({answer['confidence']:.1%}; then {others})")
    return 1 if failures else 0


def read_numbers(paths: list[Path], predictor: Predictor, as_json: bool) -> int:
    """Print the number read in each file, digit by digit with its confidence; 1 if any file failed."""
    failures = 0
    for path in paths:
        if (data := file_bytes(path)) is None:
            failures += 1
            continue
        try:
            reading = predictor.read_number(data)
        except PreprocessError as error:
            failures += 1
            print(f"{path}: error: {error_answer(error)[1]}", file=sys.stderr)
            continue
        if as_json:
            print(json.dumps({"file": str(path), **reading.model_dump(include={"number", "digits"})}))
        else:
            digits = ", ".join(f"{digit.digit} {digit.confidence:.1%}" for digit in reading.digits)
            print(f"{path}: {reading.number} ({digits})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
