/**
 * The `enqueue` / `queue` XML of seed 002 (DESIGN.md section 8): the target-agent selection
 * conditions given to `call_agent` and `forward_agent` (`enqueue`) and `xfer_agent` (`queue`), e.g.
 * `<enqueue queue="8000" priority="5" timeout="30"><agent id="1002"/><skill name="billing" min="3"/></enqueue>`.
 *
 * The input comes from API clients, so this is a hand-written parser of a strict XML subset
 * rather than a general XML library: there is no DTD, no entity declaration and no external
 * resource anywhere in the code path, so billion-laughs and XXE payloads cannot expand — they
 * are refused on sight. Accepted grammar (anything else is an {@link EnqueueXmlError}):
 *
 * ```
 * document  := BOM? xmldecl? misc* root misc*
 * xmldecl   := '<?xml' S 'version' Eq ('"1.0"'|"'1.0'") (S 'encoding' Eq quoted-name)? (S 'standalone' Eq ('yes'|'no') quoted)? S? '?>'
 * misc      := whitespace | comment                          (comment: '<!--' … '-->', no '--' inside)
 * root      := '<enqueue' attrs '/>' | '<enqueue' attrs '>' (misc | child)* '</enqueue' S? '>'
 *              (or the same with 'queue' as the element name)
 * child     := '<agent' attrs ('/>' | '>' misc* '</agent' S? '>')
 *            | '<skill' attrs ('/>' | '>' misc* '</skill' S? '>')
 * attrs     := (S name S? '=' S? ('"' value '"' | "'" value "'"))* S?
 * ```
 *
 * Attributes (all values are exact: no surrounding spaces, integers in plain decimal):
 * - root: `queue` (required, 2-16 digits), `priority` (integer {@link PRIORITY_MIN}..{@link PRIORITY_MAX},
 *   default {@link DEFAULT_PRIORITY}; larger is served earlier), `timeout` (seconds the task may wait
 *   for an agent, integer {@link TIMEOUT_MIN_SECONDS}..{@link TIMEOUT_MAX_SECONDS}; absent = the queue's own limit).
 * - `agent`: `id` (required, a config agent id). Listing agents restricts the task to them.
 * - `skill`: `name` (required, a config skill name), `min`, `max` (integers 0..100, inclusive, min ≤ max).
 *
 * Limits: {@link MAX_ENQUEUE_XML_BYTES} bytes of UTF-8, {@link MAX_ENQUEUE_CHILDREN} child elements, no
 * duplicate attribute, agent id or skill name. In attribute values only `&lt; &gt; &amp; &quot; &apos;`
 * and numeric character references are decoded. Text content, CDATA, processing instructions
 * (other than the leading XML declaration), DOCTYPE and ENTITY declarations are refused.
 */
import { InvalidRequestError } from '../errors';
import type { SkillCondition, TaskConditions } from './strategies';

/** Largest document accepted, in UTF-8 bytes; checked before any parsing. */
export const MAX_ENQUEUE_XML_BYTES = 8 * 1024;
/** Most `<agent>` plus `<skill>` elements one document may hold. */
export const MAX_ENQUEUE_CHILDREN = 64;
/** Bounds of `priority` (inclusive); larger is served earlier. */
export const PRIORITY_MIN = 0;
export const PRIORITY_MAX = 100;
/** `priority` when the attribute is absent. */
export const DEFAULT_PRIORITY = 0;
/** Bounds of `timeout` in seconds (inclusive): at least a second, at most a day (the queue `maxWaitSeconds` cap). */
export const TIMEOUT_MIN_SECONDS = 1;
export const TIMEOUT_MAX_SECONDS = 86400;
/** Bounds of skill levels, as in the config schema. */
export const SKILL_LEVEL_MIN = 0;
export const SKILL_LEVEL_MAX = 100;

/** What is wrong with a refused document, machine-readable (`details.problem`). */
export type EnqueueXmlProblem =
  | 'not_a_string'
  | 'too_large'
  | 'invalid_character'
  | 'doctype'
  | 'entity_declaration'
  | 'processing_instruction'
  | 'cdata'
  | 'malformed'
  | 'text_content'
  | 'undefined_entity'
  | 'unknown_element'
  | 'unknown_attribute'
  | 'duplicate_attribute'
  | 'missing_attribute'
  | 'invalid_value'
  | 'out_of_range'
  | 'too_many_children'
  | 'duplicate_condition';

