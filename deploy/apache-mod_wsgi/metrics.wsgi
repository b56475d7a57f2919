# The app's metrics in the Apache + mod_wsgi stack (status.d/metrics.conf):
# the files every mod_wsgi daemon process writes (prometheus_client's
# multiprocess mode, PROMETHEUS_MULTIPROC_DIR set by app.wsgi), added up,
# those of recycled or killed daemons included, and the daemons' listen
# queue, from the kernel. wsgistack/exporter.py does the work, with the
# values this folder was rendered with. docs/metrics.md
from prometheus_client import make_wsgi_app

from wsgistack.exporter import registry_for
from wsgistack.settings import Settings

_settings = Settings.from_env(
    {},
    RUN_DIR="{{ RUN_DIR }}",
    WSGI_PROCESSES="{{ WSGI_PROCESSES }}",
    WSGI_THREADS="{{ WSGI_THREADS }}",
    REQUEST_TIMEOUT="{{ REQUEST_TIMEOUT }}",
)
application = make_wsgi_app(registry_for("apache", _settings, "{{ METRICS_DIR }}"))
