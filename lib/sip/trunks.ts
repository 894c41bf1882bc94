/**
 * SIP trunks recognised by source address (issue 3: trunks are authenticated by an
 * allow-list, agents' devices by digest). Addresses are IPv4/IPv6 hosts or CIDR blocks.
 */
import { BlockList, isIP } from 'node:net';

/** A trunk as configured (`sip.trunks.<name>`; the fields routing reads). */
export interface TrunkConfig {
  addresses: string[];
  callcenter: string;
  /** `host[:port][;transport=...]` (one or several, tried in order) that calls to outside numbers are sent to. */
  outbound?: string | string[] | undefined;
  /** Calling numbers that may be presented on calls out; the first is the default. */
  callerIds?: string[] | undefined;
  /** Send P-Asserted-Identity with the calling number. */
  pai?: boolean | undefined;
}

/** The outbound addresses of a trunk, in the order they are tried. */
export function outboundAddresses(t: Pick<TrunkConfig, 'outbound'>): string[] {
  return t.outbound === undefined ? [] : typeof t.outbound === 'string' ? [t.outbound] : [...t.outbound];
}

/** A call center's outbound routing (`callcenters.<cc>.outbound`). */
export interface OutboundRouting {
  routes: readonly { prefix: string; trunk: string; strip: number; prepend: string }[];
  failoverSeconds: number;
}

/** A trunk calls to outside numbers may take. */
export interface OutboundTrunk {
  name: string;
  /** `host[:port][;params]` of each far end, in order. */
  targets: string[];
  callerIds: readonly string[];
  pai: boolean;
}

/** One try of a call to an outside number: a trunk's address and the number as that trunk wants it. */
export interface DialAttempt {
  trunk: OutboundTrunk;
  address: string;
  /** The number after the route's strip / prepend. */
  number: string;
  uri: string;
}

function trunkOf(trunks: Record<string, TrunkConfig>, name: string): OutboundTrunk | undefined {
  const t = Object.hasOwn(trunks, name) ? trunks[name] : undefined;
  if (t === undefined) return undefined;
  return { name, targets: outboundAddresses(t), callerIds: t.callerIds ?? [], pai: t.pai === true };
}

/**
 * The trunks a call to `number` of call center `cc` may take, in order, each with the number
 * as the route rewrites it: the routes whose prefix matches (in their order) or, without any
 * routes, every trunk of the call center with an `outbound` address (in configuration order).
 */
export function outboundTrunks(trunks: Record<string, TrunkConfig>, cc: string, routing: OutboundRouting | undefined, number: string): { trunk: OutboundTrunk; number: string }[] {
  if (routing === undefined || routing.routes.length === 0) {
    return Object.entries(trunks)
      .filter(([, t]) => t.callcenter === cc && outboundAddresses(t).length > 0)
      .map(([name]) => ({ trunk: trunkOf(trunks, name)!, number }));
  }
  const out: { trunk: OutboundTrunk; number: string }[] = [];
  for (const r of routing.routes) {
    if (!number.startsWith(r.prefix)) continue;
    const trunk = trunkOf(trunks, r.trunk);
    if (trunk === undefined || trunk.targets.length === 0) continue;
    out.push({ trunk, number: r.prepend + number.slice(r.strip) });
  }
  return out;
}

/** The first trunk a call to `number` takes (its caller ids are what a REST `from` is checked against). */
export function outboundTrunk(trunks: Record<string, TrunkConfig>, cc: string, routing?: OutboundRouting, number = ''): OutboundTrunk | undefined {
  return outboundTrunks(trunks, cc, routing, number)[0]?.trunk;
}

/** The request URI of a call to `number` at one trunk address. */
export function addressUri(address: string, number: string): string {
  const [hostport, ...params] = address.split(';');
  return `sip:${number}@${hostport}${params.map((x) => `;${x}`).join('')}`;
}

/** The request URI of a call to `number` through `trunk`'s first address. */
export function trunkUri(trunk: OutboundTrunk, number: string): string {
  return addressUri(trunk.targets[0]!, number);
}

/**
 * Every try of a call to `number`, in order: each trunk {@link outboundTrunks} gives, each of
 * its addresses, those `isUp` reports down (failed OPTIONS pings) left out.
 */
export function dialAttempts(trunks: Record<string, TrunkConfig>, cc: string, routing: OutboundRouting | undefined, number: string, isUp: (trunk: string, address: string) => boolean = () => true): DialAttempt[] {
  const out: DialAttempt[] = [];
  for (const { trunk, number: n } of outboundTrunks(trunks, cc, routing, number))
    for (const address of trunk.targets) if (isUp(trunk.name, address)) out.push({ trunk, address, number: n, uri: addressUri(address, n) });
  return out;
}

/** An outside number as it may be dialed: digits with an optional leading +, or * and #. */
export const OUTSIDE_NUMBER = /^\+?[0-9*#]{1,32}$/;

/**
 * The request URI of a call to outside `number` of call center `cc`: through the first trunk
 * of that call center with an `outbound` target, or undefined when it has none.
 */
export function outboundUri(trunks: Record<string, TrunkConfig>, cc: string, number: string): string | undefined {
  const t = outboundTrunk(trunks, cc);
  return t === undefined ? undefined : trunkUri(t, number);
}

/** A parsed allow-list entry, or the reason it is not one. */
export function parseTrunkAddress(text: string): { ip: string; prefix: number; family: 'ipv4' | 'ipv6' } | { error: string } {
  const [ip = '', bits, extra] = text.trim().split('/');
  if (extra !== undefined) return { error: `'${text}' is not an address or CIDR block` };
  const v = isIP(ip);
  if (v === 0) return { error: `'${text}' is not an IPv4 or IPv6 address` };
  const max = v === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return { error: `'${text}': prefix length must be 0..${max}` };
  return { ip, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/** The trunk a source address belongs to. */
export interface TrunkMatch {
  trunk: string;
  cc: string;
}

/** Looks up trunks by source address; the first configured trunk that matches wins. */
export class TrunkTable {
  private readonly lists: { name: string; cc: string; list: BlockList }[] = [];

  /** Builds the table; the entries were validated with the configuration. */
  constructor(trunks: Record<string, TrunkConfig>) {
    for (const [name, t] of Object.entries(trunks)) {
      const list = new BlockList();
      for (const a of t.addresses) {
        const p = parseTrunkAddress(a);
        if ('error' in p) throw new Error(`trunk ${name}: ${p.error}`);
        list.addSubnet(p.ip, p.prefix, p.family);
      }
      this.lists.push({ name, cc: t.callcenter, list });
    }
  }

  /** The trunk `address` belongs to, if any. */
  match(address: string): TrunkMatch | undefined {
    const v = isIP(address);
    if (v === 0) return undefined;
    const family = v === 4 ? 'ipv4' : 'ipv6';
    for (const t of this.lists) if (t.list.check(address, family)) return { trunk: t.name, cc: t.cc };
    return undefined;
  }
}
