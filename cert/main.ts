// Entry point placeholder: replaced when its issue lands.
process.stderr.write('cert/main: not implemented yet\n');
process.exitCode = 2;
