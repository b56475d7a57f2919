# The WSGI script of the Apache + mod_wsgi stack (WSGIScriptAliasMatch in
# conf.d/app.conf). mod_wsgi loads a script by file path, not a callable by
# name, so this file hands over the callable the other servers import too
# (WSGI_APP, module:name, filled in when the folder is rendered); the app
# itself comes from the virtualenv (python-home). Keeping the script here, next
# to the config, means no path into the virtualenv or the source tree is
# written down anywhere.
# https://modwsgi.readthedocs.io/en/master/configuration-directives/WSGIScriptAliasMatch.html
import importlib

_module, _, _name = "{{ WSGI_APP }}".partition(":")
_app = getattr(importlib.import_module(_module), _name or "application")


def application(environ, start_response):
    # conf.d/app.conf maps every URL to this file as a whole, so mod_wsgi
    # hands the path over as SCRIPT_NAME: give it back as PATH_INFO, exactly
    # as `WSGIScriptAlias /` would (the app is mounted at /).
    environ["PATH_INFO"] = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    environ["SCRIPT_NAME"] = ""
    return _app(environ, start_response)
