# Every Gozon image, one stage per process: `docker build --target orders|payments|gateway|streamlit .`
# (docker-compose.yml builds them). Each installs the dependencies of its process only, from pyproject.toml's
# extras, in a layer of its own so that a code change rebuilds only the layers after it. Runs as a non-root user.
# The classic builder builds every stage before the target, so the stages that share layers come first.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --create-home --uid 10001 gozon
COPY pyproject.toml .
# The pinned requirements of the core and of the extras named, read from pyproject.toml alone.
RUN printf '%s\n' \
        'import sys, tomllib' \
        'project = tomllib.load(open("pyproject.toml", "rb"))["project"]' \
        'extras = [project["optional-dependencies"][name] for name in sys.argv[1:]]' \
        'print("\n".join(project["dependencies"] + [pin for extra in extras for pin in extra]))' \
        > /usr/local/bin/requirements-of

FROM python AS service-dependencies
RUN python /usr/local/bin/requirements-of service > /tmp/requirements.txt && pip install -r /tmp/requirements.txt

FROM service-dependencies AS service
COPY . .
RUN pip install --no-deps .
USER gozon

# Orders on :8001 and Payments on :8002: each applies its migrations (as the database's owner) before it starts.
# Migrations take an advisory lock, so several instances may start at once.
FROM service AS orders
EXPOSE 8001
CMD ["sh", "-c", "python -m stack.migrate orders && exec python -m orders"]

FROM service AS payments
EXPOSE 8002
CMD ["sh", "-c", "python -m stack.migrate payments && exec python -m payments"]

# The gateway on :8000; the Swagger UI runs this same image as `python -m gateway.docs` on :8082.
FROM python AS gateway
RUN python /usr/local/bin/requirements-of gateway > /tmp/requirements.txt && pip install -r /tmp/requirements.txt
COPY . .
RUN pip install --no-deps .
USER gozon
EXPOSE 8000 8082
CMD ["python", "-m", "gateway"]

# The Streamlit UI on :3000; it talks only to the gateway (GATEWAY_URL).
FROM python AS streamlit
RUN python /usr/local/bin/requirements-of ui > /tmp/requirements.txt && pip install -r /tmp/requirements.txt
COPY . .
RUN pip install --no-deps .
USER gozon
EXPOSE 3000
CMD ["python", "-m", "streamlit", "run", "streamlit_app/app.py", "--server.port", "3000", "--server.address", "0.0.0.0", \
     "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
