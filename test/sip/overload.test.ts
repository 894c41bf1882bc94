/**
 * Overload and back (issue "faults", item 6): queue calls far past what this machine takes
 * (the queue benchmark's knee is well under the rate used here), then the drain. Callers
 * (sipp, a trunk) hang up after a short talk whether an agent answered or not, so many give
 * up while waiting, while being offered or while their agent's leg is being connected: the
 * races of a real overload. 60 agents register with digest, their Contact one sipp UAS that
 * answers every offer.
 *
 * After the callers are done, nothing may be left: no conversation, media endpoint, dialog
 * or guarded call of the instance; no waiting task or reservation; every agent Ready; no agent
 * leg up at the UAS; and the audit is empty. A call placed after the drain is answered by an
 * agent and drains too.
 */
import path from 'node:path';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import type { App } from '../../app/createApp';
import { AgentState } from '../../lib/agent/stateMachine';
import { callCenterKeys } from '../../lib/store/keys';
import type { FakeMediaServer } from '../../media/fake';
import type { DrachtioServer } from '../helpers/drachtio';
import { describeLayer } from '../helpers/layers';
import { freePort } from '../helpers/redisServer';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { startSipp, stopSipp, type Sipp } from '../helpers/sippProcess';

const SCENARIOS = path.join(__dirname, '../../bench/scenarios');
const AGENTS = 60;
const RATE = Number(process.env.OVERLOAD_RATE ?? 400);
const SECONDS = 3;
const keys = callCenterKeys('ccs', 'default');

describeLayer('sip', 'overload and back', () => {
  let stack: SipStack;
  let drachtio: DrachtioServer;
  let app: App;
  let raw: Redis;
  let media: FakeMediaServer;
  let uas: Sipp | undefined;
  const agents = Array.from({ length: AGENTS }, (_, i) => `a${i + 1}`);

  beforeAll(async () => {
    stack = await startSipStack({
      extraAgents: AGENTS,
      wrapUpSeconds8000: 0,
      // A starved sipp loses datagrams: a caller whose BYE never arrived is found by the
      // dialog keepalive (5 s here, 60 s by default) instead of holding its agent for ever.
      sip: { dialogKeepaliveSeconds: 5, trunks: { load: { addresses: ['127.0.0.1'], callcenter: 'default' } } },
      queues: { '8000': { ringSeconds: 3, maxWaitSeconds: 30 } },
    });
    ({ drachtio, app, raw, media } = stack);
  });
  afterAll(async () => {
    if (uas !== undefined) await stopSipp(uas, 2000);
    await stack?.close();
  });

  /** What is left of the calls, per kind; all zero once drained. */
  const leftovers = async (): Promise<Record<string, number | string[]>> => {
    const states = await Promise.all(agents.map(async (a) => [a, (await app.engine.states('default', a))[0]?.state] as const));
    const reservations = (await Promise.all(agents.map((a) => raw.exists(keys.reservation(a))))).reduce((n, x) => n + x, 0);
    return {
      conversations: app.hub.size,
      mediaEndpoints: media.endpoints,
      guardedCalls: await raw.hlen(`ccs:{default}:guard:${app.guard.incarnation}`),
      waitingTasks: await raw.zcard(keys.queueTasks('8000')),
      reservations,
      notReady: states.filter(([, s]) => s !== AgentState.Ready).map(([a, s]) => `${a}:${s}`),
    };
  };
  const drained = (l: Record<string, number | string[]>): boolean => Object.values(l).every((v) => (Array.isArray(v) ? v.length === 0 : v === 0));

  it(`${RATE} queue calls/s for ${SECONDS} s with ${AGENTS} agents, then the drain: no conversation, endpoint, task, reservation, stuck agent or agent leg left, and the audit is empty`, async () => {
    const target = `127.0.0.1:${drachtio.sipPort}`;
    const uasPort = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'ccs-overload-'));
    const users = path.join(dir, 'agents.csv');
    writeFileSync(users, ['SEQUENTIAL', ...agents.map((a) => `${a};secret-aaaa`)].join('\n') + '\n');
    const reg = await startSipp([target, '-sf', path.join(SCENARIOS, 'queue-register.xml'), '-inf', users, '-key', 'uas_port', String(uasPort), '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 'u1', '-r', '100', '-m', String(AGENTS), '-timeout', '30s', '-timeout_error', '-recv_timeout', '5000']).done;
    expect(reg.stats['SuccessfulCall(C)']).toBe(AGENTS);
    for (const a of agents) await app.engine.login('default', a);
    uas = startSipp([target, '-sf', path.join(SCENARIOS, 'queue-agent-uas.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(await freePort()), '-t', 'u1', '-recv_timeout', '60000']);

    const calls = RATE * SECONDS;
    const callers = await startSipp([
      target, '-sf', path.join(SCENARIOS, 'queue-caller.xml'), '-s', '8000', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()), '-t', 'u1',
      '-r', String(RATE), '-m', String(calls), '-l', String(calls), '-d', '800', '-timeout', '90s', '-recv_timeout', '10000',
    ]).done;
    const placed = callers.stats['OutgoingCall(C)'] ?? 0;
    const answeredByAgents = Number(await raw.hget(keys.queueStats('8000'), 'answered'));
    process.stdout.write(`overload: ${placed} calls placed at ${RATE}/s; callers ok ${callers.stats['SuccessfulCall(C)']}, failed ${callers.stats['FailedCall(C)']}; answered by agents ${answeredByAgents}\n`);
    if ((callers.stats['FailedCall(C)'] ?? 0) > 0) process.stdout.write(`sipp callers' errors (first lines):\n${callers.errors.split('\n').slice(0, 30).join('\n')}\n`);
    expect(placed).toBe(calls);

    // The drain: wait (bounded) until nothing is left, then say what was if it is not.
    const deadline = Date.now() + 60000;
    let left = await leftovers();
    while (!drained(left) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      left = await leftovers();
    }
    expect(left).toEqual({ conversations: 0, mediaEndpoints: 0, guardedCalls: 0, waitingTasks: 0, reservations: 0, notReady: [] });

    // The next call is served as usual: answered by an agent, then drained again.
    const answered = Number(await raw.hget(keys.queueStats('8000'), 'answered'));
    const next = await startSipp([target, '-sf', path.join(SCENARIOS, 'queue-caller.xml'), '-s', '8000', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()), '-t', 'u1', '-m', '1', '-d', '3000', '-timeout', '30s', '-recv_timeout', '10000']).done;
    expect(next.stats['SuccessfulCall(C)']).toBe(1);
    expect(Number(await raw.hget(keys.queueStats('8000'), 'answered'))).toBe(answered + 1);
    const again = Date.now() + 20000;
    while (!drained((left = await leftovers())) && Date.now() < again) await new Promise((r) => setTimeout(r, 250));
    expect(left).toEqual({ conversations: 0, mediaEndpoints: 0, guardedCalls: 0, waitingTasks: 0, reservations: 0, notReady: [] });
    // Every agent leg ccswitch placed got its BYE (or CANCEL): the UAS has no call open.
    const agentSide = await stopSipp(uas, 5000);
    uas = undefined;
    expect(agentSide.open).toBe(0);
    const addr = app.http.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const audit = await fetch(`http://127.0.0.1:${port}/callcenter/default/audit`, { headers: { authorization: 'Bearer test-token-0123456789' } });
    expect(await audit.json()).toEqual({ findings: [] });
  }, 240000);
});
