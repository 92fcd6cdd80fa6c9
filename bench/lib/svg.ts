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

export interface LineSeries {
  name: string;
  /** one per x; NaN leaves a gap */
  values: readonly number[];
  dashed?: boolean;
}

/**
 * A line chart as a standalone SVG: categorical x (e.g. peer counts), logarithmic y, one line per series
 * with a legend, and an optional note printed above each x (e.g. the ratio to the anchor there).
 */
export function lineChart(o: {
  title: string;
  subtitle: string;
  xLabel: string;
  yLabel: string;
  x: readonly number[];
  series: readonly LineSeries[];
  notes?: readonly string[];
}): string {
  const left = 70;
  const plotW = 520;
  const top = 70;
  const plotH = 300;
  const legendW = 250;
  const width = left + plotW + legendW;
  const height = top + plotH + 60;
  const finite = o.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...finite))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...finite, 10))));
  const y = (v: number): number =>
    top + plotH - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const step = o.x.length > 1 ? plotW / (o.x.length - 1) : 0;
  const x = (i: number): number => left + (o.x.length > 1 ? i * step : plotW / 2);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
    `<text x="12" y="40" fill="#555">${esc(o.subtitle)}</text>`,
  ];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const yy = y(d).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${yy}" x2="${left + plotW}" y2="${yy}" stroke="#e4e4e4"/>`,
      `<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#555">${d >= 1 ? d.toFixed(0) : d}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#888"/>`,
    `<text x="14" y="${top + plotH / 2}" fill="#555" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">${esc(o.yLabel)} (log)</text>`,
  );
  o.x.forEach((v, i) => {
    out.push(
      `<text x="${x(i).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle">${v}</text>`,
    );
    const note = o.notes?.[i];
    if (note)
      out.push(
        `<text x="${x(i).toFixed(1)}" y="${top - 8}" text-anchor="middle" fill="#222">${esc(note)}</text>`,
      );
  });
  out.push(
    `<text x="${left + plotW / 2}" y="${top + plotH + 40}" text-anchor="middle" fill="#555">${esc(o.xLabel)}</text>`,
  );
  o.series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length]!;
    const pts = s.values
      .map((v, i) => (Number.isFinite(v) && v > 0 ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : null))
      .filter((p): p is string => p !== null);
    const dash = s.dashed ? ' stroke-dasharray="5 4"' : '';
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`,
      );
    if (!s.dashed)
      for (const p of pts) {
        const [px, py] = p.split(',');
        out.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`);
      }
    const ly = top + 10 + si * 20;
    out.push(
      `<line x1="${left + plotW + 20}" y1="${ly}" x2="${left + plotW + 44}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${left + plotW + 50}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
