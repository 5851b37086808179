import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TEMPLATE_FILE } from '../../infra/shard/build-template';

/**
 * cfn-lint and checkov on the shard template, with the same settings as on the packaged home
 * template (test/integration/packaged-template.test.ts): the tools come from the project
 * virtualenv (scripts/setup.mjs, run by `npm test`) and run offline. Its least-privilege shape is
 * test/unit/shard-template.test.ts.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const venvBin = join(root, '.keyplan/venv', process.platform === 'win32' ? 'Scripts' : 'bin');
const template = relative(root, TEMPLATE_FILE);
const TOOL_TIMEOUT_MS = 50_000;

interface ToolRun {
  status: number | string;
  stdout: string;
  stderr: string;
}

/** Runs a tool of the venv without AWS variables or network look-ups; resolves even when it fails. */
function runTool(tool: string, args: string[]): Promise<ToolRun> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_')) env[name] = value;
  env.CKV_SKIP_PACKAGE_UPDATE_CHECK = 'true';
  env.BC_SKIP_MAPPING = 'TRUE';
  return new Promise((resolve) => {
    execFile(join(venvBin, tool), args, { cwd: root, env, timeout: TOOL_TIMEOUT_MS }, (error, stdout, stderr) => {
      resolve({ status: error ? (error.code ?? error.signal ?? 'failed') : 0, stdout, stderr });
    });
  });
}

function reportOf<T>(run: ToolRun): T | undefined {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    return undefined;
  }
}

describe('shard template static analysis', () => {
  // Both tools at once: a few seconds each.
  const cfnLint = runTool('cfn-lint', ['--config-file', 'infra/.cfnlintrc.yaml', '--format', 'json', '--', template]);
  const checkov = runTool('checkov', [
    '--config-file',
    'infra/checkov.yaml',
    '--quiet',
    '--output',
    'json',
    '--file',
    template,
  ]);

  it('cfn-lint finds no error and no warning', async () => {
    const run = await cfnLint;

    const findings = reportOf<{ Rule: { Id: string }; Message: string; Location: { Path: unknown[] } }[]>(run);
    expect(findings ? 'report' : `no report: ${run.stderr}`).toBe('report');
    expect(findings?.map((f) => `${f.Rule.Id} at ${f.Location.Path.join('/')}: ${f.Message}`)).toEqual([]);
    expect(run.status === 0 ? 'exit 0' : `exit ${String(run.status)}: ${run.stderr}`).toBe('exit 0');
  }, TOOL_TIMEOUT_MS);

  it('checkov fails no check but those skipped in infra/checkov.yaml', async () => {
    const run = await checkov;

    const report = reportOf<{
      results: { failed_checks: { check_id: string; resource: string; check_name: string }[] };
      summary: { passed: number; failed: number; parsing_errors: number; resource_count: number };
    }>(run);
    expect(report ? 'report' : `no report: ${run.stderr}`).toBe('report');
    expect(report?.results.failed_checks.map((c) => `${c.check_id} on ${c.resource}: ${c.check_name}`)).toEqual([]);
    // It read every resource of the template and ran its checks on them.
    const resources = Object.keys((parse(readFileSync(TEMPLATE_FILE, 'utf8')) as { Resources: object }).Resources);
    expect(report?.summary).toMatchObject({ failed: 0, parsing_errors: 0, resource_count: resources.length });
    expect(report?.summary.passed).toBeGreaterThan(0);
    expect(run.status === 0 ? 'exit 0' : `exit ${String(run.status)}: ${run.stderr}`).toBe('exit 0');
  }, TOOL_TIMEOUT_MS);
});
