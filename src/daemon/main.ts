// weftd entrypoint (placeholder until the daemon issue lands): prints usage.
const usage = `usage: weftd [flags]
  The weft host daemon: leases this host's subnet from etcd and programs the overlay.
  (Not implemented yet in this build.)`;
const args = process.argv.slice(2);
console.log(usage);
process.exit(args.includes('--help') || args.includes('-h') || args.length === 0 ? 0 : 2);
