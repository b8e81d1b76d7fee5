import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AttentionReport } from './report.js';

const WEB = join(import.meta.dirname, 'web');

/**
 * A self-contained HTML file showing reports exactly as the /inspect page
 * does (the page's own CSS and script, inlined), for an analyst to open or
 * share without a server or a key.
 */
export function reportHtml(reports: readonly (AttentionReport & { title?: string })[]): string {
  const page = readFileSync(join(WEB, 'index.html'), 'utf8');
  const css = readFileSync(join(WEB, 'inspect.css'), 'utf8');
  const js = readFileSync(join(WEB, 'inspect.js'), 'utf8');
  // JSON inside <script>: "<" escaped so no "</script>" in the data can end the element.
  const data = JSON.stringify(reports).replace(/</g, '\\u003c');
  return page
    .replace('<link rel="stylesheet" href="inspect.css">', () => `<style>\n${css}</style>`)
    .replace('<script type="module" src="inspect.js"></script>', () => `<script>window.ATTNREC_REPORTS = ${data};</script>\n<script type="module">\n${js}</script>`);
}
