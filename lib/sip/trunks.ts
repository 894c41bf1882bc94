/**
 * SIP trunks recognised by source address (issue 3: trunks are authenticated by an
 * allow-list, agents' devices by digest). Addresses are IPv4/IPv6 hosts or CIDR blocks.
 */
import { BlockList, isIP } from 'node:net';

/** A trunk as configured. */
export interface TrunkConfig {
  addresses: string[];
  callcenter: string;
  /** `host[:port][;transport=...]` that calls to outside numbers are sent to. */
  outbound?: string | undefined;
  /** Calling numbers that may be presented on calls out; the first is the default. */
  callerIds?: string[] | undefined;
}

/** The trunk a call center's calls to outside numbers go through. */
export interface OutboundTrunk {
  name: string;
  /** `host[:port][;params]` of the far end. */
  target: string;
  callerIds: readonly string[];
}

/** The first trunk of `cc` with an `outbound` target, if any. */
export function outboundTrunk(trunks: Record<string, TrunkConfig>, cc: string): OutboundTrunk | undefined {
  const e = Object.entries(trunks).find(([, x]) => x.callcenter === cc && x.outbound !== undefined);
  if (e === undefined) return undefined;
  const [name, t] = e;
  return { name, target: t.outbound!, callerIds: t.callerIds ?? [] };
}

/** The request URI of a call to `number` through `trunk`. */
export function trunkUri(trunk: OutboundTrunk, number: string): string {
  const [hostport, ...params] = trunk.target.split(';');
  return `sip:${number}@${hostport}${params.map((x) => `;${x}`).join('')}`;
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
