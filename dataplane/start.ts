// Entry point placeholder: replaced when its issue lands.
process.stderr.write('dataplane/start: not implemented yet\n');
process.exitCode = 2;
