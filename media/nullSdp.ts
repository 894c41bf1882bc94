/**
 * The answer used when no media server is reachable (DESIGN.md section 4): a valid SDP
 * answer that accepts no media, so the phone shows the call as answered (the FAC worked)
 * and then receives BYE. Each offered m= line is answered in order (RFC 3264 section 6
 * requires the same number of m= lines), inactive, on a null address.
 */

/** An inactive answer to `offer` (or a minimal audio one if there is no usable offer). */
export function nullSdpAnswer(offer: string | undefined, sessionId = Date.now()): string {
  const media = (offer ?? '')
    .split(/\r?\n/)
    .filter((l) => l.startsWith('m='))
    .map((l) => {
      // m=<media> <port> <proto> <fmt> ...: keep media, proto and the first format; port 0 would
      // reject the stream, so answer with a real-looking port but no address and inactive.
      const [media = 'audio', , proto = 'RTP/AVP', fmt = '0'] = l.slice(2).trim().split(/\s+/);
      return [`m=${media} 9 ${proto} ${fmt}`, 'a=inactive'];
    });
  const lines = [
    // drachtio-server only adds Content-Type: application/sdp when the body starts with v=0.
    'v=0',
    `o=ccswitch ${sessionId} ${sessionId} IN IP4 0.0.0.0`,
    's=ccswitch',
    'c=IN IP4 0.0.0.0',
    't=0 0',
    ...(media.length > 0 ? media.flat() : ['m=audio 9 RTP/AVP 0', 'a=inactive']),
  ];
  return lines.join('\r\n') + '\r\n';
}
