/**
 * Running `nft`: apply a script as one transaction (`nft -f -`) and read weft's tables back as JSON.
 * `netns` runs it through `ip netns exec` (tests only; weftd runs in its host's namespace).
 */
import { runCommand } from '../exec/run-command.js';
import { WeftError } from '../errors.js';

export interface NftRunner {
  /** Applies `script` atomically (all or nothing). */
  apply(script: string): Promise<void>;
  /** `nft -j list table <family> <name>`; null when the table does not exist. */
  listTable(family: 'ip' | 'ip6', name: string): Promise<NftObject[] | null>;
}

/** One element of the `nftables` array of `nft -j` output. */
export type NftObject = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** nft's output; stderr names a missing nft or a failure without an exit code (timeout). */
async function exec(argv: readonly string[], input: string | null, timeoutMs: number) {
  const r = await runCommand(argv, { input, timeoutMs });
  return { ...r, stderr: r.missing ? `${argv[0]} not found: install nftables` : r.message };
}

export function createNftRunner(
  opts: { netns?: string; nftPath?: string; timeoutMs?: number } = {},
): NftRunner {
  const nft = opts.nftPath ?? 'nft';
  const prefix = opts.netns ? ['ip', 'netns', 'exec', opts.netns, nft] : [nft];
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return {
    async apply(script) {
      const r = await exec([...prefix, '-f', '-'], script, timeoutMs);
      if (r.code !== 0) {
        throw new WeftError(
          'E_FIREWALL',
          `nft rejected weft's ruleset: ${r.stderr.trim().slice(0, 2000) || `exit ${r.code}`}`,
          {
            retryable: true,
            details: { script, missing: r.code === 127 },
          },
        );
      }
    },
    async listTable(family, name) {
      const r = await exec([...prefix, '-j', 'list', 'table', family, name], null, timeoutMs);
      if (r.code !== 0) {
        if (/No such file or directory|does not exist/i.test(r.stderr)) return null;
        throw new WeftError(
          'E_FIREWALL',
          `nft list table ${family} ${name} failed: ${r.stderr.trim() || `exit ${r.code}`}`,
          {
            retryable: true,
          },
        );
      }
      try {
        const parsed = JSON.parse(r.stdout) as { nftables?: NftObject[] };
        return parsed.nftables ?? [];
      } catch (err) {
        throw new WeftError(
          'E_FIREWALL',
          `nft -j list table ${family} ${name} printed invalid JSON`,
          { cause: err },
        );
      }
    },
  };
}
