# Image for the web process, the Celery worker and beat (docker-compose.yml picks the entrypoint script).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VENV_PYTHON=/opt/venv/bin/python PATH=/opt/venv/bin:$PATH DJANGO_ENV=production

RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 app \
    && python -m venv /opt/venv

WORKDIR /app
# The locked dependencies first (a layer that changes only with the lock): exact versions, every file
# checked against its hash, the build backend included (requirements/production.txt, from scripts/lock).
COPY requirements/production.txt ./requirements/production.txt
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements/production.txt
# Then the whole source tree, and the project itself from it without resolving anything again.
COPY . .
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
    && mkdir -p /app/var /app/cards && chown -R app:app /app/var /app/cards
USER app
EXPOSE 8000
ENTRYPOINT ["scripts/web"]
