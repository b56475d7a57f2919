"""sqlite-web (https://github.com/coleifer/sqlite-web, MIT), a Flask app no
one here wrote, as a WSGI callable: what its own command line does before it
serves (sqlite_web.sqlite_web.main), from the environment instead of
arguments. The file a user of this project writes for such an app: WSGI_APP
is ``sqlite_web_app:application``.
"""

import os
import sqlite3

from sqlite_web.sqlite_web import app, initialize_app

DATABASE = os.environ["SQLITE_WEB_DATABASE"]
# the table the tests write to, there before sqlite-web reads the tables (it
# reads them once per process, at start)
with sqlite3.connect(DATABASE) as db:
    db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")

# the database, the password its login page asks for, mounted under /db
initialize_app(
    [DATABASE],
    password=os.environ["SQLITE_WEB_PASSWORD"],
    url_prefix="/db",
)
# one key for every process: a session made by one worker is read by the others
app.secret_key = os.environ["SQLITE_WEB_SECRET_KEY"]
application = app
