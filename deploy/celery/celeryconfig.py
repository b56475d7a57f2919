"""Celery: the job workers' settings (Celery 5.7, kombu 5.7, Valkey 8.1).

    celery --app app.worker worker     # the worker image's command; app/worker.py loads this file

The knobs come from the environment through wsgistack.settings, as in
deploy/gunicorn/gunicorn.conf.py, so the app that submits the jobs and the
workers that run them read the same Valkey address, password and limits.
Outside this project, replace ``settings.X`` below with your values. The app's
own Celery client (submitting, reading results) is configured in app/jobs.py.

Every setting here differs from Celery's default or is stated because the
guarantee rests on it. The guarantee (docs/jobs.md): a submitted job runs to its
end at least once, through a lost worker process, a lost worker and a Valkey
restart; a job may run twice, and its record says so; jobs are idempotent (the
same answer twice), so that is harmless.

The ladder, from JOB_TIME_LIMIT (wsgistack/settings.py), as the web's from
REQUEST_TIMEOUT:
    soft time limit         JOB_TIME_LIMIT               the job is stopped, failed
  < hard time limit         JOB_TIME_LIMIT + 5           its process is killed, failed
  < visibility timeout      hard limit + 10              a lost worker's job runs again elsewhere
and a stop: running jobs get JOB_STOP_TIMEOUT to finish, then go back to the
queue; the stop grace period (compose, Swarm, Kubernetes) is JOB_STOP_TIMEOUT + 10.

https://docs.celeryq.dev/en/stable/userguide/configuration.html
"""

from app.tasks import QUEUE
from wsgistack.settings import Settings

settings = Settings.from_env()
if not settings.VALKEY_ADDRESS:
    raise SystemExit("celeryconfig: VALKEY_ADDRESS is not set: the workers need Valkey")

# ---------------------------------------------------------------------------
# Valkey: the broker (the queue) and the result store, one server, database 0
# ---------------------------------------------------------------------------

# redis://USER:PASSWORD@HOST:PORT/0 from VALKEY_ADDRESS, VALKEY_USER and
# VALKEY_PASSWORD: kombu's Redis transport speaks Valkey's protocol. default:
# amqp://guest@localhost//
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-url
broker_url = settings.VALKEY_URL

# results (a job's value or its error) in the same Valkey, where the app reads
# them. default: none (results are not kept)
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#result-backend
result_backend = settings.VALKEY_URL

# a worker that starts before Valkey, or loses it, keeps trying forever, rather
# than exiting (and being restarted in a loop). defaults: retry on startup
# follows broker_connection_retry (True), 100 retries
broker_connection_retry_on_startup = True
broker_connection_max_retries = None

# kombu's Redis transport. https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.redis.html
broker_transport_options = {
    # Valkey has no acknowledgements: kombu keeps a delivered job in its
    # `unacked` hash until the worker acknowledges it (after the job, see
    # task_acks_late), and hands it to a worker again once it has been
    # unacknowledged this long. Above the hard time limit, so that no job that
    # may still be running is handed to a second worker; the margin covers a
    # job's wait for a free process and clock skew between workers.
    # default: 3600 s
    "visibility_timeout": settings.JOB_VISIBILITY_TIMEOUT,
    # how often each worker looks for jobs past their visibility timeout (a
    # worker killed with its jobs): every 5 s, each look one ZRANGEBYSCORE
    # under a lock. defaults: every 10 s, but only every 10th look scans, so
    # a lost job waited up to 100 s beyond its visibility timeout
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    # the lock that look takes expires after this if its holder dies holding
    # it (the lost worker may be the one that held it). default: 300 s
    "unacked_mutex_expire": 30,
    # a Valkey that vanishes without closing its connections (a node lost, a
    # failover) is noticed: connect and command timeouts, TCP keepalive, and a
    # PING of idle connections every 25 s. defaults: no timeouts, no keepalive
    "socket_connect_timeout": 5,
    "socket_timeout": 30,
    "socket_keepalive": True,
    "health_check_interval": 25,
}

# the same bounds on the result store's connections. defaults: 120 s socket
# timeout, none to connect, no keepalive
redis_socket_timeout = 30
redis_socket_connect_timeout = 5
redis_socket_keepalive = True

# storing a result retries while Valkey is away (a restart), for about two
# minutes, instead of failing the job that produced it. defaults: no retry
# (with it: forever, 10 ms to 10 s apart)
result_backend_always_retry = True
result_backend_max_retries = 20
result_backend_base_sleep_between_retries_ms = 200
result_backend_max_sleep_between_retries_ms = 10000

# a finished job's result (and the app's record of it, app/tasks.py) is kept
# this long, then Valkey deletes it: memory does not grow with every job ever
# run. default: 1 day
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#result-expires
result_expires = settings.JOB_RESULT_EXPIRES

