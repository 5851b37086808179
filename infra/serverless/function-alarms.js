// Operator alarms on the functions themselves, to the alarms topic (alarms.yml). A function error
// is a crash or a timeout, never an answer the code chose (HTTP errors are problem+json answers,
// a failed queue record is a partial batch failure), so the first one is worth a look:
// - scheduled jobs are invoked asynchronously: a failed run is retried twice and then dropped with
//   nobody waiting for an answer; the work stays due, but a job that keeps failing leaves it undone;
// - HTTP functions: the portal got a 502 from API Gateway instead of a problem+json answer;
// - queue consumers: the whole batch returns to the queue and, after five receives, to the DLQ;
// - the table stream's consumer: the batch is retried, then skipped and described in its DLQ.

/** The framework's logical id of a function: rotateKeys -> RotateKeysLambdaFunction. */
const functionLogicalId = (name) => `${name.charAt(0).toUpperCase()}${name.slice(1)}LambdaFunction`;

function consequence(definition) {
  const events = definition.events ?? [];
  if (events.some((event) => event.schedule !== undefined)) {
    return 'A scheduled run failed. Lambda retries it twice; the work it left stays due for the next run, but a job that keeps failing leaves it undone.';
  }
  if (events.some((event) => event.stream !== undefined)) {
    return "A batch of the table's stream crashed or timed out: Lambda retries it (halved), and after 10 retries skips it and describes it in the events dead-letter queue; meanwhile lifecycle events wait.";
  }
  if (events.some((event) => event.http !== undefined)) {
    return 'A request crashed or timed out: the caller got a 502 from API Gateway. Its registration or change resumes when the caller retries (or with the resume sweep).';
  }
  return 'A batch crashed or timed out: its messages return to the queue and, after five receives, go to the dead-letter queue.';
}

/** An errors alarm for every function of serverless.yml. */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const functions = (await resolveVariable('self:functions')) ?? {};

  const Resources = {};
  for (const [name, definition] of Object.entries(functions)) {
    if (!/^[a-z][A-Za-z0-9]*$/.test(name)) {
      throw new Error(`function "${name}": name it in camelCase, so its logical id is known`);
    }
    const functionId = functionLogicalId(name);
    Resources[`${functionId.replace(/LambdaFunction$/, '')}ErrorsAlarm`] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${service}-${stage}-${name}-errors`,
        AlarmDescription: `${consequence(definition)} The cause is in /aws/lambda/${service}-${stage}-${name}.`,
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        // A function that did not run, or ran without error, publishes no Errors datapoint.
        TreatMissingData: 'notBreaching',
        // No OKActions: the alarm clears itself a period later, which says nothing about the cause.
        AlarmActions: [{ Ref: 'AlarmTopic' }],
      },
    };
  }
  return { Resources };
}
