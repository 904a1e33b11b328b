// The address pool: public surface for the control plane.
export * from './address.js';
export * from './lease-store.js';
export * from './pool.js';
export * from './pools.js';
