/**
 * Trunk routes (admin only): each trunk of a call center with its inbound allow-list, its
 * outbound addresses as this instance's OPTIONS pings see them, and its carrier
 * registration as Redis records it (the same on every instance).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../../lib/config/schema';
import { NotFoundError } from '../../../lib/errors';
import { carrierAor, type CarrierRegistrationView } from '../../../lib/sip/carrierRegistration';
import { outboundAddresses } from '../../../lib/sip/trunks';
import type { TrunkHealthView } from '../../sip/trunkHealth';
import { principalOf } from '../principal';
import { CcParams, errorResponses, type CcParamsT } from '../schemas';

/** What the trunk routes need. */
export interface TrunkRouteDeps {
  config: Config;
  /** This instance's OPTIONS pings; absent without a drachtio-server (then `up` is null). */
  trunkHealth?: { view(): TrunkHealthView[] } | undefined;
  /** The carrier registrations' status (from Redis). */
  registrations?: { views(cc?: string): Promise<CarrierRegistrationView[]> } | undefined;
}

const NullableInt = (description: string) => Type.Union([Type.Integer(), Type.Null()], { description });
const NullableString = (description: string) => Type.Union([Type.String(), Type.Null()], { description });

/** One outbound address. */
export const TrunkAddressBody = Type.Object({
  address: Type.String({ description: 'host[:port][;transport=…] as configured' }),
  up: Type.Union([Type.Boolean(), Type.Null()], { description: 'Whether calls may use it now (failed OPTIONS pings make it down); null: this instance has no drachtio-server and does not ping' }),
  pinged: Type.Boolean({ description: 'False when the trunk has pingSeconds 0 (always up)' }),
  failures: Type.Integer({ description: 'Pings in a row without an answer' }),
  lastPingAt: NullableInt('When the last ping ended (ms since epoch, this instance\'s clock)'),
  lastStatus: NullableInt('SIP status of the last answer (any final response counts)'),
  lastError: NullableString('Why the last ping got no answer'),
  rttMs: NullableInt('Round trip of the last answered ping'),
});

/** A trunk's carrier registration. */
export const TrunkRegistrationBody = Type.Object({
  state: Type.Union([Type.Literal('registered'), Type.Literal('failed'), Type.Literal('unregistered')]),
  aor: Type.String({ description: 'sip:<user>@<domain>' }),
  registrar: Type.String(),
  holder: NullableString('The instance that keeps the registration (one at a time), null between holders'),
  expiresAt: NullableInt('When the binding at the carrier expires (ms since epoch, Redis clock)'),
  lastStatus: NullableInt('Final status of the last REGISTER'),
  lastError: NullableString('What went wrong with the last REGISTER'),
  lastAt: NullableInt('When the last REGISTER ended (ms since epoch, Redis clock)'),
});

export const TrunkBody = Type.Object({
  name: Type.String(),
  inbound: Type.Array(Type.String(), { description: 'Source addresses (IPs, CIDR blocks) whose calls belong to this trunk' }),
  outbound: Type.Array(TrunkAddressBody, { description: 'Where calls out go, in the order they are tried' }),
  register: Type.Union([TrunkRegistrationBody, Type.Null()], { description: 'Registration to the carrier; null when the trunk does not register' }),
});

export const TrunksBody = Type.Object({ trunks: Type.Array(TrunkBody) });
export type TrunksBodyT = Static<typeof TrunksBody>;

/** Registers `GET /callcenter/{cc}/trunks`. */
export function trunkRoutes(app: FastifyInstance, deps: TrunkRouteDeps): void {
  app.get<{ Params: CcParamsT }>(
    '/callcenter/:cc/trunks',
    { schema: { tags: ['trunks'], summary: 'The call center\'s trunks: inbound addresses, outbound addresses with their OPTIONS health, carrier registration (admin)', params: CcParams, response: { 200: TrunksBody, ...errorResponses(403, 404, 503) } } },
    async (req): Promise<TrunksBodyT> => {
      const cc = req.params.cc;
      if (!Object.hasOwn(deps.config.callcenters, cc)) throw new NotFoundError('callcenter', cc);
      principalOf(req).requireAdmin('see trunks');
      const health = new Map((deps.trunkHealth?.view() ?? []).map((v) => [`${v.trunk}\u0000${v.address}`, v]));
      const regs = new Map(((await deps.registrations?.views(cc)) ?? []).map((r) => [r.trunk, r]));
      const trunks = Object.entries(deps.config.sip.trunks).filter(([, t]) => t.callcenter === cc);
      return {
        trunks: trunks.map(([name, t]) => {
          const reg = regs.get(name);
          return {
            name,
            inbound: [...t.addresses],
            outbound: outboundAddresses(t).map((address) => {
              const h = health.get(`${name}\u0000${address}`);
              return h === undefined
                ? { address, up: null, pinged: false, failures: 0, lastPingAt: null, lastStatus: null, lastError: null, rttMs: null }
                : { address, up: h.up, pinged: h.pinged, failures: h.failures, lastPingAt: h.lastPingAt, lastStatus: h.lastStatus, lastError: h.lastError, rttMs: h.rttMs };
            }),
            register:
              t.register === undefined
                ? null
                : {
                    state: reg?.state ?? 'unregistered',
                    aor: carrierAor(t.register),
                    registrar: t.register.registrar,
                    holder: reg?.holder ?? null,
                    expiresAt: reg?.expiresAt ?? null,
                    lastStatus: reg?.lastStatus ?? null,
                    lastError: reg?.lastError ?? null,
                    lastAt: reg?.lastAt ?? null,
                  },
          };
        }),
      };
    },
  );
}

