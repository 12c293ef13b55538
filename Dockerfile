# The app image used by docker-compose.yml: migrations run on start (`signalboard serve` upgrades first).
FROM python:3.11-slim
WORKDIR /srv/signalboard
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir -e . && useradd --system --uid 10001 signalboard
USER signalboard
EXPOSE 8000
CMD ["signalboard", "serve", "--host", "0.0.0.0", "--port", "8000"]
