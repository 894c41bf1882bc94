/**
 * Turns the YAML text plus environment overrides into a validated {@link Config}.
 * Pure: the caller (app/main.ts) reads the file and passes `process.env` in.
 */
import { randomBytes } from 'node:crypto';
import Ajv, { type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors';
import { outboundAddresses, outboundTrunks, parseTrunkAddress } from '../sip/trunks';
import { numberMapProblems } from '../routing/numbers';
import { Schedule } from '../routing/schedule';
import { FAC_OUTCOMES, FileConfigSchema, type AgentConfig, type ApiTokenConfig, type CallTarget, type CallCenterConfig, type Config, type FileConfig, type MembershipConfig } from './schema';

/** Largest configuration file accepted (a site with thousands of agents fits easily). */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** Environment variables that override connection settings (DESIGN.md section 9). */
export type EnvOverrides = Partial<
  Record<
    | 'REDIS_URL'
    | 'DRACHTIO_HOST'
    | 'DRACHTIO_PORT'
    | 'DRACHTIO_SECRET'
    | 'FREESWITCH_HOST'
    | 'FREESWITCH_PORT'
    | 'FREESWITCH_SECRET'
    | 'HTTP_PORT'
    | 'LOG_LEVEL'
    | 'API_TOKENS'
    | 'CCSWITCH_INSTANCE_ID',
    string | undefined
  >
>;

// verbose: errors carry the offending value, so a pattern mismatch can name it.
const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: false, verbose: true });
const validateFile = ajv.compile<FileConfig>(FileConfigSchema);

