/** The per-attachment state store: atomic files inside dataDir only, hostile names and symlinks refused. */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniError } from '../../../src/cni/errors.js';
import { STATE_FORMAT, StateStore, type StoredAttachment } from '../../../src/cni/state.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-cni-state-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const att = (containerID: string, ifname = 'eth0'): StoredAttachment => ({
  format: STATE_FORMAT,
  network: 'net1',
  containerID,
  ifname,
  delegate: { type: 'bridge' },
});

describe('StateStore', () => {
  it('writes <dataDir>/<net>/<id>@<ifname> with modes 0700/0600, reads it back, lists and removes it', () => {
    const s = new StateStore(join(dir, 'data'));
    s.write(att('c1'));
    s.write(att('c1', 'net1'));
    expect(statSync(join(dir, 'data', 'net1')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'data', 'net1', 'c1@eth0')).mode & 0o777).toBe(0o600);
    expect(s.read('net1', 'c1', 'eth0')).toEqual({ kind: 'ok', state: att('c1') });
    expect(s.list('net1').sort((a, b) => a.ifname.localeCompare(b.ifname))).toEqual([
      { containerID: 'c1', ifname: 'eth0' },
      { containerID: 'c1', ifname: 'net1' },
    ]);
    s.remove('net1', 'c1', 'eth0');
    s.remove('net1', 'c1', 'eth0');
    expect(s.read('net1', 'c1', 'eth0')).toEqual({ kind: 'missing' });
    expect(readdirSync(join(dir, 'data', 'net1'))).toEqual(['c1@net1']);
  });

  it('reports empty, foreign or mismatching files as corrupt instead of throwing', () => {
    const s = new StateStore(dir);
    s.write(att('c1'));
    const f = join(dir, 'net1', 'c1@eth0');
    for (const text of ['', '{', '[]', JSON.stringify({ ...att('c2') })]) {
      writeFileSync(f, text);
      expect(s.read('net1', 'c1', 'eth0').kind).toBe('corrupt');
    }
  });

  it('reads at most 1 MiB of a state file: a larger one (planted or grown) is corrupt, never loaded whole', () => {
    const s = new StateStore(dir);
    s.write(att('c1'));
    const f = join(dir, 'net1', 'c1@eth0');
    const valid = JSON.stringify(att('c1'));
    // valid JSON for this attachment, padded past the bound with whitespace
    writeFileSync(f, valid.slice(0, -1) + ' '.repeat(1 << 20) + '}');
    const r = s.read('net1', 'c1', 'eth0');
    expect(r).toMatchObject({
      kind: 'corrupt',
      reason: expect.stringMatching(/larger than 1048576 bytes/),
    });
    writeFileSync(f, valid.slice(0, -1) + ' '.repeat(1000) + '}');
    expect(s.read('net1', 'c1', 'eth0').kind).toBe('ok');
  });

  it('refuses ids, ifnames and network names that could leave dataDir, before touching the disk', () => {
    const s = new StateStore(join(dir, 'data'));
    for (const [net, id, ifn] of [
      ['net1', '../../etc/x', 'eth0'],
      ['net1', 'c1', '..'],
      ['net1', 'c1', 'a/b'],
      ['../x', 'c1', 'eth0'],
      ['net1', '', 'eth0'],
    ] as const) {
      expect(() => s.write({ ...att(id, ifn), network: net })).toThrow(CniError);
    }
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });

  it('accepts a symlinked dataDir, refuses a symlinked network dir and never follows a planted state symlink', () => {
    mkdirSync(join(dir, 'real'));
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    new StateStore(join(dir, 'link')).write(att('c1'));
    expect(existsSync(join(dir, 'real', 'net1', 'c1@eth0'))).toBe(true);

    mkdirSync(join(dir, 'd2'));
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'd2', 'net1'));
    expect(() => new StateStore(join(dir, 'd2')).write(att('c1'))).toThrow(/not a directory/);
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual([]);

    const s = new StateStore(join(dir, 'd3'));
    s.write(att('c0'));
    writeFileSync(join(dir, 'secret'), 'x');
    symlinkSync(join(dir, 'secret'), join(dir, 'd3', 'net1', 'c1@eth0'));
    expect(s.read('net1', 'c1', 'eth0').kind).toBe('corrupt');
    s.write(att('c1'));
    expect(readFileSync(join(dir, 'secret'), 'utf8')).toBe('x');
  });

  it('recreates a network dir removed behind its back, and still refuses one replaced by a symlink', () => {
    const s = new StateStore(join(dir, 'data'));
    s.write(att('c1'));
    rmSync(join(dir, 'data', 'net1'), { recursive: true });
    s.write(att('c2'));
    expect(readdirSync(join(dir, 'data', 'net1'))).toEqual(['c2@eth0']);
    expect(statSync(join(dir, 'data', 'net1')).mode & 0o777).toBe(0o700);
    rmSync(join(dir, 'data', 'net1'), { recursive: true });
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'data', 'net1'));
    expect(() => s.write(att('c3'))).toThrow(/not a directory/);
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual([]);
  });

  it('resolves the promise of a write without sync at once, with the file in place', async () => {
    const s = new StateStore(join(dir, 'data'));
    await s.write(att('c1'), { sync: false });
    expect(s.read('net1', 'c1', 'eth0')).toEqual({ kind: 'ok', state: att('c1') });
    await s.write(att('c1'));
    expect(readdirSync(join(dir, 'data', 'net1'))).toEqual(['c1@eth0']);
  });

  it('remove with `later`: the name is gone at once, the held file is closed by the task it hands over', async () => {
    const s = new StateStore(join(dir, 'data'));
    await s.write(att('c1')); // (its background fsync holds the file open until it is done)
    const file = join(dir, 'data', 'net1', 'c1@eth0');
    // This process's descriptors still open on the removed file (readlink shows "<path> (deleted)").
    const held = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === `${file} (deleted)`;
        } catch {
          return false;
        }
      }).length;
    const tasks: (() => void)[] = [];
    s.remove('net1', 'c1', 'eth0', (close) => tasks.push(close));
    expect(readdirSync(join(dir, 'data', 'net1'))).toEqual([]);
    expect(tasks).toHaveLength(1);
    expect(held()).toBe(1);
    tasks[0]!();
    expect(held()).toBe(0);
    // Absent: nothing held, nothing handed over.
    s.remove('net1', 'c1', 'eth0', (close) => tasks.push(close));
    expect(tasks).toHaveLength(1);
  });
});
