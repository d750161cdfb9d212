/**
 * A field violation found while validating a request: which field (the proto field path, e.g.
 * `end_time`, `account.account_id`) and the rule it breaks. Domain validators push these;
 * services turn a non-empty list into INVALID_ARGUMENT with a google.rpc.BadRequest
 * (src/services/errors.ts, whose `Violation` has the same shape).
 */
export interface Violation {
  readonly field: string;
  readonly description: string;
}
