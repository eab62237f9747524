"""The shipped gunicorn configuration: ``gunicorn -c python:plugin.gunicorn_conf 'plugin:create_app()'``.

Its values come from [web] and app.trusted_proxies (plugin/gunicorn_settings.py, README "Production").
"""

from plugin.config import load_config
from plugin.gunicorn_settings import settings

# gunicorn reads module-level names; a configuration error ends the start here, naming the setting.
globals().update(settings(load_config()))
