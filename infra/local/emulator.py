"""keyplan's local AWS emulator: moto's WSGI app behind one lock, plus API Gateway's GetUsage.

API Gateway meters the calls each key makes; nothing calls a stage here, so the emulator takes
those counts from its callers instead: `POST /_keyplan/usage` with a JSON body
{"usagePlanId", "keyId", "date": "YYYY-MM-DD", "calls"} adds calls to a key's day, and GetUsage
answers from them (tests, and the console's usage chart on the local stack).

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

import copy
import datetime

import moto.apigateway.models as apigateway_models
import moto.apigateway.urls as apigateway_urls
import moto.dynamodb.models as dynamodb_models
from moto.apigateway.exceptions import NotFoundException
from moto.apigateway.responses import APIGatewayResponse
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
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
        if environ.get("PATH_INFO") == METER_PATH:
            with self._lock:
                return meter_calls(environ, start_response)
        if environ.get("HTTP_X_AMZ_TARGET") in UNSERIALIZED_TARGETS:
            return self._run(environ, start_response)
        with self._lock:
            return self._run(environ, start_response)

    def _run(self, environ, start_response):
        result = self._app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


# An SQS long poll waits inside moto for up to WaitTimeSeconds; holding the lock meanwhile would
# stall every other request behind it. It writes nothing a conditional write depends on.
UNSERIALIZED_TARGETS = {"AmazonSQS.ReceiveMessage"}


class _CopyExceptTables:
    """Stands in for the `copy` module inside moto's DynamoDB backend during a transaction."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def snapshot_only_touched_items():
    """Makes TransactWriteItems cost what the transaction touches, not what the table holds.

    moto 5.2.5 deep-copies every table a transaction names, once per item, to roll back a cancelled
    transaction; past a few thousand items each transaction takes tens of milliseconds and a bulk
    import slows to a crawl. Here the transaction snapshots just the items it names and, if it is
    cancelled, puts those back. Correct because requests are serialized (SerializedApp), so
    nothing else writes while a transaction runs; checked by test/integration/local/emulator.test.ts.

    moto writes each item of a transaction as it goes, its stream record included, and checks the
    next item's condition only then. A cancelled transaction must leave no record in the table's
    stream (DynamoDB streams only what committed): the records it added are dropped again too, or
    the lifecycle events' publisher would publish the events of a change that never happened.
    """
    original = dynamodb_models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        touched = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op["Item"] if op_type == "Put" else op["Key"]
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            before = table.get_item(hash_value, range_value)
            touched.append((table, hash_value, range_value, copy.deepcopy(before)))
        streams = {id(t): (t.stream_shard, len(t.stream_shard.items)) for t, *_ in touched if t.stream_shard is not None}
        real_copy = dynamodb_models.copy
        dynamodb_models.copy = _CopyExceptTables
        try:
            return original(self, transact_items)
        except Exception:
            # moto "restored" each table to itself; put the touched items back as they were.
            for table, hash_value, range_value, before in reversed(touched):
                if before is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = before
                else:
                    table.items[hash_value] = before
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            dynamodb_models.copy = real_copy

    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items


METER_PATH = "/_keyplan/usage"
# usage plan id -> key id -> day (YYYY-MM-DD) -> calls, as the meter was told them.
METERED_CALLS = {}


def meter_calls(environ, start_response):
    """`POST /_keyplan/usage`: adds a key's calls on a day to what GetUsage reports."""
    try:
        if environ.get("REQUEST_METHOD") != "POST":
            raise ValueError("POST a JSON body")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        plan, key, day, calls = body["usagePlanId"], body["keyId"], body["date"], int(body["calls"])
        datetime.date.fromisoformat(day)
        if calls < 0:
            raise ValueError("calls must not be negative")
    except (KeyError, TypeError, ValueError) as error:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [f"usagePlanId, keyId, date (YYYY-MM-DD) and calls are required: {error}".encode()]
    days = METERED_CALLS.setdefault(plan, {}).setdefault(key, {})
    days[day] = days.get(day, 0) + calls
    start_response("204 No Content", [])
    return [b""]


