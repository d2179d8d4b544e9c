# Image for the web app, the worker and the migrate step of docker-compose.yml.
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && mkdir -p vendor/htmx vendor/pico \
 && cp node_modules/htmx.org/dist/htmx.min.js vendor/htmx/ \
 && cp node_modules/@picocss/pico/css/pico.min.css vendor/pico/

FROM python:3.12-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY . .
# Editable: templates/ and static/ live beside the package, as in the repository.
RUN pip install --no-cache-dir -e .
COPY --from=assets /build/vendor ./static/vendor
RUN useradd --system portal && chown -R portal /app
USER portal
EXPOSE 8000
