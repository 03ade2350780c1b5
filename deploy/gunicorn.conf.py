"""gunicorn settings for the web process:

    gunicorn 'service.app:create_app()' -c deploy/gunicorn.conf.py
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 1))
worker_class = "sync" if threads == 1 else "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 2048
max_requests_jitter = 128
accesslog = None  # our own JSON request log line replaces it (it holds no survey tokens)
errorlog = "-"


def child_exit(server, worker):
    """Drop a dead worker's live gauges in prometheus-client's multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
