// A whole-sandbox test file has written every result by the time its process emits 'exit'. Node
// 20 can then spin for ever in its exit-time handle cleanup (Environment::CleanupHandles) while a
// child it started is still stopped or dying, until tap's timeout fails the file; leaving through
// process.exit skips that cleanup. Registered after tap's own exit listeners, so theirs run first.
process.once('exit', (code) => process.exit(code));
