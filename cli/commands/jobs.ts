import { randomUUID } from 'node:crypto';
import { reconcileKeys, type ReconcileReport } from '../../shared/reconcile/reconcile-keys';
import { findDueRetirements, retireDueKeys, type RetirementRunReport } from '../../shared/rotation/rotation-jobs';
import { previewScheduledRotation, runScheduledRotation, type ScheduledRotationReport } from '../../shared/shards/scheduled-rotation';
import { previewSweep, runSweep, type SweepReport } from '../../shared/sweep/sweep';
import { type Command, type CommandContext, flag, instantOption } from '../command';
import { EXIT, UsageError } from '../failures';
import { CONFIGURATION_FUNCTION, deployedFunctionName } from '../stack';
import {
  type JobView,
  retirementPreviewView,
  retirementView,
  rotationPreviewView,
  rotationView,
  sweepPreviewView,
  sweepView,
} from './job-views';
import { reconcileNotes, reconcileTables } from './reconcile';

/**
 * A scheduled job as its function runs it (functions/<name>/composition.ts): the same use case
 * over the same deps and batch size, and what a run of it would do, read without changing
 * anything. `R` is the run's report: the deployed function's answer too.
 */
interface Job<R extends object> {
  name: string;
  /**
   * serverless.yml's function key: deployed as keyplan-<stage>-<functionKey>; with --stage the
   * configuration is read from it.
   */
  functionKey: string;
  /**
   * With --stage, how the job runs there when it is more than its one function: `invoke` calls one
   * deployed function (by key) with the scheduled event and answers its report. Without it,
   * functionKey is invoked and its answer is the report.
   */
  runDeployed?(invoke: (functionKey: string) => Promise<object>): Promise<R>;
  /** For the help: its schedule and what one run does. */
  help: string;
  run(at: Date, context: CommandContext): Promise<R>;
  view(report: R): JobView;
  dryRun(at: Date, context: CommandContext): Promise<{ report: object; view: JobView }>;
}

/** Any job, its report type left behind: a deployed function's answer is taken for its report. */
type AnyJob = Omit<Job<object>, 'view'> & { view(report: unknown): JobView };
const defineJob = <R extends object>(job: Job<R>): AnyJob => ({ ...job, view: (report) => job.view(report as R) });

const rotateKeys = defineJob<ScheduledRotationReport>({
  name: 'rotate-keys',
  functionKey: 'rotateKeys',
  help: `rotateKeys, daily: keys whose rotateAt has passed get a successor in
their plan, emailed; the old key retires after GRACE_DAYS. Then a step of
each draining shard. At most ROTATION_BATCH_SIZE keys.`,
  run: (at, { config, services }) => runScheduledRotation(at, config.rotationBatchSize, services.shards()),
  view: rotationView,
  async dryRun(at, { config, services }) {
    const report = await previewScheduledRotation(at, config.rotationBatchSize, services.shards());
    return { report, view: rotationPreviewView(report) };
  },
});

const retireKeys = defineJob<RetirementRunReport>({
  name: 'retire-keys',
  functionKey: 'retireKeys',
  help: `retireKeys, hourly: a reminder REMINDER_DAYS before a retiring key
stops; the key disabled when its grace is over, deleted KEY_RETENTION_DAYS
later. At most RETIREMENT_BATCH_SIZE keys per step.`,
  run: (at, { config, services }) => retireDueKeys(at, config.retirementBatchSize, services.rotation()),
  view: retirementView,
  async dryRun(at, { config, services }) {
    const report = { batchSize: config.retirementBatchSize, ...(await findDueRetirements(at, config.retirementBatchSize, services.rotation())) };
    return { report, view: retirementPreviewView(report) };
  },
});

const reconcile = defineJob<ReconcileReport>({
  name: 'reconcile',
  functionKey: 'reconcile',
  help: `reconcile, daily: API Gateway's managed keys against the table, drift
repaired (as \`keyplan reconcile\`).`,
  run: (at, { services }) => reconcileKeys({ now: at, dryRun: false }, services.reconcile()),
  view: reconcileView,
  async dryRun(at, { services }) {
    const report = await reconcileKeys({ now: at, dryRun: true }, services.reconcile());
    return { report, view: reconcileView(report) };
  },
});

const resumeRegistrations = defineJob<SweepReport>({
  name: 'resume-registrations',
  functionKey: 'resumeRegistrations',
  help: `resumeRegistrations and finishOperations, every SWEEP_MINUTES:
registrations nobody finished are resumed, then operations that died
holding their customer's lease are finished. At most RESUME_BATCH_SIZE of
each.`,
  run: (at, { config, services }) => runSweep(at, config.resumeBatchSize, services.resume()),
  // Deployed, the sweep's halves are two functions on one schedule: both run, in runSweep's order.
  async runDeployed(invoke) {
    const registrations = (await invoke('resumeRegistrations')) as SweepReport['registrations'];
    const interrupted = (await invoke('finishOperations')) as SweepReport['interrupted'];
    return { registrations, interrupted };
  },
  view: sweepView,
  async dryRun(at, { config, services }) {
    const report = await previewSweep(at, config.resumeBatchSize, services.resume());
    return { report, view: sweepPreviewView(report) };
  },
});

