import { nullSdpAnswer } from '../../media/nullSdp';

describe('null SDP answer', () => {
  const offer = 'v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=sendrecv\r\nm=video 4002 RTP/AVP 96\r\n';

  it('starts with v=0 and uses the null address', () => {
    const a = nullSdpAnswer(offer, 7);
    expect(a.startsWith('v=0\r\n')).toBe(true);
    expect(a).toContain('c=IN IP4 0.0.0.0\r\n');
  });

  it('answers every offered stream in order, inactive, with its first format', () => {
    const a = nullSdpAnswer(offer, 7);
    expect(a.split('\r\n').filter((l) => l.startsWith('m=') || l.startsWith('a='))).toEqual(['m=audio 9 RTP/AVP 8', 'a=inactive', 'm=video 9 RTP/AVP 96', 'a=inactive']);
  });

  it('answers an offerless INVITE with one inactive audio stream', () => {
    expect(nullSdpAnswer(undefined, 7)).toContain('m=audio 9 RTP/AVP 0\r\na=inactive\r\n');
  });
});
