/**
 * A horizontal bar chart of ratios as a standalone SVG (no packages): one bar per ratio, grouped, with
 * its value printed, and a dashed line at 1.0 (= as good as the anchor). Higher is better for every bar.
 */

export interface RatioBar {
  group: string;
  label: string;
  /** e.g. 0.97; NaN or a missing part is drawn as an "n/a" row */
  value: number;
  note?: string;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const PALETTE = ['#3b6fb6', '#d9822b', '#3a9a5b', '#8e5bb5', '#c0504d', '#5b8e8e'];

export function ratioChart(title: string, subtitle: string, bars: readonly RatioBar[]): string {
  const labelW = 330;
  const plotW = 420;
  const rowH = 22;
  const top = 58;
  const groups = [...new Set(bars.map((b) => b.group))];
  const rows = bars.length + groups.length; // a heading row per group
  const height = top + rows * rowH + 40;
  const width = labelW + plotW + 90;
  const finite = bars.map((b) => b.value).filter((v) => Number.isFinite(v));
  const max = Math.max(1.2, ...finite.map((v) => Math.min(v, 5))) * 1.05;
  const x = (v: number): number => labelW + (Math.min(v, max) / max) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="12" y="40" fill="#555">${esc(subtitle)}</text>`,
  ];
  let y = top;
  groups.forEach((g, gi) => {
    const color = PALETTE[gi % PALETTE.length]!;
    out.push(
      `<rect x="10" y="${y + 3}" width="${width - 20}" height="${rowH - 4}" fill="#f4f4f4"/>`,
      `<text x="12" y="${y + 15}" font-weight="bold" fill="${color}">${esc(g)}</text>`,
    );
    y += rowH;
    for (const b of bars.filter((bar) => bar.group === g)) {
      out.push(`<text x="${labelW - 8}" y="${y + 15}" text-anchor="end">${esc(b.label)}</text>`);
      if (Number.isFinite(b.value)) {
        const w = Math.max(1, x(b.value) - labelW);
        out.push(
          `<rect class="bar" x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${color}" rx="2"/>`,
          `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}">${b.value.toFixed(2)}×${b.value > max ? ' ▶' : ''}</text>`,
        );
      } else {
        out.push(
          `<text x="${labelW + 6}" y="${y + 15}" fill="#999">n/a${b.note ? ` (${esc(b.note)})` : ''}</text>`,
        );
      }
      y += rowH;
    }
  });
  // Axis and the 1.0 line go under the text and bars (inserted right after the title lines).
  const one = x(1).toFixed(1);
  out.splice(
    4,
    0,
    `<line x1="${one}" y1="${top}" x2="${one}" y2="${y}" stroke="#222" stroke-dasharray="4 3"/>`,
    `<line x1="${labelW}" y1="${top}" x2="${labelW}" y2="${y}" stroke="#888"/>`,
  );
  out.push(
    `<text x="${one}" y="${y + 14}" text-anchor="middle" fill="#222">1.0 = anchor</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}
