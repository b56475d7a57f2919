"""sqlite-web (https://github.com/coleifer/sqlite-web, MIT), a Flask app no
one here wrote, as a WSGI callable: what its own command line does before it
serves (sqlite_web.sqlite_web.main), from the environment instead of
arguments. The file a user of this project writes for such an app: WSGI_APP
is ``sqlite_web_app:application``.
"""

import os

from sqlite_web.sqlite_web import app, initialize_app

# the database, the password its login page asks for, mounted under /db
initialize_app(
    [os.environ["SQLITE_WEB_DATABASE"]],
    password=os.environ["SQLITE_WEB_PASSWORD"],
    url_prefix="/db",
)
# one key for every process: a session made by one worker is read by the others
app.secret_key = os.environ["SQLITE_WEB_SECRET_KEY"]
application = app
