import type { FaultRule } from './fault-proxy';

/**
 * Faults on every service keyplan calls, at shares that make each path fire a few times: API
 * Gateway mostly throttles (its management budget is 10 calls/s per account), everything drops
 * connections before and after the call took effect, and for a few seconds SES refuses all mail.
 */
export function faultRules(start: number): FaultRule[] {
  const on = (service: string, kind: 'throttle' | 'error500' | 'reset-before' | 'reset-after', share: number): FaultRule => ({
    name: `${service} ${kind}`,
    service,
    share,
    fault: { kind },
  });
  return [
    { name: 'ses outage', service: 'ses', window: { from: start + 15_000, until: start + 19_000 }, fault: { kind: 'throttle' } },
    on('apigateway', 'throttle', 0.06),
    on('apigateway', 'error500', 0.03),
    on('apigateway', 'reset-before', 0.02),
    on('apigateway', 'reset-after', 0.03),
    { name: 'apigateway 503', service: 'apigateway', share: 0.01, fault: { kind: 'error500', status: 503 } },
    on('dynamodb', 'throttle', 0.04),
    on('dynamodb', 'error500', 0.02),
    on('dynamodb', 'reset-before', 0.02),
    on('dynamodb', 'reset-after', 0.03),
    on('ses', 'throttle', 0.05),
    on('ses', 'error500', 0.03),
    on('ses', 'reset-before', 0.02),
    on('ses', 'reset-after', 0.03),
    on('sqs', 'throttle', 0.04),
    on('sqs', 'error500', 0.03),
    on('sqs', 'reset-before', 0.02),
    on('sqs', 'reset-after', 0.02),
    { name: 'delay', share: 0.03, fault: { kind: 'delay', ms: 150 } },
  ];
}
