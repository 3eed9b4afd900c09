/** What a feature reports to the admin UI: plain JSON, shown as key/value rows. */
export type FeatureStatus = Record<string, unknown>;
export type FeatureStatusProvider = () => FeatureStatus | Promise<FeatureStatus>;

/**
 * Features that show their status in the admin overview ("webhooks": queue length, failures;
 * "documents": open documents; ...). A feature registers a provider when it starts and removes
 * it when it stops; the overview lists every name in `known` too, as "not enabled" while
 * nothing is registered under it. A provider that throws or takes over a second shows its error.
 */
export class FeatureStatusRegistry {
  private readonly providers = new Map<string, FeatureStatusProvider>();

  constructor(private readonly known: readonly string[] = ['webhooks', 'proxy', 'documents', 'msgpack']) {}

  /** Registers (or replaces) a feature's provider; returns a function that removes it. */
  register(name: string, provider: FeatureStatusProvider): () => void {
    this.providers.set(name, provider);
    return () => {
      if (this.providers.get(name) === provider) this.providers.delete(name);
    };
  }

  /** Every known or registered feature, sorted by name. */
  async collect(timeoutMs = 1_000): Promise<Array<{ name: string; enabled: boolean; status?: FeatureStatus; error?: string }>> {
    const names = [...new Set([...this.known, ...this.providers.keys()])].sort();
    return Promise.all(
      names.map(async (name) => {
        const provider = this.providers.get(name);
        if (!provider) return { name, enabled: false };
        let timer: NodeJS.Timeout | undefined;
        try {
          const status = await Promise.race([
            Promise.resolve().then(provider),
            new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('status timed out')), timeoutMs))),
          ]);
          return { name, enabled: true, status };
        } catch (err) {
          return { name, enabled: true, error: err instanceof Error ? err.message : String(err) };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }
}
