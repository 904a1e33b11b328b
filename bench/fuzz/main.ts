// `masque-bench fuzz`: every protocol parser at once, HTTP/3's and CONNECT-IP's, through the
// HTTP/3 layer's runner (random inputs plus mutations of valid seeds; only typed errors allowed).
import { main as fuzzMain } from '../../dataplane/h3/fuzz-cli.js';
import { masqueFuzzTargets } from '../../dataplane/masque/fuzz.js';

export async function main(argv: string[]): Promise<number> {
  return fuzzMain(argv, masqueFuzzTargets());
}
