// Entry of a rebuild worker thread (infra/replay/parallel-rebuild.ts): registers tsx in this
// thread, as cli/strata.mjs does in the main one, then runs the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./rebuild.worker.ts');
