// weftctl entrypoint (placeholder until the CLI issue lands): prints usage.
const usage = `usage: weftctl <command> [--json]
  status | leases | config | peers | doctor | trace | ping   (not implemented yet in this build)`;
const args = process.argv.slice(2);
console.log(usage);
process.exit(args.includes('--help') || args.includes('-h') || args.length === 0 ? 0 : 2);