function reconcileView(report: ReconcileReport): JobView {
  const found = Object.values(report.found).reduce((sum, n) => sum + n, 0);
  const done = Object.values(report.done).reduce((sum, n) => sum + n, 0);
  return {
    summary: report.dryRun ? `found ${found} out of place` : `found ${found} out of place, repaired ${done}`,
    body: reconcileTables(report),
    notes: reconcileNotes(report),
    failed: report.failures > 0,
  };
}

const JOBS: readonly AnyJob[] = [rotateKeys, retireKeys, reconcile, resumeRegistrations];

const jobNamed = (name: string | undefined) => JOBS.find((job) => job.name === name);
const jobList = JOBS.map((job) => job.name).join(', ');

/** A time as EventBridge writes it (whole seconds), or with its milliseconds when it has some. */
const eventTime = (at: Date) => at.toISOString().replace(/\.000Z$/, 'Z');

/** What EventBridge sends a scheduled function, with the schedule's time. */
const scheduledEvent = (at: Date) => ({
  version: '0',
  id: randomUUID(),
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  time: eventTime(at),
  detail: {},
});

export const jobsCommand: Command = {
  name: 'jobs',
  summary: 'run a scheduled job now, as of any time, or see what it would do',
  options: { at: { type: 'string' }, 'dry-run': { type: 'boolean' } },
  help: (invocation) => `Usage: ${invocation} run JOB [--at ISO-TIME] [--dry-run]

Runs a scheduled job once, now, as its Lambda function runs it when its schedule fires: the same
use case, dependencies and batch size, with --at as the schedule's time. The time chooses what is
due, so --at in the future shows (or does) what the schedules will do by then; leases still come
from the clock, as in the function.

Jobs
${JOBS.map((job) => `  ${job.name.padEnd(22)}${job.help.replace(/\n/g, `\n${' '.repeat(24)}`)}`).join('\n')}

  --at ISO-TIME   the schedule's time: ISO 8601 with a time zone, such as 2026-09-17T03:00:00Z
                  or 2026-09-17T05:00+02:00 (default: now)
  --dry-run       change nothing; show what the run would take: rotate-keys the keys due (one
                  batch, and how many are due in all) and the drains' next keys; retire-keys the
                  keys due to be reminded, disabled and deleted; reconcile what it finds out of
                  place; resume-registrations the stalled registrations as of --at and the
                  interrupted operations (by the clock, as the sweep judges leases)

With --stage NAME the configuration (batch sizes included) is read from the job's own function,
keyplan-NAME-<function> (the first of the names above), and the job runs there: its functions are
invoked (lambda:InvokeFunction), one after the other, with a scheduled event whose time is --at,
and their answers are printed. With --dry-run as well, nothing is invoked: the reads run here,
with your credentials.

Example: what rotation does in 100 days, doing it, then retiring the old keys after the grace
  ${invocation} run rotate-keys --at 2026-09-17T03:00:00Z --dry-run
  ${invocation} run rotate-keys --at 2026-09-17T03:00:00Z
  ${invocation} run retire-keys --at 2026-09-25T03:00:00Z

Exit code 1 when part of the run failed (that work stays due for the next run) or the deployed
function failed, 4 when the deployed function is running already (one run at a time).
`,
  stageFunction: (args) => jobNamed(args.positionals[1])?.functionKey ?? CONFIGURATION_FUNCTION,
  parse(args) {
    const [verb, name, ...rest] = args.positionals;
    if (verb === undefined) throw new UsageError(`no verb given: use "jobs run JOB" (the jobs are: ${jobList})`);
    if (verb !== 'run') throw new UsageError(`unknown jobs command "${verb}": use "jobs run JOB"`);
    if (name === undefined) throw new UsageError(`no JOB given; the jobs are: ${jobList}`);
    const job = jobNamed(name);
    if (!job) throw new UsageError(`unknown job "${name}"; the jobs are: ${jobList}`);
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    const requestedAt = instantOption(args, 'at');
    const dryRun = flag(args, 'dry-run');

    return async (context) => {
      const at = requestedAt ?? context.now();
      const invoked: string[] = [];
      let report: object;
      let view: JobView;
      if (dryRun) {
        ({ report, view } = await job.dryRun(at, context));
      } else if (context.stage !== undefined) {
        const stage = context.stage;
        const invoke = async (functionKey: string) => {
          const name = deployedFunctionName(stage, functionKey);
          invoked.push(name);
          return (await context.services.functions().invoke(name, scheduledEvent(at))) as object;
        };
        report = job.runDeployed ? await job.runDeployed(invoke) : await invoke(job.functionKey);
        view = job.view(report);
      } else {
        report = await job.run(at, context);
        view = job.view(report);
      }
      const where = invoked.length > 0 ? ` on ${invoked.join(' and ')}` : '';
      const heading = `${job.name} as of ${eventTime(at)}${where}${dryRun ? ', dry run (nothing changed)' : ''}: ${view.summary}`;
      // One function's name as `function`; a job of several names them all, in the order run.
      const functions = invoked.length === 1 ? { function: invoked[0] } : invoked.length > 1 ? { functions: invoked } : {};
      return {
        json: { job: job.name, at: at.toISOString(), dryRun, ...functions, report },
        text: `${heading}\n${view.body}`,
        exitCode: view.failed ? EXIT.failed : EXIT.ok,
        notes: view.notes,
      };
    };
  },
};