/** A refused `enqueue` / `queue` document (REST 422 via `invalid_request`). */
export class EnqueueXmlError extends InvalidRequestError {
  constructor(
    readonly problem: EnqueueXmlProblem,
    message: string,
    readonly offset?: number,
  ) {
    super(offset === undefined ? `enqueue XML: ${message}` : `enqueue XML: ${message} (at offset ${offset})`, {
      problem,
      ...(offset === undefined ? {} : { offset }),
    });
  }
}

/** A parsed `enqueue` / `queue` document. */
export interface EnqueueSpec {
  /** Which root element the document used; both mean the same. */
  root: RootName;
  /** Queue number the task is placed in. */
  queue: string;
  priority: number;
  /** True when the document set `priority` (a forward keeps the task's own priority otherwise). */
  prioritySet: boolean;
  /** How long the task may wait for an agent; absent = the queue's `maxWaitSeconds`. */
  timeoutSeconds?: number;
  /** Target-agent conditions; a field is present only when the document has such elements. */
  conditions: TaskConditions;
}

type RootName = 'enqueue' | 'queue';

const ROOTS: ReadonlySet<string> = new Set<RootName>(['enqueue', 'queue']);
const ATTRIBUTES: Readonly<Record<string, ReadonlySet<string>>> = {
  enqueue: new Set(['queue', 'priority', 'timeout']),
  queue: new Set(['queue', 'priority', 'timeout']),
  agent: new Set(['id']),
  skill: new Set(['name', 'min', 'max']),
};

const QUEUE_NUMBER = /^[0-9]{2,16}$/;
/** Agent ids and skill names, as the config schema allows them. */
const ID = /^[A-Za-z0-9_.-]{1,64}$/;
const INTEGER = /^-?[0-9]+$/;
const NAME = /[A-Za-z_:][A-Za-z0-9._:-]*/y;
const WHITESPACE = /[ \t\r\n]*/y;
/** Anything that is not an XML 1.0 Char (control characters, lone surrogates, U+FFFE/U+FFFF). */
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Parses and validates an `enqueue` / `queue` document. Throws {@link EnqueueXmlError} naming
 * the first problem found; never returns a partial result.
 */
export function parseEnqueueXml(xml: string): EnqueueSpec {
  if (typeof xml !== 'string') throw new EnqueueXmlError('not_a_string', 'expected an XML string');
  const bytes = Buffer.byteLength(xml, 'utf8');
  if (bytes > MAX_ENQUEUE_XML_BYTES) throw new EnqueueXmlError('too_large', `document is ${bytes} bytes, the limit is ${MAX_ENQUEUE_XML_BYTES}`);
  const bad = NOT_XML_CHAR.exec(xml);
  if (bad !== null) {
    const cp = bad[0].codePointAt(0) ?? 0;
    throw new EnqueueXmlError('invalid_character', `character U+${cp.toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`, bad.index);
  }
  // Refused wherever they appear (even inside a comment), before the parser runs: no DTD
  // construct is ever looked at, let alone expanded.
  const dtd = /<!(DOCTYPE|ENTITY)/i.exec(xml);
  if (dtd !== null) {
    const isDoctype = dtd[1]!.toUpperCase() === 'DOCTYPE';
    throw new EnqueueXmlError(
      isDoctype ? 'doctype' : 'entity_declaration',
      isDoctype ? 'DOCTYPE declarations are not allowed' : 'ENTITY declarations are not allowed',
      dtd.index,
    );
  }
  return new Parser(xml).document();
}

interface Element {
  name: string;
  offset: number;
  attrs: Map<string, { value: string; offset: number }>;
}

/** Recursive-descent parser over the grammar in the module comment; `pos` only moves forward. */
class Parser {
  private pos = 0;

  constructor(private readonly s: string) {}

  document(): EnqueueSpec {
    if (this.s.startsWith('\uFEFF')) this.pos = 1;
    if (/^<\?xml[ \t\r\n?]/.test(this.s.slice(this.pos, this.pos + 6))) this.xmlDecl();
    this.misc('before the root element');
    if (this.pos >= this.s.length) throw this.fail('malformed', 'no root element: expected <enqueue> or <queue>');
    const root = this.startTag();
    if (!ROOTS.has(root.el.name)) throw new EnqueueXmlError('unknown_element', `root element must be <enqueue> or <queue>, not <${root.el.name}>`, root.el.offset);
    const spec = this.rootSpec(root.el);
    if (!root.selfClosing) this.rootContent(root.el, spec);
    this.misc('after the root element');
    if (this.pos < this.s.length) throw this.fail('malformed', `unexpected content after </${root.el.name}>`);
    return spec;
  }

