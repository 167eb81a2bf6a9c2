/**
 * The colours of style/index.css meet WCAG AA (4.5:1 for text) in the light and the
 * dark theme: every `--codeact-<name>-fg` against its `--codeact-<name>-bg`, or against
 * the notebook's surface when it has none. The browser tests measure the same on the
 * rendered page (tests/browser/test_lab_look.py).
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

// Compiled to build-test/test/: the sources are two levels up.
const CSS = readFileSync(join(__dirname, '..', '..', 'style', 'index.css'), 'utf8');

/** The `--codeact-*` colours declared in the first block that `selector` opens. */
function variables(selector: string): Map<string, string> {
  const start = CSS.indexOf(`${selector} {`);
  assert.ok(start >= 0, `no ${selector} block`);
  const block = CSS.slice(start, CSS.indexOf('}', start));
  const found = new Map<string, string>();
  for (const match of block.matchAll(/--codeact-([a-z-]+):\s*(#[0-9a-f]{6});/gi)) {
    found.set(match[1], match[2]);
  }
  return found;
}

function luminance(hex: string): number {
  const channels = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16) / 255);
  const [r, g, b] = channels.map(c => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const THEMES: [string, string][] = [
  ['light', ':root'],
  ['dark', "body[data-jp-theme-light='false']"]
];

describe('style colours', () => {
  it('computes contrast as WCAG does', () => {
    assert.equal(contrast('#000000', '#ffffff'), 21);
    assert.equal(contrast('#777777', '#777777'), 1);
    assert.ok(Math.abs(contrast('#767676', '#ffffff') - 4.54) < 0.01);
  });

  it('declares the same colours for both themes', () => {
    const light = [...variables(':root').keys()].sort();
    const dark = [...variables(THEMES[1][1]).keys()].sort();
    assert.deepEqual(dark, light);
    assert.ok(light.length >= 20);
  });

  for (const [theme, selector] of THEMES) {
    it(`every text colour meets 4.5:1 in the ${theme} theme`, () => {
      const colours = variables(selector);
      const surface = colours.get('surface-bg')!;
      assert.ok(surface, 'surface-bg');
      const poor: string[] = [];
      let pairs = 0;
      for (const [name, fg] of colours) {
        if (!name.endsWith('-fg')) {
          continue;
        }
        const bg = colours.get(name.replace(/-fg$/, '-bg')) ?? surface;
        pairs++;
        const ratio = contrast(fg, bg);
        if (ratio < 4.5) {
          poor.push(`${name} ${fg} on ${bg}: ${ratio.toFixed(2)}`);
        }
      }
      assert.deepEqual(poor, []);
      assert.ok(pairs >= 12, `only ${pairs} pairs`);
    });
  }

  it('status pills have a colour pair for every status, skipped included', () => {
    for (const status of ['ok', 'error', 'interrupted', 'pending', 'running', 'skipped']) {
      assert.ok(variables(':root').has(`${status}-fg`), status);
      const rule = `\\.codeact-status-${status} \\{[^}]*var\\(--codeact-${status}-fg\\)`;
      assert.match(CSS, new RegExp(rule));
    }
  });
});
