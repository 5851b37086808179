"""keyplan's local AWS emulator: moto's WSGI app behind one lock.

Usage: python emulator.py [PORT] [--watch-stdin]

PORT 0 (the default) picks a free port. Once listening, prints one line, {"port": N}, to stdout.
--watch-stdin exits when stdin reaches EOF, so the emulator dies with the process that started it
even when that process is killed without a chance to clean up.
"""

import json
import logging
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

HOST = "127.0.0.1"


class SerializedApp:
    """Runs one request at a time.

    moto serves each request in its own thread but does not make a conditional write atomic
    (check and write can interleave with another request), while DynamoDB does. keyplan's claims
    and leases depend on that atomicity, so requests are serialized. The response body is read
    inside the lock too: a WSGI app may do its work lazily while the body is iterated.
    """

    def __init__(self, app):
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            result = self._app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    port = int(args[0]) if args else 0
    # Werkzeug logs every request; nobody reads those lines and an unread pipe would block us.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    # A port in use makes werkzeug print "Port N is in use by another program" and exit 1.
    server = make_server(HOST, port, app, threaded=True)

    def stop(_signum=None, _frame=None):
        # shutdown() waits for serve_forever() to return, so it must not run on the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if "--watch-stdin" in argv:
        threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()

    print(json.dumps({"port": server.server_port}), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
