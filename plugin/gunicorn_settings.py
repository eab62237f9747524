"""The settings of the shipped gunicorn configuration (plugin/gunicorn_conf.py), from the app's own settings.

Every value comes from the app's own settings (``[web]`` and ``app.trusted_proxies`` in plugin/config.py), so
app.toml and AFTERCARE_WEB__* change them and a wrong one stops gunicorn naming the setting.
https://docs.gunicorn.org/en/stable/settings.html
"""

from __future__ import annotations

import os
from typing import Any

from plugin.config import Config, ConfigError

# Shopify drops a webhook delivery that has no answer within 5 s and retries it later.
# https://shopify.dev/docs/apps/build/webhooks/troubleshooting-webhooks
SHOPIFY_WEBHOOK_LIMIT_SECONDS = 5


def cores() -> int:
    """Return the cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def settings(config: Config, core_count: int | None = None) -> dict[str, Any]:
    """Return gunicorn's settings for ``config`` on a machine of ``core_count`` cores."""
    n = core_count or cores()
    timeout = config.get("web.timeout_seconds")
    keepalive = config.get("web.keepalive_seconds")
    for name, value in (("web.timeout_seconds", timeout), ("web.keepalive_seconds", keepalive)):
        if not 0 < value < SHOPIFY_WEBHOOK_LIMIT_SECONDS:
            raise ConfigError(f"setting '{name}' must be between 1 and {SHOPIFY_WEBHOOK_LIMIT_SECONDS - 1} "
                             f"(below Shopify's {SHOPIFY_WEBHOOK_LIMIT_SECONDS} s webhook limit), got {value}")
    hops = config.get("app.trusted_proxies")
    return {
        "bind": config.get("web.bind"),
        # gunicorn's rule of thumb for workers; threads so a worker waiting on the database still answers.
        "workers": config.get("web.workers") or 2 * n + 1,
        "threads": config.get("web.threads") or 2 * n,
        "worker_class": "gthread",
        "timeout": timeout,
        "graceful_timeout": timeout,
        "keepalive": keepalive,
        # The app's ProxyFix (app.trusted_proxies) reads X-Forwarded-*; gunicorn passes them on only from the
        # proxies themselves, and from nobody when the app trusts none (gunicorn's default trusts 127.0.0.1).
        "forwarded_allow_ips": ",".join(config.get("web.proxy_addresses")) if hops else "",
        # Our log records already redact tokens (plugin.logs); gunicorn's access log goes through them too.
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": config.get("app.log_level").lower(),
    }
