# digitserve: the prediction service with the shipped model baked in.
#   CPU (default):  docker build -t digitserve .
#   GPU:            docker build --build-arg TENSORFLOW_PACKAGE="tensorflow[and-cuda]" --build-arg DIGITSERVE_BACKEND=keras -t digitserve:gpu .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# The CPU-only wheel keeps the image far smaller; the GPU build swaps in CUDA-enabled TensorFlow
# and serves through TensorFlow's own call (LiteRT runs on the CPU only).
ARG TENSORFLOW_PACKAGE=tensorflow-cpu
ARG DIGITSERVE_BACKEND=litert

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONPATH=/srv/digitserve \
    DIGITSERVE_HOST=0.0.0.0 \
    DIGITSERVE_PORT=8000 \
    DIGITSERVE_MODEL_PATH=/srv/digitserve/model/digitserve.keras \
    DIGITSERVE_CACHE_DIR=/srv/digitserve/cache \
    DIGITSERVE_BACKEND=${DIGITSERVE_BACKEND}

WORKDIR /srv/digitserve

# Dependencies first, from pyproject.toml alone, so code changes do not reinstall them.
COPY pyproject.toml ./
RUN python3 -m venv /opt/venv \
 && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; deps = p['dependencies'] + p['optional-dependencies']['training']; print('\n'.join(d.split('#')[0].strip() for d in deps if not d.startswith('tensorflow')))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt "${TENSORFLOW_PACKAGE}>=2.18" \
 && rm /tmp/requirements.txt

COPY app ./app
COPY training ./training
COPY model ./model
# Check the model and make its LiteRT copy now, so a container serves without waiting for TensorFlow.
RUN python -m app --check

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"]
# python -m app checks the model, then runs uvicorn in this process (exec form: it gets the signals).
CMD ["python", "-m", "app"]
