// The seeded generator lives in sim/rng.ts; this re-export serves bench/scheduler.ts and scripts/chaos/
// until they import it from there, and then goes.
export { mulberry32 } from "../sim/rng.ts";
