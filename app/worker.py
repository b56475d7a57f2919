"""The job workers' entry point (docs/jobs.md)::

    celery --app app.worker worker

runs Celery's prefork worker with the task of app/tasks.py and the settings of
``CELERY_CONFIG``, a Python file (default: deploy/celery/celeryconfig.py
beside this package, as the worker image lays it out). Options on the command
line override the file.

The worker also keeps a heartbeat file, ``$RUN_DIR/worker-heartbeat``, for its
healthchecks (docker/healthcheck.py ``fresh:``): its event loop rewrites it
every HEARTBEAT_INTERVAL seconds while the worker is connected to Valkey and
consuming. The file goes stale when the loop is stuck, and is removed while
the worker is not consuming (Valkey lost, reconnecting; stopping), so a fresh
file means "this worker takes jobs now". Its jobs run in child processes, so a
long job does not stop the beat.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

from celery import bootsteps

from app.tasks import celery

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path(os.environ.get("CELERY_CONFIG", ROOT / "deploy" / "celery" / "celeryconfig.py"))
# seconds between beats; the healthchecks allow three missed ones
HEARTBEAT_INTERVAL = 5


def load_config(path: Path):
    """The settings file as a module, as Celery's config_from_object takes one."""
    spec = importlib.util.spec_from_file_location("celeryconfig", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"app.worker: no Celery settings at {path} (CELERY_CONFIG)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Heartbeat(bootsteps.StartStopStep):
    """The heartbeat file (the module docstring): a step of the consumer, started
    once it consumes from Valkey and stopped whenever it stops (a lost
    connection restarts the consumer's steps, so the file is gone meanwhile)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        run_dir = Path(os.environ.get("RUN_DIR", "/tmp/wsgistack"))
        self.path = run_dir / "worker-heartbeat"
        self.timer = None

    def start(self, consumer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.beat()
        self.timer = consumer.timer.call_repeatedly(HEARTBEAT_INTERVAL, self.beat)

    def beat(self) -> None:
        self.path.write_text(f"{time.time():.3f}\n")

    def stop(self, consumer) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.path.unlink(missing_ok=True)

    shutdown = stop


celery.config_from_object(load_config(CONFIG))
celery.steps["consumer"].add(Heartbeat)
app = celery
