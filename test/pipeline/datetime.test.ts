// minijinja-cli registers minijinja-contrib: now(), the date filters, random and randrange; bkci has
// them too. minijinja-js has none of them and Jinja2 only `random`, so the expectations are the
// formats minijinja documents (for 1687624642, 2023-06-24 16:37:22 UTC).
import { describe, expect, it } from 'vitest';
import { compileTemplate } from '../../src/pipeline/jinja/index.js';

const render = (t: string) => compileTemplate(t, 't.j2').render(new Map());
const TS = 1687624642;

describe('date functions', () => {
  it('formats timestamps with the named formats', () => {
    expect(render(`{{ ${TS} | datetimeformat(format="short") }}`)).toBe('2023-06-24 16:37');
    expect(render(`{{ ${TS} | datetimeformat }}`)).toBe('Jun 24 2023 16:37');
    expect(render(`{{ ${TS} | datetimeformat(format="long") }}`)).toBe('June 24 2023 16:37:22');
    expect(render(`{{ ${TS} | datetimeformat(format="full") }}`)).toBe('Saturday, June 24 2023 16:37:22.0');
    expect(render(`{{ ${TS} | datetimeformat(format="unix") }}`)).toBe(String(TS));
    expect(render(`{{ ${TS} | datetimeformat(format="iso") }}`)).toBe('2023-06-24T16:37:22+00:00');
    expect(render(`{{ "2023-06-24" | dateformat }}|{{ ${TS} | dateformat(format="short") }}|{{ "2023-06-24" | dateformat(format="full") }}`)).toBe(
      'Jun 24 2023|2023-06-24|Saturday, June 24 2023',
    );
    expect(render(`{{ ${TS} | timeformat }}|{{ ${TS}.5 | timeformat(format="full") }}|{{ ${TS} | timeformat(format="long") }}`)).toBe(
      '16:37|16:37:22.5|16:37:22',
    );
  });

  it("keeps an ISO string's offset, or converts with tz=", () => {
    expect(render('{{ "2023-06-24T16:37:22+02:00" | datetimeformat(format="iso") }}')).toBe('2023-06-24T16:37:22+02:00');
    expect(render('{{ "2023-06-24T16:37:22+02:00" | datetimeformat(format="iso", tz="UTC") }}')).toBe('2023-06-24T14:37:22+00:00');
    expect(render(`{{ ${TS} | datetimeformat(format="iso", tz="Europe/Vienna") }}`)).toBe('2023-06-24T18:37:22+02:00');
    expect(render(`{{ ${TS} | datetimeformat(format="iso", tz="America/New_York") }}`)).toBe('2023-06-24T12:37:22-04:00');
    expect(render('{{ "2023-06-24 16:37" | datetimeformat(format="short") }}')).toBe('2023-06-24 16:37');
  });

  it('renders format descriptions in the time crate syntax', () => {
    expect(
      render(
        `{{ ${TS} | datetimeformat(format="[year]/[month]/[day] [weekday repr:short] [hour repr:12][period case:lower] [[x] [month repr:long] [day padding:none]") }}`,
      ),
    ).toBe('2023/06/24 Sat 04pm [x] June 24');
  });

  it('now() is the current unix time in seconds', () => {
    const t = Number(render('{{ now() }}'));
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(60);
    expect(render('{{ now() | datetimeformat(format="[year]") }}')).toBe(String(new Date().getUTCFullYear()));
  });

  it('refuses what minijinja refuses', () => {
    expect(() => render('{{ "2023-06-24" | datetimeformat }}')).toThrow(/requires time, but only received a date/);
    expect(() => render('{{ "yesterday" | datetimeformat }}')).toThrow(/not a valid date or timestamp/);
    expect(() => render(`{{ ${TS} | datetimeformat("short") }}`)).toThrow(/too many arguments/);
    expect(() => render(`{{ ${TS} | datetimeformat(format="[nonsense]") }}`)).toThrow(/invalid format string/);
    expect(() => render(`{{ ${TS} | datetimeformat(tz="Mars/Olympus") }}`)).toThrow(/unknown timezone 'Mars\/Olympus'/);
    expect(() => render('{{ [1] | datetimeformat }}')).toThrow(/value is not a datetime/);
    expect(() => render('{{ now(1) }}')).toThrow(/too many arguments/);
  });

  it('random and randrange (minijinja-contrib) pick within their range', () => {
    for (let i = 0; i < 20; i++) {
      expect(['1', '2', '3']).toContain(render('{{ [1, 2, 3] | random }}'));
      expect(['a', 'b']).toContain(render('{{ "ab" | random }}'));
      const r = Number(render('{{ randrange(3, 6) }}'));
      expect(r >= 3 && r < 6 && Number.isInteger(r)).toBe(true);
      expect(Number(render('{{ randrange(2) }}'))).toBeLessThan(2);
    }
    expect(() => render('{{ randrange("x") }}')).toThrow(/randrange expects integers/);
  });
});
