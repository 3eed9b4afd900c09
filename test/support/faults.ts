/**
 * Fault-injecting doubles of the three storage seams a hub is built on — `Broker`
 * (faulty-broker.ts), `PresenceStore` (faulty-presence.ts) and `Store` (faulty-store.ts), over
 * the fault switch of fault-switch.ts (which documents the faults) — and all three at once.
 */
import { FaultyBroker } from './faulty-broker.js';
import { FaultyPresenceStore } from './faulty-presence.js';
import { FaultyStore } from './faulty-store.js';

export { Faults, InjectedFault, type Fault, type FaultOptions } from './fault-switch.js';
export { BROKER_METHODS, FaultyBroker, memoryBroker, type BrokerMethod } from './faulty-broker.js';
export { FaultyPresenceStore, PRESENCE_METHODS, type PresenceMethod } from './faulty-presence.js';
export { FaultyStore, STORE_METHODS, type StoreMethod } from './faulty-store.js';

// ---- all three ---------------------------------------------------------------------------

export interface FaultyBackends {
  broker: FaultyBroker;
  presence: FaultyPresenceStore;
  store: FaultyStore;
  /** The three, as hub options: `createTestServer({ ...backends.options, ... })`. */
  options: { broker: FaultyBroker; presence: FaultyPresenceStore; store: FaultyStore };
  /** Clears every fault of the three and lets hung calls go on (call before closing the hub). */
  reset(): void;
}

/** The three doubles over fresh in-memory implementations. */
export function faultyBackends(): FaultyBackends {
  const broker = new FaultyBroker();
  const presence = new FaultyPresenceStore();
  const store = new FaultyStore();
  return {
    broker,
    presence,
    store,
    options: { broker, presence, store },
    reset() {
      broker.faults.reset();
      presence.faults.reset();
      store.faults.reset();
    },
  };
}
