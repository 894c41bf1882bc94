import { parseTrunkAddress, TrunkTable, outboundUri } from '../../lib/sip/trunks';
import { loadConfig } from '../../lib/config/load';
import { ConfigError } from '../../lib/errors';

describe('trunk allow-list', () => {
  const table = new TrunkTable({
    carrier: { addresses: ['192.0.2.0/24', '2001:db8::/32'], callcenter: 'default' },
    pbx: { addresses: ['198.51.100.7'], callcenter: 'other' },
  });

  it('matches hosts inside a CIDR block and exact addresses, with their call center', () => {
    expect(table.match('192.0.2.200')).toEqual({ trunk: 'carrier', cc: 'default' });
    expect(table.match('2001:db8:1::5')).toEqual({ trunk: 'carrier', cc: 'default' });
    expect(table.match('198.51.100.7')).toEqual({ trunk: 'pbx', cc: 'other' });
  });

  it('does not match neighbours, other families or garbage', () => {
    expect(table.match('192.0.3.1')).toBeUndefined();
    expect(table.match('198.51.100.8')).toBeUndefined();
    expect(table.match('2001:db9::1')).toBeUndefined();
    expect(table.match('not-an-ip')).toBeUndefined();
    expect(table.match('')).toBeUndefined();
  });

  it.each([
    ['10.0.0.1/33', /prefix length must be 0..32/],
    ['10.0.0.1/x', /prefix length/],
    ['10.0.0/8', /not an IPv4 or IPv6 address/],
    ['host.example.com', /not an IPv4 or IPv6 address/],
    ['10.0.0.1/8/8', /not an address or CIDR block/],
    ['::1/129', /0..128/],
  ])('refuses %s', (text, why) => {
    const p = parseTrunkAddress(text);
    expect('error' in p && p.error).toMatch(why);
  });

  it('a configuration with a bad trunk address or unknown call center names the key', () => {
    const yaml = `
sip:
  trunks:
    carrier: { addresses: ["10.0.0.0/99"], callcenter: nowhere }
callcenters:
  default:
    queues: { "8000": { name: Sales } }
    agents: { "1001": { extension: "1001", password: "pw-1001", queues: ["8000"] } }
`;
    let err: unknown;
    try {
      loadConfig({ text: yaml, source: 'test' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/sip\.trunks\.carrier\.callcenter: unknown call center 'nowhere'/);
    expect(msg).toMatch(/sip\.trunks\.carrier\.addresses\.0: '10\.0\.0\.0\/99': prefix length must be 0\.\.32/);
  });
});

describe('outbound trunk of a call center', () => {
  const trunks = {
    inbound: { addresses: ['192.0.2.1'], callcenter: 'default' },
    carrier: { addresses: ['192.0.2.2'], callcenter: 'default', outbound: 'gw.example.net:5080;transport=tcp' },
    other: { addresses: ['192.0.2.3'], callcenter: 'other', outbound: '198.51.100.7' },
  };

  it('puts the number in the user part of the first outbound trunk of that call center, keeping its transport', () => {
    expect(outboundUri(trunks, 'default', '5551234')).toBe('sip:5551234@gw.example.net:5080;transport=tcp');
    expect(outboundUri(trunks, 'other', '+4930123')).toBe('sip:+4930123@198.51.100.7');
  });

  it('has none for a call center without an outbound trunk', () => {
    expect(outboundUri(trunks, 'nobody', '5551234')).toBeUndefined();
  });
});
