"""The bench's changes to the emulator: a DynamoDB Query on a table's partition key reads that
partition, not the whole table; moto finds a request's service without listing its own package
directory every time; and DynamoDB expressions are parsed once, not three times a request (below).

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


# DynamoDB expressions (figure 7, issue 15). At figure 7's three shards TransactWriteItems was about
# 75% of the one emulator process's serialized time (4 a registration, 3 of them while the worker
# drains: 11 ms each under load), and the emulator, not the shards' budgets, set the pace: requests
# queued behind it for 0.18 s on average. Within a transaction moto 5.2.5 lexes and parses each
# item's condition about three times (request validation, the transaction's check, update_item's
# own), parses each UpdateExpression twice, deep-copies the tree with copy.deepcopy before
# validating it, and validates it in ten walks of the tree, three of which look at nothing but
# the expression. Patches 1-5 below keep what depends only on the expression (and, for a parsed
# condition, its names and values; for the three checks, the names and the table's keys): every
# condition is still evaluated against the item as it is at that point, every validation that reads
# the item or the values still runs, in moto's order, with moto's errors; atomicity is the
# launcher's (SerializedApp, snapshot_only_touched_items), untouched. Cost: one replayed 3-shard
# run (300 registrations, 1,200 transactions, in one process without HTTP) took 6.4-6.7 ms a
# transaction without them and 2.9-3.0 ms with them, with the same 1,511 answers, the same items and
# the same 3,003 stream records (bench/emulator/replay.py). Each cache is cleared past 512 entries.
import collections as _collections
import json as _json
import pickle as _pickle

import moto.dynamodb.comparisons as _comparisons
import moto.dynamodb.parsing.expressions as _expressions
import moto.dynamodb.parsing.validators as _validators

_CACHE_LIMIT = 512


def _bounded(cache):
    if len(cache) > _CACHE_LIMIT:
        cache.clear()
    return cache


# 1. A condition's tokens depend on its text alone (the lexer makes immutable tuples with empty
#    child lists, which nothing mutates: later steps build new nodes).
_lexed = {}
_original_lex = _comparisons.ConditionExpressionParser._lex_condition_expression


def _lex_once(self):
    text = self.condition_expression
    tokens = _lexed.get(text)
    if tokens is None:
        tokens = tuple(_original_lex(self))
        _bounded(_lexed)[text] = tokens
    return _collections.deque(tokens)


_comparisons.ConditionExpressionParser._lex_condition_expression = _lex_once

# 2. A parsed condition (its Op tree: evaluated by .expr(item), which reads the item and returns new
#    values) depends on its text, names and values; one request parses the same triple up to three
#    times. The parser's record of the names and values it found is restored with it.
_parsed = {}
_original_parse = _comparisons.ConditionExpressionParser.parse


def _parse_once(self):
    if not self.condition_expression:
        return _original_parse(self)
    try:
        key = (
            self.condition_expression,
            _json.dumps(self.expression_attribute_names, sort_keys=True),
            _json.dumps(self.expression_attribute_values, sort_keys=True),
        )
    except (TypeError, ValueError):
        return _original_parse(self)
    hit = _parsed.get(key)
    if hit is None:
        op = _original_parse(self)
        hit = (op, tuple(self.expr_attr_names_found), tuple(self.expr_attr_values_found))
        _bounded(_parsed)[key] = hit
        return op
    op, names_found, values_found = hit
    self.expr_attr_names_found.extend(names_found)
    self.expr_attr_values_found.extend(values_found)
    return op


_comparisons.ConditionExpressionParser.parse = _parse_once

# 3. An UpdateExpression's tree depends on its text alone. moto only reads the tree it parsed
#    (find_clauses) or hands it to a validator, which works on its own deep copy; that copy is made
#    here by unpickling a pickle of the tree taken once (the same object graph, parents included,
#    as copy.deepcopy builds, about ten times faster).
_update_trees = {}
_tree_pickles = {}
_original_make = _expressions.UpdateExpressionParser.make.__func__


def _make_once(cls, expression_str):
    tree = _update_trees.get(expression_str)
    if tree is None:
        tree = _original_make(cls, expression_str)
        if len(_update_trees) > _CACHE_LIMIT:
            _update_trees.clear()
            _tree_pickles.clear()
        _update_trees[expression_str] = tree
        _tree_pickles[id(tree)] = (tree, _pickle.dumps(tree, protocol=_pickle.HIGHEST_PROTOCOL))
        # Which text it is the tree of (set after the pickle: the copies do not carry it).
        tree._keyplan_text = expression_str
    return tree


_expressions.UpdateExpressionParser.make = classmethod(_make_once)
_original_deepcopy = _validators.deepcopy


def _copy_tree(value, memo=None):
    kept = _tree_pickles.get(id(value)) if memo is None else None
    if kept is not None and kept[0] is value:
        return _pickle.loads(kept[1])
    return _original_deepcopy(value, memo)


_validators.deepcopy = _copy_tree

# 4. Validating an UpdateExpression walks its tree once per check (ten of them), and every node of
#    the walk asks its check for the node types it handles: a new dict each time, though each
#    check's types are fixed by its class. They are kept per class here.
import moto.dynamodb.parsing.ast_nodes as _ast_nodes

_handled_types = {}


def _nodes_to_be_processed(self):
    types = _handled_types.get(type(self))
    if types is None:
        types = _handled_types[type(self)] = tuple(self._processing_map().keys())
    return types


_ast_nodes.DepthFirstTraverser.nodes_to_be_processed = _nodes_to_be_processed

# 5. The first three of those checks (at most one ADD/REMOVE/SET clause, no overlapping paths, no
#    key attribute updated) read only the expression, its names and the table's key attributes;
#    the first (ActionCountValidator) runs three searches of the tree for every clause node in it.
#    Once they passed for a tree, names and keys, they pass again: skipped then. A check that fails
#    is never remembered, so it fails again, first, as before. The seven that read the item and
#    the values (and build the values written) all run every time, in their order.
_STATIC_CHECKS = (_validators.ActionCountValidator, _validators.OverlappingPathsValidator, _validators.UpdateHashRangeKeyValidator)
_passed_static = {}
_original_validator_init = _validators.Validator.__init__


def _validator_init(self, expression, expression_attribute_names, expression_attribute_values, item, table):
    _original_validator_init(self, expression, expression_attribute_names, expression_attribute_values, item, table)
    self._keyplan_tree = expression


def _validate(self):
    tree = getattr(self, "_keyplan_tree", None)
    key = None
    if type(self) is _validators.UpdateExpressionValidator and tree is not None and _update_trees.get(getattr(tree, "_keyplan_text", None)) is tree:
        key = (id(tree), _json.dumps(self.expression_attribute_names, sort_keys=True), _json.dumps(self.table.table_key_attrs))
    skip = key is not None and _passed_static.get(key) is tree
    n = self.node_to_validate
    for processor in self.processors:
        if skip and isinstance(processor, _STATIC_CHECKS):
            continue
        n = processor.traverse(n)
    if key is not None and not skip:
        _bounded(_passed_static)[key] = tree
    return n


_validators.Validator.__init__ = _validator_init
_validators.Validator.validate = _validate


# KEYPLAN_EMULATOR_CAPTURE=<file>: every DynamoDB request is appended to the file (JSON lines), for
# bench/emulator/replay.py. Off unless set.
import os as _os

if _os.environ.get("KEYPLAN_EMULATOR_CAPTURE"):
    import io as _io

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication as _Dispatcher

    _capture = open(_os.environ["KEYPLAN_EMULATOR_CAPTURE"], "a")
    _dispatch = _Dispatcher.__call__

    def _captured(self, environ, start_response):
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = _io.BytesIO(body)
            headers = {name: value for name, value in environ.items() if name.startswith("HTTP_")}
            _capture.write(_json.dumps({"path": environ.get("PATH_INFO"), "headers": headers, "body": body.decode()}) + "\n")
            _capture.flush()
        return _dispatch(self, environ, start_response)

    _Dispatcher.__call__ = _captured
