"""`vedika.asgi:app` for uvicorn/gunicorn workers (`vedika serve --workers N`)."""

from vedika.app import create_app

app = create_app(own_process=True)
