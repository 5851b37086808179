import type { NativeAttributeValue } from '@aws-sdk/util-dynamodb';

/*
 * The writes of the one table, as the registration table and the customer ledger build them: each
 * request from its expressions, with the placeholders those name. DynamoDB refuses a placeholder
 * that no expression uses (and one that is missing), so what a request lists is what its
 * expressions name: derived from them here, it cannot drift from them.
 */

export type Item = Record<string, NativeAttributeValue>;

/** Values that mean the same in every expression that names them. */
const CONSTANTS: Item = { ':zero': 0, ':one': 1, ':false': false, ':true': true };

/**
 * An Update of the item at `key`: `update` (SET/ADD/REMOVE clauses), only if `condition` holds
 * (none: unconditional). `#name` stands for the attribute `name`, unless `names` maps it to another
 * (a key id, which may hold any character); the values are `values`, and the CONSTANTS the
 * expressions name.
 */
export function updateOf(
  table: string,
  key: Item,
  update: string,
  condition: string | undefined,
  values?: Item,
  names?: Record<string, string>,
) {
  const attributeNames: Record<string, string> = {};
  const attributeValues: Item = {};
  for (const [placeholder, kind, name] of `${update} ${condition ?? ''}`.matchAll(/([#:])(\w+)/g)) {
    if (kind === '#') attributeNames[placeholder] = names?.[placeholder] ?? name!;
    else if (placeholder in CONSTANTS) attributeValues[placeholder] = CONSTANTS[placeholder];
  }
  Object.assign(attributeValues, values);
  return {
    TableName: table,
    Key: key,
    UpdateExpression: update,
    ...(condition ? { ConditionExpression: condition } : {}),
    // DynamoDB refuses an empty map as it refuses an unused placeholder.
    ...(Object.keys(attributeNames).length > 0 ? { ExpressionAttributeNames: attributeNames } : {}),
    ...(Object.keys(attributeValues).length > 0 ? { ExpressionAttributeValues: attributeValues } : {}),
  };
}

/** A Put of a new item: written only where none is (an item's writers never overwrite one). */
export const putNew = (table: string, item: Item) => ({
  Put: { TableName: table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' },
});

/**
 * One more key counted on the shard item at `key`, if it is below the high-water `mark` and
 * accepts customers: a registration's claim, and a drain's move into it, take a place alike.
 */
export function placeKey(table: string, key: Item, mark: number, at: string) {
  const open = mark > 0;
  return {
    Update: updateOf(
      table,
      key,
      'SET updatedAt = :at ADD placedKeys :one',
      // The reconciler's inventory (real keys, rotations and retained keys included) stops
      // placement too, once it reaches the mark. A mark of 0 (no shard open) places nothing: the
      // condition cannot hold.
      open
        ? '(attribute_not_exists(placedKeys) OR placedKeys < :mark) AND (attribute_not_exists(inventoryKeys) OR inventoryKeys < :mark) AND (attribute_not_exists(#state) OR #state = :accepting)'
        : 'attribute_not_exists(pk) AND attribute_exists(pk)',
      open ? { ':at': at, ':mark': mark, ':accepting': 'accepting' } : { ':at': at },
    ),
  };
}
