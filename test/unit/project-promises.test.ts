import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

describe('the project', () => {
  it('opens its README with the two commands, and CI runs exactly the test one', async () => {
    const readme = await readFile('README.md', 'utf8');
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const commands = firstBlock
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim())
      .filter(Boolean);
    expect(commands).toEqual(['npm start', 'npm test']);
    expect(readme.indexOf('```sh')).toBeLessThan(readme.indexOf('\n## '));

    const ci = (await readFile('.ci/run', 'utf8'))
      .split('\n')
      .filter((line) => line.trim() && !line.startsWith('#') && !/^(set |cd )/.test(line.trim()));
    expect(ci).toEqual(['npm test']);
  });
});
