# Production image of the quarters API and web map (the database runs in its own container).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY data ./data
COPY web ./web
RUN pip install --no-cache-dir ".[analysis]" && cd web && npm ci --omit=dev --no-audit --no-fund
ENV QUARTERS_HOST=0.0.0.0 \
    QUARTERS_WEB_DIR=/app/web \
    QUARTERS_GEO_DIR=/app/data/geo \
    QUARTERS_CATALOGUE=/app/data/sources.toml \
    QUARTERS_DATA_DIR=/data
EXPOSE 8000
USER nobody
CMD ["sh", "-c", "quarters db upgrade && quarters serve"]
