/**
 * Settles like `promise`, or rejects once `ms` have passed: with `timeout()`'s error, or a plain
 * Error carrying the message. The timer never keeps the process alive.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, timeout: string | (() => Error)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(typeof timeout === 'string' ? new Error(timeout) : timeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
