/**
 * The conversation REST routes on a real instance and Redis (DESIGN.md 5.1, seed 002): GET
 * conversation(s), the agent's conversations in GET agent, pause / resume with the
 * one-active rule, and every error with its status and code. Conversations are opened on the
 * instance's own hub with the static-SDP media double and stand-in SIP dialogs (this layer
 * exercises neither SIP nor media; test/sip and test/media do).
 */
import { Redis } from 'ioredis';
import type { Conversation } from '../../app/conversation/conversation';
import { Leg } from '../../app/sip/leg';
import { LegKind as K } from '../../lib/conversation/model';
import { FakeMediaServer, type FakeConference } from '../../media/fake';
import { startApp, type RunningApp } from '../helpers/app';
import { standInDialog } from '../helpers/dialog';
import { startRedis, type RedisServer } from '../helpers/redisServer';

let server: RedisServer;
let a: RunningApp;
let raw: Redis;
const media = new FakeMediaServer();

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
  a = await startApp({ redisUrl: server.url, media });
});
afterAll(async () => {
  await a.app.hub.endAll('test over');
  await a.close();
  raw.disconnect();
  await server.stop();
});
beforeEach(async () => {
  await a.app.hub.endAll('next test');
  await raw.flushall();
});


/** A conversation with a caller and agent `agent`, both in mode 1. */
async function queueCallOf(agent: string, queue = '8000'): Promise<{ conv: Conversation; conf: FakeConference; callerDialog: ReturnType<typeof standInDialog> }> {
  const conv = await a.app.hub.open({ cc: 'default', queue, task: `task-${agent}` });
  const callerDialog = standInDialog();
  await conv.add({ kind: K.Caller, ep: await media.createEndpoint(), sip: new Leg(callerDialog), mode: 1 });
  await conv.add({ kind: K.Agent, agent, ep: await media.createEndpoint(), sip: new Leg(standInDialog()), mode: 1 });
  return { conv, conf: media.conferences.get(`ccs-${conv.id}`)!, callerDialog };
}

const modesOf = (conf: FakeConference): number[] => [...conf.members.values()];
const path = (agent: string, op: string): string => `/callcenter/default/agent/${agent}/${op}`;