# JSON only: a message or result never runs code when decoded (pickle would).
# defaults: json for tasks and results, but accept_content json only since 4.0
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

# the queue the app submits to (app/tasks.py). default: "celery"
task_default_queue = QUEUE

# ---------------------------------------------------------------------------
# Nothing lost: late acknowledgement, requeue on a lost process
# ---------------------------------------------------------------------------

# a job is acknowledged after it ran, not when it was received: a worker that
# dies mid-job leaves it unacknowledged, and it runs again (on its visibility
# timeout, or at once, below). default: False (acknowledged on receipt: a
# job whose worker died is lost)
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
task_acks_late = True

# a job whose process died under it (killed by the OOM killer, a crash, a
# signal) goes back to the queue at once, rather than being failed. default:
# False. https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-reject-on-worker-lost
task_reject_on_worker_lost = True

# a job that failed (raised, or ran past its time limits) is acknowledged as
# failed, not requeued: it would fail the same way again. defaults: True (both)
task_acks_on_failure = True
task_acks_on_timeout = True

# a job delivered again (its first worker lost after it stored its result but
# before it acknowledged) whose result says SUCCESS is not run again: the
# second run is skipped, and the record's completions stay 1. default: False
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-deduplicate-successful-tasks
worker_deduplicate_successful_tasks = True

# jobs keep running while Valkey is away (a restart): their results are stored
# and acknowledged once it is back, instead of the jobs being killed and run
# again. default: False (Celery 6 plans True)
worker_cancel_long_running_tasks_on_connection_loss = False

# ---------------------------------------------------------------------------
# The time limits: the ladder (top of this file)
# ---------------------------------------------------------------------------

# the soft limit raises SoftTimeLimitExceeded inside the job: it stops and is
# failed with that reason. It interrupts Python code only; a job stuck in C
# code (a huge multiplication, a C extension) runs on until the hard limit
# kills its process, frees the slot and fails the job. Once a job's value is
# computed, the soft limit no longer stops it: its stores (Valkey away) wait
# up to the hard limit (SoftLimitAfterTheWork in app/tasks.py). defaults: none
# https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits
task_soft_time_limit = settings.JOB_TIME_LIMIT
task_time_limit = settings.JOB_HARD_TIME_LIMIT

# ---------------------------------------------------------------------------
# The workers
# ---------------------------------------------------------------------------

# processes, not threads: the jobs are CPU-bound Python, and the GIL lets one
# process run one at a time. default: prefork
worker_pool = "prefork"

# JOB_WORKERS processes; empty: the CPUs this container may use (its cgroup
# quota: wsgistack/cpus.py), as the web servers' WSGI_PROCESSES. default:
# os.cpu_count(), the host's cores whatever the quota
worker_concurrency = settings.JOB_WORKERS

# each process takes one job at a time, and the worker holds no more jobs than
# it has processes: a job never waits behind another one in a busy worker
# while an idle worker could run it, and a lost worker holds only the jobs it
# was running. default: 4 per process
# https://docs.celeryq.dev/en/stable/userguide/optimizing.html#prefetch-limits
worker_prefetch_multiplier = 1

# a job process is replaced after 1000 jobs, or after a job that left it above
# 256 MB resident, as uWSGI recycles its workers (MAX_REQUESTS,
# RELOAD_ON_RSS_MB): memory a job leaks or fragments goes with it. defaults: never
worker_max_tasks_per_child = 1000
worker_max_memory_per_child = 256 * 1024  # KiB

# a stop (SIGTERM, mapped to Celery's cold shutdown by REMAP_SIGTERM=SIGQUIT in
# the image) gives running jobs JOB_STOP_TIMEOUT seconds to finish; those still
# running then are stopped and handed back to the queue for another worker, at
# once. The stop grace period (compose, Swarm, Kubernetes) is this + 10 s.
# default: 0 (a cold stop cuts jobs at once; Celery's warm stop, SIGTERM
# without the remap, would wait for every job however long)
# https://docs.celeryq.dev/en/stable/userguide/workers.html#soft-shutdown
worker_soft_shutdown_timeout = settings.JOB_STOP_TIMEOUT

# no task events (monitoring traffic through Valkey for every job) unless a
# monitor asks (`celery control enable_events`). default: False
worker_send_task_events = False

# the workers answer `celery inspect` and `celery control` (the queue's
# operators use them: docs/jobs.md). default: True
worker_enable_remote_control = True

# log lines as the app's: time, level, process, message on one line. default:
# "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
worker_log_format = "%(asctime)s %(levelname)s [%(processName)s] celery: %(message)s"
worker_task_log_format = (
    "%(asctime)s %(levelname)s [%(processName)s] [%(task_id)s] %(task_name)s: %(message)s"
)
