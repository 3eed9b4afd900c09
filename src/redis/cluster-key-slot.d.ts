// cluster-key-slot (a dependency of ioredis) ships no types.
declare module 'cluster-key-slot' {
  /** The Redis Cluster slot (CRC16 of the key or its hash tag, mod 16384). */
  export default function calculateSlot(key: string | Buffer): number;
}
