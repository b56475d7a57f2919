"""What deploy/prometheus's templates fill in beyond the knobs, in Prometheus' syntax."""

from __future__ import annotations

from wsgistack.settings import Settings

# seconds: Prometheus' default scrape timeout, kept when the interval allows
SCRAPE_TIMEOUT = 10


def values(s: Settings) -> dict[str, str]:
    return {
        "PROMETHEUS_SCRAPE_INTERVAL": f"{s.SCRAPE_INTERVAL}s",
        # a timeout longer than the interval is refused
        "PROMETHEUS_SCRAPE_TIMEOUT": f"{min(SCRAPE_TIMEOUT, s.SCRAPE_INTERVAL)}s",
        "PROMETHEUS_ALERT_FOR": f"{s.ALERT_FOR}s",
    }
