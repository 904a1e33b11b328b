// Entry point placeholder: replaced when its issue lands.
process.stderr.write('controlplane/vpnctl/main: not implemented yet\n');
process.exitCode = 2;
