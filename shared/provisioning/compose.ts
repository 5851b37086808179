// Moved to shared/wiring/compose.ts. This re-export keeps bench/mixed-load.ts and bench/throughput.ts
// (being edited elsewhere) compiling; delete it, and its exception in test/unit/architecture.test.ts,
// once they import from shared/wiring/compose.
export * from '../wiring/compose';
