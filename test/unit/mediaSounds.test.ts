/** What the FreeSWITCH adapter plays for each prompt and queue announcement (media/fsmrf.ts soundOf). */
import { PROMPT_TONES, soundOf } from '../../media/fsmrf';

describe('FreeSWITCH sounds of prompts and announcements', () => {
  it('plays the FAC prompts as their tone streams', () => {
    expect(soundOf('confirm')).toBe(PROMPT_TONES.confirm);
    expect(soundOf('error')).toBe(PROMPT_TONES.error);
  });

  it('plays a configured sound as given', () => {
    expect(soundOf({ kind: 'sound', sound: 'ivr/ivr-welcome.wav' })).toBe('ivr/ivr-welcome.wav');
  });

  it('speaks a position from the template, every {n} replaced', () => {
    expect(soundOf({ kind: 'position', position: 12, template: 'file_string://ivr/ivr-you_are_number.wav!digits/{n}.wav' })).toBe('file_string://ivr/ivr-you_are_number.wav!digits/12.wav');
  });

  it('without a template, beeps once per place up to nine, and a long tone beyond', () => {
    const beeps = (s: string): number => (s.match(/%\(120,180,880\)/g) ?? []).length;
    expect(beeps(soundOf({ kind: 'position', position: 1 }))).toBe(1);
    expect(beeps(soundOf({ kind: 'position', position: 3 }))).toBe(3);
    expect(beeps(soundOf({ kind: 'position', position: 9 }))).toBe(9);
    const ten = soundOf({ kind: 'position', position: 10 });
    expect(beeps(ten)).toBe(0);
    expect(ten).toMatch(/^tone_stream:\/\//);
  });
});
