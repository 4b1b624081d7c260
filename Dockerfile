# One image for the API and the worker; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /srv
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --uid 10001 chirp && chown -R chirp /srv
USER chirp
EXPOSE 8000
# uvicorn's options come from the settings (web/serve.py). X-Forwarded-For is believed only from
# TRUSTED_PROXIES (none by default; docker-compose.yml names its nginx).
ENV HOST=0.0.0.0 PORT=8000
CMD ["python", "-m", "web.serve"]
