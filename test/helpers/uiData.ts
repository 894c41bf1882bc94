/**
 * Traffic for the UI layer's pages, made through the real task scripts (no SIP): callers that
 * wait, and callers answered by an agent, so the statistics, the service level and the
 * history the pages show are the ones the ACD would write.
 */
import { randomUUID } from 'node:crypto';
import type { RunningApp } from './app';

/** Queues a caller in `queue`; returns its task id. */
export async function waitingCaller(a: RunningApp, caller: string, queue = '8000'): Promise<string> {
  const id = randomUUID();
  await a.app.tasks.enqueue('default', { id, queue, priority: 0, callId: `call-${id}`, caller, owner: 'ui-test', maxWaitMs: 600_000 });
  return id;
}

/** Registers a phone for `agent` (the ACD offers calls only to registered agents). */
export async function registerPhone(a: RunningApp, agent: string): Promise<void> {
  await a.app.registrar.register('default', {
    agent,
    contacts: [{ uri: `sip:${agent}@127.0.0.1:5099`, expires: 3600 }],
    callId: `reg-${agent}`,
    cseq: 1,
    source: '127.0.0.1:5099',
    transport: 'udp',
    server: 'test',
    userAgent: 'ui-test',
  });
}

/** Offers a new caller to `agent` (Ready in `queue`, phone registered): the reservation is left ringing. */
export async function ringingCaller(a: RunningApp, agent: string, caller: string, queue = '8000'): Promise<string> {
  const task = await waitingCaller(a, caller, queue);
  const r = await a.app.tasks.reserve('default', task, queue, [agent], 1, 60_000);
  if (!Array.isArray(r)) throw new Error(`agent ${agent} could not be reserved: ${r}`);
  return task;
}

/** A caller answered by `agent` (Ready in `queue`, phone registered) and ended after the answer. */
export async function answeredCaller(a: RunningApp, agent: string, caller: string, queue = '8000'): Promise<void> {
  const task = await waitingCaller(a, caller, queue);
  const r = await a.app.tasks.reserve('default', task, queue, [agent], 1, 60_000);
  if (!Array.isArray(r)) throw new Error(`agent ${agent} could not be reserved: ${r}`);
  const claimed = await a.app.tasks.claimAnswer('default', task, queue, r[0]!);
  if (!claimed.ok) throw new Error(`answer not claimed: ${claimed.why}`);
  await a.app.tasks.release('default', r[0]!);
  await a.app.tasks.end('default', task, queue, 'completed', agent);
}
