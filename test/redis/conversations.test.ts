/**
 * Conversations in Redis (lib/conversation/store.ts, lib/store/convScripts.ts): every change
 * one script with its `conversation` event; hold writes operation 38; the one-active rule
 * holds at every instant, also with two instances changing the same agent's conversations at
 * once (checked on every event, in order).
 */
import { ConversationStore } from '../../lib/conversation/store';
import { HOLD, LegKind as K, LegState as St, type Mode } from '../../lib/conversation/model';
import { parseEvent } from '../../lib/events';
import { startHarness, type Harness } from '../helpers/harness';

interface ConvEvent {
  type: string;
  seq: number;
  id: string;
  action: string;
  leg?: string;
  kind?: string;
  agent?: string;
  mode?: number;
}

describe('conversations in Redis', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(async () => {
    await h.raw.flushall();
  });

  const store = (): ConversationStore => {
    const { redis, config } = h.engine();
    return new ConversationStore({ redis, config });
  };
  const convEvents = async (): Promise<ConvEvent[]> => {
    const entries = (await h.raw.xrange('ccs:{default}:events', '-', '+')) as [string, string[]][];
    return entries.map((e) => parseEvent(e) as unknown as ConvEvent).filter((e) => e.type === 'conversation');
  };

  it('a queue call conversation: created, caller joins, agent joins, the agent leaves, it ends; every step an event and the record in step', async () => {
    const s = store();
    await s.create('default', { id: 'c1', owner: 'inc-a', task: 't1', queue: '8000', taskQueued: true });
    expect(await s.join('default', 'c1', { leg: 'caller', kind: K.Caller, mode: 1, state: St.Up })).toHaveProperty('seq');
    await s.setTask('default', 'c1', 't1', '8000', false);
    await s.join('default', 'c1', { leg: 'agent', kind: K.Agent, agent: '1001', mode: 1, state: St.Up });
    let c = await s.get('default', 'c1');
    expect(c).toMatchObject({ id: 'c1', owner: 'inc-a', state: 'active', task: 't1', queue: '8000', taskQueued: false });
    expect(c!.legs.map((l) => [l.leg, l.kind, l.agent, l.mode, l.state])).toEqual([
      ['caller', 'caller', undefined, 1, 'up'],
      ['agent', 'agent', '1001', 1, 'up'],
    ]);
    expect((await s.ofAgent('default', '1001')).map((x) => x.id)).toEqual(['c1']);
    expect((await s.list('default', { queue: '8000' })).map((x) => x.id)).toEqual(['c1']);

    expect(await s.leave('default', 'c1', { leg: 'agent', agent: '1001' })).toBe(true);
    expect(await s.leave('default', 'c1', { leg: 'agent', agent: '1001' })).toBe(false);
    expect(await s.ofAgent('default', '1001')).toEqual([]);
    expect(await s.end('default', 'c1')).toBe(true);
    expect(await s.end('default', 'c1')).toBe(false);
    c = await s.get('default', 'c1');
    expect(c!.state).toBe('ended');
    expect(c!.legs.every((l) => l.state === St.Gone)).toBe(true);
    expect(await s.list('default')).toEqual([]);
    expect(await h.raw.pttl('ccs:{default}:conv:c1')).toBeGreaterThan(0);

    const ev = await convEvents();
    expect(ev.map((e) => [e.action, e.leg ?? null, e.agent ?? null])).toEqual([
      ['created', null, null],
      ['joined', 'caller', null],
      ['joined', 'agent', '1001'],
      ['left', 'agent', '1001'],
      ['ended', null, null],
    ]);
    expect(ev.every((e) => e.id === 'c1')).toBe(true);
  });

  it('hold writes operation 38 for the agent with its state in the queue; resume writes only the mode event; the same mode again writes nothing', async () => {
    const { engine } = h.engine();
    await engine.login('default', '1001');
    const s = store();
    await s.create('default', { id: 'c1', owner: 'inc-a', queue: '8000' });
    await s.join('default', 'c1', { leg: 'a', kind: K.Agent, agent: '1001', mode: 1, state: St.Up });
    const legA = (await s.get('default', 'c1'))!.legs[0]!;
    const held = await s.setMode('default', 'c1', legA, HOLD, { expected: 1, queue: '8000' });
    expect(held).toMatchObject({ prev: 1 });
    const again = await s.setMode('default', 'c1', legA, HOLD, { queue: '8000' });
    expect(again).toEqual({ prev: 4, seq: 0 });
    expect(await s.setMode('default', 'c1', legA, 2, { expected: 4, queue: '8000' })).toMatchObject({ prev: 4 });
    const ops = await h.oplog();
    const holds = ops.filter((o) => o.op === 38);
    expect(holds).toHaveLength(1);
    expect(holds[0]).toMatchObject({ agent: '1001', queue: '8000', op: 38, state: 'ready' });
    const modes = (await convEvents()).filter((e) => e.action === 'mode').map((e) => e.mode);
    expect(modes).toEqual([4, 2]);
  });

  it('a mode change with a stale expected mode, on a gone leg or an ended conversation is refused and writes nothing', async () => {
    const s = store();
    await s.create('default', { id: 'c1', owner: 'inc-a' });
    await s.join('default', 'c1', { leg: 'a', kind: K.Agent, agent: '1001', mode: 1, state: St.Up });
    const legA = (await s.get('default', 'c1'))!.legs[0]!;
    expect(await s.setMode('default', 'c1', legA, 2, { expected: 3 })).toEqual({ refused: 'stale' });
    await s.leave('default', 'c1', legA);
    expect(await s.setMode('default', 'c1', legA, 2)).toEqual({ refused: 'no_leg' });
    await s.end('default', 'c1');
    expect(await s.setMode('default', 'c1', legA, 2)).toEqual({ refused: 'ended' });
    expect((await convEvents()).filter((e) => e.action === 'mode')).toEqual([]);
  });

  it('an agent active in one conversation cannot be made active, or join active, in another: the conflict names the conversation, nothing is written', async () => {
    const s = store();
    for (const id of ['c1', 'c2']) await s.create('default', { id, owner: 'inc-a' });
    await s.join('default', 'c1', { leg: 'a1', kind: K.Agent, agent: '1001', mode: 1, state: St.Up });
    expect(await s.join('default', 'c2', { leg: 'a2', kind: K.Agent, agent: '1001', mode: 1, state: St.Up })).toEqual({ conflict: ['c1'] });
    expect((await s.get('default', 'c2'))!.legs).toEqual([]);
    // Joining on hold is always allowed; being made active there is not while c1 is active.
    await s.join('default', 'c2', { leg: 'a2', kind: K.Agent, agent: '1001', mode: 4, state: St.Up });
    const a2 = (await s.get('default', 'c2'))!.legs[0]!;
    expect(await s.setMode('default', 'c2', a2, 1)).toEqual({ conflict: ['c1'] });
    // Once c1 holds the agent, c2 may make it active.
    const a1 = (await s.get('default', 'c1'))!.legs[0]!;
    await s.setMode('default', 'c1', a1, HOLD);
    expect(await s.setMode('default', 'c2', a2, 3)).toMatchObject({ prev: 4 });
    // Another agent is not concerned.
    await s.join('default', 'c1', { leg: 'b1', kind: K.Agent, agent: '1002', mode: 1, state: St.Up });
    expect((await s.get('default', 'c1'))!.legs.map((l) => [l.agent, l.mode])).toEqual([['1001', 4], ['1002', 1]]);
  });

  it('two instances making the same agent active in two of its conversations, 300 times at once: at no event does the agent have two active conversations', async () => {
    const a = store();
    const b = store();
    const ids = ['c1', 'c2', 'c3'];
    for (const id of ids) {
      await a.create('default', { id, owner: id === 'c1' ? 'inc-a' : 'inc-b' });
      await a.join('default', id, { leg: `leg-${id}`, kind: K.Agent, agent: '1001', mode: HOLD, state: St.Up });
    }
    const legOf = async (s: ConversationStore, id: string) => (await s.get('default', id))!.legs[0]!;
    /** What the owner does (app/conversation/conversation.ts): hold the others, then make this one active. */
    const activate = async (s: ConversationStore, id: string, mode: Mode): Promise<boolean> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        for (const other of await s.ofAgent('default', '1001')) {
          if (other.id === id) continue;
          const l = other.legs[0]!;
          if (l.mode !== HOLD) await s.setMode('default', other.id, l, HOLD);
        }
        const r = await s.setMode('default', id, await legOf(s, id), mode);
        if ('prev' in r) return true;
      }
      return false;
    };
    let won = 0;
    for (let i = 0; i < 300; i++) {
      const [x, y] = await Promise.all([activate(a, ids[i % 3]!, 1), activate(b, ids[(i + 1) % 3]!, 2)]);
      won += Number(x) + Number(y);
    }
    expect(won).toBeGreaterThan(300);
    // Replay every mode event in order: the number of conversations with the agent not on hold never exceeds one.
    const mode = new Map(ids.map((id) => [id, HOLD as number]));
    let checked = 0;
    for (const e of await convEvents()) {
      if (e.action !== 'mode') continue;
      mode.set(e.id, e.mode!);
      checked += 1;
      const active = [...mode.values()].filter((m) => m !== HOLD).length;
      if (active > 1) throw new Error(`event ${e.seq}: the agent is active in ${active} conversations (${JSON.stringify([...mode])})`);
    }
    expect(checked).toBeGreaterThan(600);
    // And the stored record agrees with the replay.
    for (const id of ids) expect((await legOf(a, id)).mode).toBe(mode.get(id));
  }, 60000);
});
