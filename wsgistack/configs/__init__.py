"""What the config folders of ``deploy/`` fill in beyond the knobs: one module per folder.

Any template may name any knob (``{{ REQUEST_TIMEOUT }}``, ``wsgistack.settings``).
A value a server's config derives from the knobs, in that server's syntax,
comes from the module of its folder (``nginx``, ``apache_mod_wsgi``, ``uwsgi``); a value
both proxies render alike from ``proxy``. ``wsgistack.render.FOLDERS`` says
which folder takes which, so every ``{{ NAME }}`` has exactly one source
(tests/wsgistack/test_settings.py checks each placeholder of deploy/).

Standard library only, as ``wsgistack.settings``: the nginx image renders with
Debian's python3, without the app's virtualenv.
"""
