# The example project with celery-tasklog: one image for web, worker, beat and flower
# (see docker-compose.yml). Not built on our CI machines, which have no Docker daemon.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY tasklog ./tasklog
RUN pip install ".[postgres,redis]" dj-database-url uvicorn flower

COPY manage.py ./
COPY example ./example
RUN useradd --create-home tasklog && mkdir var && chown tasklog var
USER tasklog

EXPOSE 8000
CMD ["uvicorn", "example.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
