// Entry point placeholder: replaced when its issue lands.
process.stderr.write('client/main: not implemented yet\n');
process.exitCode = 2;
