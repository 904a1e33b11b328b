// Entry point placeholder: replaced when its issue lands.
process.stderr.write('bench/main: not implemented yet\n');
process.exitCode = 2;
