# The shop's image; docker-compose.yml runs it beside Elasticsearch.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .

# `make run` installs into .venv unless .venv/.installed is newer than pyproject.toml
# and requirements.lock, so install there at build time, as `make setup` would, and
# the container starts without installing anything. A host .venv or var/ that came
# along with the copy is dropped first. setuptools>=68 is pyproject.toml's build
# requirement, which --no-build-isolation does not install by itself.
RUN rm -rf .venv var \
    && python -m venv .venv \
    && .venv/bin/pip install --no-cache-dir --upgrade pip "setuptools>=68" \
    && .venv/bin/pip install --no-cache-dir -r requirements.lock \
    && .venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && touch .venv/.installed

ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
EXPOSE 8000

CMD ["make", "run"]
