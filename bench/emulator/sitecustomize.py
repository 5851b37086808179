"""The bench's changes to the emulator: a DynamoDB Query on a table's partition key reads that
partition, not the whole table; and moto finds a request's service without listing its own
package directory every time (at the end).

moto 5.2.5 answers every Query on a table (not an index) by listing and sorting all of the table's
items, then keeping the partition asked for: at 20,000 items one `Query pk = :pk` takes about
260 ms, where DynamoDB reads one partition. keyplan's rotation reads the customer's partition once
per key, so over 10,000 keys the emulator, not keyplan, would set the wall time (about 45 minutes).

Python imports `sitecustomize` from PYTHONPATH at startup; bench/run.ts puts this directory there
for the emulators it starts (infra/local/emulator.ts passes its environment on), so the project's
own launcher, infra/local/emulator.py, runs unchanged. Semantics are unchanged too: the partition
holds exactly the items the original filter keeps, and the original code still sorts, pages,
filters and projects them.
"""

import moto.dynamodb.models.table as dynamodb_table

_original_query = dynamodb_table.Table.query


def _query_one_partition(self, hash_key, *args, **kwargs):
    index_name = kwargs.get("index_name") if len(args) < 7 else args[6]
    if index_name or hash_key is None or not self.range_key_attr:
        return _original_query(self, hash_key, *args, **kwargs)
    partition = list(self.items.get(hash_key, {}).values())
    everything = self.all_items
    # The original reads self.all_items() once, then keeps the items of `hash_key`; requests are
    # serialized by the launcher, so nothing else sees the stand-in.
    self.all_items = lambda: partition
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        self.all_items = everything


dynamodb_table.Table.query = _query_one_partition


# Every request moto serves asks which of its service packages the Host names, and moto answers by
# listing its own package directory (about 150 `isdir` calls) each time: a fifth of the emulator's
# CPU when figure 7's three shards keep it busy, so the one emulator process, not keyplan's
# budgets, set the 3-shard pace. The directory does not change while the emulator runs.
import moto.backends as moto_backends

_moto_modules = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: iter(_moto_modules)
