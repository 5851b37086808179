"""Replays captured DynamoDB requests through the emulator, with or without the bench's patches.

The check behind sitecustomize.py's expression patches: the same requests, in the same order,
through infra/local/emulator.py's app (its lock and transaction snapshots included), in this
process; prints the time per operation and writes every answer, and each table's items and
stream records at the end, for `--compare`.

    # capture a run's DynamoDB requests (JSON lines), e.g. figure 7:
    KEYPLAN_EMULATOR_CAPTURE=/tmp/so.jsonl npm run bench -- scale-out --scale-out-registrations=300
    .keyplan/venv/bin/python bench/emulator/replay.py /tmp/so.jsonl /tmp/plain.json
    .keyplan/venv/bin/python bench/emulator/replay.py /tmp/so.jsonl /tmp/patched.json --patched
    .keyplan/venv/bin/python bench/emulator/replay.py --compare /tmp/plain.json /tmp/patched.json

Run it without PYTHONPATH naming this directory: `--patched` loads sitecustomize.py itself.
What differs between two runs of moto whatever the patches (table creation times, stream labels,
a stream record's event id, sequence number and time, and so its SizeBytes) is left out.
"""

import collections
import importlib.util
import io
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay(capture, out, patched):
    if any(getattr(m, "__file__", None) == os.path.join(HERE, "sitecustomize.py") for m in list(sys.modules.values())):
        sys.exit("the bench's sitecustomize is already loaded: run without PYTHONPATH naming bench/emulator")
    if patched:
        load("keyplan_bench_sitecustomize", os.path.join(HERE, "sitecustomize.py"))
    emulator = load("keyplan_emulator", os.path.join(ROOT, "infra", "local", "emulator.py"))
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    emulator.snapshot_only_touched_items()
    emulator.serve_get_usage()
    emulator.refuse_removing_a_key_not_in_the_plan()
    app = emulator.SerializedApp(DomainDispatcherApplication(create_backend_app))
    spent = collections.defaultdict(lambda: [0, 0.0])
    answers = []
    with open(capture) as lines:
        for line in lines:
            request = json.loads(line)
            body = request["body"].encode()
            environ = {
                "REQUEST_METHOD": "POST", "PATH_INFO": request["path"], "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "4566", "SERVER_PROTOCOL": "HTTP/1.1",
                "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
                "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": request["headers"].get("HTTP_CONTENT_TYPE", "application/x-amz-json-1.0"),
                **request["headers"],
            }
            status = []
            started = time.perf_counter()
            answer = b"".join(app(environ, lambda s, h, e=None: status.append(s))).decode()
            target = request["headers"].get("HTTP_X_AMZ_TARGET", "?")
            spent[target][0] += 1
            spent[target][1] += time.perf_counter() - started
            answers.append([target, status[0], answer])
    for target, (count, seconds) in sorted(spent.items(), key=lambda kv: -kv[1][1]):
        print(f"{count:6d} {seconds:8.3f} s {1000 * seconds / count:7.2f} ms  {target}")
    from moto.dynamodb.models import dynamodb_backends

    tables = {}
    for account, regions in dynamodb_backends.items():
        for region, backend in regions.items():
            for name, table in backend.tables.items():
                records = []
                for record in table.stream_shard.items if table.stream_shard is not None else []:
                    shown = record.to_json()
                    shown.pop("eventID", None)
                    for varying in ("ApproximateCreationDateTime", "SequenceNumber", "SizeBytes"):
                        shown.get("dynamodb", {}).pop(varying, None)
                    records.append(json.dumps(shown, sort_keys=True))
                items = sorted(json.dumps(item.to_json(), sort_keys=True) for item in table.all_items())
                tables[f"{account}/{region}/{name}"] = {"items": items, "stream": records}
    with open(out, "w") as file:
        json.dump({"answers": answers, "tables": tables}, file)


VARYING = re.compile(r'"(CreationDateTime|LatestStreamLabel|LatestStreamArn|TableArn|TableId)": *("[^"]*"|[0-9.]+)')


def compare(a_path, b_path):
    a, b = (json.load(open(path)) for path in (a_path, b_path))
    shown = lambda answer: (answer[0], answer[1], VARYING.sub("", answer[2]))
    differing = [i for i, (x, y) in enumerate(zip(a["answers"], b["answers"])) if shown(x) != shown(y)]
    same = len(a["answers"]) == len(b["answers"]) and not differing and a["tables"] == b["tables"]
    print(f"answers: {len(a['answers'])} and {len(b['answers'])}, {len(differing)} differ (first: {differing[:5]})")
    for name in sorted(set(a["tables"]) | set(b["tables"])):
        x, y = a["tables"].get(name, {}), b["tables"].get(name, {})
        print(f"{name}: items {'same' if x.get('items') == y.get('items') else 'DIFFER'} ({len(y.get('items', []))}), "
              f"stream records {'same' if x.get('stream') == y.get('stream') else 'DIFFER'} ({len(y.get('stream', []))})")
    return 0 if same else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--compare"]:
        sys.exit(compare(args[1], args[2]))
    replay(args[0], args[1], "--patched" in args)
