"""The bare ceiling of the benchmark: parse the multipart upload and decode the image, no model.

Nothing a digit service does can be faster than this on the same server stack (FastAPI on
uvicorn, one process). Run: python bench/ceiling_server.py --port 8102
"""

from __future__ import annotations

import argparse
import io

import uvicorn
from fastapi import FastAPI, Request
from PIL import Image

app = FastAPI()
ANSWER = {"digit": 0, "probabilities": [0.1] * 10}


@app.post("/predict")
async def predict(request: Request):
    form = await request.form()
    image = Image.open(io.BytesIO(await form["file"].read()))
    image.load()
    await form.close()
    return ANSWER


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8102)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")
