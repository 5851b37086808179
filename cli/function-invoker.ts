import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { awsErrorName } from '../shared/aws/aws-errors';
import { ConfigError } from '../shared/config';
import { FunctionBusyError, FunctionFailedError } from './failures';

/** Runs a deployed function once and returns its answer: `jobs run --stage`. */
export interface FunctionInvoker {
  /**
   * @throws ConfigError when there is no such function
   * @throws FunctionBusyError when Lambda refused for the function's reserved concurrency (a run is on)
   * @throws FunctionFailedError when the function failed: its error's type and message
   */
  invoke(functionName: string, payload: object): Promise<unknown>;
}

/** Synchronous Lambda Invoke with the operator's credentials and region. */
export class LambdaFunctionInvoker implements FunctionInvoker {
  readonly #client: LambdaClient;

  constructor(client: LambdaClient) {
    this.#client = client;
  }

  async invoke(functionName: string, payload: object): Promise<unknown> {
    const response = await this.#client
      .send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'RequestResponse',
          Payload: new TextEncoder().encode(JSON.stringify(payload)),
        }),
      )
      .catch((error: unknown) => {
        const name = awsErrorName(error);
        if (name === 'ResourceNotFoundException') {
          throw new ConfigError(`there is no function ${functionName}: is the stage deployed in this region?`);
        }
        // A scheduled job runs one at a time (reservedConcurrency): a run is on right now.
        if (name === 'TooManyRequestsException') {
          throw new FunctionBusyError(functionName, (error as { Reason?: string }).Reason, { cause: error });
        }
        throw error;
      });
    const text = response.Payload ? new TextDecoder().decode(response.Payload) : '';
    const answer = parseAnswer(text);
    if (response.FunctionError) {
      const { errorType, errorMessage } = (answer ?? {}) as { errorType?: unknown; errorMessage?: unknown };
      throw new FunctionFailedError(
        functionName,
        typeof errorType === 'string' ? errorType : response.FunctionError,
        typeof errorMessage === 'string' ? errorMessage : text,
      );
    }
    return answer;
  }
}

function parseAnswer(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
