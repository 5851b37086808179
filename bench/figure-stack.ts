import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../infra/local/bootstrap';
import { type Config, loadConfig } from '../shared/config';

export interface FigureStack {
  stack: LocalStack;
  /** The environment a deployed function would see, pointed at the figure's own table and prefix. */
  env: Record<string, string>;
  config: Config;
}

/**
 * A figure's own table and key name prefix in the emulator (the usage plans, the REST API and the
 * sender are the local stack's, shared like an account's), with process.env set as a function's
 * would be: SDK clients and handler modules read it. Figures never see each other's keys or items.
 */
export async function figureStack(endpoint: string, name: string, extraEnv: Record<string, string> = {}): Promise<FigureStack> {
  const stack = await bootstrapLocalStack({ endpoint, tableName: `bench-${name}` });
  const env = { ...functionEnvironment(stack), KEY_NAME_PREFIX: `bench-${name}`, ...extraEnv };
  Object.assign(process.env, env);
  return { stack, env, config: loadConfig(env) };
}