  /** `<?xml version="1.0" encoding="…" standalone="…"?>`; attributes in that order, version required. */
  private xmlDecl(): void {
    const start = this.pos;
    this.pos += 5;
    const seen: string[] = [];
    for (;;) {
      const hadSpace = this.space();
      if (this.s.startsWith('?>', this.pos)) {
        this.pos += 2;
        break;
      }
      if (this.pos >= this.s.length) throw this.fail('malformed', 'unclosed XML declaration');
      if (!hadSpace) throw this.fail('malformed', 'expected whitespace between XML declaration attributes');
      const at = this.pos;
      const name = this.name('an XML declaration attribute');
      const value = this.attrValue();
      const order = ['version', 'encoding', 'standalone'];
      const idx = order.indexOf(name);
      if (idx < 0) throw new EnqueueXmlError('malformed', `unknown XML declaration attribute '${name}'`, at);
      if (seen.includes(name)) throw new EnqueueXmlError('duplicate_attribute', `duplicate XML declaration attribute '${name}'`, at);
      if (seen.some((n) => order.indexOf(n) > idx) || (idx > 0 && !seen.includes('version'))) {
        throw new EnqueueXmlError('malformed', 'XML declaration attributes must be version, encoding, standalone in that order', at);
      }
      seen.push(name);
      if (name === 'version' && value !== '1.0') throw new EnqueueXmlError('invalid_value', `XML version must be 1.0, not '${value}'`, at);
      if (name === 'encoding' && !/^[A-Za-z][A-Za-z0-9._-]*$/.test(value)) throw new EnqueueXmlError('invalid_value', `invalid encoding name '${value}'`, at);
      if (name === 'standalone' && value !== 'yes' && value !== 'no') throw new EnqueueXmlError('invalid_value', `standalone must be yes or no, not '${value}'`, at);
    }
    if (!seen.includes('version')) throw new EnqueueXmlError('malformed', 'XML declaration without version', start);
  }

  /** Whitespace and comments; anything else starting with `<!` or `<?` is refused by name. */
  private misc(where: string): void {
    for (;;) {
      this.space();
      if (this.s.startsWith('<!--', this.pos)) this.comment();
      else if (this.s.startsWith('<![CDATA[', this.pos)) throw this.fail('cdata', `CDATA sections are not allowed (${where})`);
      else if (this.s.startsWith('<?', this.pos)) throw this.fail('processing_instruction', 'processing instructions are not allowed (only a leading <?xml …?> declaration)');
      else if (this.s.startsWith('<!', this.pos)) throw this.fail('malformed', `markup declarations are not allowed (${where})`);
      else return;
    }
  }

  private comment(): void {
    const start = this.pos;
    const end = this.s.indexOf('-->', start + 4);
    if (end < 0) throw this.fail('malformed', 'unclosed comment');
    // XML 1.0: '--' may not occur inside a comment, and its text may not end in '-' ('--->').
    const text = this.s.slice(start + 4, end);
    if (text.includes('--') || text.endsWith('-')) throw this.fail('malformed', "'--' is not allowed inside a comment");
    this.pos = end + 3;
  }

  /** `<name attrs>` or `<name attrs/>`; `pos` is at the `<`. */
  private startTag(): { el: Element; selfClosing: boolean } {
    const offset = this.pos;
    if (this.s[this.pos] !== '<') throw this.fail('malformed', `expected '<'`);
    this.pos++;
    const name = this.name('an element name');
    const el: Element = { name, offset, attrs: new Map() };
    for (;;) {
      const hadSpace = this.space();
      if (this.s.startsWith('/>', this.pos)) {
        this.pos += 2;
        return { el, selfClosing: true };
      }
      if (this.s[this.pos] === '>') {
        this.pos++;
        return { el, selfClosing: false };
      }
      if (this.pos >= this.s.length) throw new EnqueueXmlError('malformed', `unexpected end of input inside the <${name}> tag`, offset);
      if (!hadSpace) throw this.fail('malformed', `expected whitespace, '>' or '/>' in the <${name}> tag`);
      const at = this.pos;
      const attr = this.name('an attribute name');
      const value = this.attrValue();
      if (el.attrs.has(attr)) throw new EnqueueXmlError('duplicate_attribute', `duplicate attribute '${attr}' on <${name}>`, at);
      el.attrs.set(attr, { value, offset: at });
    }
  }

