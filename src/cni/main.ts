// weft CNI plugin entrypoint (placeholder until the CNI issue lands).
process.stdout.write(
  JSON.stringify({
    cniVersion: '1.0.0',
    code: 4,
    msg: 'weft CNI plugin not implemented in this build',
  }) + '\n',
);
process.exit(1);
