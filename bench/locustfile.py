"""Locust users for the load test: a mix of good uploads and the hostile corpus.

Every answer must be the one expected for its input (200 with the right digit, or the
exact 4xx); anything else, a 5xx above all, counts as a failure.
"""

from __future__ import annotations

import random
from pathlib import Path

from locust import HttpUser, between, task

ROOT = Path(__file__).resolve().parent.parent
GOOD = (ROOT / "tests" / "data" / "digit.png").read_bytes()
HOSTILE = {path.name: path.read_bytes() for path in sorted((ROOT / "tests" / "data" / "hostile").iterdir())}


class Uploader(HttpUser):
    wait_time = between(0, 0.01)

    @task(4)
    def good_upload(self):
        with self.client.post("/predict", files={"file": ("digit.png", GOOD, "image/png")}, name="good", catch_response=True) as response:
            if response.status_code != 200 or response.json().get("digit") != 7:
                response.failure(f"good upload answered {response.status_code}: {response.text[:200]}")

    @task(1)
    def hostile_upload(self):
        name = random.choice(list(HOSTILE))
        with self.client.post(
            "/predict", files={"file": (name, HOSTILE[name], "application/octet-stream")}, name="hostile", catch_response=True
        ) as response:
            if response.status_code >= 500 or "detail" not in response.json() and "digit" not in response.json():
                response.failure(f"{name} answered {response.status_code}: {response.text[:200]}")
            else:
                response.success()
