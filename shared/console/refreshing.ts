/** A read the console keeps a while: see kept(). */
export interface Kept<T> {
  /** The kept answer, or a fresh one when there is none yet (or it was dropped). */
  get(): Promise<T>;
  /** Starts a read now, so the first page need not wait for all of it. */
  prefetch(): void;
  /** Drops the answer: the next get() waits for a read that started after this call. */
  invalidate(): void;
}

/**
 * An expensive read (every key item of the account, or a scan) kept for `maxAgeMs`: an answer
 * older than that is served once more while a fresh one is read behind it, so a page waits only
 * for the very first read and after invalidate(). A failed read in the background keeps the last
 * answer; a failed read someone waits for is their failure.
 */
export function kept<T>(read: () => Promise<T>, maxAgeMs: number, clock: () => Date): Kept<T> {
  let value: { answer: T; readAt: number } | undefined;
  let reading: { promise: Promise<T>; generation: number } | undefined;
  // Raised by invalidate(): a read started before it must not become the kept answer.
  let generation = 0;

  const start = (): Promise<T> => {
    if (reading && reading.generation === generation) return reading.promise;
    const started = { generation, readAt: clock().getTime() };
    const promise = read().then((answer) => {
      if (started.generation === generation) value = { answer, readAt: started.readAt };
      return answer;
    });
    const current = { promise, generation };
    reading = current;
    void promise
      .finally(() => {
        if (reading === current) reading = undefined;
      })
      .catch(() => undefined);
    return promise;
  };

  return {
    async get() {
      if (!value) return start();
      if (clock().getTime() - value.readAt >= maxAgeMs) start().catch(() => undefined);
      return value.answer;
    },
    prefetch() {
      start().catch(() => undefined);
    },
    invalidate() {
      generation++;
      value = undefined;
    },
  };
}
