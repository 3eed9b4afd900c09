/**
 * Deletes what a run left in the shared Redis: the history streams and positions (kept for
 * their TTLs, up to a day) of switchboard-redis, under the run's unique prefix.
 */
export async function deleteRunKeys(url: string, prefix: string, timeoutMs = 10_000): Promise<number> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: timeoutMs });
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}
