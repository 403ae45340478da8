"""The tutorial way of serving the same model: `model.predict` per request, minimal preprocessing.

This is the baseline of the benchmark, written the way the seed tutorials serve a Keras model;
it is not part of the service. Run: python bench/tutorial_server.py --port 8101
"""

from __future__ import annotations

import argparse
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, UploadFile  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

MODEL_PATH = os.environ.get("DIGITSERVE_MODEL_PATH", "model/digitserve.keras")
model = keras.models.load_model(MODEL_PATH, compile=False)
app = FastAPI()


@app.post("/predict")
async def predict(file: UploadFile):
    image = Image.open(io.BytesIO(await file.read())).convert("L")
    image = ImageOps.invert(image).resize((28, 28))
    pixels = np.asarray(image, dtype="float32")[np.newaxis] / 255.0
    probabilities = model.predict(pixels)[0]
    return {"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8101)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")
