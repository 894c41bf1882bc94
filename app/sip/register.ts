/** The REGISTER handler: authenticate → parse bindings → store → 200 OK listing them. */
import type { Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { IntervalTooBriefError, RegistrationRefusedError, type Registrar } from '../../lib/sip/registrar';
import type { SipAuthenticator } from './auth';
import type { SipRequest, SipResponse } from './types';

interface ParsedContact {
  uri: string;
  params?: Record<string, string | null>;
}

/** Dependencies of the REGISTER handler. */
export interface RegisterDeps {
  config: Config;
  auth: SipAuthenticator;
  registrar: Registrar;
  logger: Logger;
  /** The drachtio-server this instance is connected to (its SIP hostports). */
  server: () => string;
}

/** User part of the URI in a To/From header value (`"Name" <sip:user@host>;tag=x` or a bare URI). */
function userOf(header: string): string | undefined {
  return /(?:^|[<\s])sips?:([^@;>\s]+)@/i.exec(header)?.[1];
}

/** Transport the device used: drachtio reports WebSocket as tcp, so read the top Via. */
function transportOf(req: SipRequest): string {
  const via = req.get('Via') ?? '';
  const m = /^SIP\/2\.0\/([A-Za-z]+)/i.exec(via.trim());
  return (m?.[1] ?? req.protocol).toLowerCase();
}

/** Builds the handler. */
export function registerHandler(deps: RegisterDeps) {
  return async (req: SipRequest, res: SipResponse): Promise<void> => {
    const log = deps.logger.child({ callId: req.callId, source: `${req.source_address}:${req.source_port}` });
    const auth = await deps.auth.authenticate(req, 'register');
    if (!auth.ok) {
      res.send(auth.status, auth.reason, auth.headers ? { headers: auth.headers } : undefined);
      return;
    }
    const toUser = userOf(req.get('To') ?? '');
    if (toUser !== auth.agent) {
      log.warn({ agent: auth.agent, toUser }, 'REGISTER for another user refused');
      res.send(403, 'Forbidden');
      return;
    }
    const { sip } = deps.config;
    const expiresHeader = req.has('Expires') ? Number(req.get('Expires')) : undefined;
    const rawContact = (req.get('Contact') ?? '').trim();
    const cseq = Number((req.get('CSeq') ?? '0').trim().split(/\s+/)[0]);
    let contacts: '*' | { uri: string; expires: number }[];
    if (rawContact === '*') {
      if (expiresHeader !== 0) {
        res.send(400, 'Contact * Requires Expires 0');
        return;
      }
      contacts = '*';
    } else if (rawContact === '') {
      contacts = []; // a query: answer with the current bindings
    } else {
      const parsed = req.getParsedHeader('Contact') as ParsedContact[];
      contacts = parsed.map((c) => {
        const p = c.params?.expires;
        const expires = p !== undefined && p !== null ? Number(p) : (expiresHeader ?? sip.defaultExpires);
        return { uri: c.uri, expires: Number.isFinite(expires) && expires >= 0 ? Math.floor(expires) : sip.defaultExpires };
      });
    }
    try {
      const bindings = await deps.registrar.register(auth.cc, {
        agent: auth.agent,
        contacts,
        callId: req.callId,
        cseq: Number.isFinite(cseq) ? cseq : 0,
        source: `${req.source_address}:${req.source_port}`,
        transport: transportOf(req),
        server: deps.server(),
        userAgent: req.get('User-Agent') ?? '',
      });
      log.info({ agent: auth.agent, contacts: bindings.length }, 'registered');
      // Each contact with its own expires: SIP.js requires it, and drachtio-server keys its
      // cache of the device's WebSocket/TCP connection on it.
      const headers: Record<string, string> = {};
      if (bindings.length > 0) headers.Contact = bindings.map((b) => `<${b.contact}>;expires=${b.expires}`).join(', ');
      res.send(200, 'OK', { headers });
    } catch (err) {
      if (err instanceof IntervalTooBriefError) res.send(423, 'Interval Too Brief', { headers: { 'Min-Expires': String(err.minExpires) } });
      else if (err instanceof RegistrationRefusedError && err.why === 'out_of_order') res.send(500, 'Out Of Order Request');
      else if (err instanceof RegistrationRefusedError) res.send(403, 'Too Many Contacts');
      else {
        log.error({ err }, 'REGISTER failed');
        res.send(503, 'Service Unavailable', { headers: { 'Retry-After': '5' } });
      }
    }
  };
}
