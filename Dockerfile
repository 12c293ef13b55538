# The app image used by docker-compose.yml: migrations run on start (`signalboard serve` upgrades first).
FROM python:3.11-slim
WORKDIR /srv/signalboard
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies come from the lock file (exact versions, every file's hash), so two builds install the
# same packages; this layer is reused until the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# The project itself, without resolving anything again (--no-deps).
RUN pip install --no-cache-dir --no-deps -e . && useradd --system --uid 10001 signalboard
USER signalboard
EXPOSE 8000
CMD ["signalboard", "serve", "--host", "0.0.0.0", "--port", "8000"]
