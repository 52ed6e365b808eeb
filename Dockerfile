# Image for the web process, the Celery worker and beat (docker-compose.yml picks the entrypoint script).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VENV_PYTHON=/opt/venv/bin/python PATH=/opt/venv/bin:$PATH DJANGO_ENV=production

RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 app \
    && python -m venv /opt/venv

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY accounts ./accounts
COPY referrals ./referrals
COPY audit ./audit
COPY notifications ./notifications
COPY web ./web
RUN /opt/venv/bin/pip install .
COPY . .
RUN mkdir -p /app/var && chown -R app:app /app/var
USER app
EXPOSE 8000
ENTRYPOINT ["scripts/web"]