function keyPath(instancePath: string): string {
  const p = instancePath.replace(/^\//, '').split('/').join('.');
  return p === '' ? '(root)' : p;
}

function describe(e: ErrorObject): string {
  const at = keyPath(e.instancePath);
  if (e.keyword === 'additionalProperties') return `${at}: unknown key '${String(e.params.additionalProperty)}'`;
  if (e.keyword === 'required') return `${at}: missing key '${String(e.params.missingProperty)}'`;
  if (e.keyword === 'pattern') return `${at}: ${JSON.stringify(e.data)} does not match ${String(e.params.pattern)}`;
  return `${at}: ${e.message ?? 'is invalid'}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function section(raw: Record<string, unknown>, key: string): Record<string, unknown> {
  const cur = raw[key];
  if (isObject(cur)) return cur;
  const fresh: Record<string, unknown> = {};
  raw[key] = fresh;
  return fresh;
}

function applyEnv(raw: Record<string, unknown>, env: EnvOverrides): void {
  const set = (sec: string, key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') section(raw, sec)[key] = value;
  };
  set('redis', 'url', env.REDIS_URL);
  set('drachtio', 'host', env.DRACHTIO_HOST);
  set('drachtio', 'port', env.DRACHTIO_PORT);
  set('drachtio', 'secret', env.DRACHTIO_SECRET);
  set('freeswitch', 'host', env.FREESWITCH_HOST);
  set('freeswitch', 'port', env.FREESWITCH_PORT);
  set('freeswitch', 'secret', env.FREESWITCH_SECRET);
  set('http', 'port', env.HTTP_PORT);
  set('log', 'level', env.LOG_LEVEL);
  if (env.CCSWITCH_INSTANCE_ID) raw.instanceId = env.CCSWITCH_INSTANCE_ID;
  if (env.API_TOKENS) {
    const extra = env.API_TOKENS.split(',').map((t) => t.trim()).filter((t) => t !== '');
    const cur = Array.isArray(raw.apiTokens) ? (raw.apiTokens as unknown[]) : [];
    raw.apiTokens = [...cur, ...extra];
  }
}

function normaliseMemberships(q: string[] | Record<string, { skills?: Record<string, number> }>): Record<string, MembershipConfig> {
  const out: Record<string, MembershipConfig> = {};
  if (Array.isArray(q)) for (const id of q) out[id] = { skills: {} };
  else for (const [id, m] of Object.entries(q)) out[id] = { skills: { ...(m.skills ?? {}) } };
  return out;
}

/** Cross-field checks the schema cannot express; every problem names its key. */
function checkSemantics(file: FileConfig, problems: string[]): void {
  if (file.sip.minExpires > file.sip.maxExpires) problems.push(`sip.minExpires: ${file.sip.minExpires} is above sip.maxExpires ${file.sip.maxExpires}`);
  if (file.sip.defaultExpires < file.sip.minExpires || file.sip.defaultExpires > file.sip.maxExpires)
    problems.push(`sip.defaultExpires: ${file.sip.defaultExpires} is outside sip.minExpires..sip.maxExpires`);
  for (const [name, t] of Object.entries(file.sip.trunks)) {
    if (!(t.callcenter in file.callcenters)) problems.push(`sip.trunks.${name}.callcenter: unknown call center '${t.callcenter}'`);
    t.addresses.forEach((a, i) => {
      const p = parseTrunkAddress(a);
      if ('error' in p) problems.push(`sip.trunks.${name}.addresses.${i}: ${p.error}`);
    });
  }
  const { prompts, ...codeMap } = file.fac;
  const codes = Object.entries(codeMap).filter((e): e is [string, string] => typeof e[1] === 'string');
  for (const outcome of Object.keys(prompts ?? {}))
    if (!(FAC_OUTCOMES as readonly string[]).includes(outcome)) problems.push(`fac.prompts.${outcome}: unknown outcome (one of ${FAC_OUTCOMES.join(', ')})`);
  for (const [a, ca] of codes)
    for (const [b, cb] of codes)
      if (a !== b && cb.startsWith(ca)) problems.push(`fac.${b}: '${cb}' starts with fac.${a} '${ca}', so the dial string would be ambiguous`);

  for (const [ccId, cc] of Object.entries(file.callcenters)) {
    const base = `callcenters.${ccId}`;
    const numbers = new Map<string, string>();
    for (const q of Object.keys(cc.queues)) numbers.set(q, `${base}.queues.${q}`);
    for (const [qId, q] of Object.entries(cc.queues)) {
      if (q.overflow?.queue !== undefined) {
        if (!(q.overflow.queue in cc.queues)) problems.push(`${base}.queues.${qId}.overflow.queue: unknown queue '${q.overflow.queue}'`);
        else if (q.overflow.queue === qId) problems.push(`${base}.queues.${qId}.overflow.queue: a queue cannot overflow to itself`);
      }
      if (q.overflow !== undefined && q.overflow.queue !== undefined && q.overflow.number !== undefined)
        problems.push(`${base}.queues.${qId}.overflow: give either 'queue' or 'number', not both`);
      if (q.overflow?.number !== undefined && outboundTrunks(file.sip.trunks, ccId, cc.outbound, q.overflow.number).length === 0)
        problems.push(`${base}.queues.${qId}.overflow.number: no outbound route of call center '${ccId}' reaches '${q.overflow.number}' (sip.trunks.<name>.outbound, callcenters.${ccId}.outbound.routes)`);
      if (q.hours !== undefined && !Object.hasOwn(cc.schedules, q.hours)) problems.push(`${base}.queues.${qId}.hours: unknown schedule '${q.hours}'`);
    }
    for (const [agentId, agent] of Object.entries(cc.agents)) {
      const at = `${base}.agents.${agentId}`;
      const clash = numbers.get(agent.extension);
      if (clash !== undefined) problems.push(`${at}.extension: '${agent.extension}' is already used by ${clash}`);
      else numbers.set(agent.extension, at);
      for (const q of Object.keys(normaliseMemberships(agent.queues)))
        if (!(q in cc.queues)) problems.push(`${at}.queues: unknown queue '${q}'`);
    }
    for (const [supId, sup] of Object.entries(cc.supervisors)) {
      const at = `${base}.supervisors.${supId}`;
      // Agents and supervisors share the registrar and the digest user names.
      if (Object.hasOwn(cc.agents, supId)) problems.push(`${at}: '${supId}' is also an agent id (SIP user names must be unique)`);
      const clash = numbers.get(sup.extension);
      if (clash !== undefined) problems.push(`${at}.extension: '${sup.extension}' is already used by ${clash}`);
      else numbers.set(sup.extension, at);
      for (const q of sup.queues) if (!(q in cc.queues)) problems.push(`${at}.queues: unknown queue '${q}'`);
    }
  }
  for (const [ccId, cc] of Object.entries(file.callcenters)) checkRouting(file, ccId, cc, problems);
  checkTokens(file, problems);
}

/** A call target names exactly one thing, and that thing exists. */
function checkTarget(file: FileConfig, ccId: string, t: CallTarget, at: string, problems: string[]): void {
  const cc = file.callcenters[ccId]!;
  const named = (['queue', 'agent', 'announcement', 'number'] as const).filter((k) => t[k] !== undefined);
  if (named.length !== 1) problems.push(`${at}: name exactly one of queue, agent, announcement, number (${named.length === 0 ? 'none' : named.join(', ')} given)`);
  if (t.queue !== undefined && !Object.hasOwn(cc.queues, t.queue)) problems.push(`${at}.queue: unknown queue '${t.queue}'`);
  if (t.agent !== undefined && !Object.hasOwn(cc.agents, t.agent)) problems.push(`${at}.agent: unknown agent '${t.agent}'`);
  if (t.priority !== undefined && t.queue === undefined) problems.push(`${at}.priority: only a queue target has a priority`);
  if (t.number !== undefined && outboundTrunks(file.sip.trunks, ccId, cc.outbound, t.number).length === 0) problems.push(`${at}.number: no outbound route of call center '${ccId}' reaches '${t.number}'`);
}

/** Numbers, schedules and outbound routes of one call center (issue "trunk routing"). */
function checkRouting(file: FileConfig, ccId: string, cc: FileConfig['callcenters'][string], problems: string[]): void {
  const base = `callcenters.${ccId}`;
  problems.push(...numberMapProblems(cc.numbers, `${base}.numbers`));
  for (const [key, n] of Object.entries(cc.numbers)) {
    checkTarget(file, ccId, n, `${base}.numbers.${key}`, problems);
    if (n.hours !== undefined && !Object.hasOwn(cc.schedules, n.hours)) problems.push(`${base}.numbers.${key}.hours: unknown schedule '${n.hours}'`);
  }
  for (const [name, sch] of Object.entries(cc.schedules)) {
    problems.push(...Schedule.problems(sch, `${base}.schedules.${name}`));
    checkTarget(file, ccId, sch.closed, `${base}.schedules.${name}.closed`, problems);
  }
  cc.outbound.routes.forEach((r, i) => {
    const at = `${base}.outbound.routes.${i}.trunk`;
    const t = Object.hasOwn(file.sip.trunks, r.trunk) ? file.sip.trunks[r.trunk] : undefined;
    if (t === undefined) problems.push(`${at}: unknown trunk '${r.trunk}'`);
    else if (t.callcenter !== ccId) problems.push(`${at}: trunk '${r.trunk}' belongs to call center '${t.callcenter}'`);
    else if (outboundAddresses(t).length === 0) problems.push(`${at}: trunk '${r.trunk}' has no 'outbound' address`);
  });
}

/** Roles' scopes must name what exists; `admin` tokens carry no scope. */
function checkTokens(file: FileConfig, problems: string[]): void {
  // The same plain (admin) token twice (file and API_TOKENS) is harmless; a role given twice is not.
  const seen = new Map<string, boolean>();
  const ccIds = Object.keys(file.callcenters);
  file.apiTokens.forEach((t, i) => {
    const at = `apiTokens.${i}`;
    const token = typeof t === 'string' ? t : t.token;
    const plain = seen.get(token);
    if (plain !== undefined && !(plain && typeof t === 'string')) problems.push(`${at}: the same token is listed twice`);
    seen.set(token, typeof t === 'string');
    if (typeof t === 'string') return;
    if (t.role === 'admin') {
      for (const k of ['callcenter', 'queues', 'supervisor', 'agent'] as const) if (t[k] !== undefined) problems.push(`${at}.${k}: an admin token has no scope`);
      return;
    }
    const ccId = t.callcenter ?? (ccIds.length === 1 ? ccIds[0] : undefined);
    if (ccId === undefined) return void problems.push(`${at}.callcenter: required when there are several call centers`);
    const cc = Object.hasOwn(file.callcenters, ccId) ? file.callcenters[ccId] : undefined;
    if (cc === undefined) return void problems.push(`${at}.callcenter: unknown call center '${ccId}'`);
    if (t.role === 'agent') {
      if (t.queues !== undefined || t.supervisor !== undefined) problems.push(`${at}: an agent token has only 'agent'`);
      if (t.agent === undefined) problems.push(`${at}.agent: required for role agent`);
      else if (!Object.hasOwn(cc.agents, t.agent)) problems.push(`${at}.agent: unknown agent '${t.agent}' in call center '${ccId}'`);
      return;
    }
    if (t.agent !== undefined) problems.push(`${at}.agent: a supervisor token has 'queues' or 'supervisor'`);
    if (t.supervisor !== undefined && !Object.hasOwn(cc.supervisors, t.supervisor)) problems.push(`${at}.supervisor: unknown supervisor '${t.supervisor}' in call center '${ccId}'`);
    if (t.queues === undefined && t.supervisor === undefined) problems.push(`${at}: a supervisor token needs 'queues' or 'supervisor'`);
    for (const q of t.queues ?? []) if (!Object.hasOwn(cc.queues, q)) problems.push(`${at}.queues: unknown queue '${q}' in call center '${ccId}'`);
  });
}

/** The tokens with their role and scope filled in (names, call center, a supervisor's queues). */
function normaliseTokens(file: FileConfig): ApiTokenConfig[] {
  const ccIds = Object.keys(file.callcenters);
  const plain = new Set<string>();
  const unique = file.apiTokens.filter((t) => typeof t !== 'string' || (!plain.has(t) && plain.add(t) !== undefined));
  return unique.map((t, i): ApiTokenConfig => {
    if (typeof t === 'string') return { token: t, name: `token-${i}`, role: 'admin' };
    const name = t.name ?? `token-${i}`;
    if (t.role === 'admin') return { token: t.token, name, role: 'admin' };
    const callcenter = t.callcenter ?? ccIds[0]!;
    if (t.role === 'agent') return { token: t.token, name, role: 'agent', callcenter, agent: t.agent! };
    const queues = t.queues ?? file.callcenters[callcenter]!.supervisors[t.supervisor!]!.queues;
    return { token: t.token, name, role: 'supervisor', callcenter, queues: [...queues], ...(t.supervisor === undefined ? {} : { supervisor: t.supervisor }) };
  });
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** The YAML text of the configuration file. */
  text: string;
  /** Where the text came from, for messages. */
  source?: string;
  env?: EnvOverrides;
}

/**
 * Parses, applies env overrides, validates and normalises. Throws {@link ConfigError}
 * listing every problem with the key it concerns.
 */
export function loadConfig({ text, source = 'config', env = {} }: LoadConfigOptions): Config {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new ConfigError([`${source}: larger than ${MAX_CONFIG_BYTES} bytes`]);
  let raw: unknown;
  try {
    // Aliases are capped so a hostile file cannot expand into gigabytes ("billion laughs").
    raw = parseYaml(text, { maxAliasCount: 100, prettyErrors: true });
  } catch (err) {
    throw new ConfigError([`${source}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`]);
  }
  if (raw === null || raw === undefined) raw = {};
  if (!isObject(raw)) throw new ConfigError([`${source}: the top level must be a mapping`]);
  applyEnv(raw, env);
  if (!validateFile(raw)) {
    const problems = [...new Set((validateFile.errors ?? []).map(describe))];
    throw new ConfigError(problems);
  }
  const file: FileConfig = raw;
  const problems: string[] = [];
  checkSemantics(file, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const callcenters: Record<string, CallCenterConfig> = {};
  for (const [ccId, cc] of Object.entries(file.callcenters)) {
    const agents: Record<string, AgentConfig> = {};
    for (const [id, a] of Object.entries(cc.agents))
      agents[id] = { id, name: a.name, extension: a.extension, password: a.password, queues: normaliseMemberships(a.queues) };
    const queues: CallCenterConfig['queues'] = {};
    for (const [id, q] of Object.entries(cc.queues)) queues[id] = { ...q, id };
    const supervisors: CallCenterConfig['supervisors'] = {};
    for (const [id, sv] of Object.entries(cc.supervisors)) supervisors[id] = { id, name: sv.name, extension: sv.extension, password: sv.password, queues: [...sv.queues] };
    callcenters[ccId] = { id: ccId, name: cc.name, queues, agents, supervisors, busyReasons: { ...cc.busyReasons }, numbers: { ...cc.numbers }, schedules: { ...cc.schedules }, outbound: { routes: [...cc.outbound.routes], failoverSeconds: cc.outbound.failoverSeconds } };
  }
  return {
    ...file,
    apiTokens: normaliseTokens(file),
    instanceId: file.instanceId ?? `ccs-${randomBytes(4).toString('hex')}`,
    callcenters,
  };
}
