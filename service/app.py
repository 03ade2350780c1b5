"""Production entry point: `gunicorn 'service.app:create_app()' -c deploy/gunicorn.conf.py`."""

from service.web import create_app

__all__ = ["create_app"]
