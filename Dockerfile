# One image for the four services (intake, review, clarification, archive), the officers' console
# and the one-shot migration: `zhengming serve <name>` / `zhengming migrate`. See docker-compose.yml.

# The console's chart script, from npm at build time (console/assets/package-lock.json).
FROM node:20-slim AS console-assets
WORKDIR /assets
COPY console/assets/package.json console/assets/package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

# The API viewers each service's /docs serves (Swagger UI), from npm at build time too.
FROM node:20-slim AS docs-assets
WORKDIR /assets
COPY docs/viewers/package.json docs/viewers/package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ZM_LOCAL_ROOT=/var/lib/zhengming

# The documents' PDF rendering (WeasyPrint) needs Pango and the CJK fonts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 \
       libharfbuzz-subset0 \
    && rm -rf /var/lib/apt/lists/*

# The runtime's exact versions and hashes first (a layer that changes only with the lock), then
# the project without resolving anything again: no embedded PostgreSQL, no Faker, no test tools.
COPY requirements/runtime.lock /tmp/runtime.lock
RUN pip install --require-hashes -r /tmp/runtime.lock && rm /tmp/runtime.lock

# Only what the wheel needs: no .venv, .local or tests end up in the image.
COPY pyproject.toml README.md /tmp/src/
COPY shared /tmp/src/shared
COPY services /tmp/src/services
COPY zhengming /tmp/src/zhengming
COPY console /tmp/src/console
COPY --from=console-assets /assets/node_modules/echarts/dist/echarts.min.js /tmp/src/console/static/vendor/echarts.min.js
COPY --from=docs-assets /assets/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
     /assets/node_modules/swagger-ui-dist/swagger-ui.css \
     /assets/node_modules/swagger-ui-dist/favicon-32x32.png /tmp/src/shared/static/vendor/

RUN pip install --no-deps /tmp/src \
    && rm -rf /tmp/src \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/zhengming --create-home zhengming

USER zhengming
WORKDIR /var/lib/zhengming

ENTRYPOINT ["zhengming"]
CMD ["serve", "intake"]
