"""WSGI entry point: ``app.wsgi:application`` for uWSGI, mod_wsgi and gunicorn."""

from app import create_app

application = create_app()
