import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one logger. Messages are constants and data goes in the attributes object; no caller passes
 * an API key value, and the key gateway never returns one outside the saga's email step.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keyplan' });
