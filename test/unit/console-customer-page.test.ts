import { describe, expect, it, vi } from 'vitest';
import { getCustomerPage } from '../../shared/console/customer-page';
import { resendOwedEmail } from '../../shared/console/resend-owed-email';
import { NotFoundError, TransientAwsError } from '../../shared/errors';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { consoleOverWorld } from '../support/console-fakes';
import { aRegisteredCustomer, aWorld, recordingPorts, throttled, useCases } from '../support/in-memory-fixtures';
import { emailOf } from '../support/in-memory-model';
import { directPorts } from '../support/in-memory-scheduling';

describe('getCustomerPage', () => {
  it('shows the profile, the registration, the keys newest first and the usage summed per day', async () => {
    const world = aWorld();
    const first = await aRegisteredCustomer(world, 'c1');
    const usage = vi.fn(async (_plan: string, keyId: string) => (keyId === first.keyId ? [[4, 96], [6, 94]] : [[1, 99]]) as [number, number][]);
    const deps = consoleOverWorld(world, { usage });
    await rotateCustomerKeys('c1', { now: world.clock() }, useCases(directPorts(world)).rotation);

    const page = await getCustomerPage('c1', world.clock(), deps);

    expect(page.profile).toMatchObject({ customerId: 'c1', email: emailOf('c1'), tier: 'free', status: 'ACTIVE' });
    expect(page.registration).toMatchObject({ registrationId: 'c1-r0', state: 'ACTIVE' });
    expect(page.keys.map((k) => [k.generation, k.state])).toEqual([
      [2, 'ACTIVE'],
      [1, 'RETIRING'],
    ]);
    expect(page.usage.days).toHaveLength(30);
    expect(page.usage.days.at(-1)!.day).toBe(world.clock().toISOString().slice(0, 10));
    expect(usage).toHaveBeenCalledWith(expect.any(String), first.keyId, page.usage.days[0]!.day, page.usage.days.at(-1)!.day);
    expect(page.usage.days.slice(0, 2).map((d) => d.used)).toEqual([5, 6]);
    expect(page.usage.unavailable).toBeUndefined();
  });

  it('leaves the usage chart empty with the reason when GetUsage is unavailable or throttled', async () => {
    const world = aWorld();
    await aRegisteredCustomer(world, 'c1');

    const local = await getCustomerPage('c1', world.clock(), consoleOverWorld(world));
    const throttledPage = await getCustomerPage('c1', world.clock(), consoleOverWorld(world, { usage: async () => Promise.reject(throttled('GetUsage')) }));

    expect(local.usage.unavailable).toMatch(/GetUsage/);
    expect(local.usage.days.every((d) => d.used === 0)).toBe(true);
    expect(throttledPage.usage.unavailable).toMatch(/throttled/);
  });

  it('fails the page for an error keyplan cannot name', async () => {
    const world = aWorld();
    await aRegisteredCustomer(world, 'c1');

    await expect(getCustomerPage('c1', world.clock(), consoleOverWorld(world, { usage: async () => Promise.reject(new TypeError('bug')) }))).rejects.toThrow(TypeError);
  });

  it('shows the newest events and says when older ones exist', async () => {
    const world = aWorld();
    await aRegisteredCustomer(world, 'c1');
    const events = Array.from({ length: 60 }, (_, i) => ({
      sequence: i + 1,
      type: 'KeyEmailed' as const,
      time: world.clock().toISOString(),
      eventId: `e${i}`,
      customerId: 'c1',
      correlationId: 'op',
      detail: {},
    }));

    const page = await getCustomerPage('c1', world.clock(), consoleOverWorld(world, { events }));

    expect(page.events).toHaveLength(50);
    expect(page.events[0]!.sequence).toBe(60);
    expect(page.moreEvents).toBe(true);
  });

  it('throws NotFoundError for a customer the table has no profile of', async () => {
    const world = aWorld();

    await expect(getCustomerPage('nobody', world.clock(), consoleOverWorld(world))).rejects.toThrow(NotFoundError);
  });
});

describe('resendOwedEmail', () => {
  /** A customer whose key was made and recorded but whose email failed: EMAIL_PENDING. */
  async function aCustomerOwedAnEmail() {
    const world = aWorld();
    const { ports } = recordingPorts(world, { mailer: { send: async () => Promise.reject(throttled('SendEmail')) } });
    await provisionKey(
      { registrationId: 'c1-r0', request: { customerId: 'c1', email: emailOf('c1'), tier: 'free' }, now: world.clock() },
      useCases(ports).provisioning,
    ).catch((error: unknown) => {
      if (!(error instanceof TransientAwsError)) throw error;
    });
    world.advance(120_000);
    return world;
  }

  it('sends the owed email through the saga and settles the registration ACTIVE', async () => {
    const world = await aCustomerOwedAnEmail();
    const before = (await world.registrationTable.getRegistration('c1-r0'))?.state;

    const result = await resendOwedEmail('c1', world.clock(), useCases(directPorts(world)).provisioning);

    expect(before).toBe('EMAIL_PENDING');
    expect(result).toEqual({ customerId: 'c1', registrationId: 'c1-r0', owed: true, state: 'ACTIVE' });
    expect(world.emails.filter((email) => email.to === emailOf('c1') && email.keyValues.length === 1)).toHaveLength(1);
  });

  it('sends nothing when nothing is owed', async () => {
    const world = aWorld();
    await aRegisteredCustomer(world, 'c1');
    const sent = world.emails.length;

    const result = await resendOwedEmail('c1', world.clock(), useCases(directPorts(world)).provisioning);

    expect(result).toMatchObject({ owed: false, state: 'ACTIVE' });
    expect(world.emails).toHaveLength(sent);
  });

  it('throws NotFoundError for an unknown customer', async () => {
    const world = aWorld();

    await expect(resendOwedEmail('nobody', world.clock(), useCases(directPorts(world)).provisioning)).rejects.toThrow(NotFoundError);
  });
});
