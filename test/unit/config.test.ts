import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../lib/config/load';
import { ConfigError } from '../../lib/errors';

const defaultText = readFileSync(join(__dirname, '../../config/default.yaml'), 'utf8');

const problemsOf = (text: string, env = {}): string[] => {
  try {
    loadConfig({ text, env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
};

const minimal = (queues: string, agents: string): string => `callcenters:\n  cc1:\n    queues:\n${queues}\n    agents:\n${agents}\n`;

describe('config/default.yaml', () => {
  const cfg = loadConfig({ text: defaultText, source: 'default.yaml' });
  const cc = cfg.callcenters.default!;

  it('ships queue 8000 with autoReady and 5 s wrap-up, and 8001 without either', () => {
    expect(cc.queues['8000']).toMatchObject({ autoReady: true, wrapUpSeconds: 5 });
    expect(cc.queues['8001']).toMatchObject({ autoReady: false, wrapUpSeconds: 0 });
  });

  it('ships agents 1001-1003 in 8000 and 1003-1005 in 8001', () => {
    const members = (q: string): string[] => Object.values(cc.agents).filter((a) => q in a.queues).map((a) => a.id);
    expect(members('8000')).toEqual(['1001', '1002', '1003']);
    expect(members('8001')).toEqual(['1003', '1004', '1005']);
  });

  it('has no API token of its own, and takes them from API_TOKENS as admin tokens', () => {
    expect(cfg.apiTokens).toEqual([]);
    const withEnv = loadConfig({ text: defaultText, env: { API_TOKENS: 'token-one-0123456789, token-two-0123456789' } });
    expect(withEnv.apiTokens).toEqual([
      { token: 'token-one-0123456789', name: 'token-0', role: 'admin' },
      { token: 'token-two-0123456789', name: 'token-1', role: 'admin' },
    ]);
  });

  it('applies the connection env overrides', () => {
    const c = loadConfig({
      text: defaultText,
      env: { REDIS_URL: 'redis://r:1', DRACHTIO_HOST: 'd', DRACHTIO_PORT: '9999', DRACHTIO_SECRET: 's', FREESWITCH_HOST: 'f', FREESWITCH_PORT: '8022', FREESWITCH_SECRET: 'x', HTTP_PORT: '9090', LOG_LEVEL: 'debug' },
    });
    expect(c.redis.url).toBe('redis://r:1');
    expect(c.drachtio).toEqual({ host: 'd', port: 9999, secret: 's' });
    expect(c.freeswitch).toEqual({ host: 'f', port: 8022, secret: 'x' });
    expect(c.http.port).toBe(9090);
    expect(c.log.level).toBe('debug');
  });

  it('a prompt for an outcome that does not exist is refused with its key; a known one is kept', () => {
    const q = '      "8000": { name: Sales }';
    const ag = '      "1001": { extension: "1001", password: "pass1", queues: ["8000"] }';
    const fac = (prompts: string): string => `fac: { ready: "*36", notReady: "*37", login: "*38", logout: "*39", prompts: { ${prompts} } }\n${minimal(q, ag)}`;
    expect(problemsOf(fac('readdy: "say:x"'))).toEqual([expect.stringMatching(/^fac\.prompts\.readdy: unknown outcome/)]);
    expect(loadConfig({ text: fac('ready: "say:en:ready"') }).fac.prompts).toEqual({ ready: 'say:en:ready' });
  });

  it('defaults the feature codes to *36 *37 *38 *39, *35 for status and *63 for monitoring', () => {
    expect(cfg.fac).toEqual({ ready: '*36', notReady: '*37', login: '*38', logout: '*39', status: '*35', monitor: '*63' });
  });
});

describe('invalid configuration names the key and the problem', () => {
  const q = '      "8000": { name: Sales }';
  const ag = '      "1001": { extension: "1001", password: "pass1", queues: ["8000"] }';

  it('a negative wrap-up', () => {
    expect(problemsOf(minimal('      "8000": { name: Sales, wrapUpSeconds: -1 }', ag))).toContain('callcenters.cc1.queues.8000.wrapUpSeconds: must be >= 0');
  });

  it('an unknown key', () => {
    expect(problemsOf(minimal('      "8000": { name: Sales, wrapup: 5 }', ag))).toContain("callcenters.cc1.queues.8000: unknown key 'wrapup'");
  });

  it('a missing required key', () => {
    expect(problemsOf(minimal('      "8000": { autoReady: true }', ag))).toContain("callcenters.cc1.queues.8000: missing key 'name'");
  });

  it('an unknown strategy', () => {
    expect(problemsOf(minimal('      "8000": { name: Sales, strategy: fastest }', ag)).join('\n')).toMatch(/callcenters\.cc1\.queues\.8000\.strategy/);
  });

  it('an agent in a queue that does not exist', () => {
    expect(problemsOf(minimal(q, '      "1001": { extension: "1001", password: "pass1", queues: ["9000"] }'))).toEqual(["callcenters.cc1.agents.1001.queues: unknown queue '9000'"]);
  });

  it('an extension equal to a queue number', () => {
    expect(problemsOf(minimal(q, '      "1001": { extension: "8000", password: "pass1", queues: ["8000"] }'))[0]).toMatch(/agents\.1001\.extension: '8000' is already used by callcenters\.cc1\.queues\.8000/);
  });

  it('two agents with one extension', () => {
    const agents = `${ag}\n      "1002": { extension: "1001", password: "pass2", queues: ["8000"] }`;
    expect(problemsOf(minimal(q, agents))[0]).toMatch(/agents\.1002\.extension: '1001' is already used by callcenters\.cc1\.agents\.1001/);
  });

  it('feature codes where one is a prefix of another', () => {
    const text = `fac: { ready: "*3", notReady: "*37", login: "*38", logout: "*39" }\n${minimal(q, ag)}`;
    expect(problemsOf(text).join('\n')).toMatch(/fac\.notReady: '\*37' starts with fac\.ready '\*3'/);
  });

  it('an overflow to an unknown queue', () => {
    expect(problemsOf(minimal('      "8000": { name: Sales, overflow: { queue: "8999" } }', ag))).toContain("callcenters.cc1.queues.8000.overflow.queue: unknown queue '8999'");
  });

  it('an API token too short to be a secret', () => {
    expect(problemsOf(minimal(q, ag), { API_TOKENS: 'short' }).join('\n')).toMatch(/apiTokens\.0: must NOT have fewer than 16 characters/);
  });

  it('an env override that is not a port', () => {
    expect(problemsOf(minimal(q, ag), { HTTP_PORT: 'eighty' }).join('\n')).toMatch(/http\.port: must be integer/);
  });

  it('no call center at all', () => {
    expect(problemsOf('redis: { url: "redis://x" }\n').join('\n')).toMatch(/missing key 'callcenters'/);
  });

  it('YAML that does not parse', () => {
    expect(problemsOf('callcenters: [\n')[0]).toMatch(/not valid YAML/);
  });

  it('a YAML alias bomb is refused instead of expanded', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`), 'callcenters: {}'].join('\n');
    expect(problemsOf(bomb)[0]).toMatch(/not valid YAML|alias/i);
  });

  it('all problems are reported at once', () => {
    expect(problemsOf(minimal('      "8000": { name: Sales, wrapUpSeconds: -1, ringSeconds: 0 }', ag)).length).toBeGreaterThanOrEqual(2);
  });
});

describe('queue announcements', () => {
  const withAnnouncements = (a: string): string =>
    minimal(`      "8000":\n        name: Sales\n        announcements: ${a}`, `      "1001":\n        extension: "1001"\n        password: secret-1001\n        queues: ["8000"]`);

  it('default to no position announcements every 30 s when only a welcome is set', () => {
    const cfg = loadConfig({ text: withAnnouncements('{welcome: "tone_stream://%(200,0,440)"}') });
    expect(cfg.callcenters.cc1!.queues['8000']!.announcements).toEqual({ welcome: 'tone_stream://%(200,0,440)', position: false, periodSeconds: 30 });
  });

  it('refuse a sound with a space (FreeSWITCH would split the command) and a position sound without {n}', () => {
    const problems = problemsOf(withAnnouncements('{welcome: "ivr/welcome to.wav", position: true, positionSound: "digits/1.wav"}'));
    expect(problems).toContain('callcenters.cc1.queues.8000.announcements.welcome: "ivr/welcome to.wav" does not match ^\\S+$');
    expect(problems).toContain('callcenters.cc1.queues.8000.announcements.positionSound: "digits/1.wav" does not match ^\\S*\\{n\\}\\S*$');
  });

  it('refuse a period under one second', () => {
    expect(problemsOf(withAnnouncements('{position: true, periodSeconds: 0.5}'))).toContain('callcenters.cc1.queues.8000.announcements.periodSeconds: must be >= 1');
  });
});

describe('queue overflow to a number', () => {
  const withTrunk = (trunk: string): string =>
    `sip:\n  trunks:\n    carrier: ${trunk}\n` +
    minimal(`      "8000":\n        name: Sales\n        overflow: {number: "5551234"}`, `      "1001":\n        extension: "1001"\n        password: secret-1001\n        queues: ["8000"]`);

  it('needs an outbound trunk of the same call center', () => {
    expect(problemsOf(withTrunk('{addresses: ["192.0.2.1"], callcenter: cc1}'))).toContain(
      "callcenters.cc1.queues.8000.overflow.number: no outbound route of call center 'cc1' reaches '5551234' (sip.trunks.<name>.outbound, callcenters.cc1.outbound.routes)",
    );
  });

  it('is accepted with one, and an outbound target must be host[:port][;transport=...]', () => {
    expect(loadConfig({ text: withTrunk('{addresses: ["192.0.2.1"], callcenter: cc1, outbound: "gw.example.net:5080;transport=tcp"}') }).sip.trunks.carrier!.outbound).toBe('gw.example.net:5080;transport=tcp');
    expect(problemsOf(withTrunk('{addresses: ["192.0.2.1"], callcenter: cc1, outbound: "sip:gw.example.net"}')).join('\n')).toMatch(/^sip\.trunks\.carrier\.outbound: "sip:gw\.example\.net" does not match/m);
  });
});

describe('trunk routing: numbers, schedules, routes', () => {
  /** A call center cc1 (queues 8000, 8001; agent 1001) with `extra` YAML under it and `sip` at the top. */
  const routing = (extra: Record<string, unknown>, sip: Record<string, unknown> = {}): string =>
    JSON.stringify({
      sip,
      callcenters: {
        cc1: {
          queues: { '8000': { name: 'Sales' }, '8001': { name: 'Support' } },
          agents: { '1001': { extension: '1001', password: 'secret-1001', queues: ['8000'] } },
          ...extra,
        },
      },
    });
  const trunks = { trunks: { carrier: { addresses: ['192.0.2.1'], callcenter: 'cc1', outbound: ['192.0.2.1:5060', '192.0.2.2:5060'] }, other: { addresses: ['192.0.2.9'], callcenter: 'cc1' } } };
  const office = { timezone: 'America/Los_Angeles', weekly: { mon: ['09:00-17:00'] }, holidays: ['2026-12-25'], closed: { announcement: 'tone_stream://%(500,0,480)' } };

  it('accepts numbers to a queue, an agent, an announcement and a number, prefixes, schedules and routes', () => {
    const cfg = loadConfig({
      text: routing(
        {
          numbers: { '+14155550100': { queue: '8000', priority: 5, hours: 'office' }, '+1415555*': { queue: '8001' }, '0800*': { agent: '1001' }, '+4930*': { number: '+4930123' }, '*': { announcement: 'tone_stream://%(100,0,400)' } },
          schedules: { office },
          outbound: { routes: [{ prefix: '+49', trunk: 'carrier', strip: 3, prepend: '0' }], failoverSeconds: 4 },
        },
        trunks,
      ),
    });
    const cc = cfg.callcenters.cc1!;
    expect(Object.keys(cc.numbers)).toHaveLength(5);
    expect(cc.outbound).toEqual({ routes: [{ prefix: '+49', trunk: 'carrier', strip: 3, prepend: '0' }], failoverSeconds: 4 });
    expect(cfg.sip.trunks.carrier).toMatchObject({ inboundNumberFrom: 'ruri', pai: false, pingSeconds: 30, downAfter: 3 });
  });

  it.each([
    ['a number key that is not a number or prefix', { numbers: { '+1415x': { queue: '8000' } } }, /callcenters\.cc1\.numbers: unknown key '\+1415x'/],
    ['a queue key that is not a number', { queues: { '8000': { name: 'Sales' }, sales: { name: 'Sales' } } }, /callcenters\.cc1\.queues: unknown key 'sales'/],
    ['a number naming two targets', { numbers: { '+14155550100': { queue: '8000', agent: '1001' } } }, /callcenters\.cc1\.numbers\.\+14155550100: name exactly one of queue, agent, announcement, number \(queue, agent given\)/],
    ['a number naming none', { numbers: { '+14155550100': { priority: 1 } } }, /numbers\.\+14155550100: name exactly one of .* \(none given\)/],
    ['an unknown queue', { numbers: { '+14155550100': { queue: '8999' } } }, /numbers\.\+14155550100\.queue: unknown queue '8999'/],
    ['an unknown agent', { numbers: { '+14155550100': { agent: '9999' } } }, /numbers\.\+14155550100\.agent: unknown agent '9999'/],
    ['a priority without a queue', { numbers: { '+14155550100': { agent: '1001', priority: 2 } } }, /numbers\.\+14155550100\.priority: only a queue target has a priority/],
    ['an unknown schedule', { numbers: { '+14155550100': { queue: '8000', hours: 'nope' } } }, /numbers\.\+14155550100\.hours: unknown schedule 'nope'/],
    ['a bad time zone', { schedules: { office: { ...office, timezone: 'Mars/Olympus' } } }, /schedules\.office.*Mars\/Olympus/],
    ['a range that ends before it starts', { schedules: { office: { ...office, weekly: { mon: ['17:00-09:00'] } } } }, /schedules\.office\.weekly\.mon\.0: .*ends before it starts/],
    ['overlapping ranges', { schedules: { office: { ...office, weekly: { tue: ['09:00-12:00', '11:00-13:00'] } } } }, /schedules\.office\.weekly\.tue\.1: .*overlaps/],
    ['a holiday that is no date', { schedules: { office: { ...office, holidays: ['2026-02-30'] } } }, /schedules\.office\.holidays\.0/],
    ['a closed target to an unknown queue', { schedules: { office: { ...office, closed: { queue: '8999' } } } }, /schedules\.office\.closed\.queue: unknown queue '8999'/],
    ['a queue naming an unknown schedule', { queues: { '8000': { name: 'Sales', hours: 'nope' } } }, /queues\.8000\.hours: unknown schedule 'nope'/],
    ['a route to an unknown trunk', { outbound: { routes: [{ prefix: '', trunk: 'nope' }] } }, /outbound\.routes\.0\.trunk: unknown trunk 'nope'/],
    ['a route to a trunk without outbound addresses', { outbound: { routes: [{ prefix: '', trunk: 'other' }] } }, /outbound\.routes\.0\.trunk: trunk 'other' has no 'outbound' address/],
    ['a number target no route reaches', { outbound: { routes: [{ prefix: '+49', trunk: 'carrier' }] }, numbers: { '+14155550100': { number: '+15550000' } } }, /numbers\.\+14155550100\.number: no outbound route of call center 'cc1' reaches '\+15550000'/],
  ])('%s is refused, naming the key', (_what, extra, problem) => {
    expect(problemsOf(routing(extra, trunks)).join('\n')).toMatch(problem);
  });

  it('an outbound address that is not host[:port][;transport] is refused', () => {
    expect(problemsOf(routing({}, { trunks: { carrier: { addresses: ['192.0.2.1'], callcenter: 'cc1', outbound: ['192.0.2.1', 'sip:x'] } } })).join('\n')).toMatch(/sip\.trunks\.carrier\.outbound/);
  });
});