describe('REST conversations', () => {
  it('GET conversation shows the legs with kind, agent, mode and state; GET conversations filters by agent and queue; GET agent lists its conversations', async () => {
    const { conv } = await queueCallOf('1001');
    const other = await queueCallOf('1004', '8001');
    const one = await a.call('GET', `/callcenter/default/conversation/${conv.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: conv.id, state: 'active', owner: a.app.guard.incarnation, task: 'task-1001', queue: '8000', taskQueued: false });
    expect(one.body.legs.map((l: { kind: string; agent?: string; mode: number; state: string }) => [l.kind, l.agent ?? null, l.mode, l.state])).toEqual([
      ['caller', null, 1, 'up'],
      ['agent', '1001', 1, 'up'],
    ]);
    const all = await a.call('GET', '/callcenter/default/conversations');
    expect(all.body.conversations.map((c: { id: string }) => c.id)).toEqual([conv.id, other.conv.id]);
    expect((await a.call('GET', '/callcenter/default/conversations?agent=1004')).body.conversations.map((c: { id: string }) => c.id)).toEqual([other.conv.id]);
    expect((await a.call('GET', '/callcenter/default/conversations?queue=8000')).body.conversations.map((c: { id: string }) => c.id)).toEqual([conv.id]);
    const agent = await a.call('GET', '/callcenter/default/agent/1001');
    expect(agent.body.conversations).toEqual([{ id: conv.id, leg: one.body.legs[1].leg, mode: 1, active: true }]);
  });

  it('pause puts the agent on hold in the conference and the record (op 38); resume with mode 2 makes it listen only', async () => {
    const { conv, conf } = await queueCallOf('1001');
    const paused = await a.call('POST', path('1001', 'pause'), { json: { conversation_id: conv.id } });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ conversation: conv.id, prev: 1, mode: 4 });
    expect(modesOf(conf)).toEqual([1, 4]);
    expect((await a.call('GET', `/callcenter/default/conversation/${conv.id}`)).body.legs[1].mode).toBe(4);
    const ops = (await a.call('GET', '/callcenter/default/oplog?agent=1001')).body.entries;
    expect(ops.map((o: { op: number }) => o.op)).toEqual([38]);

    const resumed = await a.call('POST', path('1001', 'resume'), { json: { conversation_id: conv.id, mode: 2 } });
    expect(resumed.body).toMatchObject({ prev: 4, mode: 2 });
    expect(modesOf(conf)).toEqual([1, 2]);
    expect((await a.call('GET', '/callcenter/default/agent/1001')).body.conversations[0]).toMatchObject({ mode: 2, active: true });
  });

  it('resume in one conversation holds the agent in every other one first (one active at a time)', async () => {
    const first = await queueCallOf('1001');
    // A second conversation of the same agent, joined on hold (as a consultation would).
    const second = await a.app.hub.open({ cc: 'default' });
    await second.add({ kind: K.External, ep: await media.createEndpoint(), sip: new Leg(standInDialog()), mode: 1 });
    await second.add({ kind: K.Agent, agent: '1001', ep: await media.createEndpoint(), sip: new Leg(standInDialog()), mode: 4 });
    const res = await a.call('POST', path('1001', 'resume'), { json: { conversation_id: second.id } });
    expect(res.status).toBe(200);
    expect(modesOf(first.conf)).toEqual([1, 4]);
    expect(modesOf(media.conferences.get(`ccs-${second.id}`)!)).toEqual([1, 1]);
    const convs = (await a.call('GET', '/callcenter/default/agent/1001')).body.conversations as { id: string; active: boolean }[];
    expect(convs.filter((c) => c.active).map((c) => c.id)).toEqual([second.id]);
  });

  it('a party left alone ends the conversation: the caller hangs up, the agent leg gets BYE, the record ends', async () => {
    const { conv, conf, callerDialog } = await queueCallOf('1001');
    const agentDialog = conv.liveLegs.find((l) => l.kind === K.Agent)!.sip.dialog as ReturnType<typeof standInDialog>;
    callerDialog.hangUp();
    await conv.ended;
    expect(agentDialog.byes).toBe(1);
    expect(callerDialog.byes).toBe(0);
    expect(conf.destroyed).toBe(true);
    const one = await a.call('GET', `/callcenter/default/conversation/${conv.id}`);
    expect(one.body.state).toBe('ended');
    expect((await a.call('GET', '/callcenter/default/agent/1001')).body.conversations).toEqual([]);
    expect((await a.call('GET', '/callcenter/default/conversations')).body.conversations).toEqual([]);
  });

  describe('errors', () => {
    it.each([
      ['unknown conversation', '1001', 'pause', { conversation_id: 'nope' }, 404, 'unknown_conversation'],
      ['agent not in that conversation', '1002', 'pause', { conversation_id: '@conv' }, 403, 'not_in_conversation'],
      ['resume with mode 4', '1001', 'resume', { conversation_id: '@conv', mode: 4 }, 422, 'invalid_request'],
      ['resume with mode 7', '1001', 'resume', { conversation_id: '@conv', mode: 7 }, 422, 'invalid_request'],
      ['resume with mode "x"', '1001', 'resume', { conversation_id: '@conv', mode: 'x' }, 400, 'bad_request'],
      ['pause without conversation_id', '1001', 'pause', {}, 400, 'bad_request'],
      ['a conversation id that is no id', '1001', 'pause', { conversation_id: '../x' }, 400, 'bad_request'],
      ['an unknown field', '1001', 'pause', { conversation_id: '@conv', extra: 1 }, 400, 'bad_request'],
      ['an unknown agent', '9999', 'pause', { conversation_id: '@conv' }, 404, 'unknown_agent'],
    ])('%s: %s %s %j → %i %s, and nothing changes', async (_what, agent, op, body, status, code) => {
      const { conv, conf } = await queueCallOf('1001');
      const json = Object.fromEntries(Object.entries(body).map(([k, v]) => [k, v === '@conv' ? conv.id : v]));
      const res = await a.call('POST', path(agent, op), { json });
      expect(res.status).toBe(status);
      expect(res.body.error).toBe(code);
      expect(modesOf(conf)).toEqual([1, 1]);
      expect((await a.call('GET', '/callcenter/default/oplog')).body.entries).toEqual([]);
    });

    it('GET of an unknown conversation is 404 unknown_conversation', async () => {
      const res = await a.call('GET', '/callcenter/default/conversation/nope');
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('unknown_conversation');
    });

    it('the agent hanging up while its pause reaches the media server: 502 media_failed, no mode recorded, the leg leaves and the conversation ends', async () => {
      const { conv, conf } = await queueCallOf('1001');
      const agentDialog = conv.liveLegs.find((l) => l.kind === K.Agent)!.sip.dialog as ReturnType<typeof standInDialog>;
      conf.setMode = () => {
        agentDialog.hangUp();
        return Promise.reject(new Error('FreeSWITCH: member is gone'));
      };
      const res = await a.call('POST', path('1001', 'pause'), { json: { conversation_id: conv.id } });
      expect(res).toMatchObject({ status: 502, body: { error: 'media_failed' } });
      await conv.ended;
      const rec = (await a.call('GET', `/callcenter/default/conversation/${conv.id}`)).body as { state: string; legs: { kind: string; mode: number; state: string }[] };
      expect(rec.state).toBe('ended');
      expect(rec.legs.map((l) => [l.kind, l.mode, l.state])).toEqual([
        ['caller', 1, 'gone'],
        ['agent', 1, 'gone'],
      ]);
      const events = ((await raw.xrange('ccs:{default}:events', '-', '+')) as [string, string[]][]).map((e) => e[1].join(' '));
      expect(events.filter((e) => e.includes('"action":"mode"'))).toEqual([]);
    });

    it('a mode the media server half applies, then refuses, is put back in the conference: 502, and conference and record agree', async () => {
      const { conv, conf } = await queueCallOf('1001');
      const setMode = conf.setMode;
      let calls = 0;
      conf.setMode = async (ep, mode) => {
        calls += 1;
        await setMode(ep, mode);
        if (calls === 1) throw new Error('FreeSWITCH: mute done, deaf refused');
      };
      try {
        const res = await a.call('POST', path('1001', 'pause'), { json: { conversation_id: conv.id } });
        expect(res).toMatchObject({ status: 502, body: { error: 'media_failed' } });
      } finally {
        conf.setMode = setMode;
      }
      expect(calls).toBe(2);
      expect(modesOf(conf)).toEqual([1, 1]);
      expect((await a.call('GET', `/callcenter/default/conversation/${conv.id}`)).body.legs[1].mode).toBe(1);
    });

    it('a mode the media server refuses is 502 media_failed, and the record keeps the old mode', async () => {
      const { conv, conf } = await queueCallOf('1001');
      const setMode = conf.setMode;
      conf.setMode = () => Promise.reject(new Error('FreeSWITCH says -ERR'));
      try {
        const res = await a.call('POST', path('1001', 'pause'), { json: { conversation_id: conv.id } });
        expect(res.status).toBe(502);
        expect(res.body.error).toBe('media_failed');
      } finally {
        conf.setMode = setMode;
      }
      expect((await a.call('GET', `/callcenter/default/conversation/${conv.id}`)).body.legs[1].mode).toBe(1);
      expect((await a.call('GET', '/callcenter/default/oplog')).body.entries).toEqual([]);
    });
  });
});

describe('REST on one instance, conversation owned by another (DESIGN.md 5.1)', () => {
  let b: RunningApp;
  beforeAll(async () => {
    b = await startApp({ redisUrl: server.url, instanceId: 'test-b' });
  });
  afterAll(async () => {
    await b.close();
  });

  /** The owner's conversation, with the owner's command bus present in Redis. */
  const ownedByA = async (): Promise<{ conv: Conversation; conf: FakeConference }> => {
    const { conv, conf } = await queueCallOf('1001');
    await waitPresent(a.app.guard.incarnation);
    return { conv, conf };
  };
  const waitPresent = async (incarnation: string): Promise<void> => {
    for (;;) {
      if ((await raw.exists(`ccs:{default}:presence:${incarnation}`)) === 1) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  it('pause sent to instance B is executed by the owner A once, also when retried with the same Idempotency-Key', async () => {
    const { conv, conf } = await ownedByA();
    let runs = 0;
    const real = conf.setMode;
    conf.setMode = (ep, mode) => {
      runs += 1;
      return real(ep, mode);
    };
    const headers = { 'idempotency-key': 'retry-1' };
    const first = await b.call('POST', path('1001', 'pause'), { json: { conversation_id: conv.id }, headers });
    expect(first).toMatchObject({ status: 200, body: { conversation: conv.id, prev: 1, mode: 4 } });
    const retried = await b.call('POST', path('1001', 'pause'), { json: { conversation_id: conv.id }, headers });
    expect(retried.body).toEqual(first.body);
    expect(runs).toBe(1);
    expect(modesOf(conf)).toEqual([1, 4]);
    // Another key is another request: the owner runs it (here a no-op: already on hold).
    const other = await b.call('POST', path('1001', 'resume'), { json: { conversation_id: conv.id }, headers: { 'idempotency-key': 'retry-2' } });
    expect(other.body).toMatchObject({ prev: 4, mode: 1 });
    expect(modesOf(conf)).toEqual([1, 1]);
  });

  it('errors of the owner reach the client of instance B with their status and code', async () => {
    const { conv } = await ownedByA();
    const res = await b.call('POST', path('1002', 'pause'), { json: { conversation_id: conv.id } });
    expect(res).toMatchObject({ status: 403, body: { error: 'not_in_conversation' } });
  });

  it('when the owner is gone, B answers 503 owner_unreachable and nothing is applied', async () => {
    // Instance C owns a conversation, then stops (as if its process died: its record stays).
    const cMedia = new FakeMediaServer();
    const c = await startApp({ redisUrl: server.url, instanceId: 'test-c', media: cMedia });
    const conv = await c.app.hub.open({ cc: 'default' });
    await conv.add({ kind: K.Caller, ep: await cMedia.createEndpoint(), sip: new Leg(standInDialog()), mode: 1 });
    await conv.add({ kind: K.Agent, agent: '1001', ep: await cMedia.createEndpoint(), sip: new Leg(standInDialog()), mode: 1 });
    const conf = cMedia.conferences.get(`ccs-${conv.id}`)!;
    await c.close();
    const res = await b.call('POST', path('1001', 'pause'), { json: { conversation_id: conv.id } });
    expect(res).toMatchObject({ status: 503, body: { error: 'owner_unreachable' } });
    expect(modesOf(conf)).toEqual([1, 1]);
    expect((await b.call('GET', `/callcenter/default/conversation/${conv.id}`)).body.legs[1].mode).toBe(1);
  });
});