  /** Content of the root: whitespace, comments, `<agent>` and `<skill>` children, then the end tag. */
  private rootContent(root: Element, spec: EnqueueSpec): void {
    const agents: string[] = [];
    const skills: SkillCondition[] = [];
    let children = 0;
    for (;;) {
      this.misc(`inside <${root.name}>`);
      if (this.pos >= this.s.length) throw new EnqueueXmlError('malformed', `unexpected end of input: <${root.name}> is not closed`, root.offset);
      if (this.s.startsWith('</', this.pos)) {
        this.endTag(root);
        break;
      }
      if (this.s[this.pos] !== '<') throw this.fail('text_content', `text is not allowed inside <${root.name}>`);
      const child = this.startTag();
      if (child.el.name !== 'agent' && child.el.name !== 'skill') {
        throw new EnqueueXmlError('unknown_element', `unknown element <${child.el.name}> inside <${root.name}> (expected <agent> or <skill>)`, child.el.offset);
      }
      if (++children > MAX_ENQUEUE_CHILDREN) throw new EnqueueXmlError('too_many_children', `more than ${MAX_ENQUEUE_CHILDREN} child elements`, child.el.offset);
      this.checkAttributes(child.el);
      if (child.el.name === 'agent') {
        const id = this.required(child.el, 'id');
        if (!ID.test(id.value)) throw new EnqueueXmlError('invalid_value', `agent id '${id.value}' is not a valid agent id`, id.offset);
        if (agents.includes(id.value)) throw new EnqueueXmlError('duplicate_condition', `agent '${id.value}' is listed twice`, child.el.offset);
        agents.push(id.value);
      } else {
        const name = this.required(child.el, 'name');
        if (!ID.test(name.value)) throw new EnqueueXmlError('invalid_value', `skill name '${name.value}' is not a valid skill name`, name.offset);
        if (skills.some((s) => s.name === name.value)) throw new EnqueueXmlError('duplicate_condition', `skill '${name.value}' is listed twice`, child.el.offset);
        const cond: SkillCondition = { name: name.value };
        const min = this.integer(child.el, 'min', SKILL_LEVEL_MIN, SKILL_LEVEL_MAX);
        const max = this.integer(child.el, 'max', SKILL_LEVEL_MIN, SKILL_LEVEL_MAX);
        if (min !== undefined) cond.min = min;
        if (max !== undefined) cond.max = max;
        if (min !== undefined && max !== undefined && min > max) {
          throw new EnqueueXmlError('out_of_range', `skill '${name.value}': min ${min} is greater than max ${max}`, child.el.offset);
        }
        skills.push(cond);
      }
      if (!child.selfClosing) {
        this.misc(`inside <${child.el.name}>`);
        if (this.pos >= this.s.length) throw new EnqueueXmlError('malformed', `unexpected end of input: <${child.el.name}> is not closed`, child.el.offset);
        if (!this.s.startsWith('</', this.pos)) {
          throw this.fail(this.s[this.pos] === '<' ? 'malformed' : 'text_content', `<${child.el.name}> takes no content`);
        }
        this.endTag(child.el);
      }
    }
    if (agents.length > 0) spec.conditions.agents = agents;
    if (skills.length > 0) spec.conditions.skills = skills;
  }

  private endTag(open: Element): void {
    const at = this.pos;
    this.pos += 2;
    const name = this.name('an element name');
    this.space();
    if (this.s[this.pos] !== '>') throw this.fail('malformed', `expected '>' to end </${name}>`);
    this.pos++;
    if (name !== open.name) throw new EnqueueXmlError('malformed', `</${name}> does not close <${open.name}>`, at);
  }

  private rootSpec(root: Element): EnqueueSpec {
    this.checkAttributes(root);
    const queue = this.required(root, 'queue');
    if (!QUEUE_NUMBER.test(queue.value)) throw new EnqueueXmlError('invalid_value', `queue '${queue.value}' is not a queue number (2-16 digits)`, queue.offset);
    const spec: EnqueueSpec = {
      root: root.name as RootName,
      queue: queue.value,
      priority: this.integer(root, 'priority', PRIORITY_MIN, PRIORITY_MAX) ?? DEFAULT_PRIORITY,
      prioritySet: root.attrs.has('priority'),
      conditions: {},
    };
    const timeout = this.integer(root, 'timeout', TIMEOUT_MIN_SECONDS, TIMEOUT_MAX_SECONDS);
    if (timeout !== undefined) spec.timeoutSeconds = timeout;
    return spec;
  }

