// Figure 3's probe, run by a fresh `node` per sample: the module init time of one bundle, measured
// inside the process around the import, as Lambda's init phase would spend it. Plain JavaScript,
// so no loader (tsx) adds to what is measured.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const started = performance.now();
await import(pathToFileURL(process.argv[2]).href);
const ms = performance.now() - started;
process.stdout.write(JSON.stringify({ ms }));
// SDK clients open nothing at construction, but a bundle could: the sample is taken, stop here.
process.exit(0);
