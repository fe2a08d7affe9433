// `npm start`: brings up the local stack. Until the local-stack issue lands this only says so.
console.log(
  "epp-wasm: the local stack (`npm start`) is not yet available; run `npm test` to build and test.",
);