def usage_items(plan, start_date, end_date, key_id=None):
    """GetUsage's `items` (`values` on the wire): per key with calls, one [used, remaining] pair per day of the range.

    remaining is the plan's quota less what the key used in the quota period so far (counted from
    the range's start for a week or month period: the meter knows no earlier calls); without a
    quota, 0.
    """
    quota = getattr(plan, "quota", None) or {}
    limit, period = quota.get("limit"), quota.get("period")
    start, end = datetime.date.fromisoformat(start_date), datetime.date.fromisoformat(end_date)
    items = {}
    for key, days in METERED_CALLS.get(plan.id, {}).items():
        if key_id is not None and key != key_id:
            continue
        pairs, used_in_period, day = [], 0, start
        while day <= end:
            used = days.get(day.isoformat(), 0)
            if period == "DAY" or (period == "WEEK" and day.weekday() == 0) or (period == "MONTH" and day.day == 1):
                used_in_period = 0
            used_in_period += used
            pairs.append([used, max(limit - used_in_period, 0) if limit is not None else 0])
            day += datetime.timedelta(days=1)
        if any(used for used, _ in pairs):
            items[key] = pairs
    return items


def serve_get_usage():
    """Adds API Gateway's GetUsage (`GET /usageplans/{usagePlanId}/usage`), which moto 5.2.5 lacks.

    Without it the SDK gets moto's HTML 404 page and `GET /customers/{id}/usage` could only answer
    501 locally. moto counts no usage: the answer is AWS's shape over what the meter was told
    (`items` leaves out keys without calls, as AWS does). An unknown plan is AWS's
    NotFoundException, as moto's other usage plan routes answer it.
    """

    def get_usage(self):
        usage_plan_id = self.path.split("/")[2]
        plan = self.backend.get_usage_plan(usage_plan_id)
        start_date = self.querystring.get("startDate", [None])[0]
        end_date = self.querystring.get("endDate", [None])[0]
        key_id = self.querystring.get("keyId", [None])[0]
        return json.dumps(
            {
                "usagePlanId": usage_plan_id,
                "startDate": start_date,
                "endDate": end_date,
                # The wire name of the SDK's `items`.
                "values": usage_items(plan, start_date, end_date, key_id) if start_date and end_date else {},
            }
        )

    # moto names the method after the operation its service model matches (GetUsage -> get_usage);
    # the route must be registered before the first API Gateway request builds moto's URL map.
    APIGatewayResponse.get_usage = get_usage
    apigateway_urls.url_paths["{0}/usageplans/(?P<usage_plan_id>[^/]+)/usage$"] = APIGatewayResponse.dispatch


def refuse_removing_a_key_not_in_the_plan():
    """DeleteUsagePlanKey of a key the plan does not hold: AWS's NotFoundException, not a 500.

    moto 5.2.5 pops the key from the plan's dict and lets the KeyError become an HTML 500, which
    the SDK retries and then reports as a server error. API Gateway answers 404 NotFoundException
    ("Invalid Usage Plan Key identifier specified"), which keyplan's idempotent removal takes as
    success (the key is not in the plan: done).
    """
    original = apigateway_models.APIGatewayBackend.delete_usage_plan_key

    class UsagePlanKeyNotFound(NotFoundException):
        code = 404

        def __init__(self):
            super().__init__("Invalid Usage Plan Key identifier specified")

    def delete_usage_plan_key(self, usage_plan_id, key_id):
        if key_id not in self.usage_plan_keys.get(usage_plan_id, {}):
            raise UsagePlanKeyNotFound()
        return original(self, usage_plan_id, key_id)

    apigateway_models.APIGatewayBackend.delete_usage_plan_key = delete_usage_plan_key


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    port = int(args[0]) if args else 0
    # Werkzeug logs every request; nobody reads those lines and an unread pipe would block us.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    snapshot_only_touched_items()
    serve_get_usage()
    refuse_removing_a_key_not_in_the_plan()
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
