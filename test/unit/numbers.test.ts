import { NumberMap, normaliseNumber, numberMapProblems, type NumberFormat } from '../../lib/routing/numbers';

const GERMANY: NumberFormat = { countryCode: '49', nationalPrefix: '0', internationalPrefix: '00' };
const NANP: NumberFormat = { countryCode: '1', nationalPrefix: '1', internationalPrefix: '011' };

describe('normaliseNumber', () => {
  it.each<[string, NumberFormat | undefined, string]>([
    ['+14155550100', undefined, '+14155550100'],
    ['+14155550100', GERMANY, '+14155550100'],
    ['+1 (415) 555-0100', undefined, '+14155550100'],
    ['415.555.0100', undefined, '4155550100'],
    ['0049301234', undefined, '0049301234'],
    ['0301234', undefined, '0301234'],
    ['0049301234', GERMANY, '+49301234'],
    ['0301234', GERMANY, '+49301234'],
    ['030 12-34', GERMANY, '+49301234'],
    ['(030) 1234', GERMANY, '+49301234'],
    ['01149301234', NANP, '+49301234'],
    ['14155550100', NANP, '+14155550100'],
    ['4155550100', NANP, '4155550100'],
    ['*36', GERMANY, '*36'],
    ['00', GERMANY, '00'],
    ['0', GERMANY, '0'],
    ['00*36', GERMANY, '00*36'],
    ['0123#', GERMANY, '0123#'],
  ])('%s with %j becomes %s', (raw, format, want) => {
    expect(normaliseNumber(raw, format)).toBe(want);
  });

  it('leaves national numbers alone when the trunk has no country code', () => {
    const noCountry: NumberFormat = { nationalPrefix: '0', internationalPrefix: '00' };
    expect(normaliseNumber('0301234', noCountry)).toBe('0301234');
    expect(normaliseNumber('0049301234', noCountry)).toBe('+49301234');
  });

  it('tries the international prefix before the national one it starts with', () => {
    // Read as national, 0049… would become +49049…
    expect(normaliseNumber('004930', GERMANY)).toBe('+4930');
  });
});

describe('NumberMap', () => {
  const map = new NumberMap({
    '+1*': 'north-america',
    '+14155*': 'bay-area',
    '+1415555*': 'office-block',
    '+14155550100': 'reception',
    '+14155550100*': 'reception-extensions',
  });

  it('an exact key wins over every prefix, even a longer one', () => {
    expect(map.match('+14155550100')).toEqual({ key: '+14155550100', entry: 'reception' });
    expect(map.match('+141555501001')).toEqual({ key: '+14155550100*', entry: 'reception-extensions' });
  });

  it('the longest prefix the number starts with wins', () => {
    expect(map.match('+14155550199')).toEqual({ key: '+1415555*', entry: 'office-block' });
    expect(map.match('+14155660000')).toEqual({ key: '+14155*', entry: 'bay-area' });
    expect(map.match('+12125550100')).toEqual({ key: '+1*', entry: 'north-america' });
  });

  it('a prefix matches the number that is exactly the prefix', () => {
    expect(map.match('+1415555')?.key).toBe('+1415555*');
  });

  it('gives nothing for a number no key covers', () => {
    expect(map.match('+4930123')).toBeUndefined();
    expect(map.match('14155550100')).toBeUndefined();
    expect(map.match('')).toBeUndefined();
  });

  it('`*` catches every number and `+*` every international one, only when nothing longer does', () => {
    const m = new NumberMap({ '*': 'any', '+*': 'international', '+49*': 'germany', '4930': 'local' });
    expect(m.match('+4930123')?.key).toBe('+49*');
    expect(m.match('+33123')?.key).toBe('+*');
    expect(m.match('0301234')?.key).toBe('*');
    expect(m.match('4930')?.key).toBe('4930');
    expect(m.match('')?.key).toBe('*');
  });

  it('compares keys without separators, the first of two equal keys winning', () => {
    const m = new NumberMap({ '+49 30 123': 'first', '+4930123': 'second', '+49 (30) 5*': 'prefix' });
    expect(m.match('+4930123')).toEqual({ key: '+49 30 123', entry: 'first' });
    expect(m.match('+49305999')).toEqual({ key: '+49 (30) 5*', entry: 'prefix' });
  });

  it('ignores keys that are no number or prefix', () => {
    const m = new NumberMap({ 'sales': 1, '12*3': 2 });
    expect(m.match('sales')).toBeUndefined();
    expect(m.match('12*3')).toBeUndefined();
    expect(m.match('123')).toBeUndefined();
  });

  it('finds the right entry among thousands of exact numbers and prefixes', () => {
    const entries: Record<string, { queue: string }> = {};
    for (let i = 0; i < 5000; i++) entries[`+4930${String(i).padStart(6, '0')}`] = { queue: `q${i}` };
    for (let i = 0; i < 1000; i++) entries[`+4940${String(i).padStart(3, '0')}*`] = { queue: `p${i}` };
    const m = new NumberMap(entries);
    expect(m.match('+4930004711')?.entry.queue).toBe('q4711');
    expect(m.match('+494012345678')?.entry.queue).toBe('p123');
    expect(m.match('+4930999999')).toBeUndefined();
  });
});

describe('numberMapProblems', () => {
  const at = 'callcenters.default.numbers';

  it('accepts exact numbers, nested prefixes, a number with its own prefix and the catch-alls', () => {
    expect(numberMapProblems({ '*': {}, '+*': {}, '+49*': {}, '+4930*': {}, '+4930123': {}, '+4930123*': {}, '4930123': {} }, at)).toEqual([]);
  });

  it('reports the later of two keys that are the same number once separators are removed', () => {
    expect(numberMapProblems({ '+4930123': {}, '+49 30-123': {} }, at)).toEqual([`${at}.+49 30-123: the same number as '+4930123' once separators are removed`]);
  });

  it('reports the later of two keys that are the same prefix once separators are removed', () => {
    expect(numberMapProblems({ '4930 123*': {}, '4930123*': {} }, at)).toEqual([`${at}.4930123*: the same prefix as '4930 123*' once separators are removed`]);
  });

  it.each(['sales', '+', '', '12*3', '**', '+49+30'])('reports %j as no number or prefix', (key) => {
    expect(numberMapProblems({ [key]: {} }, at)).toEqual([`${at}.${key}: not a number or a prefix ending in '*'`]);
  });
});