  private checkAttributes(el: Element): void {
    const allowed = ATTRIBUTES[el.name];
    for (const [name, { offset }] of el.attrs) {
      if (allowed?.has(name) !== true) {
        throw new EnqueueXmlError('unknown_attribute', `unknown attribute '${name}' on <${el.name}> (allowed: ${[...(allowed ?? [])].join(', ')})`, offset);
      }
    }
  }

  private required(el: Element, attr: string): { value: string; offset: number } {
    const a = el.attrs.get(attr);
    if (a === undefined) throw new EnqueueXmlError('missing_attribute', `<${el.name}> requires the '${attr}' attribute`, el.offset);
    return a;
  }

  private integer(el: Element, attr: string, min: number, max: number): number | undefined {
    const a = el.attrs.get(attr);
    if (a === undefined) return undefined;
    if (!INTEGER.test(a.value)) throw new EnqueueXmlError('invalid_value', `${attr} on <${el.name}> must be an integer, not '${a.value}'`, a.offset);
    const n = Number(a.value);
    if (n < min || n > max) throw new EnqueueXmlError('out_of_range', `${attr} on <${el.name}> must be ${min}..${max}, not ${a.value}`, a.offset);
    return n;
  }

  /** `S? '=' S? quoted`, decoding references; raw `<` is refused as XML requires. */
  private attrValue(): string {
    this.space();
    if (this.s[this.pos] !== '=') throw this.fail('malformed', `expected '=' after the attribute name`);
    this.pos++;
    this.space();
    const quote = this.s[this.pos];
    if (quote !== '"' && quote !== "'") throw this.fail('malformed', 'attribute values must be quoted');
    const start = ++this.pos;
    const end = this.s.indexOf(quote, start);
    if (end < 0) throw new EnqueueXmlError('malformed', 'unterminated attribute value', start - 1);
    const raw = this.s.slice(start, end);
    const lt = raw.indexOf('<');
    if (lt >= 0) throw new EnqueueXmlError('malformed', "'<' is not allowed in an attribute value", start + lt);
    this.pos = end + 1;
    // Literal tab/CR/LF become spaces (XML attribute-value normalisation) before references
    // are decoded, so a `&#10;` stays a newline and is then refused by the value's own pattern.
    return decodeReferences(raw.replace(/[\t\r\n]/g, ' '), start);
  }

  private name(what: string): string {
    NAME.lastIndex = this.pos;
    const m = NAME.exec(this.s);
    if (m === null) throw this.fail('malformed', `expected ${what}`);
    this.pos += m[0].length;
    return m[0];
  }

  /** Skips whitespace; whether there was any. */
  private space(): boolean {
    WHITESPACE.lastIndex = this.pos;
    const n = WHITESPACE.exec(this.s)?.[0].length ?? 0;
    this.pos += n;
    return n > 0;
  }

  private fail(problem: EnqueueXmlProblem, message: string): EnqueueXmlError {
    return new EnqueueXmlError(problem, this.pos >= this.s.length ? `${message}, found end of input` : message, this.pos);
  }
}

/** Decodes the five predefined entities and numeric character references; any other `&` is an error. */
function decodeReferences(raw: string, offset: number): string {
  return raw.replace(/&([^;&\s]{0,16});?/g, (whole, ref: string, at: number) => {
    const where = offset + at;
    if (!whole.endsWith(';')) throw new EnqueueXmlError('malformed', "'&' must start an entity or character reference ending in ';'", where);
    const named = Object.prototype.hasOwnProperty.call(PREDEFINED, ref) ? PREDEFINED[ref] : undefined;
    if (named !== undefined) return named;
    const num = /^#(?:([0-9]{1,7})|x([0-9A-Fa-f]{1,6}))$/.exec(ref);
    if (num === null) {
      if (ref.startsWith('#')) throw new EnqueueXmlError('malformed', `malformed character reference &${ref};`, where);
      throw new EnqueueXmlError('undefined_entity', `undefined entity &${ref}; (only &lt; &gt; &amp; &quot; &apos; and character references are decoded)`, where);
    }
    const cp = num[1] !== undefined ? Number(num[1]) : parseInt(num[2]!, 16);
    const ch = cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
    if (ch === '' || NOT_XML_CHAR.test(ch)) throw new EnqueueXmlError('invalid_character', `character reference &${ref}; is not an XML character`, where);
    return ch;
  });
}
