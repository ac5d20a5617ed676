// graphile-worker 0.18 with a no-op task, for benches/realpath.rs: JOBS jobs added in one
// call, then a runner at CONCURRENCY until all are done. TUNED=1 applies the settings its
// docs give for throughput (local queue, no completion batching delay).
import { run, makeWorkerUtils, Logger } from "graphile-worker";

// Quiet: its per-job INFO lines would cost more than the jobs.
const logger = new Logger(() => () => {});

const connectionString = process.env.DATABASE_URL;
const jobs = Number(process.env.JOBS ?? 10000);
const concurrency = Number(process.env.CONCURRENCY ?? 8);
const tuned = process.env.TUNED === "1";

const utils = await makeWorkerUtils({ connectionString, logger });
await utils.migrate();
await utils.withPgClient((c) => c.query("DELETE FROM graphile_worker._private_jobs"));
const specs = Array.from({ length: jobs }, (_, i) => ({ identifier: "noop", payload: { i } }));
for (let i = 0; i < specs.length; i += 1000) {
  await utils.addJobs(specs.slice(i, i + 1000));
}
const started = process.hrtime.bigint();
let done = 0;
let finish;
const finished = new Promise((r) => (finish = r));
const preset = tuned
  ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } }
  : {};
const runner = await run({
  connectionString,
  concurrency,
  noHandleSignals: true,
  logger,
  pollInterval: 1000,
  preset,
  taskList: {
    noop: async () => {
      done += 1;
      if (done === jobs) finish();
    },
  },
});
await finished;
// Done means the completions reached the database (they are batched), as scanledger's
// figure counts scans completed in the database.
for (;;) {
  const { rows } = await utils.withPgClient((c) =>
    c.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs"),
  );
  if (rows[0].n === 0) break;
  await new Promise((r) => setTimeout(r, 5));
}
const secs = Number(process.hrtime.bigint() - started) / 1e9;
await runner.stop();
await utils.release();
console.log(
  `graphile-worker 0.18 ${tuned ? "tuned   " : "defaults"} concurrency ${concurrency}: ${jobs} no-op jobs in ${secs.toFixed(2)} s => ${(jobs / secs).toFixed(0)} jobs/s`,
);
