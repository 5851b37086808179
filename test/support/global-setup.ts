import type { TestProject } from 'vitest/node';
import { bootstrapLocalStack } from '../../infra/local/bootstrap';
import { startEmulator } from '../../infra/local/emulator';

/**
 * Integration tests run against a fresh emulator on a free port, so they never touch a running
 * `npm start` or each other's leftovers from an earlier run. Tests read it with inject('localStack')
 * or useLocalStack() (test/support/local-env.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const emulator = await startEmulator({ port: 0 });
  try {
    project.provide('localStack', await bootstrapLocalStack({ endpoint: emulator.endpoint }));
  } catch (error) {
    await emulator.stop();
    throw error;
  }
  return () => emulator.stop();
}
