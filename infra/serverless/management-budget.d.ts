// Types of management-budget.js, for the tests that check the split (the deploy reads the .js).

export declare const ACCOUNT_CALLS_PER_SECOND: number;
export declare const ACCOUNT_BURST: number;
/** The functions that make no API Gateway management call: no row, no share. */
export declare const WITHOUT_MANAGEMENT_CALLS: readonly string[];

export interface SplitRow {
  /** The function's share in percent of managementCallsPerSecond, all its containers together. */
  percent: number;
  /** Its most containers at once. */
  concurrency: number;
  /** Tokens one container may spend at once. */
  burst: number;
  /** A queue consumer: capped by its trigger's MaximumConcurrency, not by reserved concurrency. */
  queue?: boolean;
}

export interface FunctionBudget {
  sharePerSecond: number;
  concurrency: number;
  burst: number;
  queue: boolean;
}

export declare function managementSplit(params: { workerConcurrency: number }): Record<string, SplitRow>;

export declare function splitBudget(params: {
  managementCallsPerSecond: unknown;
  workerConcurrency: unknown;
}): Record<string, FunctionBudget>;
